"""The Nuke integration (nuke_plugin/) against a stand-in ``nuke`` module (tests/nuke_standin.py):
knob layout, frame ranges, cache keys and invalidation, the internal Write/Read wiring, and the
render orchestration with real (tiny) renders. No Nuke here: what Nuke itself does with these
calls is not tested."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .imaging import read_file, write_file

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "nuke_plugin"
FRAMES = (1001, 1002, 1003)


@pytest.fixture
def nuke(monkeypatch: pytest.MonkeyPatch):
    """A fresh stand-in ``nuke`` in sys.modules and fresh pomagan_nuke modules."""
    from . import nuke_standin

    module = nuke_standin.fresh_module()
    monkeypatch.setitem(sys.modules, "nuke", module)
    monkeypatch.syspath_prepend(str(PLUGIN))
    for name in [m for m in sys.modules if m == "pomagan_nuke" or m.startswith("pomagan_nuke.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delenv("POMAGAN_NUKE_CACHE", raising=False)
    yield module
    for name in [m for m in sys.modules if m == "pomagan_nuke" or m.startswith("pomagan_nuke.")]:
        sys.modules.pop(name, None)


@pytest.fixture
def plate(tmp_path: Path) -> str:
    """Three linear EXR frames, 24x40."""
    for i, frame in enumerate(FRAMES):
        rgb = np.random.default_rng(frame).random((24, 40, 3)).astype(np.float32) * 2
        write_file(tmp_path / f"plate.{frame:04d}.exr", rgb, "half")
    return str(tmp_path / "plate.####.exr")


def _setup(nuke, plate: str, tmp_path: Path, through: str | None = None):
    """Read -> [through] -> POMAGAN, on the CPU at working size 32, cache in tmp."""
    from pomagan_nuke import node

    read = nuke.nodes.Read(name="plate_read", file=plate, first=FRAMES[0], last=FRAMES[-1],
                           colorspace="linear")
    upstream = read
    if through:
        upstream = getattr(nuke.nodes, through)(name="tree")
        upstream.setInput(0, read)
    group = node.create_node()
    group.setInput(0, upstream)
    group["device"].setValue("cpu")
    group["working_size"].setValue(32)
    group["cache_dir"].setValue(str(tmp_path / "cache"))
    return group


def test_core_imports_without_nuke(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nuke", None)  # `import nuke` now raises ImportError
    monkeypatch.syspath_prepend(str(PLUGIN))
    sys.modules.pop("pomagan_nuke.core", None)
    core = importlib.import_module("pomagan_nuke.core")
    assert core.parse_frames("1001-1100") == (1001, 1100)
    with pytest.raises(ImportError):
        importlib.import_module("pomagan_nuke.node")
    sys.modules.pop("pomagan_nuke.node", None)


def test_pomagan_post_never_imports_nuke() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "sys.modules['nuke'] = None\n"
        "import pomagan_post\n"
        "for m in pkgutil.walk_packages(pomagan_post.__path__, 'pomagan_post.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    sources = "\n".join(p.read_text() for p in (ROOT / "pomagan_post").rglob("*.py"))
    assert "import nuke" not in sources and "from nuke" not in sources


def test_knob_layout_and_internal_wiring(nuke) -> None:
    from pomagan_nuke import core, node

    group = node.create_node()
    assert group.Class() == "Group" and group.name() == "POMAGAN"
    assert tuple(group.user_knobs) == node.KNOB_NAMES
    kinds = {n: type(group[n]).__name__ for n in node.KNOB_NAMES}
    assert kinds["weights"] == kinds["cache_dir"] == "File_Knob"
    assert kinds["device"] == kinds["precision"] == kinds["output"] == kinds["tta"] == "Enumeration_Knob"
    assert group["tta"].values() == ["none", "flip"] and group["tta"].value() == "none"
    assert kinds["working_size"] == kinds["first_frame"] == "Int_Knob"
    assert kinds["use_input_range"] == kinds["read_upstream"] == "Boolean_Knob"
    assert kinds["render"] == "PyScript_Knob" and kinds["variant_info"] == "Text_Knob"
    assert group["output"].values() == list(core.OUTPUT_MODES)
    assert group["use_input_range"].value() is True
    assert not group["first_frame"].enabled()
    assert group["cache_key"].getFlag(nuke.INVISIBLE) and group["cache_key"].value() == ""
    from pomagan_post import read_checkpoint_info

    info = read_checkpoint_info(None)
    status = "trained" if info["trained"] else "UNTRAINED"
    assert info["variant"] in group["variant_info"].value() and status in group["variant_info"].value()
    assert "pomagan_nuke.node.knob_changed()" in group["knobChanged"].value()

    with group:
        plate, write = nuke.toNode("Input1"), nuke.toNode("cache_write")
        alpha_read, fg_read = nuke.toNode("alpha_read"), nuke.toNode("fg_read")
        copy_alpha, copy_rgb = nuke.toNode("copy_alpha"), nuke.toNode("copy_rgb")
        switch, output = nuke.toNode("output_switch"), nuke.toNode("Output1")
    assert write.input(0) is plate and write["disable"].value() is True
    assert write["file_type"].value() == "exr"
    assert (copy_alpha.input(0), copy_alpha.input(1)) == (plate, alpha_read)  # B plate, A matte
    assert (copy_alpha["from0"].value(), copy_alpha["to0"].value()) == ("rgba.alpha", "rgba.alpha")
    assert (copy_rgb.input(0), copy_rgb.input(1)) == (copy_alpha, fg_read)
    assert [copy_rgb[f"from{i}"].value() for i in range(3)] == ["rgba.red", "rgba.green", "rgba.blue"]
    assert [switch.input(i) for i in range(3)] == [plate, copy_alpha, copy_rgb]
    assert switch["which"].value() == node.SWITCH_PLATE and output.input(0) is switch
    assert alpha_read["raw"].value() is True


def test_frame_range(nuke, plate: str, tmp_path: Path) -> None:
    from pomagan_nuke import core, node

    group = _setup(nuke, plate, tmp_path)
    assert (node.read_settings(group).first, node.read_settings(group).last) == (1001, 1003)
    group["use_input_range"].setValue(False)
    nuke.fire_knob_changed(group, "use_input_range")
    assert group["first_frame"].enabled()
    group["first_frame"].setValue(1002)
    group["last_frame"].setValue(1003)
    assert (node.read_settings(group).first, node.read_settings(group).last) == (1002, 1003)
    group["last_frame"].setValue(1000)
    with pytest.raises(core.BadInputError):
        node.read_settings(group)
    assert core.frame_range(True, None, (5, 9)) == (5, 9)  # nothing connected: explicit range
    assert core.parse_frames("1001") == (1001, 1001)
    with pytest.raises(core.BadInputError):
        core.parse_frames("1100-1001")
    with pytest.raises(core.BadInputError, match="unknown tta 'twice'"):
        core.NodeSettings(tta="twice")


def test_cache_key_changes_with_what_changes_the_matte(plate: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGIN))
    from pomagan_nuke import core

    base = core.NodeSettings(device="cpu", working_size=32, first=1001, last=1003, cache_dir=str(tmp_path))
    source = core.file_fingerprint(plate, 1001, 1003)
    key = core.cache_key(source, base)
    assert key == core.cache_key(core.file_fingerprint(plate, 1001, 1003), base)  # deterministic
    same = [base.__class__(**{**base.__dict__, "output": "alpha"}),
            base.__class__(**{**base.__dict__, "cache_dir": str(tmp_path / "other")})]
    assert all(core.cache_key(source, s) == key for s in same)
    changed = [{"working_size": 64}, {"precision": "fp32"}, {"device": "auto"}, {"last": 1002}, {"tta": "flip"},
               {"temporal": 2}]
    for change in changed:
        assert core.cache_key(source, base.__class__(**{**base.__dict__, **change})) != key, change
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    assert core.cache_key(source, base.__class__(**{**base.__dict__, "weights": str(weights)})) != key
    frame = Path(plate.replace("####", "1002"))
    os.utime(frame, ns=(frame.stat().st_atime_ns, frame.stat().st_mtime_ns + 10**9))
    assert core.cache_key(core.file_fingerprint(plate, 1001, 1003), base) != key  # re-rendered plate
    assert core.direct_read_pattern("/a/p.%04d.EXR") == "/a/p.%04d.EXR"
    assert core.direct_read_pattern("/a/p.####.dpx") and not core.direct_read_pattern("/a/p.####.png")
    assert core.direct_read_pattern("/a/p.####.exr", read_upstream=False) is None
    assert core.default_cache_dir("/shows/x/comp.nk", {}) == "/shows/x/pomagan_cache"
    # The frames a render reads: with temporal N, the N frames of the shot either side (a
    # missing file stepped over), within the shot; without, the frames themselves.
    steady = base.__class__(**{**base.__dict__, "temporal": 2})
    assert core.read_span(steady, (1001, 1001), [999, 1000, 1001, 1003, 1004]) == (999, 1004)
    assert core.read_span(steady, (1002, 1003)) == (1001, 1003)  # the node's range as the shot
    assert core.read_span(base, (1002, 1002), [1001, 1002, 1003]) == (1002, 1002)
    assert core.default_cache_dir("/shows/x/comp.nk", {"POMAGAN_NUKE_CACHE": "/c"}) == "/c"


def test_render_reads_exr_directly_reuses_cache_and_goes_stale(nuke, plate: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from pomagan_nuke import node
    import pomagan_post

    calls = []
    real_render = pomagan_post.render

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real_render(*args, **kwargs)

    monkeypatch.setattr(pomagan_post, "render", spy)
    group = _setup(nuke, plate, tmp_path)
    report = node.render(group)
    assert nuke.executed == []  # EXR upstream: no internal Write pass
    (args, kwargs), = calls
    assert args == (plate,)
    assert kwargs["frames"] == "1001-1003" and kwargs["working_size"] == 32 and kwargs["tta"] == "none"
    assert kwargs["device"] == "cpu" and kwargs["outputs"] == ["alpha", "fg"]
    assert kwargs["skip_existing"] is True and kwargs["premultiplied"] is True
    assert report.written == list(FRAMES)

    key = group["cache_key"].value()
    folder = tmp_path / "cache" / key
    with group:
        alpha_read, fg_read = nuke.toNode("alpha_read"), nuke.toNode("fg_read")
        switch = nuke.toNode("output_switch")
    assert alpha_read["file"].value() == str(folder / "alpha.####.exr")
    assert fg_read["file"].value() == str(folder / "fg.####.exr")
    assert (alpha_read["first"].value(), alpha_read["last"].value()) == (1001, 1003)
    assert fg_read["colorspace"].value() == "linear"
    assert switch["which"].value() == node.SWITCH_RGBA
    assert group["status"].value().startswith("up to date")
    fg, _ = read_file(folder / "fg.1002.exr")
    alpha, _ = read_file(folder / "alpha.1002.exr")
    assert fg.shape == (24, 40, 4) and alpha.shape[:2] == (24, 40)
    assert np.all(fg[..., :3] <= fg[..., 3:] * 2.0 + 1e-2)  # premultiplied: rgb <= alpha * max(plate)

    node.render(group)  # unchanged: everything comes from the cache
    assert calls[-1][0] == (plate,) and len(calls) == 2
    group["working_size"].setValue(48)
    nuke.fire_knob_changed(group, "working_size")
    assert group["status"].value().startswith("stale") and switch["which"].value() == node.SWITCH_PLATE
    group["working_size"].setValue(32)
    nuke.fire_knob_changed(group, "working_size")  # back: the cache is valid again
    assert group["status"].value().startswith("up to date") and switch["which"].value() == node.SWITCH_RGBA
    group["output"].setValue("alpha")
    nuke.fire_knob_changed(group, "output")  # alpha only: same cache, plate rgb + matte
    assert switch["which"].value() == node.SWITCH_ALPHA and group["cache_key"].value() == key


def test_a_knob_changed_while_rendering_leaves_the_node_stale_not_up_to_date(nuke, plate: str,
                                                                            tmp_path: Path) -> None:
    """The artist changes the working size mid-render (its knobChanged waits for the render):
    the finished render does not label the old matte "up to date" for the new settings."""
    from pomagan_nuke import node

    group = _setup(nuke, plate, tmp_path)
    changed = []

    def artist(message: str) -> None:
        if not changed:
            group["working_size"].setValue(48)
            nuke.fire_knob_changed(group, "working_size")  # skipped: the node is rendering
            changed.append(message)

    node.render(group, log=artist)
    assert changed and group["status"].value().startswith("stale")
    with group:
        assert nuke.toNode("output_switch")["which"].value() == node.SWITCH_PLATE
    assert group.fullName() not in node._RENDERING


def test_a_read_path_with_a_tcl_expression_is_read_as_nuke_resolves_it(nuke, plate: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline's Read path ``[getenv PLATES]/...``: the node renders the files Nuke resolves
    (nuke.filename), not the knob's text taken as a path."""
    from pomagan_nuke import node

    monkeypatch.setenv("PLATES", str(Path(plate).parent))
    group = _setup(nuke, plate, tmp_path)
    group.input(0)["file"].setValue("[getenv PLATES]/" + Path(plate).name)
    report = node.render(group)
    assert report.written == list(FRAMES) and group["status"].value().startswith("up to date")


def test_a_read_with_a_frame_offset_goes_through_the_internal_write(nuke, plate: str, tmp_path: Path) -> None:
    """A Read that shows its files under other numbers (frame offset / start at) is not read
    directly by the node's frame numbers (they name other files, or none): Nuke renders it."""
    from pomagan_nuke import node

    group = _setup(nuke, plate, tmp_path)
    read = group.input(0)
    read._knobs["frame"] = nuke.Knob("frame")
    read["frame"].setValue("10")  # offset 10: node frame 1011 is file 1001
    direct, _, _ = node.plan_source(group, node.read_settings(group))
    assert direct is None
    node.render(group)
    assert nuke.executed == [("POMAGAN.cache_write", 1001, 1003)]


def test_tree_input_goes_through_the_internal_write(nuke, plate: str, tmp_path: Path) -> None:
    from pomagan_nuke import node

    group = _setup(nuke, plate, tmp_path, through="Grade")
    group["output"].setValue("alpha")
    report = node.render(group)
    assert nuke.executed == [("POMAGAN.cache_write", 1001, 1003)]
    folder = tmp_path / "cache" / group["cache_key"].value()
    assert sorted(p.name for p in folder.glob("plate.*.exr")) == [f"plate.{f}.exr" for f in FRAMES]
    assert report.outputs == {"alpha": str(folder / "alpha.####.exr")}
    with group:
        assert nuke.toNode("cache_write")["disable"].value() is True  # off again after the pass
    tree = nuke.toNode("tree")
    tree._knobs.setdefault("gain", nuke.Knob("gain")).setValue(1.5)  # an artist edit upstream
    nuke.fire_knob_changed(group, "inputChange")  # a changed tree is a different key
    assert group["status"].value().startswith("stale")


def test_background_render_reports_progress_and_cancel(nuke, plate: str, tmp_path: Path) -> None:
    group = _setup(nuke, plate, tmp_path)
    nuke.GUI = True
    nuke.ProgressTask.cancel_after = 1
    nuke.press(group, "render")
    import threading

    for thread in threading.enumerate():
        if thread.name.startswith("pomagan-"):
            thread.join(60)
    task = nuke.progress_tasks[-1]
    assert task.progress == [33] and group["status"].value() == "cancelled"
    assert group["cache_key"].value() == "" and nuke.messages == []

    nuke.ProgressTask.cancel_after = None
    # Resumes: frames written before the cancel (1001, and 1002 whose callback cancelled) stay.
    nuke.press(group, "render")
    for thread in threading.enumerate():
        if thread.name.startswith("pomagan-"):
            thread.join(60)
    assert nuke.progress_tasks[-1].progress == [100]  # one frame (1003) left
    assert group["status"].value().startswith("up to date")


def test_a_roto_on_the_roto_input_drives_the_matte_and_the_cache_key(nuke, plate: str, tmp_path: Path) -> None:
    """A shape on the node's second input (``roto``, a Roto node's alpha; here a Read of one
    written as RGBA with black RGB) is written into the cache entry through the internal
    ``roto_write`` and the matte is render's with that roto; a farm chunk writes its own frames of
    it; changing or disconnecting the roto makes the node stale, reconnecting it finds the cache."""
    import pomagan_post
    from pomagan_nuke import node

    shape = np.zeros((24, 40, 4), np.float32)
    shape[4:20, 8:26, 3] = 1.0
    for frame in FRAMES:
        write_file(tmp_path / f"shape.{frame:04d}.exr", shape, "half", channels=("R", "G", "B", "A"))
    group = _setup(nuke, plate, tmp_path)
    with group:
        roto_input, roto_write = nuke.toNode("roto"), nuke.toNode("roto_write")
    assert roto_write.input(0) is roto_input and roto_write["disable"].value() is True
    assert roto_write["channels"].value() == "alpha"
    node.render(group)
    plain_key = group["cache_key"].value()
    shape_read = nuke.nodes.Read(name="shape_read", file=str(tmp_path / "shape.####.exr"),
                                 first=FRAMES[0], last=FRAMES[-1])
    group.setInput(node.ROTO_INPUT, shape_read)
    nuke.fire_knob_changed(group, "inputChange")
    assert group["status"].value().startswith("stale")

    assert farm_chunk(nuke, group, 1001, 1002) == 0
    assert group["cache_key"].value() == plain_key  # (1003 missing: the new entry is not complete)
    report = node.render(group)
    assert report.written == [1003] and report.skipped_existing == [1001, 1002]
    assert [e for e in nuke.executed if e[0].endswith("roto_write")] == [
        ("POMAGAN.roto_write", 1001, 1002), ("POMAGAN.roto_write", 1003, 1003)]
    key = group["cache_key"].value()
    assert key not in ("", plain_key) and group["status"].value().startswith("up to date")
    folder = tmp_path / "cache" / key
    assert sorted(p.name for p in folder.glob("roto.*.exr")) == [f"roto.{f}.exr" for f in FRAMES]
    want = pomagan_post.render(plate, frames="1001-1003", output_dir=tmp_path / "want", outputs=["alpha"],
                               format="exr", device="cpu", working_size=32, roto=tmp_path / "shape.####.exr")
    assert want.written == list(FRAMES)
    for frame in FRAMES:
        got = read_file(folder / f"alpha.{frame}.exr")[0][..., 0]
        np.testing.assert_array_equal(got, read_file(tmp_path / "want" / f"plate_alpha.{frame}.exr")[0][..., 0])
        plain = read_file(tmp_path / "cache" / plain_key / f"alpha.{frame}.exr")[0][..., 0]
        assert np.abs(got - plain).max() > 0.2  # the roto's matte, not the network's guess

    shape_read["file"].setValue(str(tmp_path / "other.####.exr"))  # another roto: stale
    nuke.fire_knob_changed(group, "showPanel")
    assert group["status"].value().startswith("stale")
    shape_read["file"].setValue(str(tmp_path / "shape.####.exr"))
    group.setInput(node.ROTO_INPUT, None)  # disconnected: the plain matte's entry again
    nuke.fire_knob_changed(group, "inputChange")
    assert group["cache_key"].value() == plain_key and group["status"].value().startswith("up to date")
    group.setInput(node.ROTO_INPUT, shape_read)
    nuke.fire_knob_changed(group, "inputChange")
    assert group["cache_key"].value() == key and group["status"].value().startswith("up to date")


def test_temporal_steadies_as_render_does_and_a_farm_chunk_reads_its_neighbours(nuke, tmp_path: Path) -> None:
    """The ``temporal`` knob is render's ``temporal``: the node's matte equals render's over the
    same plate; a farm chunk through the internal Write writes the plate's neighbours beyond its
    range too, so its frames match a whole render's; the knob changes the cache key (and a node
    saved before it existed keeps its key); a bad radius is said on the node."""
    import pomagan_post
    from pomagan_nuke import core, node

    from .test_temporal import moving_square

    frames = list(range(1001, 1007))
    images, _ = moving_square(frames=len(frames))
    for frame, image in zip(frames, images):
        write_file(tmp_path / f"move.{frame:04d}.exr", image, "half")
    plate = str(tmp_path / "move.####.exr")
    group = _setup(nuke, plate, tmp_path)
    group.input(0)["last"].setValue(frames[-1])
    plain_key = core.cache_key(*_key_parts(node, group))
    assert "temporal" not in node.read_settings(group).matte_settings()
    assert group["temporal"].value() == 0 and "temporal" in core.SETTINGS_KNOBS
    group["temporal"].setValue(1)
    report = node.render(group)
    assert report.written == frames
    key = group["cache_key"].value()
    assert key not in ("", plain_key) and group["status"].value().startswith("up to date")
    want = pomagan_post.render(plate, output_dir=tmp_path / "want", outputs=["alpha"], format="exr",
                               device="cpu", working_size=32, temporal=1)
    own = pomagan_post.render(plate, output_dir=tmp_path / "own", outputs=["alpha"], format="exr",
                              device="cpu", working_size=32)
    assert want.written == own.written == frames
    alpha = lambda folder, name, frame: read_file(folder / f"{name}.{frame}.exr")[0][..., 0]  # noqa: E731
    for frame in frames:
        np.testing.assert_array_equal(alpha(tmp_path / "cache" / key, "alpha", frame),
                                      alpha(tmp_path / "want", "move_alpha", frame))
    assert max(np.abs(alpha(tmp_path / "want", "move_alpha", f) - alpha(tmp_path / "own", "move_alpha", f)).max()
               for f in frames) > 0.01  # steadied: not each frame's own matte

    # Through the internal Write (a tree upstream), in farm chunks: each writes its plate and the
    # neighbour beyond each end that lies in the input's range.
    tree = nuke.nodes.Grade(name="tree")
    tree.setInput(0, group.input(0))
    group.setInput(0, tree)
    nuke.fire_knob_changed(group, "inputChange")
    assert group["status"].value() == "stale: press Render"
    assert farm_chunk(nuke, group, 1001, 1002) == 0
    assert farm_chunk(nuke, group, 1005, 1006) == 0
    report = node.render(group)
    assert report.written == [1003, 1004] and report.skipped_existing == [1001, 1002, 1005, 1006]
    assert [e for e in nuke.executed if e[0].endswith("cache_write")] == [
        ("POMAGAN.cache_write", 1001, 1003), ("POMAGAN.cache_write", 1004, 1006)]
    chunked = tmp_path / "cache" / group["cache_key"].value()
    for frame in frames:
        np.testing.assert_allclose(alpha(chunked, "alpha", frame), alpha(tmp_path / "want", "move_alpha", frame),
                                   atol=2e-3)

    # A roto is needed for the neighbours too: a chunk writes it for them.
    shape = np.zeros((64, 96, 4), np.float32)
    shape[16:48, 20:60, 3] = 1.0
    for frame in frames:
        write_file(tmp_path / f"shape.{frame:04d}.exr", shape, "half", channels=("R", "G", "B", "A"))
    group.setInput(node.ROTO_INPUT, nuke.nodes.Read(name="shape_read", file=str(tmp_path / "shape.####.exr"),
                                                    first=frames[0], last=frames[-1]))
    assert farm_chunk(nuke, group, 1003, 1003) == 0
    assert nuke.executed[-2:] == [("POMAGAN.cache_write", 1002, 1004), ("POMAGAN.roto_write", 1002, 1004)]
    group.setInput(node.ROTO_INPUT, None)

    group["temporal"].setValue(9)
    nuke.fire_knob_changed(group, "temporal")
    assert group["status"].value() == "error: temporal radius must be 0 (off) to 8 frames, got 9"
    del group._knobs["temporal"]  # a node saved before the knob existed: off, its old key
    group.setInput(0, tree.input(0))
    nuke.fire_knob_changed(group, "inputChange")
    assert node.read_settings(group).temporal == 0 and core.cache_key(*_key_parts(node, group)) == plain_key


def _key_parts(node, group):
    settings = node.read_settings(group)
    return node.plan_source(group, settings)[1], settings


def farm_chunk(nuke, group, first: int, last: int) -> int:
    from pomagan_nuke import farm

    return farm.render_chunk(group.name(), first, last)


def test_farm_renders_one_chunk(nuke, plate: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from pomagan_nuke import farm

    group = _setup(nuke, plate, tmp_path)
    assert farm.main(["shot.nk", "POMAGAN", "--frames=1001-1002"]) == 0  # as the README writes it
    assert nuke.opened_scripts == ["shot.nk"]
    assert "2 written" in capsys.readouterr().out
    assert group["cache_key"].value() == ""  # 1003 still missing: not complete yet
    # `nuke -t farm.py shot.nk POMAGAN 1003`: Nuke takes the trailing range as its own frame
    # range and leaves it out of sys.argv; it is found at the end of nuke.rawArgs
    nuke.rawArgs = ["nuke", "-t", "farm.py", "shot.nk", "POMAGAN", "1003"]
    try:
        assert farm.main(["shot.nk", "POMAGAN"]) == 0
    finally:
        del nuke.rawArgs
    assert group["cache_key"].value() != ""  # the chunks share one cache entry
    assert farm.main(["shot.nk", "nope", "1001-1003"]) == 2
    assert farm.main(["shot.nk", "POMAGAN"]) == 2
    assert farm.main(["shot.nk", "POMAGAN", "1001-1003"]) == 0  # a direct call with a bare range


def test_menu_and_init(nuke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POMAGAN_SITE_PACKAGES", str(tmp_path))
    exec((PLUGIN / "init.py").read_text(), {"__file__": str(PLUGIN / "init.py")})
    assert str(tmp_path) in sys.path and nuke.menus == {}  # no GUI work in init.py
    sys.path.remove(str(tmp_path))
    exec((PLUGIN / "menu.py").read_text(), {"__file__": str(PLUGIN / "menu.py")})
    (name, command), = nuke.menus["Nodes"].commands
    assert name == "POMAGAN/POMAGAN Matte"
    exec(command, {})
    assert nuke.toNode("POMAGAN") is not None
