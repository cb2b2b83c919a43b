"""How much the matte flickers from frame to frame, on the bundled example clip.

``examples/astronaut_pan.mp4`` is a push-in and pan over one still photograph
(``examples/make_examples.py``), so the true matte, seen in the photograph's own coordinates,
never changes. This renders the clip's alpha, maps every frame's matte back onto the
photograph (the inverse of the clip's crop and resize) and measures, between consecutive
frames where both see the photo, the mean absolute change and the share of pixels that change
by more than 0.1. The same round trip applied to one fixed matte gives what resampling alone
changes (the floor). The model card quotes these numbers.

``--known K`` also renders K short synthetic clips whose true matte is known (a generated
portrait whose layer moves and bends while the background moves on its own, with sensor noise)
and scores the matte against the truth with each frame on its own and steadied by
``--temporal`` (default 2 there): MSE over the frames, MSE in the soft edge (true alpha
strictly between 0.02 and 0.98: hair, motion blur), and the flicker the truth does not have
(mean |change of the matte - change of the true matte| between consecutive frames).

    python scripts/temporal_check.py [--weights CKPT] [--tta flip] [--temporal N] [--known 8] [--device cpu]

Needs scikit-image (the photograph) and the training package (the synthetic portraits):
``pip install -e ".[train]"``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from make_examples import SIZE, pan_windows, photograph  # noqa: E402

from pomagan_post.io.video import VideoSource  # noqa: E402
from pomagan_post.renderer import render  # noqa: E402
from pomagan_post.temporal import TemporalSteady  # noqa: E402


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


def known_clip(index: int, width: int = 320, height: int = 192, length: int = 12
               ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Synthetic clip ``index`` (sRGB frames, true mattes): a portrait from the training
    package's generator (test seed stream) whose layer drifts by up to 6 pixels a frame and
    bends (a smooth displacement of up to 4 pixels that swings back and forth), over a
    background drifting on its own (a photograph for odd clips), plus sensor noise."""
    from pomagan_train.data.synthetic import builtin_backgrounds, load_background, render_portrait

    rng = np.random.default_rng([20_261_128, index])
    photos = builtin_backgrounds()
    photo = load_background(photos[index % len(photos)]) if index % 2 and photos else None
    mx, my = 30, 15  # margins the motion moves into
    big = (width + 2 * mx, height + 2 * my)
    sample = render_portrait(rng, big[0], big[1], photo, (0.3, 0.1))
    fg, bg = sample["fg"], sample["bg"]
    alpha = sample["alpha"].reshape(big[1], big[0])
    person_speed, background_speed = rng.uniform(-6, 6, 2), rng.uniform(-4, 4, 2)
    gx, gy = np.meshgrid(np.arange(big[0], dtype=np.float32), np.arange(big[1], dtype=np.float32))
    bend = []
    for _ in range(2):
        field = cv2.GaussianBlur(rng.normal(0, 1, (big[1], big[0])).astype(np.float32), (0, 0), 25)
        bend.append(field * 4 / (np.abs(field).max() + 1e-6))
    frames, truth = [], []
    for t in range(length):
        swing = np.float32(np.sin(t / 2))
        bx, by = gx + bend[0] * swing, gy + bend[1] * swing
        layer = cv2.remap(fg, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cover = cv2.remap(alpha, bx, by, cv2.INTER_LINEAR)
        px, py = person_speed * t * np.float32([1 + 0.2 * np.sin(t), 1])
        shift = lambda dx, dy: np.float32([[1, 0, dx], [0, 1, dy]])  # noqa: E731
        crop = (slice(my, my + height), slice(mx, mx + width))
        layer = cv2.warpAffine(layer, shift(px, py), big, borderMode=cv2.BORDER_REFLECT)[crop]
        cover = cv2.warpAffine(cover, shift(px, py), big)[crop]
        back = cv2.warpAffine(bg, shift(*(background_speed * t)), big, borderMode=cv2.BORDER_REFLECT)[crop]
        image = layer * cover[..., None] + back * (1 - cover[..., None])
        frames.append(np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1).astype(np.float32))
        truth.append(cover.astype(np.float32))
    return frames, truth


def known_scores(mattes: list[np.ndarray], truth: list[np.ndarray]) -> tuple[float, float, float]:
    """(MSE x1e3, MSE x1e3 in the soft edge, flicker beyond the truth's own change /255)."""
    mse = np.mean([np.square(m - g).mean() for m, g in zip(mattes, truth)]) * 1e3
    edge = np.mean([np.square(m - g)[(g > 0.02) & (g < 0.98)].mean() for m, g in zip(mattes, truth)]) * 1e3
    flicker = np.mean([np.abs((mattes[i] - mattes[i - 1]) - (truth[i] - truth[i - 1])).mean()
                       for i in range(1, len(mattes))]) * 255
    return float(mse), float(edge), float(flicker)


def known_check(count: int, radius: int, weights: str | None, tta: str, device: str) -> None:
    from pomagan_post import Engine, load_checkpoint

    engine = Engine(load_checkpoint(weights), device=device, tta=tta)
    rows: dict[str, list[tuple[float, float, float]]] = {"own": [], "steadied": []}
    seconds = 0.0
    for index in range(count):
        frames, truth = known_clip(index)
        own, _ = engine.matte(np.stack(frames), "srgb", need_fg=False)
        steady = TemporalSteady(radius)
        started = time.perf_counter()
        for number, (frame, matte) in enumerate(zip(frames, own)):
            steady.push(number, frame, matte, frame)
        steadied = [alpha for _, _, alpha in steady.flush()]
        seconds += time.perf_counter() - started
        rows["own"].append(known_scores(list(own), truth))
        rows["steadied"].append(known_scores(steadied, truth))
    print(f"{count} synthetic clips with known mattes, 12 frames of 320x192 each, tta {tta}:")
    for name, label in (("own", "each frame on its own"), ("steadied", f"--temporal {radius}")):
        mse, edge, flicker = np.mean(rows[name], axis=0)
        print(f"  {label}: MSE x1e3 {mse:.2f}, in the soft edge {edge:.1f}, flicker beyond the "
              f"truth's {flicker:.2f}/255")
    print(f"  steadying took {1000 * seconds / (12 * count):.0f} ms a frame at 320x192")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="checkpoint (default: the bundled one)")
    parser.add_argument("--tta", default="none", choices=("none", "flip"))
    parser.add_argument("--temporal", type=int, default=0, help="render's --temporal (steadying radius)")
    parser.add_argument("--known", type=int, default=0, metavar="K",
                        help="also score K synthetic clips with known mattes (own vs steadied)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    photo = photograph()
    shape = photo.shape[:2]
    windows = pan_windows(*shape)
    with tempfile.TemporaryDirectory() as tmp:
        report = render(ROOT / "examples" / "astronaut_pan.mp4", output_dir=tmp, outputs=["alpha"],
                        weights=args.weights, tta=args.tta, temporal=args.temporal,
                        device=args.device)
        with VideoSource(report.outputs["alpha"]) as source:
            clip = [frame[..., 0] if frame.ndim == 3 else frame for _, frame in source]
    mattes = [to_photo(m, w, shape) for m, w in zip(clip, windows)]
    mean, big = changes(mattes, windows, shape)
    # The floor: frame 0's matte, unchanged, through every frame's crop and resize and back.
    fixed = [to_photo(cv2.resize(mattes[0][y0:y0 + ch, x0:x0 + cw], SIZE, interpolation=cv2.INTER_CUBIC),
                      (x0, y0, cw, ch), shape) for x0, y0, cw, ch in windows]
    floor_mean, floor_big = changes(fixed, windows, shape)
    print(f"examples/astronaut_pan.mp4, {len(clip)} frames, tta {args.tta}, temporal {args.temporal}: between consecutive frames "
          f"the matte changes by {255 * np.mean(mean):.2f}/255 on average (worst pair {255 * max(mean):.2f}); "
          f"{100 * np.mean(big):.2f} % of pixels change by more than 0.1 (worst pair {100 * max(big):.2f} %)")
    print(f"resampling alone (a fixed matte through the same crops): {255 * np.mean(floor_mean):.2f}/255, "
          f"{100 * np.mean(floor_big):.2f} % of pixels by more than 0.1")
    if args.known:
        known_check(args.known, args.temporal or 2, args.weights, args.tta, args.device)


if __name__ == "__main__":
    main()
