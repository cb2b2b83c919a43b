"""Video files through PyAV: :class:`VideoSource` decodes, :class:`VideoSink` encodes.

Sources yield ``(frame_number, rgb)``: rgb is float32 [H, W, 3] R'G'B', black 0.0 and white 1.0
(a limited-range source's super-whites above 1.0, its super-blacks below 0.0), in the file's own
encoding (Rec.709 video stays Rec.709-encoded; :mod:`pomagan_post.colour` converts for the model).
Frame numbers are 0-based indices computed from each frame's pts, the stream's time base and its
average rate, counted from the stream's start time (so a stream whose first pts is not 0 still
starts at frame 0). Limited-range Y'CbCr sources are upsampled to 4:4:4 at their own depth and
converted by the matrix in float (:mod:`.yuv`); full-range ones decode through ``rgb48le`` (16
bits per channel), RGB sources through ``rgb48le`` or, at 8 bits, ``rgb24``. The matrix and range
come from the stream's tags (untagged: BT.601 at standard definition, BT.709 above, as players
read it; limited range unless the pixel format is ``yuvj*``).

Sinks write ProRes 4444 (Y'CbCr by the same float matrix), PNG-in-MOV or FFV1 (16-bit RGB) (see
:data:`VIDEO_CODECS`), never through an 8-bit intermediate. They write to a hidden partial file
beside the target and put it in place on :meth:`VideoSink.close`. The partial file stays readable
up to its last whole frame even when the process is killed outright (SIGKILL, out of memory, a lost
machine): MOV partials are fragmented (a fragment per frame, as crash-safe recorders write them)
and copied, without re-encoding, into an ordinary MOV on close; Matroska needs nothing. A later
render resumes from it (:func:`resumable_frames`).

Decoding runs ahead on a worker thread and encoding runs behind on another
(:mod:`pomagan_post.io.streams`), each with a bounded queue, so file I/O overlaps the GPU work;
errors raised there are re-raised in the caller's thread with the frame number.

Phone footage stores its frames sideways (or upside down) with a display matrix saying how to turn
them; players, editors and ``ffmpeg`` show them turned. Sources do the same (the network needs
people upright): frames come out turned by the matrix's quarter turns, ``info`` has the turned
size, ``info.metadata["rotation"]`` the matrix's turn (degrees counterclockwise), and sinks
write what they are given, so outputs are upright with no matrix (as ``ffmpeg``'s autorotate
writes them). Variable-frame-rate streams are conformed to their base rate (see
:func:`~pomagan_post.io.base.conform_rate`), each frame held until the next one's time.

Why not swscale for limited range: its RGB output clips values above white (super-whites, up to
1.09, which cameras record) and below black, so a foreground lost the highlights its plate holds;
and it maps white to 16-bit 65280, not 65535. The float matrix keeps both ends and puts 1.0 on
10-bit code 940 exactly, both ways.
"""

from __future__ import annotations

import collections
import os
import re
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import av
import numpy as np

from ..errors import BadInputError, MissingFramesError, PomaganError, UnsupportedFormatError, frame_list
from .atomic import Claim
from .base import ClipInfo, conform_rate, quarter_turns
from .streams import WriteBehind, default_writers, prefetch
from .timecode import advance_timecode
from .yuv import alpha_codes, fill_planes, planes_of, planes_to_rgb, rgb_to_planes, untagged_matrix

__all__ = [
    "interlaced_note",
    "repeated_note",
    "partial_path",
    "resumable_frames",
    "VIDEO_CODECS",
    "VIDEO_EXTENSIONS",
    "VideoCodecSpec",
    "VideoSink",
    "VideoSource",
    "is_video_path",
]

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mov", ".qt", ".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mxf", ".mpg", ".mpeg", ".m2v",
        ".ts", ".m2ts", ".mts", ".vob", ".flv", ".wmv", ".asf", ".ogv", ".3gp", ".y4m", ".dv",
        ".gif", ".nut",
    }
)


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` names a video container by its extension (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


# ---------------------------------------------------------------------------------------------
# Codec table (data only)


@dataclass(frozen=True)
class VideoCodecSpec:
    """How :class:`VideoSink` writes one output codec.

    Args:
        encoder: FFmpeg encoder name.
        extensions: container extensions that can hold it; the first is the default.
        pix_fmts: encoder pixel format per sink kind (``"fg"``, ``"comp"``, ``"alpha"``).
        options: encoder private options.
        yuv: True when frames are converted RGB -> YUV (BT.709 matrix, limited range).
        alpha_mode: the format's convention for colour with alpha (``premultiplied`` or
            ``straight``), the default foreground convention ``render`` writes it in.
        even_width: the encoder refuses frames of an odd width.
        transfers, primaries: the colour tags (FFmpeg enum values) the encoder can write into
            its frames; others are written as unspecified (2) in frames and container alike,
            not contradicting each other. None: any.
    """

    encoder: str
    extensions: tuple[str, ...]
    pix_fmts: Mapping[str, str]
    options: Mapping[str, str] = field(default_factory=dict)
    yuv: bool = False
    alpha_mode: str = "straight"
    even_width: bool = False
    transfers: tuple[int, ...] | None = None
    primaries: tuple[int, ...] | None = None


VIDEO_CODECS: dict[str, VideoCodecSpec] = {
    # ProRes 4444 with a 16-bit alpha plane (alpha_bits 16). "alpha" kind: a grey picture whose
    # luma is the matte, with the same matte in the alpha plane. "comp": 4444 without alpha.
    "prores4444": VideoCodecSpec(
        encoder="prores_ks",
        extensions=(".mov",),
        pix_fmts={"fg": "yuva444p10le", "comp": "yuv444p10le", "alpha": "yuva444p10le"},
        options={"profile": "4444", "alpha_bits": "16", "vendor": "apl0"},
        yuv=True,
        alpha_mode="premultiplied",
    ),
    # The same with FFmpeg's other ProRes encoder (prores_aw, frame-threaded, no rate search):
    # about 3x less CPU a frame (1080p 4444 on 2 cores: 99 against 317 ms), smaller files
    # (1.6 against 2.5 MB) and more loss (mean colour error 0.0013 against 0.0003; alpha
    # 0.00025 against 0.0001, both within 0.0013 everywhere). For speed where the encoder sets
    # the pace (GPU renders to ProRes), previews and dailies.
    "prores4444-fast": VideoCodecSpec(
        encoder="prores_aw",
        extensions=(".mov",),
        pix_fmts={"fg": "yuva444p10le", "comp": "yuv444p10le", "alpha": "yuva444p10le"},
        options={"profile": "4", "vendor": "apl0"},
        yuv=True,
        alpha_mode="premultiplied",
        # prores_aw: even widths only; its frame headers take BT.709, PQ and HLG transfers (not
        # sRGB or linear: written as "reserved" while the container said sRGB) and these primaries.
        even_width=True,
        transfers=(1, 2, 16, 18),
        primaries=(1, 2, 5, 6, 9, 11, 12),
    ),
    # PNG in MOV, 16-bit RGB(A) or 16-bit grey (lossless, straight RGB, no matrix).
    "png": VideoCodecSpec(
        encoder="png",
        extensions=(".mov", ".avi"),
        pix_fmts={"fg": "rgba64be", "comp": "rgb48be", "alpha": "gray16be"},
    ),
    # FFV1 version 3, 16-bit RGB(A) or grey, lossless. FFmpeg's MOV muxer refuses FFV1.
    "ffv1": VideoCodecSpec(
        encoder="ffv1",
        extensions=(".mkv", ".avi"),
        pix_fmts={"fg": "rgba64le", "comp": "rgb48le", "alpha": "gray16le"},
        options={"level": "3", "slices": "4", "slicecrc": "1"},
    ),
}

_MUXERS = {".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
_SINK_KINDS = {"fg": 4, "comp": 3, "alpha": 1}

# FFmpeg colour enums (AVColorTransferCharacteristic / AVColorSpace / AVColorPrimaries) by name.
# Transfer tag -> ClipInfo.colorspace name (anything else, untagged included: "rec709").
_TRC_TO_COLORSPACE = {8: "linear", 13: "srgb", 4: "srgb", 16: "pq", 18: "hlg"}
_COLORSPACE_TO_TRC = {"rec709": 1, "linear": 8, "srgb": 13, "pq": 16, "hlg": 18}
_TRC_NAMES = {1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m",
              7: "smpte240m", 8: "linear", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12",
              16: "smpte2084", 18: "arib-std-b67"}
_MATRIX_NAMES = {0: "rgb", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m",
                 7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}
_PRIMARIES_NAMES = {1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                    9: "bt2020", 11: "smpte431", 12: "smpte432"}
# Matrix tag -> the swscale colorspace used to convert it (unknown -> BT.709).
_SWS_MATRIX = {1: "itu709", 4: "fcc", 5: "itu601", 6: "itu601", 7: "smpte240m", 9: "bt2020",
               10: "bt2020"}
_RANGE_MPEG, _RANGE_JPEG = 1, 2
# Bit depth -> the planar 4:4:4 Y'CbCr format a limited-range source is upsampled to.
_PLANAR_444 = {8: "yuv444p", 9: "yuv444p9le", 10: "yuv444p10le", 12: "yuv444p12le",
               14: "yuv444p14le", 16: "yuv444p16le"}


def _is_write_failure(error: BaseException) -> bool:
    """The file system refused a write (disk full, file too large, ...): exit 1, frames kept,
    not an unsupported format."""
    return isinstance(error, OSError) and bool(error.errno)


def _av_message(error: BaseException) -> str:
    """One line describing a PyAV/FFmpeg error."""
    text = getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------------
# Source


def _open_input(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise BadInputError(f"{path}: no such video file")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as error:
        if _lacks_its_index(path):
            raise MissingFramesError(
                f"{path}: cut short: the file has no index (MOV/MP4 'moov'), which its writer puts "
                "at the end, so not one frame can be found (an interrupted copy or a recording that "
                "did not finish; copy it again, or rebuild the index with a recovery tool)") from error
        raise UnsupportedFormatError(
            f"{path}: not a video FFmpeg can read ({_av_message(error)})"
        ) from error


def _lacks_its_index(path: Path) -> bool:
    """A MOV/MP4 whose top-level boxes hold no ``moov`` (the index its writer puts last):
    the file was cut short."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            at, kinds = 0, []
            while at + 8 <= size and len(kinds) < 1000:
                handle.seek(at)
                header = handle.read(16)
                length, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if length == 1 and len(header) == 16:
                    length = int.from_bytes(header[8:16], "big")
                elif length == 0:
                    length = size - at
                if length < 8 or not kind.isalnum():
                    return False  # not a MOV/MP4 box layout
                kinds.append(kind)
                at += length
    except OSError:
        return False
    return bool(kinds) and kinds[0] in (b"ftyp", b"wide", b"free", b"mdat") and b"moov" not in kinds


def _metadata_get(metadata: Mapping[str, str], key: str) -> str | None:
    for name, value in metadata.items():
        if name.lower() == key:
            return value
    return None


def _copy_tags(source: Any, target: Any, keys: tuple[str, ...]) -> None:
    """Copies these metadata tags (any case) from one stream to another; "und" says nothing."""
    for key in keys:
        value = _metadata_get(source.metadata, key)
        if value and value != "und":
            target.metadata[key] = value


def repeated_note(name: str, frames: "list[int]") -> str:
    """What a render of a video with empty frame slots (an AVI's dropped frames) says
    (render and pomagan-ffmpeg alike)."""
    from .sequence import format_frame_list

    return (f"{name}: frame(s) {format_frame_list(frames)} hold no picture in the file (dropped when "
            "it was recorded or converted): each repeats the frame before, as players show it")


def interlaced_note(name: str) -> str:
    """What a render of interlaced video says (render and pomagan-ffmpeg alike)."""
    return (f"{name}: interlaced: matted as whole frames, so a subject that moves between the two fields "
            "gets a combed edge; deinterlace first for such shots (e.g. ffmpeg -vf bwdif)")


def _find_timecode(container: av.container.InputContainer, stream: av.stream.Stream) -> str | None:
    """Start timecode from the video stream, the container, or a timecode (tmcd) data stream."""
    sources = [stream.metadata, container.metadata]
    sources += [s.metadata for s in container.streams if s.type == "data"]
    for metadata in sources:
        value = _metadata_get(metadata, "timecode")
        if value:
            return value
    return None


class VideoSource:
    """Decodes the first video stream of a file; a :class:`~pomagan_post.io.base.FrameSource`.

    ``info`` is filled before any frame is decoded. The frame count comes from the container's
    index when it has one (MOV/MP4/AVI); otherwise (Matroska, WebM, MPEG-TS, ...) one demux pass
    reads the packets' timestamps without decoding them (I/O bound: it reads the file once).
    Each iteration decodes from the start (or from a seek near the first wanted frame) on a worker
    thread holding at most ``prefetch`` converted frames.

    Args:
        path: the video file.
        frames: frame numbers to yield (as in ``info.frames`` of the whole clip: from
            ``start_frame``); None for every frame. Numbers the clip does not have raise
            :class:`MissingFramesError`.
        prefetch: frames decoded ahead, at least ``convert_workers`` (each one is H*W*3 float32:
            about 100 MB at 4K).
        threads: decoder threads (0: FFmpeg's choice).
        convert_workers: threads converting decoded frames to float RGB (swscale and numpy,
            one frame each at a time; default: half the CPU cores, 2 to 8). One thread alone
            capped a 1080p ProRes clip at about 30 fps on any machine (measured on 2 and on 16
            cores); frames still come out in order.
        start_frame: the number of the clip's first frame (default 0). Every number this source
            takes and gives (``frames``, ``info.frames``, iteration, errors) counts from it, and
            ``info.metadata["frame_origin"]`` (where timecode and audio start) is it: Nuke
            numbers a movie's frames from 1, VFX plates often start at 1001.

    Raises:
        BadInputError: the file does not exist or has no video stream; a negative start_frame.
        UnsupportedFormatError: FFmpeg cannot read the file or has no decoder for its codec.
        MissingFramesError: ``frames`` asks for numbers outside the clip.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        frames: list[int] | None = None,
        *,
        prefetch: int = 4,
        threads: int = 0,
        start_frame: int = 0,
        convert_workers: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.prefetch = max(1, int(prefetch))
        self.threads = int(threads)
        self.convert_workers = max(1, int(convert_workers or default_writers()))
        self.start_frame = int(start_frame)
        if self.start_frame < 0:
            raise BadInputError(f"--start-frame must be 0 or more, not {start_frame}")
        self._iterations: weakref.WeakSet[Iterator[tuple[int, np.ndarray]]] = weakref.WeakSet()
        #: AVI frame slots with no picture between two that decode (a frame dropped when the
        #: file was recorded or converted: an empty chunk), each given the frame before it, as
        #: players show them; filled while decoding, in frame numbers as callers see them.
        self.repeated: set[int] = set()
        with _open_input(self.path) as container:
            if not container.streams.video:
                raise BadInputError(f"{self.path}: has no video stream")
            self.info = self._probe(container, container.streams.video[0])
        # Decoding counts from 0 (self._wanted); what callers see counts from start_frame.
        self._subset = frames is not None
        self._wanted = self.info.frames
        #: Every frame number of the clip, whatever ``frames`` picked (render --temporal's
        #: neighbours may lie outside them).
        self.clip_frames = [n + self.start_frame for n in self._wanted]
        if frames is not None:
            clip = set(self._wanted)
            wanted = sorted(set(int(n) - self.start_frame for n in frames))
            missing = sorted(n + self.start_frame for n in set(wanted) - clip)
            if missing:
                span = (f"{self._wanted[0] + self.start_frame}-{self._wanted[-1] + self.start_frame}"
                        if clip else "none")
                raise MissingFramesError(
                    f"{self.path}: has no frame(s) {frame_list(missing)} (clip frames {span})",
                    frames=missing,
                )
            self._wanted = wanted
        self.info.frames = [n + self.start_frame for n in self._wanted]
        self.info.metadata["frame_origin"] = self.start_frame

    # -- probing -------------------------------------------------------------------------------

    def _probe(self, container: av.container.InputContainer, stream: av.video.VideoStream) -> ClipInfo:
        ctx = stream.codec_context
        if ctx is None or not ctx.width or not ctx.height:
            raise UnsupportedFormatError(f"{self.path}: no decoder for its video codec")
        pix_fmt = ctx.pix_fmt or (ctx.format.name if ctx.format else None)
        if pix_fmt is None:
            raise UnsupportedFormatError(f"{self.path}: unknown pixel format")
        vformat = av.VideoFormat(pix_fmt)
        colour_bits = [c.bits for c in vformat.components if not c.is_alpha]
        bit_depth = max(colour_bits) if colour_bits else 8
        has_alpha = any(c.is_alpha for c in vformat.components)

        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._fps = Fraction(rate) if rate else None
        # Variable frame rate (phones): frames are numbered by their time at the conform rate
        # and the slots between two frames hold the earlier one, as a constant-rate conform does,
        # so every output frame sits at its source frame's time. Confirmed (or dropped, when two
        # frames share a slot) by _count_frames.
        self._average_fps = self._fps
        conform = conform_rate(self._fps, stream.base_rate)
        self._vfr = conform is not None
        self._fps = conform or self._fps
        self._time_base = Fraction(stream.time_base) if stream.time_base else None
        self._start_pts = stream.start_time
        # AVI stores no presentation times: FFmpeg invents them from the decode order, which
        # B-frames reorder (H.264 in AVI came out as frames 1, 3, 4, 2, ...). Its packets' decode
        # times are its frame slots (a dropped frame's empty chunk leaves its slot out: it holds
        # the frame before, see ``repeated``), and the decoder hands frames back in presentation
        # order, so the n-th frame out takes the n-th packet's slot.
        self._slots_from_dts = container.format.name == "avi"
        # 16-bit RGB for 8-bit YUV sources too (its 8-bit RGB output rounds), and 8-bit 4:2:0 / 4:2:2
        # first upsampled to 4:4:4: swscale's fast path from those to RGB bends the mid-tones
        # (up to 1.9 codes dark at Y=60 after the black/white calibration; 4:4:4 and 10-bit are
        # exact to 0.01 code)
        self._yuv = not vformat.is_rgb and len(vformat.components) >= 3
        self._out_format = "rgb48le" if bit_depth > 8 or self._yuv else "rgb24"  # (8-bit RGB: as stored)
        subsampled = vformat.name.startswith(("yuv4", "yuvj4")) and vformat.name[-1:] == "p" and (
            vformat.chroma_width(64) < 64 or vformat.chroma_height(64) < 64)
        self._via = ("yuvj444p" if vformat.name.startswith("yuvj") else "yuv444p") if (
            subsampled and bit_depth == 8) else None

        tagged = ctx.colorspace or 2
        # untagged (2): BT.601 for standard definition, else BT.709, as players read it
        matrix = tagged if tagged != 2 else untagged_matrix(ctx.width, ctx.height)
        full_range = ctx.color_range == _RANGE_JPEG or pix_fmt.startswith("yuvj")
        self._matrix = matrix
        # Limited-range Y'CbCr (nearly all video): chroma upsampled to 4:4:4 at the source's
        # depth, then the matrix in float (io.yuv), so super-whites and super-blacks are kept
        # (swscale's RGB clips them). Full range has no such headroom: swscale, calibrated below.
        self._planar = None
        if self._yuv and not full_range and bit_depth in _PLANAR_444:
            self._planar = self._out_format = _PLANAR_444[bit_depth]
        self._sws_matrix = _SWS_MATRIX.get(matrix, "itu709")
        self._src_range = "JPEG" if full_range else "MPEG"
        top = 65535.0 if self._out_format == "rgb48le" else 255.0
        self._gain = np.full(3, 1.0 / top, np.float32)
        self._offset = np.zeros(3, np.float32)
        if self._yuv and self._planar is None:
            self._calibrate(pix_fmt, full_range)

        trc = ctx.color_trc or 2
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        frames = self._count_frames(stream)  # sets self._start_pts when the container did not
        rotation, interlaced = self._first_frame_facts()
        self._turns = quarter_turns(rotation)
        width, height = (ctx.height, ctx.width) if self._turns % 2 else (ctx.width, ctx.height)
        pixel_aspect = float(sar) if sar else 1.0
        if self._turns % 2:
            pixel_aspect = 1.0 / pixel_aspect  # a turned pixel is as tall as it was wide
        audio = container.streams.audio
        metadata: dict[str, Any] = {
            "path": str(self.path),
            "container": container.format.name,
            "codec": ctx.name,
            "profile": ctx.profile,
            "pix_fmt": pix_fmt,
            "bit_depth": bit_depth,
            "decode_format": self._out_format,
            "has_alpha": has_alpha,
            "has_audio": bool(audio),
            "audio_codec": audio[0].codec_context.name if audio and audio[0].codec_context else None,
            "audio_tracks": len(audio),
            "color_range": "tv" if self._yuv and not full_range else "pc",
            "color_matrix": _MATRIX_NAMES.get(tagged, str(tagged)),
            "matrix_used": _MATRIX_NAMES.get(matrix, str(matrix)) if self._yuv else None,
            "color_trc": _TRC_NAMES.get(trc, str(trc)),
            "color_primaries": _PRIMARIES_NAMES.get(ctx.color_primaries or 2, str(ctx.color_primaries)),
            "start_time": float(self._start_pts * self._time_base) if self._time_base else 0.0,
            "frame_count_from": self._count_from,
            # variable frame rate conformed to the base rate: "frame_rate_mode" is "variable",
            # "decoded_frames" the frames in the file, "average_fps" its average rate
            "frame_rate_mode": "variable" if self._vfr else "constant",
            "decoded_frames": self._decoded_count or len(frames),
            "average_fps": self._average_fps,
            # The frame number at which ``timecode`` and the file's audio start.
            "frame_origin": 0,
            # the display matrix's quarter turn, degrees counterclockwise (0, 90, 180 or 270);
            # frames come out turned by it
            "rotation": self._turns * 90,
            "stored_size": (ctx.width, ctx.height),
            # two fields woven into each frame (broadcast video); matted as whole frames
            "interlaced": interlaced,
            # FFmpeg's field order (2 top field first, 3 bottom first, ...; 0 unknown): a video
            # output carries it, its frames still holding both fields
            "field_order": int(ctx.field_order or 0),
        }
        return ClipInfo(
            width=width,
            height=height,
            frames=frames,
            colorspace=_TRC_TO_COLORSPACE.get(trc, "rec709"),
            channels=4 if has_alpha else 3,
            fps=self._fps,
            pixel_aspect=pixel_aspect,
            timecode=_find_timecode(container, stream),
            metadata=metadata,
        )

    def _count_frames(self, stream: av.video.VideoStream) -> list[int]:
        """Frame numbers; also settles the start pts when the container does not state it, and
        whether a variable-rate stream is conformed (every frame on its own slot) or not."""
        counted = stream.frames if stream.frames and stream.frames > 0 else 0
        family = stream.container.format.name
        if counted and stream.duration and self._fps and self._time_base and "mov" in family.split(","):
            # An edit list (an MP4 cut with -c copy at a frame between keyframes) keeps the
            # frames before the cut in the file but not in the clip: the container counts
            # them, its duration does not, and they never come out of the decoder. Only when
            # the two disagree, one demux pass (no decoding) counts the packets the demuxer
            # does not mark to be discarded: exact, where a duration may also be short by a
            # last frame stored without one.
            shown = round(stream.duration * self._time_base * self._fps)
            if 0 < shown < counted:
                counted = min(counted, self._count_kept_packets() or counted)
        self._decoded_count = counted
        if self._vfr:
            numbers = self._count_variable()
            if numbers is not None:
                return numbers
        if counted and self._start_pts is not None:
            self._count_from = "container"
            return list(range(counted))
        # Read packet timestamps (no decoding): all of them when the container has no frame
        # count, else only the first few, enough to find the first pts behind B-frame reordering.
        self._count_from = "container" if counted else "demux"
        pts: list[int] = []
        packets = 0
        with _open_input(self.path) as container:
            video = container.streams.video[0]
            try:
                for packet in container.demux(video):
                    if packet.size == 0:
                        continue
                    packets += 1
                    if packet.pts is not None:
                        pts.append(packet.pts)
                    if counted and packets >= 64:
                        break
            except av.FFmpegError as error:
                raise BadInputError(
                    f"{self.path}: cannot read packets ({_av_message(error)})"
                ) from error
        if self._start_pts is None:
            self._start_pts = min(pts) if pts else 0
        if counted:
            return list(range(counted))
        # Matroska/WebM count no frames, but FFmpeg writes each stream's DURATION when it
        # finishes a file: a copy cut short holds fewer packets than that promises. The frames
        # it promises are the clip's, so those missing are reported (by number) as undecodable.
        tagged = duration_tag(stream.metadata)  # (where the stream ends: its start time included)
        start = float(self._start_pts * self._time_base) if self._time_base else 0.0
        promised = round((tagged - start) * float(self._fps)) if tagged and self._fps else 0
        if family == "mxf" and stream.duration and self._fps and self._time_base:
            # MXF states the duration in its header, rewritten when the file is finished
            promised = round(stream.duration * self._time_base * self._fps)
        if self._fps and self._time_base and len(pts) == packets:
            numbers = sorted({self._number(p) for p in pts})
            if len(numbers) == packets:
                if numbers and promised >= numbers[-1] + 3:  # (a frame or so of rounding is not a cut)
                    numbers += list(range(numbers[-1] + 1, promised))
                return numbers
        if promised >= packets + 2:
            return list(range(promised))
        return list(range(packets))

    def _count_kept_packets(self) -> int | None:
        """Video packets the demuxer keeps (not marked discard by an edit list); None when the
        file cannot be read through."""
        kept = 0
        try:
            with _open_input(self.path) as container:
                for packet in container.demux(container.streams.video[0]):
                    if packet.size and not packet.is_discard:
                        kept += 1
        except (av.FFmpegError, PomaganError):
            return None
        return kept

    def _first_frame_facts(self) -> tuple[int, bool]:
        """(the display matrix's rotation in degrees, 0 without one; whether the picture is
        interlaced), from the first frame that decodes: FFmpeg hands the stream's matrix to every
        decoded frame. A file whose first frames do not decode reads as (0, False) here;
        decoding reports them later by number."""
        try:
            with _open_input(self.path) as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    for frame in packet.decode():
                        return int(round(frame.rotation or 0)), bool(frame.interlaced_frame)
        except (av.FFmpegError, ValueError, PomaganError):
            pass
        return 0, False

    def _count_variable(self) -> list[int] | None:
        """A variable-rate stream's slots at its base rate, from every packet's timestamp (one
        demux pass, no decoding); None (numbered as constant-rate) when two frames share a slot
        or a timestamp is missing."""
        pts: list[int] = []
        with _open_input(self.path) as container:
            try:
                pts = [p.pts for p in container.demux(container.streams.video[0]) if p.size]
            except av.FFmpegError as error:
                raise BadInputError(f"{self.path}: cannot read packets ({_av_message(error)})") from error
        if not pts or None in pts or not self._time_base:
            self._vfr, self._fps = False, self._average_fps
            return None
        self._start_pts = min(pts) if self._start_pts is None else self._start_pts
        numbers = {self._number(p) for p in pts}
        if len(numbers) != len(pts) or min(numbers) < 0:
            self._vfr, self._fps = False, self._average_fps
            return None
        self._count_from = "demux"
        self._decoded_count = len(pts)
        return list(range(max(numbers) + 1))

    def _number(self, pts: int) -> int:
        """0-based frame index of a pts (stream time base)."""
        return int(round((pts - self._start_pts) * self._time_base * self._fps))

    # -- decoding ------------------------------------------------------------------------------

    def _calibrate(self, pix_fmt: str, full_range: bool) -> None:
        """Measures where swscale puts YUV black and white, and maps them to exactly 0 and 1.

        FFmpeg's swscale (6.x-8.x) converts limited-range YUV white to 65280 (255 << 8), not
        65535, in 16-bit RGB: a 0.4 % gain error. Two flat test frames in the source's own
        pixel format measure it; planar formats only (others keep the plain scale).
        """
        vformat = av.VideoFormat(pix_fmt)
        components = vformat.components
        if (vformat.is_big_endian or not vformat.is_planar
                or len({c.plane for c in components}) != len(components)):
            return
        bits = components[0].bits
        dtype = np.uint16 if bits > 8 else np.uint8
        if full_range:
            black, white, mid = 0, (1 << bits) - 1, 1 << (bits - 1)
        else:
            black, white, mid = 16 << (bits - 8), 235 << (bits - 8), 128 << (bits - 8)

        def measure(luma: int) -> np.ndarray:
            frame = av.VideoFrame(16, 16, pix_fmt)
            for component, plane in zip(components, frame.planes):
                value = luma if component.is_luma else (1 << bits) - 1 if component.is_alpha else mid
                np.frombuffer(plane, dtype=dtype)[:] = value
            return self._reformat(frame).to_ndarray().reshape(-1, 3).mean(axis=0)

        low, high = measure(black), measure(white)
        if np.all(high - low > 1.0):
            self._gain = (1.0 / (high - low)).astype(np.float32)
            self._offset = (-low * self._gain).astype(np.float32)

    def _reformat(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self._via is not None:
            frame = frame.reformat(format=self._via)
        if not self._yuv:
            return frame.reformat(format=self._out_format)
        return frame.reformat(
            format=self._out_format,
            src_colorspace=self._sws_matrix,
            dst_colorspace=self._sws_matrix,
            src_color_range=self._src_range,
            dst_color_range="JPEG",
        )

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        if self._planar is not None:
            if frame.format.name != self._planar:
                frame = frame.reformat(format=self._planar)
            rgb = planes_to_rgb(*planes_of(frame), frame.format.components[0].bits, self._matrix)
            return np.ascontiguousarray(np.rot90(rgb, self._turns)) if self._turns else rgb
        pixels = self._reformat(frame).to_ndarray()  # [H, W, 3] as stored
        if self._turns:
            pixels = np.rot90(pixels, self._turns)  # as displayed (a view; the cast copies it)
        rgb = pixels.astype(np.float32, order="C")
        rgb *= self._gain
        if self._offset.any():
            rgb += self._offset
        return rgb

    def _decode(self, pool: ThreadPoolExecutor) -> Iterator[tuple[int, "Future[np.ndarray]"]]:
        """Yields each frame's number and its conversion to float RGB, submitted to ``pool``;
        runs on the decode-ahead thread. Seeks when a subset starts late."""
        wanted = self._wanted
        if not wanted:
            return
        seek = self._subset and wanted[0] > 0 and self._fps is not None and self._time_base
        try:
            yield from self._decode_pass(pool, seek=bool(seek))
        except _SeekMissed:
            yield from self._decode_pass(pool, seek=False)

    def _converted(self, items: Iterator[tuple[int, "Future[np.ndarray]"]],
                   pool: ThreadPoolExecutor) -> Iterator[tuple[int, np.ndarray]]:
        """The frames in order, each once its conversion is done (on the consumer's side). The
        conversion threads end with the iteration, however it ends."""
        try:
            for number, pending in items:
                try:
                    rgb = pending.result()
                except (av.FFmpegError, ValueError) as error:
                    raise BadInputError(
                        f"{self.path}: cannot decode frame {number} ({_av_message(error)})"
                    ) from error
                yield number, rgb
        finally:
            items.close()  # type: ignore[attr-defined]  (stops the decode-ahead thread first)
            pool.shutdown(wait=True, cancel_futures=True)

    def _decode_pass(self, pool: ThreadPoolExecutor, seek: bool) -> Iterator[tuple[int, "Future[np.ndarray]"]]:
        wanted = self._wanted
        first = self.start_frame
        wanted_set = set(wanted) if self._subset else None
        last_wanted = wanted[-1]
        emitted: set[int] = set()
        previous: int | None = None
        held: av.VideoFrame | None = None  # variable rate: the frame the next empty slots hold
        held_rgb: Future[np.ndarray] | None = None
        at = wanted[0]  # the frame being decoded, for error messages
        with _open_input(self.path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_type = "AUTO"
            stream.codec_context.thread_count = self.threads
            if seek:
                target = self._start_pts + int(wanted[0] / (self._fps * self._time_base))
                container.seek(target, stream=stream, backward=True, any_frame=False)
            slots: collections.deque[int] = collections.deque()  # (AVI) packets' decode times
            damaged: set[int] = set()  # frames of packets the demuxer marks corrupt
            try:
                for packet in container.demux(stream):
                    if self._slots_from_dts and packet.size and packet.dts is not None:
                        slots.append(packet.dts)
                    if packet.is_corrupt and packet.size and self._fps and self._time_base:
                        # (a copy cut inside its last packet: the decoder conceals the gap with
                        # another frame's picture, which is no frame of the shot)
                        slot = packet.dts if self._slots_from_dts else packet.pts
                        if slot is not None:
                            damaged.add(self._number(slot))
                    for frame in packet.decode():
                        number = self._frame_number(frame, previous, slots.popleft() if slots else None)
                        if seek and previous is None and number > wanted[0]:
                            raise _SeekMissed()
                        if frame.is_corrupt or number in damaged:
                            previous = at = number  # not emitted: named with the missing frames
                            held = None
                            continue
                        if held is not None and previous is not None:
                            for slot in range(previous + 1, min(number, last_wanted + 1)):
                                if wanted_set is None or slot in wanted_set:
                                    if held_rgb is None:
                                        held_rgb = pool.submit(self._convert, held)
                                    emitted.add(slot)
                                    if self._slots_from_dts:
                                        self.repeated.add(slot + first)
                                    yield slot + first, held_rgb
                        previous = at = number
                        if self._vfr or self._slots_from_dts:  # (AVI: a dropped frame's empty slot)
                            held, held_rgb = frame, None
                        if wanted_set is not None and number not in wanted_set:
                            if number > last_wanted:
                                break
                            continue
                        emitted.add(number)
                        held_rgb = pool.submit(self._convert, frame)
                        yield number + first, held_rgb
                        at = number + 1
                    else:
                        continue
                    break
            except (av.FFmpegError, ValueError) as error:
                raise BadInputError(
                    f"{self.path}: cannot decode frame {at + first} ({_av_message(error)})"
                ) from error
        # Every wanted frame must have come out: a file cut short (its index promising more
        # frames than its data holds) otherwise ends the clip early without a word.
        missing = [n + first for n in wanted if n not in emitted]
        if missing:
            raise undecoded(self.path, missing)

    def _frame_number(self, frame: av.VideoFrame, previous: int | None, slot: int | None = None) -> int:
        """From pts when known (``slot``: the time to use instead, an AVI packet's); never
        repeats or goes back (VFR / damaged timestamps)."""
        pts = slot if slot is not None else frame.pts if frame.pts is not None else frame.dts
        if pts is not None and self._fps and self._time_base:
            number = self._number(pts)
        else:
            number = 0 if previous is None else previous + 1
        if previous is not None and number <= previous:
            number = previous + 1
        return number

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        # At least one frame ahead per conversion thread, so they all have work.
        depth = max(self.prefetch, self.convert_workers)
        pool = ThreadPoolExecutor(max_workers=self.convert_workers, thread_name_prefix=f"convert {self.path.name}")
        frames = self._converted(prefetch(self._decode(pool), depth=depth, name=f"decode {self.path.name}"), pool)
        self._iterations.add(frames)
        return frames

    def __len__(self) -> int:
        return len(self.info.frames)

    def close(self) -> None:
        """Stops unfinished iterations' decode-ahead threads (each iteration opens the file)."""
        for frames in list(self._iterations):
            try:
                frames.close()  # type: ignore[attr-defined]
            except ValueError:  # running in another thread right now; it stops when dropped
                pass

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SeekMissed(Exception):
    """A seek landed after the first wanted frame; decode from the start instead."""


def duration_tag(tags: Any) -> float | None:
    """Seconds in a ``DURATION`` stream tag (``HH:MM:SS.fraction``, FFmpeg's Matroska/WebM
    muxers), else None."""
    text = next((str(v) for k, v in dict(tags or {}).items() if str(k).upper() == "DURATION"), "")
    match = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*", text)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return value if value > 0 else None


def undecoded(path: str | os.PathLike[str], missing: list[int]) -> MissingFramesError:
    """The error for frames of a video that did not come out of its decoder (a file cut short)."""
    return MissingFramesError(f"{path}: frame(s) {frame_list(missing)} could not be decoded", frames=missing)


# ---------------------------------------------------------------------------------------------
# Audio carried into a sink


#: Audio codecs a MOV output takes as they are. FFmpeg's mov muxer lists more (Opus, FLAC,
#: Vorbis) and then refuses them when it writes the header, so they become PCM.
_MOV_AUDIO = ("aac", "alac", "mp3", "ac3", "eac3", "pcm_")

#: Audio decoded before an output's first sample (seconds): what a codec such as AAC needs to
#: get its first output samples right (its frames overlap); older packets are skipped unread.
_AUDIO_PREROLL_S = 1.0


def _takes_as_is(output: av.container.OutputContainer, codec: str) -> bool:
    if output.format.name == "mov":
        return codec.startswith(_MOV_AUDIO)
    return codec in output.supported_codecs


class _AudioTrack:
    """One audio stream on its way into the output: copied as it is when the output starts at
    the clip's start and the container takes the codec; otherwise decoded and written as 24-bit
    PCM, cut to the sample at the output's first frame and at its end (packets of a compressed
    codec span about 21 ms; copied, a later start would shift the sound by up to that)."""

    def __init__(self, stream: av.audio.stream.AudioStream, output: av.container.OutputContainer,
                 from_start: bool) -> None:
        self.stream = stream
        self.output = output
        self.resampler: av.AudioResampler | None = None
        self.samples = 0  # written by the encoder so far (PCM tracks)
        name = stream.codec_context.codec.canonical_name
        if from_start and _takes_as_is(output, name):
            self.out_stream = output.add_stream_from_template(stream)
            self.mode = f"copy {name}"
            self._tag()
            return
        ctx = stream.codec_context
        self.rate = ctx.sample_rate
        self.layout = ctx.layout.name
        self.out_stream = output.add_stream("pcm_s24le", rate=self.rate, layout=self.layout)
        self._tag()
        self.resampler = av.AudioResampler(format="s32p", layout=ctx.layout, rate=self.rate)
        self._held: list[np.ndarray] = []  # decoded samples (channels x n) not yet written
        self._started = False
        self.mode = (f"{name} re-encoded to pcm_s24le" if not name.startswith("pcm_")
                     else f"{name} cut to the sample as pcm_s24le")

    def _tag(self) -> None:
        """The track's language and title, as the clip has them (an editor's tracks stay labelled)."""
        _copy_tags(self.stream, self.out_stream, ("language", "title"))

    @property
    def copied(self) -> bool:
        return self.resampler is None

    def mux(self, packet: av.Packet, shift_s: float) -> None:
        """One packet of the clip; ``shift_s``: the clip time of the output's start."""
        if self.resampler is None:
            shift = int(round(shift_s / self.stream.time_base))
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.out_stream
            self.output.mux(packet)
            return
        for frame in packet.decode():
            pts = frame.pts if frame.pts is not None else packet.pts
            planes = [out.to_ndarray() for out in self.resampler.resample(frame)]
            if not planes:
                continue
            samples = np.concatenate(planes, axis=1)
            if not self._started:  # place the first sound at its time: cut before the start, or
                # (audio that starts after the picture) silence up to it
                at = round((float(pts * frame.time_base) - shift_s) * self.rate)
                if at + samples.shape[1] <= 0:
                    continue
                samples = (samples[:, -at:] if at < 0 else
                           np.concatenate([np.zeros((samples.shape[0], at), samples.dtype), samples], axis=1))
                self._started = True
            self._held.append(samples)

    def release(self, until_s: float) -> None:
        """Writes the held samples up to ``until_s`` seconds after the output's start."""
        if self.resampler is None or not self._held:
            return
        held = np.concatenate(self._held, axis=1)
        n = max(0, min(held.shape[1], round(until_s * self.rate) - self.samples))
        self._held = [held[:, n:]] if n < held.shape[1] else []
        if n:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(held[:, :n].T).reshape(1, -1),
                                               format="s32", layout=self.layout)
            frame.sample_rate, frame.pts, frame.time_base = self.rate, self.samples, Fraction(1, self.rate)
            self.samples += n
            for packet in self.out_stream.encode(frame):
                self.output.mux(packet)

    def flush(self, end_s: float) -> None:
        """Writes the samples up to ``end_s`` and drops the rest (PCM tracks)."""
        if self.resampler is not None:
            self.release(end_s)
            self._held = []
            for packet in self.out_stream.encode(None):
                self.output.mux(packet)


class _AudioCarrier:
    """Carries every audio stream of ``path`` (a camera's or an MXF's several tracks, in their
    order) into an output container, each copied or, where the container refuses the codec,
    re-encoded to PCM, trimmed to the written frame range. One demux pass reads them all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._input = _open_input(path)
        self.streams = list(self._input.streams.audio)
        if not self.streams:
            self._input.close()
            return
        video = self._input.streams.video
        start = video[0].start_time if video and video[0].start_time is not None else None
        tb = video[0].time_base if video else None
        if start is not None and tb:
            self._origin = float(start * tb)
        else:
            first = self.streams[0]
            self._origin = float((first.start_time or 0) * first.time_base)
        # Where the clip's pictures end (clip time; None: not stated): a copy may run to there.
        duration = video[0].duration if video else None
        self._video_end = (float(duration * tb) + (float(start * tb) if start is not None else 0.0)
                           - self._origin) if duration and tb else None
        self._packets: Iterator[av.Packet] | None = None
        self._offset = 0.0
        self._tracks: dict[int, _AudioTrack] = {}
        self._pending: av.Packet | None = None
        self.mode = ""

    def attach(self, output: av.container.OutputContainer, offset_s: float, end_s: float | None = None,
               frame_s: float = 0.0) -> None:
        """Adds the audio streams to ``output``; audio before ``offset_s`` (clip time) is dropped.
        ``end_s``: where the output's pictures will end (clip time; ``frame_s`` a frame's length):
        the sound is copied as it is only for an output of the whole clip, whose last packet
        may run past the pictures as it does in the clip; a span ending earlier is cut to the
        sample."""
        self._offset = offset_s
        whole = offset_s <= 0 and (end_s is None or self._video_end is None
                                   or end_s >= self._video_end - frame_s / 2)
        self._tracks = {s.index: _AudioTrack(s, output, from_start=whole) for s in self.streams}
        modes = [t.mode for t in self._tracks.values()]
        self.mode = ", ".join(dict.fromkeys(modes))  # "copy aac"; "2 tracks, copy pcm_s24le"
        if len(modes) > 1:
            self.mode = f"{len(modes)} tracks, {self.mode}"
        self._packets = self._input.demux(*self.streams)

    def pump(self, until_s: float | None) -> None:
        """Muxes audio whose clip time is before ``until_s`` (None: up to the end)."""
        while self._packets is not None:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._packets = None
                break
            if packet.pts is None or packet.size == 0:
                continue
            t = float(packet.pts * packet.stream.time_base) - self._origin - self._offset
            if until_s is not None and t >= until_s:
                self._pending = packet
                break
            track = self._tracks[packet.stream.index]
            # A copy (of the whole clip) keeps the packets before the first picture too: an AAC
            # track's priming packet, which the decoder needs and the edit list then hides.
            if t >= 0 or track.copied or t >= -_AUDIO_PREROLL_S:
                track.mux(packet, self._origin + self._offset)
        if until_s is not None:
            for track in self._tracks.values():
                track.release(until_s)

    def finish(self, end_s: float) -> None:
        """Muxes the audio up to ``end_s`` and flushes the encoders."""
        self.pump(end_s)
        for track in self._tracks.values():
            track.flush(end_s)
        self.close()

    def close(self) -> None:
        self._packets = None
        self._input.close()


# ---------------------------------------------------------------------------------------------
# Sink


def partial_path(path: str | os.PathLike[str]) -> Path:
    """The hidden file a :class:`VideoSink` writes before renaming it to ``path``; after an
    interrupted render it holds the frames encoded so far (see :func:`resumable_frames`)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def _finishing_path(path: Path) -> Path:
    """Where a finished MOV is assembled from its fragmented partial file before the rename."""
    return path.with_name(f".{path.stem}.finishing{path.suffix}")


# What keeps a partial file's frames readable when the writer dies without closing it: MOV is
# fragmented (a fragment per frame), Matroska puts each frame in its own cluster (the muxer holds
# an open cluster in memory), and every muxed packet goes to the file at once. A kill then loses
# only the frames still in the encoder and the muxer (MOV: the last one).
_CRASH_SAFE = {
    "mov": {"movflags": "frag_keyframe+empty_moov+default_base_moof+delay_moov", "flush_packets": "1"},
    "matroska": {"cluster_time_limit": "1", "flush_packets": "1"},
    "avi": {"flush_packets": "1"},
}


def _whole_packets(container: av.container.InputContainer, fps: Fraction) -> Iterator[tuple[int, Any]]:
    """``(frame index, packet)`` for the video packets of a partial file that are whole, in file
    order: reading stops at a cut-off packet (a killed writer's last one, flagged corrupt) or
    where the file stops making sense. AVI cannot tell a cut-off packet from a whole one, so its
    last packet is left out too (it is rendered again)."""
    stream = container.streams.video[0]
    tb = stream.time_base
    hold_back = container.format.name == "avi"
    pending: tuple[int, Any] | None = None
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:
                return
            if not packet.size or packet.pts is None:
                continue
            item = (int(round(packet.pts * tb * fps)), packet)
            if not hold_back:
                yield item
                continue
            if pending is not None:
                yield pending
            pending = item
    except (av.FFmpegError, OSError, ValueError):
        return  # cut off inside a container structure: what came before is whole


def _whole_frames(path: Path, fps: Fraction) -> int:
    """How many whole frames a partial file holds (0: none, or it does not open)."""
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in _whole_packets(container, fps))
    except (av.FFmpegError, OSError, ValueError, IndexError):
        return 0


_SETTINGS_LABEL = "settings="  # the render's settings in a video's comment, last
_ENCODER_LABEL = "encoder="  # the FFmpeg encoder that wrote it


def _comment(path: str | os.PathLike[str]) -> str:
    """A video's comment ("" for no file, an unreadable one, or no comment)."""
    if not Path(path).is_file():
        return ""
    try:
        with av.open(str(path)) as container:
            return _metadata_get(container.metadata, "comment") or ""
    except (av.FFmpegError, OSError, ValueError):
        return ""


def recorded_settings(path: str | os.PathLike[str]) -> str | None:
    """The render settings a video made by ``render`` records in its comment (None: not a
    file, unreadable, or none recorded)."""
    label = _comment(path)
    return label.split(_SETTINGS_LABEL, 1)[1] if _SETTINGS_LABEL in label else None


def recorded_span(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(first frame number, number of frames) of a finished video made by ``render``: the
    first as its comment records it, the count from its timestamps; None when it records no
    first frame or cannot be read."""
    match = re.search(r"first frame (-?\d+);", _comment(path))
    if not match:
        return None
    try:
        with VideoSource(path) as video:
            return int(match.group(1)), len(video.info.frames)
    except PomaganError:
        return None


def _encoder_of(label: str) -> str | None:
    """The FFmpeg encoder a comment written by :class:`VideoSink` names (None: made before
    comments named it)."""
    if _ENCODER_LABEL not in label:
        return None
    return label.split(_ENCODER_LABEL, 1)[1].split(";", 1)[0].strip() or None


def other_encoder(path: str | os.PathLike[str], codec: str) -> str | None:
    """The encoder a video made by ``render`` names when it is not the one ``codec`` uses
    (both ProRes encoders decode alike, so a file cannot tell them apart otherwise); None when
    it is the same, none is named, or there is no such file."""
    spec = VIDEO_CODECS.get(codec)
    encoder = _encoder_of(_comment(path))
    return encoder if spec is not None and encoder not in (None, spec.encoder) else None


def partial_settings(path: str | os.PathLike[str]) -> str | None:
    """The settings recorded in the partial file an interrupted render of ``path`` left (None:
    no partial file, or none recorded)."""
    return recorded_settings(partial_path(path))


def resumable_frames(path: str | os.PathLike[str], info: ClipInfo, frames: list[int],
                     codec: str, kind: str) -> int:
    """How many of ``frames`` (from the first, in order) the partial file an interrupted render
    of ``path`` left behind already holds, encoded with the same codec, size and kind, starting
    at the same frame; 0 when there is none or it does not fit (it is then written afresh).
    A render that was killed outright counts up to its last whole frame."""
    partial = partial_path(path)
    if not frames or not partial.is_file():
        return 0
    spec = VIDEO_CODECS.get(codec)
    fps = Fraction(info.fps) if info.fps else Fraction(24)
    try:
        with av.open(str(partial)) as container:
            ctx = container.streams.video[0].codec_context
            label = _metadata_get(container.metadata, "comment") or ""  # Matroska: COMMENT
            decoder = {"prores_ks": "prores", "prores_aw": "prores"}.get(spec.encoder, spec.encoder) if spec else None
            if (ctx.name != decoder or (ctx.width, ctx.height) != (info.width, info.height)
                    or f"kind={kind};" not in label or f"first frame {frames[0]};" not in label
                    # Both ProRes encoders decode as "prores": a partial from the other is not
                    # continued (one file, one encoder). Partials from before the label: kept.
                    or _encoder_of(label) not in (None, spec.encoder)):
                return 0
            held = sorted(index for index, _ in _whole_packets(container, fps))
    except (av.FFmpegError, OSError, ValueError, IndexError):
        return 0
    count = 0
    for index, number in zip(held, frames):
        if index != number - frames[0]:
            break
        count += 1
    return count


def _defragment(source: Path, target: Path) -> None:
    """Copies a fragmented MOV's streams, packet by packet, into an ordinary MOV (one index at
    the end, as editors expect); codec tags, frame rate, timecode and colour tags are kept."""
    with av.open(str(source)) as inp, av.open(str(target), mode="w", format="mov") as out:
        for key in ("comment", "timecode"):
            if key in inp.metadata:
                out.metadata[key] = inp.metadata[key]
        streams = {}
        for stream in inp.streams:
            if stream.type not in ("video", "audio"):
                continue  # the timecode track is written again from the video's "timecode"
            copy = out.add_stream_from_template(stream)
            copy.codec_tag = stream.codec_tag  # e.g. ProRes 4444's ap4h, else the muxer guesses
            if stream.type == "video":
                copy.time_base = stream.time_base
                copy.codec_context.framerate = stream.average_rate
                if stream.sample_aspect_ratio:  # anamorphic: not every codec's template keeps it
                    copy.codec_context.sample_aspect_ratio = stream.sample_aspect_ratio
            _copy_tags(stream, copy, ("timecode", "language", "title"))
            streams[stream.index] = copy
        for packet in inp.demux(*[inp.streams[i] for i in streams]):
            if packet.dts is None:
                continue  # the flush packet at the end of each stream
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


class VideoSink:
    """Encodes frames to a video file; a :class:`~pomagan_post.io.base.FrameSink`.

    Frames arrive as float32 [H, W, C] R'G'B'(A) in the source's encoding: C = 4 for ``kind="fg"``
    (RGBA), 3 for ``"comp"``, 1 (or [H, W]) for ``"alpha"``. They are clipped to [0, 1] and
    quantised to 16 bits; YUV codecs convert from there with the BT.709 matrix, limited range.
    Pixel values are written as given: ``premultiplied`` only labels them (the container's
    ``comment`` metadata of a ``kind="fg"`` file says ``alpha=premultiplied`` or ``alpha=straight``).

    ``kind="alpha"``: ProRes 4444 writes a grey picture (luma = matte, chroma neutral) and the
    same matte in its alpha plane; PNG and FFV1 write a 16-bit grey stream.

    Frame numbers must increase; a frame's time is ``(frame_number - first) / fps``, so gaps stay
    gaps. The output starts at the first written frame: its timecode is ``info.timecode`` moved
    to that frame, and audio from ``audio_from`` (its first audio stream) is trimmed to the
    written range at packet boundaries. Both are taken to start at frame
    ``info.metadata["frame_origin"]`` (0 for a :class:`VideoSource`), else ``info.frames[0]``.
    Audio is stream-copied when the container takes the codec, else re-encoded to 24-bit PCM.
    Without ``info.fps`` the file is written at 24 fps. Frames are converted to the codec's
    pixel format (16-bit quantisation, RGB -> YUV) on ``convert_workers`` threads at once and
    encoded, in order, on one more thread, behind a queue of ``queue_size`` frames; ``write``
    only checks the frame and queues it.

    Args:
        path: output file; its extension must suit the codec (see :data:`VIDEO_CODECS`).
        info: the clip being written (size, fps, timecode, colour).
        kind: ``"fg"``, ``"comp"`` or ``"alpha"``.
        codec: a key of :data:`VIDEO_CODECS`.
        audio_from: a file whose audio is carried over (ignored when it has none).
        premultiplied: whether written RGB is premultiplied by alpha (a label only).
        queue_size: frames buffered for the encoding thread.
        threads: encoder threads (0: FFmpeg's choice).
        convert_workers: threads converting frames to the codec's pixel format (numpy and
            swscale release the GIL, so they run beside the encoder and the caller).

    Raises:
        BadInputError: unknown kind or codec, an extension the codec does not suit, a bad size,
            an audio source equal to the output; later, frames of the wrong shape or order.
        UnsupportedFormatError: the encoder or muxer failed (raised by the next write/close).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: ClipInfo,
        kind: str = "fg",
        codec: str = "prores4444",
        audio_from: str | os.PathLike[str] | None = None,
        premultiplied: bool = True,
        *,
        queue_size: int = 4,
        threads: int = 0,
        convert_workers: int = 2,
        resume: list[int] | None = None,
        settings: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.settings = settings
        if kind not in _SINK_KINDS:
            raise BadInputError(f"unknown video output kind {kind!r} (choose from fg, comp, alpha)")
        if codec not in VIDEO_CODECS:
            raise BadInputError(
                f"unknown video codec {codec!r} (choose from {', '.join(VIDEO_CODECS)})"
            )
        self.spec = VIDEO_CODECS[codec]
        suffix = self.path.suffix.lower()
        if suffix not in self.spec.extensions:
            raise BadInputError(
                f"{self.path}: {codec} needs a {' or '.join(self.spec.extensions)} file"
            )
        if info.width <= 0 or info.height <= 0:
            raise BadInputError(f"{self.path}: bad frame size {info.width}x{info.height}")
        if self.spec.even_width and info.width % 2:
            raise BadInputError(
                f"{self.path}: {codec} needs an even frame width, this clip is {info.width}x{info.height} "
                "(use --codec prores4444)")
        self.info = info
        self.kind = kind
        self.codec = codec
        self.premultiplied = premultiplied
        self.fps = Fraction(info.fps) if info.fps else Fraction(24)
        self.threads = int(threads)
        self.tmp_path = partial_path(self.path)
        # YUV outputs use the source's matrix where it is BT.2020's (an HDR clip), else BT.709's
        self._matrix = 9 if info.metadata.get("color_matrix") in ("bt2020nc", "bt2020c") else 1
        # Resuming: the frames the partial file holds (``resumable_frames`` of them) are copied
        # from it, moved aside first, and the new ones follow as if never interrupted.
        self._resumed = list(resume or [])
        self._resume_path = self.tmp_path.with_name(f".{self.path.stem}.resumed{self.path.suffix}")
        self._fragmented = "movflags" in _CRASH_SAFE[_MUXERS[suffix]]  # finished by _defragment
        if audio_from is not None and Path(audio_from).resolve() == self.path.resolve():
            raise BadInputError(f"{self.path}: output would overwrite its audio source")
        # Before its hidden files are touched: no other process is writing this video.
        self._claim = Claim(self.path)
        try:
            _finishing_path(self.path).unlink(missing_ok=True)  # left by a render killed while finishing
            if self._resumed:
                os.replace(self.tmp_path, self._resume_path)
            self._audio: _AudioCarrier | None = None
            if audio_from is not None:
                self._audio = _AudioCarrier(Path(audio_from))
                if not self._audio.streams:
                    self._audio = None
        except BaseException:
            self._claim.release()
            raise
        self.audio_mode = ""
        self._output: av.container.OutputContainer | None = None
        self._stream: Any = None
        self._first: int | None = self._resumed[0] if self._resumed else None
        self._last: int | None = self._resumed[-1] if self._resumed else None
        self._count = 0
        self._state = "open"
        self._failed = False
        self._broken = False  # the encoder or muxer failed: only the whole frames it wrote count
        #: After :meth:`abort`: the partial file kept for a resume, if any.
        self.kept: Path | None = None
        self._order: list[int] = []  # frames handed over, in file order (after the resumed ones)
        #: The frame numbers the file (after :meth:`abort`: the partial file) holds, in order;
        #: frames still being converted when a render stops are not among them.
        self.written: list[int] = []
        self._writer = WriteBehind(
            workers=1, max_pending=max(1, int(queue_size)), name=f"encode {self.path.name}"
        )
        # Frames in flight are bounded by the writer's queue: each queued job holds one future.
        self._convert = ThreadPoolExecutor(max_workers=max(1, int(convert_workers)),
                                           thread_name_prefix=f"convert {self.path.name}")

    # -- caller side ---------------------------------------------------------------------------

    def write(self, frame_number: int, image: np.ndarray,
              attributes: Sequence[tuple[str, str, Any]] = ()) -> None:
        """Checks one frame and queues it for conversion and encoding (the caller must not
        change ``image`` afterwards). A video keeps no header per frame: ``attributes`` (an
        image input frame's own) are not used."""
        if self._state != "open":
            raise BadInputError(f"{self.path}: write after close/abort")
        frame_number = int(frame_number)
        if self._resumed and frame_number <= self._resumed[-1] and self._count == 0:
            return  # already in the partial file this sink resumes
        if self._last is not None and frame_number <= self._last:
            raise BadInputError(
                f"{self.path}: frame {frame_number} written after frame {self._last}"
            )
        image = self._checked(frame_number, image)
        if self._first is None:
            self._first = frame_number
        self._last = frame_number
        self._count += 1
        self._order.append(frame_number)
        try:
            self._writer.submit(self._encode, frame_number, self._convert.submit(self._to_frame, image))
        except BaseException:
            self.abort()
            raise

    def _checked(self, frame_number: int, image: np.ndarray) -> np.ndarray:
        """[H, W, C] with the sink's channel count and the clip's size, else BadInputError."""
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[:, :, None]
        channels = _SINK_KINDS[self.kind]
        if image.ndim != 3 or image.shape[2] != channels:
            raise BadInputError(
                f"{self.path}: frame {frame_number} has shape {tuple(image.shape)}, "
                f"a {self.kind} output takes [H, W, {channels}]"
            )
        if image.shape[:2] != (self.info.height, self.info.width):
            raise BadInputError(
                f"{self.path}: frame {frame_number} is {image.shape[1]}x{image.shape[0]}, "
                f"the clip is {self.info.width}x{self.info.height}"
            )
        return image

    @staticmethod
    def _to_uint16(image: np.ndarray) -> np.ndarray:
        scaled = np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)
        np.nan_to_num(scaled, copy=False, nan=0.0)
        scaled *= 65535.0
        scaled += 0.5
        return np.ascontiguousarray(scaled.astype(np.uint16))

    def close(self) -> None:
        """Flushes the encoders, muxes the rest of the audio and renames the file into place."""
        if self._state != "open":
            return
        if self._first is None:
            self.abort()
            raise BadInputError(f"{self.path}: no frames were written")
        try:
            self._writer.submit(self._finish)
            self._writer.wait()
        except BaseException:
            self.abort()
            raise
        self._convert.shutdown(wait=True)
        self._state = "closed"
        self.written = self._resumed + self._order
        try:
            if self._fragmented:
                finishing = _finishing_path(self.path)
                try:
                    _defragment(self.tmp_path, finishing)
                except BaseException as error:
                    finishing.unlink(missing_ok=True)  # the partial file stays, whole, for a resume
                    self.kept = self.tmp_path
                    if isinstance(error, Exception):
                        # a full disk is a failed write (exit 1), anything else the format's
                        kind = PomaganError if _is_write_failure(error) else UnsupportedFormatError
                        raise kind(
                            f"{self.path}: cannot finish the file ({_av_message(error)}); the frames "
                            f"stay in {self.tmp_path.name} for a resume"
                        ) from error
                    raise
                os.replace(finishing, self.path)
                self.tmp_path.unlink()
            else:
                os.replace(self.tmp_path, self.path)
            self._resume_path.unlink(missing_ok=True)
        finally:
            self._claim.release()

    def abort(self) -> None:
        """Stops encoding. The frames encoded so far stay in the hidden partial file, finished
        so it plays, for a resume (:func:`resumable_frames`); after a failed write (a full disk)
        its whole frames stay all the same. It is removed when it holds no frame. A finished
        file is left alone."""
        if self._state != "open":
            return
        self._state = "aborted"
        self._failed = True  # jobs already running skip their work
        self._convert.shutdown(wait=False, cancel_futures=True)
        self._writer.cancel()
        keep = self._output is not None
        if keep and not self._broken:
            try:
                self._flush(audio=False)  # the encoder's last frames, then the file's index
            except Exception:  # cleaning up after a failure; the first error matters
                self._broken = True
        for closer in (self._output, self._audio):
            if closer is not None:
                try:
                    closer.close()
                except Exception:
                    self._broken = True
        self._output = None
        held = _whole_frames(self.tmp_path, self.fps) if keep else 0
        if self._broken:
            # The writer failed (a full disk, say): the file is readable up to its last whole
            # frame all the same (see _CRASH_SAFE), so it is kept if it holds one.
            keep = held > 0
        if keep:
            self.kept = self.tmp_path
            self._resume_path.unlink(missing_ok=True)
            self.written = (self._resumed + self._order)[:held]
        else:
            self.tmp_path.unlink(missing_ok=True)
            if self._resumed and self._resume_path.exists():
                os.replace(self._resume_path, self.tmp_path)  # the earlier partial stays usable
                self.written = list(self._resumed)
        self._claim.release()

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, exc_type: type | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def frames_written(self) -> int:
        return self._count

    # -- worker side ---------------------------------------------------------------------------

    def _guarded(self, where: str, job: Callable[[], None]) -> None:
        """Runs an encoding job; the first failure becomes one clear error, later jobs skip."""
        if self._failed:
            return
        try:
            job()
        except BaseException as error:
            self._failed = self._broken = True
            if isinstance(error, PomaganError):
                raise
            if _is_write_failure(error):
                raise PomaganError(
                    f"{self.path}: cannot write {where} ({error.strerror or _av_message(error)}); "
                    f"the frames written before it stay in {self.tmp_path.name} for a resume"
                ) from error
            raise UnsupportedFormatError(
                f"{self.path}: cannot encode {where} with {self.codec} ({_av_message(error)})"
            ) from error

    def _open_output(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        muxer = _MUXERS[self.path.suffix.lower()]
        output = av.open(str(self.tmp_path), mode="w", format=muxer,
                         options=dict(_CRASH_SAFE[muxer]))
        self._output = output
        stream = output.add_stream(self.spec.encoder, rate=self.fps)
        stream.width = self.info.width
        stream.height = self.info.height
        stream.pix_fmt = self.spec.pix_fmts[self.kind]
        stream.time_base = Fraction(self.fps.denominator, self.fps.numerator)
        stream.options = dict(self.spec.options)
        ctx = stream.codec_context
        ctx.thread_type = "AUTO"
        ctx.thread_count = self.threads
        primaries, trc = self._primaries(), _COLORSPACE_TO_TRC.get(self.info.colorspace, 2)
        ctx.color_primaries = primaries if self.spec.primaries is None or primaries in self.spec.primaries else 2
        ctx.color_trc = trc if self.spec.transfers is None or trc in self.spec.transfers else 2
        ctx.colorspace = self._matrix if self.spec.yuv else 0
        ctx.color_range = _RANGE_MPEG if self.spec.yuv else _RANGE_JPEG
        aspect = float(self.info.pixel_aspect or 1.0)
        if abs(aspect - 1.0) > 1e-3:  # anamorphic: players show it desqueezed, as the source
            ctx.sample_aspect_ratio = Fraction(aspect).limit_denominator(1000)
        if self.info.metadata.get("interlaced") and self.info.metadata.get("field_order", 0) > 1:
            ctx.field_order = int(self.info.metadata["field_order"])  # woven fields, as the source
        origin = self.info.metadata.get("frame_origin")
        if origin is None:
            origin = self.info.frames[0] if self.info.frames else self._first
        offset = self._first - int(origin)
        if self.info.timecode:
            timecode = advance_timecode(self.info.timecode, offset, self.fps)
            stream.metadata["timecode"] = timecode
            output.metadata["timecode"] = timecode
        # Only a foreground has colour and alpha to be premultiplied or not (a matte or a comp has
        # no such label, as the image files: README).
        label = f"alpha={'premultiplied' if self.premultiplied else 'straight'}; " if self.kind == "fg" else ""
        output.metadata["comment"] = (f"{label}kind={self.kind}; first frame {self._first}; "
                                      f"written by pomagan-post; {_ENCODER_LABEL}{self.spec.encoder}"
                                      + (f"; {_SETTINGS_LABEL}{self.settings}" if self.settings else ""))
        self._stream = stream
        if self._audio is not None:
            last = int(self.info.frames[-1]) if self.info.frames else self._first
            self._audio.attach(output, float(max(offset, 0) / self.fps),
                               float((offset + last - self._first + 1) / self.fps), float(1 / self.fps))
            self.audio_mode = self._audio.mode
        if self._resumed:
            self._copy_resumed()

    def _copy_resumed(self) -> None:
        """The frames an interrupted render encoded, copied from its partial file (no
        re-encoding), with the audio that goes with them."""
        wanted = {n - self._first for n in self._resumed}
        with av.open(str(self._resume_path)) as partial:
            for index, packet in _whole_packets(partial, self.fps):
                if index not in wanted:
                    continue
                packet.stream = self._stream
                packet.time_base = Fraction(self.fps.denominator, self.fps.numerator)
                packet.pts = packet.dts = index
                packet.duration = 1
                self._output.mux(packet)
        if self._audio is not None:
            self._audio.pump(float((self._resumed[-1] - self._first + 1) / self.fps))

    def _primaries(self) -> int:
        name = self.info.metadata.get("color_primaries")
        for key, value in _PRIMARIES_NAMES.items():
            if value == name and key != 2:
                return key
        return 1

    def _encode(self, number: int, converted: "Future[av.VideoFrame]") -> None:
        self._guarded(f"frame {number}", lambda: self._encode_frame(number, converted.result()))

    def _to_frame(self, image: np.ndarray) -> av.VideoFrame:
        """A checked float frame -> an ``av.VideoFrame`` in the codec's pixel format (runs on a
        conversion thread)."""
        if self._failed:
            return None
        target = self.spec.pix_fmts[self.kind]
        if self.spec.yuv:
            return self._to_yuv_frame(image, av.VideoFormat(target))
        pixels = self._to_uint16(image)
        if pixels.shape[2] == 4:
            frame = av.VideoFrame.from_ndarray(pixels, format="rgba64le")
        elif pixels.shape[2] == 3:
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb48le")
        else:
            frame = av.VideoFrame.from_ndarray(pixels[:, :, 0], format="gray16le")
        if frame.format.name != target:
            frame = frame.reformat(format=target)
        return frame

    def _to_yuv_frame(self, image: np.ndarray, target: av.VideoFormat) -> av.VideoFrame:
        """Limited-range Y'CbCr by the matrix in float (io.yuv): values above 1 (a plate's
        super-whites) and below 0 are kept up to the format's reserved codes, as sources read
        them. The alpha kind is a grey picture (luma = matte) with the matte again as alpha."""
        height, width = image.shape[:2]
        colour = np.repeat(image[..., :1], 3, axis=2) if self.kind == "alpha" else image[..., :3]
        bits = target.components[0].bits
        planes = rgb_to_planes(colour, bits, self._matrix)
        if any(c.is_alpha for c in target.components):
            planes.append(alpha_codes(image[..., 3] if self.kind == "fg" else image[..., 0], bits))
        return fill_planes(av.VideoFrame(width, height, target.name), planes)

    def _encode_frame(self, number: int, frame: av.VideoFrame) -> None:
        if self._output is None:
            self._open_output()
        # The colour tags go on every frame too: encoders such as ProRes write the frame's into
        # the bitstream, which is what decoders and editors read (the container's alone were
        # not enough: ffprobe and the decoded frames said "unknown").
        ctx = self._stream.codec_context
        frame.color_primaries, frame.color_trc = ctx.color_primaries, ctx.color_trc
        frame.colorspace, frame.color_range = ctx.colorspace, ctx.color_range
        frame.pts = number - self._first
        for packet in self._stream.encode(frame):
            self._output.mux(packet)
        if self._audio is not None:
            self._audio.pump(float((number - self._first + 1) / self.fps))

    def _finish(self) -> None:
        self._guarded("the end of the file", self._flush)

    def _flush(self, audio: bool = True) -> None:
        if self._output is None:  # resumed with every frame already in the partial file
            self._open_output()
        for packet in self._stream.encode(None):
            self._output.mux(packet)
        if self._audio is not None and audio:
            self._audio.finish(float((self._last - self._first + 1) / self.fps))
        self._output.close()
        self._output = None
