"""Run a checkpoint on the real portrait photographs that ship with installed packages.

    python scripts/real_photo_check.py [--weights CKPT] [--out DIR] [--working-size N] [--tta none|flip]

Photos: scikit-image's ``astronaut`` (NASA, public domain) and ``camera`` (the cameraman), and
matplotlib's ``grace_hopper`` sample. For each, writes ``DIR/<name>_panel.png``: the photo, the
alpha, and the premultiplied foreground over green, side by side, for a person to look at. Nothing
is downloaded; photos whose package is missing are skipped with a note.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import pomagan_post
from pomagan_post.engine import TTA_MODES


def real_photos() -> dict[str, np.ndarray]:
    """name -> float32 [H, W, 3] sRGB in [0, 1], from packages installed here."""
    photos: dict[str, np.ndarray] = {}
    try:
        from skimage import data

        photos["astronaut"] = data.astronaut()
        photos["cameraman"] = np.repeat(data.camera()[..., None], 3, axis=2)
    except ImportError:
        print("scikit-image not installed: astronaut and cameraman skipped")
    try:
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            import matplotlib.image

            photos["grace_hopper"] = matplotlib.image.imread(handle)
    except (ImportError, OSError, ValueError):
        print("matplotlib sample data not available: grace_hopper skipped")
    return {name: img[..., :3].astype(np.float32) / 255.0 for name, img in photos.items()}


def panel(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """[H, 3W, 3] uint8 BGR: photo | alpha | foreground over green."""
    green = np.array([0.0, 0.69, 0.25], np.float32)
    comp = fg + (1.0 - alpha[..., None]) * green
    row = np.concatenate([image, np.repeat(alpha[..., None], 3, axis=2), comp], axis=1)
    return (np.clip(row, 0, 1) * 255 + 0.5).astype(np.uint8)[..., ::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="checkpoint (default: the bundled one)")
    parser.add_argument("--out", default="real_photo_check", help="output folder")
    parser.add_argument("--working-size", type=int, default=None)
    parser.add_argument("--tta", choices=TTA_MODES, default=TTA_MODES[0],
                        help="mirror-image averaging, as pomagan-post render --tta (default none)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = pomagan_post.Engine(
        pomagan_post.load_checkpoint(args.weights), device="cpu", working_size=args.working_size, tta=args.tta
    )
    print(engine)
    for name, image in real_photos().items():
        alpha, fg = engine.process(image[None])
        path = out / f"{name}_panel.png"
        cv2.imwrite(str(path), panel(image, alpha[0], fg[0]))
        coverage = float((alpha[0] > 0.5).mean())
        print(f"{name}: {image.shape[1]}x{image.shape[0]}, alpha > 0.5 on {coverage:.1%} of pixels -> {path}")


if __name__ == "__main__":
    main()
