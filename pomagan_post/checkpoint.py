"""Checkpoints: one format for training and inference.

A checkpoint is a `safetensors <https://github.com/huggingface/safetensors>`_ file: the model's
tensors plus a string header. Loading parses JSON and raw tensor bytes only, so no pickled code
is ever executed. The header holds (all JSON strings):

``format``            ``"pomagan-post-checkpoint"``
``format_version``    integer; old versions are upgraded by :func:`_upgrade` (the one filter)
``variant``           registry name (``"fast"``, ``"paper"``, ...)
``config``            the :class:`~pomagan_post.models.PomaganConfig` (so custom widths load too)
``input``             input conventions (colour space, range, layout, normalisation)
``trained``           ``true`` / ``false`` (a placeholder says false)
``description``       one line for ``pomagan-post info``
``training_data``     what the weights were trained on
``recipe``            the training recipe (free-form JSON object)
``meta``              any other keyword given to :func:`save_checkpoint`
``sha256``            digest of the tensor data section, checked on load (detects corruption)
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import BadInputError, CheckpointError, WeightsNotFoundError
from .io.atomic import atomic_path
from .models import Pomagan, PomaganConfig

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "INPUT_CONVENTIONS",
    "bundled_checkpoint_path",
    "load_checkpoint",
    "read_checkpoint_info",
    "save_checkpoint",
    "stage_steps",
]

FORMAT = "pomagan-post-checkpoint"
FORMAT_VERSION = 1
BUNDLED_NAME = "default.safetensors"

#: What every POMAGAN network expects; stored in each checkpoint.
INPUT_CONVENTIONS: dict[str, Any] = {
    "colour_space": "display-referred sRGB-encoded (scene-linear sources converted first)",
    "range": [0.0, 1.0],
    "layout": "NCHW, RGB",
    "normalisation": "x * 2 - 1, applied inside the networks",
    "stride": None,  # filled per variant
    "working_size": None,  # short side the weights were trained for; None = the engine's 768
}


def bundled_checkpoint_path() -> Path:
    """Path of the default checkpoint shipped inside the package."""
    return Path(str(resources.files("pomagan_post") / "weights" / BUNDLED_NAME))


def save_checkpoint(
    model: Pomagan,
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    trained: bool = True,
    description: str = "",
    training_data: str = "",
    recipe: dict[str, Any] | None = None,
    working_size: int | None = None,
    **meta: Any,
) -> Path:
    """Write ``model`` to ``path`` atomically (temp file + rename).

    Args:
        model: a :class:`Pomagan` (its variant name and config are recorded).
        path: destination; parent folders are created.
        dtype: store floating tensors in this dtype (e.g. ``torch.float16`` for a small
            shipped checkpoint); default keeps the model's dtype.
        trained: ``False`` labels a placeholder / untrained checkpoint.
        description: one line shown by ``pomagan-post info``.
        training_data: what the weights were trained on.
        recipe: the training recipe (JSON-serialisable).
        working_size: the working resolution (short side) the weights suit best; engines
            built without an explicit ``working_size`` use it.
        **meta: any other JSON-serialisable metadata, stored under ``meta``.
    Returns:
        The path written.
    """
    if not isinstance(model, Pomagan):
        raise TypeError(f"save_checkpoint expects a Pomagan model, got {type(model).__name__}")
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous()
    conventions = dict(INPUT_CONVENTIONS, stride=model.stride, working_size=working_size)
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "variant": model.variant,
        "config": json.dumps(model.config.to_dict()),
        "input": json.dumps(conventions),
        "trained": json.dumps(bool(trained)),
        "description": description,
        "training_data": training_data,
        "recipe": json.dumps(recipe or {}),
        "meta": json.dumps(meta),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    # The data section does not depend on the header's content, so hash it from a first pass.
    header["sha256"] = hashlib.sha256(_data_section(st_save(tensors, metadata=header))).hexdigest()
    blob = st_save(tensors, metadata=header)

    path = Path(path)
    with atomic_path(path, fsync=True) as tmp:
        tmp.write_bytes(blob)
    return path


def _data_section(blob: bytes) -> bytes:
    (header_len,) = struct.unpack("<Q", blob[:8])
    return blob[8 + header_len :]


def _resolve(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        resolved = bundled_checkpoint_path()
        if not resolved.is_file():
            raise WeightsNotFoundError(
                f"the bundled default checkpoint is missing from the installation ({resolved}); "
                "reinstall pomagan-post or pass a checkpoint path"
            )
        return resolved
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise WeightsNotFoundError(f"checkpoint not found: {resolved}")
    if not resolved.is_file():
        raise WeightsNotFoundError(f"checkpoint path is not a file: {resolved}")
    return resolved


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Parse and verify a checkpoint file: (header, tensors). Raises CheckpointError."""
    blob = path.read_bytes()
    bad = f"{path} is not a POMAGAN checkpoint"
    if len(blob) < 8:
        raise CheckpointError(f"{bad} (file is {len(blob)} bytes, corrupt or truncated)")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > len(blob) - 8:
        raise CheckpointError(f"{bad} (not a safetensors file, or truncated)")
    try:
        header = json.loads(blob[8 : 8 + header_len]).get("__metadata__") or {}
        tensors = st_load(blob)
    except Exception as exc:  # safetensors / json raise several types for garbage
        raise CheckpointError(f"{bad} (corrupt safetensors data: {exc})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{bad} (a safetensors file without POMAGAN metadata)")
    expected = header.get("sha256")
    if expected and hashlib.sha256(_data_section(blob)).hexdigest() != expected:
        raise CheckpointError(f"{path} is corrupt: tensor data does not match its checksum")
    return _upgrade(header, tensors)


def _upgrade(header: dict[str, str], tensors: dict[str, torch.Tensor]) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The one filter old checkpoints go through on their way in (format version migrations)."""
    try:
        version = int(header.get("format_version", "0"))
    except ValueError:
        raise CheckpointError(f"bad checkpoint format_version {header.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {version} is newer than this pomagan-post understands "
            f"({FORMAT_VERSION}); upgrade pomagan-post"
        )
    if version < 1:
        raise CheckpointError(f"unsupported checkpoint format version {version}")
    return header, tensors


def _info_from_header(path: Path, header: dict[str, str]) -> dict[str, Any]:
    try:
        return {
            "path": str(path),
            "variant": header["variant"],
            "config": json.loads(header["config"]),
            "input": json.loads(header.get("input", "{}")),
            "trained": json.loads(header.get("trained", "true")),
            "description": header.get("description", ""),
            "training_data": header.get("training_data", ""),
            "recipe": json.loads(header.get("recipe", "{}")),
            "meta": json.loads(header.get("meta", "{}")),
            "created": header.get("created", ""),
            "format_version": int(header["format_version"]),
        }
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path} has a damaged POMAGAN header ({exc})") from None


def read_checkpoint_info(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The metadata of a checkpoint (``None`` = the bundled default), without building a model."""
    resolved = _resolve(path)
    header, _ = _read(resolved)
    return _info_from_header(resolved, header)


def load_checkpoint(
    path: str | os.PathLike[str] | None = None,
    *,
    variant: str | None = None,
    device: str | torch.device = "cpu",
) -> Pomagan:
    """Load a checkpoint into a :class:`Pomagan` in eval mode, weights in float32.

    Args:
        path: a checkpoint file, or ``None`` for the default bundled with the package.
        variant: when given, the checkpoint must be of this variant (else CheckpointError).
        device: where to put the model.
    Returns:
        The model, with the checkpoint's metadata as ``model.checkpoint_info``.
    Raises:
        WeightsNotFoundError: the path does not exist.
        CheckpointError: corrupt, foreign, wrong variant, or tensors that do not fit.
        DeviceError: ``device`` is CUDA on a machine without it (BadInputError: not a device).
    """
    from .engine import resolve_device
    from .models import list_models

    device = resolve_device(device)  # said before the file is read, as the engine says it
    if variant is not None and variant not in list_models() and not variant.endswith("+custom"):
        raise BadInputError(f"unknown variant {variant!r}; variants: {', '.join(list_models())}")
    resolved = _resolve(path)
    header, tensors = _read(resolved)
    info = _info_from_header(resolved, header)
    if variant is not None and info["variant"] != variant:
        raise CheckpointError(
            f"{resolved} holds variant {info['variant']!r}, not the requested {variant!r}"
        )
    try:
        config = PomaganConfig.from_dict(info["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{resolved} has an invalid architecture config ({exc})") from None
    model = Pomagan(config, variant=info["variant"])
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in expected if k in tensors and tensors[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} with wrong shapes (e.g. {wrong[0]})")
        raise CheckpointError(
            f"{resolved} does not fit variant {info['variant']!r}: tensors " + ", ".join(parts)
        )
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:  # a diverged training run: every matte would come out empty or NaN
        raise CheckpointError(
            f"{resolved} holds NaN or infinite weights ({len(broken)} of {len(tensors)} tensors, e.g. "
            f"{broken[0]}): the training run that wrote it diverged; use an earlier checkpoint"
        )
    state = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    model.checkpoint_info = info
    return model.to(device).eval()


def stage_steps(recipe: dict[str, Any], stage: str) -> int | None:
    """Steps a checkpoint's ``stage`` network (``seg`` or ``alpha``) was trained for, its
    earlier runs (the recipe's ``history``) included; ``None``: never trained."""
    runs = [r for r in recipe.get("history", []) if isinstance(r, dict) and r.get("stage") == stage]
    if isinstance(recipe.get(stage), dict):
        runs.append(recipe[stage])
    if not runs:
        return None
    return sum(int(r.get("steps_done") or 0) for r in runs)


def untrained_warning(info: dict[str, Any] | None) -> str | None:
    """What to tell a user about to matte with a checkpoint not trained through both stages
    (its ``checkpoint_info``), or None for a trained one."""
    if not info or info.get("trained", True):
        return None
    stages = [k for k in ("seg", "alpha") if isinstance((info.get("recipe") or {}).get(k), dict)]
    if stages:
        return (f"the checkpoint is partly trained (stages trained: {', '.join(stages)}; mattes need both: "
                "train the other stage, see pomagan-post info)")
    return "the checkpoint is an untrained placeholder; mattes will be meaningless (pass --weights or set POMAGAN_WEIGHTS)"

