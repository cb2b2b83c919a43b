"""Look at the refinement at the hairline of a synthetic 4K portrait with exact ground truth.

    python scripts/hairline_check.py [--seed 11] [--out hairline.png]

Renders a 3840x2160 synthetic portrait, stands in for the network with its true alpha reduced to
the engine's working resolution (1365x768), brings it back to 4K by bilinear and by guided
upsampling, estimates the foreground, prints errors against the truth, and writes a crop at the
densest hairline: [photo | true alpha | bilinear | guided] over [true comp on green | alpha x I
on green | estimated F on green | |guided - true| x 4].
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from pomagan_post.engine import working_shape
from pomagan_post.metrics import gradient_error
from pomagan_post.refine import bilinear_upsample, estimate_foreground, guided_upsample
from pomagan_train.data.synthetic import render_portrait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", default="hairline.png")
    args = parser.parse_args()
    width, height = 3840, 2160
    sample = render_portrait(np.random.default_rng(args.seed), width, height)
    image, fg = sample["image"], sample["fg"]
    alpha = sample["alpha"][..., 0] if sample["alpha"].ndim == 3 else sample["alpha"]
    h, w = working_shape(height, width, 768)
    alpha_low = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    started = time.perf_counter()
    guided = guided_upsample(alpha_low, image)
    guided_s = time.perf_counter() - started
    bilinear = bilinear_upsample(alpha_low, image)
    started = time.perf_counter()
    estimate = estimate_foreground(image, guided)
    fg_s = time.perf_counter() - started
    print(f"working resolution {w}x{h}; guided upsample {guided_s * 1e3:.0f} ms, foreground {fg_s:.1f} s")
    for name, pred in (("bilinear", bilinear), ("guided", guided)):
        print(f"{name:8s} alpha MSE x1e3 {1e3 * np.mean((pred - alpha) ** 2):.3f}, "
              f"Grad/1e3 {gradient_error(pred, alpha) / 1e3:.2f}")
    true = fg * alpha[..., None]
    premul_est, premul_mul = estimate * guided[..., None], image * guided[..., None]
    print(f"premultiplied foreground MSE x1e3: estimated F {1e3 * np.mean((premul_est - true) ** 2):.4f}, "
          f"alpha x I {1e3 * np.mean((premul_mul - true) ** 2):.4f}")

    fractional = ((alpha > 0.05) & (alpha < 0.95)).astype(np.float32)
    cy, cx = np.unravel_index(np.argmax(cv2.boxFilter(fractional, -1, (400, 300))), alpha.shape)
    y0, x0 = max(0, cy - 150), max(0, cx - 200)

    def crop(x: np.ndarray) -> np.ndarray:
        return x[y0 : y0 + 300, x0 : x0 + 400]

    green = np.array([0.0, 0.7, 0.2], np.float32)

    def on_green(premul: np.ndarray, a: np.ndarray) -> np.ndarray:
        return premul + (1 - a[..., None]) * green

    def grey(m: np.ndarray) -> np.ndarray:
        return np.repeat(m[..., None], 3, axis=2)

    top = [crop(image), crop(grey(alpha)), crop(grey(bilinear)), crop(grey(guided))]
    bottom = [crop(on_green(true, alpha)), crop(on_green(premul_mul, guided)),
              crop(on_green(premul_est, guided)), crop(grey(np.abs(guided - alpha) * 4))]
    sheet = np.concatenate([np.concatenate(top, 1), np.concatenate(bottom, 1)], 0)
    cv2.imwrite(args.out, (np.clip(sheet, 0, 1)[..., ::-1] * 255 + 0.5).astype(np.uint8))
    print(f"crop at x={x0}, y={y0} -> {args.out}")


if __name__ == "__main__":
    main()
