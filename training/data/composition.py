"""Matting datasets from files: composition sets, paired image + alpha sets, synthetic folders.

**Composition protocol** (:class:`CompositionDataset`, Deep Image Matting's): each foreground
subject is composited onto ``bg_per_fg`` backgrounds, 100 for training and 20 for testing by
default. Item ``i`` is subject ``i // bg_per_fg`` on background ``order[i % n_bg]`` where
``order`` is a permutation of the backgrounds fixed by ``seed`` (so with enough backgrounds no
two composites share one, and test composites are deterministic). The background is scaled up to
cover the foreground (random zoom and crop for training, centred for testing) and the composite
``I = alpha * F + (1 - alpha) * B`` is computed in sRGB-encoded floats at the foreground's
resolution; the sample is then brought to the training size by ``augment`` (training) or by
:func:`fit_sample` (scale to cover, crop centred horizontally and at a quarter from the top, so
portraits keep their heads). Without background files, procedural backgrounds are drawn.

**Layouts** (:func:`find_layout` auto-detects them; :func:`subjects` lists the files):

==========  =========================================================================
aim         Adobe Image Matting: ``Combined_Dataset/{Training_set,Test_set}/{Adobe-licensed
            images,Other}/{fg,alpha}`` (the root may also be ``Combined_Dataset`` itself)
d646        Distinctions-646: ``{Train,Test}/{FG,GT}``
pm85        PhotoMatte85: one folder of RGBA PNGs (foreground and alpha in one file)
paired      image + alpha with matching stems: P3M-10k (``train/blurred_image`` + ``train/mask``,
            test ``validation/P3M-500-P/{blurred_image,mask}``), PPM-100 (``image`` + ``matte``),
            and a studio's plates + roto mattes (``plates`` + ``mattes``, or any of the folder
            names in :data:`IMAGE_DIRS` / :data:`ALPHA_DIRS`); optional ``train``/``test`` subfolders
synthetic   a folder written by :func:`pomagan_train.data.synthetic.write_dataset`
==========  =========================================================================

**Colour.** Everything is returned sRGB-encoded in [0, 1], the model's space. PNG/TIFF/JPEG
are taken as sRGB; EXR (and HDR) are scene-linear: their RGB is converted with
:func:`pomagan_post.colour.to_model` (sRGB transfer, soft clip above 1). An EXR foreground with
an ``A`` channel is premultiplied by the EXR convention and is unpremultiplied in linear light
first. Alpha is coverage and never colour-converted; a matte file's alpha is its ``A`` channel
when it has one that is not constant 1, else its first channel (gray, ``Y`` or ``R``).
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from pomagan_post.errors import BadInputError

from .augment import _resize, resample

__all__ = [
    "IMAGE_DIRS",
    "ALPHA_DIRS",
    "read_rgb",
    "read_alpha",
    "read_rgba",
    "fit_sample",
    "find_layout",
    "subjects",
    "pair_by_stem",
    "CompositionDataset",
    "PairedDataset",
    "SyntheticFolder",
]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp", ".hdr", ".dpx")
IMAGE_DIRS = ("blurred_image", "original_image", "image", "images", "img", "plates", "plate",
              "rgb", "input", "fg")
ALPHA_DIRS = ("mask", "matte", "mattes", "alpha", "alphas", "masks", "roto", "gt")

Sample = dict[str, np.ndarray]


# --- reading --------------------------------------------------------------------------------

def _read(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str], str, str]:
    """A file -> (float32 [H, W, C], channel names, format name, its colour space)."""
    import OpenImageIO as oiio

    from pomagan_post.colour import detect_colorspace

    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"file not found: {p}")
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(p), config)
    if inp is None:
        raise BadInputError(f"cannot read {p}: {_reason(oiio.geterror(), 'not an image file OpenImageIO can open')}")
    try:
        spec = inp.spec()
        fmt = inp.format_name()
        data = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
        if data is None:
            raise BadInputError(f"cannot read {p}: {_reason(inp.geterror(), 'corrupt data')}")
        attrs = {a.name: a.value for a in spec.extra_attribs}
        cs = detect_colorspace(fmt, attrs, str(spec.format))
    finally:
        inp.close()
        oiio.geterror()  # a reader's leftover message would be printed at exit
    data = np.asarray(data, np.float32).reshape(spec.height, spec.width, spec.nchannels)
    bad = ~np.isfinite(data)
    if bad.any():  # a NaN matte or plate would turn the weights to NaN
        ys, xs = np.nonzero(bad.any(axis=-1))
        raise BadInputError(f"{p}: {len(ys)} pixel(s) hold NaN or infinite values (the first at x={xs[0]}, "
                            f"y={ys[0]}); fix or remove the file")
    return data, [str(n) for n in spec.channelnames], fmt, cs


def _reason(message: str, fallback: str) -> str:
    """OpenImageIO's error text on one line, each distinct part once (its readers repeat it)."""
    parts: list[str] = []
    for line in (message or "").replace("\r", "\n").split("\n"):
        line = line.strip()
        if line and not any(line in seen for seen in parts):
            parts = [seen for seen in parts if seen not in line] + [line]
    return "; ".join(parts) or fallback


def _split(data: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Channels -> (RGB [H, W, 3], A [H, W] or None)."""
    upper = [n.upper().rsplit(".", 1)[-1] for n in names]
    a = data[..., upper.index("A")] if "A" in upper else None
    if all(c in upper for c in "RGB"):
        rgb = data[..., [upper.index(c) for c in "RGB"]]
    else:
        colour = [i for i, n in enumerate(upper) if n != "A"] or [0]
        rgb = data[..., colour[:3]] if len(colour) >= 3 else data[..., [colour[0]] * 3]
    return rgb, a


def read_rgba(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """A colour file -> (straight sRGB-encoded RGB [H, W, 3] in [0, 1], alpha [H, W] or None)."""
    from pomagan_post.colour import is_linear, to_model

    data, names, fmt, cs = _read(path)
    rgb, a = _split(data, names)
    if a is not None:
        a = np.clip(a, 0.0, 1.0)
    if is_linear(cs) and a is not None and fmt == "openexr":
        rgb = np.where(a[..., None] > 1e-6, rgb / np.maximum(a, 1e-6)[..., None], 0.0)
    return np.ascontiguousarray(to_model(rgb, cs), np.float32), a


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """A colour file -> sRGB-encoded float32 RGB [H, W, 3] in [0, 1] (alpha ignored)."""
    from pomagan_post.colour import to_model

    data, names, _, cs = _read(path)
    rgb, _ = _split(data, names)
    return np.ascontiguousarray(to_model(rgb, cs), np.float32)


def read_alpha(path: str | os.PathLike[str]) -> np.ndarray:
    """A matte file -> float32 alpha [H, W] in [0, 1] (its ``A`` channel unless constant 1)."""
    data, names, _, _ = _read(path)
    upper = [n.upper().rsplit(".", 1)[-1] for n in names]
    if "A" in upper:
        a = data[..., upper.index("A")]
        if len(upper) == 1 or float(a.min()) < 1.0:
            return np.ascontiguousarray(np.clip(a, 0.0, 1.0), np.float32)
    return np.ascontiguousarray(np.clip(data[..., 0], 0.0, 1.0), np.float32)


@lru_cache(maxsize=None)
def _header(path: str) -> tuple[int, int, float] | None:
    """(width, height, pixel aspect) from a file's header, as :func:`_read` reads the file;
    None when OpenImageIO cannot open it."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(path)
    if inp is None:
        oiio.geterror()  # retrieved: OpenImageIO would print it at exit
        return None
    try:
        spec = inp.spec()
        aspect = float(spec.get_float_attribute("PixelAspectRatio", 1.0) or 1.0)
        return int(spec.width), int(spec.height), aspect if 0.1 <= aspect <= 10 else 1.0
    finally:
        inp.close()


def file_pixel_aspect(path: str | os.PathLike[str]) -> float:
    """A file's pixel aspect ratio (``PixelAspectRatio`` in its header; 1 without one), read
    once per file: datasets ask for it on every sample they draw."""
    header = _header(os.fspath(path))
    return 1.0 if header is None else header[2]


def check_pairs(colour: Sequence[Path], mattes: Sequence[Path | None], what: str = "image") -> None:
    """Before training starts: every file of the pairs opens, and each matte is the size of its
    colour file (read from the headers only), so a bad file stops the run at once, named, not
    at the step that first draws it. Raises :class:`BadInputError` for the first bad pair."""
    for image, matte in zip(colour, mattes):
        sizes = []
        for path in (image, matte):
            if path is None:
                continue
            if not Path(path).is_file():
                raise BadInputError(f"file not found: {path}")
            header = _header(os.fspath(path))
            if header is None:
                raise BadInputError(f"cannot read {path}: not an image file OpenImageIO can open")
            sizes.append(header[:2])
        if len(sizes) == 2 and sizes[0] != sizes[1]:
            (iw, ih), (mw, mh) = sizes
            raise BadInputError(f"matte {matte} is {mw}x{mh} but {what} {image} is {iw}x{ih}")


def desqueeze(array: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """``[H, W(, C)]`` stored with ``pixel_aspect`` -> the picture as shown (width x aspect),
    as render shows an anamorphic plate to the network."""
    if abs(pixel_aspect - 1.0) < 1e-3:
        return array
    h, w = array.shape[:2]
    return _resize(array, max(1, int(round(w * pixel_aspect))), h)


# --- geometry -------------------------------------------------------------------------------

def fit_sample(sample: Sample, size: tuple[int, int], top: float = 0.25) -> Sample:
    """Deterministically bring a sample to ``size`` = (W, H): scale to cover, then crop.

    The crop is centred horizontally and takes ``top`` of the vertical excess from the top
    (portraits keep their heads). Every array gets the same geometry; with ``fg``/``bg`` the
    image is recomposited from the resampled layers (see :func:`.augment.resample`).
    """
    w, h = int(size[0]), int(size[1])
    ih, iw = sample["alpha"].shape[:2]
    s = max(w / iw, h / ih)
    nw, nh = max(w, int(math.ceil(iw * s - 1e-6))), max(h, int(math.ceil(ih * s - 1e-6)))
    x0, y0 = (nw - w) // 2, int(round((nh - h) * top))
    return resample(sample, lambda v: _resize(v, nw, nh)[y0:y0 + h, x0:x0 + w])


def _to_size(sample: Sample, size: tuple[int, int], augment: Callable[..., Sample] | None,
             rng: np.random.Generator) -> Sample:
    if augment is not None:
        return augment(sample, rng)
    return fit_sample(sample, size)


# --- layouts --------------------------------------------------------------------------------

def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BadInputError(f"folder not found: {folder}")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
    if not files:
        raise BadInputError(f"no images in {folder}")
    return files


def pair_by_stem(image_dir: str | os.PathLike[str], alpha_dir: str | os.PathLike[str]
                 ) -> tuple[list[Path], list[Path]]:
    """Files of two folders matched by file stem (extensions may differ).

    Raises ``BadInputError`` naming both folders and a few unmatched names when the stems differ.
    """
    a_dir, b_dir = Path(image_dir), Path(alpha_dir)
    left = {p.stem: p for p in _images(a_dir)}
    right = {p.stem: p for p in _images(b_dir)}
    only_l, only_r = sorted(set(left) - set(right)), sorted(set(right) - set(left))
    if only_l or only_r:
        parts = []
        if only_l:
            parts.append(f"{len(only_l)} in {a_dir} without a matte (e.g. {', '.join(only_l[:3])})")
        if only_r:
            parts.append(f"{len(only_r)} in {b_dir} without an image (e.g. {', '.join(only_r[:3])})")
        raise BadInputError(f"images and mattes do not match ({len(left)} vs {len(right)} files): "
                            + "; ".join(parts))
    stems = sorted(left)
    return [left[s] for s in stems], [right[s] for s in stems]


def _sub(root: Path, *names: str) -> Path | None:
    """The first existing child folder among ``names`` (case-insensitive)."""
    if not root.is_dir():
        return None
    children = {c.name.lower(): c for c in root.iterdir() if c.is_dir()}
    for n in names:
        if n.lower() in children:
            return children[n.lower()]
    return None


def _aim_root(root: Path) -> Path | None:
    for cand in (root, root / "Combined_Dataset"):
        if _sub(cand, "Training_set", "Test_set"):
            return cand
    return None


def _paired_dirs(root: Path) -> tuple[Path, Path] | None:
    img, alpha = _sub(root, *IMAGE_DIRS), _sub(root, *ALPHA_DIRS)
    if img is not None and alpha is not None and img != alpha:
        return img, alpha
    return None


def _paired_root(root: Path, split: str) -> Path | None:
    """The folder holding the image/alpha pair for ``split`` in a paired layout."""
    names = ("train", "training") if split == "train" else ("test", "val", "validation", "testing")
    sub = _sub(root, *names)
    if sub is not None:
        if _paired_dirs(sub):
            return sub
        # P3M's validation holds P3M-500-P (faces blurred, the documented test set) and
        # P3M-500-NP: the -P set first, then the others by name.
        children = sorted((c for c in sub.iterdir() if c.is_dir()),
                          key=lambda c: (not c.name.upper().endswith("-P"), c.name))
        for child in children:
            if _paired_dirs(child):
                return child
    if _paired_dirs(root):
        return root
    return None


def _has_alpha_channel(path: Path) -> bool:
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        return False
    try:
        return inp.spec().nchannels == 4
    finally:
        inp.close()


def find_layout(root: str | os.PathLike[str]) -> str:
    """Which layout a dataset folder has: aim, d646, pm85, paired or synthetic.

    Raises ``BadInputError`` naming the folder when none fits.
    """
    r = Path(root)
    if not r.is_dir():
        raise BadInputError(f"dataset folder not found: {r}")
    meta = r / "dataset.json"
    if meta.is_file():
        try:
            if json.loads(meta.read_text()).get("format") == "pomagan-synthetic":
                return "synthetic"
        except (OSError, ValueError):
            pass
    if _aim_root(r) is not None:
        return "aim"
    for split in ("Train", "Test"):
        s = _sub(r, split)
        if s is not None and _sub(s, "FG") and _sub(s, "GT"):
            return "d646"
    if _paired_root(r, "train") or _paired_root(r, "test"):
        return "paired"
    pngs = sorted(p for p in r.iterdir() if p.suffix.lower() in (".png", ".exr", ".tif", ".tiff"))
    if pngs and _has_alpha_channel(pngs[0]):
        return "pm85"
    raise BadInputError(
        f"cannot tell the dataset layout of {r}: expected Adobe Image Matting (Combined_Dataset/"
        "Training_set|Test_set), Distinctions-646 (Train|Test/FG+GT), PhotoMatte85 (RGBA PNGs), "
        "an image folder + a matte folder (e.g. image+matte, blurred_image+mask, plates+mattes) "
        "or a synthetic folder with dataset.json")


def subjects(root: str | os.PathLike[str], kind: str, split: str = "train"
             ) -> tuple[list[Path], list[Path | None]]:
    """(colour files, matte files) of a layout's split; a None matte means 'the colour file's A'.

    For ``aim``/``d646``/``pm85`` the colour files are foregrounds (composited); for ``paired``
    they are finished images.
    """
    r = Path(root)
    _check_split(split)
    if kind == "aim":
        base = _aim_root(r)
        if base is None:
            raise BadInputError(f"not an Adobe Image Matting folder (no Training_set/Test_set): {r}")
        set_dir = _sub(base, "Training_set" if split == "train" else "Test_set")
        if set_dir is None:
            raise BadInputError(f"missing {'Training_set' if split == 'train' else 'Test_set'} in {base}")
        fgs: list[Path] = []
        alphas: list[Path | None] = []
        groups = [d for d in (_sub(set_dir, "Adobe-licensed images"), _sub(set_dir, "Other")) if d]
        if not groups:
            raise BadInputError(f"no 'Adobe-licensed images' or 'Other' folder in {set_dir}")
        for g in groups:
            f, a = pair_by_stem(g / "fg", g / "alpha")
            fgs += f
            alphas += a
        return fgs, alphas
    if kind == "d646":
        s = _sub(r, "Train" if split == "train" else "Test")
        if s is None:
            raise BadInputError(f"missing {'Train' if split == 'train' else 'Test'} folder in {r}")
        f, a = pair_by_stem(s / "FG" if (s / "FG").is_dir() else (_sub(s, "FG") or s / "FG"),
                            s / "GT" if (s / "GT").is_dir() else (_sub(s, "GT") or s / "GT"))
        return f, list(a)
    if kind == "pm85":
        files = _images(r)
        return files, [None] * len(files)
    if kind == "paired":
        base = _paired_root(r, split)
        if base is None:
            raise BadInputError(f"no image + matte folders for split {split!r} in {r} "
                                f"(image: {'/'.join(IMAGE_DIRS)}; matte: {'/'.join(ALPHA_DIRS)})")
        img_dir, alpha_dir = _paired_dirs(base)  # type: ignore[misc]
        f, a = pair_by_stem(img_dir, alpha_dir)
        return f, list(a)
    raise BadInputError(f"unknown dataset kind {kind!r} (aim, d646, pm85, paired, synthetic)")


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise BadInputError(f"split must be 'train' or 'test', got {split!r}")


# --- datasets -------------------------------------------------------------------------------

class _Base(Dataset):
    def __init__(self, size: tuple[int, int], seed: int, augment: Callable[..., Sample] | None) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.augment = augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new random crops/backgrounds/augmentations for ``epoch`` (DDP-friendly)."""
        self.epoch = int(epoch)

    def render(self, index: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from . import finish_sample

        if not 0 <= index < len(self):
            raise IndexError(index)
        return finish_sample(self.render(index))


class CompositionDataset(_Base):
    """Foregrounds + alphas composited onto backgrounds (the Deep Image Matting protocol).

    Args:
        fg_paths: foreground colour files (straight, i.e. not premultiplied, except EXR).
        alpha_paths: matte files, one per foreground (None entries: the foreground's A channel;
            None altogether: every foreground is RGBA, as PhotoMatte85).
        bg_paths: background photos; None or empty draws procedural backgrounds.
        bg_per_fg: composites per subject; None: 100 for ``train``, 20 for ``test``.
        size: ``(W, H)`` of every item.
        seed: fixes the background order, the test crops and the training randomness.
        split: ``"train"`` (random background zoom/crop, ``augment``) or ``"test"``
            (deterministic, centred; ``augment`` is still applied when given).
        augment: ``augment(sample, rng) -> sample`` bringing a numpy sample to ``size``.
    """

    def __init__(self, fg_paths: Sequence[str | os.PathLike[str]],
                 alpha_paths: Sequence[str | os.PathLike[str] | None] | None,
                 bg_paths: Sequence[str | os.PathLike[str]] | None = None,
                 bg_per_fg: int | None = None, size: tuple[int, int] = (1280, 768), seed: int = 0,
                 split: str = "train", augment: Callable[..., Sample] | None = None) -> None:
        super().__init__(size, seed, augment)
        _check_split(split)
        self.split = split
        self.fg_paths = [Path(p) for p in fg_paths]
        if not self.fg_paths:
            raise BadInputError("composition dataset: no foregrounds given")
        alphas = [None] * len(self.fg_paths) if alpha_paths is None else list(alpha_paths)
        if len(alphas) != len(self.fg_paths):
            raise BadInputError(f"composition dataset: {len(self.fg_paths)} foregrounds but "
                                f"{len(alphas)} mattes")
        self.alpha_paths = [Path(a) if a is not None else None for a in alphas]
        check_pairs(self.fg_paths, self.alpha_paths, "foreground")
        self.bg_paths = [Path(p) for p in (bg_paths or [])]
        self.bg_per_fg = int(bg_per_fg) if bg_per_fg is not None else (100 if split == "train" else 20)
        if self.bg_per_fg < 1:
            raise BadInputError(f"bg_per_fg must be >= 1, got {self.bg_per_fg}")
        self.bg_order = (np.random.default_rng([self.seed, 7]).permutation(len(self.bg_paths))
                         if self.bg_paths else np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.fg_paths) * self.bg_per_fg

    def assignment(self, index: int) -> tuple[int, int | None]:
        """(subject number, background number or None for procedural) of item ``index``."""
        subject = index // self.bg_per_fg
        if not len(self.bg_order):
            return subject, None
        return subject, int(self.bg_order[index % len(self.bg_order)])

    def _subject(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, a = read_rgba(self.fg_paths[k])
        ap = self.alpha_paths[k]
        if ap is not None:
            a = read_alpha(ap)
        if a is None:
            raise BadInputError(f"{self.fg_paths[k]} has no alpha channel and no matte file was given")
        if a.shape != rgb.shape[:2]:
            raise BadInputError(f"matte {ap} is {a.shape[1]}x{a.shape[0]} but foreground "
                                f"{self.fg_paths[k]} is {rgb.shape[1]}x{rgb.shape[0]}")
        aspect = file_pixel_aspect(self.fg_paths[k])  # anamorphic: trained as render shows it
        return desqueeze(rgb, aspect), desqueeze(a, aspect)

    def render(self, index: int) -> Sample:
        from .synthetic import cover_crop, procedural_background

        subject, bg_k = self.assignment(index)
        train = self.split == "train"
        rng = np.random.default_rng([self.seed, index, self.epoch if train else 0])
        fg, a = self._subject(subject)
        h, w = a.shape
        if bg_k is None:
            # Procedural background at no more than twice the training size, then scaled.
            s = min(1.0, 2 * max(self.size) / max(w, h))
            bg = procedural_background(rng, max(8, int(w * s)), max(8, int(h * s)))
            bg = _resize(bg, w, h)
        else:
            photo = self.bg_paths[bg_k]
            bg = cover_crop(rng if train else None, desqueeze(read_rgb(photo), file_pixel_aspect(photo)),
                            w, h, zoom=(1.0, 1.5), flip=True)
        alpha = a[..., None]
        image = alpha * fg + (1.0 - alpha) * bg
        sample = {"image": image.astype(np.float32), "alpha": alpha.astype(np.float32),
                  "fg": fg, "bg": bg.astype(np.float32)}
        return _to_size(sample, self.size, self.augment, np.random.default_rng([self.seed, index, self.epoch, 1]))


class PairedDataset(_Base):
    """Finished images with their mattes (no true foreground/background: no ``fg``/``bg`` keys).

    Args:
        image_paths, alpha_paths: matching lists (see :func:`pair_by_stem`).
        size, seed, augment: as :class:`CompositionDataset`.
    """

    def __init__(self, image_paths: Sequence[str | os.PathLike[str]],
                 alpha_paths: Sequence[str | os.PathLike[str]], size: tuple[int, int] = (1280, 768),
                 seed: int = 0, augment: Callable[..., Sample] | None = None) -> None:
        super().__init__(size, seed, augment)
        self.image_paths = [Path(p) for p in image_paths]
        self.alpha_paths = [Path(p) for p in alpha_paths]
        if not self.image_paths:
            raise BadInputError("paired dataset: no images given")
        if len(self.image_paths) != len(self.alpha_paths):
            raise BadInputError(f"paired dataset: {len(self.image_paths)} images but "
                                f"{len(self.alpha_paths)} mattes")
        check_pairs(self.image_paths, self.alpha_paths)

    def __len__(self) -> int:
        return len(self.image_paths)

    def render(self, index: int) -> Sample:
        image = read_rgb(self.image_paths[index])
        a = read_alpha(self.alpha_paths[index])
        if a.shape != image.shape[:2]:
            raise BadInputError(f"matte {self.alpha_paths[index]} is {a.shape[1]}x{a.shape[0]} but "
                                f"image {self.image_paths[index]} is {image.shape[1]}x{image.shape[0]}")
        # An anamorphic plate is trained on as render shows it to the network: desqueezed (the
        # matte by the plate's aspect: a matte file often does not carry one).
        aspect = file_pixel_aspect(self.image_paths[index])
        sample = {"image": desqueeze(image, aspect), "alpha": desqueeze(a, aspect)[..., None]}
        return _to_size(sample, self.size, self.augment, np.random.default_rng([self.seed, index, self.epoch, 1]))


class SyntheticFolder(_Base):
    """A dataset written by :func:`pomagan_train.data.synthetic.write_dataset`.

    Items carry ``fg`` and ``bg``. The composite is recomputed in float from the stored
    foreground, background and 16-bit alpha, so ``image == alpha * fg + (1 - alpha) * bg``
    holds exactly (the stored 8-bit ``image/`` files are for viewing and other tools).
    """

    def __init__(self, root: str | os.PathLike[str], size: tuple[int, int] | None = None, seed: int = 0,
                 augment: Callable[..., Sample] | None = None) -> None:
        r = Path(root)
        meta_path = r / "dataset.json"
        if not meta_path.is_file():
            raise BadInputError(f"not a synthetic dataset folder (no dataset.json): {r}")
        try:
            self.meta = json.loads(meta_path.read_text())
        except ValueError as e:
            raise BadInputError(f"unreadable {meta_path}: {e}") from None
        stored = tuple(self.meta.get("size", (0, 0)))
        super().__init__(size or stored, seed, augment)
        self.root = r
        alphas = {p.stem: p for p in _images(r / "alpha")}
        fgs = {p.stem: p for p in _images(r / "fg")}
        bgs = {p.stem: p for p in _images(r / "bg")}
        stems = sorted(alphas)
        missing = [s for s in stems if s not in fgs or s not in bgs]
        if missing or len(fgs) != len(alphas) or len(bgs) != len(alphas):
            raise BadInputError(f"synthetic folder {r}: alpha/ has {len(alphas)} files, fg/ {len(fgs)}, "
                                f"bg/ {len(bgs)}" + (f" (e.g. {missing[0]} incomplete)" if missing else ""))
        self.items = [(fgs[s], alphas[s], bgs[s]) for s in stems]

    def __len__(self) -> int:
        return len(self.items)

    def render(self, index: int) -> Sample:
        fgp, ap, bgp = self.items[index]
        fg, bg = read_rgb(fgp), read_rgb(bgp)
        alpha = read_alpha(ap)[..., None]
        sample = {"image": alpha * fg + (1.0 - alpha) * bg, "alpha": alpha, "fg": fg, "bg": bg}
        if tuple(alpha.shape[1::-1]) == self.size and self.augment is None:
            return sample
        return _to_size(sample, self.size, self.augment, np.random.default_rng([self.seed, index, self.epoch, 1]))
