"""POMAGAN networks and the variant registry.

Registered variants: ``paper`` (pix2pixHD scale) and ``fast`` (real-time). Their parameter counts
and GFLOPs at 1280x768, measured by :func:`model_stats`, are tabulated in the README (checked by
``tests/test_models.py``) and printed by ``pomagan-post info --stats``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from .pomagan import AlphaNet, Pomagan, PomaganConfig, SegmentationNet

__all__ = [
    "AlphaNet",
    "Pomagan",
    "PomaganConfig",
    "SegmentationNet",
    "create_model",
    "get_config",
    "list_models",
    "register_variant",
    "model_stats",
]

_VARIANTS: dict[str, PomaganConfig] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_variant(name: str, config: PomaganConfig, description: str = "") -> None:
    """Add a named variant to the registry (names are unique)."""
    if name in _VARIANTS:
        raise ValueError(f"variant {name!r} is already registered")
    _VARIANTS[name] = config
    _DESCRIPTIONS[name] = description


register_variant(
    "paper",
    PomaganConfig(),
    "paper-sized: pix2pixHD scale, base 64, four downsamplings, 6+6 residual blocks",
)
register_variant(
    "fast",
    PomaganConfig(
        widths=(16, 32, 64, 128, 128),
        seg_widths=(8, 16, 32, 64, 64),
        seg_res_blocks=2,
        alpha_res_blocks=2,
    ),
    "real-time: a quarter of the paper width, 2+2 residual blocks",
)


def list_models() -> list[str]:
    """Names of the registered variants, in registration order."""
    return list(_VARIANTS)


def describe_model(name: str) -> str:
    get_config(name)
    return _DESCRIPTIONS[name]


def get_config(name: str) -> PomaganConfig:
    """The architecture of a registered variant."""
    try:
        return _VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown model variant {name!r}; registered: {', '.join(list_models())}"
        ) from None


def create_model(name: str = "fast", **overrides: Any) -> Pomagan:
    """Build a freshly initialised POMAGAN variant.

    Args:
        name: a registered variant (see :func:`list_models`).
        **overrides: :class:`PomaganConfig` fields to change (e.g. ``norm="group"``); the model is
            then labelled ``"<name>+custom"``.
    """
    config = get_config(name)
    if overrides:
        config = replace(config, **overrides)
        name = f"{name}+custom"
    return Pomagan(config, variant=name)


def model_stats(model: Pomagan, height: int = 768, width: int = 1280) -> dict[str, float]:
    """Parameter count and forward FLOPs of one ``height`` x ``width`` frame.

    FLOPs are counted by ``torch.utils.flop_counter`` (multiply-add = 2 FLOPs, convolutions and
    deconvolutions; norms and activations are not counted) on the meta device, so this costs no
    real compute.
    """
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    meta = Pomagan(model.config, model.variant).to("meta")
    image = torch.zeros(1, 3, height, width, device="meta")
    with FlopCounterMode(display=False) as counter:
        meta(image)
    flops = counter.get_total_flops()
    seg_flops = sum(counter.get_flop_counts().get("Pomagan.segmentation", {}).values())
    return {
        "params": params,
        "gflops": flops / 1e9,
        "seg_gflops": seg_flops / 1e9,
        "alpha_gflops": (flops - seg_flops) / 1e9,
    }
