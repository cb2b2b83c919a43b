"""``pomagan-train blend``: weight-space blending of a fine-tuned checkpoint with its base."""

from __future__ import annotations

from pathlib import Path

import torch

import pomagan_post
from pomagan_post.checkpoint import save_checkpoint, stage_steps
from pomagan_post.errors import BadInputError

__all__ = ["blend_checkpoints"]

#: Each stage's network: its name in messages and its weights' prefix in the state dict.
_NETWORKS = {"seg": "segmentation", "alpha": "alpha"}


def blend_checkpoints(fine_tuned: str, base: str, weight: float, stage: str, out: str | Path) -> Path:
    """Write ``out``: ``fine_tuned`` with the ``stage`` network's floating weights replaced by
    ``weight * fine_tuned + (1 - weight) * base`` (``stage``: seg, alpha or both); everything
    else (the other network, description, working size, recipe) is ``fine_tuned``'s, and the
    recipe records the blend. ``weight`` 0 takes the network whole from ``base``, and with it
    the base's record of that stage (its runs' settings and steps, marked ``taken_from``). Both must be one architecture with the blended networks trained;
    ``out`` must not exist (it never writes over a checkpoint)."""
    if not 0.0 <= weight <= 1.0:
        raise BadInputError(f"--weight is the fine-tuned checkpoint's share, 0 to 1, got {weight:g}")
    stages = ("seg", "alpha") if stage == "both" else (stage,)
    if not set(stages) <= set(_NETWORKS):
        raise BadInputError(f"--stage must be seg, alpha or both, got {stage!r}")
    if not str(out) or str(out).endswith(("/", "\\")) or Path(out).is_dir():
        raise BadInputError(f"--out must name a checkpoint file to write, got {str(out)!r}")
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise BadInputError(f"{out} exists: blend writes a new checkpoint, never over one")
    tuned = pomagan_post.load_checkpoint(fine_tuned)
    start = pomagan_post.load_checkpoint(None if base == "default" else base)
    base_name = "the bundled default" if base == "default" else str(Path(base).resolve())
    if tuned.variant != start.variant:
        raise BadInputError(f"{fine_tuned} is the {tuned.variant} variant and {base} the {start.variant} "
                            "variant: only checkpoints of one variant blend")
    mine, theirs = tuned.state_dict(), start.state_dict()
    if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
        raise BadInputError(f"{fine_tuned} and {base} are networks of different shapes (both "
                            f"{tuned.variant}, built differently): only checkpoints of one architecture blend")
    info, base_info = tuned.checkpoint_info, start.checkpoint_info
    for name in stages:
        for label, recipe in ((fine_tuned, info["recipe"]), (base, base_info["recipe"])):
            if stage_steps(recipe, name) is None:
                raise BadInputError(f"{label}: its {_NETWORKS[name]} network was never trained (the recipe has no "
                                    f"{name} stage), so it has nothing to blend; use --stage "
                                    f"{'alpha' if name == 'seg' else 'seg'} or a trained checkpoint")
    prefixes = tuple(f"{_NETWORKS[name]}." for name in stages)
    tuned.load_state_dict({k: torch.lerp(theirs[k], v, weight) if k.startswith(prefixes) and v.is_floating_point()
                           else v for k, v in mine.items()})
    recipe = dict(info["recipe"])
    for name in stages:
        base_stage = base_info["recipe"].get(name) if isinstance(base_info["recipe"].get(name), dict) else {}
        if weight == 0:
            # The network is the base's, whole: its record is the base's runs of it (their
            # settings and steps), not the replaced network's, and says where it came from.
            history = [r for r in recipe.get("history", []) if not (isinstance(r, dict) and r.get("stage") == name)]
            history += [r for r in base_info["recipe"].get("history", [])
                        if isinstance(r, dict) and r.get("stage") == name]
            recipe["history"] = history
            recipe[name] = {**base_stage, "taken_from": {"base": base_name, "base_created": base_info.get("created", "")}}
            continue
        entry = dict(recipe[name]) if isinstance(recipe.get(name), dict) else {"stage": name}
        if "blended" in entry:  # a blend of a blend: the earlier one is kept, oldest first
            entry["blended_before"] = [*entry.get("blended_before", []), entry["blended"]]
        entry["blended"] = {"weight": weight, "base": base_name, "base_steps": stage_steps(base_info["recipe"], name),
                            "base_created": base_info.get("created", ""),
                            "base_is_a_blend": "blended" in base_stage}
        recipe[name] = entry
    try:
        return save_checkpoint(
            tuned, out, trained=info["trained"],
            description=info["description"], training_data=info["training_data"], recipe=recipe,
            working_size=info["input"].get("working_size"), **info["meta"])
    except OSError as exc:
        raise BadInputError(f"cannot write {out}: {exc.strerror or exc}") from None
