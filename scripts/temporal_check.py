"""How much the matte flickers from frame to frame, on the bundled example clip.

``examples/astronaut_pan.mp4`` is a push-in and pan over one still photograph
(``examples/make_examples.py``), so the true matte, seen in the photograph's own coordinates,
never changes. This renders the clip's alpha, maps every frame's matte back onto the
photograph (the inverse of the clip's crop and resize) and measures, between consecutive
frames where both see the photo, the mean absolute change and the share of pixels that change
by more than 0.1. The same round trip applied to one fixed matte gives what resampling alone
changes (the floor). The model card quotes these numbers.

    python scripts/temporal_check.py [--weights CKPT] [--tta flip] [--device cpu]

Needs scikit-image (the photograph; ``pip install -e ".[train]"``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from make_examples import SIZE, pan_windows, photograph  # noqa: E402

from pomagan_post.io.video import VideoSource  # noqa: E402
from pomagan_post.renderer import render  # noqa: E402


def to_photo(matte: np.ndarray, window: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """A clip frame's matte placed back on the photograph (zeros outside its window)."""
    x0, y0, cw, ch = window
    canvas = np.zeros(shape, np.float32)
    canvas[y0:y0 + ch, x0:x0 + cw] = cv2.resize(matte.astype(np.float32), (cw, ch), interpolation=cv2.INTER_AREA)
    return canvas


def changes(mattes: list[np.ndarray], windows: list[tuple[int, int, int, int]],
            shape: tuple[int, int]) -> tuple[list[float], list[float]]:
    """Per consecutive pair: (mean |change|, share of pixels changing by > 0.1) where both
    frames see the photograph (2 pixels in from each window's edge)."""
    inside = []
    for x0, y0, cw, ch in windows:
        mask = np.zeros(shape, bool)
        mask[y0 + 2:y0 + ch - 2, x0 + 2:x0 + cw - 2] = True
        inside.append(mask)
    mean, big = [], []
    for i in range(1, len(mattes)):
        d = np.abs(mattes[i] - mattes[i - 1])[inside[i] & inside[i - 1]]
        mean.append(float(d.mean()))
        big.append(float((d > 0.1).mean()))
    return mean, big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="checkpoint (default: the bundled one)")
    parser.add_argument("--tta", default="none", choices=("none", "flip"))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    photo = photograph()
    shape = photo.shape[:2]
    windows = pan_windows(*shape)
    with tempfile.TemporaryDirectory() as tmp:
        report = render(ROOT / "examples" / "astronaut_pan.mp4", output_dir=tmp, outputs=["alpha"],
                        weights=args.weights, tta=args.tta, device=args.device)
        with VideoSource(report.outputs["alpha"]) as source:
            clip = [frame[..., 0] if frame.ndim == 3 else frame for _, frame in source]
    mattes = [to_photo(m, w, shape) for m, w in zip(clip, windows)]
    mean, big = changes(mattes, windows, shape)
    # The floor: frame 0's matte, unchanged, through every frame's crop and resize and back.
    fixed = [to_photo(cv2.resize(mattes[0][y0:y0 + ch, x0:x0 + cw], SIZE, interpolation=cv2.INTER_CUBIC),
                      (x0, y0, cw, ch), shape) for x0, y0, cw, ch in windows]
    floor_mean, floor_big = changes(fixed, windows, shape)
    print(f"examples/astronaut_pan.mp4, {len(clip)} frames, tta {args.tta}: between consecutive frames "
          f"the matte changes by {255 * np.mean(mean):.2f}/255 on average (worst pair {255 * max(mean):.2f}); "
          f"{100 * np.mean(big):.2f} % of pixels change by more than 0.1 (worst pair {100 * max(big):.2f} %)")
    print(f"resampling alone (a fixed matte through the same crops): {255 * np.mean(floor_mean):.2f}/255, "
          f"{100 * np.mean(floor_big):.2f} % of pixels by more than 0.1")


if __name__ == "__main__":
    main()
