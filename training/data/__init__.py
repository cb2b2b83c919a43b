"""Training data: synthetic portraits, composition sets, paired sets, augmentation.

**Sample contract.** Every dataset here is a ``torch.utils.data.Dataset`` whose items are dicts
of float32 tensors in [0, 1], sRGB-encoded, CHW, all of one dataset's items the same size:

- ``image`` [3, H, W]: the composite ``I``;
- ``alpha`` [1, H, W]: ground-truth alpha;
- ``seg`` [1, H, W]: segmentation ground truth, ``seg_from_alpha(alpha)``;
- ``fg`` [3, H, W] and ``bg`` [3, H, W]: true foreground colour (straight, not premultiplied)
  and background, only where known (synthetic and composition sets; paired image + alpha sets
  have neither key). Before image-only degradations (noise, JPEG; see :mod:`.augment`)
  ``image == alpha * fg + (1 - alpha) * bg`` in these sRGB-encoded values.

**Segmentation ground truth rule** (the paper leaves it open). The coarse person mask is
``seg = opening(alpha >= 0.5)`` with a 3 x 3 square structuring element: a pixel is "person"
when the subject covers at least half of it, and the opening removes structures under 3 px wide
(isolated hair strands and flyaways, thin veil threads), which belong to the alpha stage, not to
the segmentation. Opaque hair mass, skin, clothing and denser semi-transparent fabric
(alpha >= 0.5) count as person. The same rule serves numpy arrays and torch tensors, and at
image borders the opening never erodes (pixels outside the image count as neutral).

**Dataset specs** for :func:`build_dataset` (the CLI's ``--data``):

- ``synthetic:N`` — N procedural portraits (:mod:`.synthetic`), rendered on the fly;
- a folder path — its layout is auto-detected (see :mod:`.composition`): ``aim``, ``d646``,
  ``pm85``, ``paired`` (P3M-10k, PPM-100, a studio's plates + roto mattes) or a ``synthetic``
  folder written by ``pomagan-train synth``;
- ``KIND:PATH`` — the same with the layout named (``studio``, ``p3m`` and ``ppm`` are aliases
  of ``paired``);
- a list of specs — concatenated (e.g. the paper's AIM + D646).

Composition layouts use the ``backgrounds`` folder given to :func:`build_dataset` and fall back
to procedural backgrounds plus the person-free photos of scikit-image/matplotlib.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from pomagan_post.errors import BadInputError
from pomagan_post.io.base import parse_size as parse_frame_size

from .augment import Augment
from .composition import (
    CompositionDataset,
    PairedDataset,
    SyntheticFolder,
    find_layout,
    fit_sample,
    subjects,
)
from .synthetic import EXTRA_PEOPLE, SyntheticPortraits, builtin_backgrounds, collect_backgrounds, render_portrait, write_dataset

__all__ = [
    "SEG_THRESHOLD",
    "seg_from_alpha",
    "finish_sample",
    "build_dataset",
    "parse_size",
    "Augment",
    "CompositionDataset",
    "PairedDataset",
    "SyntheticFolder",
    "SyntheticPortraits",
    "builtin_backgrounds",
    "collect_backgrounds",
    "find_layout",
    "generated",
    "fit_sample",
    "render_portrait",
    "subjects",
    "write_dataset",
]

SEG_THRESHOLD = 0.5
_KINDS = {"aim": "aim", "adobe": "aim", "d646": "d646", "pm85": "pm85", "photomatte85": "pm85",
          "paired": "paired", "studio": "paired", "p3m": "paired", "ppm": "paired",
          "synthetic": "synthetic"}


def seg_from_alpha(alpha: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Segmentation ground truth: ``opening(alpha >= 0.5)``, 3 x 3 square, as float 0/1.

    Accepts numpy ``[H, W]`` / ``[H, W, 1]`` or torch ``[H, W]`` / ``[1, H, W]`` /
    ``[B, 1, H, W]``; returns the same type, shape and (float) dtype.
    """
    if isinstance(alpha, torch.Tensor):
        x = alpha
        shape = x.shape
        x4 = x.reshape(-1, 1, shape[-2], shape[-1]).float()
        m = (x4 >= SEG_THRESHOLD).float()
        eroded = -torch.nn.functional.max_pool2d(-m, 3, stride=1, padding=1)
        opened = torch.nn.functional.max_pool2d(eroded, 3, stride=1, padding=1)
        dtype = alpha.dtype if alpha.is_floating_point() else torch.float32
        return opened.reshape(shape).to(dtype)
    import cv2

    a = np.asarray(alpha)
    m = (a.reshape(a.shape[0], a.shape[1]) >= SEG_THRESHOLD).astype(np.uint8)
    opened = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8),
                              borderType=cv2.BORDER_REPLICATE)
    out_dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.float32
    return opened.astype(out_dtype).reshape(a.shape)


def _chw(x: np.ndarray) -> torch.Tensor:
    if x.ndim == 2:
        x = x[..., None]
    x = np.clip(x, 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))


def finish_sample(sample: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """A numpy HWC sample -> the contract's CHW float32 tensors, with ``seg`` added."""
    out = {"image": _chw(sample["image"]), "alpha": _chw(sample["alpha"])}
    out["seg"] = seg_from_alpha(out["alpha"])
    for key in ("fg", "bg"):
        if key in sample:
            out[key] = _chw(sample[key])
    return out


def parse_size(size: str | Sequence[int]) -> tuple[int, int]:
    """``"1280x768"`` or ``(1280, 768)`` -> ``(W, H)``, each at least 8."""
    return parse_frame_size(size, minimum=8)


def _split_spec(spec: str) -> tuple[str | None, str]:
    head, sep, tail = spec.partition(":")
    if sep and head.lower() in _KINDS and not (len(head) == 1 and os.name == "nt"):
        return _KINDS[head.lower()], tail
    return None, spec


def generated(spec: str | os.PathLike[str]) -> bool:
    """Whether a spec is ``synthetic:N``: portraits generated on the fly (``--extra-people`` and
    ``--props`` / ``--closeups`` / ``--mono`` shape these only; a written set on disk holds what it was made with)."""
    kind, rest = _split_spec(str(spec))
    return kind == "synthetic" and rest.strip().isdigit() and not Path(rest).is_dir()


def absolute_spec(spec: str) -> str:
    """``spec`` with the path in it absolute (``paired:mystudio`` ->
    ``paired:/projects/show/mystudio``), so a run's recorded settings still name its data when
    it is resumed from another folder; ``synthetic:N`` and names of nothing on disk unchanged."""
    kind, rest = _split_spec(str(spec))
    if not rest or not Path(rest).exists():
        return str(spec)
    head = str(spec)[: len(str(spec)) - len(rest)]  # "paired:" as written, or nothing
    return head + os.path.abspath(rest)


def build_dataset(spec: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                  size: str | Sequence[int] = (1280, 768), split: str = "train", seed: int = 0,
                  augment: bool | Augment | None = True, backgrounds: Any = None,
                  bg_per_fg: int | None = None, extra_people: Sequence[float] | None = None,
                  props: float = 0.0, closeups: float = 0.0, mono: float = 0.0) -> Dataset:
    """A dataset from a spec (see the module docstring).

    Args:
        spec: ``"synthetic:N"``, a folder, ``"KIND:PATH"`` or a list of those (concatenated).
        size: ``(W, H)`` or ``"WxH"`` of every item.
        split: ``"train"`` or ``"test"``.
        seed: fixes every random choice (items are deterministic by seed and index).
        augment: True: the default :class:`Augment` for ``train`` and none for ``test``; an
            ``Augment`` instance: used as given; False/None: deterministic resize/crop only.
        backgrounds: background photos (folder, files) for composition and synthetic sets;
            None: procedural backgrounds plus :func:`builtin_backgrounds`.
        bg_per_fg: composites per subject (default 100 train / 20 test).
        extra_people: ``synthetic:N`` sets only: chances of a second and a third person
            (None: the generator's default, which also draws the seeded test sets).
        props: ``synthetic:N`` sets only: chance of background objects touching the people
            (:func:`pomagan_train.data.synthetic.render_portrait`; 0: none, as the test sets).
        closeups: ``synthetic:N`` sets only: chance of a close-up framing of the front person
            (the same function; 0: none, as the test sets).
        mono: ``synthetic:N`` sets only: chance of a monochrome frame (the same function; 0:
            none, as the test sets).
    """
    w, h = parse_size(size)
    if split not in ("train", "test"):
        raise BadInputError(f"split must be 'train' or 'test', got {split!r}")
    if not isinstance(spec, (str, os.PathLike)):
        parts = [build_dataset(s, (w, h), split, seed + 1000 * i, augment, backgrounds, bg_per_fg, extra_people,
                               props, closeups, mono)
                 for i, s in enumerate(spec)]
        if not parts:
            raise BadInputError("empty list of dataset specs")
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)
    if isinstance(augment, Augment):
        aug: Augment | None = augment
    elif augment and split == "train":
        aug = Augment(size=(w, h))
    else:
        aug = None
    kind, rest = _split_spec(str(spec))
    if kind == "synthetic" and not Path(rest).is_dir():
        try:
            n = int(rest)
        except ValueError:
            raise BadInputError(f"synthetic spec must be synthetic:N or synthetic:FOLDER, got {spec!r}") from None
        bgs = collect_backgrounds(backgrounds, builtin=backgrounds is None)
        if aug is not None and augment is True:
            # The generator already varies scale and position: zoom in only (no mirrored borders).
            aug = Augment(size=(w, h), scale=(1.0, 1.25))
        # Test sets draw from a different seed stream than training sets with the same seed.
        return SyntheticPortraits(n, (w, h), seed=seed if split == "train" else seed + 10_000_019,
                                  backgrounds=bgs, augment=aug,
                                  extra_people=EXTRA_PEOPLE if extra_people is None else extra_people,
                                  props=props, closeups=closeups, mono=mono)
    root = Path(rest)
    if not root.exists():
        head, sep, _ = str(spec).partition(":")
        if kind is None and sep and len(head) > 1 and head.isalnum():  # a kind misspelt, not a path
            raise BadInputError(f"unknown dataset kind {head!r} in {spec!r}; use one of "
                                f"{', '.join(sorted(set(_KINDS)))} (synthetic:N: N generated portraits), or a folder")
        raise BadInputError(f"dataset folder not found: {root}")
    kind = kind or find_layout(root)
    if kind == "synthetic":
        return SyntheticFolder(root, (w, h), seed=seed, augment=aug)
    files, mattes = subjects(root, kind, split)
    if kind == "paired":
        return PairedDataset(files, mattes, (w, h), seed=seed, augment=aug)  # type: ignore[arg-type]
    bgs = collect_backgrounds(backgrounds, builtin=False) if backgrounds is not None else []
    return CompositionDataset(files, mattes, bgs or None, bg_per_fg=bg_per_fg, size=(w, h), seed=seed,
                              split=split, augment=aug)
