"""Render a shot: the library function behind ``pomagan-post render``.

:func:`render` is a pure function of (input, frame range, options): output paths are
deterministic, every frame file is written atomically, and ``skip_existing`` resumes a crashed or
split (farm) render without redoing finished frames.

Outputs, by default into ``<stem>_pomagan/`` beside the input:

========================  =====================================================================
input                     outputs (``alpha`` and ``fg``; ``comp`` with ``comp=``)
========================  =====================================================================
``plate.####.exr``        ``plate_alpha.####.exr``, ``plate_fg.####.exr`` (same frame numbers)
``still.png``             ``still_alpha.png``, ``still_fg.png``
``shot.mov``              ``shot_alpha.mov``, ``shot_fg.mov`` (ProRes 4444, fps/timecode/audio)
========================  =====================================================================

Sequence formats follow the input (EXR -> EXR, DPX -> DPX, PNG/JPEG -> PNG, TIFF -> TIFF).
Alpha convention of the foreground: premultiplied where the format's convention is
premultiplied (EXR, TIFF, ProRes), straight where it is straight (PNG, DPX, PNG-in-MOV, FFV1);
``premultiplied=True/False`` overrides; files are labelled (EXR/PNG/TIFF ``pomagan:alpha``
attribute, TIFF ExtraSamples, video ``comment`` metadata).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .colour import convert, resolve_colorspace
from .errors import BadInputError, DeviceError, MissingFramesError, PomaganError, UnsupportedFormatError
from .io.atomic import refuse_unwritable
from .io.base import ClipInfo, FrameSink, FrameSource, parse_rate
from .io.images import (IMAGE_FORMATS, MISSING_FILE, ImageSequenceSink, ImageSequenceSource,
                        check_exr_compression, missing_files, read_image, read_matte)
from .io.sequence import (IMAGE_EXTENSIONS, SequencePattern, as_pattern, discover, format_frame_list,
                          numbered_otherwise, parse_frame_range, sequence_of)
from .io.timecode import has_timecode, timecodes_to_frames
from .io.streams import prefetch, usable_cpus
from .stopping import stop_point
from .temporal import TemporalSteady, check_radius, neighbours

__all__ = [
    "GarbageMatte",
    "Roto",
    "ShotMatte",
    "RenderReport",
    "render",
    "open_source",
    "open_sink",
    "default_format",
    "parse_background",
    "build_engine",
    "matte",
    "output_frame",
    "OUTPUT_KINDS",
    "OUTPUT_FORMATS",
]

OUTPUT_KINDS = ("alpha", "fg", "comp")
#: ``format=`` choices: image sequence formats, or ``video`` (codec chosen by ``codec=``).
OUTPUT_FORMATS = (*IMAGE_FORMATS, "video")
_INPUT_FORMAT = {".exr": "exr", ".hdr": "exr", ".dpx": "dpx", ".cin": "dpx", ".png": "png",
                 ".jpg": "png", ".jpeg": "png", ".tif": "tiff", ".tiff": "tiff"}
_NAMED_COLOURS = {
    "black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "grey": (0.5, 0.5, 0.5),
    "gray": (0.5, 0.5, 0.5), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
    "red": (1.0, 0.0, 0.0),
}


@dataclass
class RenderReport:
    """What :func:`render` did.

    Attributes:
        input: the input as given.
        outputs: output kind (``alpha``, ``fg``, ``comp``) -> file or pattern written.
        frames: the frame numbers asked for.
        written: frames rendered and written by this call. A render that stops or fails
            part-way raises with this report, as done so far, in the error's
            ``render_report``; a video output's partial file may lack the last few of these
            frames (those still in the encoder), which a resume renders again.
        skipped_existing: frames whose outputs already existed (``skip_existing``).
        failed: frame -> reason for frames missing or unreadable (``on_error="skip"``).
        seconds: wall time of the render loop.
        fps: frames rendered per second (throughput, not the clip's rate).
        clip_fps: the clip's own frame rate when known.
        alpha_mode: ``premultiplied`` or ``straight`` foreground.
        colorspace: the input's colour space (outputs are in it too).
        audio: what a foreground video got of the input's sound (``copy aac``, ``opus
            re-encoded to pcm_s24le``, ``2 tracks, ...``; empty: none).
        repeated: frames the input holds no picture for that were rendered as the frame
            before, as players show them (an AVI's dropped frames).
    """

    input: str
    outputs: dict[str, str] = field(default_factory=dict)
    frames: list[int] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    skipped_existing: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    fps: float = 0.0
    clip_fps: Fraction | None = None
    alpha_mode: str = "premultiplied"
    colorspace: str = ""
    audio: str = ""
    repeated: list[int] = field(default_factory=list)

    @property
    def frames_written(self) -> int:
        return len(self.written)

    @property
    def ok(self) -> bool:
        """Every requested frame has its outputs (written now or before)."""
        return not self.failed and len(self.written) + len(self.skipped_existing) == len(self.frames)

    def settle(self, started: float, source: Any) -> None:
        """At the end of the render loop, finished or not: the time since ``started``
        (``time.perf_counter()``), the throughput, and the frames the source could not read."""
        asked = set(self.frames) - set(self.skipped_existing)  # (not --temporal's neighbours)
        self.failed.update((n, why) for n, why in getattr(source, "failed", {}).items() if n in asked)
        self.repeated = sorted(n for n in getattr(source, "repeated", ()) if n in asked)
        self.seconds = time.perf_counter() - started
        self.fps = len(self.written) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: frame numbers as integers, ``failed`` keyed by the frame number
        as text, ``clip_fps`` as an exact ``"num/den"``."""
        fps = self.clip_fps
        return {
            "input": self.input, "ok": self.ok, "outputs": dict(self.outputs),
            "frames": list(self.frames), "written": list(self.written),
            "skipped_existing": list(self.skipped_existing),
            "failed": {str(frame): reason for frame, reason in sorted(self.failed.items())},
            "seconds": round(self.seconds, 3), "fps": round(self.fps, 3),
            "clip_fps": f"{fps.numerator}/{fps.denominator}" if fps else None,
            "alpha_mode": self.alpha_mode, "colorspace": self.colorspace, "audio": self.audio,
            "repeated": list(self.repeated),
        }


# --- inputs -----------------------------------------------------------------------------------

def _video_codec(codec: str) -> Any:
    """The :class:`~pomagan_post.io.video.VideoCodecSpec` of a codec name (BadInputError if unknown)."""
    from .io.video import VIDEO_CODECS

    if codec not in VIDEO_CODECS:
        raise BadInputError(f"unknown codec {codec!r}; use one of {', '.join(VIDEO_CODECS)}")
    return VIDEO_CODECS[codec]


#: A region of the frames' data windows this many times the picture's area is worth a word.
WIDE_REGION = 4.0


def _warn_of_a_wide_region(info: ClipInfo, window: str, name: str, log: Callable[[str], None]) -> None:
    """Says so when the region the network sees (the frames' data windows together) is far
    larger than the picture: people look that much smaller to it (a working size of 192 spread
    over the whole region), so the matte suffers - usually a stray pixel far outside the frame
    in a CG render, or a huge overscan."""
    region, shown = info.metadata.get("data_window"), info.metadata.get("display_window")
    if window != "data" or not region or not shown or shown[2] * shown[3] <= 0:
        return
    ratio = (region[2] * region[3]) / (shown[2] * shown[3])
    if ratio >= WIDE_REGION:
        log(f"{name}: the frames' data windows together span {region[2]}x{region[3]} at "
            f"({region[0]}, {region[1]}), {ratio:.0f} times the {shown[2]}x{shown[3]} picture; the "
            "network sees that whole region, so people are smaller to it and the matte suffers. "
            "--display-window mattes the picture alone (EXR outputs then drop what lies outside it)")


def _is_video(path: str | os.PathLike[str]) -> bool:
    from .io.video import is_video_path

    return is_video_path(path)


def open_source(
    input: str | os.PathLike[str],
    frames: list[int] | None = None,
    on_error: str = "stop",
    colorspace: str | None = None,
    start_frame: int | None = None,
    window: str = "data",
    carry: bool = False,
) -> FrameSource:
    """A frame source for a video file, an image sequence pattern, a folder or one image.
    ``start_frame`` numbers a video's frames from it (default 0); a sequence is numbered by its
    files, so giving it for one is refused. ``window`` is the region a sequence's frames come
    in, ``carry`` whether it keeps each frame's header attributes to carry (see
    :class:`~pomagan_post.io.images.ImageSequenceSource`)."""
    if _is_video(input):
        from .io.video import VideoSource

        source: Any = VideoSource(input, frames=frames, start_frame=start_frame or 0)
    else:
        if start_frame is not None:
            _refuse_start_frame(input)
        source = ImageSequenceSource(input, frames=frames, on_error=on_error, colorspace=colorspace,
                                     window=window, carry=carry)
    if colorspace:
        source.info.colorspace = resolve_colorspace(colorspace)
    return source


def _refuse_start_frame(input: str | os.PathLike[str]) -> None:
    raise BadInputError(f"{Path(input).name}: --start-frame numbers a video's frames; "
                        "an image sequence is numbered by its file names")


CUT_SHORT = "did not decode: the file's data ends before it"
#: The reason for a frame of a video missing between frames that decoded (a packet the
#: container marks damaged; an AVI's empty chunk repeats the frame before instead).
NO_PICTURE = "did not decode: no whole picture in the file for it (dropped or damaged)"


def _unread_neighbours_left_out(source: ImageSequenceSource, to_render: set[int], on_error: str
                                 ) -> Iterator[tuple[int, np.ndarray]]:
    """``--temporal`` over a sequence (``source`` opened with ``on_error="skip"``): a neighbour
    read only for its matte that cannot be read is left out (its frames are steadied without
    it), while a frame to render that cannot be read stops the render, with ``on_error="stop"``,
    as it would without ``--temporal``."""
    def check() -> None:
        failed = sorted(set(source.failed) & to_render) if on_error == "stop" else []
        missing = [n for n in failed if source.failed[n] == MISSING_FILE]
        if missing:  # as the source itself says it (without --temporal)
            raise missing_files(source.pattern, missing)
        if failed:
            raise MissingFramesError(source.failed[failed[0]], failed[:1])

    for number, rgb in source:
        check()
        yield number, rgb
    check()


def _lost_neighbours_left_out(source: FrameSource, to_render: set[int], on_error: str,
                              failed: dict[int, str]) -> Iterator[tuple[int, np.ndarray]]:
    """``--temporal`` over a video: neighbours past where the file's data ends (a copy cut short
    just after a chunk) are left out; a frame to render that is lost stops the render
    (``on_error="stop"``, the video's own error) or goes into ``failed`` (``"skip"``), as
    without ``--temporal``."""
    if on_error == "skip":
        lost: dict[int, str] = {}
        try:
            yield from _skipping_undecodable(source, lost)
        finally:
            failed.update((n, why) for n, why in lost.items() if n in to_render)
        return
    try:
        yield from source
    except MissingFramesError as exc:
        lost = [n for n in exc.frames if n in to_render]
        if lost:  # named as without --temporal: the frames to render that are lost
            from .io.video import undecoded

            raise undecoded(source.path, lost) from None


def _skipping_undecodable(source: FrameSource, failed: dict[int, str]) -> Iterator[tuple[int, np.ndarray]]:
    """A video's frames for ``on_error="skip"``: frames the file does not hold (cut short) or
    that follow a frame the decoder gives up on go into ``failed`` (number -> reason) instead
    of stopping the render, so every frame that decodes is rendered and the outputs finish."""
    seen: set[int] = set()
    try:
        for frame, rgb in source:
            seen.add(frame)
            yield frame, rgb
    except MissingFramesError as exc:
        last = max(seen, default=None)
        failed.update((frame, NO_PICTURE if last is not None and frame < last else CUT_SHORT)
                      for frame in exc.frames)
    except (BadInputError, UnsupportedFormatError) as exc:
        rest = [f for f in source.info.frames if f not in seen]
        failed.update((frame, f"not decoded: {exc}") for frame in rest)


@dataclass
class PixelCheck:
    """What :func:`check_pixels` found: ``bad`` frames a render would stop at (number ->
    reason), ``non_finite`` frames holding NaN or infinite values (number -> how many; render
    reads them as 0, or the format's largest value for +inf), ``checked`` frames decoded, and
    for a video whether decoding stopped early at a bad frame (``stopped_at``) and the AVI
    frame slots with no picture, given the frame before (``repeated``)."""

    checked: int = 0
    bad: dict[int, str] = field(default_factory=dict)
    non_finite: dict[int, int] = field(default_factory=dict)
    stopped_at: int | None = None
    repeated: list[int] = field(default_factory=list)


def check_pixels(source: FrameSource, workers: int | None = None,
                 on_frame: Callable[[], None] | None = None) -> PixelCheck:
    """Decodes every frame of ``source`` as a render would, without rendering: the check a
    farm wants before a long render (a file cut short inside its pixels passes a header check).
    Image sequences decode on ``workers`` threads (default: the CPU cores, at most 8; OpenImageIO
    works outside the GIL); a video decodes in order and stops at its first undecodable frame,
    since the frames after it depend on it. ``on_frame`` is called after each frame (progress)."""
    from concurrent.futures import ThreadPoolExecutor

    result = PixelCheck()

    def look(frame: int, rgb: np.ndarray) -> None:
        result.checked += 1
        count = rgb.size - int(np.count_nonzero(np.isfinite(rgb)))
        if count:
            result.non_finite[frame] = count
        if on_frame is not None:
            on_frame()

    if isinstance(source, ImageSequenceSource):
        failed = set(source.failed)
        frames = [f for f in source.info.frames if f not in failed]

        def read(frame: int) -> tuple[int, np.ndarray | None, str | None]:
            try:
                return frame, source.read(frame), None
            except MissingFramesError as exc:
                return frame, None, str(exc)

        workers = max(1, int(workers or min(8, usable_cpus())))
        with ThreadPoolExecutor(workers, thread_name_prefix="check") as pool:
            for frame, rgb, error in pool.map(read, frames):  # in order, a few frames ahead
                if rgb is None:
                    result.bad[frame] = error or "unreadable"
                    if on_frame is not None:
                        on_frame()
                else:
                    look(frame, rgb)
        return result
    failed: dict[int, str] = {}  # what render --on-error skip would list, by the same rule
    for frame, rgb in _skipping_undecodable(source, failed):
        look(frame, rgb)
    result.repeated = sorted(getattr(source, "repeated", ()))
    result.bad.update((frame, reason) for frame, reason in failed.items() if reason in (CUT_SHORT, NO_PICTURE))
    gave_up = sorted(frame for frame, reason in failed.items() if reason not in (CUT_SHORT, NO_PICTURE))
    if gave_up:  # the decoder gave up on a frame; the ones after it were not checked
        result.stopped_at = gave_up[0]
        result.bad[gave_up[0]] = failed[gave_up[0]]
    return result


def default_format(input: str | os.PathLike[str]) -> str:
    """Output format matching the input family (``video`` for video files)."""
    if _is_video(input):
        return "video"
    pattern = as_pattern(input) if not Path(input).is_dir() else None
    if pattern is None:
        from .io.sequence import find_sequences

        found = find_sequences(input)
        pattern = found[0].pattern if found else None
    return _INPUT_FORMAT.get(pattern.extension if pattern else "", "exr")


# --- outputs ----------------------------------------------------------------------------------

@dataclass
class _Output:
    kind: str
    target: Path | SequencePattern  # a video file, or a pattern of image files
    video: bool

    def paths(self, frames: Iterable[int]) -> list[Path]:
        if isinstance(self.target, Path):
            return [self.target]
        return [self.target.path(f) for f in frames]

    def __str__(self) -> str:
        return str(self.target)


def open_sink(
    kind: str,
    target: str | os.PathLike[str] | SequencePattern,
    info: ClipInfo,
    *,
    alpha_mode: str,
    codec: str = "prores4444",
    audio_from: str | os.PathLike[str] | None = None,
    writers: int | None = None,
    resume: list[int] | None = None,
    exr_compression: str = "zip",
    settings: str | None = None,
) -> FrameSink:
    """A sink for one output kind: a video file (by extension) or an image file/pattern
    (written by ``writers`` threads; default :func:`~pomagan_post.io.streams.default_writers`;
    EXR files with ``exr_compression``).
    ``resume``: the frames a video's partial file holds, kept (see :func:`_finished_frames`);
    ``settings``: the render's (:func:`render_settings`), recorded in the output."""
    if not isinstance(target, SequencePattern) and _is_video(target):
        from .io.video import VideoSink

        return VideoSink(target, info, kind=kind, codec=codec, audio_from=audio_from,
                         premultiplied=alpha_mode == "premultiplied", resume=resume, settings=settings)
    return ImageSequenceSink(target, info, kind=kind, alpha_mode=alpha_mode, workers=writers,
                             compression=exr_compression, settings=settings)


def _stem_and_dir(input: str | os.PathLike[str], video: bool) -> tuple[str, Path, SequencePattern | None]:
    """(file stem, default output folder, input pattern or None for video)."""
    path = Path(input)
    if video:
        return path.stem, path.parent / f"{path.stem}_pomagan", None
    if path.is_dir():
        seq, _ = discover(path)
        return seq.pattern.stem, path.parent / f"{path.name}_pomagan", seq.pattern
    pattern = as_pattern(path)
    return pattern.stem, pattern.directory / f"{pattern.stem}_pomagan", pattern


def output_stem(input: str | os.PathLike[str]) -> str:
    """The name a render of ``input`` gives its outputs (``<stem>_alpha``, ``<stem>_fg``)."""
    input_str = os.fspath(input)
    return _stem_and_dir(input_str, _is_video(input_str))[0]


def _video_extension(codec: str) -> str:
    from .io.video import VIDEO_CODECS

    return VIDEO_CODECS[codec].extensions[0]


def _plan_outputs(
    kinds: Sequence[str],
    stem: str,
    out_dir: Path,
    fmt: str,
    codec: str,
    input_pattern: SequencePattern | None,
    single: bool,
    names: dict[str, str | None],
) -> list[_Output]:
    plans = []
    for kind in kinds:
        name = names.get(kind)
        if name:
            given = Path(name)
            path = given if given.is_absolute() else out_dir / given  # relative: in the output folder
            if _is_video(path):
                plans.append(_Output(kind, path, True))
                continue
            pattern = as_pattern(path)
            if pattern.extension not in (".exr", ".png", ".tif", ".tiff", ".dpx"):
                raise UnsupportedFormatError(
                    f"cannot write {kind} as {path.name}: use .exr, .png, .tif, .dpx or a video file")
            if pattern.is_single_file and not single:
                raise BadInputError(
                    f"{kind} output {path} needs a frame placeholder (e.g. name.####.exr) "
                    "for a clip of several frames")
            plans.append(_Output(kind, pattern, False))
        elif fmt == "video":
            plans.append(_Output(kind, out_dir / f"{stem}_{kind}{_video_extension(codec)}", True))
        else:
            ext = IMAGE_FORMATS[fmt][0]
            if single:
                plans.append(_Output(kind, SequencePattern(out_dir, f"{stem}_{kind}{ext}", "", None), False))
            else:
                padding = input_pattern.padding if input_pattern and input_pattern.padding else 4
                plans.append(_Output(kind, SequencePattern(out_dir, f"{stem}_{kind}.", ext, padding), False))
    return plans


def _alpha_mode(plans: list[_Output], premultiplied: bool | None, codec: str) -> str:
    if premultiplied is not None:
        return "premultiplied" if premultiplied else "straight"
    fg = next((p for p in plans if p.kind == "fg"), None)
    if fg is None:
        return "premultiplied"
    if fg.video:
        return _video_codec(codec).alpha_mode
    ext = fg.target.extension if isinstance(fg.target, SequencePattern) else ""
    fmt = {".tif": "tiff", ".tiff": "tiff"}.get(ext, ext.lstrip("."))
    return IMAGE_FORMATS.get(fmt, (ext, "premultiplied"))[1]


def _refuse_overwriting_inputs(plans: list[_Output], input_paths: list[Path], frames: list[int],
                               extra_inputs: list[Path]) -> None:
    inputs = {os.path.realpath(p) for p in input_paths + extra_inputs}
    seen: dict[str, str] = {}
    for plan in plans:
        for path in plan.paths(frames):
            real = os.path.realpath(path)
            if real in inputs:
                raise BadInputError(f"{plan.kind} output {path} would overwrite an input; "
                                    "choose another output folder or name")
            if real in seen and seen[real] != plan.kind:
                raise BadInputError(f"{plan.kind} and {seen[real]} outputs both write {path}")
            seen[real] = plan.kind


def _files_of(spec: str | os.PathLike[str]) -> list[Path]:
    """The files an input other than the shot names (``--garbage-matte``: an image, a video or
    a sequence), for the overwrite check; none when it names nothing (reported where it is read)."""
    if Path(spec).is_file():
        return [Path(spec)]
    try:
        seq, _ = discover(spec)
    except PomaganError:
        return []
    return [seq.pattern.path(f) for f in seq.frames]


def _output_folders(out_dir: Path, plans: list[_Output]) -> list[Path]:
    """The output folder and each output's own (``--alpha-name sub/...`` names one inside)."""
    return [out_dir] + [Path(p.target).parent if isinstance(p.target, Path) else p.target.directory for p in plans]


# --- composite background ---------------------------------------------------------------------

def parse_background(spec: str, info: ClipInfo) -> np.ndarray:
    """``--comp`` value -> background in the clip's colour space, float32 [H, W, 3] or [3].

    Accepts a colour name (black, white, grey, green, blue, red), ``#rrggbb`` / ``rrggbb`` hex,
    or ``r,g,b`` floats in [0, 1] - all display (sRGB-encoded) values, converted to the clip's
    colour space - or the path of an image (resized to the frame; converted from its own colour
    space to the clip's).
    """
    text = str(spec).strip()
    rgb: tuple[float, ...] | None = None
    if text.lower() in _NAMED_COLOURS:
        rgb = _NAMED_COLOURS[text.lower()]
    elif re.fullmatch(r"#?[0-9a-fA-F]{6}", text):
        h = text.lstrip("#")
        rgb = tuple(int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4))
    elif re.fullmatch(r"\s*[-+.\d]+\s*,\s*[-+.\d]+\s*,\s*[-+.\d]+\s*", text):
        try:
            rgb = tuple(float(v) for v in text.split(","))
        except ValueError:
            rgb = None
        if rgb is not None and not all(0.0 <= v <= 1.0 for v in rgb):
            raise BadInputError(f"--comp colour {text!r}: components must be in [0, 1]")
    if rgb is not None:
        return convert(np.asarray(rgb, np.float32), "srgb", info.colorspace)
    path = Path(text)
    if not path.is_file():
        raise BadInputError(
            f"--comp {text!r} is neither a colour (name, #rrggbb, r,g,b) nor an existing image")
    import cv2

    image, cs = read_image(path)
    if image.shape[:2] != (info.height, info.width):
        image = cv2.resize(image, (info.width, info.height), interpolation=cv2.INTER_AREA)
    image = convert(image, cs, info.colorspace)
    return np.ascontiguousarray(image, np.float32)


# --- the engine -------------------------------------------------------------------------------

def build_engine(weights: str | os.PathLike[str] | None, device: str, precision: str,
                 working_size: int | None, batch_size: int | str, log: Callable[[str], None],
                 tta: str = "none") -> Any:
    """An :class:`~pomagan_post.Engine` for a checkpoint (``None``: the bundled one); warns
    through ``log`` when the checkpoint is an untrained placeholder."""
    from .checkpoint import load_checkpoint, untrained_warning
    from .engine import Engine

    model = load_checkpoint(weights)
    warning = untrained_warning(getattr(model, "checkpoint_info", None))
    if warning:
        log(f"warning: {warning}")
    return Engine(model, device=device, precision=precision, working_size=working_size,
                  batch_size=batch_size, tta=tta)


def _out_of_memory_types() -> tuple[type[BaseException], ...]:
    try:
        import torch

        return (torch.cuda.OutOfMemoryError,)
    except (ImportError, AttributeError):
        return ()


def matte(engine: Any, images: np.ndarray, colorspace: str, need_fg: bool,
          log: Callable[[str], None], seg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Frames [N, H, W, 3] in their own encoding -> (alpha [N, H, W], premultiplied fg or None)
    through :meth:`Engine.matte <pomagan_post.engine.Engine.matte>` (the network sees model
    space; the foreground is solved in the input's own values, so it stays in its colour
    space; ``seg``: the frames' rotos, :class:`Roto`). On GPU out-of-memory the batch size is
    halved and the batch tried again."""
    oom = _out_of_memory_types()
    while True:
        try:
            if seg is None:  # (an engine of the caller's own may take no seg)
                return engine.matte(images, colorspace, need_fg)
            return engine.matte(images, colorspace, need_fg, seg=seg)
        except oom:
            import torch

            torch.cuda.empty_cache()
            if engine.batch_size <= 1:
                raise DeviceError("out of GPU memory even at batch size 1; "
                                  "lower --working-size or use --precision fp16") from None
            engine.batch_size = max(1, engine.batch_size // 2)
            log(f"out of GPU memory: retrying with batch size {engine.batch_size}")


def refit_foreground(engine: Any, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The premultiplied foreground [1, H, W, 3] of one frame as a source decoded it [H, W, 3]
    for a matte [H, W] made after the engine's pass (``--temporal``'s steadied one), solved as
    :meth:`Engine.matte <pomagan_post.engine.Engine.matte>` solves it: NaN as 0, infinities as
    +-65504."""
    finite = np.nan_to_num(np.asarray(image, np.float32), nan=0.0, posinf=65504.0, neginf=-65504.0)
    return engine.foreground(finite[None], alpha[None])


def _batches(items: Iterator[tuple[int, np.ndarray]], size: int) -> Iterator[list[tuple[int, np.ndarray]]]:
    """Groups of ``size``; when ``items`` fails, the frames read before the failure are still
    yielded (and rendered) before the error is raised."""
    batch: list[tuple[int, np.ndarray]] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _straight(premultiplied: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Un-premultiply; colour is 0 where alpha is 0."""
    a = alpha[..., None]
    safe = np.where(a > 1e-6, a, 1.0)
    return np.where(a > 1e-6, premultiplied / safe, 0.0).astype(np.float32)


def _rgba_around(fg: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
    """The RGBA frame ``fg`` is the first three channels of, when its fourth channel is
    ``alpha``: :meth:`Engine.matte <pomagan_post.engine.Engine.matte>` returns its foreground as
    such a view, and handing that buffer on saves a copy of every frame on the render thread
    (40 ms a UHD frame). Anything else (or a fourth channel that is not this alpha): None."""
    if (fg.ndim != 3 or fg.shape[-1] != 3 or fg.dtype != np.float32 or alpha.dtype != np.float32
            or alpha.shape != fg.shape[:2]):
        return None
    size = fg.itemsize
    if fg.strides != (fg.shape[1] * 4 * size, 4 * size, size):
        return None
    owner = fg
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    start = fg.__array_interface__["data"][0]
    owner_start = owner.__array_interface__["data"][0]
    end = start + fg.shape[0] * fg.strides[0]  # the last pixel's fourth value included
    if start < owner_start or end > owner_start + owner.nbytes:
        return None
    rgba = np.lib.stride_tricks.as_strided(fg, shape=(*fg.shape[:2], 4), strides=fg.strides, writeable=False)
    return rgba if np.array_equal(rgba[..., 3], alpha) else None


def output_frame(kind: str, alpha: np.ndarray, fg: np.ndarray | None, alpha_mode: str = "premultiplied",
                 background: np.ndarray | None = None) -> np.ndarray:
    """One frame of one output kind, float32 in the clip's colour space (shared by ``render``
    and ``pomagan-post pipe``, so both write the same values).

    Args:
        kind: ``alpha`` -> [H, W]; ``fg`` -> RGBA [H, W, 4] with premultiplied or straight
            colour per ``alpha_mode``; ``comp`` -> RGB [H, W, 3], ``fg`` over ``background``.
        alpha: [H, W] in [0, 1].
        fg: premultiplied foreground [H, W, 3] (unused for ``alpha``).
        alpha_mode: ``premultiplied`` or ``straight`` (``fg`` only).
        background: [H, W, 3] or [3] (``comp`` only), e.g. from :func:`parse_background`.
    """
    if kind == "alpha":
        return alpha
    if fg is None:
        raise BadInputError(f"{kind} output needs the foreground")
    if kind == "fg":
        if alpha_mode == "premultiplied":
            rgba = _rgba_around(fg, alpha)
            if rgba is not None:
                return rgba
        rgb = fg if alpha_mode == "premultiplied" else _straight(fg, alpha)
        return np.concatenate([rgb, alpha[..., None]], axis=-1)
    if kind == "comp" and background is not None:
        return fg + (1.0 - alpha[..., None]) * background
    raise BadInputError(f"unknown output kind {kind!r}" if kind != "comp" else "comp output needs a background")


class ShotMatte:
    """A matte given with a shot, frame by frame (``--garbage-matte``, ``--roto``). One image
    serves every frame (a locked-off shot); an image sequence gives each frame by its number, a
    video by its frame index. Its values are taken as stored (a matte is data, not colour),
    clipped to [0, 1]: an image's alpha channel when it has one that says something (a roto
    written as RGBA: black RGB, the shape in alpha; an alpha opaque everywhere over a painted
    picture says nothing), else the mean of R, G and B as the sources give them (a
    single-channel file comes as equal R, G, B); a video's picture. It must be the shot's size.

    Args:
        path: the image, sequence pattern or video.
        shot: the shot's clip description: its frame numbers to be matted, in order, its size
            and, for an image sequence, its data and display windows.
        start_frame: a video shot's first frame number; a matte video's frames count from it
            too (a sequence keeps its files' numbers).
    Raises:
        BadInputError: another size, or a path that names nothing.
        MissingFramesError: a sequence or video without some of ``frames``.

    An image or sequence showing the same picture as the shot (the same display window) is
    read in the shot's region by pixel coordinates, whatever its own data window (a roto
    written from Nuke with its shape's bounding box as data window: zero outside it, as EXR
    defines); otherwise it must be the shot's size.
    """

    #: What messages call it.
    label = "matte"

    def __init__(self, path: str | os.PathLike[str], shot: ClipInfo, start_frame: int | None = None) -> None:
        self.path = os.fspath(path)
        self._still: np.ndarray | None = None
        self._source: Any = None
        self._frames: Iterator[tuple[int, np.ndarray]] | None = None
        frames, size = list(shot.frames), (shot.width, shot.height)
        region = tuple(shot.metadata.get("data_window", (0, 0, shot.width, shot.height)))
        display = tuple(shot.metadata.get("display_window", region))
        try:
            if _is_video(self.path):
                self._source = open_source(self.path, frames=frames, start_frame=start_frame)
            elif Path(self.path).is_file():
                rgb, shown = read_matte(self.path)
                if shown == display and rgb.shape[:2] != (size[1], size[0]):
                    rgb, _ = read_matte(self.path, region)  # type: ignore[arg-type]
                self._still = self._levels(rgb)
            else:
                self._source = ImageSequenceSource(self.path, frames=frames, matte=True)
                own = self._source.info
                if (tuple(own.metadata["display_window"]) == display
                        and (own.width, own.height) != size):
                    self._source = ImageSequenceSource(self.path, frames=frames, matte=True,
                                                       window=region)  # type: ignore[arg-type]
            shape = self._still.shape if self._still is not None else (
                self._source.info.height, self._source.info.width)
        except MissingFramesError as error:
            if not _is_video(self.path):  # files not there (--on-error skips the shot's, not a matte's)
                raise MissingFramesError(f"{self.label}: missing frames {format_frame_list(error.frames)} "
                                         f"of {self.path}{self._numbering_hint(shot)}", error.frames) from None
            error.args = (f"{self.label}: {error}",) + error.args[1:]
            raise
        except PomaganError as error:  # say which input the message is about
            error.args = (f"{self.label}: {error}",) + error.args[1:]
            raise
        if shape != (size[1], size[0]):
            self.close()
            raise BadInputError(f"{self.label} {self.path} is {shape[1]}x{shape[0]}, the shot is "
                                f"{size[0]}x{size[1]}")

    def _numbering_hint(self, shot: ClipInfo) -> str:
        """For a video shot whose matte sequence lacks its frames: how to number the video as
        the files are (a roto exported from Nuke starts at 1001 or 1)."""
        if not shot.metadata.get("codec"):
            return ""
        try:
            own = discover(self.path)[0].frames
        except PomaganError:
            return ""
        return (f" (its files start at {own[0]}; the shot is a video, numbered from 0 unless --start-frame "
                f"numbers it: --start-frame {own[0]} lines them up)") if own else ""

    def _levels(self, rgb: np.ndarray) -> np.ndarray:
        return np.clip(np.nan_to_num(rgb.mean(axis=-1, dtype=np.float32)), 0.0, 1.0)

    def get(self, number: int) -> np.ndarray:
        """The matte for frame ``number`` ([H, W] float32); frames are asked for in order."""
        if self._still is not None:
            return self._still
        if self._frames is None:
            self._frames = iter(self._source)
        for found, rgb in self._frames:
            if found == number:
                return self._levels(rgb)
        raise MissingFramesError(f"{self.label} {self.path} has no frame {number}", [number])

    def close(self) -> None:
        if self._source is not None:
            self._source.close()


class GarbageMatte(ShotMatte):
    """``--garbage-matte``: a matte that limits the render's, for what the model wrongly keeps
    (background clutter, props): the render's alpha and premultiplied foreground are multiplied
    by it, so white keeps and black removes. Read as :class:`ShotMatte` reads a matte."""

    label = "garbage matte"

    def apply(self, numbers: list[int], alpha: np.ndarray, fg: np.ndarray | None) -> None:
        """Multiplies a batch's alpha [N, H, W] and premultiplied foreground [N, H, W, C] in place."""
        for i, number in enumerate(numbers):
            matte = self.get(number)
            alpha[i] *= matte
            if fg is not None:
                fg[i] *= matte[..., None]


class Roto(ShotMatte):
    """``--roto``: a roto of the subject, drawn on its edge, fed to the alpha network in place
    of the segmentation network's guess (the network's second input, what it was trained to
    refine): where the subject is comes from the roto, the soft detail at its edge (hair,
    motion blur) from the picture. Read as :class:`ShotMatte` reads a matte, then made hard at
    0.5: a feathered shape counts as its mid-line, which is where its edge was drawn (a soft
    input moves the network's edge: on the synthetic test set a true shape blurred by 4 working
    pixels scores alpha MSE x1e3 5.56 as it is, 1.30 made hard)."""

    label = "roto"

    def _levels(self, rgb: np.ndarray) -> np.ndarray:
        return (super()._levels(rgb) >= 0.5).astype(np.float32)

    def batch(self, numbers: list[int]) -> np.ndarray:
        """The rotos of a batch's frames, [N, H, W] float32 of 0 and 1."""
        return np.stack([self.get(number) for number in numbers])


def _write_frame(sinks: dict[str, FrameSink], number: int, alpha: np.ndarray,
                 fg: np.ndarray | None, alpha_mode: str, background: np.ndarray | None,
                 attributes: Sequence[tuple[str, str, Any]] = ()) -> None:
    """One frame's alpha [H, W], RGBA foreground and composite to their sinks, each with the
    input frame's own header ``attributes``."""
    for kind, sink in sinks.items():
        if kind == "alpha" or (fg is not None and (kind != "comp" or background is not None)):
            sink.write(number, output_frame(kind, alpha, fg, alpha_mode, background), attributes)


def render_settings(engine: Any, *, window: str, colorspace: str | None, alpha_mode: str,
                    garbage_matte: str | os.PathLike[str] | None, comp: str | None,
                    temporal: int = 0, roto: str | os.PathLike[str] | None = None) -> str:
    """What decides a render's pixels besides the frames (the engine's
    :meth:`~pomagan_post.Engine.matte_settings`, the window matted, the colour space asked for,
    the alpha convention, the garbage matte's and background's names, ``--temporal`` and the
    roto's name when given)
    as compact JSON: EXR and PNG frames record it in ``pomagan:settings``, TIFF in its Software
    tag, DPX in its user data, a video in its comment. ``--skip-existing``
    compares it with what the existing outputs record (:func:`_check_settings`)."""
    own = getattr(engine, "matte_settings", None)  # (a stand-in engine may have none)
    settings = {**(own() if own else {}), "window": window, "colorspace": colorspace or "auto",
                "alpha": alpha_mode, "garbage_matte": Path(garbage_matte).name if garbage_matte else None,
                "comp": Path(comp).name if comp else None}
    if temporal:  # (absent when off, so records made before the option still compare)
        settings["temporal"] = temporal
    if roto:  # (likewise)
        settings["roto"] = Path(roto).name
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


#: Settings a record leaves out when they are at their default.
_SETTING_DEFAULTS = {"temporal": 0, "roto": None}


def _settings_difference(recorded: str, settings: str) -> str:
    """``working_size 512 (this render: 384), tta none (this render: flip)``."""
    try:
        old = json.loads(recorded)
    except ValueError:
        return "an unreadable record"
    new = json.loads(settings)
    old, new = {**_SETTING_DEFAULTS, **old}, {**_SETTING_DEFAULTS, **new}
    return ", ".join(f"{key} {old.get(key)} (this render: {new.get(key)})"
                     for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)) or recorded


def _check_settings(plans: list[_Output], frames: list[int], settings: str,
                    headers: dict[Path, tuple[bool, str | None]]) -> None:
    """Refuse to add to image-sequence outputs whose existing ``frames`` were rendered with
    other settings: the shot would mix two mattes. Frames recording none (renders by older
    versions) are not compared. ``headers``: what :func:`_output_headers` read of each file
    (a file not in it is read here)."""

    for plan in plans:
        if plan.video:
            continue
        other: dict[str, list[int]] = {}
        for frame in frames:
            for path in plan.paths([frame]):
                recorded = _opened(path, headers)[1]
                if recorded is not None and recorded != settings:
                    other.setdefault(recorded, []).append(frame)
                    break
        if other:
            recorded = max(other, key=lambda record: len(other[record]))  # the most frames' record
            raise BadInputError(
                f"{plan}: frame(s) {format_frame_list(sorted(f for fs in other.values() for f in fs))} "
                f"were rendered with other settings: {_settings_difference(recorded, settings)}; "
                "--skip-existing would mix two mattes in one shot. Resume with the same settings, "
                "or render without --skip-existing to replace every frame")


def _finished_frames(plans: list[_Output], wanted: list[int], info: ClipInfo | None,
                     codec: str, settings: str | None = None,
                     log: Callable[[str], None] = lambda message: None,
                     headers: dict[Path, tuple[bool, str | None]] | None = None,
                     overwrite: bool = False) -> tuple[list[int], dict[str, list[int]]]:
    """(frames every output in ``plans`` already has, and per video output the frames its
    partial file from an interrupted render holds). An image frame on disk counts when it is
    not empty and its header opens (``headers``: what :func:`_output_headers` read, else read
    here); with ``overwrite``, not one that ``render`` did not write (:func:`_not_ours`).
    ``plans`` leaves finished videos out; an
    unfinished one has the first frames its partial holds (:func:`resumable_frames`), the rest
    are rendered and appended to them; a partial file made with other ``settings`` or by
    another encoder than ``codec``'s is not kept (the video is rendered afresh, and ``log``
    says why)."""
    from .io.video import VIDEO_CODECS, other_encoder, partial_path, partial_settings, resumable_frames

    resume: dict[str, list[int]] = {}
    done = set(wanted)
    for plan in plans:
        if plan.video:
            recorded = partial_settings(plan.target)
            encoder = other_encoder(partial_path(plan.target), codec)
            if settings is not None and recorded is not None and recorded != settings:
                log(f"{plan.target}: the partial file of an interrupted render was made with other "
                    f"settings: {_settings_difference(recorded, settings)}; rendering it afresh")
                held = 0
            elif encoder is not None:
                log(f"{plan.target}: the partial file of an interrupted render was encoded with "
                    f"{encoder} (this render: {VIDEO_CODECS[codec].encoder}, --codec {codec}); "
                    "rendering it afresh")
                held = 0
            else:
                held = resumable_frames(plan.target, info, wanted, codec, plan.kind) if info else 0
            resume[plan.kind] = wanted[:held]
            done &= set(resume[plan.kind])
        else:
            present = {f for f in wanted if all(path.exists() for path in plan.paths([f]))}
            damaged = [f for f in sorted(present) if not all(_kept(path, headers) for path in plan.paths([f]))]
            if damaged:
                log(f"{plan}: frame(s) {format_frame_list(damaged)} on disk cannot be read (empty or "
                    "damaged): rendered again")
            others = [f for f in sorted(present)
                      if overwrite and any(_not_ours(_opened(path, headers)) for path in plan.paths([f]))]
            if others:
                log(f"{plan}: frame(s) {format_frame_list(others)} on disk were not written by "
                    "pomagan-post: replaced (--overwrite)")
            done &= present - set(damaged) - set(others)
    return [f for f in wanted if f in done], resume


def _kept(path: Path, headers: dict[Path, tuple[bool, str | None]] | None) -> bool:
    """Whether a frame file on disk is one to keep under --skip-existing: not empty, and its
    header opens (a render's own files always are, being written whole and then renamed; a
    copy cut short or a file zeroed by a full disk elsewhere is not). Pixel data is not read."""
    return _opened(path, headers)[0]


def _opened(path: Path, headers: dict[Path, tuple[bool, str | None]] | None) -> tuple[bool, str | None]:
    """:func:`_header` of ``path``, from ``headers`` when it was read before."""
    return headers[path] if headers is not None and path in headers else _header(path)


#: The first bytes of each image output format (a frame file of the format, whole or cut short).
_MAGIC = {".exr": (b"\x76\x2f\x31\x01",), ".png": (b"\x89PNG",), ".dpx": (b"SDPX", b"XPDS"),
          ".tif": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")}
_MAGIC[".tiff"] = _MAGIC[".tif"]


def _header(path: Path) -> tuple[bool, str | None]:
    """(whether a frame file's header opens, the render settings it records): an empty or
    vanished file does not open. A file that is not a picture of its extension's format at all
    (notes saved under a frame's name) counts as opening with no settings: someone else's
    file (:func:`_not_ours`), not a damaged frame to render again."""
    from .io.images import frame_header

    try:
        if path.stat().st_size == 0:
            return False, None
        with open(path, "rb") as handle:
            start = handle.read(4)
    except OSError:
        return False, None
    magic = _MAGIC.get(path.suffix.lower())
    if magic is not None and not start.startswith(magic):
        return True, None
    return frame_header(path)


def _output_headers(plans: list[_Output], frames: list[int]) -> dict[Path, tuple[bool, str | None]]:
    """Each image output file already on disk for ``frames``: (whether its header opens, the
    render settings it records), read once for :func:`_refuse_replacing_others`,
    :func:`_finished_frames` and :func:`_check_settings`."""
    return {path: _header(path) for plan in plans if not plan.video
            for path in plan.paths(frames) if path.exists()}


def _not_ours(opened: tuple[bool, str | None]) -> bool:
    """A picture this tool did not write: its header opens and records no render settings (every
    frame ``render`` writes records them; a file that does not open is a damaged frame)."""
    return opened == (True, None)


def _refuse_replacing_others(plans: list[_Output], frames: list[int],
                             headers: dict[Path, tuple[bool, str | None]]) -> None:
    """Before any work: a file at an output's name that ``render`` did not write (a picture
    recording no render settings, a video whose comment records none) is someone's work, so it
    is neither replaced nor taken as a finished frame; ``overwrite`` lets a render replace it.
    Outputs of earlier renders are replaced (or, with --skip-existing, kept) as before; an
    empty file, or a frame whose header does not open, is no picture and is replaced."""
    from .io.video import recorded_settings

    def hint(kind: str, them: str = "it") -> str:
        return (f"move or rename {them}, give the output another name (-o, --{kind}-name), or pass "
                f"--overwrite to replace {them}")

    for plan in plans:
        if plan.video:
            path = Path(plan.target)
            if path.is_file() and path.stat().st_size > 0 and recorded_settings(path) is None:
                raise BadInputError(f"{path} exists and was not written by pomagan-post (it records "
                                    f"no render settings): " + hint(plan.kind))
            continue
        others = [f for f in frames if any(_not_ours(headers.get(path, (False, None)))
                                           for path in plan.paths([f]))]
        if others:
            what = (f"{plan.paths(others)[0]} exists" if len(others) == 1 else
                    f"frames {format_frame_list(others)} of {plan} exist")
            raise BadInputError(f"{plan.kind} output: {what} and {'was' if len(others) == 1 else 'were'} "
                                f"not written by pomagan-post (no render settings recorded): "
                                + hint(plan.kind, "it" if len(others) == 1 else "them"))


def _refuse_videos_being_written(plans: list[_Output]) -> None:
    """Before any work: a video output that another render is writing right now (two farm
    chunks into one movie) is refused, naming that process (see :class:`~.io.atomic.Claim`;
    the sink takes the claim itself, which closes the gap between this check and its start)."""
    from .io.atomic import being_written, claimed_by

    for plan in plans:
        holder = claimed_by(plan.target) if plan.video else None
        if holder is not None:
            raise being_written(plan.target, holder)


def _missing_dirs(folders: Iterable[Path]) -> list[Path]:
    """The folders among ``folders`` and their parents that do not exist yet, deepest first."""
    missing: set[Path] = set()
    for folder in folders:
        folder = Path(os.path.abspath(folder))
        while not folder.exists() and folder not in missing:
            missing.add(folder)
            folder = folder.parent
    return sorted(missing, key=lambda f: len(f.parts), reverse=True)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- render -----------------------------------------------------------------------------------

def render(
    input: str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str] | None = None,
    outputs: Sequence[str] = ("alpha", "fg"),
    alpha_name: str | None = None,
    fg_name: str | None = None,
    comp_name: str | None = None,
    format: str | None = None,
    codec: str | None = None,
    frames: str | Sequence[int] | None = None,
    start_frame: int | None = None,
    fps: str | float | Fraction | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int | str = 4,
    working_size: int | None = None,
    tta: str = "none",
    weights: str | os.PathLike[str] | None = None,
    writers: int | None = None,
    skip_existing: bool = False,
    overwrite: bool = False,
    on_error: str = "stop",
    premultiplied: bool | None = None,
    comp: str | None = None,
    colorspace: str | None = None,
    audio: bool = True,
    exr_compression: str = "zip",
    garbage_matte: str | os.PathLike[str] | None = None,
    display_window: bool = False,
    temporal: int = 0,
    roto: str | os.PathLike[str] | None = None,
    engine: Any = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    callback: Callable[[int, int, int], None] | None = None,
) -> RenderReport:
    """Render alpha and foreground (and optionally a composite) for a shot.

    Args:
        input: a video file, an image sequence pattern (``plate.####.exr``, ``%04d``, ``$F4``,
            ``@``), a folder holding one sequence, or a single image.
        output_dir: where outputs go; default ``<stem>_pomagan/`` beside the input.
        outputs: which of ``alpha``, ``fg`` to write (``comp`` is added when ``comp`` is set).
        alpha_name, fg_name, comp_name: output file or pattern per kind (relative names go into
            ``output_dir``); default ``<stem>_<kind>.####.<ext>``, ``<stem>_<kind>.<ext>`` or
            ``<stem>_<kind>.mov``.
        format: ``exr``, ``png``, ``tiff``, ``dpx`` (image sequences) or ``video``; default
            the input's family.
        codec: video codec: ``prores4444`` (default), ``prores4444-fast`` (FFmpeg's prores_aw:
            about 3x less CPU, more loss), ``png`` (PNG in MOV) or ``ffv1`` (MKV); one given
            for image outputs is said to have no effect.
        frames: frame range (``"1001-1100x2"``) or list; default the whole clip.
        start_frame: a video's first frame number (default 0): its frames, ``frames``, image
            sequence outputs, the report and a garbage matte's frames count from it (Nuke
            numbers a movie from 1; plates often start at 1001). Refused for a sequence.
        fps: an image sequence's frame rate (``25``, ``23.976``, ``24000/1001``), over the one
            its files state (EXR ``FramesPerSecond``, DPX frame rate) or for files that state
            none (PNG, TIFF): it times a video output and is written into EXR/DPX outputs.
            Without either, a video output runs at 24 fps (the render says so). Refused for a
            video, whose rate is its own.
        device, precision, batch_size, working_size, tta: engine settings (see
            :class:`pomagan_post.Engine`; ``batch_size="auto"`` sizes batches from free GPU
            memory; ``tta="flip"`` averages each frame's matte with its mirror image's).
        weights: checkpoint path; default the bundled one.
        writers: writer threads per image-sequence output (default: half the CPU cores, 2 to
            8); videos encode on FFmpeg's own threads.
        skip_existing: leave frames whose outputs all exist (resume / farm splits); raises
            :class:`BadInputError` when EXR/PNG frames there record other settings
            (:func:`render_settings`), and renders afresh a video partial file that does.
        overwrite: replace files at the outputs' names that ``render`` did not write (they
            record no render settings); without it such a file stops the render before any
            work (:class:`BadInputError`). Earlier renders' outputs are replaced regardless.
        on_error: ``stop`` at the first missing or unreadable input frame (raises
            :class:`MissingFramesError` naming it), or ``skip`` it and report it in ``failed``.
        premultiplied: force (True) or refuse (False) premultiplied foreground; default the
            output format's convention.
        comp: background for a review composite: colour name, ``#rrggbb``, ``r,g,b`` or image.
        colorspace: override the input's detected colour space (see :mod:`pomagan_post.colour`).
        audio: carry the input's audio tracks (all of them) into a foreground video.
        exr_compression: compression of EXR outputs (see
            :data:`~pomagan_post.io.images.EXR_COMPRESSIONS`; lossless ``zip`` by default).
        garbage_matte: an image, image sequence or video whose matte limits the render's
            (white keeps, black removes; see :class:`GarbageMatte`).
        display_window: EXR outputs too get the picture as shown (the display window), not
            the region of the frames' data windows: overscan dropped, and a stray pixel far
            outside the frame in one CG frame no longer makes the network see a huge region.
        temporal: steady the matte over this many frames either side (0: off, each frame on
            its own): neighbours' mattes moved along the optical flow and averaged where the
            pictures match (:mod:`pomagan_post.temporal`). The neighbours of the frames rendered
            are read and matted too, so a farm chunk's frames match a whole render's.
        roto: an image, image sequence or video of the subject's shape drawn on its edge (white
            inside), fed to the alpha network instead of the segmentation network's guess
            (:class:`Roto`); with ``temporal``, needed for the neighbours read too.
        engine: a ready :class:`pomagan_post.Engine` (the settings above are then unused).
        progress: show a progress bar (frames, fps, ETA) on stderr.
        log: where messages go (default: stderr when ``progress``, else nowhere).
        callback: called as ``callback(frame_number, done, total)`` after each frame; raise
            from it to cancel.

    Returns:
        A :class:`RenderReport`. Raises :class:`PomaganError` subclasses for bad input,
        missing frames (``on_error="stop"``), unsupported formats, weights and devices.
    """
    log = log or (_stderr if progress else (lambda message: None))
    if on_error not in ("stop", "skip"):
        raise BadInputError(f"on-error must be stop or skip, not {on_error!r}")
    kinds = [k for k in OUTPUT_KINDS if k in set(outputs) | ({"comp"} if comp else set())]
    unknown = set(outputs) - set(OUTPUT_KINDS)
    if unknown or not kinds:
        raise BadInputError(f"outputs must be some of alpha, fg, comp; got {', '.join(outputs) or 'none'}")
    if ("comp" in outputs or comp_name) and not comp:
        raise BadInputError("a comp output needs --comp COLOUR|IMAGE (e.g. --comp green) to put the "
                            "foreground over")
    if output_dir is not None and not Path(output_dir).is_dir() and (
            Path(output_dir).suffix.lower() in IMAGE_EXTENSIONS or _is_video(output_dir)):
        raise BadInputError(f"-o takes a folder, not a file name ({output_dir}); name the outputs with "
                            "--alpha-name / --fg-name / --comp-name")
    codec_given, codec = codec is not None, codec or "prores4444"
    _video_codec(codec)
    check_exr_compression(exr_compression)
    temporal = check_radius(temporal)
    if format is not None and format not in OUTPUT_FORMATS:
        raise BadInputError(f"unknown format {format!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    from .engine import resolve_batch_size

    batch_size = resolve_batch_size(batch_size, name="batch size")
    if writers is not None and int(writers) < 1:
        raise BadInputError(f"writers must be at least 1, got {writers}")
    if colorspace:
        colorspace = resolve_colorspace(colorspace)
    input_str = os.fspath(input)
    video_in = _is_video(input_str)
    if video_in and not Path(input_str).is_file():
        raise BadInputError(f"input not found: {input_str}")
    if start_frame is not None and not video_in:
        _refuse_start_frame(input_str)
    if fps is not None and video_in:
        raise BadInputError(f"{Path(input_str).name}: --fps sets an image sequence's frame rate; a "
                            "video's rate is its own (conform it first, e.g. ffmpeg -vf fps=25)")
    rate = parse_rate(fps)
    if isinstance(frames, str) and has_timecode(frames):  # a range in the clip's timecode
        with open_source(input_str, on_error="skip", start_frame=start_frame) as whole:
            clip = whole.info
        origin = clip.metadata.get("frame_origin", clip.frames[0] if clip.frames else 0)
        typed, frames = frames, timecodes_to_frames(frames, clip.timecode, clip.fps, int(origin),
                                                    Path(input_str).name)
        try:
            parse_frame_range(frames)
        except BadInputError as exc:  # (said in the timecodes typed, not the numbers they became)
            raise BadInputError(f"--frames {typed}: {exc} (frame numbers of those timecodes)") from None
    wanted_list = parse_frame_range(frames) if isinstance(frames, str) else (
        sorted(set(int(f) for f in frames)) if frames is not None else None)
    stem, default_dir, input_pattern = _stem_and_dir(input_str, video_in)
    out_dir = Path(output_dir) if output_dir is not None else default_dir
    fmt = format or default_format(input_str)

    # Frames and input paths, cheaply (no decoding), to plan outputs and skip finished frames.
    probe: FrameSource | None = None
    if video_in:
        probe = open_source(input_str, frames=wanted_list, colorspace=colorspace, start_frame=start_frame)
        wanted = list(probe.info.frames)
        input_paths = [Path(input_str)]
        single = False
    else:
        seq, wanted = discover(input_str, wanted_list)
        input_paths = [seq.pattern.path(f) for f in seq.frames]
        odd = numbered_otherwise(seq.pattern)
        if odd:
            log(f"{seq.pattern}: {len(odd)} file(s) of its name numbered otherwise than its {seq.pattern.padding}-digit "
                f"frames are not part of it (e.g. {odd[0]}; a negative frame of #### is -002, not -0002)")
        single = seq.pattern.is_single_file
        whole = sequence_of(input_str) if single else None
        if whole is not None:  # e.g. a test of one frame before the whole shot: say how to match
            number = next(f for f in whole.frames if whole.pattern.path(f).name == Path(input_str).name)
            log(f"{Path(input_str).name} is frame {number} of {Path(str(whole.pattern)).name} "
                f"({len(whole.frames)} frames on disk); rendered as a single image. To render it as "
                f"that frame of the sequence (the names and folder a render of the whole shot uses, "
                f"so --skip-existing keeps it): {Path(str(whole.pattern)).name} --frames {number}")
    names = {"alpha": alpha_name, "fg": fg_name, "comp": comp_name}
    plans = _plan_outputs(kinds, stem, out_dir, fmt, codec, input_pattern, single, names)
    alpha_mode = _alpha_mode(plans, premultiplied, codec)
    if codec_given and not any(p.video for p in plans):
        log(f"--codec {codec} is for video outputs; these outputs are image files, so it has no effect "
            "(-f video writes videos)")
    # Only EXR carries data and display windows; any other output gets the picture as shown.
    window = ("data" if not display_window and all(not p.video and p.target.extension == ".exr" for p in plans)
              else "display")
    extra_inputs = [Path(comp)] if comp and Path(comp).is_file() else []
    for given in (garbage_matte, roto):
        if given is not None:
            extra_inputs += _files_of(given)
    _refuse_overwriting_inputs(plans, input_paths, wanted, extra_inputs)
    refuse_unwritable(_output_folders(out_dir, plans))
    headers = _output_headers(plans, wanted)  # each existing output frame's header, read once
    if not overwrite:
        _refuse_replacing_others(plans, wanted, headers)
    _refuse_videos_being_written(plans)

    report = RenderReport(input=input_str, outputs={p.kind: str(p) for p in plans},
                          frames=list(wanted), alpha_mode=alpha_mode)
    todo = list(wanted)
    resume: dict[str, list[int]] = {}
    header = probe
    fg_audio = input_str if video_in and audio else None  # carried into a foreground video
    settings_of = functools.partial(render_settings, window=window, colorspace=colorspace,
                                    alpha_mode=alpha_mode, garbage_matte=garbage_matte, comp=comp,
                                    temporal=temporal, roto=roto)
    settings: str | None = None
    if skip_existing:
        try:
            # What is there must have been rendered as this render would: the engine's
            # settings (and its weights) are needed to tell, so it is made here.
            if engine is None:
                engine = build_engine(weights, device, precision, working_size, batch_size, log, tta)
            settings = settings_of(engine)
            # a finished video is left as it is; an unfinished one goes on from its partial file
            from .io.video import VIDEO_CODECS, other_encoder, partial_path, recorded_settings, recorded_span

            finished = [p for p in plans if p.video and Path(p.target).exists()
                        and not (overwrite and recorded_settings(p.target) is None)]
            for plan in finished:
                span = recorded_span(plan.target)
                if span is not None and span != (wanted[0], len(wanted)):
                    first, count = span
                    raise BadInputError(
                        f"{plan.target}: a finished video of frames {first}-{first + count - 1} ({count}); "
                        f"this render asks for {format_frame_list(wanted)} ({len(wanted)}). --skip-existing "
                        "keeps a finished video as it is and cannot add frames to it: render without "
                        "--skip-existing to replace it (to split a shot across farm tasks, render image "
                        "sequences, or give each task's video its own name)")
                recorded = recorded_settings(plan.target)
                if recorded is not None and recorded != settings:
                    raise BadInputError(
                        f"{plan.target}: a finished video rendered with other settings: "
                        f"{_settings_difference(recorded, settings)}; --skip-existing keeps a finished "
                        "video as it is, so it would not be this render's matte. Resume with the same "
                        "settings, or render without --skip-existing to replace it")
                encoder = other_encoder(plan.target, codec)
                if encoder is not None:
                    raise BadInputError(
                        f"{plan.target}: a finished video encoded with {encoder} (this render: "
                        f"{VIDEO_CODECS[codec].encoder}, --codec {codec}); --skip-existing keeps a "
                        "finished video as it is. Render without --skip-existing to replace it")
            for plan in finished:  # a render killed between putting it in place and clearing up
                partial_path(plan.target).unlink(missing_ok=True)
            plans = [p for p in plans if p not in finished]
            if header is None and any(p.video for p in plans):  # a sequence rendered to a video
                header = open_source(input_str, frames=wanted, on_error="skip", colorspace=colorspace,
                                     window=window)
                header.close()
                header.info.fps = rate or header.info.fps
            done, resume = _finished_frames(plans, wanted, header.info if header else None, codec,
                                            settings, log, headers, overwrite)
            _check_settings(plans, done, settings, headers)
        except BaseException:
            if probe is not None:
                probe.close()
            raise
        report.skipped_existing = done
        done_set = set(done)
        todo = [f for f in wanted if f not in done_set]
        for kind, held in resume.items():
            if held:
                log(f"{report.outputs[kind]}: resuming after frame {held[-1]}: {len(held)} frame(s) "
                    "kept from the interrupted render")
    if not todo:
        if probe is not None:
            probe.close()
        for plan in plans:  # a video whose partial file holds every frame: finish it
            if resume.get(plan.kind):
                open_sink(plan.kind, plan.target, header.info, alpha_mode=alpha_mode, codec=codec,
                          audio_from=fg_audio if plan.kind == "fg" else None,
                          resume=resume[plan.kind], settings=settings).close()
        log(f"all {len(wanted)} frame(s) already rendered in {out_dir}")
        return report

    todo_set = set(todo)
    read = todo  # the frames to decode and matte: with --temporal, the neighbours too
    steadying = bool(temporal) and not single
    if steadying:
        present = probe.clip_frames if video_in else seq.frames  # the whole shot's frames
        shot = sorted(present)
        position = {n: i for i, n in enumerate(shot)}
        read = neighbours(shot, todo, temporal)
    if probe is not None and read == wanted:
        source = probe
    else:
        if probe is not None:
            probe.close()
        # (a sequence's neighbours read for --temporal may fail without failing the render)
        source = open_source(input_str, frames=read, colorspace=colorspace, start_frame=start_frame,
                             on_error="skip" if steadying and not video_in else on_error,
                             window=window, carry=True)
    info = source.info
    info.fps = rate or info.fps
    # What the outputs hold: the frames to render, not their neighbours read for --temporal.
    out_info = info if not steadying else dataclasses.replace(
        info, frames=[n for n in info.frames if n in todo_set])
    if info.fps is None and any(p.video for p in plans):
        log(f"{Path(input_str).name}: its files state no frame rate; the video is written at 24 fps "
            "(--fps sets it)")
    turned = (f"a display matrix turning it {info.metadata['rotation']} degrees counterclockwise"
              if info.metadata.get("rotation") else
              f"Orientation {info.metadata['orientation']}" if info.metadata.get("orientation", 1) != 1
              else None)
    if turned:
        stored = "x".join(str(v) for v in info.metadata["stored_size"])
        log(f"{Path(input_str).name}: stored {stored} with {turned}; rendering it the way viewers "
            f"show it: outputs are {info.width}x{info.height}, stored that way up")
    if info.pixel_aspect and abs(info.pixel_aspect - 1.0) > 1e-3:
        log(f"{Path(input_str).name}: pixel aspect {info.pixel_aspect:g} (anamorphic): matted as "
            f"shown, desqueezed; outputs keep the stored {info.width}x{info.height} and the aspect")
    _warn_of_a_wide_region(info, window, Path(input_str).name, log)
    if "source_data_window" in info.metadata:
        log(f"{Path(input_str).name}: data window {tuple(info.metadata['source_data_window'])} is not "
            f"the display window {tuple(info.metadata['data_window'])} (x, y, w, h); outputs other "
            f"than EXR cannot carry both, so they are the picture as shown, {info.width}x{info.height}")
    if info.metadata.get("has_alpha") and garbage_matte is None and roto is None:
        hint = ("" if info.metadata.get("codec") else
                "; to keep the matte inside that alpha, give the input as --garbage-matte too "
                "(or as --roto when it is the person's shape drawn on their edge)")
        log(f"{Path(input_str).name}: has an alpha channel, not used: the matte is made from the "
            f"picture alone{hint}")
    if info.metadata.get("interlaced"):
        from .io.video import interlaced_note

        log(interlaced_note(Path(input_str).name))
    if info.metadata.get("frame_rate_mode") == "variable":
        log(f"{Path(input_str).name}: variable frame rate ({info.metadata['decoded_frames']} frames, "
            f"{float(info.metadata['average_fps']):.4g} fps on average); conformed to its base rate, "
            f"{float(info.fps):.4g} fps, each source frame held until the next one's time, so the "
            f"outputs line up with the source")
    report.colorspace = info.colorspace
    report.clip_fps = info.fps
    background = parse_background(comp, info) if comp else None
    garbage = shapes = None
    try:
        if garbage_matte is not None:
            garbage = GarbageMatte(garbage_matte, info, start_frame)
        if roto is not None:
            shapes = Roto(roto, info, start_frame)
    except BaseException:
        source.close()
        if garbage is not None:
            garbage.close()
        raise
    if engine is None:
        engine = build_engine(weights, device, precision, working_size, batch_size, log, tta)
    settings = settings or settings_of(engine)

    # Folders this render makes (the output folder, and those in --alpha-name sub/... names),
    # deepest first: a render that wrote nothing removes the ones it left empty.
    made_dirs = _missing_dirs(_output_folders(out_dir, plans))
    out_dir.mkdir(parents=True, exist_ok=True)
    sinks: dict[str, FrameSink] = {}
    bar = None
    started = time.perf_counter()
    try:
        for plan in plans:
            if plan.video or isinstance(plan.target, Path):
                Path(plan.target).parent.mkdir(parents=True, exist_ok=True)
            sinks[plan.kind] = open_sink(
                plan.kind, plan.target, out_info, alpha_mode=alpha_mode, codec=codec,
                audio_from=fg_audio if plan.kind == "fg" else None,
                writers=writers, resume=resume.get(plan.kind), exr_compression=exr_compression,
                settings=settings)
        total = len(out_info.frames)
        if progress:
            from .progress import progress as progress_bar

            bar = progress_bar(total, desc=stem, unit="frame", smoothing=0.1)
        # Decode runs ahead on its own thread while the engine works on the current batch;
        # sinks write behind on theirs. The last batch runs at the full batch shape too, so a
        # frame's matte is the same whichever render (whole, resumed, a farm chunk) computes it.
        # An anamorphic shot is matted desqueezed (the engine takes its pixel aspect).
        from .engine import padded_batches, shot_pixel_aspect, taking_turns

        decoded: Iterator[tuple[int, np.ndarray]] = iter(source)
        if steadying and isinstance(source, ImageSequenceSource):
            decoded = _unread_neighbours_left_out(source, todo_set, on_error)
        elif steadying:
            decoded = _lost_neighbours_left_out(source, todo_set, on_error, report.failed)
        elif on_error == "skip" and not isinstance(source, ImageSequenceSource):
            decoded = _skipping_undecodable(source, report.failed)
        with taking_turns(engine), padded_batches(engine, not single), \
                shot_pixel_aspect(engine, info.pixel_aspect):
            # Frames per batch: the engine's (chosen for this frame size when it is "auto").
            fit_batch = getattr(engine, "fit_batch", None)
            group = int(fit_batch(info.height, info.width) if fit_batch else engine.batch_size)
            need_fg = "fg" in sinks or "comp" in sinks
            steady = None
            if steadying:  # frames go in by their place in the shot; only todo's are steadied
                steady = TemporalSteady(temporal, wanted={position[n] for n in todo if n in position})

            def carried(number: int) -> list[tuple[str, str, Any]]:
                """The input frame's own header attributes (a sequence's), taken from the source."""
                return source.take_attributes(number) if isinstance(source, ImageSequenceSource) else []

            def finish(numbers: list[int], alpha: np.ndarray, fg: np.ndarray | None) -> None:
                if garbage is not None:
                    garbage.apply(numbers, alpha, fg)
                for i, number in enumerate(numbers):
                    _write_frame(sinks, number, alpha[i], None if fg is None else fg[i], alpha_mode,
                                 background, carried(number))
                    report.written.append(number)
                    if bar is not None:
                        bar.update(1)
                    if callback is not None:
                        callback(number, len(report.written), total)

            def finish_steadied(frames: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
                for place, image, alpha in frames:
                    number = shot[place]
                    if number in todo_set:  # (not a neighbour read for its matte only)
                        finish([number], alpha[None], refit_foreground(engine, image, alpha) if need_fg else None)
                    else:
                        carried(number)  # (a neighbour's header goes into no output)

            for batch in _batches(prefetch(decoded, depth=max(2, 2 * group)), group):
                stop_point()  # SIGTERM / Ctrl-C under the CLI's StopSignals: stop between batches
                numbers = [n for n, _ in batch]
                images = np.stack([rgb for _, rgb in batch])  # [N, H, W, 3] in the input's encoding
                del batch
                rotos = None if shapes is None else shapes.batch(numbers)
                if steady is None:
                    finish(numbers, *matte(engine, images, info.colorspace, need_fg, log, rotos))
                    continue
                places = [position[n] for n in numbers]
                steady.push_batch(places, images, matte(engine, images, info.colorspace, False, log, rotos)[0],
                                  info.colorspace)
                del images
                finish_steadied(steady.ready(through=places[-1]))
            if steady is not None:
                finish_steadied(steady.flush())
        for sink in sinks.values():
            sink.close()
        report.audio = getattr(sinks.get("fg"), "audio_mode", "")
    except BaseException as exc:
        # Frames already computed are complete: image files still land, and a video cut short
        # keeps what it encoded in its hidden partial file, so a resume skips them. The error
        # carries what was done so far (``render --report`` writes it for a stopped render).
        report.settle(started, source)
        if isinstance(exc, MissingFramesError):  # the frame that stopped it, with the reason
            for number in exc.frames:
                report.failed.setdefault(number, str(exc))
        exc.render_report = report  # type: ignore[attr-defined]
        for sink in sinks.values():
            try:
                if isinstance(sink, ImageSequenceSink):
                    sink.close()
                else:
                    sink.abort()
            except BaseException:
                pass
        # Written means on disk in every output: frames handed to an image sink that failed (a
        # full or read-only disk) are not, nor a video's frames still being converted when it
        # stopped (its partial file holds the frames before them).
        landed = [set(sink.written) for sink in sinks.values() if hasattr(sink, "written")]
        if landed:
            report.written = [n for n in report.written if all(n in held for held in landed)]
        for folder in made_dirs:  # a render that wrote nothing leaves no empty folder behind
            try:
                folder.rmdir()
            except OSError:  # not empty: something was written there
                pass
        raise
    finally:
        if bar is not None:
            bar.close()
        source.close()
        for given in (garbage, shapes):
            if given is not None:
                given.close()
    report.settle(started, source)
    if report.repeated:
        from .io.video import repeated_note

        log(repeated_note(Path(input_str).name, report.repeated))
    return report
