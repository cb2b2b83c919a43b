"""POMAGAN Post: portrait matting for film and video post-production.

Public API (stable names): :func:`create_model`, :func:`list_models`, :func:`load_checkpoint`,
:func:`save_checkpoint`, :class:`Engine`, :func:`render`, :func:`estimate_foreground`,
:func:`premultiplied_foreground`, :func:`guided_upsample`, and the errors in :mod:`pomagan_post.errors`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    BadInputError,
    CheckpointError,
    DeviceError,
    MissingFramesError,
    PomaganError,
    UnsupportedFormatError,
    WeightsNotFoundError,
)
from .models import Pomagan, PomaganConfig, create_model, list_models, model_stats
from .checkpoint import bundled_checkpoint_path, load_checkpoint, read_checkpoint_info, save_checkpoint
from .engine import Engine
from .refine import estimate_foreground, guided_upsample, premultiplied_foreground
from .renderer import RenderReport, render

__all__ = [
    "__version__",
    "BadInputError",
    "CheckpointError",
    "DeviceError",
    "Engine",
    "MissingFramesError",
    "Pomagan",
    "RenderReport",
    "PomaganConfig",
    "PomaganError",
    "UnsupportedFormatError",
    "WeightsNotFoundError",
    "bundled_checkpoint_path",
    "create_model",
    "estimate_foreground",
    "guided_upsample",
    "list_models",
    "load_checkpoint",
    "model_stats",
    "premultiplied_foreground",
    "read_checkpoint_info",
    "render",
    "save_checkpoint",
]
