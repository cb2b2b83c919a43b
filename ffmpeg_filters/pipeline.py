"""``ffmpeg decode | pomagan-post pipe | ffmpeg encode``: probe, build the commands, run them.

No temporary frames: the three stages are joined by OS pipes. The encoder writes a temporary
file beside the output that is renamed into place only when all three stages succeeded.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import av

from pomagan_post.errors import BadInputError, MissingFramesError, PomaganError, UnsupportedFormatError, frame_list
from pomagan_post.io.atomic import Claim, refuse_unwritable
from pomagan_post.io.base import conform_rate, quarter_turns
from pomagan_post.io.timecode import advance_timecode, has_timecode, timecodes_to_frames
from pomagan_post.io.video import duration_tag, interlaced_note, repeated_note
from pomagan_post.io.yuv import untagged_matrix
from pomagan_post.pipe import INPUT_PIX_FMTS, PIXEL_FORMATS
from pomagan_post.stopping import stop_point

from .presets import PRESETS, Preset

__all__ = ["StageFailedError", "RunReport", "probe", "avi_pictures", "avi_repeated", "build_commands", "check_paths", "format_commands", "run",
           "ffmpeg_encoders", "parse_frames", "FFMPEG", "FFPROBE"]

FFMPEG = os.environ.get("POMAGAN_FFMPEG", "ffmpeg")
FFPROBE = os.environ.get("POMAGAN_FFPROBE", "ffprobe")
_MUXERS = {".mov": "mov", ".mp4": "mp4", ".mkv": "matroska", ".webm": "webm"}
# ffprobe colour matrix tag -> the scale filter's name for it.
_SWS_MATRIX = {"bt709": "bt709", "smpte170m": "smpte170m", "bt470bg": "bt470", "bt2020nc": "bt2020",
               "bt2020c": "bt2020", "smpte240m": "smpte240m", "fcc": "fcc"}
_SWS_FLAGS = "spline+accurate_rnd+full_chroma_int"
_PIPE_COLORSPACE = {"smpte2084": "pq", "arib-std-b67": "hlg", "linear": "linear"}


class StageFailedError(PomaganError):
    """A stage of the pipeline (decode, pipe or encode) exited non-zero; ``stage``,
    ``returncode`` and ``stderr_tail`` say which and why."""

    exit_code = 1

    def __init__(self, stage: str, returncode: int, stderr_tail: str) -> None:
        lines = [line for line in stderr_tail.splitlines() if line.strip()]
        own = [line for line in lines if line.startswith("pomagan-post: ")]
        if stage == "pipe" and own:  # the pipe's own one-line error says it all
            text = own[-1].split(": ", 2)[-1]
            if 2 <= returncode <= 6:  # its exit code, as pomagan-post's (2 bad input ... 6 device)
                self.exit_code = returncode
        else:
            text = " | ".join(lines)[-600:]
        super().__init__(f"{stage} stage failed (exit {returncode}): {text or 'no message'}")
        self.stage = stage
        self.returncode = returncode
        self.stderr_tail = stderr_tail


def _broken_pipe(returncode: int | None, tail: Sequence[str]) -> bool:
    """A stage that failed only because the next one stopped reading (SIGPIPE's exit code, or
    ffmpeg's own 'Broken pipe' report): a consequence, not a cause."""
    return returncode in (141, -13) or any(map(_reports_broken_pipe, tail))


def _reports_broken_pipe(line: str) -> bool:
    """ffmpeg's line for a write to a stage that stopped reading."""
    return "Broken pipe" in line


def _cause(codes: dict[str, int | None], tails: dict[str, Sequence[str]],
           limited: bool) -> tuple[str, int] | None:
    """The stage that failed (name, exit code), or None when the run succeeded. A failing stage
    makes its neighbours fail too (a broken pipe upstream, a stream ending early downstream):
    the first failure in pipeline order that is not a broken pipe is the cause. When the
    encoder finished well and the others only lost their reader, the encoder stopped by
    itself (``limited``: its options say so, e.g. ``-frames:v``), which is not a failure."""
    bad = [(name, code) for name, code in codes.items() if code not in (None, 0)]
    if not bad:
        return None
    if codes.get("encode") == 0 and limited and all(_broken_pipe(code, tails[name]) for name, code in bad):
        return None
    causes = [(name, code) for name, code in bad if not _broken_pipe(code, tails[name])]
    return (causes or bad)[0]


#: ffmpeg output options that end the encoder before the input does.
_LIMITS = ("-frames", "-vframes", "-t", "-to", "-fs")


#: ffprobe's field orders of interlaced video (fields woven into each frame).
_WOVEN = ("tt", "bb", "tb", "bt")

#: Encoder options that give the output's video frame count.
_FRAME_COUNTS = ("-frames:v", "-frames:v:0", "-vframes", "-frames")


def _frames_from_count(extra_args: Sequence[str],
                       frames: str | tuple[int, int | None] | None) -> tuple[list[str], Any]:
    """``-- -frames:v N`` with no ``frames`` span: the span ``0-(N-1)`` instead of the encoder
    option, so that the sound is cut with the pictures (the encoder, stopped by its frame count,
    dropped the audio it had not muxed yet: 0.064 s of sound for 0.208 s of pictures)."""
    args = list(extra_args)
    if frames is not None:
        return args, frames
    for i, arg in enumerate(args[:-1]):
        if arg in _FRAME_COUNTS and args[i + 1].isdigit() and int(args[i + 1]) > 0:
            return args[:i] + args[i + 2:], (0, int(args[i + 1]) - 1)
    return args, frames


def _span_of(input: str, info: dict[str, Any], extra_args: Sequence[str],
             frames: str | tuple[int, int | None] | None) -> tuple[list[str], tuple[int, int | None] | None]:
    """The span of 0-based frames to matte (:func:`parse_frames`) and the encoder arguments left:
    a range typed in the input's timecode translated (as ``render --frames`` takes it), ``-- -frames:v
    N`` taken as ``0-(N-1)`` (:func:`_frames_from_count`)."""
    typed = frames
    if isinstance(frames, str) and has_timecode(frames):
        frames = timecodes_to_frames(frames, info.get("timecode"), info.get("fps"), 0, Path(input).name)
    args, frames = _frames_from_count(extra_args, frames)
    try:
        return args, parse_frames(frames)
    except BadInputError as exc:
        if frames == typed:
            raise
        reason = str(exc).removeprefix("--frames: ")  # said in the timecodes typed
        raise BadInputError(f"--frames {typed}: {reason} (frame numbers of those timecodes)") from None


def _limits_output(extra_args: Sequence[str]) -> bool:
    return any(arg == limit or arg.startswith(limit + ":") for arg in extra_args for limit in _LIMITS)


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that makes a stage get SIGTERM when this process dies (a
    farm's ``kill -9`` must not leave a decoder, a GPU pipe and an encoder running on)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before that took effect
            os._exit(143)

    return preexec


def _live_temp(path: Path) -> int | None:
    """The process id in a run's hidden temporary name when that process is still running."""
    try:
        pid = int(path.name.rsplit(".pomagan-", 1)[1].split(".", 1)[0])
    except (IndexError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # another user's process: running all the same
        pass
    return pid


def _span_text(first: int, last: int | None) -> str:
    """A frame span as the user writes it: ``12``, ``100-199``, or ``100-`` (to the end)."""
    if last is None:
        return f"{first}-"
    return str(first) if last == first else f"{first}-{last}"


def parse_frames(text: str | Sequence[int | None] | None) -> tuple[int, int | None] | None:
    """``"100-199"`` -> ``(100, 199)``, ``"100-"`` -> ``(100, None)`` (to the end), ``"100"`` ->
    ``(100, 100)``: a contiguous range of 0-based frame numbers, counted like ``pomagan-post
    render`` counts a video's frames (from its timestamps). A pair passes through, checked."""
    if text is None:
        return None
    if isinstance(text, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:(-)\s*(\d*)\s*)?", text)
        if not match:
            raise BadInputError(f"--frames takes FIRST-LAST, FIRST- or FRAME (0-based), not {text!r}")
        first = int(match.group(1))
        last = (int(match.group(3)) if match.group(3) else None) if match.group(2) else first
    else:
        first, last = text
    if first < 0 or (last is not None and last < first):
        raise BadInputError(f"--frames: the range {_span_text(first, last)} is empty")
    return first, last


def _run_json(cmd: list[str]) -> dict[str, Any]:
    try:
        done = subprocess.run(cmd, capture_output=True, check=False)
    except FileNotFoundError:
        raise UnsupportedFormatError(f"{cmd[0]} not found: install ffmpeg (ffmpeg and ffprobe on PATH)") from None
    if done.returncode != 0:
        # "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d1c0a7c180] moov atom not found": the reader's name
        # and address say nothing to a user, and the file is named once, first
        lines = (re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*", "", " ".join(line.split()))
                 for line in done.stderr.decode("utf-8", "replace").splitlines())
        message = "; ".join(line.removeprefix(f"{cmd[-1]}: ") for line in lines if line)
        raise BadInputError(f"not a video ffprobe can read: {cmd[-1]} ({message or 'unknown error'})")
    return json.loads(done.stdout or b"{}")


def _fraction(text: Any) -> Fraction | None:
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _bits(stream: dict[str, Any]) -> int:
    """Bits per sample: ffprobe's ``bits_per_raw_sample``, else read off the pixel format name."""
    raw = str(stream.get("bits_per_raw_sample", ""))
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    pix = str(stream.get("pix_fmt", ""))
    if match := re.search(r"f(16|32)(le|be)?$", pix):
        return int(match.group(1))
    if match := re.search(r"(?:p|gray|ya)(\d+)(le|be)$", pix):
        return int(match.group(1))
    return 16 if re.match(r"(rgb|bgr)(48|a64)", pix) else 8


def probe(input: str | os.PathLike[str]) -> dict[str, Any]:
    """What the pipeline needs to know about a video file, from ``ffprobe`` JSON.

    Returns a dict: ``container`` (ffprobe's format name), ``width``, ``height``, ``fps``
    (Fraction), ``pix_fmt``, ``bits`` (per
    sample), ``has_alpha``, ``codec``, ``frames`` (count, when the container says),
    ``video_offset`` (seconds from the file's start to the first video frame), ``has_audio``,
    ``audio_codecs``, ``timecode`` (or None), ``color_space``,
    ``color_transfer``, ``color_primaries``, ``color_range``, ``sample_aspect_ratio``,
    ``chroma_location``, ``rotation`` (the display matrix's quarter turn, degrees counterclockwise) and
    ``frame_rate_mode`` (``variable`` for phone footage conformed to ``fps``, its base rate;
    ``frames`` is then None). ``width``, ``height`` and ``sample_aspect_ratio`` are those of the
    frames as displayed: the decoding ffmpeg turns sideways-stored phone footage upright.
    """
    path = os.fspath(input)
    if not Path(path).is_file():
        raise BadInputError(f"input not found: {path}")
    data = _run_json([FFPROBE, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path])
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    if video is None:
        raise BadInputError(f"{path} has no video stream")
    if not int(video.get("width") or 0) or not int(video.get("height") or 0):
        raise UnsupportedFormatError(f"{path}: ffprobe cannot read the size of its video stream "
                                     f"({video.get('codec_name') or 'unknown codec'}); is the file damaged?")
    fps = _fraction(video.get("r_frame_rate")) or _fraction(video.get("avg_frame_rate"))
    # Variable frame rate (phones): the decoder conforms to the base rate by holding frames (as
    # render does), so the frame count is not the container's.
    variable = conform_rate(_fraction(video.get("avg_frame_rate")), _fraction(video.get("r_frame_rate")))
    # Phone footage: stored sideways with a display matrix; the decoding ffmpeg turns the frames
    # upright (its autorotate, on by default), so the pipe and the encoder get the turned size.
    rotation = _rotation(video)
    width, height = int(video["width"]), int(video["height"])
    sar = video.get("sample_aspect_ratio")
    if rotation % 180:
        width, height = height, width
        if sar and ":" in str(sar):
            sar = ":".join(reversed(str(sar).split(":", 1)))
    tags = [video.get("tags", {}), data.get("format", {}).get("tags", {})]
    tags += [s.get("tags", {}) for s in streams if s.get("codec_tag_string") == "tmcd"
             or s.get("codec_type") == "data"]
    # mov/mp4 write "timecode", Matroska "TIMECODE"
    timecode = next((v for t in tags for k, v in t.items() if k.lower() == "timecode" and v), None)
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    pix_fmt = str(video.get("pix_fmt", ""))
    frames = str(video.get("nb_frames", ""))
    duration = _number_or_none(video.get("duration"))
    tagged = duration_tag(video.get("tags", {}))
    if not frames.isdigit() and tagged and fps:  # Matroska/WebM: no count, a DURATION tag per stream
        frames = str(max(0, round((tagged - (_number_or_none(video.get("start_time")) or 0.0)) * fps)))
    if frames.isdigit() and duration and fps:
        # An edit list (an MP4 cut with -c copy between keyframes) keeps frames the clip does not
        # show: nb_frames counts them, the duration does not, and ffmpeg never outputs them.
        shown = round(duration * fps)
        if 0 < shown < int(frames):
            frames = str(shown)

    # where the video starts after the file's start (seeks count from the file's start, frame
    # numbers from the video's first frame)
    start = _number_or_none(video.get("start_time")) or 0.0
    offset = max(0.0, start - (_number_or_none(data.get("format", {}).get("start_time")) or 0.0))
    return {
        "path": path,
        "container": data.get("format", {}).get("format_name"),
        "width": width,
        "height": height,
        "rotation": rotation,
        "fps": fps,
        "pix_fmt": pix_fmt,
        "bits": _bits(video),
        "has_alpha": pix_fmt.startswith(("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya"))
        or str(video.get("tags", {}).get("alpha_mode", "")) == "1",
        "codec": video.get("codec_name"),
        "frames": int(frames) if frames.isdigit() and not variable else None,
        "frame_rate_mode": "variable" if variable else "constant",
        "video_offset": offset,
        "has_audio": bool(audio),
        "audio_codecs": [s.get("codec_name") for s in audio],
        "timecode": timecode,
        "color_space": video.get("color_space"),
        "color_transfer": video.get("color_transfer"),
        "color_primaries": video.get("color_primaries"),
        "color_range": video.get("color_range"),
        "chroma_location": video.get("chroma_location"),
        "sample_aspect_ratio": sar,
        "field_order": video.get("field_order") if video.get("field_order") in _WOVEN else None,
        "time_base": _fraction(video.get("time_base")),
    }


def avi_pictures(input: str | os.PathLike[str], info: dict[str, Any]) -> list[int]:
    """An AVI's frame slots that hold a picture, 0-based and in order, from its packets' decode
    times (ffprobe reads the index, no decoding): a dropped frame's empty chunk is a slot left
    out. Kept in ``info`` (read once a run). Other containers: an empty list."""
    if info.get("container") != "avi" or not info.get("fps") or not info.get("time_base"):
        return []
    if "avi_pictures" not in info:
        data = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=dts,size",
                               "-of", "csv=p=0", os.fspath(input)], capture_output=True, text=True)
        slot = info["time_base"] * info["fps"]  # frame slots per time-base unit
        times = set()
        for line in data.stdout.splitlines():
            dts, _, size = line.partition(",")
            if dts.strip().lstrip("-").isdigit() and size.strip().isdigit() and int(size) > 0:
                times.add(round(int(dts) * slot))
        first = min(times, default=0)
        info["avi_pictures"] = sorted(n - first for n in times)
    return info["avi_pictures"]


def avi_repeated(input: str | os.PathLike[str], info: dict[str, Any],
                 span: tuple[int, int | None] | None = None) -> list[int]:
    """An AVI's frame slots holding no picture (a dropped frame's empty chunk, which the decoder
    skips and the conform fills with the frame before, as render does), 0-based, within
    ``span`` (:func:`avi_pictures`). Empty slots after the last picture are not counted (the
    file ends there). Other containers: none."""
    pictures = avi_pictures(input, info)
    if not pictures:
        return []
    present = set(pictures)
    low, high = span if span is not None else (0, None)
    return [n for n in range(max(low, 0), pictures[-1]) if n not in present and (high is None or n <= high)]


#: Codecs whose every frame is a keyframe (an AVI of them is seeked for a --frames span).
_INTRA_ONLY = frozenset({"mjpeg", "dvvideo", "huffyuv", "ffvhuff", "utvideo", "rawvideo", "prores", "dnxhd",
                         "v210", "png", "magicyuv", "cfhd"})


#: The display matrix's quarter turn (degrees counterclockwise) -> the filter that shows the
#: frame upright (what ffmpeg's autorotate inserts).
_TURNS = {90: "transpose=cclock", 180: "hflip,vflip", 270: "transpose=clock"}


def _planar_444(info: dict[str, Any]) -> str | None:
    """The ``pomagan-post pipe`` Y'CbCr 4:4:4 format to decode a Y'CbCr source into (chroma
    upsampled, no matrix: at the source's depth or the next deeper one; ``yuvj444p`` for 8-bit
    full range), or None for RGB, grey and full-range sources deeper than 8 bits (ffmpeg
    converts those to RGB)."""
    name = str(info.get("pix_fmt") or "")
    try:
        fmt = av.VideoFormat(name)
    except (ValueError, TypeError):
        return None
    if fmt.is_rgb or len(fmt.components) < 3:
        return None
    bits = int(info.get("bits") or fmt.components[0].bits)
    full = name.startswith("yuvj") or info.get("color_range") == "pc"
    # the pipe's own Y'CbCr input formats, shallowest first
    return next((f.name for f in PIXEL_FORMATS.values() if f.name in INPUT_PIX_FMTS and f.is_yuv
                 and f.full == full and f.bits >= bits), None if full else "yuv444p16le")


#: ffprobe's chroma location -> swscale's chroma sample position (1/256 of a luma pixel, x and y).
_CHROMA_SITING = {"left": (0, 128), "center": (128, 128), "topleft": (0, 0), "top": (128, 0),
                  "bottomleft": (0, 256), "bottom": (128, 256)}


def _chroma_upsampling(info: dict[str, Any]) -> str:
    """The scale filter that upsamples a Y'CbCr source's chroma to 4:4:4 as render's decoder
    does: bilinear, at the siting the stream is tagged with (render's FFmpeg honours the tag;
    the scale filter of ffmpeg 5.1 does not, and centred H.264's left-sited chroma: 0.2 codes
    on average, up to 9, from render's on the example clip). Untagged: swscale's default."""
    siting = _CHROMA_SITING.get(str(info.get("chroma_location")))
    if siting is None:
        return "scale=flags=bilinear"
    x, y = siting
    if av.VideoFormat(str(info["pix_fmt"])).chroma_height(64) == 64:
        y = 0  # no vertical subsampling: chroma sits on the luma lines
    return f"scale=flags=bilinear:in_h_chr_pos={x}:in_v_chr_pos={y}"


def _rotation(video: dict[str, Any]) -> int:
    """The display matrix's quarter turn in degrees counterclockwise (0, 90, 180 or 270) from
    ffprobe's side data (older ffprobe: the ``rotate`` tag, clockwise); 0 when there is none or
    it is not a quarter turn (ffmpeg's autorotate leaves those alone too)."""
    angle: float | None = None
    for side in video.get("side_data_list") or []:
        if side.get("side_data_type") == "Display Matrix" and "rotation" in side:
            angle = _number_or_none(side["rotation"])
    if angle is None:
        tag = _number_or_none(video.get("tags", {}).get("rotate"))
        angle = -tag if tag is not None else None
    return quarter_turns(angle) * 90


def _number_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=4)
def ffmpeg_encoders(ffmpeg: str = FFMPEG) -> frozenset[str]:
    """Names of the encoders the installed ffmpeg has."""
    try:
        done = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, check=False)
    except FileNotFoundError:
        raise UnsupportedFormatError(f"{ffmpeg} not found: install ffmpeg (ffmpeg and ffprobe on PATH)") from None
    names = set()
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def _preset(preset: str | Preset) -> Preset:
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise BadInputError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def _pipe_program() -> list[str]:
    """``pomagan-post`` of this interpreter's environment (so a venv needs no activation)."""
    beside = Path(sys.executable).parent / "pomagan-post"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("pomagan-post")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from pomagan_post.cli import main; sys.exit(main())"]


def build_commands(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    preset: str | Preset,
    *,
    info: dict[str, Any] | None = None,
    comp: str | None = None,
    extra_args: Sequence[str] = (),
    pipe_args: Sequence[str] = (),
    working_size: int | None = None,
    batch_size: int | None = None,
    tta: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    weights: str | None = None,
    garbage_matte: str | None = None,
    temporal: int | None = None,
    audio: bool = True,
    frames: str | tuple[int, int | None] | None = None,
    pipe_program: Sequence[str] = ("pomagan-post",),
) -> tuple[list[str], list[str], list[str]]:
    """The three command lines ``(decode, pipe, encode)`` for one input and preset.

    Decode reads the first video stream as raw ``rgb48le`` when the source has more than 8
    bits per sample (else ``rgb24``), converting Y'CbCr with the source's own matrix. Encode
    reads raw frames from its stdin at the source's frame rate and size, takes audio
    (``-map 1:a?``: copied when the container takes the codec, else re-encoded), global
    metadata and timecode from the original input, sets colour tags from the source, labels
    the alpha convention in ``comment``, then appends ``extra_args`` just before the output.

    Args:
        input, output: the source video and the file to write.
        preset: a :data:`~ffmpeg_filters.presets.PRESETS` name or :class:`Preset`.
        info: :func:`probe` of ``input`` (probed when not given).
        comp: background for ``comp`` presets (default: the preset's).
        extra_args: ffmpeg arguments for the encoder (output options).
        pipe_args: further ``pomagan-post pipe`` arguments.
        working_size, batch_size, tta, device, precision, weights: ``pomagan-post pipe``
            settings (``None``: the pipe's default).
        garbage_matte: one image limiting every frame's matte (``pomagan-post pipe
            --garbage-matte``).
        temporal: steady the matte over this many frames either side (``pomagan-post pipe
            --temporal``; a ``frames`` span's first and last frames then have neighbours on one
            side only).
        audio: carry the input's audio.
        frames: only these frames (:func:`parse_frames`: ``"100-199"``, ``"100-"``, or in the
            input's timecode, ``"01:00:10:00-01:00:12:00"``): decode
            seeks to the first (a seek to half a frame before it, then the frame count), the
            audio is cut to the same span (decoded and re-encoded: losslessly, FLAC or PCM,
            except for the mp4 and webm presets) and the timecode starts at that frame's. A
            variable-rate source is decoded from its start and the span cut from its conformed
            frames (no seek), so frame numbers mean the same slots as in ``render``.
        pipe_program: how to call ``pomagan-post``.
    """
    p = _preset(preset)
    info = info or probe(input)
    input, output = os.fspath(input), os.fspath(output)
    extra_args, span = _span_of(input, info, extra_args, frames)
    width, height = info["width"], info["height"]
    if p.even_width and width % 2:
        raise BadInputError(f"{p.name} needs an even frame width, {input} is {width}x{height} "
                            "(use --preset prores4444)")
    fps = info["fps"] or Fraction(24)
    src_fmt = "rgb48le" if info["bits"] > 8 else "rgb24"

    seek: list[str] = []  # decoder input options
    count: list[str] = []  # decoder output options
    cut: list[str] = []  # the encoder's second input (audio, metadata): the same span
    timecode = info.get("timecode")
    if span is not None:
        first, last = span
        if first:
            # frame k is k / fps after the first video frame, which is video_offset after the file's
            # start (where -ss counts from); seeking half a frame early keeps frame k and drops k - 1
            # whatever the rounding of the timestamps
            offset = float(info.get("video_offset") or 0.0)
            seek = ["-ss", f"{offset + float((first - Fraction(1, 2)) / fps):.6f}"]
            cut = ["-ss", f"{offset + float(first / fps):.6f}"]
            timecode = advance_timecode(str(timecode), first, fps) if timecode else None
        if last is not None:
            count = ["-frames:v", str(last - first + 1)]
            cut += ["-t", f"{float((last - first + 1) / fps):.6f}"]

    tagged = str(info.get("color_space"))  # untagged: BT.601 for standard definition, as render reads it
    matrix = _SWS_MATRIX.get(tagged) or ("bt709" if untagged_matrix(width, height) == 1 else "smpte170m")
    space = {v: k for k, v in _SWS_MATRIX.items() if k != "bt2020c"}[matrix]  # ffmpeg's tag for it
    decode_filter = f"scale=in_color_matrix={matrix}:flags={_SWS_FLAGS}"
    planar = _planar_444(info)
    if planar is not None:
        # Limited-range Y'CbCr: only the chroma upsampled here, the matrix applied by the pipe in
        # float, so super-whites reach it above 1.0; upsampled as render's decoder does it
        src_fmt, decode_filter = planar, _chroma_upsampling(info)
    if info.get("frame_rate_mode") == "variable" or info.get("container") == "avi":
        # conformed to the base rate, each slot holding the frame on screen at its time (the
        # fps filter; -vsync cfr shows a frame up to a slot early), as render does; an AVI too,
        # whose dropped frames are empty slots the decoder skips (each holds the frame before,
        # as render and players show it). A span is cut
        # from the conformed frames: a seek would start the conform at whichever frame follows
        # the seek point, one slot off wherever the wanted first slot holds an earlier frame.
        conform = f"fps={fps}"
        if span is not None and span[0]:
            seek = []
            # An intra-only AVI's pictures are known by slot: the decoder seeks to the last one
            # at or before the span (the frame its first slot shows), the conform starts there.
            # (With B-frames ffmpeg's seek in an AVI lands frames early: decoded from the start.)
            intra = info.get("container") == "avi" and info.get("codec") in _INTRA_ONLY
            held = [n for n in avi_pictures(input, info) if n <= span[0]] if intra else []
            start = held[-1] if held else 0
            if start:
                offset = float(info.get("video_offset") or 0.0)
                seek = ["-ss", f"{offset + float((start - Fraction(1, 2)) / fps):.6f}"]
                conform = f"setpts=PTS-STARTPTS,{conform}"
            conform += f",trim=start_frame={span[0] - start},setpts=PTS-STARTPTS"
        decode_filter = f"{conform},{decode_filter}"
    rotate: list[str] = []
    turn = _TURNS.get(int(info.get("rotation") or 0))
    if turn:
        # Phone footage stored sideways: turned upright after the conversion (4:4:4 or RGB), as
        # render turns it, not before (ffmpeg's autorotate turns subsampled chroma, then the
        # upsampling reads its siting the wrong way round: 6 codes off on average on a 4:2:0 clip)
        rotate, decode_filter = ["-noautorotate"], f"{decode_filter},{turn}"
    decode = [FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-v", "error", *rotate, *seek, "-i", input,
              "-map", "0:v:0", "-vf", decode_filter, "-vsync", "passthrough", *count,
              "-f", "rawvideo", "-pix_fmt", src_fmt, "pipe:1"]

    yuv_out = PIXEL_FORMATS[p.pipe_pix_fmt].is_yuv  # the pipe writes the encoder's Y'CbCr itself
    pipe = [*pipe_program, "pipe", "--size", f"{width}x{height}", "--pix-fmt", src_fmt,
            "--output", p.output, "--out-pix-fmt", p.pipe_pix_fmt,
            "--colorspace", _PIPE_COLORSPACE.get(str(info.get("color_transfer")), "rec709")]
    if planar is not None or yuv_out:
        pipe += ["--matrix", space]
    if p.premultiplied is not None:
        pipe.append("--premultiplied" if p.premultiplied else "--straight")
    sar = str(info.get("sample_aspect_ratio") or "1:1")
    if sar not in ("1:1", "0:1", "N/A") and ":" in sar:
        pipe += ["--pixel-aspect", sar]  # anamorphic: matted desqueezed, as render does
    if p.output == "comp":
        pipe += ["--comp", comp or p.comp or "grey"]
    elif comp:
        raise BadInputError(f"--comp applies to the review preset, not {p.name}")
    for flag, value in (("--working-size", working_size), ("--batch-size", batch_size), ("--tta", tta),
                        ("--device", device), ("--precision", precision), ("--weights", weights),
                        ("--garbage-matte", garbage_matte), ("--temporal", temporal)):
        if value is not None:
            pipe += [flag, str(value)]
    pipe += list(pipe_args)

    encode = [FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-y",
              "-f", "rawvideo", "-pix_fmt", p.pipe_pix_fmt, "-video_size", f"{width}x{height}",
              "-framerate", str(fps), "-i", "pipe:0", *cut, "-i", input,
              "-map", "0:v:0", "-map_metadata", "1"]
    filters = []
    if sar not in ("1:1", "0:1", "N/A"):
        filters.append(f"setsar={sar.replace(':', '/')}")
    if p.even_size and (width % 2 or height % 2):
        filters.append("pad=ceil(iw/2)*2:ceil(ih/2)*2")
    colour_tags: list[str] = []
    if p.output != "alpha":
        primaries = info.get("color_primaries") or "bt709"
        transfer = info.get("color_transfer") or "bt709"
        primaries = "bt709" if primaries == "unknown" else primaries
        transfer = "bt709" if transfer == "unknown" else transfer
        if p.transfers is not None and transfer not in p.transfers:
            transfer = "unknown"  # what the encoder cannot write: not tagged rather than mis-tagged
        colour_tags = ["-color_primaries", primaries, "-color_trc", transfer]
        if p.yuv:
            if not yuv_out:
                filters.append(f"scale=out_color_matrix={matrix}:out_range=tv:flags={_SWS_FLAGS}")
            colour_tags += ["-colorspace", space, "-color_range", "tv"]
        else:
            colour_tags += ["-colorspace", "rgb", "-color_range", "pc"]
        # The same tags on the frames: encoders such as ProRes write the frame's into the
        # bitstream, and after a filter graph the options above do not reach them (ffmpeg 5.1:
        # every ProRes output read as "unknown").
        filters.append(f"setparams=color_primaries={primaries}:color_trc={transfer}:colorspace="
                       f"{space if p.yuv else 'gbr'}:range={'tv' if p.yuv else 'pc'}")
    if filters:
        encode += ["-vf", ",".join(filters)]
    encode += [*p.encoder_args, *colour_tags]
    if info.get("field_order"):  # interlaced: labelled as the source (the fields stay woven)
        encode += ["-field_order", info["field_order"]]
        if p.encoder == "libx264":  # H.264 says so in its bitstream: coded interlaced (MBAFF)
            top_first = info["field_order"] in ("tt", "bt")  # the field shown first
            encode += ["-flags", "+ildct+ilme", "-x264opts", "tff=1" if top_first else "bff=1"]
    muxer = _MUXERS.get(Path(output).suffix.lower(), _MUXERS[p.extensions[0]])
    if audio and info.get("has_audio"):
        copy = p.audio_copy is None or all(c in p.audio_copy for c in info["audio_codecs"])
        if cut:  # a copied stream starts at the packet before the cut: decode and cut to the sample
            codec = "flac" if muxer == "matroska" else p.audio_codec
        else:
            codec = "copy" if copy else p.audio_codec
        encode += ["-map", "1:a?", "-c:a", codec]
    if timecode:
        encode += ["-timecode", str(timecode)]
    label = (f"alpha={'premultiplied' if p.premultiplied else 'straight'}; " if p.output == "rgba" else "")
    encode += ["-metadata", f"comment={label}kind={p.output}; written by pomagan-ffmpeg --preset {p.name}"]
    encode += list(extra_args)
    encode += ["-f", muxer, output]
    return decode, pipe, encode


def format_commands(commands: Sequence[Sequence[str]]) -> str:
    """The stages as one copy-pasteable shell pipeline."""
    return " \\\n  | ".join(shlex.join(cmd) for cmd in commands)


@dataclass
class RunReport:
    """What :func:`run` did."""

    output: str
    commands: tuple[list[str], list[str], list[str]]
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    frames: int | None = None  # frames the encoder wrote (its own count)
    repeated: list[int] = field(default_factory=list)  # AVI slots with no picture (:func:`avi_repeated`)


def check_paths(input: str | os.PathLike[str], output: str | os.PathLike[str], preset: str | Preset,
                overwrite: bool = False) -> None:
    """The checks :func:`run` makes on its paths before any work (``--dry-run`` makes them too):
    the input exists, the output's extension suits the preset, it is not the input, not an
    existing file (unless ``overwrite``) nor a folder, and its folder exists and takes files.
    Raises :class:`BadInputError`, or :class:`PomaganError` for a folder that takes no files."""
    p = _preset(preset)
    input, output = os.fspath(input), os.fspath(output)
    if not Path(input).is_file():
        raise BadInputError(f"input not found: {input}")
    suffix = Path(output).suffix.lower()
    if suffix not in p.extensions:
        raise BadInputError(f"preset {p.name} writes {' or '.join(p.extensions)} files, not "
                            f"{suffix or 'a name without extension'}: {output}")
    if os.path.realpath(output) == os.path.realpath(input):
        raise BadInputError(f"output {output} would overwrite the input")
    if Path(output).is_dir():
        raise BadInputError(f"output {output} is a folder; name a file in it, e.g. "
                            f"{Path(output) / Path(input).with_suffix(p.extensions[0]).name}")
    if Path(output).exists() and not overwrite:
        raise BadInputError(f"{output} exists; pass --overwrite (-y) to replace it")
    if not Path(output).resolve().parent.is_dir():
        raise BadInputError(f"output folder does not exist: {Path(output).parent}")
    refuse_unwritable([Path(output).resolve().parent])  # said before any work, as render does


def _check_span(path: Path, span: tuple[int, int | None] | None, total: int | None, input: str) -> None:
    """The frames written are all the frames asked for (packets counted, not decoded): a range
    past the end of a clip whose length the container did not say fails here, and so does a
    whole clip whose data ends before its index says (an interrupted copy), instead of a short
    output passing for the whole shot."""
    if span is None:
        if total is None:
            return
        first, last = 0, None
    else:
        first, last = span
    try:
        data = _run_json([FFPROBE, "-v", "error", "-select_streams", "v:0", "-count_packets",
                          "-show_entries", "stream=nb_read_packets", "-print_format", "json", os.fspath(path)])
    except PomaganError:  # a file with no frame in it is not a readable file
        data = {}
    written = int(next(iter(data.get("streams", [])), {}).get("nb_read_packets", 0) or 0)
    if last is None and total is None:  # to the end of a clip of unknown length: at least one frame
        if not written:
            raise MissingFramesError(f"--frames {first}-: {input} ends before frame {first}", frames=[first])
        return
    wanted = (last if last is not None else total - 1) - first + 1
    if not written:
        raise MissingFramesError(f"{input}: no frame was decoded; nothing was written",
                                 frames=list(range(first, first + wanted)))
    if written < wanted and span is None:
        missing = list(range(written, wanted))
        raise MissingFramesError(f"{input}: frames {missing[0]}-{missing[-1]} did not decode: its data "
                                 f"ends before its index says ({total} frames); nothing was written. "
                                 f"--frames 0-{written - 1} writes the frames it holds", frames=missing)
    if written < wanted:
        missing = list(range(first + written, first + wanted))
        raise MissingFramesError(f"--frames {_span_text(first, first + wanted - 1)}: {input} ends at frame "
                                 f"{first + written - 1}; frame(s) {_span_text(missing[0], missing[-1])} do not exist",
                                 frames=missing)


def _drain(stream: Any, tail: collections.deque[str], echo: Callable[[str], None] | None) -> None:
    hushed = False
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        tail.append(line)
        # A stage writing to one that stopped reading is a consequence (that one says why, and so
        # does the last line): kept in the tail, which tells causes from consequences, not echoed.
        hushed = _reports_broken_pipe(line) or (hushed and "Last message repeated" in line)
        if echo is not None and not hushed:
            echo(line)
    stream.close()


def _count_frames(stream: Any, on_frames: Callable[[int], None]) -> None:
    """The encoder's ``-progress`` report (``key=value`` lines, a block every half second):
    ``frame=N`` is how many frames it has written. Read to the end whatever happens to the
    progress display (a full pipe would stall the encoder)."""
    for raw in iter(stream.readline, b""):
        if raw.startswith(b"frame="):
            try:
                on_frames(int(raw[6:]))
            except Exception:  # a bad number, a closed stderr: the count is only for display
                pass
    stream.close()


def _frames_to_write(span: tuple[int, int | None] | None, total: int | None) -> int | None:
    """How many frames a run writes, when known: the span's, else the clip's."""
    if span is None:
        return total
    first, last = span
    if last is None:
        return None if total is None else max(0, total - first)
    return last - first + 1


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    preset: str | Preset,
    *,
    extra_args: Sequence[str] = (),
    overwrite: bool = False,
    quiet: bool = False,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
    **options: Any,
) -> RunReport:
    """Run ``ffmpeg decode | pomagan-post pipe | ffmpeg encode`` for ``input`` into ``output``.

    Args:
        input, output: source video and file to write (its extension must suit the preset).
        preset: a preset name or :class:`Preset`.
        extra_args: ffmpeg output arguments for the encoder.
        overwrite: replace an existing ``output``.
        quiet: do not echo the stages' stderr.
        log: where stage messages go (default: stderr), prefixed ``[decode]``, ``[pipe]``,
            ``[encode]``.
        progress: show the frames written (counted by the encoder), fps and time left on
            stderr (:func:`pomagan_post.progress.progress`: a bar on a terminal, else a line
            every 30 s).
        **options: :func:`build_commands` keywords (``comp``, ``pipe_args``, ``working_size``,
            ``batch_size``, ``device``, ``precision``, ``weights``, ``garbage_matte``,
            ``temporal``, ``audio``, ``frames``).

    Raises :class:`StageFailedError` naming the first stage that failed (the others are
    stopped, nothing is left at ``output``), :class:`BadInputError` for bad arguments,
    :class:`UnsupportedFormatError` when ffmpeg lacks the preset's encoder and
    :class:`MissingFramesError` when ``frames`` asks for frames the input does not have (checked
    against the container's count before running, and against the frames written after).
    """
    p = _preset(preset)
    input, output = os.fspath(input), os.fspath(output)
    check_paths(input, output, p, overwrite)
    if p.encoder and p.encoder not in ffmpeg_encoders(FFMPEG):
        raise UnsupportedFormatError(
            f"preset {p.name} needs the ffmpeg encoder {p.encoder}, which {FFMPEG} was built without")
    info = probe(input)
    if options.get("garbage_matte"):  # checked here, by the pipe's own rule, not by a failing stage
        from pomagan_post.pipe import stream_garbage_matte

        stream_garbage_matte(options["garbage_matte"], info["width"], info["height"]).close()
    typed = options.get("frames")
    extra_args, span = _span_of(input, info, extra_args, typed)
    options["frames"] = span
    if span is not None and info.get("frames") is not None:
        total = info["frames"]
        beyond = [n for n in (span[0], span[1]) if n is not None and n >= total]
        if beyond:
            missing = list(range(max(total, span[0]), max(beyond) + 1))
            said = typed if isinstance(typed, str) and has_timecode(typed) else _span_text(*span)
            raise MissingFramesError(f"--frames {said}: {input} has "
                                     f"no frame(s) {frame_list(missing)} (it has {total} frames, 0-{total - 1})",
                                     frames=missing)
    out = Path(output)
    # No other run (nor a pomagan-post render) is writing this output: the same claim render's
    # video outputs take, held to the end.
    with Claim(out, what="pomagan-ffmpeg run"):
        # A run killed outright (kill -9, a lost machine) left its half-written file under a hidden
        # name with its process id; the run that writes this output again clears it.
        for stale in out.parent.glob(f".{glob.escape(out.stem)}.pomagan-*.tmp{glob.escape(out.suffix)}"):
            running = _live_temp(stale)
            if running is not None:  # another run writing this output right now: leave it be
                raise BadInputError(f"{output} is being written by another run (process {running}, "
                                    f"{stale.name}); wait for it, or write to another name")
            stale.unlink(missing_ok=True)
        temp = out.with_name(f".{out.stem}.pomagan-{os.getpid()}.tmp{out.suffix}")
        commands = build_commands(input, temp, p, info=info, extra_args=extra_args,
                                  pipe_program=_pipe_program(), **options)
        log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        if info.get("field_order") and not quiet:  # as render says it
            log(interlaced_note(Path(input).name))
        repeated = avi_repeated(input, info, span)
        names = ("decode", "pipe", "encode")
        tails = {name: collections.deque(maxlen=30) for name in names}
        procs: list[subprocess.Popen[bytes]] = []
        threads = []
        written = [0]
        bar = None
        if progress:
            from pomagan_post.progress import progress as progress_bar

            bar = progress_bar(_frames_to_write(span, info.get("frames")), desc=Path(input).name, unit="frame")

        def on_frames(count: int) -> None:
            if count > written[0]:
                if bar is not None:
                    bar.update(count - written[0])
                written[0] = count

        started = time.perf_counter()
        limited = _limits_output(extra_args)
        try:
            stdin = subprocess.DEVNULL
            preexec = _die_with_parent()
            # Every stage is started before any reading thread, so no thread is running while
            # they are forked (preexec_fn is only safe then).
            for index, (name, cmd) in enumerate(zip(names, commands)):
                if index == len(commands) - 1:  # the encoder reports the frames it has written on its stdout
                    cmd = [cmd[0], "-progress", "pipe:1", *cmd[1:]]
                proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        preexec_fn=preexec)
                if index:
                    stdin.close()  # only the next stage holds the pipe: it sees EOF / EPIPE properly
                stdin = proc.stdout
                procs.append(proc)
            for name, proc in zip(names, procs):
                echo = None if quiet else (lambda line, n=name: log(f"[{n}] {line}"))
                threads.append(threading.Thread(target=_drain, args=(proc.stderr, tails[name], echo), daemon=True))
            threads.append(threading.Thread(target=_count_frames, args=(procs[-1].stdout, on_frames), daemon=True))
            for thread in threads:
                thread.start()
            while any(proc.poll() is None for proc in procs):
                stop_point()  # SIGTERM / Ctrl-C under pomagan-ffmpeg's StopSignals
                if any(proc.returncode not in (None, 0) for proc in procs):
                    # A failing stage takes its neighbours down within moments (EPIPE, EOF): let
                    # them, so their exit codes and messages tell the cause from the consequences.
                    deadline = time.monotonic() + 1.0
                    while any(proc.poll() is None for proc in procs) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    break
                time.sleep(0.05)
            codes = {name: proc.returncode for name, proc in zip(names, procs)}
            stop_point()  # a Ctrl-C at a terminal also ends the stages: a stop, not their failure
            _stop(procs)
            for thread in threads:
                thread.join(timeout=5)
            failed = _cause(codes, tails, limited)
            if failed is not None:
                raise StageFailedError(failed[0], failed[1], "\n".join(tails[failed[0]]))
            _check_span(temp, span, None if limited else info.get("frames"), input)
            os.replace(temp, out)
        except BaseException:
            _stop(procs)
            try:
                os.remove(temp)
            except OSError:
                pass
            raise
        finally:
            if bar is not None:
                bar.close()
        if repeated and not quiet:  # as render says it, after its progress bar
            log(repeated_note(Path(input).name, repeated))
        return RunReport(output=output, commands=commands, seconds=time.perf_counter() - started, info=info,
                         frames=written[0], repeated=repeated)
