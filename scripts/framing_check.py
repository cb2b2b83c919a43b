"""How much the matte of a real photograph changes when the frame is cropped by a few pixels.

    python scripts/framing_check.py [--weights CKPT] [--tta none|flip] [--crops 4,8,16,24]

The same photographs as ``real_photo_check.py``. Each is cropped by N pixels at one side
(left, right, top, bottom: what a reframe, a stabilise or a push-in does between two frames),
matted, and compared with the uncropped photo's matte over the pixels both still show. Reports,
per photo, the share of those pixels whose alpha moves by more than 0.5 (a part of the person
lost or a piece of background gained), averaged over the crops and at the worst one; and the
mean alpha in ``real_photo_check``'s boxes (certainly person, certainly background) over the
uncropped photo and every crop, on average and at the worst framing: one photo's matte can flip
with a few pixels of framing, so a candidate is better judged on all of them. A model
that understood the picture would score near 0: the crop takes away a few pixels at the edge,
not the person. The model card quotes these numbers.
"""

from __future__ import annotations

import argparse

import numpy as np
from real_photo_check import real_photos, region_means

import pomagan_post
from pomagan_post.engine import TTA_MODES

SIDES = ("left", "right", "top", "bottom")


def crop_list(text: str) -> list[int]:
    """``"4,8,16"`` -> [4, 8, 16]: pixels to cut, each 1 to 128."""
    try:
        crops = [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"crops must be whole numbers of pixels, comma-separated, got {text!r}")
    if not all(1 <= n <= 128 for n in crops):
        raise argparse.ArgumentTypeError(f"each crop must be 1 to 128 pixels, got {text!r}")
    return crops


def cropped(image: np.ndarray, side: str, n: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """The image with ``n`` pixels cut from ``side``, and where it sits in the original."""
    height, width = image.shape[:2]
    rows, cols = slice(0, height), slice(0, width)
    if side == "left":
        cols = slice(n, width)
    elif side == "right":
        cols = slice(0, width - n)
    elif side == "top":
        rows = slice(n, height)
    else:
        rows = slice(0, height - n)
    return image[rows, cols], (rows, cols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="checkpoint (default: the bundled one)")
    parser.add_argument("--tta", choices=TTA_MODES, default=TTA_MODES[0])
    parser.add_argument("--crops", type=crop_list, default="4,8,16,24", help="pixels cut, comma-separated")
    args = parser.parse_args()
    crops = args.crops
    engine = pomagan_post.Engine(pomagan_post.load_checkpoint(args.weights), device="cpu", tta=args.tta)
    print(f"pixels whose alpha moves by more than 0.5 when the photo is cut by {','.join(map(str, crops))} pixels "
          f"at each side ({len(crops) * len(SIDES)} crops), against the uncropped photo's matte:")
    for name, image in real_photos().items():
        whole = engine.matte(image[None], "srgb", need_fg=False)[0][0]
        shares = {}
        boxes = [region_means(name, whole)]
        for side in SIDES:
            for n in crops:
                part, (rows, cols) = cropped(image, side, n)
                alpha = engine.matte(part[None], "srgb", need_fg=False)[0][0]
                shares[f"{side} {n}"] = float((np.abs(alpha - whole[rows, cols]) > 0.5).mean())
                in_place = np.full(whole.shape, np.nan, np.float32)
                in_place[rows, cols] = alpha
                boxes.append(region_means(name, in_place))
        worst = max(shares, key=shares.get)
        print(f"  {name} ({image.shape[1]}x{image.shape[0]}): {100 * np.mean(list(shares.values())):.1f} % "
              f"on average, {100 * shares[worst]:.1f} % at the worst ({worst} pixels); "
              f"alpha > 0.5 on {100 * (whole > 0.5).mean():.1f} % of the uncropped photo")
        if boxes[0] is not None:
            person, background = np.array(boxes).T
            print(f"    mean alpha in the boxes over the {len(boxes)} framings: person {person.mean():.2f} "
                  f"(lowest {person.min():.2f}), background {background.mean():.2f} (highest {background.max():.2f})")


if __name__ == "__main__":
    main()
