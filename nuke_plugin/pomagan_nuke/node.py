"""The POMAGAN node in Nuke: a Group built from Python. Thin: decisions live in :mod:`.core`.

Inside the group::

    Input1 ──┬──────────────────────────────► Switch(0: plate, stale or not rendered)
             ├─► Write "cache_write" (disabled; runs only on Render, for non-EXR/DPX inputs)
             └─► Copy "copy_alpha" (B) ◄─ Read "alpha_read" (A: rgba.alpha) ──► Switch(1: alpha)
                      └─► Copy "copy_rgb" (B) ◄─ Read "fg_read" (A: rgb) ──► Switch(2: rgba)
    Switch ─► Output1
    roto (input 1, optional) ─► Write "roto_write" (disabled; its alpha, written on Render)

A shape on the ``roto`` input (a Roto node's alpha) is rendered into the cache entry and given
to ``pomagan_post.render`` as ``roto``: the network takes where the person is from it.

``copy_alpha`` is the plate with the predicted matte in rgba.alpha; ``copy_rgb`` adds the
premultiplied foreground in rgba.rgb. The Switch shows the plate untouched while the cache is
stale, so a stale matte is never used silently.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import nuke

from . import core

__all__ = ["create_node", "build", "knob_changed", "refresh", "render", "render_button",
           "read_settings", "KNOB_NAMES", "TAG_KNOB"]

TAG_KNOB = "pomagan_node"
#: User knobs, in panel order.
KNOB_NAMES = ("pomagan", "weights", "variant_info", "device", "precision", "working_size", "tta", "temporal",
              "output", "use_input_range", "first_frame", "last_frame", "cache_dir", "read_upstream",
              "render", "status", "cache_key", TAG_KNOB)
SWITCH_PLATE, SWITCH_ALPHA, SWITCH_RGBA = 0, 1, 2
#: The group's input for a roto of the person (optional).
ROTO_INPUT = 1
_RENDERING: set[str] = set()
_KNOB_CHANGED = "import pomagan_nuke.node\npomagan_nuke.node.knob_changed()"


# --- building ---------------------------------------------------------------------------------

def create_node() -> Any:
    """Create a POMAGAN node at the current place in the DAG (the Nodes menu entry)."""
    group = nuke.createNode("Group", inpanel=False)
    build(group)
    return group


def build(group: Any) -> Any:
    """Add the knobs and the internal nodes to an empty Group."""
    group.setName("POMAGAN")
    knobs = [
        nuke.Tab_Knob("pomagan", "POMAGAN"),
        nuke.File_Knob("weights", "weights"),
        nuke.Text_Knob("variant_info", "model", core.describe_weights("")),
        nuke.Enumeration_Knob("device", "device", list(core.DEVICES)),
        nuke.Enumeration_Knob("precision", "precision", list(core.PRECISIONS)),
        nuke.Int_Knob("working_size", "working size"),
        nuke.Enumeration_Knob("tta", "mirror average", list(core.TTA_MODES)),
        nuke.Int_Knob("temporal", "steady over frames"),
        nuke.Enumeration_Knob("output", "output", list(core.OUTPUT_MODES)),
        nuke.Boolean_Knob("use_input_range", "input frame range"),
        nuke.Int_Knob("first_frame", "first"),
        nuke.Int_Knob("last_frame", "last"),
        nuke.File_Knob("cache_dir", "cache folder"),
        nuke.Boolean_Knob("read_upstream", "read EXR/DPX files directly"),
        nuke.PyScript_Knob("render", "Render", "import pomagan_nuke.node\npomagan_nuke.node.render_button()"),
        nuke.Text_Knob("status", "status", "not rendered"),
        nuke.String_Knob("cache_key", "cache key"),
        nuke.Boolean_Knob(TAG_KNOB, TAG_KNOB),
    ]
    for knob in knobs:
        group.addKnob(knob)
    group["weights"].setTooltip("POMAGAN checkpoint (.safetensors); empty: the bundled default")
    group["working_size"].setTooltip("short side the network runs at; 0: the checkpoint's default")
    group["tta"].setTooltip("none: one pass; flip: also run the mirror image and average the two "
                            "mattes (twice the network time; semi-transparent where they disagree)")
    group["temporal"].setTooltip("0: each frame matted on its own; N (1-8, 2 is a good start): each "
                                 "frame's matte averaged with the N frames' either side, moved along "
                                 "the optical flow, where the pictures match: less flicker (render "
                                 "--temporal N; the N frames beyond the range are read too)")
    group["cache_dir"].setTooltip("where mattes are cached; empty: $POMAGAN_NUKE_CACHE or "
                                  "pomagan_cache/ beside the script")
    group["use_input_range"].setValue(True)
    group["read_upstream"].setValue(True)
    group[TAG_KNOB].setValue(True)
    root = nuke.root()
    group["first_frame"].setValue(int(root["first_frame"].value()))
    group["last_frame"].setValue(int(root["last_frame"].value()))
    for name in ("first_frame", "last_frame"):
        group[name].setEnabled(False)
    for name in ("cache_key", TAG_KNOB):
        group[name].setFlag(nuke.INVISIBLE)
    group["knobChanged"].setValue(_KNOB_CHANGED)

    with group:
        plate = nuke.nodes.Input(name="Input1")
        write = nuke.nodes.Write(name="cache_write", file_type="exr", channels="rgb",
                                 datatype="16 bit half", disable=True)
        write.setInput(0, plate)
        roto = nuke.nodes.Input(name="roto")  # input 1: created second
        roto_write = nuke.nodes.Write(name="roto_write", file_type="exr", channels="alpha",
                                      datatype="16 bit half", disable=True)
        roto_write.setInput(0, roto)
        # (before/after black: outside the rendered range no held first or last matte)
        alpha_read = nuke.nodes.Read(name="alpha_read", raw=True, on_error="black", before="black",
                                     after="black")
        fg_read = nuke.nodes.Read(name="fg_read", on_error="black", before="black", after="black")
        copy_alpha = nuke.nodes.Copy(name="copy_alpha", from0="rgba.alpha", to0="rgba.alpha")
        copy_alpha.setInput(0, plate)       # B: the plate
        copy_alpha.setInput(1, alpha_read)  # A: the matte
        copy_rgb = nuke.nodes.Copy(name="copy_rgb", from0="rgba.red", to0="rgba.red",
                                   from1="rgba.green", to1="rgba.green",
                                   from2="rgba.blue", to2="rgba.blue")
        copy_rgb.setInput(0, copy_alpha)    # B: plate + matte
        copy_rgb.setInput(1, fg_read)       # A: premultiplied foreground
        switch = nuke.nodes.Switch(name="output_switch", which=SWITCH_PLATE)
        switch.setInput(SWITCH_PLATE, plate)
        switch.setInput(SWITCH_ALPHA, copy_alpha)
        switch.setInput(SWITCH_RGBA, copy_rgb)
        nuke.nodes.Output(name="Output1").setInput(0, switch)
    return group


# --- reading the node -------------------------------------------------------------------------

def _input_range(group: Any) -> tuple[int, int] | None:
    upstream = group.input(0)
    if upstream is None:
        return None
    return int(upstream.firstFrame()), int(upstream.lastFrame())


def read_settings(group: Any) -> core.NodeSettings:
    """The node's knobs as :class:`core.NodeSettings` (raises BadInputError for bad values)."""
    first, last = core.frame_range(
        bool(group["use_input_range"].value()), _input_range(group),
        (int(group["first_frame"].value()), int(group["last_frame"].value())))
    cache_dir = str(group["cache_dir"].value()).strip()
    if not cache_dir:
        cache_dir = core.default_cache_dir(nuke.root().name())
    return core.NodeSettings(
        weights=str(group["weights"].value()).strip(),
        device=str(group["device"].value()),
        precision=str(group["precision"].value()),
        working_size=int(group["working_size"].value()),
        tta=str(group["tta"].value()),
        temporal=_temporal(group),
        output=str(group["output"].value()),
        first=first, last=last, cache_dir=cache_dir,
        read_upstream=bool(group["read_upstream"].value()))


def _temporal(group: Any) -> int:
    """The ``temporal`` knob (0 on a node saved before the knob existed)."""
    knob = group.knob("temporal")
    return int(knob.value()) if knob is not None else 0


def _shot(group: Any, settings: core.NodeSettings, direct: str | None) -> list[int]:
    """The shot's frame numbers, where ``temporal`` finds a frame's neighbours: an upstream
    Read's files on disk (read directly), or the input's range and the node's (the plate the
    internal Write renders: a frame outside the input's range is its first or last, held).
    Without ``temporal`` it is not needed: ``[]``, with no look at the disk."""
    if not settings.temporal:
        return []
    if direct:
        return core.frames_on_disk(direct)
    bounds = _input_range(group) or (settings.first, settings.last)
    return list(range(min(bounds[0], settings.first), max(bounds[1], settings.last) + 1))


def _upstream_tree(node: Any) -> list[Any]:
    """``node`` and everything above it, each once, parents first."""
    seen: dict[int, Any] = {}

    def visit(n: Any) -> None:
        if id(n) in seen:
            return
        for parent in n.dependencies():
            visit(parent)
        seen[id(n)] = n

    visit(node)
    return list(seen.values())


def plan_source(group: Any, settings: core.NodeSettings) -> tuple[str | None, Any, str | None]:
    """(direct pattern or None, fingerprint, colour space of the direct Read or None). With a
    shape on the ``roto`` input the fingerprint covers its node tree too; with ``temporal``,
    the files of the neighbours read beyond the range too."""
    upstream = group.input(0)
    if upstream is None:
        raise core.BadInputError("connect a plate to the POMAGAN node's input")
    roto = group.input(ROTO_INPUT)
    direct, fingerprint, colorspace = None, None, None
    if upstream.Class() == "Read" and not _renumbered(upstream):
        direct = core.direct_read_pattern(_read_file(upstream), settings.read_upstream)
    span = core.read_span(settings, shot=_shot(group, settings, direct))
    if direct:
        knob = upstream.knob("colorspace")
        fingerprint = core.file_fingerprint(direct, *span)
        colorspace = str(knob.value()) if knob is not None else None
    else:
        fingerprint = _tree_fingerprint(upstream, span)
    if roto is not None:  # (none: the key of a node without one, as before the input existed)
        fingerprint = {"plate": fingerprint, "roto": _tree_fingerprint(roto, span)}
    return direct, fingerprint, colorspace


def _tree_fingerprint(upstream: Any, span: tuple[int, int]) -> str:
    nodes, files = [], []
    for n in _upstream_tree(upstream):
        nodes.append((n.Class(), n.writeKnobs(nuke.WRITE_NON_DEFAULT_ONLY | nuke.TO_SCRIPT)))
        if n.Class() == "Read":
            files.append(core.file_fingerprint(_read_file(n), *span))
    return core.tree_fingerprint(nodes, files)


def _renumbered(read: Any) -> bool:
    """Whether a Read shows its files under other frame numbers (its ``frame`` knob: an offset
    or a "start at" frame): its files are then not read directly by the node's frame numbers;
    the input goes through the internal Write, which Nuke renders at the numbers it shows."""
    frame = read.knob("frame")
    return frame is not None and str(frame.value()).strip() not in ("", "0")


def _read_file(read: Any) -> str:
    """The file a Read reads, as Nuke resolves it (``nuke.filename``: TCL expressions such as
    ``[getenv SHOT]`` or ``[value root.project_directory]`` expanded, frame patterns kept); the
    knob's own text where there is no such call."""
    resolve = getattr(nuke, "filename", None)
    return str(resolve(read) if resolve is not None else read["file"].value())


# --- cache state ------------------------------------------------------------------------------

def _show(group: Any, layout: core.CacheLayout | None, settings: core.NodeSettings,
          colorspace: str | None, status: str) -> None:
    """Point the internal Reads at a cache entry (or show the plate when ``layout`` is None)."""
    with group:
        alpha_read, fg_read = nuke.toNode("alpha_read"), nuke.toNode("fg_read")
        switch = nuke.toNode("output_switch")
        if layout is None:
            switch["which"].setValue(SWITCH_PLATE)
        else:
            for read, pattern in ((alpha_read, layout.alpha), (fg_read, layout.fg)):
                read["file"].setValue(pattern)
                for name, value in (("first", settings.first), ("last", settings.last),
                                    ("origfirst", settings.first), ("origlast", settings.last)):
                    read[name].setValue(value)
            if colorspace:  # the foreground is in the direct Read's own encoding
                fg_read["colorspace"].setValue(colorspace)
            switch["which"].setValue(SWITCH_RGBA if "fg" in settings.kinds else SWITCH_ALPHA)
    group["status"].setValue(status)


def refresh(group: Any) -> str:
    """Re-check the cache after a knob or input change: reuse a complete entry for the current
    settings, else show the plate and say the matte is stale. Returns the status text."""
    try:
        settings = read_settings(group)
        direct, fingerprint, colorspace = plan_source(group, settings)
    except core.PomaganError as exc:
        _show(group, None, core.NodeSettings(), None, f"error: {exc}")
        return str(group["status"].value())
    key = core.cache_key(fingerprint, settings)
    layout = core.cache_layout(settings, key)
    if not core.missing_frames(layout, settings.kinds, settings.first, settings.last):
        group["cache_key"].setValue(key)
        _show(group, layout, settings, colorspace, f"up to date ({settings.first}-{settings.last})")
    elif group["cache_key"].value():
        _show(group, None, settings, None, "stale: press Render")
    else:
        _show(group, None, settings, None, "not rendered: press Render")
    return str(group["status"].value())


def knob_changed() -> None:
    """The group's knobChanged: settings knobs and input changes re-check the cache."""
    group, knob = nuke.thisNode(), nuke.thisKnob()
    name = knob.name()
    if name == "use_input_range":
        for other in ("first_frame", "last_frame"):
            group[other].setEnabled(not knob.value())
    if name == "weights":
        group["variant_info"].setValue(core.describe_weights(str(knob.value()).strip()))
    if name in core.SETTINGS_KNOBS or name in ("inputChange", "showPanel"):
        if group.fullName() not in _RENDERING:
            refresh(group)


# --- rendering --------------------------------------------------------------------------------

def _write_plate(group: Any, layout: core.CacheLayout, first: int, last: int, kind: str = "plate") -> None:
    """Render the node's input (``kind="roto"``: its roto input) into the cache entry through
    the internal Write (main thread)."""
    missing = core.missing_frames(layout, (kind,), first, last)
    if not missing:
        return
    first, last = missing[0], missing[-1]  # (the frames an earlier chunk wrote are kept)
    layout.folder.mkdir(parents=True, exist_ok=True)
    with group:
        write = nuke.toNode("cache_write" if kind == "plate" else "roto_write")
    write["file"].setValue(layout.plate if kind == "plate" else layout.roto)
    write["disable"].setValue(False)
    try:
        nuke.execute(write, first, last)
    finally:
        write["disable"].setValue(True)


def render(group: Any, frames: tuple[int, int] | None = None, background: bool = False,
           log: Callable[[str], None] | None = None) -> Any:
    """Render the node's matte into its cache and show it.

    Args:
        group: the POMAGAN node.
        frames: (first, last) to render; default the node's range (a farm chunk passes its own).
        background: run the network in a worker thread with a ``nuke.ProgressTask`` (GUI); the
            Reads are re-pointed on the main thread when it finishes. Otherwise run here.
        log: progress messages (farm: print).
    Returns:
        The render report (``None`` when started in the background).
    """
    settings = read_settings(group)
    direct, fingerprint, colorspace = plan_source(group, settings)
    key = core.cache_key(fingerprint, settings)
    layout = core.cache_layout(settings, key)
    first, last = frames or (settings.first, settings.last)
    name = group.fullName()
    if name in _RENDERING:
        raise core.BadInputError(f"{name} is already rendering")
    _RENDERING.add(name)  # (at once: a second press of Render before the worker starts is refused)
    roto = group.input(ROTO_INPUT) is not None
    # (with temporal, the neighbours beyond the range are read: their plate and roto are needed)
    span = core.read_span(settings, (first, last), _shot(group, settings, direct))
    try:
        if direct is None:
            _write_plate(group, layout, *span)
        if roto:
            _write_plate(group, layout, *span, kind="roto")
    except BaseException:
        _RENDERING.discard(name)
        raise
    source = direct or layout.plate
    group["status"].setValue(f"rendering {first}-{last} ...")

    def finish(report: Any) -> None:
        try:  # knobs changed while it rendered (their knobChanged waited): it is not what they ask
            now = read_settings(group)
            current = core.cache_key(plan_source(group, now)[1], now)
        except core.PomaganError:
            current = None
        complete = frames is None or not core.missing_frames(layout, settings.kinds, settings.first, settings.last)
        if complete:
            group["cache_key"].setValue(key)
        if current != key:
            refresh(group)  # (stale, or another complete entry those knobs name)
        elif complete:
            _show(group, layout, settings, colorspace, f"up to date ({settings.first}-{settings.last})")
        else:
            group["status"].setValue(f"rendered {first}-{last}; other frames missing")

    def fail(exc: BaseException) -> None:
        done = "cancelled" if isinstance(exc, core.Cancelled) else f"error: {exc}"
        _show(group, None, settings, None, done)

    def work(task: Any = None) -> Any:
        def progress(frame: int, done: int, total: int) -> None:
            if task is not None:
                if task.isCancelled():
                    raise core.Cancelled(f"cancelled at frame {frame}")
                task.setMessage(f"frame {frame} ({done}/{total})")
                task.setProgress(int(100 * done / max(total, 1)))
            if log is not None:
                log(f"POMAGAN {name}: frame {frame} ({done}/{total})")
        try:
            return core.render_matte(source, layout, settings, (first, last), progress,
                                     roto=layout.roto if roto else None)
        finally:
            _RENDERING.discard(name)

    if not background:
        try:
            report = work()
        except BaseException as exc:
            fail(exc)
            raise
        finish(report)
        return report

    def thread_main() -> None:
        task = nuke.ProgressTask(f"POMAGAN {name}")
        try:
            report = work(task)
        except BaseException as exc:  # reported on the main thread, never lost in the thread
            nuke.executeInMainThread(fail, args=(exc,))
            if not isinstance(exc, core.Cancelled):
                nuke.executeInMainThread(nuke.message, args=(f"POMAGAN {name}: {exc}",))
        else:
            nuke.executeInMainThread(finish, args=(report,))
        finally:
            del task  # closes the progress bar

    threading.Thread(target=thread_main, name=f"pomagan-{name}", daemon=True).start()
    return None


def render_button() -> None:
    """The Render knob: render in the background in the GUI, in the foreground otherwise."""
    group = nuke.thisNode()
    try:
        render(group, background=bool(nuke.GUI))
    except core.PomaganError as exc:
        nuke.message(f"POMAGAN: {exc}")
