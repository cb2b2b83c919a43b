"""Everything the POMAGAN node decides, as plain Python: no ``nuke`` import here.

The node module (:mod:`pomagan_nuke.node`) reads knobs and touches Nuke; the decisions live
here so tests (and farm tools) run them without Nuke:

* :class:`NodeSettings` - the knob values that change the matte;
* :func:`frame_range` - the input's range by default, or an explicit one;
* :func:`read_span` - the input frames a render reads (with ``temporal``, the neighbours too);
* :func:`direct_read_pattern` - whether an upstream Read's files can be read as they are;
* :func:`file_fingerprint` / :func:`tree_fingerprint` / :func:`weights_fingerprint` and
  :func:`cache_key` - when a cached matte is still valid;
* :func:`cache_layout` / :func:`missing_frames` - where the cache lives, what is there;
* :func:`render_matte` - the call into :func:`pomagan_post.render` (farm entry too).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from pomagan_post.engine import PRECISIONS, TTA_MODES
from pomagan_post.errors import BadInputError, PomaganError
from pomagan_post.temporal import check_radius, neighbours

__all__ = [
    "CacheLayout",
    "Cancelled",
    "DEVICES",
    "DIRECT_EXTENSIONS",
    "NodeSettings",
    "OUTPUT_MODES",
    "PRECISIONS",
    "SETTINGS_KNOBS",
    "cache_key",
    "cache_layout",
    "default_cache_dir",
    "describe_weights",
    "direct_read_pattern",
    "file_fingerprint",
    "frame_range",
    "frames_on_disk",
    "missing_frames",
    "parse_frames",
    "read_span",
    "render_matte",
    "tree_fingerprint",
    "weights_fingerprint",
]

#: Output knob choices: premultiplied foreground in rgb + matte in alpha, or the plate + matte.
OUTPUT_MODES = ("premultiplied rgba", "alpha")
DEVICES = ("auto", "cpu", "cuda")
#: Upstream files read as they are (no internal Write pass).
DIRECT_EXTENSIONS = (".exr", ".dpx")
#: Knobs whose change can make the cached matte stale (knobChanged reacts to these).
SETTINGS_KNOBS = ("weights", "device", "precision", "working_size", "tta", "temporal", "output",
                  "use_input_range", "first_frame", "last_frame", "cache_dir", "read_upstream")
CACHE_ENV = "POMAGAN_NUKE_CACHE"


class Cancelled(PomaganError):
    """The artist cancelled a render (frames already finished stay in the cache)."""


@dataclass(frozen=True)
class NodeSettings:
    """The knob values that define a matte.

    Args:
        weights: checkpoint path; ``""`` is the bundled default.
        device, precision: engine settings (see :class:`pomagan_post.Engine`).
        working_size: short side the network runs at; ``0`` is the checkpoint's default.
        tta: ``none`` (one pass, render's default) or ``flip`` (average with the mirror image's matte).
        temporal: steady the matte over this many frames either side (render's ``temporal``;
            0: off, each frame on its own).
        output: one of :data:`OUTPUT_MODES`.
        first, last: the node's frame range.
        cache_dir: cache root folder.
        read_upstream: read an upstream Read's EXR/DPX files directly.
    """

    weights: str = ""
    device: str = "auto"
    precision: str = "auto"
    working_size: int = 0
    tta: str = TTA_MODES[0]
    temporal: int = 0
    output: str = OUTPUT_MODES[0]
    first: int = 1
    last: int = 1
    cache_dir: str = ""
    read_upstream: bool = True

    def __post_init__(self) -> None:
        if self.output not in OUTPUT_MODES:
            raise BadInputError(f"unknown output {self.output!r}; use one of {', '.join(OUTPUT_MODES)}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise BadInputError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")
        if self.precision not in PRECISIONS:
            raise BadInputError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.tta not in TTA_MODES:
            raise BadInputError(f"unknown tta {self.tta!r}; use one of {', '.join(TTA_MODES)}")
        check_radius(self.temporal)
        if self.working_size and self.working_size < 16:
            raise BadInputError(f"working size must be 0 (checkpoint default) or >= 16, got {self.working_size}")
        if self.last < self.first:
            raise BadInputError(f"frame range {self.first}-{self.last} is empty (last before first)")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The render outputs this node needs: alpha, plus the foreground for rgba."""
        return ("alpha", "fg") if self.output == OUTPUT_MODES[0] else ("alpha",)

    def matte_settings(self) -> dict[str, Any]:
        """What changes the matte itself (not the cache location or the output mode)."""
        settings = {"weights": weights_fingerprint(self.weights), "device": self.device,
                    "precision": self.precision, "working_size": self.working_size, "tta": self.tta}
        if self.temporal:  # (absent when off: the keys of entries made before the knob existed)
            settings["temporal"] = self.temporal
        return settings


@dataclass(frozen=True)
class CacheLayout:
    """Where one cache entry lives: ``<cache_dir>/<key>/`` with ``plate``, ``alpha`` and ``fg``
    EXR sequences (Nuke-style ``####`` patterns)."""

    folder: Path

    @property
    def plate(self) -> str:
        return str(self.folder / "plate.####.exr")

    @property
    def alpha(self) -> str:
        return str(self.folder / "alpha.####.exr")

    @property
    def fg(self) -> str:
        return str(self.folder / "fg.####.exr")

    @property
    def roto(self) -> str:
        """The roto input's alpha, written by the node's ``roto_write`` (when one is connected)."""
        return str(self.folder / "roto.####.exr")

    def path(self, kind: str, frame: int) -> Path:
        return self.folder / f"{kind}.{frame:04d}.exr"


def parse_frames(text: str) -> tuple[int, int]:
    """``"1001-1100"`` or ``"1001"`` -> (first, last)."""
    value = str(text).strip()
    try:
        if "-" in value[1:]:
            split = value.index("-", 1)
            first, last = int(value[:split]), int(value[split + 1:])
        else:
            first = last = int(value)
    except ValueError:
        raise BadInputError(f"frame range {text!r}: use FIRST-LAST, e.g. 1001-1100") from None
    if last < first:
        raise BadInputError(f"frame range {text!r} is empty (last before first)")
    return first, last


def frame_range(use_input: bool, input_range: tuple[int, int] | None,
                explicit: tuple[int, int]) -> tuple[int, int]:
    """The node's range: the input's (default) or the explicit first/last knobs.

    ``input_range`` is ``None`` when nothing is connected; the explicit range is used then.
    """
    first, last = input_range if (use_input and input_range is not None) else explicit
    first, last = int(first), int(last)
    if last < first:
        raise BadInputError(f"frame range {first}-{last} is empty (last before first)")
    return first, last


def read_span(settings: NodeSettings, frames: tuple[int, int] | None = None,
              shot: Sequence[int] | None = None) -> tuple[int, int]:
    """The first and last input frame a render of ``frames`` (default: the node's range) reads.

    Without ``temporal`` that is ``frames`` itself. With it, a frame's matte is steadied with
    the ``temporal`` frames either side of it in the shot (render reads them, matted, not
    written), so the plate and roto written into the cache, and the files a cache key covers,
    must include them. ``shot``: the numbers of the shot's frames in order (an upstream Read's
    files on disk, or the input's range for a plate the node writes itself); default the
    node's range.
    """
    first, last = frames or (settings.first, settings.last)
    if not settings.temporal:
        return first, last
    frames_in = list(shot) if shot is not None else list(range(settings.first, settings.last + 1))
    read = neighbours(frames_in, [n for n in frames_in if first <= n <= last], settings.temporal)
    return min(read + [first]), max(read + [last])


def direct_read_pattern(file_value: str, read_upstream: bool = True) -> str | None:
    """The upstream Read's file pattern when its files can be rendered as they are (EXR/DPX),
    else ``None`` (the input then goes through the internal Write). Nuke's ``%04d`` and ``####``
    forms are both understood by :func:`pomagan_post.render`."""
    if not read_upstream or not file_value:
        return None
    return file_value if os.path.splitext(file_value)[1].lower() in DIRECT_EXTENSIONS else None


def frames_on_disk(pattern: str) -> list[int]:
    """The numbers of a sequence's frames whose files exist, in order (none: ``[]``)."""
    from pomagan_post.io.sequence import discover

    try:
        return list(discover(pattern)[0].frames)
    except (PomaganError, IndexError):
        return []


def _frame_path(pattern: str, frame: int) -> Path:
    from pomagan_post.io.sequence import as_pattern

    return Path(as_pattern(pattern).path(frame))


def file_fingerprint(pattern: str, first: int, last: int) -> list[list[Any]]:
    """``[frame, size, mtime_ns]`` per frame file (``None`` for missing ones): cheap, and any
    re-render or replacement of a frame changes it."""
    rows: list[list[Any]] = []
    for frame in range(first, last + 1):
        try:
            stat = _frame_path(pattern, frame).stat()
            rows.append([frame, stat.st_size, stat.st_mtime_ns])
        except OSError:
            rows.append([frame, None, None])
    return [[str(Path(pattern))]] + rows


def tree_fingerprint(nodes: Iterable[tuple[str, str]], files: Sequence[list[Any]] = ()) -> str:
    """Digest of an upstream node tree: each node's class and serialised knob values (in
    dependency order), plus the fingerprints of the files its Read nodes load."""
    digest = hashlib.sha256()
    for cls, knobs in nodes:
        digest.update(f"{cls}\n{knobs}\n".encode())
    digest.update(json.dumps(list(files), sort_keys=True).encode())
    return digest.hexdigest()


def weights_fingerprint(weights: str) -> list[Any]:
    """Path, size and mtime of the checkpoint (``""``: the bundled default)."""
    from pomagan_post.checkpoint import bundled_checkpoint_path

    path = Path(weights).expanduser() if weights else bundled_checkpoint_path()
    try:
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    except OSError:
        return [str(path), None, None]


def cache_key(source: Any, settings: NodeSettings) -> str:
    """Hash of (input fingerprint, frame range, matte settings, weights): equal keys mean the
    cached matte is valid. The output mode and the cache folder are not part of it."""
    blob = json.dumps({"source": source, "frames": [settings.first, settings.last],
                       "settings": settings.matte_settings(), "version": 1},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def default_cache_dir(script_path: str | None, env: Mapping[str, str] = os.environ) -> str:
    """``$POMAGAN_NUKE_CACHE``, else ``pomagan_cache/`` beside the saved script, else a folder
    in the system temp directory (unsaved scripts)."""
    if env.get(CACHE_ENV):
        return env[CACHE_ENV]
    if script_path and script_path not in ("Root", "untitled"):
        return str(Path(script_path).parent / "pomagan_cache")
    return str(Path(tempfile.gettempdir()) / "pomagan_cache")


def cache_layout(settings: NodeSettings, key: str) -> CacheLayout:
    if not settings.cache_dir:
        raise BadInputError("no cache folder set")
    return CacheLayout(Path(settings.cache_dir).expanduser() / key)


def missing_frames(layout: CacheLayout, kinds: Iterable[str], first: int, last: int) -> list[int]:
    """Frames in first..last lacking any of the ``kinds`` files."""
    kinds = tuple(kinds)
    return [f for f in range(first, last + 1) if not all(layout.path(k, f).exists() for k in kinds)]


def describe_weights(weights: str) -> str:
    """One line for the read-only variant knob: variant, trained or not, description."""
    from pomagan_post.checkpoint import read_checkpoint_info

    try:
        info = read_checkpoint_info(weights or None)
    except PomaganError as exc:
        return f"error: {exc}"
    status = "trained" if info["trained"] else "UNTRAINED placeholder (mattes are meaningless)"
    text = f"{info['variant']} - {status}"
    if info.get("description"):
        text += f" - {info['description']}"
    return text


def render_matte(
    source: str,
    layout: CacheLayout,
    settings: NodeSettings,
    frames: tuple[int, int] | None = None,
    callback: Callable[[int, int, int], None] | None = None,
    render: Callable[..., Any] | None = None,
    roto: str | None = None,
) -> Any:
    """Render alpha (and the premultiplied foreground) of ``source`` into the cache entry.

    Frames already in the cache are kept (``skip_existing``), so a cancelled, crashed or
    farm-split render resumes. This is the function farm tools call.

    Args:
        source: the EXR/DPX pattern to read (an upstream Read's files, or the cache plate).
        layout: the cache entry.
        settings: the node's settings (device, precision, working size, tta, temporal, weights,
            output).
        frames: (first, last) to render; default the node's whole range.
        callback: ``callback(frame, done, total)`` after each frame; raise to cancel.
        render: the render function (default :func:`pomagan_post.render`).
        roto: an EXR pattern of the person's shape (the node's ``roto`` input, written to the
            cache entry): ``render``'s ``roto``, where the person is taken from.
    Returns:
        The :class:`pomagan_post.RenderReport`.
    """
    if render is None:
        from pomagan_post import render
    first, last = frames or (settings.first, settings.last)
    layout.folder.mkdir(parents=True, exist_ok=True)
    return render(
        source,
        frames=f"{first}-{last}",
        output_dir=str(layout.folder),
        outputs=list(settings.kinds),
        alpha_name="alpha.####.exr",
        fg_name="fg.####.exr",
        format="exr",
        device=settings.device,
        precision=settings.precision,
        working_size=settings.working_size or None,
        tta=settings.tta,
        temporal=settings.temporal,
        weights=settings.weights or None,
        skip_existing=True,
        premultiplied=True,
        callback=callback,
        roto=roto,
    )


def settings_dict(settings: NodeSettings) -> dict[str, Any]:
    """The settings as a JSON-able dict (stored next to the cache for people to read)."""
    return asdict(settings)
