"""Procedural synthetic portraits with exact ground truth.

Every sample is built from layers (back hair, neck, torso and clothing, head and face, front hair,
strands, hats, glasses, semi-transparent fabric), each a coverage map and a colour, stacked with
the premultiplied *over* operator. The stack gives the premultiplied foreground ``P`` and the
alpha ``A`` exactly; ``F = P / A`` where ``A > 0`` (and a smooth colour extension elsewhere, so
``F`` is defined everywhere like the public matting sets). Motion blur filters ``P`` and ``A``
with the same kernel before the division, so the blurred ground truth stays exact.

**Compositing space.** The composite is computed in the *sRGB-encoded* values the model sees,
``image = alpha * fg + (1 - alpha) * bg``, exactly as the standard composition protocol does with
8-bit sRGB files. It therefore holds to float rounding on every returned sample.

Hair is many thin curved strands drawn anti-aliased (8-bit coverage) at sub-pixel opacities, so
the silhouette has fractional alpha (flyaways well outside the hair mass); the hair mass itself
has a soft, noisy edge. Backgrounds are procedural (gradients, noise, clutter, windows, bokeh,
textures, depth-of-field blur) or photos (any files, scaled up to cover and cropped).

Public API: :func:`render_portrait` (one sample, numpy), :class:`SyntheticPortraits` (a torch
``Dataset`` following the sample contract of :mod:`pomagan_train.data`), :func:`write_dataset`
(a dataset on disk, read back by :class:`pomagan_train.data.composition.SyntheticFolder`) and
:func:`builtin_backgrounds` (real photos shipped with scikit-image / matplotlib, if installed).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pomagan_post.errors import BadInputError
from pomagan_post.io.atomic import atomic_path

__all__ = [
    "GENERATOR_VERSION",
    "SyntheticPortraits",
    "render_portrait",
    "procedural_background",
    "cover_crop",
    "builtin_backgrounds",
    "collect_backgrounds",
    "load_background",
    "write_dataset",
]

GENERATOR_VERSION = "1.0"

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp")

# sRGB skin tones, light to dark (varied on every sample).
_SKIN = np.array([
    [0.97, 0.83, 0.72], [0.93, 0.76, 0.64], [0.89, 0.69, 0.55], [0.82, 0.62, 0.48],
    [0.76, 0.55, 0.40], [0.66, 0.46, 0.33], [0.55, 0.37, 0.26], [0.44, 0.29, 0.20],
    [0.34, 0.22, 0.15], [0.26, 0.17, 0.12],
], np.float32)
# sRGB hair colours: black, browns, auburn, blondes, greys, dyed.
_HAIR = np.array([
    [0.05, 0.04, 0.04], [0.10, 0.07, 0.05], [0.18, 0.12, 0.08], [0.28, 0.18, 0.11],
    [0.40, 0.26, 0.15], [0.50, 0.24, 0.12], [0.62, 0.47, 0.30], [0.80, 0.67, 0.45],
    [0.90, 0.82, 0.62], [0.55, 0.55, 0.55], [0.80, 0.80, 0.78], [0.45, 0.15, 0.40],
    [0.15, 0.30, 0.55],
], np.float32)
_HAIR_P = np.array([14, 14, 12, 10, 8, 6, 6, 5, 4, 5, 3, 1.5, 1.5], np.float64)


# --- small numeric helpers ------------------------------------------------------------------

def _noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3) -> np.ndarray:
    """Smooth value noise in about [0, 1], feature size ``cell`` pixels, ``octaves`` halvings."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
        cell = max(cell / 2.0, 1.0)
    return np.clip(out / total, 0.0, 1.0)


def _poly_mask(shape: tuple[int, int], polys: Sequence[np.ndarray]) -> np.ndarray:
    """Anti-aliased coverage (uint8) of filled polygons given in float pixel coordinates."""
    mask = np.zeros(shape, np.uint8)
    pts = [np.round(np.asarray(p, np.float64) * 16).astype(np.int32) for p in polys]
    cv2.fillPoly(mask, pts, 255, lineType=cv2.LINE_AA, shift=4)
    return mask


def _ellipse_pts(cx: float, cy: float, rx: float, ry: float, rot: float, t: np.ndarray) -> np.ndarray:
    c, s = math.cos(rot), math.sin(rot)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], -1)


def _rot(pts: np.ndarray, cx: float, cy: float, rot: float) -> np.ndarray:
    c, s = math.cos(rot), math.sin(rot)
    x, y = pts[..., 0] - cx, pts[..., 1] - cy
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], -1)


def _jitter_colour(rng: np.random.Generator, rgb: np.ndarray, amount: float) -> np.ndarray:
    return np.clip(rgb * rng.uniform(1 - amount, 1 + amount, 3).astype(np.float32)
                   * rng.uniform(1 - amount, 1 + amount), 0.0, 1.0).astype(np.float32)


def _random_colour(rng: np.random.Generator, sat: tuple[float, float] = (0.1, 0.9),
                   val: tuple[float, float] = (0.1, 0.95)) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]],
                   np.float32)
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255
    return rgb


def _shade(mask: np.ndarray, radius: float, light: "_Light", bulge: float = 1.0) -> np.ndarray:
    """Lambert + rim shading of a rounded shape (pseudo normals from its distance transform)."""
    inside = (mask > 127).astype(np.uint8)
    if not inside.any():
        return np.ones(mask.shape, np.float32)
    # Work at reduced resolution: shading is smooth.
    h, w = mask.shape
    f = max(1, int(min(h, w) / 192))
    small = cv2.resize(inside, (w // f, h // f), interpolation=cv2.INTER_NEAREST) if f > 1 else inside
    d = cv2.distanceTransform(small, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * f
    r = max(radius, 1.0)
    t = np.clip(d / r, 0.0, 1.0)
    height = np.sqrt(1.0 - (1.0 - t) ** 2) * r * bulge
    # Smooth the ridge lines of the distance transform (they would show as radial streaks).
    height = cv2.GaussianBlur(height, (0, 0), max(1.0, r / f * 0.15))
    gy, gx = np.gradient(height)
    gx, gy = gx / f, gy / f
    nz = np.ones_like(gx)
    norm = np.sqrt(gx * gx + gy * gy + nz)
    nx, ny, nz = -gx / norm, -gy / norm, nz / norm
    lx, ly, lz = light.direction
    diffuse = np.maximum(nx * lx + ny * ly + nz * lz, 0.0)
    shade = light.ambient + light.diffuse * diffuse
    if light.rim > 0:
        rx, ry = light.rim_dir
        rim = np.maximum(nx * rx + ny * ry, 0.0) * (1.0 - nz) ** 1.5
        shade = shade + light.rim * rim
    if f > 1:
        shade = cv2.resize(shade.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return shade.astype(np.float32)


class _Light:
    """One sample's lighting: key direction, ambient, rim light and colour casts."""

    def __init__(self, rng: np.random.Generator) -> None:
        az = rng.uniform(-math.pi, math.pi)
        elev = rng.uniform(0.15, 0.9)
        self.direction = (math.cos(az) * math.cos(elev), math.sin(az) * math.cos(elev) * 0.7 - 0.3,
                          math.sin(elev))
        n = math.sqrt(sum(v * v for v in self.direction))
        self.direction = tuple(v / n for v in self.direction)
        self.ambient = rng.uniform(0.35, 0.7)
        self.diffuse = rng.uniform(0.35, 0.8)
        self.rim = rng.uniform(0.3, 1.2) if rng.random() < 0.35 else 0.0
        ra = rng.uniform(-math.pi, math.pi)
        self.rim_dir = (math.cos(ra), math.sin(ra))
        warm = rng.uniform(-0.12, 0.12)
        self.tint = np.array([1 + warm, 1.0, 1 - warm], np.float32) * rng.uniform(0.8, 1.15)
        if rng.random() < 0.15:  # coloured stage light
            self.tint = self.tint * (0.6 + 0.6 * _random_colour(rng, (0.3, 0.8), (0.8, 1.0)))
        self.rim_colour = _jitter_colour(rng, np.ones(3, np.float32), 0.2)
        if rng.random() < 0.08:  # backlit: a dark subject with a bright rim (window, sun)
            self.ambient, self.diffuse = rng.uniform(0.12, 0.3), rng.uniform(0.1, 0.3)
            self.rim = rng.uniform(0.8, 1.6)
        self.specular = rng.uniform(0.0, 0.35)


class _Stack:
    """Premultiplied layer stack: ``P`` [H, W, 3] and ``A`` [H, W]."""

    def __init__(self, h: int, w: int) -> None:
        self.P = np.zeros((h, w, 3), np.float32)
        self.A = np.zeros((h, w), np.float32)

    def over(self, cov: np.ndarray, colour: np.ndarray | Sequence[float], x0: int = 0, y0: int = 0) -> None:
        """Put a layer over the stack: coverage [h, w] in [0, 1] placed at (x0, y0) (a crop of
        the frame, or the whole frame) and its colour ([h, w, 3] like ``cov``, or one [3])."""
        a = np.asarray(cov, np.float32)
        # Only the bounding box of the layer's non-zero coverage is touched.
        bx, by, bw, bh = cv2.boundingRect((a > 0).view(np.uint8) if a.dtype == np.bool_ else
                                          (a > 0).astype(np.uint8))
        if bw == 0 or bh == 0:
            return
        a = a[by:by + bh, bx:bx + bw]
        col = np.asarray(colour, np.float32)
        if col.ndim == 3:
            col = col[by:by + bh, bx:bx + bw]
        col = np.clip(col, 0.0, 1.0)
        X, Y = x0 + bx, y0 + by
        P = self.P[Y:Y + bh, X:X + bw]
        A = self.A[Y:Y + bh, X:X + bw]
        keep = 1.0 - a
        P *= keep[..., None]
        P += a[..., None] * col
        A *= keep
        A += a

    def put(self, other: "_Stack", x0: int, y0: int) -> None:
        """Put a whole premultiplied stack (a region at (x0, y0)) over this one."""
        h, w = other.A.shape
        P, A = self.P[y0:y0 + h, x0:x0 + w], self.A[y0:y0 + h, x0:x0 + w]
        P *= (1.0 - other.A)[..., None]
        P += other.P
        A *= 1.0 - other.A
        A += other.A


# --- strands --------------------------------------------------------------------------------

def _strands(rng: np.random.Generator, roots: np.ndarray, angles: np.ndarray, length: np.ndarray,
             segments: int, gravity: float, curl: float, wave: float) -> np.ndarray:
    """Integrate curved strands: [N, 2] roots and start angles -> [N, segments + 1, 2] points.

    Each step turns towards straight down by ``gravity``, plus random curvature ``curl`` and a
    sinusoidal wave of amplitude ``wave`` (curly hair).
    """
    n = len(roots)
    pts = np.empty((n, segments + 1, 2), np.float64)
    pts[:, 0] = roots
    a = angles.astype(np.float64).copy()
    step = length / segments
    k = rng.normal(0.0, curl, n)
    freq = rng.uniform(0.6, 1.6, n)
    phase = rng.uniform(0, 2 * math.pi, n)
    for i in range(segments):
        pts[:, i + 1, 0] = pts[:, i, 0] + step * np.cos(a)
        pts[:, i + 1, 1] = pts[:, i, 1] + step * np.sin(a)
        down = math.pi / 2
        diff = (down - a + math.pi) % (2 * math.pi) - math.pi
        a = a + gravity * diff + k + wave * np.sin(freq * i + phase) + rng.normal(0, curl * 0.5, n)
    return pts


def _draw_strands(shape: tuple[int, int], pts: np.ndarray, opacity: float,
                  thickness: int = 1) -> np.ndarray:
    """Anti-aliased coverage (float32 [0, 1]) of strands drawn with one opacity."""
    mask = np.zeros(shape, np.uint8)
    if len(pts):
        ipts = list(np.round(pts * 16).astype(np.int32))
        cv2.polylines(mask, ipts, False, int(round(255 * opacity)), thickness, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) * (1.0 / 255.0)


def _sample_in_mask(rng: np.random.Generator, mask: np.ndarray, n: int) -> np.ndarray:
    ys, xs = np.nonzero(mask > 200)
    if len(xs) == 0 or n <= 0:
        return np.zeros((0, 2))
    idx = rng.integers(0, len(xs), n)
    return np.stack([xs[idx] + rng.random(n), ys[idx] + rng.random(n)], -1)


# --- backgrounds ----------------------------------------------------------------------------

def procedural_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A procedural background: gradient, noise, clutter, windows, bokeh, textures, blur.

    Returns float32 sRGB [H, W, 3] in [0, 1].
    """
    h, w = height, width
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = _random_colour(rng, (0.0, 0.7)), _random_colour(rng, (0.0, 0.7))
    ang = rng.uniform(0, 2 * math.pi)
    g = (xs * math.cos(ang) + ys * math.sin(ang))
    g = (g - g.min()) / max(float(g.max() - g.min()), 1.0)
    if rng.random() < 0.3:  # radial
        g = np.sqrt(((xs - rng.uniform(0, w)) / w) ** 2 + ((ys - rng.uniform(0, h)) / h) ** 2)
        g = np.clip(g / max(float(g.max()), 1e-3), 0, 1)
    bg = c0 * (1 - g[..., None]) + c1 * g[..., None]
    size = max(h, w)
    # Large soft colour noise (walls, foliage, sky).
    amt = rng.uniform(0.05, 0.5)
    for ch in range(3):
        bg[..., ch] *= 1 - amt + 2 * amt * _noise(rng, h, w, size * rng.uniform(0.05, 0.4), 3)
    kind = rng.random()
    if kind < 0.35:  # indoor clutter: furniture blocks, shelves, frames, lamps
        for _ in range(rng.integers(3, 14)):
            col = _random_colour(rng)
            x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
            bw, bh = rng.uniform(0.05, 0.5) * w, rng.uniform(0.05, 0.6) * h
            r = rng.random()
            if r < 0.5:
                cv2.rectangle(bg, (int(x0), int(y0)), (int(x0 + bw), int(y0 + bh)), col.tolist(), -1,
                              cv2.LINE_AA)
                if rng.random() < 0.4:  # frame or shelf edge
                    cv2.rectangle(bg, (int(x0), int(y0)), (int(x0 + bw), int(y0 + bh)),
                                  (col * 0.5).tolist(), max(1, int(size * 0.006)), cv2.LINE_AA)
            elif r < 0.8:
                cv2.ellipse(bg, (int(x0), int(y0)), (int(bw / 2), int(bh / 2)), rng.uniform(0, 180),
                            0, 360, col.tolist(), -1, cv2.LINE_AA)
            else:
                n = rng.integers(3, 7)
                pts = np.stack([x0 + rng.uniform(0, bw, n), y0 + rng.uniform(0, bh, n)], -1)
                cv2.fillPoly(bg, [pts.astype(np.int32)], col.tolist(), cv2.LINE_AA)
        for _ in range(rng.integers(0, 6)):  # thin lines: door frames, cables, shelves
            p0 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            if rng.random() < 0.5:
                p1 = (p0[0] + int(rng.uniform(-0.1, 0.1) * w), p0[1] + int(rng.uniform(0.3, 1) * h))
            else:
                p1 = (p0[0] + int(rng.uniform(0.3, 1) * w), p0[1] + int(rng.uniform(-0.1, 0.1) * h))
            cv2.line(bg, p0, p1, _random_colour(rng).tolist(), max(1, int(rng.uniform(0.002, 0.02) * size)),
                     cv2.LINE_AA)
    elif kind < 0.5:  # window grid / building / blinds
        bright = _random_colour(rng, (0.0, 0.3), (0.8, 1.0))
        nx, ny = rng.integers(1, 5), rng.integers(1, 4)
        x0, y0 = rng.uniform(-0.1, 0.5) * w, rng.uniform(-0.1, 0.4) * h
        cw, chh = rng.uniform(0.1, 0.35) * w, rng.uniform(0.15, 0.45) * h
        gap = rng.uniform(0.01, 0.05) * size
        for i in range(nx):
            for j in range(ny):
                p0 = (int(x0 + i * (cw + gap)), int(y0 + j * (chh + gap)))
                cv2.rectangle(bg, p0, (int(p0[0] + cw), int(p0[1] + chh)),
                              (bright * rng.uniform(0.85, 1.1)).tolist(), -1, cv2.LINE_AA)
        if rng.random() < 0.4:
            period = rng.uniform(0.01, 0.04) * size
            bg *= (0.75 + 0.25 * (np.sin(ys * 2 * math.pi / period) > 0))[..., None]
    elif kind < 0.62:  # texture: stripes / tiles / bricks
        period = rng.uniform(0.02, 0.2) * size
        a2 = rng.uniform(0, math.pi)
        u = xs * math.cos(a2) + ys * math.sin(a2)
        tex = 0.5 + 0.5 * np.sin(u * 2 * math.pi / period)
        if rng.random() < 0.5:
            v = -xs * math.sin(a2) + ys * math.cos(a2)
            tex = tex * (0.5 + 0.5 * np.sin(v * 2 * math.pi / (period * rng.uniform(0.5, 2))))
        c2 = _random_colour(rng)
        m = rng.uniform(0.2, 0.8)
        bg = bg * (1 - m * tex[..., None]) + c2 * (m * tex[..., None])
    # Foliage / speckle detail.
    if rng.random() < 0.3:
        fine = _noise(rng, h, w, size * rng.uniform(0.004, 0.02), 2)
        bg *= (1 - 0.4 + 0.8 * fine)[..., None]
    # Depth of field.
    if rng.random() < 0.6:
        sigma = rng.uniform(0.5, 0.012 * size + 1)
        bg = cv2.GaussianBlur(bg, (0, 0), sigma)
    # Bokeh: out-of-focus light discs.
    if rng.random() < 0.3:
        bokeh = np.zeros_like(bg)
        base = _random_colour(rng, (0.2, 0.8), (0.6, 1.0))
        for _ in range(rng.integers(5, 40)):
            r = int(rng.uniform(0.01, 0.06) * size) + 1
            col = _jitter_colour(rng, base, 0.4) * rng.uniform(0.2, 0.7)
            cv2.circle(bokeh, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), r, col.tolist(), -1,
                       cv2.LINE_AA)
        bg = 1 - (1 - bg) * (1 - cv2.GaussianBlur(bokeh, (0, 0), max(1.0, size * 0.003)))
    # Lighting falloff (vignette) and global exposure.
    if rng.random() < 0.5:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        v = 1 - rng.uniform(0.1, 0.6) * np.clip(((xs - cx) ** 2 + (ys - cy) ** 2) / (size * size), 0, 1)
        bg *= v[..., None]
    bg *= rng.uniform(0.6, 1.2)
    return np.clip(bg, 0.0, 1.0).astype(np.float32)


def load_background(path: str | os.PathLike[str]) -> np.ndarray:
    """A photo -> float32 sRGB [H, W, 3] in [0, 1] (EXR/HDR are linear: encoded to sRGB)."""
    from .composition import read_rgb

    return read_rgb(path)


def cover_crop(rng: np.random.Generator | None, image: np.ndarray, width: int, height: int,
               zoom: tuple[float, float] = (1.0, 1.0), flip: bool = False) -> np.ndarray:
    """Scale ``image`` up (or down) to cover ``width`` x ``height``, then crop.

    ``rng`` None: centred crop, no zoom, no flip (deterministic); otherwise random zoom in
    ``zoom`` (relative to the cover scale), random crop position and optional random flip.
    """
    ih, iw = image.shape[:2]
    s = max(width / iw, height / ih)
    if rng is not None:
        s *= rng.uniform(*zoom)
    nw, nh = max(width, int(math.ceil(iw * s))), max(height, int(math.ceil(ih * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (nw, nh), interpolation=interp) if (nw, nh) != (iw, ih) else image
    if rng is None:
        x0, y0 = (nw - width) // 2, (nh - height) // 2
    else:
        x0, y0 = int(rng.integers(0, nw - width + 1)), int(rng.integers(0, nh - height + 1))
    out = scaled[y0:y0 + height, x0:x0 + width]
    if rng is not None and flip and rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out, np.float32)


def _photo_background(rng: np.random.Generator, photo: np.ndarray, w: int, h: int) -> np.ndarray:
    bg = cover_crop(rng, photo, w, h, zoom=(1.0, 1.8), flip=True)
    if bg.ndim == 2 or (np.ptp(bg[..., 0] - bg[..., 1]) < 1e-3 and np.ptp(bg[..., 1] - bg[..., 2]) < 1e-3):
        bg = bg.reshape(h, w, -1)[..., :1] * (0.6 + 0.5 * _random_colour(rng, (0.1, 0.5), (0.7, 1.0)))
    if rng.random() < 0.5:  # depth of field
        bg = cv2.GaussianBlur(bg, (0, 0), rng.uniform(0.5, 0.01 * max(w, h) + 1))
    bg = bg * _jitter_colour(rng, np.ones(3, np.float32), 0.15)
    return np.clip(bg, 0.0, 1.0).astype(np.float32)


# Real photos that ship with installed packages and contain no people (never portraits:
# skimage's astronaut / camera and matplotlib's grace_hopper are excluded on purpose).
_SKIMAGE_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
                   "motorcycle_right.png", "hubble_deep_field.jpg", "ihc.png", "brick.png",
                   "grass.png", "gravel.png", "coins.png", "moon.png", "clock_motion.png",
                   "page.png", "text.png", "color.png", "retina.jpg", "cell.png")
_MPL_PHOTOS = ("Minduka_Present_Blue_Pack.png",)


def builtin_backgrounds() -> list[Path]:
    """Person-free photos shipped with scikit-image / matplotlib, where those are installed.

    Never downloads anything; returns an empty list when neither package is installed.
    """
    found: list[Path] = []
    try:
        import skimage

        root = Path(skimage.__file__).parent / "data"
        found += [root / n for n in _SKIMAGE_PHOTOS if (root / n).is_file()]
    except ImportError:
        pass
    try:
        import matplotlib

        root = Path(matplotlib.get_data_path()) / "sample_data"
        found += [root / n for n in _MPL_PHOTOS if (root / n).is_file()]
    except ImportError:
        pass
    return found


def collect_backgrounds(backgrounds: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
                        builtin: bool = False) -> list[Path]:
    """Background photo paths from a folder (recursive), a list of files/folders, or None.

    ``builtin`` adds :func:`builtin_backgrounds`. Raises ``BadInputError`` naming a path that
    does not exist or a folder with no images.
    """
    paths: list[Path] = []
    items: list[Any] = []
    if backgrounds is not None:
        items = [backgrounds] if isinstance(backgrounds, (str, os.PathLike)) else list(backgrounds)
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in _IMAGE_EXTS and q.is_file())
            if not found:
                raise BadInputError(f"background folder has no images: {p}")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            raise BadInputError(f"background path not found: {p}")
    if builtin:
        paths += builtin_backgrounds()
    return paths


# --- the person -----------------------------------------------------------------------------

def _clothing(rng: np.random.Generator, h: int, w: int, xs: np.ndarray, ys: np.ndarray,
              scale: float) -> np.ndarray:
    """A clothing texture [H, W, 3]: solid, stripes, plaid, knit noise, dots or a print."""
    c0 = _random_colour(rng, (0.0, 0.85), (0.08, 0.95))
    c1 = _jitter_colour(rng, _random_colour(rng, (0.0, 0.9), (0.1, 1.0)), 0.1)
    kind = rng.choice(6, p=[0.28, 0.2, 0.12, 0.15, 0.1, 0.15])
    period = scale * rng.uniform(0.04, 0.35)
    warp = _noise(rng, h, w, scale * 0.5, 2) * scale * rng.uniform(0.0, 0.25)
    ang = rng.choice([0.0, math.pi / 2, rng.uniform(0, math.pi)], p=[0.5, 0.3, 0.2])
    u = xs * math.cos(ang) + ys * math.sin(ang) + warp
    if kind == 0:
        tex = np.zeros((h, w), np.float32)
    elif kind == 1:  # stripes (anti-aliased square wave)
        duty = rng.uniform(-0.6, 0.6)
        tex = np.clip((np.sin(u * 2 * math.pi / period) - duty) * period * 0.3, 0, 1)
    elif kind == 2:  # plaid
        v = -xs * math.sin(ang) + ys * math.cos(ang) + warp
        t1 = np.clip(np.sin(u * 2 * math.pi / period) * period * 0.2, 0, 1)
        t2 = np.clip(np.sin(v * 2 * math.pi / period) * period * 0.2, 0, 1)
        tex = 0.5 * t1 + 0.5 * t2
    elif kind == 3:  # heather / knit noise
        tex = _noise(rng, h, w, max(1.5, scale * 0.01), 2)
        tex = np.clip((tex - 0.5) * 3 + 0.5, 0, 1)
        c1 = c0 * rng.uniform(0.5, 1.5)
    elif kind == 4:  # dots
        v = -xs * math.sin(ang) + ys * math.cos(ang)
        tex = np.clip((np.sin(u * 2 * math.pi / period) * np.sin(v * 2 * math.pi / period) - 0.5) * 4, 0, 1)
    else:  # print: blobs
        tex = _noise(rng, h, w, scale * rng.uniform(0.05, 0.2), 2)
        tex = np.clip((tex - rng.uniform(0.4, 0.6)) * 8, 0, 1)
    cloth = c0 * (1 - tex[..., None]) + np.clip(c1, 0, 1) * tex[..., None]
    # Fine weave.
    cloth *= (0.93 + 0.14 * _noise(rng, h, w, max(1.0, scale * 0.004), 1))[..., None]
    return cloth.astype(np.float32)


def _face_features(rng: np.random.Generator, col: np.ndarray, cx: float, cy: float, rx: float,
                   ry: float, tilt: float, yaw: float, skin: np.ndarray) -> None:
    """Draw eyes, brows, nose, mouth and cheeks into the head colour (coverage unchanged)."""
    def P(x: float, y: float) -> tuple[float, float]:
        p = _rot(np.array([cx + (x + yaw * 0.35) * rx, cy + y * ry]), cx, cy, tilt)
        return float(p[0]), float(p[1])

    def ip(p: tuple[float, float]) -> tuple[int, int]:
        return int(round(p[0] * 16)), int(round(p[1] * 16))

    lw = max(1, int(round(ry * 0.03)))
    dark = (skin * rng.uniform(0.25, 0.5)).tolist()
    # Cheeks / blush and under-eye shading.
    blush = np.zeros(col.shape[:2], np.float32)
    for sx in (-0.45, 0.45):
        c = P(sx, 0.2)
        cv2.ellipse(blush, ip(c), (int(rx * 0.25 * 16), int(ry * 0.15 * 16)), 0, 0, 360, 1.0, -1,
                    cv2.LINE_AA, shift=4)
    blush = cv2.GaussianBlur(blush, (0, 0), max(1.0, rx * 0.12))
    col += (blush * rng.uniform(0.0, 0.12))[..., None] * np.array([0.6, -0.2, -0.2], np.float32)
    eye_y = rng.uniform(-0.12, 0.05)
    ex = rng.uniform(0.3, 0.42)
    eye_w, eye_h = rx * rng.uniform(0.16, 0.24), ry * rng.uniform(0.05, 0.08)
    iris = _random_colour(rng, (0.2, 0.7), (0.1, 0.5))
    for side in (-1, 1):
        if abs(side * ex + yaw * 0.35) > 0.85:  # turned away
            continue
        e = P(side * ex, eye_y)
        ang = math.degrees(tilt)
        cv2.ellipse(col, ip(e), (int(eye_w * 16), int(eye_h * 16)), ang, 0, 360,
                    (0.9 * skin + 0.1).tolist(), -1, cv2.LINE_AA, shift=4)
        cv2.circle(col, ip(P(side * ex + yaw * 0.1, eye_y)), int(eye_h * 0.95 * 16), iris.tolist(), -1,
                   cv2.LINE_AA, shift=4)
        cv2.circle(col, ip(P(side * ex + yaw * 0.1, eye_y)), int(eye_h * 0.45 * 16), (0.03, 0.02, 0.02),
                   -1, cv2.LINE_AA, shift=4)
        cv2.ellipse(col, ip(e), (int(eye_w * 16), int(eye_h * 1.1 * 16)), ang, 180, 360, dark, lw,
                    cv2.LINE_AA, shift=4)
        # Brow.
        b0, b1 = P(side * (ex - 0.2), eye_y - 0.2), P(side * (ex + 0.22), eye_y - 0.22 + rng.uniform(-0.04, 0.04))
        bm = P(side * (ex + 0.02), eye_y - 0.28)
        brow = np.array([b0, bm, b1]) * 16
        cv2.polylines(col, [brow.astype(np.int32)], False, (skin * rng.uniform(0.15, 0.45)).tolist(),
                      max(1, int(ry * rng.uniform(0.03, 0.06))), cv2.LINE_AA, shift=4)
    # Nose: a soft shadow line and nostrils.
    n0, n1 = P(0.02 + yaw * 0.2, eye_y + 0.05), P(0.05 + yaw * 0.3, 0.33)
    dark_map = np.zeros(col.shape[:2], np.float32)
    cv2.line(dark_map, ip(n0), ip(n1), 1.0, max(1, int(rx * 0.08)), cv2.LINE_AA, shift=4)
    for side in (-1, 1):  # eye sockets
        cv2.circle(dark_map, ip(P(side * ex, eye_y - 0.02)), int(rx * 0.22 * 16), 0.6, -1, cv2.LINE_AA, shift=4)
    dark_map = cv2.GaussianBlur(dark_map, (0, 0), max(0.8, rx * 0.06))
    col *= (1.0 - rng.uniform(0.1, 0.3) * dark_map)[..., None]
    for side in (-1, 1):
        cv2.circle(col, ip(P(side * 0.09 + yaw * 0.3, 0.36)), max(1, int(rx * 0.025 * 16)),
                   (skin * 0.7).tolist(), -1, cv2.LINE_AA, shift=4)
    # Mouth.
    lip = np.clip(skin * np.array([1.0, 0.65, 0.65], np.float32) * rng.uniform(0.7, 1.0), 0, 1)
    if rng.random() < 0.15:
        lip = _random_colour(rng, (0.5, 0.9), (0.3, 0.8))
    my = rng.uniform(0.52, 0.62)
    mw = rng.uniform(0.2, 0.33)
    m = P(yaw * 0.3, my)
    cv2.ellipse(col, ip(m), (int(rx * mw * 16), int(ry * 0.05 * 16)), math.degrees(tilt), 0, 360,
                lip.tolist(), -1, cv2.LINE_AA, shift=4)
    cv2.ellipse(col, ip(m), (int(rx * mw * 16), int(ry * 0.012 * 16) + 1), math.degrees(tilt), 0, 360,
                (lip * 0.4).tolist(), -1, cv2.LINE_AA, shift=4)


def _bezier(p0: Sequence[float], p1: Sequence[float], p2: Sequence[float], n: int = 10) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    a, b, c = np.asarray(p0, float), np.asarray(p1, float), np.asarray(p2, float)
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t ** 2 * c


def _render_person(rng: np.random.Generator, stack: _Stack, w: int, h: int, light: _Light,
                   ry: float, cx: float, cy: float, xs: np.ndarray, ys: np.ndarray,
                   photo: np.ndarray | None = None, broad: float = 1.0) -> None:
    """Add one person to ``stack`` (a [h, w] region reaching the frame's bottom edge).

    ``ry`` is half the head height (crown to chin), ``(cx, cy)`` the head centre, in the
    region's pixel coordinates. ``photo`` (optional) lends real-photo texture to clothing.
    ``broad`` widens the shoulders (a close-up's bulky coat or suit, arms out; 1: as drawn).
    """
    shape = (h, w)
    rx = ry * rng.uniform(0.68, 0.82)
    tilt = rng.normal(0, 0.12)
    yaw = float(np.clip(rng.normal(0, 0.35), -0.8, 0.8))
    back_view = rng.random() < 0.06
    skin = _jitter_colour(rng, _SKIN[rng.integers(len(_SKIN))], 0.08)
    hair = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P / _HAIR_P.sum())]
    hair = _jitter_colour(rng, hair, 0.15)
    style = rng.choice(["short", "long", "curly", "bald", "bun"], p=[0.3, 0.38, 0.14, 0.08, 0.1])
    if back_view and style == "bald":
        style = "short"
    lt = light.tint

    # Geometry: skull (upper ellipse), jaw (narrower lower half) and chin.
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    jaw = rng.uniform(0.15, 0.4)
    hx = rx * np.cos(t) * np.where(np.sin(t) > 0, 1 - jaw * np.sin(t) ** 2, 1.0)
    hy = ry * np.sin(t) * np.where(np.sin(t) > 0, rng.uniform(1.0, 1.1), 1.0)
    head_pts = _rot(np.stack([cx + hx, cy + hy], -1), cx, cy, tilt)
    chin_y = cy + ry * 1.02
    neck_w = ry * rng.uniform(0.8, 1.05)
    shoulder_y = chin_y + ry * rng.uniform(0.12, 0.45)  # base of the neck
    body_turn = abs(rng.normal(0, 0.25))
    shoulder_w = ry * rng.uniform(2.9, 3.9) * math.cos(min(body_turn, 0.8)) * broad
    body_shift = rng.normal(0, rx * 0.25)
    bx = cx + body_shift

    # --- back hair (behind neck and torso) ---
    hair_len = 0.0
    mass_back = None
    if style in ("long", "curly"):
        hair_len = ry * (rng.uniform(1.2, 4.0) if style == "long" else rng.uniform(0.6, 1.6))
        spread = rx * (rng.uniform(1.05, 1.5) if style == "long" else rng.uniform(1.4, 2.0))
        tt = np.linspace(math.pi, 2 * math.pi, 40)
        top = _ellipse_pts(cx, cy - ry * 0.05, spread, ry * rng.uniform(1.08, 1.3), 0, tt)
        bottom_y = cy + hair_len
        wobble = lambda n: rng.normal(0, rx * 0.06, n)  # noqa: E731
        left = np.stack([np.linspace(cx - spread, cx - spread * rng.uniform(0.9, 1.25), 8) + wobble(8),
                         np.linspace(cy, bottom_y, 8)], -1)[::-1]
        right = np.stack([np.linspace(cx + spread, cx + spread * rng.uniform(0.9, 1.25), 8) + wobble(8),
                          np.linspace(cy, bottom_y, 8)], -1)
        tips = np.stack([np.linspace(cx + spread, cx - spread, 12),
                         bottom_y + rng.normal(0, ry * 0.12, 12)], -1)
        poly = np.concatenate([left, _rot(top, cx, cy, tilt), right, tips])
        mass_back = _poly_mask(shape, [poly])

    def hair_layer(mass: np.ndarray, n_strands: int, roots_from: np.ndarray, flow: str,
                   face: np.ndarray | None = None) -> None:
        """Hair mass with a soft noisy edge, strand texture and strands breaking the outline."""
        # Opaque inside; a ragged band of fractional coverage at the edge.
        soft = cv2.GaussianBlur(mass, (0, 0), max(0.6, ry * rng.uniform(0.01, 0.04))).astype(np.float32) / 255
        dens = _noise(rng, h, w, max(2.0, ry * 0.03), 2)
        cov = np.clip(soft + (dens - 0.5) * 4.0 * soft * (1 - soft), 0, 1)
        shade = _shade(mass, rx * 0.9, light)
        # Strand texture in colour: light and dark streaks following the flow.
        roots = _sample_in_mask(rng, roots_from, n_strands)
        if flow == "down":
            ang = rng.normal(math.pi / 2, 0.25, len(roots))
        else:  # away from a parting point on the crown
            px, py = cx + rng.uniform(-0.4, 0.4) * rx, cy - ry * 1.05
            ang = np.arctan2(roots[:, 1] - py + ry * 0.3, roots[:, 0] - px)
        wave = 0.35 if style == "curly" else rng.uniform(0.0, 0.08)
        length = rng.uniform(0.2, 0.7, len(roots)) * ry * (2.5 if style == "long" else 1.0)
        pts = _strands(rng, roots, ang, length, 10, 0.08, 0.04, wave)
        half = len(pts) // 2
        light_s = _draw_strands(shape, pts[:half], 0.9)
        dark_s = _draw_strands(shape, pts[half:], 0.9)
        base = hair * lt
        colour = base * (shade * (1 + 0.6 * light_s - 0.5 * dark_s))[..., None]
        sheen = np.clip(light_s * (shade - 0.8), 0, 1)
        colour = colour + (sheen * 0.3)[..., None] * light.rim_colour
        stack.over(cov, colour)
        # Strands crossing the silhouette: several opacity groups (sub-pixel widths), coverage
        # only where they leave the mass (inside it they are the texture above).
        edge = cv2.morphologyEx(mass, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        if face is not None:  # few strands from the hairline fall across the face
            keep = (cv2.dilate(face, np.ones((5, 5), np.uint8)) < 128) | (rng.random(face.shape) < 0.1)
            edge = edge * keep
        ys_, xs_ = np.nonzero(edge > 100)
        if len(xs_) == 0:
            return
        n_fly = int(rng.uniform(0.5, 2.0) * ry * (3 if style == "curly" else 1.5))
        pick = rng.integers(0, len(xs_), n_fly)
        r0 = np.stack([xs_[pick] + rng.random(n_fly), ys_[pick] + rng.random(n_fly)], -1)
        # Outward direction: from the mass centroid.
        m_ys, m_xs = np.nonzero(mass > 127)
        mcx, mcy = (m_xs.mean(), m_ys.mean()) if len(m_xs) else (cx, cy)
        out_ang = np.arctan2(r0[:, 1] - mcy, r0[:, 0] - mcx) + rng.normal(0, 0.6, n_fly)
        # Start a little inside the mass so strands grow out of it.
        r0 = r0 - np.stack([np.cos(out_ang), np.sin(out_ang)], -1) * ry * 0.05
        flen = rng.uniform(0.03, 0.35, n_fly) * ry
        grav = 0.04 if style != "curly" else 0.0
        fpts = _strands(rng, r0, out_ang, flen, 8, grav, 0.06, 0.5 if style == "curly" else 0.05)
        groups = rng.integers(0, 4, n_fly)
        for g, op in enumerate((0.15, 0.3, 0.55, 0.85)):
            cov_s = _draw_strands(shape, fpts[groups == g], op)
            tone = _jitter_colour(rng, base, 0.15) * (shade.mean() if shade.size else 1.0)
            if light.rim > 0:
                tone = np.clip(tone + 0.25 * light.rim * light.rim_colour, 0, 1)
            stack.over(cov_s, tone)

    if mass_back is not None:
        hair_layer(mass_back, int(ry * 8), mass_back, "down")

    # --- neck ---
    neck = np.array([[cx - neck_w / 2, cy + ry * 0.5], [cx + neck_w / 2, cy + ry * 0.5],
                     [bx + neck_w * 0.62, shoulder_y + ry * 0.3],
                     [bx + shoulder_w * 0.3, shoulder_y + ry * 2.4], [bx - shoulder_w * 0.3, shoulder_y + ry * 2.4],
                     [bx - neck_w * 0.62, shoulder_y + ry * 0.3]])
    neck_mask = _poly_mask(shape, [neck])
    neck_shade = _shade(neck_mask, neck_w * 0.5, light) * 0.8
    # Shadow under the chin.
    chin_shadow = np.clip(1 - np.maximum(0, 1 - np.abs(ys - chin_y) / (ry * 0.25)) * 0.35, 0, 1)
    stack.over(neck_mask.astype(np.float32) / 255, skin * lt * (neck_shade * chin_shadow)[..., None])

    # --- torso and clothing: trapezius slope, rounded deltoids, arms down to the frame edge ---
    bottom = h + ry * 3
    arm_out = ry * rng.uniform(0.05, 0.4)
    v_depth = ry * rng.uniform(0.1, 1.0) if rng.random() < 0.5 else ry * rng.uniform(0.02, 0.2)
    round_neck = rng.random() < 0.5
    sides = []
    for side in (-1, 1):
        drop = ry * rng.uniform(0.2, 0.5)
        nx_ = bx + side * neck_w * rng.uniform(0.45, 0.65)
        s_pt = (bx + side * shoulder_w / 2, shoulder_y + drop)
        trap = _bezier((nx_, shoulder_y - ry * 0.05),
                       (bx + side * shoulder_w * rng.uniform(0.25, 0.35), shoulder_y + drop * 0.15), s_pt)
        arm_x = s_pt[0] + side * arm_out
        delt = _bezier(s_pt, (arm_x + side * ry * 0.12, s_pt[1] + ry * 0.1),
                       (arm_x, s_pt[1] + ry * rng.uniform(0.6, 1.0)))
        arm = np.array([[arm_x + side * ry * rng.uniform(-0.05, 0.1), s_pt[1] + ry * 2.0],
                        [arm_x + side * ry * rng.uniform(-0.1, 0.15), bottom]])
        sides.append(np.concatenate([trap, delt[1:], arm]))
    left, right = sides
    if round_neck:
        neckline = _bezier(left[0], (bx, shoulder_y + v_depth * 2 - ry * 0.05), right[0])
    else:
        neckline = np.array([left[0], [bx, shoulder_y + v_depth], right[0]])
    torso = np.concatenate([neckline, right, left[::-1]])
    torso = _rot(torso, bx, shoulder_y, rng.normal(0, 0.04))
    torso_mask = _poly_mask(shape, [torso])
    cloth = _clothing(rng, h, w, xs, ys, shoulder_w)
    if photo is not None and rng.random() < 0.3:  # a real-photo print / texture
        from_photo = cover_crop(rng, photo, w, h, zoom=(1.0, 3.0), flip=True)
        if from_photo.ndim == 2 or from_photo.shape[2] == 1:
            from_photo = np.repeat(from_photo.reshape(h, w, 1), 3, axis=2)
        mix = rng.uniform(0.5, 1.0)
        cloth = cloth * (1 - mix) + from_photo[..., ::-1] * mix if rng.random() < 0.5 else \
            cloth * (1 - mix) + from_photo * mix
    folds = 0.8 + 0.4 * _noise(rng, h, w, shoulder_w * 0.25, 2)
    tshade = _shade(torso_mask, shoulder_w * 0.3, light, bulge=0.6) * folds
    stack.over(torso_mask.astype(np.float32) / 255, cloth * lt * tshade[..., None])
    if rng.random() < 0.35:  # open jacket over the shirt
        jcol = _clothing(rng, h, w, xs, ys, shoulder_w)
        gap = shoulder_w * rng.uniform(0.04, 0.2)
        lapel_y = shoulder_y + ry * rng.uniform(0.6, 1.6)
        jl = np.concatenate([[[bx - gap, bottom], [bx - gap * 0.5, lapel_y]], left])
        jr = np.concatenate([[[bx + gap, bottom], [bx + gap * 0.5, lapel_y]], right])
        jmask = _poly_mask(shape, [jl, jr])
        jmask = np.minimum(jmask, cv2.dilate(torso_mask, np.ones((3, 3), np.uint8)))
        stack.over(jmask.astype(np.float32) / 255,
                   jcol * lt * (_shade(jmask, shoulder_w * 0.2, light, 0.6) * folds)[..., None])

    # --- head ---
    head_mask = _poly_mask(shape, [head_pts])
    hshade = _shade(head_mask, rx * 0.9, light)
    skin_tex = 0.97 + 0.06 * _noise(rng, h, w, max(1.5, rx * 0.05), 2)
    hcol = np.empty((h, w, 3), np.float32)
    hcol[:] = skin
    if not back_view:
        _face_features(rng, hcol, cx, cy, rx, ry, tilt, yaw, skin)
    # Ears.
    for side in (-1, 1):
        if abs(side - yaw) < 1.6:
            e = _rot(np.array([cx + side * rx * 0.97, cy + ry * 0.05]), cx, cy, tilt)
            cv2.ellipse(head_mask, (int(e[0] * 16), int(e[1] * 16)), (int(rx * 0.14 * 16), int(ry * 0.2 * 16)),
                        math.degrees(tilt), 0, 360, 255, -1, cv2.LINE_AA, shift=4)
    # Specular sheen where the head faces the key light (forehead, nose, cheeks).
    spec = np.clip(hshade - (light.ambient + light.diffuse * 0.85), 0, None) * light.specular * 4
    hcol = hcol * (hshade * skin_tex)[..., None] + spec[..., None]
    stack.over(head_mask.astype(np.float32) / 255, hcol * lt)

    # --- front hair: cap over the skull with a hairline, fringe or bun ---
    if style != "bald":
        grow = rng.uniform(1.03, 1.18 if style != "curly" else 1.45)
        vol = rng.uniform(1.04, 1.25 if style != "curly" else 1.5)
        side_drop = rng.uniform(0.0, 0.5) if not back_view else 1.2
        tt = np.linspace(math.pi - side_drop, 2 * math.pi + side_drop, 48)
        outer = np.stack([cx + rx * grow * np.cos(tt), cy - ry * 0.05 + ry * vol * np.sin(tt)], -1)
        outer[:, 1] = np.minimum(outer[:, 1], cy + ry * 0.6)
        if back_view:
            line_y = cy + ry * 0.9
            hl = np.stack([np.linspace(cx + rx * grow, cx - rx * grow, 16), np.full(16, line_y)], -1)
        else:
            line_y = cy - ry * rng.uniform(0.3, 0.65)
            fringe = rng.uniform(-0.15, 0.35) * ry
            xx = np.linspace(1, -1, 16)
            part = rng.uniform(-0.5, 0.5)
            hl = np.stack([cx + xx * rx * 0.95 + yaw * rx * 0.2,
                           line_y + fringe * (1 - (xx - part) ** 2) + ry * 0.25 * np.abs(xx) ** 3], -1)
        cap = _rot(np.concatenate([outer, hl]), cx, cy, tilt)
        polys = [cap]
        if style == "bun":
            bpos = _rot(np.array([cx + rng.uniform(-0.3, 0.3) * rx, cy - ry * 1.15]), cx, cy, tilt)
            polys.append(_ellipse_pts(bpos[0], bpos[1], rx * 0.45, ry * 0.35, tilt, np.linspace(0, 2 * np.pi, 32)))
        if style == "long" and rng.random() < 0.5:  # a lock falling in front of a shoulder
            side = rng.choice([-1, 1])
            x0 = cx + side * rx * 0.9
            lock = np.array([[x0 - rx * 0.2, cy - ry * 0.2], [x0 + rx * 0.2, cy - ry * 0.2],
                             [x0 + side * rx * 0.5 + rx * 0.25, cy + hair_len * 0.9],
                             [x0 + side * rx * 0.5 - rx * 0.25, cy + hair_len * 0.9]])
            polys.append(lock)
        mass = _poly_mask(shape, polys)
        hair_layer(mass, int(ry * 10), mass, "part", face=None if back_view else head_mask)

    # --- hat (solid silhouette) ---
    if rng.random() < 0.08:
        hc = _random_colour(rng, (0.0, 0.8), (0.05, 0.8))
        brim = rx * rng.uniform(1.1, 1.9)
        crown = np.array([[cx - rx * 0.95, cy - ry * 0.55], [cx - rx * 0.8, cy - ry * 1.45],
                          [cx + rx * 0.8, cy - ry * 1.45], [cx + rx * 0.95, cy - ry * 0.55]])
        brim_e = _ellipse_pts(cx, cy - ry * 0.55, brim, ry * 0.12, 0, np.linspace(0, 2 * np.pi, 40))
        hmask = _poly_mask(shape, [_rot(crown, cx, cy, tilt), _rot(brim_e, cx, cy, tilt)])
        stack.over(hmask.astype(np.float32) / 255, hc * lt * _shade(hmask, rx * 0.6, light)[..., None])

    # --- glasses (thin frames in colour and coverage) ---
    if not back_view and rng.random() < 0.15:
        gmask = np.zeros(shape, np.uint8)
        for side in (-1, 1):
            c = _rot(np.array([cx + (side * 0.37 + yaw * 0.35) * rx, cy - ry * 0.05]), cx, cy, tilt)
            cv2.ellipse(gmask, (int(c[0] * 16), int(c[1] * 16)), (int(rx * 0.27 * 16), int(ry * 0.14 * 16)),
                        math.degrees(tilt), 0, 360, 255, max(1, int(ry * 0.025)), cv2.LINE_AA, shift=4)
        stack.over(gmask.astype(np.float32) / 255, _random_colour(rng, (0, 0.6), (0.02, 0.5)))

    # --- semi-transparent fabric: scarf over the shoulders or a veil over the head ---
    if rng.random() < 0.3:
        fc = _random_colour(rng, (0.0, 0.9), (0.2, 1.0))
        op = rng.uniform(0.3, 0.7)
        tail = None
        if rng.random() < 0.5:  # veil from the crown down both sides
            tt = np.linspace(math.pi * 0.95, math.pi * 2.05, 30)
            vtop = _ellipse_pts(cx, cy - ry * 0.1, rx * 1.35, ry * 1.25, tilt, tt)
            vb = cy + ry * rng.uniform(1.5, 4.0)
            poly = np.concatenate([vtop, [[cx + shoulder_w * rng.uniform(0.4, 0.8), vb]],
                                   [[cx - shoulder_w * rng.uniform(0.4, 0.8), vb]]])
        else:  # scarf around the neck with tails hanging in front
            y0 = shoulder_y - rng.uniform(0.0, 0.25) * ry
            thick = ry * rng.uniform(0.3, 0.7)
            half = shoulder_w * rng.uniform(0.25, 0.42)
            xn = np.linspace(-1, 1, 16)
            xx = bx + half * xn
            # Drapes over the shoulder slopes and dips in front.
            sag = ry * (0.45 * np.abs(xn) ** 1.5 + rng.uniform(0.0, 0.5) * (1 - xn ** 2))
            band = np.concatenate([np.stack([xx, y0 + sag], -1),
                                   np.stack([xx[::-1], (y0 + sag + thick)[::-1]], -1)])
            tx = bx + rng.uniform(-0.3, 0.3) * half
            tw = ry * rng.uniform(0.2, 0.45)
            tail = np.array([[tx - tw, y0 + thick * 0.5], [tx + tw, y0 + thick * 0.5],
                             [tx + tw * 1.2 + rng.normal(0, tw * 0.3), y0 + ry * rng.uniform(1.5, 4.0)],
                             [tx - tw * 0.8 + rng.normal(0, tw * 0.3), y0 + ry * rng.uniform(1.5, 4.0)]])
            poly = band
        fmask = _poly_mask(shape, [poly] if tail is None else [poly, tail])
        fsoft = cv2.GaussianBlur(fmask, (0, 0), max(0.7, ry * 0.01)).astype(np.float32) / 255
        weave = _clothing(rng, h, w, xs, ys, shoulder_w * 0.3)
        mesh = 0.85 + 0.3 * _noise(rng, h, w, max(1.0, ry * 0.02), 2)
        cov = np.clip(fsoft * op * mesh, 0, 1)
        fcol = np.clip(0.5 * fc + 0.5 * weave, 0, 1) * lt * _shade(fmask, shoulder_w * 0.2, light, 0.4)[..., None]
        stack.over(cov, fcol)


def _motion_blur(rng: np.random.Generator, stack: _Stack, size: float) -> None:
    """Blur ``P`` and ``A`` with one line kernel (the premultiplied ground truth stays exact)."""
    length = int(rng.uniform(2, max(3.0, size * 0.02)))
    k = np.zeros((length * 2 + 1, length * 2 + 1), np.float32)
    ang = rng.uniform(0, math.pi)
    c = length
    cv2.line(k, (int(round(c - math.cos(ang) * length / 2)), int(round(c - math.sin(ang) * length / 2))),
             (int(round(c + math.cos(ang) * length / 2)), int(round(c + math.sin(ang) * length / 2))),
             1.0, 1, cv2.LINE_AA)
    k /= k.sum()
    stack.P = cv2.filter2D(stack.P, -1, k, borderType=cv2.BORDER_REPLICATE)
    stack.A = cv2.filter2D(stack.A, -1, k, borderType=cv2.BORDER_REPLICATE)


def _unpremultiply(P: np.ndarray, A: np.ndarray) -> np.ndarray:
    """``F = P / A`` where ``A > 0``; a smooth colour extension elsewhere."""
    h, w = A.shape
    f = max(1, min(h, w) // 64)
    sp = cv2.resize(P, (w // f, h // f), interpolation=cv2.INTER_AREA)
    sa = cv2.resize(A, (w // f, h // f), interpolation=cv2.INTER_AREA)
    sigma = max(2.0, min(h, w) / f * 0.08)
    bp = cv2.GaussianBlur(sp, (0, 0), sigma)
    ba = cv2.GaussianBlur(sa, (0, 0), sigma)
    mean = P.reshape(-1, 3).sum(0) / max(float(A.sum()), 1e-6)
    fill = np.where(ba[..., None] > 1e-4, bp / np.maximum(ba, 1e-4)[..., None], mean)
    fill = cv2.resize(fill.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    F = np.where(A[..., None] > 1e-6, P / np.maximum(A, 1e-6)[..., None], fill)
    return np.clip(F, 0.0, 1.0).astype(np.float32)


EXTRA_PEOPLE = (0.1, 0.03)  # chance of a second person, and independently of a third


def _props(rng: np.random.Generator, bg: np.ndarray, alpha: np.ndarray,
           photo: np.ndarray | None) -> np.ndarray:
    """One or two objects of the background touching the people: a sign or flag, a pole or
    stand, a rounded thing (a bag, a helmet, a lamp), a shard of a machine. Each starts behind a
    point of their outline, reaching in behind them by up to 40 % of its length, and is drawn
    into the background (``alpha`` is unchanged: it is not the person). It is textured as
    clothing is (or cut from the background photo, as clothing sometimes is), and shaded and
    blurred as the background may be, so that only its shape and place tell it from the person:
    what real footage shows the model keeping (a flag beside a shoulder, a tripod, a shuttle:
    MODEL_CARD.md). Returns the new background."""
    h, w = alpha.shape
    inside = (alpha > 0.5).astype(np.uint8)
    edge_y, edge_x = np.nonzero(inside - cv2.erode(inside, np.ones((3, 3), np.uint8)))
    if len(edge_y) == 0:
        return bg
    in_y, in_x = np.nonzero(inside)
    cy, cx = float(in_y.mean()), float(in_x.mean())
    size = float(max(h, w))
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = bg.copy()
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(len(edge_y)))
        py, px = float(edge_y[i]), float(edge_x[i])
        ang = math.atan2(py - cy, px - cx) + rng.uniform(-0.7, 0.7)  # outwards, give or take
        length = rng.uniform(0.15, 0.6) * size
        width = rng.uniform(0.05, 0.35) * length if rng.random() < 0.7 else rng.uniform(0.35, 1.0) * length
        reach = rng.uniform(0.05, 0.4) * length  # how far it goes in behind the person
        mx, my = px + math.cos(ang) * (length / 2 - reach), py + math.sin(ang) * (length / 2 - reach)
        kind = rng.choice(4, p=[0.35, 0.2, 0.25, 0.2])
        if kind == 0:  # a sign, a flag, a panel: a rectangle, upright or along the direction
            rot = ang if rng.random() < 0.5 else rng.uniform(-0.15, 0.15)
            box = np.array([[-length / 2, -width / 2], [length / 2, -width / 2],
                            [length / 2, width / 2], [-length / 2, width / 2]], np.float32)
            cover = _poly_mask((h, w), [_rot(box + [mx, my], mx, my, rot)])
        elif kind == 1:  # poles, a stand's legs, cables
            cover = np.zeros((h, w), np.uint8)
            thick = max(1, int(rng.uniform(0.004, 0.025) * size))
            for _ in range(int(rng.integers(1, 4))):
                a = ang + rng.uniform(-0.35, 0.35)
                start = (px - math.cos(a) * reach, py - math.sin(a) * reach)
                end = (start[0] + math.cos(a) * length, start[1] + math.sin(a) * length)
                cv2.line(cover, (int(start[0] * 16), int(start[1] * 16)), (int(end[0] * 16), int(end[1] * 16)),
                         255, thick, cv2.LINE_AA, shift=4)
        elif kind == 2:  # a rounded thing
            cover = _poly_mask((h, w), [_ellipse_pts(mx, my, length / 2, width / 2, ang,
                                                     np.linspace(0, 2 * math.pi, 48))])
        else:  # an irregular shard
            n = int(rng.integers(4, 8))
            t = np.sort(rng.uniform(0, 2 * math.pi, n))
            radii = rng.uniform(0.5, 1.0, n)
            pts = np.stack([mx + radii * length / 2 * np.cos(t), my + radii * width / 2 * np.sin(t)], -1)
            cover = _poly_mask((h, w), [_rot(pts, mx, my, ang)])
        if not cover.any():
            continue
        if photo is not None and rng.random() < 0.3:
            colour = _photo_background(rng, photo, w, h)
        else:
            colour = _clothing(rng, h, w, gx, gy, length)
        light = rng.uniform(-1, 1, 2)  # a soft light across it
        ramp = 1 + 0.3 * (light[0] * (gx - mx) + light[1] * (gy - my)) / length
        colour = colour * np.clip(ramp, 0.4, 1.6)[..., None]
        cov = cover.astype(np.float32) / 255
        if rng.random() < 0.5:  # as far out of focus as the background may be
            sigma = rng.uniform(0.3, 0.006 * size + 0.5)
            cov, colour = cv2.GaussianBlur(cov, (0, 0), sigma), cv2.GaussianBlur(colour, (0, 0), sigma)
        out = out * (1 - cov[..., None]) + np.clip(colour, 0, 1) * cov[..., None]
    return out.astype(np.float32)


# Rec. 709 luma weights, on the sRGB-encoded values as a black-and-white conversion weighs them.
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _monochrome(rng: np.random.Generator, fg: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fg`` and ``bg`` made one black-and-white picture: the same luma conversion for both (so
    the composite identity holds), in two of five frames toned (sepia, selenium, a cool or warm
    cast: the grey times a colour near white), in one of five a desaturated grade that keeps a
    trace of the colour instead. Every training frame was in colour before this; the bundled
    model scored alpha MSE x1e3 10.89 on held-out frames made grey against 3.73 in colour, and
    the cameraman photo of the real-photo check is black and white (MODEL_CARD.md)."""
    kind = rng.choice(3, p=[0.4, 0.4, 0.2])
    keep, tint = 0.0, np.ones(3, np.float32)  # plain grey
    if kind == 1:
        hue = rng.uniform(0, 2 * math.pi)  # a colour near white, any hue, sepia most often
        if rng.random() < 0.5:
            hue = rng.uniform(0.4, 0.9)  # orange-brown
        strength = rng.uniform(0.04, 0.2)
        tint = 1 + strength * np.array([math.cos(hue), math.cos(hue - 2 * math.pi / 3),
                                        math.cos(hue + 2 * math.pi / 3)], np.float32)
        tint = (tint / float(tint @ _LUMA)).astype(np.float32)
    elif kind == 2:
        keep = rng.uniform(0.05, 0.3)

    def convert(x: np.ndarray) -> np.ndarray:
        grey = (x @ _LUMA)[..., None]
        return np.clip((grey + keep * (x - grey)) * tint, 0, 1).astype(np.float32)

    return convert(fg), convert(bg)


def render_portrait(rng: np.random.Generator, width: int, height: int,
                    background: np.ndarray | None = None,
                    extra_people: tuple[float, float] = EXTRA_PEOPLE,
                    props: float = 0.0, closeups: float = 0.0,
                    mono: float = 0.0) -> dict[str, np.ndarray]:
    """Render one synthetic portrait with exact ground truth.

    Args:
        rng: the random generator (its state decides everything).
        width, height: output size in pixels.
        background: optional photo (float32 sRGB [h, w, 3] in [0, 1], any size): scaled up to
            cover, cropped, maybe blurred; None draws a procedural background.
        extra_people: chances of a second and of a third person (the default draws the seeded
            test sets; training can ask for more groups, the usual failure of a one-person model).
        props: chance of objects of the background touching the people (:func:`_props`; 0, the
            default, draws nothing more from ``rng``, so every other sample is as before).
        closeups: chance of a close-up: the front person framed tight, the head 30 to 55 % of
            the frame's height, the shoulders reaching most or all of the way across, the crown
            sometimes cut off (a portrait photo's framing, a push-in's last frames; 0, the
            default, draws nothing more from ``rng``).
        mono: chance of a monochrome frame (:func:`_monochrome`: black-and-white film, an
            archive print, a desaturated grade; 0, the default, draws nothing more from ``rng``).

    Returns:
        ``fg`` [H, W, 3], ``alpha`` [H, W, 1], ``bg`` [H, W, 3] and ``image`` [H, W, 3],
        float32 sRGB-encoded in [0, 1], with ``image == alpha * fg + (1 - alpha) * bg``.
    """
    if width < 8 or height < 8:
        raise BadInputError(f"synthetic portrait size too small: {width}x{height}")
    w, h = int(width), int(height)
    photo = None if background is None else np.asarray(background, np.float32)
    if photo is not None:
        bg = _photo_background(rng, photo, w, h)
    else:
        bg = procedural_background(rng, w, h)
    light = _Light(rng)
    if rng.random() < 0.5:  # the scene light tints the background too
        bg = np.clip(bg * (0.5 + 0.5 * light.tint), 0, 1)
    stack = _Stack(h, w)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    close = bool(closeups) and rng.random() < closeups
    people = 1 + int(rng.random() < extra_people[0]) + int(rng.random() < extra_people[1])
    for i in range(people):
        main = i == people - 1
        broad = 1.0
        if main and close:  # a head 30-55 % of the height, the shoulders broadened to fill the width
            ry = min(rng.uniform(0.3, 0.55) * h, 0.6 * w) / 2
            broad = rng.uniform(1.3, 2.0)
            cx = w * rng.uniform(0.35, 0.65)
            cy = rng.uniform(0.85 * ry, max(0.85 * ry, 0.5 * h - 0.2 * ry))
        else:
            scale = rng.uniform(0.16, 0.5) if main else rng.uniform(0.1, 0.3)
            scale *= min(1.0, 1.4 * w / h) ** 0.5  # portrait frames: smaller heads
            ry = scale * h / 2
            cx = w * (rng.uniform(0.3, 0.7) if main and rng.random() < 0.7 else rng.uniform(-0.05, 1.05))
            cy = h * rng.uniform(0.15, 0.5) if rng.random() < 0.9 else h * rng.uniform(-0.05, 0.15)
        # Render in the person's own region (everything it can cover), then stack it.
        reach = 3.2 * ry * broad
        x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
        y0 = max(0, int(cy - 2.0 * ry))
        if x1 - x0 < 2 or h - y0 < 2:
            continue
        local = _Stack(h - y0, x1 - x0)
        lys, lxs = ys[y0:, x0:x1], xs[y0:, x0:x1] - x0
        _render_person(rng, local, x1 - x0, h - y0, light, ry, cx - x0, cy - y0, lxs, lys - y0,
                       photo=photo, broad=broad)
        stack.put(local, x0, y0)
    if rng.random() < 0.12:
        _motion_blur(rng, stack, float(max(w, h)))
    A = np.clip(stack.A, 0.0, 1.0)
    if props and rng.random() < props:  # (last: everything above is drawn as without it)
        bg = _props(rng, bg, A, photo)
    F = _unpremultiply(stack.P, A)
    if mono and rng.random() < mono:  # (last too)
        F, bg = _monochrome(rng, F, bg)
    a = A[..., None]
    image = a * F + (1.0 - a) * bg
    return {"fg": F, "alpha": a.astype(np.float32), "bg": bg.astype(np.float32),
            "image": image.astype(np.float32)}


def check_chance(value: Any, what: str) -> float:
    """A chance as a float in [0, 1], else BadInputError naming ``what``."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise BadInputError(f"{what} must be a chance in [0, 1], got {value!r}") from None
    if not 0.0 <= p <= 1.0:
        raise BadInputError(f"{what} must be a chance in [0, 1], got {value!r}")
    return p


def check_extra_people(value: Any) -> tuple[float, float]:
    """``(p2, p3)`` as floats in [0, 1], else BadInputError."""
    try:
        p2, p3 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise BadInputError(f"extra_people must be two chances (second, third person), got {value!r}") from None
    if not (0.0 <= p2 <= 1.0 and 0.0 <= p3 <= 1.0):
        raise BadInputError(f"extra_people chances must lie in [0, 1], got {value!r}")
    return p2, p3


# --- dataset --------------------------------------------------------------------------------

class SyntheticPortraits(Dataset):
    """``n`` synthetic portraits rendered on the fly, deterministic by ``(seed, index, epoch)``.

    Args:
        n: number of items.
        size: ``(W, H)`` of every item.
        seed: base seed.
        backgrounds: background photos (folder, files or list); each sample uses a photo with
            probability ``photo_prob`` (else a procedural background). None: procedural only.
            Use ``builtin_backgrounds()`` for the person-free photos of scikit-image/matplotlib.
        augment: optional callable ``augment(sample, rng) -> sample`` on numpy HWC samples (see
            :class:`pomagan_train.data.augment.Augment`); it must keep the size.
        photo_prob: chance of a photo background when ``backgrounds`` are given.
        extra_people: chances of a second and of a third person (see :func:`render_portrait`).
        props: chance of background objects touching the people (see :func:`render_portrait`).
        closeups: chance of a close-up framing of the front person (see :func:`render_portrait`).
        mono: chance of a monochrome frame (see :func:`render_portrait`).

    Call :meth:`set_epoch` to draw new samples each epoch (DDP-friendly); epoch 0 is the default.
    """

    def __init__(self, n: int, size: tuple[int, int] = (1280, 768), seed: int = 0,
                 backgrounds: Any = None, augment: Callable[..., dict[str, np.ndarray]] | None = None,
                 photo_prob: float = 0.5, extra_people: tuple[float, float] = EXTRA_PEOPLE,
                 props: float = 0.0, closeups: float = 0.0, mono: float = 0.0) -> None:
        if n < 1:
            raise BadInputError(f"synthetic dataset needs n >= 1, got {n}")
        self.extra_people = check_extra_people(extra_people)
        self.props = check_chance(props, "props")
        self.closeups = check_chance(closeups, "closeups")
        self.mono = check_chance(mono, "mono")
        self.n = int(n)
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.backgrounds = collect_backgrounds(backgrounds)
        self.augment = augment
        self.photo_prob = float(photo_prob)
        self.epoch = 0
        self._cache: dict[Path, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def _photo(self, path: Path) -> np.ndarray:
        img = self._cache.get(path)
        if img is None:
            img = load_background(path)
            if len(self._cache) < 64:
                self._cache[path] = img
        return img

    def render(self, index: int) -> dict[str, np.ndarray]:
        """The numpy HWC sample for ``index`` (before conversion to tensors)."""
        if not 0 <= index < self.n:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index, self.epoch])
        background = None
        if self.backgrounds and rng.random() < self.photo_prob:
            background = self._photo(self.backgrounds[int(rng.integers(len(self.backgrounds)))])
        w, h = self.size
        sample = render_portrait(rng, w, h, background, self.extra_people, self.props, self.closeups,
                                  self.mono)
        if self.augment is not None:
            sample = self.augment(sample, np.random.default_rng([self.seed, index, self.epoch, 1]))
        return sample

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from . import finish_sample

        return finish_sample(self.render(index))


# --- writing a dataset to disk --------------------------------------------------------------

def _write_atomic(path: Path, array: np.ndarray, bits: int) -> None:
    """Write an sRGB PNG (8 or 16-bit) via a temp file in the same folder, then rename."""
    scale = 65535.0 if bits == 16 else 255.0
    dtype = np.uint16 if bits == 16 else np.uint8
    data = np.clip(np.round(array * scale), 0, scale).astype(dtype)
    if data.ndim == 3 and data.shape[2] == 3:
        data = data[..., ::-1]  # RGB -> BGR for OpenCV
    elif data.ndim == 3:
        data = data[..., 0]
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), data):
            raise BadInputError(f"cannot write {path}")


def write_dataset(out_dir: str | os.PathLike[str], n: int, size: tuple[int, int] = (1280, 768),
                  seed: int = 0, backgrounds: Any = None, progress: bool = True,
                  skip_existing: bool = True, builtin_photos: bool = True, props: float = 0.0,
                  closeups: float = 0.0, mono: float = 0.0) -> Path:
    """Render ``n`` synthetic portraits to ``out_dir`` (readable by ``SyntheticFolder``).

    Layout: ``image/NNNNNN.png`` (8-bit sRGB composite), ``alpha/NNNNNN.png`` (16-bit),
    ``fg/NNNNNN.png`` and ``bg/NNNNNN.png`` (8-bit sRGB), plus ``dataset.json`` (generator
    version, seed, size, count, background files). Each file is written atomically; items
    whose four files already exist are skipped (re-running resumes), so a farm can split the
    work by calling this repeatedly. The stored composite is the 8-bit rounding of
    ``alpha * fg + (1 - alpha) * bg`` computed in float. Backgrounds: procedural, plus photos
    from ``backgrounds`` and (``builtin_photos``) :func:`builtin_backgrounds`, as ``synthetic:N``.
    ``props``: chance of background objects touching the people, ``closeups`` of a close-up
    framing, ``mono`` of a monochrome frame (:func:`render_portrait`).

    Returns the output folder.
    """
    out = Path(out_dir)
    w, h = int(size[0]), int(size[1])
    ds = SyntheticPortraits(n, (w, h), seed=seed,
                            backgrounds=collect_backgrounds(backgrounds, builtin=builtin_photos), props=props,
                            closeups=closeups, mono=mono)
    for sub in ("image", "alpha", "fg", "bg"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    meta = {"format": "pomagan-synthetic", "generator_version": GENERATOR_VERSION, "seed": int(seed),
            "size": [w, h], "count": int(n), "colour": "sRGB-encoded; image = alpha*fg + (1-alpha)*bg",
            "alpha_bits": 16, "backgrounds": [str(p) for p in ds.backgrounds]}
    if props:  # (absent when off: the files of a set made before the option read the same)
        meta["props"] = ds.props
    if closeups:
        meta["closeups"] = ds.closeups
    if mono:
        meta["mono"] = ds.mono
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=n, desc="synth", unit="img", file=sys.stderr)
        except ImportError:
            bar = None
    for i in range(n):
        name = f"{i:06d}.png"
        paths = {k: out / k / name for k in ("image", "alpha", "fg", "bg")}
        if not (skip_existing and all(p.is_file() for p in paths.values())):
            s = ds.render(i)
            _write_atomic(paths["fg"], s["fg"], 8)
            _write_atomic(paths["bg"], s["bg"], 8)
            _write_atomic(paths["alpha"], s["alpha"], 16)
            _write_atomic(paths["image"], s["image"], 8)
        if bar is not None:
            bar.update(1)
        elif progress and (i + 1) % max(1, n // 20) == 0:
            print(f"synth: {i + 1}/{n}", file=sys.stderr)
    if bar is not None:
        bar.close()
    with atomic_path(out / "dataset.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return out
