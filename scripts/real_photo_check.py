"""Run a checkpoint on the real portrait photographs that ship with installed packages.

    python scripts/real_photo_check.py [--weights CKPT] [--out DIR] [--working-size N] [--tta none|flip]

Photos: scikit-image's ``astronaut`` (NASA, public domain) and ``camera`` (the cameraman), and
matplotlib's ``grace_hopper`` sample. For each, writes ``DIR/<name>_panel.png``: the photo, the
alpha, and the premultiplied foreground over green, side by side, for a person to look at. Nothing
is downloaded; photos whose package is missing are skipped with a note.

``--mono`` adds a black-and-white copy of each colour photo (``astronaut_bw``, ``grace_hopper_bw``:
Rec. 709 luma of the sRGB values, as a B&W conversion weighs them), so that black-and-white
footage is checked on more than the cameraman, the one photo that is B&W to begin with.

It also prints, per photo, the mean alpha over boxes placed by hand where the photo is certainly
the person (face, hair, coat or suit) and where it is certainly not (wall, sky, grass, the flag,
the shuttle): ``person`` should be near 1, ``background`` near 0. Rough boxes, no true matte;
``--boxes`` writes them drawn on the photos (green: person, red: background).
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


def black_and_white(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``photos`` plus ``<name>_bw``, a black-and-white copy, for each one in colour."""
    luma = np.array([0.2126, 0.7152, 0.0722], np.float32)
    out = dict(photos)
    for name, image in photos.items():
        if np.ptp(image, axis=2).max() > 0:
            out[f"{name}_bw"] = np.repeat((image @ luma)[..., None], 3, axis=2)
    return out


Box = tuple[int, int, int, int]
#: name -> ((height, width) the boxes were placed on, person boxes, background boxes), each box
#: (x0, y0, x1, y1) in the photo's pixels.
REGIONS: dict[str, tuple[tuple[int, int], list[Box], list[Box]]] = {
    "astronaut": (
        (512, 512),
        [(185, 60, 265, 150), (175, 185, 285, 235), (60, 300, 250, 430), (300, 260, 350, 330)],
        [(70, 0, 145, 115), (300, 0, 370, 150), (0, 0, 45, 230), (390, 20, 450, 240)],
    ),
    "cameraman": (
        (512, 512),
        [(30, 200, 130, 330), (20, 380, 110, 480), (175, 85, 235, 135)],
        [(300, 0, 512, 110), (420, 280, 512, 512)],
    ),
    "grace_hopper": (
        (600, 512),
        [(200, 150, 330, 300), (60, 430, 200, 560), (250, 430, 420, 560), (200, 30, 330, 100)],
        [(10, 20, 120, 300), (400, 50, 500, 300)],
    ),
}


def region_means(name: str, alpha: np.ndarray) -> tuple[float, float] | None:
    """(mean alpha over the person boxes, over the background boxes), pixel-weighted over the
    pixels that are not NaN (a cropped frame's matte put back in place); None for
    a photo with no boxes or of another size than they were placed on (``<name>_bw``: the
    boxes of ``<name>``)."""
    name = name.removesuffix("_bw")
    if name not in REGIONS or alpha.shape != REGIONS[name][0]:
        return None

    def mean(boxes: list[Box]) -> float:  # (NaN: a pixel not in the frame, as a crop's)
        total = sum(float(np.nansum(alpha[y0:y1, x0:x1])) for x0, y0, x1, y1 in boxes)
        return total / sum(int(np.isfinite(alpha[y0:y1, x0:x1]).sum()) for x0, y0, x1, y1 in boxes)

    _, person, background = REGIONS[name]
    return mean(person), mean(background)


def draw_regions(name: str, image: np.ndarray) -> np.ndarray:
    """uint8 BGR copy of ``image`` with the boxes drawn (green: person, red: background)."""
    out = np.ascontiguousarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)[..., ::-1])
    _, person, background = REGIONS.get(name.removesuffix("_bw"), ((0, 0), [], []))
    for boxes, colour in ((person, (0, 255, 0)), (background, (0, 0, 255))):
        for x0, y0, x1, y1 in boxes:
            cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), colour, 2)
    return out


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
    parser.add_argument("--boxes", action="store_true", help="also write OUT/<name>_boxes.png")
    parser.add_argument("--mono", action="store_true",
                        help="also a black-and-white copy of each colour photo (<name>_bw)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = pomagan_post.Engine(
        pomagan_post.load_checkpoint(args.weights), device="cpu", working_size=args.working_size, tta=args.tta
    )
    print(engine)
    photos = real_photos()
    for name, image in (black_and_white(photos) if args.mono else photos).items():
        alpha, fg = engine.process(image[None])
        path = out / f"{name}_panel.png"
        cv2.imwrite(str(path), panel(image, alpha[0], fg[0]))
        coverage = float((alpha[0] > 0.5).mean())
        regions = region_means(name, alpha[0])
        kept = "" if regions is None else f", mean alpha: person {regions[0]:.2f}, background {regions[1]:.2f}"
        print(f"{name}: {image.shape[1]}x{image.shape[0]}, alpha > 0.5 on {coverage:.1%} of pixels{kept} -> {path}")
        if args.boxes:
            cv2.imwrite(str(out / f"{name}_boxes.png"), draw_regions(name, image))


if __name__ == "__main__":
    main()
