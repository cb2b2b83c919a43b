"""``pomagan-post render`` through click's CliRunner: outputs, messages and exit codes.

Every bad input gives exactly one ``pomagan-post: error: ...`` line on stderr, nothing on
stdout, no traceback, and the error's exit code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pomagan_post import Engine, renderer
from pomagan_post.cli import main

from .conftest import TEST_DEVICE
from .imaging import (constant_matte_engine, cut_short, make_exr_plate, ramp, read_file, write_avi_with_dropped_frames,
                      write_clip, write_file)


@pytest.fixture
def fast_engine(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> Engine:
    """The CLI builds its engine through renderer.build_engine; hand it the module's one."""
    monkeypatch.setattr(renderer, "build_engine", lambda *args, **kwargs: engine)
    return engine


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["render", *map(str, args)], env=env)


def test_defaults_write_next_to_the_input_and_say_where(tmp_path: Path, fast_engine: Engine) -> None:
    pattern, _ = make_exr_plate(tmp_path)
    result = run(pattern)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # stdout may be a pipe: messages and progress go to stderr
    out = tmp_path / "plate_pomagan"
    assert f"alpha: {out / 'plate_alpha.####.exr'}" in result.stderr
    assert f"fg: {out / 'plate_fg.####.exr'} (premultiplied)" in result.stderr
    assert "wrote 3 frame(s)" in result.stderr
    # progress: not a terminal here (a farm's task log), so whole lines, no carriage returns
    assert re.search(r"^plate: 3/3 frames \(100%\) in 0:00:0\d, [0-9.]+ frames/s$", result.stderr, re.M)
    assert "\r" not in result.stderr
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert len(before) == 6

    again = run(pattern, "--skip-existing", "--quiet")
    assert again.exit_code == 0 and again.stderr == ""
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing redone


def test_options_reach_the_render(tmp_path: Path, fast_engine: Engine) -> None:
    data = ramp(40, 40, 3)
    for frame in (1, 2, 3, 4):
        write_file(tmp_path / f"p.{frame:04d}.png", data, "uint16")
    result = run(tmp_path / "p.%04d.png", "--frames", "2-4x2", "-o", tmp_path / "o", "--straight",
                 "--format", "exr", "--outputs", "fg", "--comp", "0.5,0.5,0.5", "--fg-name",
                 "rgba.####.exr", "--colorspace", "srgb", "-q")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "p_comp.0002.exr", "p_comp.0004.exr", "rgba.0002.exr", "rgba.0004.exr"]


def test_a_video_codec_for_image_outputs_is_said_to_do_nothing(tmp_path: Path, fast_engine: Engine) -> None:
    write_file(tmp_path / "p.0001.png", ramp(40, 40, 3), "uint16")
    result = run(tmp_path / "p.0001.png", "--codec", "ffv1", "-o", tmp_path / "o")
    assert result.exit_code == 0, result.stderr
    assert ("--codec ffv1 is for video outputs; these outputs are image files, so it has no effect"
            in result.stderr)
    assert "--codec" not in run(tmp_path / "p.0001.png", "-o", tmp_path / "o2").stderr


def test_display_window_flag_gives_exr_outputs_the_picture(tmp_path: Path, fast_engine: Engine) -> None:
    """An overscan EXR plate: EXR outputs keep its data window by default, the display window
    alone with --display-window."""
    from .imaging import read_file

    write_file(tmp_path / "over.0001.exr", ramp(30, 40, 3), "half", origin=(-4, -3), display=(0, 0, 32, 24))
    for flag, folder in (((), "kept"), (("--display-window",), "picture")):
        assert run(tmp_path / "over.####.exr", *flag, "-o", tmp_path / folder, "-q").exit_code == 0
    _, kept = read_file(tmp_path / "kept" / "over_alpha.0001.exr")
    _, picture = read_file(tmp_path / "picture" / "over_alpha.0001.exr")
    assert (kept.x, kept.y, kept.width, kept.height) == (-4, -3, 40, 30)
    assert (picture.x, picture.y, picture.width, picture.height) == (0, 0, 32, 24)


def test_real_engine_from_weights_env(tmp_path: Path) -> None:
    from pomagan_post import bundled_checkpoint_path

    write_file(tmp_path / "one.png", ramp(40, 48, 3), "uint8")
    result = run(tmp_path / "one.png", "--working-size", "32", "--device", "cpu",
                 env={"POMAGAN_WEIGHTS": str(bundled_checkpoint_path())})
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "one_pomagan").iterdir()) == ["one_alpha.png", "one_fg.png"]


def _plate(tmp_path: Path) -> Path:
    return make_exr_plate(tmp_path, frames=(1, 2, 3))[0]


def _gap(tmp_path: Path) -> Path:
    for frame in (1, 2, 4):
        write_file(tmp_path / f"g.{frame:04d}.png", ramp(40, 40, 3), "uint8")
    return tmp_path / "g.####.png"


def _corrupt(tmp_path: Path) -> Path:
    pattern = _plate(tmp_path)
    (tmp_path / "plate.0002.exr").write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 64)
    return pattern


def _two_sequences(tmp_path: Path) -> Path:
    for name in ("a", "b"):
        write_file(tmp_path / f"{name}.0001.png", ramp(4, 4, 3), "uint8")
    return tmp_path


def _sound_file(t: Path) -> Path:
    (t / "take.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    return t / "take.wav"


def _garbage_video(tmp_path: Path) -> Path:
    (tmp_path / "clip.mov").write_bytes(b"not a movie at all" * 10)
    return tmp_path / "clip.mov"


def _garbage_weights(tmp_path: Path) -> str:
    (tmp_path / "w.safetensors").write_bytes(b"\x08\0\0\0\0\0\0\0{}garbage")
    return str(tmp_path / "w.safetensors")


BAD: list[tuple[str, Callable[[Path], list], str, int]] = [
    ("missing folder", lambda t: [t / "nowhere" / "p.####.exr"], "folder not found", 2),
    ("no frames", lambda t: [t / "nothing.####.exr"], "no frames of", 3),
    ("missing file", lambda t: [t / "nothing.exr"], "input not found", 2),
    ("not an image", lambda t: [(t / "notes.txt").write_text("x") and t / "notes.txt"],
     "notes.txt: not a picture or video this tool reads", 4),
    ("two sequences", lambda t: [_two_sequences(t)], "holds 2 sequences", 2),
    ("bad range", lambda t: [_plate(t), "--frames", "10-1"], "frame range", 2),
    ("range outside", lambda t: [_plate(t), "--frames", "50-60"], "none of the requested frames", 3),
    ("gap", lambda t: [_gap(t)], "missing frames 3 of", 3),
    ("corrupt frame", lambda t: [_corrupt(t)], "frame 2", 3),
    ("overwrite input", lambda t: [_plate(t), "-o", t, "--alpha-name", "plate.####.exr"],
     "would overwrite an input", 2),
    ("same output twice", lambda t: [_plate(t), "--alpha-name", "x.#.exr", "--fg-name", "x.#.exr"],
     "both write", 2),
    ("unwritable ext", lambda t: [_plate(t), "--alpha-name", "m.####.bmp"], "cannot write", 4),
    ("bad format", lambda t: [_plate(t), "--format", "gif"], "unknown format 'gif'", 2),
    ("bad codec", lambda t: [_plate(t), "--codec", "h265"], "unknown codec 'h265'", 2),
    ("bad outputs", lambda t: [_plate(t), "--outputs", "alpha,mask"], "outputs must be", 2),
    ("bad on-error", lambda t: [_plate(t), "--on-error", "retry"], "on-error must be", 2),
    ("bad exr compression", lambda t: [_plate(t), "--exr-compression", "jpeg"],
     "unknown EXR compression 'jpeg'; use one of zip, zips, piz", 2),
    ("bad colorspace", lambda t: [_plate(t), "--colorspace", "bogus"], "unknown colour space", 2),
    ("bad comp", lambda t: [_plate(t), "--comp", "plaid"], "neither a colour", 2),
    ("bad batch", lambda t: [_plate(t), "--batch-size", "0"], "batch size", 2),
    ("bad device", lambda t: [_plate(t), "--device", "tpu"], "unknown device", 2),
    ("bad precision", lambda t: [_plate(t), "--precision", "fp8"], "unknown precision", 2),
    ("weights missing", lambda t: [_plate(t), "--weights", t / "none.safetensors"], "none.safetensors", 5),
    ("weights corrupt", lambda t: [_plate(t), "--weights", _garbage_weights(t)], "w.safetensors", 5),
    ("garbage video", lambda t: [_garbage_video(t)], "clip.mov", 4),
    ("sound file", lambda t: [_sound_file(t)], "take.wav: a sound file, with no pictures to matte", 2),
]
if not torch.cuda.is_available():
    BAD.append(("no cuda", lambda t: [_plate(t), "--device", "cuda"], "CUDA is not available", 6))


@pytest.mark.parametrize("case, make_args, message, code", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_an_exit_code(
    tmp_path: Path, case: str, make_args: Callable[[Path], list], message: str, code: int
) -> None:
    result = run(*make_args(tmp_path), "--working-size", "32", "-q")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("pomagan-post: error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_skip_lists_bad_frames_at_the_end_and_exits_non_zero(tmp_path: Path, fast_engine: Engine) -> None:
    result = run(_gap(tmp_path), "--on-error", "skip")
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert lines[-2] == "pomagan-post: frame 3 failed: missing file"
    assert lines[-1] == "pomagan-post: error: 1 frame(s) not rendered: 3"
    assert sorted(p.name for p in (tmp_path / "g_pomagan").iterdir()) == [
        f"g_{k}.{f:04d}.png" for k in ("alpha", "fg") for f in (1, 2, 4)]


def test_skipped_frames_are_named_once_with_their_reason(tmp_path: Path, fast_engine: Engine) -> None:
    """One line per bad frame, each reason on that line (OpenImageIO's several error lines
    joined), the frame number not repeated."""
    for frame in (1, 2, 3, 4):
        write_file(tmp_path / f"b.{frame:04d}.png", ramp(40, 30 if frame == 2 else 40, 3), "uint8")
    data = (tmp_path / "b.0003.png").read_bytes()
    (tmp_path / "b.0003.png").write_bytes(data[: len(data) // 2])
    result = run(tmp_path / "b.####.png", "--on-error", "skip", "-q")
    assert result.exit_code == 3
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("pomagan-post:")]
    assert lines[0] == "pomagan-post: frame 2 failed: b.0002.png is 30x40, the sequence is 40x40 (frame 1)"
    assert lines[1].startswith("pomagan-post: frame 3 failed: cannot read " + str(tmp_path / "b.0003.png") + ": ")
    assert lines[2] == "pomagan-post: error: 2 frame(s) not rendered: 2-3" and len(lines) == 3
    assert sorted(p.name for p in (tmp_path / "b_pomagan").iterdir()) == [
        f"b_{k}.{f:04d}.png" for k in ("alpha", "fg") for f in (1, 4)]


def test_one_frame_of_a_sequence_says_how_to_render_it_as_that_frame(tmp_path: Path, fast_engine: Engine) -> None:
    """A single file that is one frame of a sequence on disk renders as a still and says how to
    get the sequence's names instead; a lone numbered image says nothing."""
    gap = _gap(tmp_path)  # g.0001, g.0002, g.0004
    result = run(tmp_path / "g.0002.png")
    assert result.exit_code == 0, result.stderr
    assert ("g.0002.png is frame 2 of g.####.png (3 frames on disk); rendered as a single image. To "
            "render it as that frame of the sequence (the names and folder a render of the whole shot "
            "uses, so --skip-existing keeps it): g.####.png --frames 2") in result.stderr
    assert sorted(p.name for p in (tmp_path / "g.0002_pomagan").iterdir()) == ["g.0002_alpha.png", "g.0002_fg.png"]
    assert run(gap, "--frames", "2", "-q").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "g_pomagan").iterdir()) == ["g_alpha.0002.png", "g_fg.0002.png"]
    lone = tmp_path / "lone"
    lone.mkdir()
    write_file(lone / "take.0007.png", ramp(40, 40, 3), "uint8")
    result = run(lone / "take.0007.png")
    assert result.exit_code == 0 and "frame 7 of" not in result.stderr


def test_several_inputs_render_in_turn_and_a_bad_one_does_not_stop_the_rest(tmp_path: Path,
                                                                           fast_engine: Engine) -> None:
    first, second = tmp_path / "one.png", tmp_path / "two.png"
    write_file(first, ramp(40, 40, 3), "uint8")
    write_file(second, ramp(40, 48, 3, seed=1), "uint8")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = run(first, tmp_path / "bad.png", second, tmp_path / "missing.png", "-o", out)
    assert result.exit_code == 3, result.stderr  # the first failure's code
    assert sorted(p.name for p in out.iterdir()) == ["one_alpha.png", "one_fg.png", "two_alpha.png", "two_fg.png"]
    lines = result.stderr.splitlines()
    assert f"[1/4] {first}" in lines and f"[4/4] {tmp_path / 'missing.png'}" in lines
    # each error line names its input once (here the messages name them already)
    assert any(line.startswith(f"pomagan-post: error: frame 0: cannot read {tmp_path / 'bad.png'}: ")
               for line in lines)
    assert f"pomagan-post: error: input not found: {tmp_path / 'missing.png'}" in lines
    assert lines[-1] == (f"pomagan-post: error: 2 of 4 inputs not fully rendered: {tmp_path / 'bad.png'} (exit 3), "
                         f"{tmp_path / 'missing.png'} (exit 2)")
    again = run(first, second, "-o", out, "--skip-existing", "-q")
    assert again.exit_code == 0 and again.stderr == ""
    # refused before any work: one name for every input's outputs, or two inputs of one name
    named = run(first, second, "--alpha-name", "m.png", "-q")
    assert named.exit_code == 2 and "--alpha-name names one shot's outputs; with 2 inputs" in named.stderr
    (tmp_path / "x").mkdir()
    write_file(tmp_path / "x" / "one.png", ramp(40, 40, 3), "uint8")
    clash = run(first, tmp_path / "x" / "one.png", "-o", tmp_path / "both", "-q")
    assert clash.exit_code == 2 and "would both write one_* into" in clash.stderr
    assert not (tmp_path / "both").exists()


def test_frames_in_the_plates_timecode(tmp_path: Path, fast_engine: Engine) -> None:
    """--frames in timecode (as an editor reads it off the shot) picks the frames whose
    timecode it is: the plate starts at 01:00:00:00 on frame 1001."""
    pattern, _ = make_exr_plate(tmp_path)
    result = run(pattern, "--frames", "01:00:00:01-01:00:00:02", "-q")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "plate_pomagan").iterdir()) == [
        f"plate_{k}.{f}.exr" for k in ("alpha", "fg") for f in (1002, 1003)]
    early = run(pattern, "--frames", "00:59:59:23-01:00:00:01", "-q")
    assert early.exit_code == 2 and "00:59:59:23 is before plate.####.exr's first frame (01:00:00:00)" in early.stderr


def test_exr_compression_is_chosen_and_lossless_by_default(tmp_path: Path, fast_engine: Engine) -> None:
    """--exr-compression zips (Nuke's Write default) gives the same pixels as the default zip."""
    pattern, _ = make_exr_plate(tmp_path)
    assert run(pattern, "-o", tmp_path / "zip", "-q").exit_code == 0
    assert run(pattern, "-o", tmp_path / "zips", "--exr-compression", "zips", "-q").exit_code == 0
    for kind in ("alpha", "fg"):
        default, spec = read_file(tmp_path / "zip" / f"plate_{kind}.1002.exr")
        single, spec_s = read_file(tmp_path / "zips" / f"plate_{kind}.1002.exr")
        assert spec.get_string_attribute("compression") == "zip"
        assert spec_s.get_string_attribute("compression") == "zips"
        np.testing.assert_array_equal(default, single)


def test_help_states_the_alpha_convention() -> None:
    result = CliRunner().invoke(main, ["render", "--help"])
    assert result.exit_code == 0
    assert "--premultiplied / --straight" in result.output
    assert "premultiplied for EXR" in result.output and "straight for PNG" in result.output


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_cleanly_and_skip_existing_finishes(tmp_path: Path, sig: str) -> None:
    """A render farm's kill (SIGTERM) or Ctrl-C mid-render: exit 128 + the signal with a one-line
    'stopped' message, no partial file left, every frame file written complete; --skip-existing
    renders only the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from .imaging import read_file

    n = 60
    for frame in range(1, n + 1):
        write_file(tmp_path / f"s.{frame:04d}.png", ramp(48, 64, 3, seed=frame), "uint8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pomagan_post", "render", str(tmp_path / "s.####.png"), "-o", str(out),
           "--format", "exr", "--device", "cpu", "--batch-size", "1", "--writers", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    report = tmp_path / "report.json"
    proc = subprocess.Popen([*cmd, "--working-size", "384", "--report", str(report)], stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.time() + 120
    while not (out.is_dir() and len(list(out.glob("s_fg.*.exr"))) >= 2) and time.time() < deadline \
            and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]  # still rendering when the signal comes
    signum = signal.Signals[sig]
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert f"{sig}: stopping: frames written so far are kept" in err  # said when it comes, not at the end
    assert f"pomagan-post: stopped: {sig};" in err and "--skip-existing" in err and "Traceback" not in err
    names = sorted(p.name for p in out.iterdir())
    assert not [name for name in names if name.startswith(".") or "partial" in name]
    assert 2 <= len(names) < 2 * n
    for path in out.iterdir():  # whatever was written is whole
        assert read_file(path)[0].shape[:2] == (48, 64)
    # the report says what the stopped render wrote: the frames whose files are on disk
    import json

    (entry,) = json.loads(report.read_text())
    assert entry["exit_code"] == 128 + signum and entry["ok"] is False and f"s.####.png: {sig}; " in entry["error"]
    assert entry["frames"] == list(range(1, n + 1)) and entry["failed"] == {}
    on_disk = {int(p.name.split(".")[1]) for p in out.glob("s_alpha.*.exr")}
    assert entry["written"] and set(entry["written"]) == on_disk
    assert on_disk == {int(p.name.split(".")[1]) for p in out.glob("s_fg.*.exr")}

    again = subprocess.run([*cmd, "--working-size", "384", "--skip-existing", "--quiet"], capture_output=True,
                           text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    done = sorted(p.name for p in out.iterdir())
    assert done == sorted(f"s_{kind}.{frame:04d}.exr" for kind in ("alpha", "fg") for frame in range(1, n + 1))


def test_report_of_a_render_stopped_by_a_bad_frame_lists_what_it_wrote(
        tmp_path: Path, fast_engine: Engine) -> None:
    """A render that stops at an unreadable frame (--on-error stop): the report holds the
    frames written before it and the frame that stopped it with its reason, beside the error."""
    import json

    for frame in range(1, 7):
        write_file(tmp_path / f"s.{frame:04d}.png", ramp(40, 48, 3, seed=frame), "uint8")
    whole = (tmp_path / "s.0004.png").read_bytes()
    (tmp_path / "s.0004.png").write_bytes(whole[: len(whole) // 2])
    report = tmp_path / "report.json"
    result = run(tmp_path / "s.####.png", "--batch-size", "1", "--report", report, "-q")
    assert result.exit_code == 3 and "frame 4: cannot read" in result.stderr
    (entry,) = json.loads(report.read_text())
    assert entry["written"] == [1, 2, 3] and list(entry["failed"]) == ["4"]
    assert entry["failed"]["4"].startswith("frame 4: cannot read") and entry["exit_code"] == 3
    assert sorted(p.name for p in (tmp_path / "s_pomagan").iterdir()) == [
        f"s_{kind}.{frame:04d}.png" for kind in ("alpha", "fg") for frame in (1, 2, 3)]


def test_tta_option_reaches_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    """--tta none (one pass) is the default; --tta flip asks for mirror averaging; anything else
    is refused by name."""
    seen: list[str] = []
    monkeypatch.setattr(renderer, "build_engine", lambda *args: seen.append(args[-1]) or engine)
    write_file(tmp_path / "one.png", ramp(40, 48, 3), "uint8")
    assert run(tmp_path / "one.png", "-q").exit_code == 0
    assert run(tmp_path / "one.png", "-q", "--tta", "flip", "-o", tmp_path / "b").exit_code == 0
    assert seen == ["none", "flip"]
    bad = run(tmp_path / "one.png", "--tta", "rotate")
    assert bad.exit_code == 2 and "'rotate' is not one of 'none', 'flip'" in bad.stderr


def test_a_render_that_writes_nothing_leaves_no_output_folder(tmp_path: Path) -> None:
    """A lone frame that cannot be read: exit 3 naming it, and no empty output folder left behind
    (a folder the user made stays)."""
    good = tmp_path / "good.png"
    write_file(good, ramp(40, 48, 3), "uint8")
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    result = run(broken, "--working-size", "32", "-q")
    assert result.exit_code == 3 and "frame 0: cannot read" in result.stderr, result.stderr
    assert not (tmp_path / "broken_pomagan").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    assert run(broken, "-o", mine, "--working-size", "32", "-q").exit_code == 3
    assert mine.is_dir() and not any(mine.iterdir())


def test_a_video_cut_short_is_named_by_frame_and_skip_finishes_the_rest(
        tmp_path: Path, fast_engine: Engine) -> None:
    """An interrupted copy of a MOV (index first, data cut half-way): render stops naming the
    frames it lacks, after writing the ones it holds; with --on-error skip the output video is
    finished with those frames and the missing ones share one line."""
    import av

    clip = cut_short(write_clip(tmp_path / "shot.mov", n=12, codec="prores_ks",
                                pix_fmt="yuv422p10le", index_first=True))
    stopped = run(clip, "-f", "png", "-o", tmp_path / "png", "-q")
    assert stopped.exit_code == 3
    assert stopped.stderr.strip() == (f"pomagan-post: error: {clip}: frame(s) 5, 6, 7, 8, 9, "
                                      "10, 11 could not be decoded")
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [
        f"shot_cut_{k}.{f:04d}.png" for k in ("alpha", "fg") for f in range(5)]
    skipped = run(clip, "--on-error", "skip", "-o", tmp_path / "mov", "-q")
    assert skipped.exit_code == 3
    assert skipped.stderr.strip().splitlines() == [
        "pomagan-post: frames 5-11 failed: did not decode: the file's data ends before it",
        "pomagan-post: error: 7 frame(s) not rendered: 5-11"]
    assert sorted(p.name for p in (tmp_path / "mov").iterdir()) == ["shot_cut_alpha.mov", "shot_cut_fg.mov"]
    with av.open(str(tmp_path / "mov" / "shot_cut_fg.mov")) as finished:
        assert sum(1 for _ in finished.decode(video=0)) == 5


def test_report_records_each_input_even_when_one_fails(tmp_path: Path, fast_engine: Engine) -> None:
    """--report FILE: a JSON array, an object per input, written even though the run exits
    non-zero: the frames written and the gap with its reason; the input that failed with its
    error and exit code."""
    import json

    gap = _gap(tmp_path)
    report = tmp_path / "farm" / "report.json"
    result = run(gap, tmp_path / "gone.mov", "--on-error", "skip", "--report", report, "-q")
    assert result.exit_code == 3
    first, second = json.loads(report.read_text())
    assert first["input"] == str(gap) and first["ok"] is False and first["exit_code"] == 3
    assert first["frames"] == [1, 2, 3, 4] and first["written"] == [1, 2, 4]
    assert first["failed"] == {"3": "missing file"} and first["alpha_mode"] == "straight"
    assert first["outputs"]["alpha"].endswith("g_alpha.####.png")
    assert second == {"input": str(tmp_path / "gone.mov"), "ok": False,
                      "error": f"input not found: {tmp_path / 'gone.mov'}", "exit_code": 2}
    assert [p.name for p in report.parent.iterdir()] == ["report.json"]  # no temporary left



# --- a compositor's mistakes: nothing of theirs is written over, damaged files are said -----------

def _stills(folder: Path, name: str, frames: range, h: int = 24, w: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        write_file(folder / f"{name}.{frame:04d}.png", ramp(h, w, 3, seed=frame), "uint8")
    return folder / f"{name}.####.png"


def test_an_output_named_like_the_garbage_matte_is_refused(tmp_path: Path, fast_engine: Engine) -> None:
    plate = _stills(tmp_path / "png", "p", range(1, 4))
    roto = _stills(tmp_path / "gm", "roto", range(1, 4))
    before = {p.name: p.read_bytes() for p in roto.parent.iterdir()}
    result = run(plate, "-o", tmp_path / "gm", "--alpha-name", "roto.####.png", "--garbage-matte", roto)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"pomagan-post: error: alpha output {tmp_path / 'gm' / 'roto.0001.png'} "
                                     "would overwrite an input; choose another output folder or name")
    assert {p.name: p.read_bytes() for p in roto.parent.iterdir()} == before


def test_report_never_writes_over_a_picture_or_another_file(tmp_path: Path, fast_engine: Engine) -> None:
    import json

    plate = _stills(tmp_path / "png", "p", range(1, 3))
    frame = tmp_path / "png" / "p.0001.png"
    kept = frame.read_bytes()
    result = run(plate, "--report", frame, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "the report is JSON, not a picture or video" in result.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("shot notes\n")
    result = run(plate, "--report", notes, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "is not an earlier render's report; refusing" in result.stderr
    assert frame.read_bytes() == kept and notes.read_text() == "shot notes\n"
    assert not (tmp_path / "o").exists()
    result = run(plate, "--report", notes / "r.json", "-o", tmp_path / "o")  # a folder it cannot make
    assert result.exit_code == 1 and result.stderr.strip() == (
        f"pomagan-post: error: --report {notes / 'r.json'}: cannot write to {notes}: {notes} is a file, "
        "not a folder")
    assert not (tmp_path / "o").exists()  # said before any work
    report = tmp_path / "report.json"  # an earlier report is replaced by the new one
    assert run(plate, "--report", report, "-o", tmp_path / "o", "-q").exit_code == 0
    assert run(plate, "--report", report, "-o", tmp_path / "o2", "-q").exit_code == 0
    (entry,) = json.loads(report.read_text())
    assert entry["written"] == [1, 2] and entry["outputs"]["alpha"].startswith(str(tmp_path / "o2"))


def test_report_of_a_failed_write_lists_only_the_frames_on_disk(tmp_path: Path, fast_engine: Engine) -> None:
    """A write that fails mid-render (here a folder in the way of frame 2's file): exit 1, one
    line, and the report's ``written`` holds exactly the frames whose files are on disk."""
    import json

    plate = _stills(tmp_path / "png", "p", range(1, 5))
    out = tmp_path / "o"
    (out / "p_alpha.0002.png" / "x").mkdir(parents=True)
    report = tmp_path / "report.json"
    result = run(plate, "-o", out, "--batch-size", "1", "--report", report, "-q")
    assert result.exit_code == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "p_alpha.0002.png" in result.stderr
    (entry,) = json.loads(report.read_text())
    on_disk = sorted(n for n in range(1, 5) if all((out / f"p_{k}.{n:04d}.png").is_file() for k in ("alpha", "fg")))
    assert entry["written"] == on_disk and 2 not in on_disk and entry["exit_code"] == 1


def test_report_of_a_gap_found_before_rendering_names_the_frame(tmp_path: Path, fast_engine: Engine) -> None:
    import json

    plate = _stills(tmp_path / "png", "p", range(1, 5))
    (tmp_path / "png" / "p.0003.png").unlink()
    report = tmp_path / "report.json"
    result = run(plate, "-o", tmp_path / "o", "--report", report, "-q")
    assert result.exit_code == 3
    (entry,) = json.loads(report.read_text())
    assert list(entry["failed"]) == ["3"] and entry["failed"]["3"].startswith("missing frames 3 of")


def test_skip_existing_renders_empty_or_unreadable_outputs_again(tmp_path: Path, fast_engine: Engine) -> None:
    plate = _stills(tmp_path / "png", "p", range(1, 4))
    out = tmp_path / "o"
    assert run(plate, "-o", out, "-q").exit_code == 0
    whole = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "p_fg.0002.png").write_bytes(b"")
    (out / "p_alpha.0003.png").write_bytes(whole["p_alpha.0003.png"][:20])  # the header cut short
    result = run(plate, "-o", out, "--skip-existing")
    assert result.exit_code == 0, result.stderr
    assert "frame(s) 2 on disk cannot be read (empty or damaged): rendered again" in result.stderr
    assert "frame(s) 3 on disk cannot be read (empty or damaged): rendered again" in result.stderr
    assert "skipped 1 frame(s) already rendered" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == whole


def test_float_values_beyond_half_range_are_clamped_not_infinite(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    engine = constant_matte_engine(0.9, TEST_DEVICE)  # the highlight is matted: its foreground is written
    monkeypatch.setattr(renderer, "build_engine", lambda *args, **kwargs: engine)
    data = ramp(24, 32, 3, scale=2.0)
    data[10:14, 10:22] = 1e9  # a float plate's specular highlight, far beyond half float
    write_file(tmp_path / "hot.0001.exr", data, "float")
    assert run(tmp_path / "hot.####.exr", "-o", tmp_path / "o", "-q").exit_code == 0
    fg, spec = read_file(tmp_path / "o" / "hot_fg.0001.exr")
    assert str(spec.format) == "half" and np.isfinite(fg).all()
    np.testing.assert_allclose(fg[..., 3], 0.9, atol=1e-3)
    hot = fg[10:14, 10:22, :3]  # premultiplied: still far beyond 65504
    assert (hot == 65504).all()  # clamped to the largest half, not infinite


def test_an_avis_dropped_frames_are_rendered_as_the_frame_before(tmp_path: Path, fast_engine: Engine) -> None:
    avi = write_avi_with_dropped_frames(tmp_path / "capture.avi")
    result = run(avi, "-f", "png", "-o", tmp_path / "o", "--report", tmp_path / "report.json")
    assert result.exit_code == 0, result.stderr
    assert ("capture.avi: frame(s) 3, 6 hold no picture in the file (dropped when it was recorded or "
            "converted): each repeats the frame before, as players show it") in result.stderr
    assert json.loads((tmp_path / "report.json").read_text())[0]["repeated"] == [3, 6]
    assert len(list((tmp_path / "o").glob("capture_alpha.*.png"))) == 8
    repeated, _ = read_file(tmp_path / "o" / "capture_alpha.0003.png")
    before, _ = read_file(tmp_path / "o" / "capture_alpha.0002.png")
    np.testing.assert_array_equal(repeated, before)


def test_an_inputs_alpha_is_said_unused_and_serves_as_its_own_garbage_matte(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plate carrying a roto in its alpha: the render says the alpha is not used and how to
    use it; given as --garbage-matte too, the matte is kept inside it (0 outside, as the roto)."""
    engine = constant_matte_engine(0.9, TEST_DEVICE)
    monkeypatch.setattr(renderer, "build_engine", lambda *args, **kwargs: engine)
    plate = np.concatenate([ramp(48, 64, 3, seed=1), np.zeros((48, 64, 1), np.float32)], axis=2)
    plate[:, :32, 3] = 1.0  # the roto: the left half
    write_file(tmp_path / "roto.png", plate, "uint8")
    plain = run(tmp_path / "roto.png", "-f", "exr", "-o", tmp_path / "plain")
    assert plain.exit_code == 0, plain.output
    assert ("roto.png: has an alpha channel, not used: the matte is made from the picture alone; to keep "
            "the matte inside that alpha, give the input as --garbage-matte too (or as --roto when it is "
            "the person's shape drawn on their edge)") in plain.stderr
    alpha, _ = read_file(tmp_path / "plain" / "roto_alpha.exr")
    np.testing.assert_allclose(alpha[..., 0], 0.9, atol=2e-3)
    kept = run(tmp_path / "roto.png", "--garbage-matte", tmp_path / "roto.png", "-f", "exr", "-o", tmp_path / "kept")
    assert kept.exit_code == 0 and "has an alpha channel" not in kept.stderr, kept.output
    alpha, _ = read_file(tmp_path / "kept" / "roto_alpha.exr")
    np.testing.assert_allclose(alpha[:, :32, 0], 0.9, atol=2e-3)
    assert np.abs(alpha[:, 32:, 0]).max() == 0.0
    shaped = run(tmp_path / "roto.png", "--roto", tmp_path / "roto.png", "-o", tmp_path / "shaped")
    assert shaped.exit_code == 0 and "has an alpha channel" not in shaped.stderr, shaped.output


def test_a_videos_super_whites_reach_the_foreground(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera's highlights above video white (10-bit luma 1000 of 940: R'G'B' 1.0685) are in
    the foreground of an EXR and of a ProRes output, not clipped to 1.0."""
    import av

    from pomagan_post.io.video import VideoSource

    engine = constant_matte_engine(0.99, TEST_DEVICE)
    monkeypatch.setattr(renderer, "build_engine", lambda *args, **kwargs: engine)
    clip = tmp_path / "hot.mov"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("prores_ks", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv422p10le"
        stream.options = {"profile": "3"}
        stream.codec_context.colorspace, stream.codec_context.color_range = 1, 1  # BT.709, limited
        for i in range(2):
            frame = av.VideoFrame(64, 48, "yuv422p10le")
            luma = np.frombuffer(frame.planes[0], np.uint16).reshape(48, -1)[:, :64]
            luma[:] = 500
            luma[:, :32] = 1000  # the left half above white
            for plane in frame.planes[1:]:
                np.frombuffer(plane, np.uint16)[:] = 512
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    hot = (1000 - 64) / 876
    assert run(clip, "-f", "exr", "-o", tmp_path / "exr", "-q").exit_code == 0
    fg, _ = read_file(tmp_path / "exr" / "hot_fg.0000.exr")
    np.testing.assert_allclose(fg[8:40, 4:24, 3], 0.99, atol=1e-3)
    np.testing.assert_allclose(fg[8:40, 4:24, :3] / 0.99, hot, atol=1e-2)  # (premultiplied)
    assert run(clip, "-o", tmp_path / "mov", "-q").exit_code == 0
    with VideoSource(tmp_path / "mov" / "hot_fg.mov") as written:
        _, rgb = next(iter(written))
    np.testing.assert_allclose(rgb[8:40, 4:24] / 0.99, hot, atol=1e-2)


def test_a_truncated_jpeg_frame_is_reported_by_number(tmp_path: Path, fast_engine: Engine) -> None:
    import cv2

    folder = tmp_path / "jpg"
    folder.mkdir()
    for frame in (1, 2, 3):
        cv2.imwrite(str(folder / f"j.{frame:04d}.jpg"), (ramp(48, 64, 3, seed=frame) * 255).astype(np.uint8))
    cut = folder / "j.0002.jpg"
    cut.write_bytes(cut.read_bytes()[:-400])
    result = run(folder / "j.####.jpg", "-o", tmp_path / "o", "--batch-size", "1")
    assert result.exit_code == 3
    assert f"pomagan-post: error: frame 2: cannot read {cut}: " in result.stderr
    assert "Premature end of JPEG file" in result.stderr


@pytest.mark.parametrize("name", ["logo@2x.png", "take#3.png", "grade 50%d.png"])
def test_a_file_whose_name_holds_placeholder_characters_is_that_file(
        tmp_path: Path, fast_engine: Engine, name: str) -> None:
    folder = tmp_path / "v@2"  # and a folder named so
    folder.mkdir()
    write_file(folder / name, ramp(24, 32, 3), "uint8")
    result = run(folder / name, "-q")
    assert result.exit_code == 0, result.stderr
    stem = name[:-4]
    assert sorted(p.name for p in (folder / f"{stem}_pomagan").iterdir()) == [f"{stem}_alpha.png", f"{stem}_fg.png"]


def test_files_numbered_otherwise_are_named_not_skipped_silently(tmp_path: Path, fast_engine: Engine) -> None:
    for name in ("n.-0002.png", "n.-0001.png", "n.0000.png", "n.0001.png"):
        write_file(tmp_path / name, ramp(24, 32, 3), "uint8")
    result = run(tmp_path / "n.####.png", "-o", tmp_path / "o")
    assert result.exit_code == 0, result.stderr
    assert (f"{tmp_path / 'n.####.png'}: 2 file(s) of its name numbered otherwise than its 4-digit frames are "
            "not part of it (e.g. n.-0001.png; a negative frame of #### is -002, not -0002)") in result.stderr
    assert "wrote 2 frame(s)" in result.stderr


def test_a_comp_output_without_a_background_and_a_file_as_output_folder_are_refused(
        tmp_path: Path, fast_engine: Engine) -> None:
    write_file(tmp_path / "still.png", ramp(24, 32, 3), "uint8")
    for args in (["--outputs", "comp"], ["--outputs", "alpha,comp"], ["--comp-name", "c.png"]):
        result = run(tmp_path / "still.png", "-o", tmp_path / "o", *args)
        assert result.exit_code == 2 and "a comp output needs --comp COLOUR|IMAGE" in result.stderr, args
    result = run(tmp_path / "still.png", "-o", tmp_path / "result.png")
    assert result.exit_code == 2 and "-o takes a folder, not a file name" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.png"]


def test_roto_errors_name_the_roto_and_the_frame(tmp_path: Path, fast_engine: Engine) -> None:
    """A roto of another size, a roto sequence without a frame the render needs (with
    --temporal, a neighbour's too), several inputs, and a --skip-existing resume with another
    roto: one line each, the right exit code, no output written where the render cannot start."""
    plate = _stills(tmp_path / "png", "p", range(1, 5), h=40, w=48)
    shape = np.zeros((40, 48, 1), np.float32)
    shape[:, :20] = 1.0
    for frame in (1, 2, 3):
        write_file(tmp_path / f"r.{frame:04d}.png", shape, "uint8")
    write_file(tmp_path / "small.png", np.ones((10, 12, 1), np.float32), "uint8")
    write_file(tmp_path / "other.png", shape, "uint8")

    small = run(plate, "--roto", tmp_path / "small.png", "-o", tmp_path / "a")
    assert small.exit_code == 2
    assert small.stderr.strip() == f"pomagan-post: error: roto {tmp_path / 'small.png'} is 12x10, the shot is 48x40"
    assert not (tmp_path / "a").exists()

    missing = run(plate, "--roto", tmp_path / "r.####.png", "-o", tmp_path / "b", "-q")
    assert missing.exit_code == 3
    assert missing.stderr.strip() == f"pomagan-post: error: roto: missing frames 4 of {tmp_path / 'r.####.png'}"
    assert not (tmp_path / "b").exists()  # refused before any work

    neighbour = run(plate, "--roto", tmp_path / "r.####.png", "--frames", "3", "--temporal", "1",
                    "-o", tmp_path / "c", "-q")
    assert neighbour.exit_code == 3 and neighbour.stderr.strip().endswith("missing frames 4 of "
                                                                          f"{tmp_path / 'r.####.png'}")
    chunk = run(plate, "--roto", tmp_path / "r.####.png", "--frames", "1-2", "--temporal", "1",
                "-o", tmp_path / "c", "-q")
    assert chunk.exit_code == 0, chunk.stderr

    several = run(plate, plate, "--roto", tmp_path / "other.png")
    assert several.exit_code == 2
    assert "--roto is one shot's shape; 2 inputs were given" in several.stderr

    clip = write_clip(tmp_path / "clip.mp4", n=3, size=(48, 40))  # a video numbers its frames from 0
    for frame in (1001, 1002, 1003):
        write_file(tmp_path / f"nk.{frame:04d}.png", shape, "uint8")
    unnumbered = run(clip, "--roto", tmp_path / "nk.####.png", "-o", tmp_path / "v", "-q")
    assert unnumbered.exit_code == 3
    assert unnumbered.stderr.strip().endswith(
        "missing frames 0-2 of " f"{tmp_path / 'nk.####.png'} (its files start at 1001; the shot is a video, numbered "
        "from 0 unless --start-frame numbers it: --start-frame 1001 lines them up)")
    numbered = run(clip, "--roto", tmp_path / "nk.####.png", "--start-frame", "1001", "-o", tmp_path / "v", "-q")
    assert numbered.exit_code == 0, numbered.stderr

    done = run(plate, "--roto", tmp_path / "other.png", "-o", tmp_path / "d", "-q")
    assert done.exit_code == 0, done.stderr
    resumed = run(plate, "--roto", tmp_path / "r.####.png", "-o", tmp_path / "d", "--skip-existing", "-q")
    assert resumed.exit_code == 2
    assert "roto other.png (this render: r.####.png)" in resumed.stderr
