"""The two small protocols every source and sink follows.

Data flows one way: source -> decode -> colour to model space -> engine -> colour back ->
encode -> sink. Sources and sinks speak float32 numpy arrays in the *file's own* colour encoding
(scene-linear stays linear, values above 1 allowed); :mod:`pomagan_post.colour` converts for the
model only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import BadInputError

__all__ = ["ClipInfo", "FrameSource", "FrameSink", "conform_rate", "parse_pixel_aspect", "parse_rate",
           "parse_size", "quarter_turns"]


def parse_size(size: str | Sequence[int] | None, minimum: int = 2, name: str = "size") -> tuple[int, int]:
    """``"1920x1080"`` (also ``1920:1080``) or ``(1920, 1080)`` -> (width, height).

    Args:
        size: the size as text or a pair.
        minimum: smallest width and height accepted.
        name: what the option is called in error messages (e.g. ``--size``).
    Raises:
        BadInputError: not WIDTHxHEIGHT, or outside ``minimum`` .. 268 megapixels.
    """
    if isinstance(size, str) or size is None:
        match = re.fullmatch(r"\s*(\d+)\s*[xX:]\s*(\d+)\s*", str(size or ""))
        if not match:
            raise BadInputError(f"{name} must be WIDTHxHEIGHT (e.g. 1920x1080), got {size!r}")
        width, height = int(match.group(1)), int(match.group(2))
    else:
        width, height = (int(v) for v in size)
    if width < minimum or height < minimum or width * height > 2**28:
        raise BadInputError(
            f"{name} {width}x{height} is out of range ({minimum}x{minimum} up to 268 megapixels)"
        )
    return width, height


def quarter_turns(angle: float | None) -> int:
    """A display matrix's rotation (degrees counterclockwise, FFmpeg's sign) -> the quarter turns
    counterclockwise (0-3, ``np.rot90``'s k) that show the frame as players do; 0 without one
    and for angles that are not quarter turns (FFmpeg's autorotate leaves those alone too)."""
    if not angle:
        return 0
    turns = round(float(angle) / 90.0)
    return turns % 4 if abs(float(angle) - 90.0 * turns) < 1.0 else 0


# Rates written with two or three decimals that mean NTSC's x1000/1001 rates.
_NTSC = {Fraction(n * 1000, 1001): (round(n * 1000 / 1001, 2), round(n * 1000 / 1001, 3))
         for n in (24, 30, 48, 60, 120)}


def parse_rate(rate: str | float | Fraction | None, name: str = "--fps") -> Fraction | None:
    """A frame rate as an exact fraction: ``25``, ``24000/1001``, ``23.976`` or ``23.98``
    (NTSC's 24000/1001; likewise 29.97, 47.952, 59.94, 119.88), ``12.5``; None stays None.
    Raises :class:`BadInputError` for anything that is not a rate between 1 and 1000."""
    if rate is None:
        return None
    try:
        value = Fraction(str(rate).strip()) if not isinstance(rate, Fraction) else rate
    except (ValueError, ZeroDivisionError):
        raise BadInputError(f"{name} must be a frame rate such as 24, 25, 23.976 or 30000/1001, "
                            f"not {rate!r}") from None
    for exact, written in _NTSC.items():  # as typed (23.98) or stored in a float (DPX)
        if round(float(value), 3) == written[1] or float(value) == written[0]:
            return exact
    if not 1 <= value <= 1000:
        raise BadInputError(f"{name} must be between 1 and 1000 frames per second, not {rate}")
    return value.limit_denominator(1001)


def parse_pixel_aspect(value: str | float | None, name: str = "--pixel-aspect") -> float | None:
    """A pixel aspect ratio (pixel width / height): ``2``, ``1.333``, ``4:3`` or ``4/3`` (as
    ffmpeg writes a sample aspect ratio); None stays None. Between 0.1 and 10."""
    if value is None:
        return None
    try:
        ratio = float(Fraction(str(value).strip().replace(":", "/")))
    except (ValueError, ZeroDivisionError):
        raise BadInputError(f"{name} must be a ratio such as 2, 1.333 or 4:3, not {value!r}") from None
    if not 0.1 <= ratio <= 10:
        raise BadInputError(f"{name} must be between 0.1 and 10, not {value}")
    return ratio


def conform_rate(average: Fraction | None, base: Fraction | None) -> Fraction | None:
    """The rate a variable-frame-rate video (phone footage) is conformed to, or None for a
    constant-rate one.

    FFmpeg's base rate (``r_frame_rate``) is the lowest rate every timestamp fits; a stream whose
    average rate is below it (by more than 0.1 %) has frames that last longer than others. Such a
    stream is conformed to its base rate, each frame held until the next one's time, so outputs
    line up with the source; not when the base rate is over twice the average or over 240 fps
    (a container time base, not a frame rate).
    """
    if not average or not base:
        return None
    average, base = Fraction(average), Fraction(base)
    if abs(base / average - 1) <= Fraction(1, 1000) or not average < base <= min(2 * average, 240):
        return None
    return base


@dataclass
class ClipInfo:
    """What a source knows about its clip before any frame is decoded.

    Args:
        width, height: frame size in pixels (EXR: the data window's size).
        frames: the frame numbers the source will yield, in order (file-name numbers for
            sequences, 0-based indices from pts for video).
        colorspace: colour encoding of the pixel values, a :mod:`pomagan_post.colour` name such as
            ``"linear"``, ``"srgb"``, ``"rec709"``.
        channels: channels stored in the file (1, 3 or 4); sources always yield RGB.
        fps: frames per second when known.
        pixel_aspect: pixel aspect ratio.
        timecode: start timecode ``HH:MM:SS:FF`` when known.
        metadata: format-specific extras sinks may carry over. Keys in use: ``bits`` and
            ``pixel_type`` (stored depth), ``data_window`` / ``display_window`` (EXR),
            ``attributes`` (the clip's OIIO attributes to carry, from its first frame; each
            frame's own come with it to ``FrameSink.write``), ``frame_origin`` (the frame the
            timecode and audio start at), and for video ``codec``, ``pix_fmt``, ``has_audio``,
            colour tags.
    """

    width: int
    height: int
    frames: list[int]
    colorspace: str
    channels: int = 3
    fps: Fraction | None = None
    pixel_aspect: float = 1.0
    timecode: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class FrameSource(Protocol):
    """Yields ``(frame_number, rgb)`` with rgb float32 [H, W, 3]; opened with ``with``.

    A source that can skip unreadable frames (``on_error="skip"``) lists them in an optional
    ``failed: dict[int, str]`` attribute (frame number -> reason), which ``render`` reports.
    """

    info: ClipInfo

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]: ...

    def close(self) -> None: ...


@runtime_checkable
class FrameSink(Protocol):
    """Takes frames float32 [H, W, C] (C = 1 alpha, 3 rgb or 4 rgba) one at a time, each with
    its input frame's own header ``attributes`` to carry ((name, type, value) as OpenImageIO
    reads them; a sink whose format keeps none ignores them).

    ``close`` finalises (flushes encoders, renames temp files into place); ``abort`` removes what
    was not finalised. Nothing half-written ever carries a final file name.
    """

    def write(self, frame_number: int, image: np.ndarray,
              attributes: Sequence[tuple[str, str, Any]] = ()) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...
