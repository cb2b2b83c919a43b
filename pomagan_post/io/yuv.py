"""Limited-range Y'CbCr <-> R'G'B' in float, values outside the legal range kept.

Video stores R'G'B' as Y'CbCr codes with headroom: 10-bit luma 64 is black and 940 white, and
cameras record highlights above white (super-whites, up to code 1019, R'G'B' 1.09) and shadows
below black. FFmpeg's swscale clips both when it converts to RGB, so a matte's foreground lost
the highlights its plate holds. Here the matrix runs in float32 on the planes: a video source
decodes super-whites above 1.0 and super-blacks below 0.0, and a Y'CbCr sink writes them back
(clipped only to the codes the format reserves, 10-bit 4 and 1019).

Matrices by FFmpeg's ``AVColorSpace`` enum (ITU-R BT.709, BT.601, SMPTE 240M, BT.2020
non-constant luminance, FCC); any other is taken as BT.709. Untagged video is read as players
read it (:func:`untagged_matrix`).
"""

from __future__ import annotations

import av
import numpy as np

__all__ = ["luma_weights", "untagged_matrix", "planes_of", "planes_to_rgb", "rgb_to_planes", "alpha_codes",
           "fill_planes"]

# (Kr, Kb) by AVColorSpace: Y' = Kr R' + (1 - Kr - Kb) G' + Kb B'.
_WEIGHTS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
            7: (0.212, 0.087), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}


def untagged_matrix(width: int, height: int) -> int:
    """The matrix players read an untagged stream with (mpv's rule; VLC and editors likewise):
    BT.601 (6) for standard definition, narrower than 1280 and at most 576 lines (DV, DVD, SD
    broadcast), else BT.709 (1). Either way up (a turned phone clip's size)."""
    return 1 if max(width, height) >= 1280 or min(width, height) > 576 else 6


def luma_weights(matrix: int) -> tuple[float, float]:
    """``(Kr, Kb)`` of an ``AVColorSpace`` value (BT.709's for any other)."""
    return _WEIGHTS.get(matrix, _WEIGHTS[1])


def planes_of(frame: av.VideoFrame, count: int = 3) -> list[np.ndarray]:
    """The first ``count`` planes of a planar frame as ``[H, W]`` views (line padding cut off)."""
    dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
    views = []
    for plane in frame.planes[:count]:
        rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)
        views.append(rows[:, :plane.width])
    return views


def planes_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, bits: int, matrix: int,
                  full: bool = False) -> np.ndarray:
    """Limited-range codes of ``bits`` bits (``[H, W]`` each, 4:4:4) -> R'G'B' float32
    ``[H, W, 3]``: black 0.0, white 1.0, nothing clipped. ``full``: full-range codes (JPEG's:
    black 0, white 2^bits - 1, chroma centred on 2^(bits - 1))."""
    scale = float(1 << (bits - 8))
    top = float((1 << bits) - 1)
    black, luma_span, chroma_span = (0.0, top, top) if full else (16.0 * scale, 219.0 * scale, 224.0 * scale)
    kr, kb = luma_weights(matrix)
    kg = 1.0 - kr - kb
    luma = y.astype(np.float32)
    luma -= black
    luma *= 1.0 / luma_span
    blue = cb.astype(np.float32)
    blue -= 128.0 * scale
    blue *= 1.0 / chroma_span
    red = cr.astype(np.float32)
    red -= 128.0 * scale
    red *= 1.0 / chroma_span
    rgb = np.empty(y.shape + (3,), np.float32)
    rgb[..., 0] = luma + 2.0 * (1.0 - kr) * red
    rgb[..., 2] = luma + 2.0 * (1.0 - kb) * blue
    rgb[..., 1] = luma - (2.0 * kb * (1.0 - kb) / kg) * blue - (2.0 * kr * (1.0 - kr) / kg) * red
    return rgb


def rgb_to_planes(rgb: np.ndarray, bits: int, matrix: int) -> list[np.ndarray]:
    """R'G'B' float ``[H, W, 3]`` -> limited-range Y', Cb, Cr codes (uint16 ``[H, W]`` each),
    rounded, kept within the codes the format allows (10-bit: 4 to 1019); NaN as 0."""
    scale = float(1 << (bits - 8))
    kr, kb = luma_weights(matrix)
    x = np.nan_to_num(np.asarray(rgb, np.float32), nan=0.0, posinf=65504.0, neginf=-65504.0)
    red, green, blue = x[..., 0], x[..., 1], x[..., 2]
    luma = kr * red + (1.0 - kr - kb) * green + kb * blue
    codes = []
    for value, offset, span in ((luma, 16.0, 219.0), ((blue - luma) / (2.0 * (1.0 - kb)), 128.0, 224.0),
                                ((red - luma) / (2.0 * (1.0 - kr)), 128.0, 224.0)):
        code = value * (span * scale) + (offset * scale + 0.5)
        codes.append(np.clip(code, scale, 255.0 * scale - 1.0).astype(np.uint16))
    return codes


def alpha_codes(matte: np.ndarray, bits: int) -> np.ndarray:
    """A matte in [0, 1] -> full-range alpha codes of ``bits`` bits (uint16), rounded; NaN as 0."""
    top = float((1 << bits) - 1)
    return (np.clip(np.nan_to_num(np.asarray(matte, np.float32), nan=0.0), 0.0, 1.0) * top + 0.5).astype(np.uint16)


def fill_planes(frame: av.VideoFrame, planes: list[np.ndarray]) -> av.VideoFrame:
    """Copies ``[H, W]`` arrays into a planar frame's planes, in order; returns the frame."""
    for view, values in zip(planes_of(frame, len(planes)), planes):
        view[...] = values
    return frame

