"""SMPTE timecode arithmetic, shared by the image-sequence and video sinks.

``HH:MM:SS:FF`` counts frames at the nominal rate (24, 25, 30, ... for 23.976, 29.97, ...).
``HH:MM:SS;FF`` is drop-frame timecode (29.97 / 59.94 fps): frame labels 0-1 (0-3 at 59.94) are
skipped at the start of every minute except each tenth, so the label tracks wall-clock time.
EXR and DPX headers carry timecode as two 32-bit words (SMPTE 12M: BCD digits, the drop-frame
flag in bit 6 of the first).
"""

from __future__ import annotations

import re
from fractions import Fraction

from ..errors import BadInputError

__all__ = [
    "timecode_to_frames",
    "frames_to_timecode",
    "advance_timecode",
    "timecode_words",
    "timecode_from_words",
    "has_timecode",
    "timecodes_to_frames",
]

_DROP_FLAG = 1 << 6


def _nominal(fps: Fraction | float | None) -> int:
    return max(1, round(float(fps))) if fps else 24


def _dropped_per_minute(timecode: str, nominal: int) -> int:
    """Labels skipped each minute: 2 at 29.97, 4 at 59.94, 0 for non-drop timecode."""
    return 2 * nominal // 30 if ";" in timecode and nominal in (30, 60) else 0


def _fields(timecode: str) -> tuple[int, int, int, int]:
    parts = timecode.strip().replace(";", ":").replace(".", ":").split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise BadInputError(f"bad timecode {timecode!r}: expected HH:MM:SS:FF (or HH:MM:SS;FF)")
    hh, mm, ss, ff = (int(p) for p in parts)
    return hh, mm, ss, ff


def _day(nominal: int, dropped: int) -> int:
    """Frames in 24 hours of timecode."""
    return 24 * 6 * (10 * 60 * nominal - 9 * dropped)


def timecode_to_frames(timecode: str, fps: Fraction | float | None) -> int:
    """Frames since 00:00:00:00: ``"01:00:00:00"`` at 24 fps -> 86400; ``"00:01:00;02"`` at
    29.97 -> 1800 (drop-frame when written with ';')."""
    hh, mm, ss, ff = _fields(timecode)
    nominal = _nominal(fps)
    dropped = _dropped_per_minute(timecode, nominal)
    minutes = hh * 60 + mm
    return (minutes * 60 + ss) * nominal + ff - dropped * (minutes - minutes // 10)


def frames_to_timecode(count: int, fps: Fraction | float | None, drop: bool = False) -> str:
    """Inverse of :func:`timecode_to_frames` (wraps at 24 hours); ``drop`` writes drop-frame
    timecode (only at 29.97 / 59.94; ignored at other rates)."""
    nominal = _nominal(fps)
    dropped = 2 * nominal // 30 if drop and nominal in (30, 60) else 0
    count %= _day(nominal, dropped)
    if dropped:  # back to a label count by re-inserting the skipped labels
        per_10min = 10 * 60 * nominal - 9 * dropped
        per_min = 60 * nominal - dropped
        tens, rest = divmod(count, per_10min)
        count += 9 * dropped * tens + (dropped * ((rest - dropped) // per_min) if rest >= dropped else 0)
    ff = count % nominal
    seconds = count // nominal
    sep = ";" if dropped else ":"
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{sep}{ff:02d}"


def advance_timecode(timecode: str, frames: int, fps: Fraction | float | None) -> str:
    """``timecode`` moved by ``frames`` frames, keeping its drop-frame style."""
    if frames == 0:
        return timecode
    drop = bool(_dropped_per_minute(timecode, _nominal(fps)))
    return frames_to_timecode(timecode_to_frames(timecode, fps) + frames, fps, drop)


def _bcd(value: int) -> int:
    return (value // 10) << 4 | (value % 10)


def timecode_words(timecode: str, fps: Fraction | float | None = None, user_bits: int = 0) -> tuple[int, int]:
    """HH:MM:SS:FF -> the header's (time-and-flags word, user bits), drop-frame flag included."""
    hh, mm, ss, ff = _fields(timecode)
    word = _bcd(hh) << 24 | _bcd(mm) << 16 | _bcd(ss) << 8 | _bcd(ff)
    if _dropped_per_minute(timecode, _nominal(fps) if fps else 30):
        word |= _DROP_FLAG
    return word, user_bits


def timecode_from_words(words: tuple[int, ...] | list[int]) -> str | None:
    """A header's timecode words -> ``HH:MM:SS:FF`` (``HH:MM:SS;FF`` with the drop-frame flag),
    or None when they hold no valid time (a BCD digit over 9, 60 minutes or seconds, 24 hours:
    some writers, ffmpeg's DPX encoder among them, leave the field uninitialised)."""
    word = int(words[0])
    if any(((word >> shift) & 0xF) > 9 for shift in (0, 4, 8, 12, 16, 20, 24)):
        return None

    def digits(shift: int, tens_mask: int) -> int:
        return ((word >> (shift + 4)) & tens_mask) * 10 + ((word >> shift) & 0xF)

    hours, minutes, seconds, frames = digits(24, 0x3), digits(16, 0x7), digits(8, 0x7), digits(0, 0x3)
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    sep = ";" if word & _DROP_FLAG else ":"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{frames:02d}"


_TIMECODE = re.compile(r"(?<!\d)\d{1,2}[:;]\d{2}[:;]\d{2}[:;]\d{2}(?!\d)")


def has_timecode(spec: str) -> bool:
    """Whether a frame-range string holds a timecode (``01:00:10:00-01:00:12:00``)."""
    return bool(_TIMECODE.search(spec))


def timecodes_to_frames(spec: str, start: str | None, fps: Fraction | float | None, origin: int,
                        what: str) -> str:
    """A frame range written in timecode -> the same range in frame numbers.

    ``start`` is the clip's timecode at frame ``origin`` (a video's frame 0, a sequence's first
    frame). Each ``HH:MM:SS:FF`` becomes ``origin + (its frames - start's frames)``; a clip with
    drop-frame timecode reads them as drop-frame whichever separator they are written with (as
    editors show them). Raises :class:`BadInputError` when ``what`` has no timecode or a
    timecode lies before ``start``.
    """
    if not start:
        raise BadInputError(f"--frames {spec}: {what} has no timecode; give frame numbers instead")
    drop = ";" in start
    base = timecode_to_frames(start, fps)

    def number(match: re.Match[str]) -> str:
        text = match.group(0)
        label = text[:-3] + (";" if drop else ":") + text[-2:]
        hh, mm, ss, ff = _fields(label)
        nominal = _nominal(fps)
        dropped = _dropped_per_minute(label, nominal)
        if mm > 59 or ss > 59 or ff >= nominal:
            raise BadInputError(f"--frames {spec}: {text} is not a timecode at {nominal} frames a second")
        if dropped and ss == 0 and ff < dropped and mm % 10:
            raise BadInputError(
                f"--frames {spec}: {text} does not exist in drop-frame timecode (labels ;00 to "
                f";{dropped - 1:02d} are skipped at the start of every minute but each tenth); the "
                f"frame after it is {text[:-2]}{dropped:02d}")
        frame = origin + timecode_to_frames(label, fps) - base
        if frame < origin:
            raise BadInputError(f"--frames {spec}: {text} is before {what}'s first frame ({start})")
        return str(frame)

    return _TIMECODE.sub(number, spec)
