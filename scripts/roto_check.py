"""Score ``render --roto`` on the model card's test set: the alpha network fed rough rotos.

    python scripts/roto_check.py [--n 200] [--seed 1] [--rows on-edge,polygon-2,...]

The test set (``synthetic:200``, split test, seed 1, 320x192, the bundled model's working size)
has exact mattes, so rotos as an artist might draw them are made from each frame's true shape
(``opening(alpha >= 0.5)``, what the segmentation network is trained to give) and fed to the
alpha network as ``render --roto`` feeds them (hard at 0.5, in place of the segmentation
network's guess). Rows:

- ``model``: the bundled model alone (render's default; the model card's table);
- ``on-edge``: the true shape;
- ``polygon-E``: its outline simplified to a polygon (points at most E working pixels off it,
  OpenCV's ``approxPolyDP``): a roto drawn with few points;
- ``loose-K`` / ``tight-K``: the shape grown / shrunk by K working pixels (a roto drawn outside /
  inside the edge); ``shifted-K``: moved K pixels sideways (a track that slipped);
- ``feather-S``: blurred (Gaussian, sigma S working pixels), then made hard at 0.5 as render does;
- ``feather-S-soft``: the same blur fed as it is, as render does not (why it makes it hard);
- ``garbage-K``: the loose shape as ``--garbage-matte`` (the model's own matte multiplied by it),
  for comparison.

One working pixel is 5.6 pixels of a 1080p plate (the network sees it 192 pixels high). Prints
MSE x1e3, MAE x1e3, SAD /1e3, Grad and Conn per row (~30 s a row on two CPU cores). Needs the
training package: ``pip install -e ".[train]"``.
"""

from __future__ import annotations

import argparse
from typing import Callable

import cv2
import numpy as np
import torch

import pomagan_post
from pomagan_train.data import build_dataset, seg_from_alpha
from pomagan_train.evaluate import evaluate, results_table

SIZE = (320, 192)


def grown(shape: np.ndarray, pixels: int) -> np.ndarray:
    """``shape`` grown (``pixels`` > 0) or shrunk (< 0) by a disc of that radius."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(pixels) + 1, 2 * abs(pixels) + 1))
    return (cv2.dilate if pixels > 0 else cv2.erode)(shape.astype(np.uint8), disc).astype(np.float32)


def polygon(shape: np.ndarray, tolerance: float) -> np.ndarray:
    """``shape``'s outlines simplified to polygons within ``tolerance`` pixels, filled."""
    outlines, _ = cv2.findContours(shape.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    drawn = np.zeros(shape.shape, np.uint8)
    cv2.fillPoly(drawn, [cv2.approxPolyDP(c, tolerance, True) for c in outlines if cv2.contourArea(c) > 4], 1)
    return drawn.astype(np.float32)


def feathered(shape: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(shape.astype(np.float32), (0, 0), sigma)


def hard(roto: np.ndarray) -> np.ndarray:
    return (roto >= 0.5).astype(np.float32)  # as pomagan_post.renderer.Roto reads a roto


ROTOS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "on-edge": lambda s: s,
    "polygon-2": lambda s: polygon(s, 2),
    "polygon-4": lambda s: polygon(s, 4),
    "loose-2": lambda s: grown(s, 2),
    "loose-4": lambda s: grown(s, 4),
    "tight-2": lambda s: grown(s, -2),
    "tight-4": lambda s: grown(s, -4),
    "shifted-2": lambda s: np.roll(s, 2, axis=1),
    "feather-2": lambda s: hard(feathered(s, 2)),
    "feather-4": lambda s: hard(feathered(s, 4)),
    "feather-4-soft": lambda s: feathered(s, 4),
}
GARBAGE = {"garbage-8": 8, "garbage-16": 16}


class RotoAlpha:
    """Predictor: the alpha network fed each frame's roto (made from its true matte)."""

    uses_truth = True

    def __init__(self, engine: pomagan_post.Engine, draw: Callable[[np.ndarray], np.ndarray]) -> None:
        self.engine, self.draw = engine, draw

    def drawn(self, truth: np.ndarray) -> np.ndarray:
        """[N, H, W] true mattes -> the rotos drawn from their true shapes."""
        shapes = seg_from_alpha(torch.as_tensor(np.asarray(truth, np.float32))).numpy().reshape(np.shape(truth))
        return np.stack([self.draw(s) for s in shapes])

    def __call__(self, frames: np.ndarray, truth: np.ndarray) -> np.ndarray:
        return self.engine.predict_alpha(np.asarray(frames, np.float32), seg=self.drawn(truth))


class GarbageAlpha(RotoAlpha):
    """Predictor: the model's own matte multiplied by the frame's loose shape (--garbage-matte)."""

    def __call__(self, frames: np.ndarray, truth: np.ndarray) -> np.ndarray:
        return self.engine.predict_alpha(np.asarray(frames, np.float32)) * self.drawn(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="test frames (default: the model card's 200)")
    parser.add_argument("--seed", type=int, default=1, help="test set seed (default: the model card's 1)")
    parser.add_argument("--rows", default=None, help="comma-separated rows to score (default: all)")
    parser.add_argument("--weights", default=None, help="checkpoint (default: the bundled one)")
    args = parser.parse_args()
    names = ["model", *ROTOS, *GARBAGE]
    wanted = names if args.rows is None else [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        parser.error(f"unknown rows {', '.join(unknown)}; use {', '.join(names)}")
    engine = pomagan_post.Engine(pomagan_post.load_checkpoint(args.weights), device="cpu", batch_size=4)
    data = build_dataset(f"synthetic:{args.n}", SIZE, split="test", seed=args.seed, augment=False)
    results = {}
    for name in wanted:
        if name == "model":
            predictor = engine.predict_alpha
        elif name in ROTOS:
            predictor = RotoAlpha(engine, ROTOS[name])
        else:
            predictor = GarbageAlpha(engine, lambda s, k=GARBAGE[name]: grown(s, k))
        results[name] = evaluate(predictor, data, batch_size=4, desc=name)
    print(results_table(results, fmt="markdown"))


if __name__ == "__main__":
    main()
