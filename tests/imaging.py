"""Helpers that write and read real image and video files for the I/O and render tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

HALF_TOL = 2.0**-10  # relative precision of half floats


def write_file(path: Path, data: np.ndarray, pixel_type: str, **kw: Any) -> None:
    """Write ``data`` [H, W, C] the way other tools would.

    Keywords: ``channels`` (names), ``origin`` (data window x, y), ``display`` (x, y, w, h),
    ``typed`` ({name: (TypeDesc, value)}), anything else a string/int/float attribute with
    ``__`` standing for ``:`` (``oiio__BitsPerSample=10``).
    """
    h, w, c = data.shape
    spec = oiio.ImageSpec(w, h, c, pixel_type)
    if "channels" in kw:
        spec.channelnames = kw.pop("channels")
    if "origin" in kw:
        spec.x, spec.y = kw.pop("origin")
    if "display" in kw:
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = kw.pop("display")
    for name, value in kw.pop("typed", {}).items():
        spec.attribute(name, value[0], value[1])
    for name, value in kw.items():
        spec.attribute(name.replace("__", ":"), value)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(np.ascontiguousarray(data, np.float32)), out.geterror()
    out.close()


def read_file(path: Path) -> tuple[np.ndarray, Any]:
    """(float32 [H, W, C] exactly as stored, never (un)premultiplied by OIIO, spec)."""
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(path), config)
    assert inp is not None, oiio.geterror()
    spec = inp.spec()
    data = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
    inp.close()
    return np.asarray(data, np.float32).reshape(spec.height, spec.width, spec.nchannels), spec


def ramp(h: int, w: int, c: int, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """Random pixels in [0, scale) (not a ramp to the eye, but reproducible per seed)."""
    return (np.random.default_rng(seed).random((h, w, c)) * scale).astype(np.float32)


def make_exr_plate(directory: Path, frames: tuple[int, ...] = (1001, 1002, 1003),
                   name: str = "plate") -> tuple[Path, dict[int, np.ndarray]]:
    """A linear EXR plate: 37x23 data window at (5, 3) in a 48x30 display window, values up to
    8, 23.976 fps, timecode 01:00:00:00 at the first frame, pixel aspect 2, PIZ compression.
    Returns (pattern, frame -> pixels)."""
    pixels = {}
    for i, frame in enumerate(frames):
        data = ramp(23, 37, 3, scale=8.0, seed=frame)
        pixels[frame] = data
        write_file(directory / f"{name}.{frame:04d}.exr", data, "half", origin=(5, 3),
                   display=(0, 0, 48, 30), PixelAspectRatio=2.0, compression="piz",
                   typed={"FramesPerSecond": (oiio.TypeRational, (24000, 1001)),
                          "smpte:TimeCode": (oiio.TypeTimeCode, (0x01000000 + i, 0))})
    return directory / f"{name}.####.exr", pixels


def write_clip(path: Path, n: int = 6, size: tuple[int, int] = (64, 48), codec: str = "libx264",
               pix_fmt: str = "yuv420p", fps: Fraction = Fraction(24), timecode: str | None = None,
               index_first: bool = False, sample_aspect: Fraction | None = None) -> Path:
    """A short clip of moving gradients, encoded with PyAV (``index_first``: MOV/MP4 index
    before the data, ``-movflags faststart``, so a copy cut short still opens)."""
    import av

    w, h = size
    options = {"movflags": "faststart"} if index_first else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if codec == "prores_ks":
            stream.options = {"profile": "3"}
        if timecode:
            stream.metadata["timecode"] = timecode
        if sample_aspect:  # anamorphic (MOV keeps it; Matroska through PyAV does not)
            stream.codec_context.sample_aspect_ratio = sample_aspect
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(n):
            rgb = np.stack([(xx * 4 + i * 8) % 256, (yy * 5) % 256, np.full_like(xx, 128)], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame.reformat(format=pix_fmt)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_avi_with_dropped_frames(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    """8 frame slots at 25 fps holding 6 pictures (flat greys 30 * i): slots 3 and 6 are empty
    chunks, as a capture that dropped frames or a rate conversion writes them."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuvj420p"
        for i, slot in enumerate([0, 1, 2, 4, 5, 7]):
            grey = np.full((h, w, 3), 30 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24").reformat(format="yuvj420p")
            frame.pts = slot
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_turned_clip(path: Path, rotation: int, n: int = 3, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """Phone footage in miniature: ``n`` frames that *display* as ``size`` (width, height), stored
    turned the other way with a display matrix of ``rotation`` degrees (counterclockwise, as
    FFmpeg and :attr:`av.VideoFrame.rotation` count), in lossless PNG-in-MOV. With rotation 0
    it is the same clip stored upright. Returns the displayed frames, uint8 [n, H, W, 3]."""
    import av

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    shown = np.stack([np.stack([(xx * 4 + i * 8) % 256, (yy * 5) % 256,
                                np.where(xx < w // 5, 255, 40) + 0 * yy], -1) for i in range(n)])
    shown = shown.astype(np.uint8)  # a bright band down the left edge: turns cannot hide
    turns = (rotation // 90) % 4
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=24)
        stored = [np.ascontiguousarray(np.rot90(frame, -turns)) for frame in shown]
        stream.height, stream.width = stored[0].shape[:2]
        stream.pix_fmt = "rgb24"
        if rotation:
            stream.set_display_rotation(rotation)
        for frame in stored:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return shown


def write_vfr_clip(path: Path, times: tuple[int, ...] = (0, 1, 2, 4, 6, 7), size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """Variable frame rate in miniature (phones): one frame at each of ``times`` (in 1/30 s),
    lossless PNG-in-MOV, so the base rate is 30 fps and the average lower. Returns the frames,
    uint8 [n, H, W, 3], each a different flat colour with a bright left band."""
    import av

    w, h = size
    frames = np.zeros((len(times), h, w, 3), np.uint8)
    for i in range(len(times)):
        frames[i] = (40 + 30 * i, 200 - 25 * i, 90)
        frames[i, :, : w // 5] = 250
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "rgb24"
        stream.time_base = Fraction(1, 30)
        for t, pixels in zip(times, frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return frames


def cut_short(path: Path, fraction: float = 0.5) -> Path:
    """A copy of ``path`` holding only its first ``fraction`` of bytes (an interrupted copy or
    download), named ``<stem>_cut<suffix>``."""
    data = path.read_bytes()
    cut = path.with_name(f"{path.stem}_cut{path.suffix}")
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


def constant_matte_engine(alpha: float, device: str = "cpu") -> Any:
    """An engine on a real ``fast`` POMAGAN whose alpha network answers ``alpha`` everywhere
    (its last layer's weights zero, its bias the logit of ``alpha``), at working size 32, batch 2.

    For tests of what happens to a matte after the network (writing, clamping, garbage mattes):
    they must not hang on what the bundled weights find in a made-up picture, which changes
    whenever the weights do."""
    import math

    import torch

    from pomagan_post import Engine, create_model

    model = create_model("fast").eval()
    with torch.no_grad():
        model.alpha.head.weight.zero_()
        model.alpha.head.bias.fill_(math.log(alpha / (1.0 - alpha)))
    return Engine(model, device=device, working_size=32, batch_size=2)
