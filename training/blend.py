"""``pomagan-train blend``: weight-space blending of a fine-tuned checkpoint with its base."""

from __future__ import annotations

from pathlib import Path

import torch

import pomagan_post
from pomagan_post.checkpoint import save_checkpoint
from pomagan_post.errors import BadInputError

__all__ = ["blend_checkpoints"]

_NETWORKS = {"seg": ("segmentation.",), "alpha": ("alpha.",), "both": ("segmentation.", "alpha.")}


def blend_checkpoints(fine_tuned: str, base: str, weight: float, stage: str, out: str | Path) -> Path:
    """Write ``out``: ``fine_tuned`` with the ``stage`` network's floating weights replaced by
    ``weight * fine_tuned + (1 - weight) * base`` (``stage``: seg, alpha or both). Both must
    be the same variant; ``out`` must not exist (it never writes over a checkpoint)."""
    if not 0.0 <= weight <= 1.0:
        raise BadInputError(f"--weight is the fine-tuned checkpoint's share, 0 to 1, got {weight:g}")
    if stage not in _NETWORKS:
        raise BadInputError(f"--stage must be seg, alpha or both, got {stage!r}")
    out = Path(out)
    if out.exists():
        raise BadInputError(f"{out} exists: blend writes a new checkpoint, never over one")
    tuned = pomagan_post.load_checkpoint(fine_tuned)
    start = pomagan_post.load_checkpoint(None if base == "default" else base)
    if tuned.variant != start.variant:
        raise BadInputError(f"{fine_tuned} is the {tuned.variant} variant and {base} the {start.variant} "
                            "variant: only checkpoints of one variant blend")
    mine, theirs = tuned.state_dict(), start.state_dict()
    prefixes = _NETWORKS[stage]
    blended = {k: torch.lerp(theirs[k], v, weight) if k.startswith(prefixes) and v.is_floating_point() else v
               for k, v in mine.items()}
    tuned.load_state_dict(blended)
    info = tuned.checkpoint_info
    recipe = dict(info["recipe"])
    base_info = start.checkpoint_info
    for name in ("seg", "alpha") if stage == "both" else (stage,):
        if isinstance(recipe.get(name), dict):
            recipe[name] = {**recipe[name], "blended": {
                "weight": weight, "base": "bundled default" if base == "default" else Path(base).name,
                "base_steps": (base_info["recipe"].get(name) or {}).get("steps_done"),
                "base_created": base_info.get("created", "")}}
    return save_checkpoint(
        tuned, out, trained=info["trained"],
        description=info["description"], training_data=info["training_data"], recipe=recipe,
        working_size=info["input"].get("working_size"), **info["meta"])
