"""Raw frames in, raw frames out: the library function behind ``pomagan-post pipe``.

``pipe`` sits between an ffmpeg decoder and an ffmpeg encoder (or any program speaking raw
video): it reads frames of one size and pixel format from a binary stream, one frame's bytes at a
time, mattes them in batches and writes one output frame per input frame, with nothing else on
the output stream. Memory stays flat for any stream length (at most a few batches in flight).

Pixel formats (ffmpeg's names and byte layouts; ``gbrp*`` are planar G, B, R[, A] planes):

============  ==========================  =========================================
name          in                          out
============  ==========================  =========================================
rgb24         8-bit RGB                   fg, comp
rgb48le       16-bit RGB                  fg, comp
rgba          8-bit RGBA (A ignored)      rgba
rgba64le      16-bit RGBA (A ignored)     rgba
gbrpf32le     float RGB, planar           fg, comp
gbrapf32le    -                           rgba (float, planar)
gray          8-bit luma (as R=G=B)       alpha
gray16le      16-bit luma                 alpha
grayf32le     float luma                  alpha
yuv444p       8-bit Y'CbCr, planar        -
yuv444p10le   10-bit Y'CbCr, planar       fg, comp
yuv444p12le   12-bit Y'CbCr, planar       -
yuv444p16le   16-bit Y'CbCr, planar       fg, comp
yuvj444p      8-bit full-range Y'CbCr     -
yuva444p10le  -                           rgba (Y'CbCr + 10-bit alpha, planar)
yuva444p16le  -                           rgba (Y'CbCr + 16-bit alpha, planar)
============  ==========================  =========================================

The ``yuv*`` formats are limited-range Y'CbCr 4:4:4 (10-bit black 64, white 940; ``yuvj444p``
full range, as MJPEG and many phones record: black 0, white 255), converted by
the matrix in float (:mod:`pomagan_post.io.yuv`, as ``render`` reads and writes video): a
camera's super-whites come in above 1.0 and go back out as the codes they were, where an
integer RGB format clips them. ``matrix`` names the matrix (ffmpeg's ``-colorspace`` names).
Subsampled video is upsampled by ffmpeg first (``-pix_fmt yuv444p10le``); alpha is full range.

Outputs:

``alpha``  the matte, one channel.
``rgba``   foreground colour + alpha; colour premultiplied (default) or straight
           (``premultiplied=False``), as ``render``'s ``fg`` output.
``fg``     the premultiplied foreground colour, no alpha channel.
``comp``   the premultiplied foreground over a background colour or image (``comp=``).

Integer RGB and grey codes map to [0, 1] as ``code / max`` (read) and ``round(clip(v) * max)`` (write) with
:func:`~pomagan_post.colour.dequantize` / :func:`~pomagan_post.colour.quantize`, the same
conversions ``render`` uses for 8/16-bit PNG and TIFF, so the two agree bit for bit. Float
formats carry values unclipped (a scene-linear foreground keeps values above 1).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

from .colour import dequantize, quantize, resolve_colorspace
from .engine import padded_batches, shot_pixel_aspect, taking_turns
from .errors import BadInputError, MissingFramesError
from .io.base import ClipInfo, parse_pixel_aspect, parse_size
from .io.streams import prefetch, usable_cpus
from .io.yuv import alpha_codes, planes_to_rgb, rgb_to_planes, untagged_matrix
from .renderer import GarbageMatte, build_engine, matte, output_frame, parse_background, refit_foreground
from .temporal import TemporalSteady, check_radius

__all__ = ["PixelFormat", "PIXEL_FORMATS", "INPUT_PIX_FMTS", "OUTPUT_KINDS", "OUTPUT_PIX_FMTS", "MATRICES",
           "PipeReport", "PipeSettings", "parse_size", "check_settings", "pipe", "conversion_threads",
           "decode_frame", "encode_frame"]


@dataclass(frozen=True)
class PixelFormat:
    """Byte layout of one raw frame: ``channels`` samples of ``dtype`` per pixel, interleaved,
    or ``planar`` in ``plane_order`` (indices into R, G, B, A)."""

    name: str
    channels: int
    dtype: str  # numpy dtype string, little-endian
    planar: bool = False
    plane_order: tuple[int, ...] = ()
    bits: int = 0  # Y'CbCr formats: significant bits per sample (0: an RGB or grey format)
    full: bool = False  # Y'CbCr formats: full range (JPEG's), not limited

    def frame_bytes(self, width: int, height: int) -> int:
        return width * height * self.channels * np.dtype(self.dtype).itemsize

    @property
    def is_float(self) -> bool:
        return np.dtype(self.dtype).kind == "f"

    @property
    def is_yuv(self) -> bool:
        """Y'CbCr 4:4:4 (planes Y', Cb, Cr[, A]), converted by a matrix."""
        return self.bits > 0


PIXEL_FORMATS = {f.name: f for f in (
    PixelFormat("rgb24", 3, "u1"),
    PixelFormat("rgb48le", 3, "<u2"),
    PixelFormat("rgba", 4, "u1"),
    PixelFormat("rgba64le", 4, "<u2"),
    PixelFormat("gbrpf32le", 3, "<f4", planar=True, plane_order=(1, 2, 0)),
    PixelFormat("gbrapf32le", 4, "<f4", planar=True, plane_order=(1, 2, 0, 3)),
    PixelFormat("gray", 1, "u1"),
    PixelFormat("gray16le", 1, "<u2"),
    PixelFormat("grayf32le", 1, "<f4"),
    PixelFormat("yuv444p", 3, "u1", planar=True, plane_order=(0, 1, 2), bits=8),
    PixelFormat("yuvj444p", 3, "u1", planar=True, plane_order=(0, 1, 2), bits=8, full=True),
    PixelFormat("yuv444p10le", 3, "<u2", planar=True, plane_order=(0, 1, 2), bits=10),
    PixelFormat("yuv444p12le", 3, "<u2", planar=True, plane_order=(0, 1, 2), bits=12),
    PixelFormat("yuv444p16le", 3, "<u2", planar=True, plane_order=(0, 1, 2), bits=16),
    PixelFormat("yuva444p10le", 4, "<u2", planar=True, plane_order=(0, 1, 2, 3), bits=10),
    PixelFormat("yuva444p16le", 4, "<u2", planar=True, plane_order=(0, 1, 2, 3), bits=16),
)}
INPUT_PIX_FMTS = ("rgb24", "rgb48le", "rgba", "rgba64le", "gbrpf32le", "gray", "gray16le", "grayf32le",
                  "yuv444p", "yuv444p10le", "yuv444p12le", "yuv444p16le", "yuvj444p")
#: Output kind -> pixel formats it can be written in: by depth (8-bit, 16-bit, float), then
#: limited-range Y'CbCr ones (chosen by name only).
OUTPUT_PIX_FMTS = {
    "alpha": ("gray", "gray16le", "grayf32le"),
    "fg": ("rgb24", "rgb48le", "gbrpf32le", "yuv444p10le", "yuv444p16le"),
    "rgba": ("rgba", "rgba64le", "gbrapf32le", "yuva444p10le", "yuva444p16le"),
    "comp": ("rgb24", "rgb48le", "gbrpf32le", "yuv444p10le", "yuv444p16le"),
}
#: ``--matrix``: the Y'CbCr matrix by ffmpeg's colour space names -> FFmpeg's AVColorSpace value.
MATRICES = {"bt709": 1, "fcc": 4, "bt470bg": 5, "smpte170m": 6, "bt601": 6, "smpte240m": 7, "bt2020nc": 9,
            "bt2020": 9}
OUTPUT_KINDS = tuple(OUTPUT_PIX_FMTS)


def _depth_index(fmt: PixelFormat) -> int:
    return 2 if fmt.is_float else (1 if fmt.dtype.endswith("u2") else 0)


@dataclass(frozen=True)
class PipeSettings:
    """Validated pipe options (see :func:`check_settings`)."""

    width: int
    height: int
    pix_fmt: PixelFormat
    output: str
    out_pix_fmt: PixelFormat
    colorspace: str
    alpha_mode: str
    comp: str | None
    matrix: str = "bt709"  # the Y'CbCr matrix (a MATRICES name) of Y'CbCr input or output

    @property
    def matrix_code(self) -> int:
        return MATRICES[self.matrix]

    def describe(self) -> str:
        mode = f" ({self.alpha_mode})" if self.output == "rgba" else ""
        over = f" over {self.comp}" if self.comp else ""
        yuv = f", Y'CbCr matrix {self.matrix}" if self.pix_fmt.is_yuv or self.out_pix_fmt.is_yuv else ""
        return (f"{self.width}x{self.height} {self.pix_fmt.name} ({self.colorspace}) -> "
                f"{self.output}{mode}{over} as {self.out_pix_fmt.name}{yuv}")


def check_settings(
    size: str | tuple[int, int] | None,
    pix_fmt: str = "rgb24",
    output: str | None = None,
    out_pix_fmt: str | None = None,
    comp: str | None = None,
    colorspace: str | None = None,
    premultiplied: bool | None = None,
    matrix: str | None = None,
) -> PipeSettings:
    """Validate pipe options before anything is read or written; raises :class:`BadInputError`.

    ``output`` defaults to ``comp`` when ``comp`` is given, else ``rgba``; ``out_pix_fmt`` to
    the output kind's RGB format at the input's depth (8-bit, 16-bit or float). ``matrix`` (a
    :data:`MATRICES` name) is that of Y'CbCr frames in or out; by default the one players read
    untagged video with, BT.601 for standard definition, else BT.709.
    """
    if size is None:
        raise BadInputError("--size WIDTHxHEIGHT is required (the size of the raw frames on stdin)")
    width, height = parse_size(size, name="--size")
    if pix_fmt not in INPUT_PIX_FMTS:
        hint = (" (subsampled Y'CbCr: let ffmpeg upsample the chroma, -pix_fmt yuv444p10le)"
                if pix_fmt.startswith(("yuv4", "yuvj4", "nv", "p01")) else "")
        raise BadInputError(f"unknown --pix-fmt {pix_fmt!r}; use one of {', '.join(INPUT_PIX_FMTS)}{hint}")
    in_fmt = PIXEL_FORMATS[pix_fmt]
    output = output or ("comp" if comp else "rgba")
    if output not in OUTPUT_KINDS:
        raise BadInputError(f"unknown --output {output!r}; use one of {', '.join(OUTPUT_KINDS)}")
    allowed = OUTPUT_PIX_FMTS[output]
    out_name = out_pix_fmt or allowed[_depth_index(in_fmt)]
    if out_name not in allowed:
        known = out_name in PIXEL_FORMATS
        raise BadInputError(
            f"--out-pix-fmt {out_name} {'cannot carry' if known else 'is unknown for'} --output "
            f"{output}; use one of {', '.join(allowed)}")
    if output == "comp" and not comp:
        raise BadInputError("--output comp needs --comp COLOR|IMAGE (the background)")
    if comp and output != "comp":
        raise BadInputError(f"--comp is only used with --output comp, not --output {output}")
    if premultiplied is not None and output != "rgba":
        raise BadInputError(
            f"--premultiplied/--straight apply to --output rgba only ({output} is "
            f"{'a matte' if output == 'alpha' else 'premultiplied by definition'})")
    out_fmt = PIXEL_FORMATS[out_name]
    if matrix is not None and matrix not in MATRICES:
        raise BadInputError(f"unknown --matrix {matrix!r}; use one of {', '.join(MATRICES)}")
    if matrix is not None and not (in_fmt.is_yuv or out_fmt.is_yuv):
        raise BadInputError(f"--matrix applies to Y'CbCr frames (yuv444p...), and neither --pix-fmt "
                            f"{in_fmt.name} nor --out-pix-fmt {out_fmt.name} is one")
    return PipeSettings(
        width=width, height=height, pix_fmt=in_fmt, output=output,
        out_pix_fmt=out_fmt,
        colorspace=resolve_colorspace(colorspace or "rec709"),
        alpha_mode="straight" if premultiplied is False else "premultiplied",
        comp=comp,
        matrix=matrix or ("bt709" if untagged_matrix(width, height) == 1 else "bt601"))


def decode_frame(data: bytes | bytearray | memoryview, fmt: PixelFormat, width: int,
                 height: int, matrix: int = 1) -> np.ndarray:
    """One raw frame -> float32 RGB [H, W, 3] (gray repeated to RGB; an alpha channel dropped).
    Y'CbCr by ``matrix`` (an AVColorSpace value), super-whites above 1.0 and super-blacks
    below 0.0 kept."""
    raw = np.frombuffer(data, dtype=fmt.dtype)
    if fmt.is_yuv:
        rgb = planes_to_rgb(*raw.reshape(fmt.channels, height, width)[:3], fmt.bits, matrix, full=fmt.full)
        # full range holds no values beyond black and white, only colours a display cannot show
        # (sharp chroma edges): clipped, as render's decoder gives them
        return np.clip(rgb, 0.0, 1.0, out=rgb) if fmt.full else rgb
    if fmt.planar:
        planes = raw.reshape(fmt.channels, height, width)
        rgb = np.stack([planes[fmt.plane_order.index(c)] for c in range(3)], axis=-1)
    else:
        rgb = raw.reshape(height, width, fmt.channels)[..., :3]
    rgb = rgb.astype(np.float32) if fmt.is_float else dequantize(rgb)
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    return np.ascontiguousarray(rgb)


def encode_frame(image: np.ndarray, fmt: PixelFormat, matrix: int = 1) -> bytes:
    """float32 [H, W] or [H, W, C] (C = ``fmt.channels``) -> one raw frame's bytes (Y'CbCr by
    ``matrix``, values above 1.0 kept up to the format's reserved codes; alpha full range)."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] != fmt.channels:
        raise BadInputError(f"{fmt.name} takes {fmt.channels} channel(s), got {image.shape[-1]}")
    if fmt.is_yuv:
        planes = rgb_to_planes(image[..., :3], fmt.bits, matrix)
        if fmt.channels == 4:
            planes.append(alpha_codes(image[..., 3], fmt.bits))
        return np.ascontiguousarray(np.stack(planes)).astype(fmt.dtype).tobytes()
    data = image.astype(fmt.dtype) if fmt.is_float else quantize(image, fmt.dtype)
    if fmt.planar:
        data = np.stack([data[..., c] for c in fmt.plane_order])  # [H, W, C] -> [C, H, W]
    return np.ascontiguousarray(data).tobytes()


def _read_frames(stream: BinaryIO, nbytes: int, layout: str = "") -> Iterator[bytearray]:
    """Exactly ``nbytes`` per frame until end of stream; a partial last frame is an error
    (``layout``, e.g. ``--size 64x48 --pix-fmt rgb24``, is named in it: a stream of another
    size or format ends mid-frame too, after mattes of nonsense)."""
    index = 0
    while True:
        buffer = bytearray(nbytes)
        view = memoryview(buffer)
        got = 0
        while got < nbytes:
            count = stream.readinto(view[got:])
            if not count:
                break
            got += count
        if got == 0:
            return
        if got < nbytes:
            raise MissingFramesError(
                f"stdin ended inside frame {index} ({index} complete frame(s) before it): "
                f"got {got} of {nbytes} bytes"
                + (f" (if every frame looks wrong, the stream is not {layout})" if layout else ""), [index])
        yield buffer
        index += 1


def _batches(frames: Iterator[bytearray], size: int) -> Iterator[tuple[list[bytearray], BaseException | None]]:
    """Groups of ``size`` frames; an error of the stream comes after the frames read before it."""
    batch: list[bytearray] = []
    try:
        for frame in frames:
            batch.append(frame)
            if len(batch) == size:
                yield batch, None
                batch = []
    except Exception as exc:
        yield batch, exc
        return
    if batch:
        yield batch, None


def conversion_threads() -> int:
    """Threads converting a pipe's frames: the usable CPU cores, 2 to 8 (numpy's conversions
    release the GIL; beyond 8, ffmpeg's stages want the cores)."""
    return max(2, min(8, usable_cpus()))


class _OrderedWriter:
    """Writes the bytes of frames converted on a pool, in the order they were put, on a thread
    of its own as each becomes ready (a frame goes out as soon as it and those before it are
    converted, whatever the network is doing); at most ``limit`` frames wait, then ``put``
    waits. An error writing (the reader gone: ``BrokenPipeError``) is raised by the next
    ``put`` or ``drain``."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream = stream
        self.queue: queue.Queue[Future[bytes] | None] = queue.Queue(maxsize=max(1, limit))
        self.written = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pomagan-pipe-write", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            future = self.queue.get()
            if future is None:
                return
            if self.error is not None:
                continue  # dropped: the stream failed
            try:
                self.stream.write(future.result())
                self.written += 1
                if self.queue.empty():
                    self.stream.flush()
            except BaseException as exc:  # handed to the pipe's thread
                self.error = exc

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, future: "Future[bytes]") -> None:
        self._check()
        self.queue.put(future)

    def drain(self) -> None:
        """Every frame put so far written and flushed; the writer thread ended."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self._check()
        self.stream.flush()

    def cancel(self) -> None:
        """Ends the writer without waiting for frames not yet converted."""
        if not self.thread.is_alive():
            return
        self.error = self.error or _Cancelled()
        while True:  # make room for the end mark
            try:
                self.queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    pending = self.queue.get_nowait()
                    if pending is not None:
                        pending.cancel()
                except queue.Empty:
                    pass
        # (bounded: a write blocked on a reader that stopped reading must not hold the pipe's
        # own error or stop; the thread is a daemon)
        self.thread.join(timeout=10)


class _Cancelled(Exception):
    """The pipe ended before every frame was written (its own error says why)."""


@dataclass
class PipeReport:
    """What :func:`pipe` did: frames written and wall time."""

    frames: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def stream_garbage_matte(path: str | os.PathLike[str], width: int, height: int) -> GarbageMatte:
    """``--garbage-matte`` for a stream (``pipe``, ``pomagan-ffmpeg``): one image of the frames'
    size that limits every frame; a stream has no frame numbers, so a sequence or video is
    refused. Raises :class:`BadInputError` naming the problem (size, not an image file)."""
    if not Path(path).is_file():
        raise BadInputError(f"--garbage-matte takes one image file here (a stream has no frame "
                            f"numbers): {path} is not one")
    return GarbageMatte(path, ClipInfo(width=width, height=height, frames=[], colorspace="srgb"))


def pipe(
    stdin: BinaryIO,
    stdout: BinaryIO,
    *,
    size: str | tuple[int, int] | None,
    pix_fmt: str = "rgb24",
    output: str | None = None,
    out_pix_fmt: str | None = None,
    comp: str | None = None,
    colorspace: str | None = None,
    premultiplied: bool | None = None,
    matrix: str | None = None,
    batch_size: int = 4,
    working_size: int | None = None,
    tta: str = "none",
    device: str = "auto",
    precision: str = "auto",
    weights: str | None = None,
    pixel_aspect: str | float | None = None,
    garbage_matte: str | None = None,
    temporal: int = 0,
    threads: int | None = None,
    engine: Any = None,
    log: Callable[[str], None] | None = None,
) -> PipeReport:
    """Matte raw frames from ``stdin`` onto ``stdout``, frame for frame.

    Args:
        stdin, stdout: binary streams (``stdin`` needs ``readinto``).
        size: frame size, ``"WxH"`` or (width, height).
        pix_fmt: input pixel format (:data:`INPUT_PIX_FMTS`).
        output: ``alpha``, ``fg``, ``rgba`` or ``comp`` (see the module docstring).
        out_pix_fmt: output pixel format; default the output kind's format at the input depth.
        comp: background for ``comp``: colour name, ``#rrggbb``, ``r,g,b`` or an image path.
        colorspace: colour space of the input values (default ``rec709``, display-referred
            video; ``linear`` for scene-linear float frames, ...); outputs stay in it.
        premultiplied: ``rgba`` colour premultiplied (default, ``None``/``True``) or straight.
        matrix: the Y'CbCr matrix of ``yuv*`` frames in or out (:data:`MATRICES`: ``bt709``,
            ``bt601``, ``bt2020``, ...; default BT.601 for standard definition, else BT.709).
        batch_size, working_size, tta, device, precision, weights: engine settings, as ``render``.
        pixel_aspect: the frames' pixel width / height (``2``, ``4:3``, ``1.333``): an anamorphic
            stream is matted desqueezed, as ``render`` does from a shot's pixel aspect.
        garbage_matte: one image, the frames' size, that limits every frame's matte (white
            keeps, black removes; read as ``render --garbage-matte`` reads an image): for a
            locked-off shot's clutter.
        temporal: steady the matte over this many frames either side, as ``render --temporal``
            (:mod:`pomagan_post.temporal`); each frame then comes out once the ``temporal``
            frames after it are in (the last ones at the end of the stream).
        threads: threads converting frames to and from bytes, beside the network (default
            :func:`conversion_threads`: the CPU cores, 2 to 8).
        engine: a ready :class:`~pomagan_post.Engine` (the settings above are then unused).
        log: messages (default: nowhere).

    Every option is checked (and the ``comp`` background loaded) before the engine is built or
    a byte is read. A stream ending inside a frame raises :class:`MissingFramesError` naming
    the frame and byte counts, after the complete frames before it were written.
    ``BrokenPipeError`` from ``stdout`` propagates (the CLI ends quietly on it).
    """
    log = log or (lambda message: None)
    settings = check_settings(size, pix_fmt, output, out_pix_fmt, comp, colorspace, premultiplied, matrix)
    if int(batch_size) < 1:
        raise BadInputError(f"--batch-size must be at least 1, got {batch_size}")
    if threads is not None and int(threads) < 1:
        raise BadInputError(f"--threads must be at least 1, got {threads}")
    aspect = parse_pixel_aspect(pixel_aspect)
    steady = TemporalSteady(temporal) if check_radius(temporal) else None
    width, height = settings.width, settings.height
    garbage = stream_garbage_matte(garbage_matte, width, height) if garbage_matte is not None else None
    background = None
    if settings.comp:
        info = ClipInfo(width=width, height=height, frames=[], colorspace=settings.colorspace)
        background = parse_background(settings.comp, info)
    if engine is None:
        engine = build_engine(weights, device, precision, working_size, batch_size, log, tta)
    log(f"pipe: {settings.describe()}, {engine!r}"
        + (f", pixel aspect {aspect:g} (matted desqueezed)" if aspect and aspect != 1 else "")
        + (f", temporal {temporal} (frames come out {temporal} behind)" if steady else ""))

    nbytes = settings.pix_fmt.frame_bytes(width, height)
    report = PipeReport()
    started = time.perf_counter()
    layout = f"--size {width}x{height} --pix-fmt {settings.pix_fmt.name}"
    # Frames are converted (bytes -> float, float -> bytes) on a pool of threads, in order, beside
    # the network: one thread converted 12 HD frames a second, a fraction of a GPU's pace.
    convert = ThreadPoolExecutor(int(threads or conversion_threads()), thread_name_prefix="pomagan-pipe-convert")

    def decoded(frame: bytearray) -> np.ndarray:
        return decode_frame(frame, settings.pix_fmt, width, height, settings.matrix_code)

    frames = prefetch((convert.submit(decoded, b) for b in _read_frames(stdin, nbytes, layout)),
                      depth=2 * int(batch_size), name="pomagan-pipe-read")
    out = _OrderedWriter(stdout, limit=2 * int(batch_size) + 2)

    def encoded(alpha: np.ndarray, fg: np.ndarray | None) -> bytes:
        if settings.output == "fg":  # the premultiplied foreground itself
            frame = fg
        else:  # render's kinds: alpha, fg (= rgba here), comp
            kind = "fg" if settings.output == "rgba" else settings.output
            frame = output_frame(kind, alpha, fg, settings.alpha_mode, background)
        return encode_frame(frame, settings.out_pix_fmt, settings.matrix_code)

    try:
        # A stream's last, short batch runs at the full batch shape, as render's do: the same
        # frames give the same bits through either.
        with taking_turns(engine), padded_batches(engine), shot_pixel_aspect(engine, aspect):
            need_fg = settings.output != "alpha"

            def write(alpha: np.ndarray, fg: np.ndarray | None) -> None:
                if garbage is not None:
                    garbage.apply(list(range(alpha.shape[0])), alpha, fg)
                for i in range(alpha.shape[0]):
                    out.put(convert.submit(encoded, alpha[i], None if fg is None else fg[i]))
                report.frames = out.written

            def write_steadied(steadied: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
                for _, image, alpha in steadied:
                    write(alpha[None], refit_foreground(engine, image, alpha) if need_fg else None)

            count = 0
            for raw, error in _batches(frames, int(batch_size)):
                if raw:
                    images = np.stack([future.result() for future in raw])
                    del raw
                    if steady is None:
                        write(*matte(engine, images, settings.colorspace, need_fg, log))
                    else:
                        numbers = list(range(count, count + images.shape[0]))
                        count += images.shape[0]
                        steady.push_batch(numbers, images, matte(engine, images, settings.colorspace, False,
                                                                 log)[0], settings.colorspace)
                        write_steadied(steady.ready(through=numbers[-1]))
                if error is not None:
                    if steady is not None:  # the complete frames before the broken one still go out
                        write_steadied(steady.flush())
                    out.drain()
                    raise error
            if steady is not None:
                write_steadied(steady.flush())
            out.drain()
    finally:
        frames.close()
        out.cancel()
        convert.shutdown(wait=True, cancel_futures=True)
        report.frames = out.written
        report.seconds = time.perf_counter() - started
    log(f"pipe: {report.frames} frame(s) in {report.seconds:.1f} s ({report.fps:.2f} fps)"
        + ("; stdin held no frame" if not report.frames else ""))
    return report
