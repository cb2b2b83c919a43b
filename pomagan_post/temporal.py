"""Temporal steadying of mattes (``render --temporal N``).

The network mattes each frame on its own, so a matte flickers: a region it is unsure of comes
and goes from one frame to the next. Steadying averages each frame's matte with those of the
``N`` frames either side, each one first moved onto this frame along the optical flow between
the two pictures (OpenCV's DIS flow, computed on a reduced copy), and weighted, pixel by pixel,
by how well the moved picture matches this frame's: where the flow is wrong (occlusions, fast
hair, a cut) the neighbour's picture does not match, its weight falls to about zero and the
frame keeps its own matte there.

Measured (``scripts/temporal_check.py --temporal 2 --known 8``, README "Flicker", the bundled
weights): on the example clip the matte's change between frames falls from 6.04/255 to
2.11/255 with ``N = 2``, and on synthetic clips with known mattes (a person moving and bending
over a background moving on its own) the error against the true matte falls too (MSE x1e3
14.71 -> 12.92; in the soft edge 85.1 -> 72.8), so it steadies without smearing moving edges.

A frame's steadied matte depends only on its neighbours in the input, so a render of the whole
shot, a farm chunk and a resumed render give the same matte: ``render`` reads the ``N`` frames
beyond a chunk's ends too (matted, not written).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import BadInputError

#: How far the matte of a neighbour is trusted: weight ``exp(-d / SIGMA**2)`` where ``d`` is the
#: mean squared difference of the display-referred RGB (0-1) of this frame and the moved one.
SIGMA = 0.04
#: The flow is computed on a copy whose short side is at most this many pixels.
FLOW_SHORT_SIDE = 540
MAX_RADIUS = 8
#: A neighbour whose moved picture matches this frame's in less than this share of the pixels
#: is another shot (a cut) or lost track (a flash, a whip pan): it is not used at all, since
#: pixels of another picture can match this one's by chance.
MIN_MATCHED = 0.5


def check_radius(radius: int) -> int:
    radius = int(radius)
    if not 0 <= radius <= MAX_RADIUS:
        raise BadInputError(f"temporal radius must be 0 (off) to {MAX_RADIUS} frames, got {radius}")
    return radius


def neighbours(shot: Sequence[int], frames: Iterable[int], radius: int) -> list[int]:
    """The frames read to steady ``frames`` over ``radius`` frames either side: each of them and
    the ``radius`` frames before and after it among ``shot``, the numbers of the shot's frames in
    order (a missing file is not in it, so it is stepped over; a shot numbered on twos has its
    neighbours two numbers away). A frame not in ``shot`` is read alone. Sorted."""
    position = {n: i for i, n in enumerate(shot)}
    wanted = set(frames)
    around = {shot[j] for n in wanted if n in position
              for j in range(max(0, position[n] - radius), min(len(shot), position[n] + radius + 1))}
    return sorted(wanted | around)


@dataclass
class _Held:
    image: np.ndarray  # [H, W, 3] as decoded (returned with the matte, for the foreground)
    alpha: np.ndarray  # [H, W] the frame's own matte
    guide: np.ndarray  # [H, W, 3] float32 display-referred 0-1 (what the weights compare)
    small: np.ndarray  # [h, w] uint8 grey, reduced: what the flow is computed on


def _grey(guide: np.ndarray, short_side: int) -> np.ndarray:
    """The reduced grey copy the flow is computed on (uint8)."""
    import cv2

    h, w = guide.shape[:2]
    scale = min(1.0, short_side / min(h, w))
    if scale < 1.0:
        guide = cv2.resize(guide, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY)
    return cv2.convertScaleAbs(np.clip(grey, 0.0, 1.0), alpha=255.0)


class TemporalSteady:
    """Steadies a stream of mattes; frames go in in increasing frame number.

    ``push`` each frame (its number, decoded image, matte and display-referred guide), then
    ``ready(through)`` gives back, in order, the frames whose later neighbours have all arrived
    (those up to ``through`` have been pushed), and ``flush()`` the rest at the end. Each comes
    back as ``(number, image, steadied matte)``. Neighbours are frames whose numbers lie within
    ``radius`` of the frame's; a missing one (a gap, a skipped frame) is simply not used.
    ``wanted``: the frames whose steadied matte is needed; the others (read only as neighbours)
    come back with their own matte, not steadied.
    """

    def __init__(self, radius: int, sigma: float = SIGMA, flow_short_side: int = FLOW_SHORT_SIDE,
                 wanted: Collection[int] | None = None) -> None:
        self.radius = check_radius(radius)
        self.wanted = None if wanted is None else frozenset(wanted)
        self.sigma = float(sigma)
        self.flow_short_side = int(flow_short_side)
        import cv2  # (here, not at import: the CLI starts without OpenCV)

        self._held: dict[int, _Held] = {}
        self._pending: list[int] = []
        self._last: int | None = None  # the last frame pushed
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._grid: np.ndarray | None = None

    def push(self, number: int, image: np.ndarray, alpha: np.ndarray, guide: np.ndarray) -> None:
        if self._last is not None and number <= self._last:
            raise ValueError(f"frames must come in increasing order: {number} after {self._last}")
        self._last = number
        guide = np.ascontiguousarray(guide, dtype=np.float32)
        self._held[number] = _Held(image, np.ascontiguousarray(alpha, dtype=np.float32), guide,
                                   _grey(guide, self.flow_short_side))
        self._pending.append(number)

    def push_batch(self, numbers: list[int], images: np.ndarray, alphas: np.ndarray, colorspace: str) -> None:
        """``push`` a batch as a source decoded it: frames [N, H, W, 3] in ``colorspace``'s own
        values, their mattes [N, H, W]; the guides are the frames in model space (display-referred
        sRGB, 0-1, what the network sees)."""
        from .colour import to_model

        for number, image, alpha in zip(numbers, images, alphas):
            self.push(number, image, alpha, to_model(image, colorspace))

    def ready(self, through: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        out = []
        while self._pending and self._pending[0] + self.radius <= through:
            out.append(self._emit(self._pending.pop(0)))
        return out

    def flush(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        out = [self._emit(number) for number in self._pending]
        self._pending = []
        self._held.clear()
        return out

    def _flow(self, held: _Held, other: int) -> np.ndarray:
        """Where each pixel of ``held``'s frame lies in frame ``other`` (a full-size remap map,
        [H, W, 2]): the flow held(x) ~ other(x + f(x)), computed reduced, plus x."""
        import cv2

        small = self._dis.calc(held.small, self._held[other].small, None)
        h, w = held.alpha.shape
        sh, sw = small.shape[:2]
        if (sh, sw) != (h, w):
            small = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
            small = cv2.multiply(small, (w / sw, h / sh, 0, 0))
        if self._grid is None or self._grid.shape[:2] != (h, w):
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = np.dstack([gx, gy])
        return cv2.add(self._grid, small)

    def _emit(self, number: int) -> tuple[int, np.ndarray, np.ndarray]:
        import cv2

        held = self._held[number]
        neighbours = [n for n in self._held if n != number and abs(n - number) <= self.radius]
        if self.wanted is not None and number not in self.wanted:
            neighbours = []
        total = held.alpha.copy()
        weights = np.ones_like(total)
        scale = np.full((1, 3), -1.0 / (3 * self.sigma ** 2), np.float32)  # mean of 3 channels / sigma^2
        for other in neighbours:
            where = self._flow(held, other)
            # Pixels moved in from outside the frame get a picture far from any real one: weight 0.
            moved_guide = cv2.remap(self._held[other].guide, where, None, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=(-10.0, -10.0, -10.0))
            moved_alpha = cv2.remap(self._held[other].alpha, where, None, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
            difference = cv2.subtract(moved_guide, held.guide)
            weight = cv2.exp(cv2.transform(cv2.multiply(difference, difference), scale))
            if cv2.countNonZero(cv2.threshold(weight, 0.5, 1.0, cv2.THRESH_BINARY)[1]) < MIN_MATCHED * weight.size:
                continue
            cv2.accumulateProduct(weight, moved_alpha, total)
            cv2.accumulate(weight, weights)
        # Frames no longer anyone's neighbour are let go.
        first = self._pending[0] if self._pending else number + 1
        for old in [n for n in self._held if n < first - self.radius]:
            del self._held[old]
        return number, held.image, np.clip(total / weights, 0.0, 1.0)
