"""The paper's losses, each a function of tensors, and the per-stage objectives that compose them.

Notation (paper-notes): I image, s / s* predicted / true segmentation, alpha / alpha*, F = I x
matte (the paper's foreground term), B an arbitrary background. ``||.||_1`` is the *mean*
absolute difference (so weights do not depend on the image size).

Segmentation stage (weights lambda = beta = gamma = 10)::

    L_seg    = |s* - s| + |F* - F|                       F* = I s*, F = I s
    L_border = |s_b s* - s_b s| + |F_b* - F_b|           s_b = dilate(s*) - erode(s*)
    L_per    = sum_i c_i (|V_i(s*) - V_i(s)| + |V_i(F*) - V_i(F)|)

Alpha stage (lambda = 10, beta = gamma = 100)::

    L_alpha  = |a* - a| + |F* - F| + |I' - I''|           I' = I a* + B (1 - a*), I'' likewise
    L_border = |a* a_b - a a_b| + |F_b* - F_b| + |I_b' - I_b''|
               a_b = dilate(bin(a*)) - erode(bin(a*)); F_b* = I (a* a_b); I_b' = I (a* a_b) + B (1 - a* a_b)

Choices the paper leaves open, made here: the background B for the composite terms is a smooth
random colour field per sample (:func:`random_backgrounds`), so the term weights alpha errors by
how far the subject's colour is from an unrelated background; bin(a*) = a* > 0.5; the border
structuring element is a square of ``border_kernel`` pixels; VGG layers relu1_1..relu5_1 with
pix2pixHD's c_i = 1/32, 1/16, 1/8, 1/4, 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from pomagan_post.errors import WeightsNotFoundError

from .config import LossConfig

__all__ = [
    "adversarial_d_loss",
    "adversarial_g_loss",
    "border_map",
    "default_vgg19_path",
    "l1",
    "random_backgrounds",
    "segmentation_terms",
    "alpha_terms",
    "VGG19Perceptual",
]

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's IMAGENET1K_V1 file name


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference."""
    return (a - b).abs().mean()


def dilate(mask: torch.Tensor, kernel: int) -> torch.Tensor:
    return F.max_pool2d(mask, kernel, stride=1, padding=kernel // 2)


def erode(mask: torch.Tensor, kernel: int) -> torch.Tensor:
    return -F.max_pool2d(-mask, kernel, stride=1, padding=kernel // 2)


def border_map(mask: torch.Tensor, kernel: int = 15, threshold: float | None = None) -> torch.Tensor:
    """dilate(m) - erode(m) with a square ``kernel``; m = mask > threshold when one is given.

    [B, 1, H, W] -> [B, 1, H, W], 1 on a band of about ``kernel`` pixels around the edge.
    """
    if threshold is not None:
        mask = (mask > threshold).to(mask.dtype)
    return dilate(mask, kernel) - erode(mask, kernel)


# -- adversarial ---------------------------------------------------------------------------------


def adversarial_d_loss(kind: str, real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """Discriminator loss summed over scales (``real``/``fake``: logit maps per scale)."""
    total = real[0].new_zeros(())
    for r, f in zip(real, fake):
        r, f = r.float(), f.float()
        if kind == "gan":
            total = total + F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + \
                F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        elif kind == "lsgan":
            total = total + ((r - 1) ** 2).mean() + (f**2).mean()
        elif kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        else:
            raise ValueError(f"unknown adversarial loss {kind!r}")
    return total * 0.5


def adversarial_g_loss(kind: str, fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """Generator loss summed over the discriminators' scales."""
    total = fake[0].new_zeros(())
    for f in fake:
        f = f.float()
        if kind == "gan":
            total = total + F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
        elif kind == "lsgan":
            total = total + ((f - 1) ** 2).mean()
        elif kind == "hinge":
            total = total - f.mean()
        else:
            raise ValueError(f"unknown adversarial loss {kind!r}")
    return total


# -- perceptual ----------------------------------------------------------------------------------


def default_vgg19_path() -> Path:
    """torchvision's cache file for VGG-19 ImageNet weights (never downloaded by us)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


class VGG19Perceptual(nn.Module):
    """Perceptual distance on VGG-19 ``features`` layers (Johnson et al.), frozen, ImageNet-normalised.

    Args:
        weights: a torchvision VGG-19 state dict file (``features.N.weight`` keys; the classifier is
            ignored), loaded with ``weights_only=True``. ``None`` = torchvision's cache file.
        layers: ``features`` indices to compare (default relu1_1, relu2_1, relu3_1, relu4_1, relu5_1).
        layer_weights: c_i per layer.
    Raises:
        WeightsNotFoundError: naming the exact file that is missing.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        layers: Sequence[int] = (1, 6, 11, 20, 29),
        layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
    ) -> None:
        super().__init__()
        from torchvision.models import vgg19

        path = Path(weights).expanduser() if weights else default_vgg19_path()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"VGG-19 weights for the perceptual loss not found: {path} (copy torchvision's "
                f"{VGG19_FILE} there or pass --vgg-weights FILE; or train with --perceptual off)"
            )
        self.layers = tuple(layers)
        self.layer_weights = tuple(layer_weights)
        features = vgg19(weights=None).features[: max(self.layers) + 1]
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # not a torch file, a cut-short download, a pickle holding code
            raise WeightsNotFoundError(
                f"{path} is not a VGG-19 state dict (torch.load with weights_only=True cannot read it: "
                f"not a torch file, cut short, or a pickle that holds more than tensors)"
            ) from None
        if not isinstance(state, dict):
            raise WeightsNotFoundError(f"{path} is not a VGG-19 state dict (it holds a {type(state).__name__})")
        state = {k[len("features."):]: v for k, v in state.items()
                 if isinstance(k, str) and k.startswith("features.")}
        wanted = features.state_dict()
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise WeightsNotFoundError(f"{path} is not a VGG-19 state dict (missing features.{missing[0]})")
        wrong = [k for k in wanted if not isinstance(state[k], torch.Tensor) or state[k].shape != wanted[k].shape]
        if wrong:
            raise WeightsNotFoundError(f"{path} is not a VGG-19 state dict (features.{wrong[0]} has the wrong shape)")
        features.load_state_dict({k: state[k] for k in wanted})
        self.features = features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> "VGG19Perceptual":  # always frozen, always eval
        return super().train(False)

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.layers:
                out.append(x)
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """sum_i c_i |V_i(target) - V_i(pred)| for [B, 1 or 3, H, W] in [0, 1]."""
        total = pred.new_zeros((), dtype=torch.float32)
        for c, fp, ft in zip(self.layer_weights, self._feats(pred), self._feats(target.detach())):
            total = total + c * l1(fp.float(), ft.float())
        return total


# -- per-stage reconstruction terms --------------------------------------------------------------


def random_backgrounds(image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Smooth random colour fields, one per sample: [B, 3, H, W] in [0, 1] (the arbitrary B)."""
    b, _, h, w = image.shape
    coarse = torch.rand(b, 3, 4, 4, generator=generator, device="cpu").to(image.device, image.dtype)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


Perceptual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def segmentation_terms(
    image: torch.Tensor,
    seg: torch.Tensor,
    seg_true: torch.Tensor,
    cfg: LossConfig,
    perceptual: Perceptual | None = None,
) -> dict[str, torch.Tensor]:
    """Unweighted L_seg, L_border and L_per of the segmentation stage (enabled terms only)."""
    fg, fg_true = image * seg, image * seg_true
    terms: dict[str, torch.Tensor] = {}
    matte = []
    if "matte" in cfg.matte_terms:
        matte.append(l1(seg, seg_true))
    if "fg" in cfg.matte_terms:
        matte.append(l1(fg, fg_true))
    terms["seg"] = torch.stack(matte).sum()
    if cfg.border:
        sb = border_map(seg_true, cfg.border_kernel)
        terms["border"] = l1(sb * seg_true, sb * seg) + l1(image * (seg_true * sb), image * (seg * sb))
    if perceptual is not None:
        terms["per"] = perceptual(seg, seg_true) + perceptual(fg, fg_true)
    return terms


def alpha_terms(
    image: torch.Tensor,
    alpha: torch.Tensor,
    alpha_true: torch.Tensor,
    background: torch.Tensor,
    cfg: LossConfig,
    perceptual: Perceptual | None = None,
) -> dict[str, torch.Tensor]:
    """Unweighted L_alpha, L_border and L_per of the alpha stage (enabled terms only)."""

    def pieces(a: torch.Tensor, a_true: torch.Tensor) -> list[torch.Tensor]:
        out = []
        if "matte" in cfg.matte_terms:
            out.append(l1(a, a_true))
        if "fg" in cfg.matte_terms:
            out.append(l1(image * a, image * a_true))
        if "comp" in cfg.matte_terms:
            comp = image * a + background * (1 - a)
            comp_true = image * a_true + background * (1 - a_true)
            out.append(l1(comp, comp_true))
        return out

    terms = {"alpha": torch.stack(pieces(alpha, alpha_true)).sum()}
    if cfg.border:
        ab = border_map(alpha_true, cfg.border_kernel, threshold=cfg.border_threshold)
        terms["border"] = torch.stack(pieces(alpha * ab, alpha_true * ab)).sum()
    if perceptual is not None:
        terms["per"] = perceptual(alpha, alpha_true) + perceptual(image * alpha, image * alpha_true)
    return terms
