"""Frame-sequence notation: patterns, frame ranges and sequence discovery on disk.

Patterns name one file per frame with a placeholder for the frame number:

==================  ====================================  ==========================
notation            example                               frame 1001 / frame 7
==================  ====================================  ==========================
``#`` (one digit    ``plate.####.exr``                    ``plate.1001.exr`` /
each, Nuke)                                               ``plate.0007.exr``
``@`` (one digit    ``plate.@@@@.exr`` (``plate.@.exr``   ``plate.1001.exr`` /
each, RV/Shake)     is unpadded)                          ``plate.0007.exr``
``%0Nd`` / ``%d``   ``plate.%04d.exr``                    as ``####``
``$FN`` / ``$F``    ``plate.$F4.exr`` (Houdini)           as ``####``
==================  ====================================  ==========================

Padding is a minimum width as in printf: frame 12345 in a ``####`` pattern is ``12345``, frame
-1 is ``-001``. A file matches a pattern only when its digits are exactly what the
pattern would write for that number (``plate.01001.exr`` is not frame 1001 of
``plate.####.exr``).

Frame numbers always come from the file names, never from list order. Frame ranges:
``1001-1100``, ``1001-1100x2`` (every 2nd frame), ``1001,1005-1010``, ``1001``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInputError, MissingFramesError, UnsupportedFormatError

__all__ = [
    "IMAGE_EXTENSIONS",
    "SequencePattern",
    "Sequence",
    "parse_pattern",
    "as_pattern",
    "parse_frame_range",
    "format_frame_list",
    "find_sequences",
    "discover",
    "sequence_of",
    "missing_frames",
]

#: File extensions read as images through OpenImageIO (lower case, with the dot).
IMAGE_EXTENSIONS = frozenset(
    {".exr", ".dpx", ".cin", ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".hdr", ".tga", ".bmp",
     ".sgi", ".rgb", ".psd", ".webp", ".jxl", ".jp2", ".j2k", ".pnm", ".ppm", ".pgm"}
)

# One placeholder in a pattern: a run of '#', a run of '@', printf %d / %0Nd, Houdini $F / $FN.
_PLACEHOLDER = re.compile(r"(?P<hash>#+)|(?P<at>@+)|%(?P<pw>0?\d*)d|\$F(?P<hw>\d*)")
# The last run of digits in a file name (before the extension): the frame number.
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<digits>-?\d+)(?P<suffix>\.[^.]+)$")


@dataclass(frozen=True)
class SequencePattern:
    """A frame-numbered file name: ``directory/prefix<frame, zero-padded>suffix``.

    Args:
        directory: folder holding the frames.
        prefix: the file name before the frame number (``"plate."``).
        suffix: the file name after it, extension included (``".exr"``).
        padding: minimum number of digits; ``None`` for a single file without a frame number.
    """

    directory: Path
    prefix: str
    suffix: str
    padding: int | None = 4

    @property
    def is_single_file(self) -> bool:
        return self.padding is None

    @property
    def extension(self) -> str:
        """Lower-case extension with its dot (``".exr"``)."""
        return os.path.splitext(self.prefix + self.suffix)[1].lower()

    @property
    def stem(self) -> str:
        """The name without frame number and extension, trailing separators removed (``plate``)."""
        base = self.prefix if not self.is_single_file else os.path.splitext(self.prefix)[0]
        return base.rstrip("._- ") or "frames"

    def format_frame(self, frame: int) -> str:
        """The digits a frame number takes in file names (``7`` -> ``"0007"``)."""
        if self.padding is None:
            return ""
        return "%0*d" % (self.padding, frame)  # printf semantics: -1 in #### is "-001"

    def path(self, frame: int) -> Path:
        """File of one frame (the same file for every frame of a single-file pattern)."""
        return self.directory / f"{self.prefix}{self.format_frame(frame)}{self.suffix}"

    def frame_of(self, name: str) -> int | None:
        """Frame number of a file name in this sequence, or ``None`` if it does not belong."""
        if self.padding is None:
            return 0 if name == self.prefix + self.suffix else None
        if not (name.startswith(self.prefix) and name.endswith(self.suffix)):
            return None
        digits = name[len(self.prefix):len(name) - len(self.suffix)]
        if not re.fullmatch(r"-?\d+", digits):
            return None
        frame = int(digits)
        return frame if self.format_frame(frame) == digits else None

    def __str__(self) -> str:
        if self.padding is None:
            return str(self.directory / (self.prefix + self.suffix))
        return str(self.directory / f"{self.prefix}{'#' * self.padding}{self.suffix}")

    def with_name(self, prefix: str, suffix: str, directory: Path | None = None) -> "SequencePattern":
        """Same padding, other name: the shape of derived output sequences."""
        return SequencePattern(directory or self.directory, prefix, suffix, self.padding)


@dataclass
class Sequence:
    """A sequence found on disk: its pattern and the frame numbers whose files exist."""

    pattern: SequencePattern
    frames: list[int] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    def gaps(self) -> list[int]:
        """Frame numbers missing between the first and last frame found."""
        if not self.frames:
            return []
        have = set(self.frames)
        return [f for f in range(self.first, self.last + 1) if f not in have]

    def __str__(self) -> str:
        if self.pattern.is_single_file or not self.frames:
            return str(self.pattern)
        return f"{self.pattern} [{format_frame_list(self.frames)}]"


#: Sound files (a clip's audio handed over by mistake) are named as such.
_AUDIO_EXTENSIONS = {".wav", ".aif", ".aiff", ".bwf", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus", ".wma"}


def parse_pattern(path: str | os.PathLike[str]) -> SequencePattern | None:
    """The :class:`SequencePattern` a path with one frame placeholder names, else ``None``.

    Only the file name may hold a placeholder; two placeholders are an error. A file that
    exists under the very name given is that file (``logo@2x.png``, ``take#3.png``), and a
    folder that exists is a folder (``v@2/``), whatever characters their names hold.
    """
    path = Path(path)
    name = path.name
    if path.is_file():
        return None
    matches = list(_PLACEHOLDER.finditer(name))
    if not path.parent.is_dir():
        for parent in path.parent.parts:
            if _PLACEHOLDER.search(parent):
                raise BadInputError(f"frame placeholders belong in the file name, not the folder: {path}")
    if not matches:
        return None
    if len(matches) > 1:
        raise BadInputError(f"more than one frame placeholder in {name!r}; use exactly one")
    m = matches[0]
    if m.group("hash"):
        padding = len(m.group("hash"))
    elif m.group("at"):
        padding = len(m.group("at"))
    elif m.group("pw") is not None and m.group(0).startswith("%"):
        width = m.group("pw")
        padding = int(width) if width else 1
    else:
        width = m.group("hw")
        padding = int(width) if width else 1
    padding = max(padding, 1)
    return SequencePattern(path.parent, name[: m.start()], name[m.end():], padding)


def as_pattern(path: str | os.PathLike[str] | SequencePattern) -> SequencePattern:
    """A pattern for a path: its placeholder, or a single-file pattern when it has none."""
    if isinstance(path, SequencePattern):
        return path
    pattern = parse_pattern(path)
    if pattern is None:
        p = Path(path)
        pattern = SequencePattern(p.parent, p.name, "", None)
    return pattern


_RANGE_PART = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:[x:]\s*(\d+)\s*)?)?$")


def parse_frame_range(spec: str) -> list[int]:
    """``"1001-1100"``, ``"1001-1100x2"``, ``"1001,1005-1010"``, ``"1001"`` -> sorted frame numbers.

    Ranges are inclusive; ``xN`` (or ``:N``) steps by N from the first frame. Duplicates are
    removed. Raises :class:`BadInputError` on anything else.
    """
    text = str(spec).strip()
    if not text:
        raise BadInputError("empty frame range")
    frames: set[int] = set()
    for part in text.split(","):
        m = _RANGE_PART.match(part)
        if not m:
            raise BadInputError(
                f"bad frame range {spec!r}: use e.g. 1001-1100, 1001-1100x2 or 1001,1005-1010"
            )
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        step = int(m.group(3)) if m.group(3) is not None else 1
        if last < first:
            raise BadInputError(f"bad frame range {part.strip()!r}: the end comes before the start")
        if step < 1:
            raise BadInputError(f"bad frame range {part.strip()!r}: the step must be 1 or more")
        frames.update(range(first, last + 1, step))
    return sorted(frames)


def format_frame_list(frames: list[int] | set[int], limit: int = 12) -> str:
    """Compact list: ``[1001, 1002, 1003, 1007]`` -> ``"1001-1003, 1007"`` (long lists elided)."""
    values = sorted(set(frames))
    runs: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        runs.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    if len(runs) > limit:
        runs = runs[: limit - 1] + [f"... ({len(values)} frames in all)"]
    return ", ".join(runs)


def _scan(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as it:
            return [e.name for e in it if e.is_file() and not e.name.startswith(".")]
    except FileNotFoundError:
        raise BadInputError(f"folder not found: {directory}") from None
    except NotADirectoryError:
        raise BadInputError(f"not a folder: {directory}") from None
    except PermissionError:
        raise BadInputError(f"cannot read folder {directory}: permission denied") from None


def find_sequences(directory: str | os.PathLike[str]) -> list[Sequence]:
    """Every numbered image sequence in a folder (not recursive), largest first.

    Files group by (prefix, suffix); the padding is the shortest digit run seen (so
    ``998, 999, 1000`` is padding 3 and ``0001 .. 0010`` is padding 4).
    """
    directory = Path(directory)
    groups: dict[tuple[str, str], list[str]] = {}
    for name in _scan(directory):
        if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
            continue
        m = _NUMBERED.match(name)
        if not m:
            continue
        groups.setdefault((m.group("prefix"), m.group("suffix")), []).append(m.group("digits"))
    found: list[Sequence] = []
    for (prefix, suffix), digit_runs in groups.items():
        # A '-' just before the digits is a separator unless the name also holds other frames
        # without it: "shot-1001.exr" is frame 1001 of "shot-".
        if all(d.startswith("-") for d in digit_runs):
            prefix, digit_runs = prefix + "-", [d[1:] for d in digit_runs]
        padding = min(len(d.lstrip("-")) for d in digit_runs)
        pattern = SequencePattern(directory, prefix, suffix, padding)
        frames = sorted({f for f in (pattern.frame_of(prefix + d + suffix) for d in digit_runs)
                         if f is not None})
        if frames:
            found.append(Sequence(pattern, frames))
    found.sort(key=lambda s: (-len(s.frames), str(s.pattern)))
    return found


def numbered_otherwise(pattern: SequencePattern) -> list[str]:
    """Files beside a sequence, of its name, numbered in a way its padding does not write (a
    negative frame padded after its sign, ``-0002`` where ``####`` writes ``-002``; another
    padding): they are not frames of it, and a render says so rather than skip them silently."""
    if pattern.padding is None:
        return []
    odd = []
    for name in _scan(pattern.directory):
        if name.startswith(pattern.prefix) and name.endswith(pattern.suffix) and pattern.frame_of(name) is None:
            digits = name[len(pattern.prefix):len(name) - len(pattern.suffix)]
            if re.fullmatch(r"-?\d+", digits):
                odd.append(name)
    return sorted(odd)


def _frames_on_disk(pattern: SequencePattern) -> list[int]:
    frames = (pattern.frame_of(name) for name in _scan(pattern.directory))
    return sorted(f for f in frames if f is not None)


def sequence_of(path: str | os.PathLike[str]) -> Sequence | None:
    """The numbered sequence an image file is one frame of, when other frames of it are on
    disk (``plate.1002.exr`` beside ``plate.1001.exr``); None for a lone or unnumbered image."""
    path = Path(path)
    m = _NUMBERED.match(path.name)
    if not m or not path.parent.is_dir():
        return None
    for seq in find_sequences(path.parent):
        if len(seq.frames) > 1 and any(seq.pattern.path(f).name == path.name for f in seq.frames):
            return seq
    return None


def _single_file(path: Path) -> Sequence:
    """One image, frame 0 of a single-file pattern (a numbered name stays one image)."""
    return Sequence(SequencePattern(path.parent, path.name, "", None), [0])


def discover(
    path: str | os.PathLike[str],
    frames: str | list[int] | None = None,
) -> tuple[Sequence, list[int]]:
    """Resolve a pattern, a single image file or a folder to a sequence and the frames to use.

    Args:
        path: ``plate.####.exr`` (any notation above), ``still.png`` or a folder that holds
            exactly one numbered sequence.
        frames: a frame range string or list restricting the frames; default: every frame from
            the first to the last found.

    Returns:
        ``(sequence, wanted)``: ``sequence.frames`` are the frames whose files exist; ``wanted``
        the requested frame numbers, which may include missing ones (see
        :func:`missing_frames`). Raises :class:`BadInputError` for paths that name nothing and
        :class:`MissingFramesError` when no requested frame exists at all.
    """
    path_str = os.fspath(path)
    pattern = parse_pattern(path_str)
    wanted_override = parse_frame_range(frames) if isinstance(frames, str) else frames
    if pattern is None:
        p = Path(path_str)
        if p.is_dir():
            seqs = find_sequences(p)
            if not seqs:
                raise BadInputError(f"no numbered image sequence found in folder {p}")
            if len(seqs) > 1:
                names = ", ".join(Path(str(s.pattern)).name for s in seqs[:5])
                raise BadInputError(
                    f"folder {p} holds {len(seqs)} sequences ({names}); pass one as a pattern"
                )
            seq = seqs[0]
        elif p.is_file():
            if p.suffix.lower() in _AUDIO_EXTENSIONS:
                raise BadInputError(f"{p}: a sound file, with no pictures to matte")
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                raise UnsupportedFormatError(
                    f"{p}: not a picture or video this tool reads (images: "
                    f"{', '.join(sorted(e.lstrip('.') for e in IMAGE_EXTENSIONS))}; videos: any FFmpeg decodes)")
            seq = _single_file(p)
            if wanted_override is not None and list(wanted_override) != seq.frames:
                raise BadInputError(
                    f"a frame range needs a sequence; {p.name} is a single image "
                    "(pass a pattern like name.####.ext)"
                )
            return seq, list(seq.frames)
        elif p.exists():
            raise BadInputError(f"not a file or folder: {p}")
        else:
            raise BadInputError(f"input not found: {p}")
    else:
        if not pattern.directory.is_dir():
            raise BadInputError(f"folder not found: {pattern.directory}")
        if pattern.extension not in IMAGE_EXTENSIONS:
            raise BadInputError(f"not an image sequence this tool reads: {pattern}")
        seq = Sequence(pattern, _frames_on_disk(pattern))
        if not seq.frames:
            raise MissingFramesError(f"no frames of {pattern} found", wanted_override or [])
    if wanted_override is not None:
        wanted = sorted(set(wanted_override))
    else:
        wanted = list(range(seq.first, seq.last + 1))
    have = set(seq.frames)
    if not any(f in have for f in wanted):
        raise MissingFramesError(
            f"none of the requested frames ({format_frame_list(wanted)}) exist for {seq.pattern}",
            wanted,
        )
    return seq, wanted


def missing_frames(sequence: Sequence, wanted: list[int]) -> list[int]:
    """The wanted frame numbers that have no file."""
    have = set(sequence.frames)
    return [f for f in wanted if f not in have]

