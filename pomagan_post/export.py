"""Exports: the model packaged for other hosts.

:func:`export_nuke` writes a TorchScript file for Nuke's **CatFileCreator** / **Inference** nodes
(``pomagan-post export --target nuke OUT.pt``). Nuke runs a TorchScript module with one
``1 x C x H x W`` float tensor in and one out; everything else lives inside ``forward``
(:class:`NukeMatte`):

1. input ``[1, 4, H, W]`` Nuke scene-linear RGB (Rec.709 primaries: put an OCIOColorSpace in
   front for other working spaces) and alpha, any float dtype, any device; the alpha is used
   only with the ``roto`` knob on (a roto of the person, made hard at 0.5 and fed to the alpha
   network in place of the segmentation network's guess, as ``render --roto``); a module fed
   ``[1, 3, H, W]`` (a .cat made with three channels in) works without it;
2. to model space exactly as the engine's ``linear`` path does
   (:func:`pomagan_post.colour.linear_to_model_tensor`: sRGB OETF + soft clip), float32;
3. bilinear (antialiased) resize to the working resolution (short side ``working_size``, never
   upscaled), replicate padding to the stride and to at least two strides
   (:func:`pomagan_post.engine.working_shape`, :func:`~pomagan_post.engine.stride_padding`);
4. the network (segmentation, then alpha) **in the input's dtype** (Nuke's "Optimize for Speed
   and Memory" converts the weights and the input to half), cropped back; with the ``flip`` knob
   on, on the frame and its mirror image in one batch, the two mattes averaged (the engine's
   ``tta="flip"``);
5. alpha to the full frame by the same colour fast guided filter as the engine
   (:func:`pomagan_post.refine.guided_upsample_tensor`, float32), or bilinear;
6. output ``[1, 4, H, W]``: ``alpha x plate`` (linear, premultiplied; values above 1 kept) and
   alpha, in the input's dtype.

The foreground is ``alpha x plate`` (the engine's ``foreground="multiply"``), not the
multi-level foreground estimate: that solver is iterative, in-place and slow to script. Use the
POMAGAN node (``nuke_plugin``) or ``pomagan-post render`` for spill-free edges.

Every tensor ``forward`` makes is derived from the input (same device); the only dtype changes
are the deliberate float32 upcast for colour and filtering and the cast back. Tunables are plain
top-level attributes, which CatFileCreator custom knobs of the same name drive:
``working_size`` (int), ``guided`` (int, 0 or 1), ``guide_radius`` (int), ``guide_eps`` (float),
``flip`` (int, 0 or 1), ``roto`` (int, 0 or 1): check boxes bind to integers 0/1, not
True/False (Foundry's .cat reference, "Custom Knobs").
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from .colour import SOFT_CLIP_KNEE, linear_to_model_tensor
from .engine import DEFAULT_WORKING_SIZE, TTA_MODES, mirror_mean, stride_padding, with_mirror, working_shape
from .errors import BadInputError
from .io.atomic import atomic_path
from .models import Pomagan
from .refine import guided_upsample_tensor

__all__ = ["NukeMatte", "export_nuke", "is_nuke_export", "EXPORT_TARGETS", "NUKE_CHANNELS_IN",
           "NUKE_CHANNELS_OUT"]

EXPORT_TARGETS = ("nuke",)
#: CatFileCreator "Channels In" / "Channels Out" for the exported module.
NUKE_CHANNELS_IN = "rgba.red, rgba.green, rgba.blue, rgba.alpha"
NUKE_CHANNELS_OUT = "rgba.red, rgba.green, rgba.blue, rgba.alpha"


class NukeMatte(nn.Module):
    """Scene-linear RGB in, premultiplied RGB + alpha out: the module Nuke's Inference runs.

    ``[1, 4, H, W]`` (or ``[1, 3, H, W]``; the alpha read only with ``roto`` on) ->
    ``[1, 4, H, W]``, same dtype and device.

    Args:
        model: the POMAGAN network.
        working_size: short side the network runs at (an ``Int_Knob`` in Nuke).
        guided: guided-filter upsampling of alpha (``True``) or bilinear.
        guide_radius, guide_eps: the guided filter's window radius (low-resolution pixels) and
            regularisation, as in :func:`pomagan_post.guided_upsample`.
        flip: average the mattes of the frame and its mirror image (the engine's
            ``tta="flip"``), or one pass.
        pixel_aspect: the plate's pixel width / height (a ``Float_Knob``; 2 for a 2x anamorphic
            plate): the network sees the picture desqueezed, as the engine does.
        roto: take where the person is from the input's alpha (a roto drawn on their edge,
            hard at 0.5) instead of the segmentation network (``render --roto``).
    """

    def __init__(self, model: Pomagan, working_size: int = DEFAULT_WORKING_SIZE, guided: bool = True,
                 guide_radius: int = 1, guide_eps: float = 1e-4, flip: bool = False,
                 pixel_aspect: float = 1.0, roto: bool = False) -> None:
        super().__init__()
        self.model = model.eval()
        # Top-level attributes with plain types: CatFileCreator custom knobs map onto them.
        self.working_size: int = int(working_size)
        self.guided: int = int(bool(guided))  # (0/1: what a CatFileCreator check box binds to)
        self.guide_radius: int = int(guide_radius)
        self.guide_eps: float = float(guide_eps)
        self.flip: int = int(bool(flip))
        self.pixel_aspect: float = float(pixel_aspect)
        self.roto: int = int(bool(roto))
        self.stride: int = int(model.stride)
        self.knee: float = float(SOFT_CLIP_KNEE)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        dtype = image.dtype
        linear = torch.nan_to_num(image[:, :3].float(), nan=0.0, posinf=65504.0, neginf=-65504.0)
        x = linear_to_model_tensor(linear, self.knee)  # [N, 3, H, W] model space, float32
        height, width = x.shape[-2], x.shape[-1]
        aspect = self.pixel_aspect if 0.1 <= self.pixel_aspect <= 10.0 else 1.0
        h, w = working_shape(height, width, max(self.working_size, self.stride), aspect)
        resized = h != height or w != width
        small = self._working(x, h, w, resized)  # [N, 3, h', w']
        batch = with_mirror(small) if self.flip != 0 else small  # (the mirror image: mattes averaged)
        if self.roto != 0:
            if image.shape[1] < 4:
                raise ValueError("the roto knob takes the roto from the alpha channel: set the .cat's "
                                 "Channels In to rgba.red, rgba.green, rgba.blue, rgba.alpha")
            shape = (image[:, 3:4].float() >= 0.5).float()  # (NaN: outside)
            shape = self._working(shape, h, w, resized)
            alpha = self.model.matte(batch.to(dtype), (with_mirror(shape) if self.flip != 0 else shape).to(dtype))
        else:
            alpha = self.model(batch.to(dtype))[0]
        if self.flip != 0:
            alpha = mirror_mean(alpha)
        alpha = alpha[:, :, :h, :w].float()  # [N, 1, h, w]
        if resized:
            if self.guided != 0:
                alpha = guided_upsample_tensor(alpha, x, self.guide_radius, self.guide_eps)
            else:
                alpha = F.interpolate(alpha, size=[height, width], mode="bilinear", align_corners=False)
        alpha = alpha.clamp(0.0, 1.0)  # [N, 1, H, W]
        return torch.cat([linear * alpha, alpha], 1).to(dtype)  # [N, 4, H, W]

    def _working(self, x: torch.Tensor, h: int, w: int, resized: bool) -> torch.Tensor:
        """[N, C, H, W] -> the working resolution, padded to the stride (as the engine does)."""
        if resized:
            x = F.interpolate(x, size=[h, w], mode="bilinear", align_corners=False, antialias=True)
        pad_h, pad_w = stride_padding(h, w, self.stride)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")
        return x


def export_nuke(
    model: Pomagan,
    path: str | os.PathLike[str],
    *,
    working_size: int | None = None,
    upsample: str = "guided",
    guide_radius: int = 1,
    guide_eps: float = 1e-4,
    tta: str = "none",
    verify: bool = True,
) -> Path:
    """Write ``model`` as a TorchScript file for Nuke's CatFileCreator (atomic write).

    Args:
        model: a :class:`Pomagan` (e.g. from :func:`pomagan_post.load_checkpoint`); copied to
            the CPU in float32, the original is left alone.
        path: the ``.pt`` file to write.
        working_size: default of the ``working_size`` knob; ``None``: the checkpoint's recorded
            working size, else 768.
        upsample: ``guided`` or ``bilinear`` (default of the ``guided`` knob).
        guide_radius, guide_eps: guided filter settings (knobs ``guide_radius``, ``guide_eps``).
        tta: ``none`` (one pass, as the engine's default) or ``flip`` (mirror-image
            averaging): the default of the ``flip`` knob.
        verify: load the written file back and run it once on a small frame.

    Returns:
        The path written. Metadata (variant, checkpoint, versions, channels) is stored in the
        archive as ``extra/pomagan.json``.
    """
    import copy

    if not isinstance(model, Pomagan):
        raise TypeError(f"export_nuke expects a Pomagan model, got {type(model).__name__}")
    if upsample not in ("guided", "bilinear"):
        raise BadInputError(f"unknown upsample {upsample!r}; use guided or bilinear")
    if tta not in TTA_MODES:
        raise BadInputError(f"unknown tta {tta!r}; use one of {', '.join(TTA_MODES)}")
    info = model.checkpoint_info or {}
    if working_size is None:
        working_size = (info.get("input") or {}).get("working_size") or DEFAULT_WORKING_SIZE
    if int(working_size) < model.stride:
        raise BadInputError(f"working size must be at least {model.stride}, got {working_size}")
    if guide_radius < 1 or guide_eps <= 0:
        raise BadInputError(f"guide radius must be >= 1 and eps > 0, got {guide_radius}, {guide_eps}")

    net = copy.deepcopy(model).to("cpu", torch.float32).eval().requires_grad_(False)
    wrapper = NukeMatte(net, int(working_size), upsample == "guided", int(guide_radius), float(guide_eps),
                        tta == "flip")
    with _torchscript_on_purpose():
        scripted = torch.jit.script(wrapper)
    meta: dict[str, Any] = {
        "format": "pomagan-post-nuke",
        "pomagan_post": __version__,
        "torch": torch.__version__,
        "variant": model.variant,
        "checkpoint": os.path.abspath(info["path"]) if info.get("path") else "",
        "trained": info.get("trained", None),
        "description": info.get("description", ""),
        "channels_in": NUKE_CHANNELS_IN,
        "channels_out": NUKE_CHANNELS_OUT,
        "knobs": {"working_size": int(working_size), "guided": upsample == "guided",
                  "guide_radius": int(guide_radius), "guide_eps": float(guide_eps), "flip": tta == "flip",
                  "pixel_aspect": 1.0, "roto": False},
    }

    path = Path(path)
    with atomic_path(path) as tmp, _torchscript_on_purpose():
        torch.jit.save(scripted, str(tmp), _extra_files={"pomagan.json": json.dumps(meta, indent=1)})
        if verify:
            _verify(str(tmp), model.stride)
    return path


def is_nuke_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file :func:`export_nuke` wrote: a TorchScript archive holding its
    ``extra/pomagan.json`` of format ``pomagan-post-nuke``. A checkpoint saved by ``torch.save``
    is a zip archive too, but holds no such entry."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 2 and n.endswith("/extra/pomagan.json")]
            return len(names) == 1 and json.loads(archive.read(names[0])).get("format") == "pomagan-post-nuke"
    except (OSError, zipfile.BadZipFile, ValueError, AttributeError):
        return False


@contextmanager
def _torchscript_on_purpose():
    """Silence torch's TorchScript deprecation warnings: Nuke's Inference runs TorchScript only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*")
        yield


def _verify(path: str, stride: int) -> None:
    """Load the file back and run one small odd-sized frame, as RGB and as RGBA with the roto
    knob on: shape and finiteness."""
    loaded = torch.jit.load(path, map_location="cpu")
    size = (stride + 3, stride * 2 + 5)
    with torch.inference_mode():
        outs = [loaded(torch.rand(1, 3, *size))]
        loaded.roto = 1
        outs.append(loaded(torch.rand(1, 4, *size)))
    for out in outs:
        if tuple(out.shape) != (1, 4, *size) or not bool(torch.isfinite(out).all()):
            raise RuntimeError(f"exported module failed its self-check: output {tuple(out.shape)}")
