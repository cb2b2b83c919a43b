"""Training augmentation on numpy samples (HWC float32, sRGB-encoded, [0, 1]).

Order and what each step touches:

1. **Geometry, to every array** (``image``, ``alpha``, ``fg``, ``bg``; ``seg`` is derived later
   from the augmented alpha): scale to cover the training size times a random zoom in ``scale``
   (below 1 zooms out: the missing border is mirrored in every array alike, so ground truth stays
   consistent), random crop (``crop``; else centred) and horizontal flip (``flip``). With ``fg``
   and ``bg`` known the foreground is resampled premultiplied and the image recomposited from
   the resampled layers (:func:`resample`), so the composite identity stays exact.
2. **Colour jitter** (``jitter``: brightness, contrast, saturation, hue, gamma of that relative
   size). With ``fg`` and ``bg`` known they are jittered *independently* and the image is
   recomposited, so ``image == alpha * fg + (1 - alpha) * bg`` still holds (and foreground and
   background lighting no longer match perfectly, as in real composites). Otherwise the image.
3. **Defocus blur** (``blur``: (probability, max sigma as a fraction of the shorter side)):
   with ``fg``/``bg`` known, the premultiplied foreground and alpha are blurred with one kernel
   and the background with its own, then recomposited (exact). Otherwise image and alpha are
   blurred with the same kernel, which is again a valid matte of the blurred picture.
4. **Sensor noise and JPEG, image only** (``noise``: max Gaussian sigma; ``jpeg``: quality
   range, applied with probability ``jpeg_prob``). The ground truth stays the clean alpha /
   fg / bg: the network learns to see through camera and codec artefacts. After this step the
   composite identity no longer holds for the degraded ``image`` (by design).
"""

from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

from pomagan_post.errors import BadInputError

__all__ = ["Augment", "resample"]

Sample = dict[str, np.ndarray]


def _resize(x: np.ndarray, w: int, h: int) -> np.ndarray:
    if x.shape[1] == w and x.shape[0] == h:
        return x
    interp = cv2.INTER_AREA if w < x.shape[1] else cv2.INTER_LINEAR
    out = cv2.resize(x, (w, h), interpolation=interp)
    return out[..., None] if x.ndim == 3 and out.ndim == 2 else out


def _recomposite(s: Sample) -> None:
    a = s["alpha"]
    s["image"] = (a * s["fg"] + (1.0 - a) * s["bg"]).astype(np.float32)


def resample(sample: Sample, op: "Callable[[np.ndarray], np.ndarray]") -> Sample:
    """Apply one geometric ``op`` (resize/crop/pad/flip) to every array of a sample.

    With ``fg`` and ``bg`` known, the foreground is resampled premultiplied (``alpha * fg``, then
    divided by the resampled alpha, as compositing software does) and the image is recomposited
    from the resampled layers, so ``image == alpha * fg + (1 - alpha) * bg`` stays exact.
    """
    exact = "fg" in sample and "bg" in sample
    out: Sample = {}
    for key, v in sample.items():
        if exact and key == "image":
            continue
        out[key] = np.ascontiguousarray(op(np.asarray(v, np.float32)), np.float32)
    if exact:
        a = out["alpha"]
        pf = op(np.asarray(sample["alpha"] * sample["fg"], np.float32))
        out["alpha"] = a = np.clip(a, 0.0, 1.0)
        out["fg"] = np.where(a > 1e-4, pf / np.maximum(a, 1e-4), out["fg"]).clip(0.0, 1.0).astype(np.float32)
        out["bg"] = out["bg"].clip(0.0, 1.0)
        _recomposite(out)
    else:
        out = {k: v.clip(0.0, 1.0) for k, v in out.items()}
    return out


class Augment:
    """Random geometric + photometric augmentation to a fixed training size.

    Args:
        size: output ``(W, H)`` (paper: 1280 x 768).
        crop: random crop position (else centred).
        flip: random horizontal flip.
        scale: random zoom range relative to the cover fit.
        jitter: colour jitter strength (0 disables).
        noise: max Gaussian noise sigma on the image (0 disables).
        jpeg: JPEG quality range (None disables), applied with probability ``jpeg_prob``.
        blur: (probability, max sigma as a fraction of the shorter side) of a defocus blur.
        seed: seed of the generator used when ``__call__`` gets no ``rng``.
    """

    def __init__(self, size: tuple[int, int] = (1280, 768), crop: bool = True, flip: bool = True,
                 scale: tuple[float, float] = (0.75, 1.25), jitter: float = 0.1, noise: float = 0.02,
                 jpeg: tuple[int, int] | None = (50, 95), jpeg_prob: float = 0.5,
                 blur: tuple[float, float] = (0.15, 0.004), seed: int = 0) -> None:
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 8:
            raise BadInputError(f"augment size too small: {self.size}")
        if not 0 < scale[0] <= scale[1]:
            raise BadInputError(f"augment scale range must be 0 < lo <= hi, got {scale}")
        self.crop, self.flip = bool(crop), bool(flip)
        self.scale = (float(scale[0]), float(scale[1]))
        self.jitter, self.noise = float(jitter), float(noise)
        self.jpeg = None if jpeg is None else (int(jpeg[0]), int(jpeg[1]))
        self.jpeg_prob = float(jpeg_prob)
        self.blur = (float(blur[0]), float(blur[1]))
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return (f"Augment(size={self.size}, crop={self.crop}, flip={self.flip}, scale={self.scale}, "
                f"jitter={self.jitter}, noise={self.noise}, jpeg={self.jpeg}, blur={self.blur})")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = self._rng if rng is None else rng
        s = self.geometry(sample, rng)
        exact = "fg" in s and "bg" in s
        if self.jitter > 0:
            if exact:
                s["fg"] = self._jitter(s["fg"], rng)
                s["bg"] = self._jitter(s["bg"], rng)
                _recomposite(s)
            else:
                s["image"] = self._jitter(s["image"], rng)
        if self.blur[0] > 0 and rng.random() < self.blur[0]:
            sigma = rng.uniform(0.3, max(0.31, self.blur[1] * min(self.size)))
            self._defocus(s, sigma, exact)
        self._degrade(s, rng)
        return s

    # --- steps ------------------------------------------------------------------------------

    def geometry(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Zoom, crop and flip every array of ``sample`` identically."""
        w, h = self.size
        ih, iw = sample["alpha"].shape[:2]
        zoom = rng.uniform(*self.scale) if self.crop else 1.0
        s = max(w / iw, h / ih) * zoom
        nw, nh = max(1, int(round(iw * s))), max(1, int(round(ih * s)))
        pad_x, pad_y = max(0, w - nw), max(0, h - nh)
        if self.crop:
            px, py = int(rng.integers(0, pad_x + 1)), int(rng.integers(0, pad_y + 1))
        else:
            px, py = pad_x // 2, pad_y // 2
        cw, ch = nw + pad_x, nh + pad_y
        if self.crop:
            x0, y0 = int(rng.integers(0, cw - w + 1)), int(rng.integers(0, ch - h + 1))
        else:
            x0, y0 = (cw - w) // 2, (ch - h) // 2
        flip = self.flip and rng.random() < 0.5

        def op(v: np.ndarray) -> np.ndarray:
            x = _resize(v, nw, nh)
            if pad_x or pad_y:
                x = cv2.copyMakeBorder(x, py, pad_y - py, px, pad_x - px, cv2.BORDER_REFLECT_101)
                if v.ndim == 3 and x.ndim == 2:
                    x = x[..., None]
            x = x[y0:y0 + h, x0:x0 + w]
            return x[:, ::-1] if flip else x

        return resample(sample, op)

    def _jitter(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Brightness, contrast, saturation and hue as one affine colour matrix, then gamma."""
        j = self.jitter
        bright = rng.uniform(1 - j, 1 + j)
        contrast = rng.uniform(1 - j, 1 + j)
        sat = rng.uniform(1 - 2 * j, 1 + 2 * j)
        theta = rng.uniform(-j, j) * math.pi  # hue: rotate the chroma around the gray axis
        c, s_ = math.cos(theta), math.sin(theta)
        k = 1 / math.sqrt(3)
        hue = np.array([[c + (1 - c) / 3, (1 - c) / 3 - k * s_, (1 - c) / 3 + k * s_],
                        [(1 - c) / 3 + k * s_, c + (1 - c) / 3, (1 - c) / 3 - k * s_],
                        [(1 - c) / 3 - k * s_, (1 - c) / 3 + k * s_, c + (1 - c) / 3]])
        saturate = sat * np.eye(3) + (1 - sat) / 3 * np.ones((3, 3))
        mean = float(rgb.mean()) * bright
        # x -> hue @ saturate @ (contrast * bright * x + mean * (1 - contrast))
        hs = hue @ saturate
        m = np.hstack([hs * (contrast * bright), (hs @ np.full(3, mean * (1 - contrast)))[:, None]])
        x = cv2.transform(np.ascontiguousarray(rgb, np.float32), m.astype(np.float32))
        x = cv2.pow(np.clip(x, 0.0, 1.0), rng.uniform(1 - j, 1 + j))
        return np.clip(x, 0.0, 1.0).astype(np.float32)

    @staticmethod
    def _defocus(s: Sample, sigma: float, exact: bool) -> None:
        def g(x: np.ndarray) -> np.ndarray:
            y = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
            return y[..., None] if x.ndim == 3 and y.ndim == 2 else y

        a = s["alpha"]
        if exact:
            pa = g(a)
            pf = g(a * s["fg"])
            s["fg"] = np.where(pa > 1e-6, pf / np.maximum(pa, 1e-6), s["fg"]).clip(0, 1).astype(np.float32)
            s["alpha"] = pa.clip(0, 1).astype(np.float32)
            s["bg"] = g(s["bg"])
            _recomposite(s)
        else:
            s["image"] = g(s["image"])
            s["alpha"] = g(a).clip(0, 1).astype(np.float32)

    def _degrade(self, s: Sample, rng: np.random.Generator) -> None:
        img = s["image"]
        if self.noise > 0:
            sigma = rng.uniform(0, self.noise)
            # Luma-heavy noise with a little chroma, like a camera.
            h, w = img.shape[:2]
            luma = rng.standard_normal((h, w, 1), dtype=np.float32) * sigma
            chroma = rng.standard_normal(((h + 1) // 2, (w + 1) // 2, 3), dtype=np.float32) * (sigma * 0.4)
            chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_NEAREST)
            img = np.clip(img + luma + chroma, 0.0, 1.0)
        if self.jpeg is not None and rng.random() < self.jpeg_prob:
            q = int(rng.integers(self.jpeg[0], self.jpeg[1] + 1))
            u8 = np.clip(np.round(img[..., ::-1] * 255), 0, 255).astype(np.uint8)
            ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok:
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
        s["image"] = np.ascontiguousarray(img, np.float32)
