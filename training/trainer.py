"""Trainers for both POMAGAN stages: networks -> objective -> trainer -> a short loop.

:class:`StageTrainer` owns the generator being trained (segmentation network, or alpha network
with the segmentation network frozen), the multi-scale discriminator, both Adam optimizers and the
mixed-precision scalers; :meth:`StageTrainer.generator_step` and
:meth:`StageTrainer.discriminator_step` are one update each; :meth:`StageTrainer.fit` is the loop
(progress bar, CSV / TensorBoard logs, validation, checkpoints, resume). Multi-GPU: launch the
same command with ``torchrun``; each process takes its rank from the environment, wraps both
networks in DistributedDataParallel and reads its shard through a DistributedSampler.

Checkpoints are written in the inference format (:func:`pomagan_post.save_checkpoint`), so a
training run's ``checkpoint.safetensors`` renders directly with ``pomagan-post render --weights``.
``train_state.pt`` beside it holds what resuming needs (step, discriminator, optimizers, scalers),
loaded with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import functools
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.checkpoint import checkpoint as activation_checkpoint
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler, RandomSampler

import pomagan_post
from pomagan_post import Pomagan
from pomagan_post.errors import BadInputError, CheckpointError, PomaganError, Stopped
from pomagan_post.io.atomic import atomic_path
from pomagan_post.models.blocks import ResidualBlock, UpBlock
from pomagan_post.stopping import SignalStop, StopSignals

from .config import TrainConfig, config_to_dict, narrow_widths, save_config
from .data import seg_from_alpha
from .discriminators import MultiscaleDiscriminator
from .losses import (
    VGG19Perceptual,
    adversarial_d_loss,
    adversarial_g_loss,
    alpha_terms,
    random_backgrounds,
    segmentation_terms,
)
from .rotos import hand_drawn

__all__ = [
    "DistInfo",
    "StageTrainer",
    "build_model",
    "enable_gradient_checkpointing",
    "init_distributed",
    "train",
]

CHECKPOINT_NAME = "checkpoint.safetensors"
STATE_NAME = "train_state.pt"
#: The checkpoint at the lowest validation MSE so far (written when a validation beats it).
BEST_NAME = "best.safetensors"


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (``WORLD_SIZE`` > 1), and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = pomagan_post.engine.resolve_device(device)
    if resolved.type == "cuda" and world > 1:
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank), resolved


def enable_gradient_checkpointing(module: nn.Module) -> None:
    """Recompute residual blocks and decoder steps in the backward pass (state dict unchanged)."""
    for sub in module.modules():
        if isinstance(sub, (ResidualBlock, UpBlock)):
            forward = sub.forward
            sub.forward = functools.partial(activation_checkpoint, forward, use_reentrant=False)


def build_model(cfg: TrainConfig, init: str | None = None, seg_weights: str | None = None) -> Pomagan:
    """The model a stage trains.

    Args:
        cfg: the stage's config (its ``variant`` must match any weights given).
        init: ``None`` (fresh weights), ``"default"`` (the bundled checkpoint) or a checkpoint
            path to fine-tune from.
        seg_weights: alpha stage: checkpoint holding the trained segmentation network
            (``"default"`` = the bundled one).
    """

    def load(spec: str, what: str) -> Pomagan:
        model = pomagan_post.load_checkpoint(None if spec == "default" else spec)
        if model.variant != cfg.variant:
            raise CheckpointError(
                f"{what} {spec} holds variant {model.variant!r} but the config trains "
                f"{cfg.variant!r}; pass --variant {model.variant}"
            )
        return model

    if cfg.stage == "seg":
        return load(init, "--init") if init else pomagan_post.create_model(cfg.variant)
    if not seg_weights:
        raise BadInputError("the alpha stage needs --seg-weights (a checkpoint with the trained segmentation network)")
    model = load(seg_weights, "--seg-weights")
    if init:
        model.alpha.load_state_dict(load(init, "--init").alpha.state_dict())
    else:  # a new alpha network (the checkpoint's may be trained: --init fine-tunes that one)
        model.alpha.load_state_dict(pomagan_post.create_model(cfg.variant).alpha.state_dict())
        if model.checkpoint_info:  # nor is it the heir of that one's alpha runs
            recipe = {k: v for k, v in model.checkpoint_info.get("recipe", {}).items() if k != "alpha"}
            if isinstance(recipe.get("history"), list):
                recipe["history"] = [r for r in recipe["history"] if not (isinstance(r, dict) and r.get("stage") == "alpha")]
            model.checkpoint_info = {**model.checkpoint_info, "recipe": recipe}
    return model


def _with_absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` naming its data, backgrounds and VGG weights by absolute paths: the run's
    config.yaml and its checkpoint's recipe then still find them when the run is resumed (or
    the recipe read) from another folder."""
    from .data import absolute_spec

    def absolute(path: str | None) -> str | None:
        return os.path.abspath(path) if path and Path(path).exists() else path

    return dataclasses.replace(
        cfg, data=tuple(absolute_spec(spec) for spec in cfg.data),
        val_data=absolute_spec(cfg.val_data) if cfg.val_data else cfg.val_data,
        backgrounds=absolute(cfg.backgrounds),
        losses=dataclasses.replace(cfg.losses, vgg_weights=absolute(cfg.losses.vgg_weights)))


#: How the recipe names the autocast precision a run used (``auto`` resolves per machine).
_PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return pomagan_post.engine.resolve_precision(precision, device)


#: Settings a resumed run may change and its recipe records (see ``StageTrainer._note_changes``).
RESUME_TRACKED = ("data", "backgrounds", "extra_people", "props", "closeups", "mono", "size", "batch_size", "lr_g", "lr_d", "betas",
                  "ema", "precision", "augment", "reuse", "reuse_buffer", "roto_rate", "narrow", "losses")
#: Tracked settings added after runs were saved without them, and the value those runs had.
_ADDED_SETTINGS = {"roto_rate": 0.0, "props": 0.0, "closeups": 0.0, "narrow": 0.0, "mono": 0.0}


class ReuseBuffer:
    """The frames of recently loaded batches, kept on the training device for ``cfg.reuse``.

    ``add`` stores a batch's frames (the newest replace the oldest once ``capacity`` is reached);
    ``sample`` draws a batch from the frames held, uniformly with replacement, each frame
    flipped left-right at random (its image and target together). Only ``keys`` are kept. The
    trainer draws from it once it holds ``ready`` frames (8 batches, or all it can hold): the
    first draws of a run do not go over a batch or two again and again.
    """

    def __init__(self, capacity: int, keys: tuple[str, ...], device: torch.device, seed: int,
                 ready: int = 1) -> None:
        self.capacity, self.keys, self.device = int(capacity), keys, device
        self.ready = min(max(int(ready), 1), self.capacity)
        self.store: dict[str, torch.Tensor] = {}
        self.filled = 0
        self._next = 0
        self.generator = torch.Generator().manual_seed(seed)

    def _allocate(self, batch: dict[str, torch.Tensor]) -> None:
        need = sum(batch[k][0].numel() * batch[k].element_size() for k in self.keys) * self.capacity
        try:
            self.store = {k: torch.empty((self.capacity, *batch[k].shape[1:]), dtype=batch[k].dtype,
                                         device=self.device) for k in self.keys}
        except (torch.OutOfMemoryError, RuntimeError):  # (a CPU allocation's failure is a RuntimeError)
            raise BadInputError(f"the reuse buffer of {self.capacity} frames ({need / 2**30:.1f} GiB) does not "
                                f"fit on {self.device}: lower --reuse-buffer") from None

    def add(self, batch: dict[str, torch.Tensor]) -> None:
        if not self.store:
            self._allocate(batch)
        n = batch[self.keys[0]].shape[0]
        slots = ((self._next + torch.arange(n)) % self.capacity).to(self.device)
        for k in self.keys:
            self.store[k][slots] = batch[k].to(self.device)
        self._next = (self._next + n) % self.capacity
        self.filled = min(self.filled + n, self.capacity)

    def sample(self, n: int) -> dict[str, torch.Tensor]:
        if not self.filled:
            raise RuntimeError("ReuseBuffer.sample before any batch was added")
        index = torch.randint(self.filled, (n,), generator=self.generator).to(self.device)
        flip = (torch.rand(n, generator=self.generator) < 0.5).to(self.device)
        out = {}
        for k in self.keys:
            frames = self.store[k][index]
            out[k] = torch.where(flip.view(-1, *([1] * (frames.dim() - 1))), frames.flip(-1), frames)
        return out


class StageTrainer:
    """One stage's GAN training.

    Args:
        cfg: the stage config.
        model: the full :class:`Pomagan`; the stage's network is trained, the rest frozen.
        device: this process's device.
        out_dir: where checkpoints, logs and the config go.
        dist_info: rank / world size (single process by default).
        perceptual: the VGG-19 perceptual distance, or ``None`` when the term is off.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        model: Pomagan,
        device: torch.device,
        out_dir: str | Path,
        dist_info: DistInfo = DistInfo(),
        perceptual: nn.Module | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = device
        self.dist = dist_info
        self.out_dir = Path(out_dir)
        self.model = model.to(device)
        self.stage_net = model.segmentation if cfg.stage == "seg" else model.alpha
        # The recipe this run's checkpoints extend (the weights it starts from); set_fine_tuned
        # moves the starting weights' own entry for this stage into the history.
        self._base_recipe = dict((model.checkpoint_info or {}).get("recipe", {}))
        #: Settings changed when this run was resumed: [{"step": N, key: [old, new], ...}, ...].
        self._changes: list[dict[str, Any]] = []
        #: (validation MSE x1e3, step) of ``best.safetensors``; kept across --resume.
        self.best: tuple[float, int] | None = None
        #: The signal that stopped :meth:`fit` early (after saving), if any.
        self.stopped_by: int | None = None
        if cfg.stage == "alpha":
            model.segmentation.eval().requires_grad_(False)
        self.stage_net.train()
        #: Moving average of the stage network's weights (``cfg.ema``): what validation and the
        #: checkpoint use. Copied before gradient checkpointing patches the live network.
        self.ema_net: nn.Module | None = None
        self._ema_warmup = True  # a fresh run ramps the decay up; fine-tuning averages from the start
        if cfg.ema is not None:
            self.ema_net = copy.deepcopy(self.stage_net).eval().requires_grad_(False)
        if cfg.grad_checkpoint:
            enable_gradient_checkpointing(self.stage_net)
        self.perceptual = perceptual.to(device) if perceptual is not None else None
        self.adversarial = cfg.losses.adversarial != "off"
        self.disc = MultiscaleDiscriminator(4, cfg.d_scales, cfg.d_base, cfg.d_layers).to(device)
        self.net = self.stage_net
        self.disc_ddp: nn.Module = self.disc
        if dist_info.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.net = DDP(self.stage_net, device_ids=ids)
            self.disc_ddp = DDP(self.disc, device_ids=ids)
        fused = device.type == "cuda"  # one kernel per step for all parameters
        self.opt_g = torch.optim.Adam(self.stage_net.parameters(), lr=cfg.lr_g, betas=cfg.betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr_d, betas=cfg.betas, fused=fused)
        self.amp_dtype = _autocast_dtype(cfg.precision, device)
        scaling = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=scaling)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=scaling)
        self.step = 0
        #: Batches taken from the loader (``step`` with reuse off): where a resume picks up the
        #: data (the epoch), however the steps between loads changed.
        self.loaded = 0
        self._saved_step = 0  # the step the run folder's checkpoint holds
        # Every loss since the last check was finite (a device flag: read when logging/saving).
        self._finite = torch.ones((), dtype=torch.bool, device=device)
        self._checked_step = 0
        self._bg_generator = torch.Generator().manual_seed(cfg.seed + 7919 * dist_info.rank)
        self._roto_generator = torch.Generator().manual_seed(cfg.seed + 7919 * dist_info.rank + 2)
        self._narrow_generator = torch.Generator().manual_seed(cfg.seed + 7919 * dist_info.rank + 3)
        self.reuse_buffer: ReuseBuffer | None = None
        if cfg.reuse > 1:
            frames = cfg.reuse_buffer or 64 * cfg.batch_size
            _check_reuse_buffer_fits(frames, cfg, device)
            self.reuse_buffer = ReuseBuffer(frames, ("image", "seg" if cfg.stage == "seg" else "alpha"), device,
                                            cfg.seed + 7919 * dist_info.rank + 1, ready=8 * cfg.batch_size)

    # -- one update each -------------------------------------------------------------------------

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype != torch.float32)

    def _target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["seg"] if self.cfg.stage == "seg" else batch["alpha"]

    def generate(self, image: torch.Tensor, net: nn.Module | None = None, logits: bool = False,
                 rotos: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The stage's output for a batch of images ([B, 3, H, W] -> [B, 1, H, W]); with
        ``logits`` the values before its sigmoid. ``rotos`` (alpha stage): ``(picked [B] bool,
        shapes [B, 1, H, W])``, the shapes fed in place of the segmentation network's output
        for the picked frames (``cfg.roto_rate``)."""
        net = net or self.net
        with self._autocast():
            if self.cfg.stage == "seg":
                return net(image, logits=logits).float()
            with torch.no_grad():
                seg = self.model.segmentation(image)
                if rotos is not None:
                    picked, shapes = rotos
                    seg = torch.where(picked.view(-1, 1, 1, 1), shapes.to(seg.dtype), seg)
            return net(image, seg, logits=logits).float()

    def _rotos(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """For ``cfg.roto_rate``: which frames of a batch get a roto drawn from their true matte
        (:func:`pomagan_train.rotos.hand_drawn`), and those shapes; None when none do."""
        if self.cfg.stage != "alpha" or not self.cfg.roto_rate:
            return None
        alpha = batch["alpha"]
        picked = (torch.rand(alpha.shape[0], generator=self._roto_generator) < self.cfg.roto_rate).to(alpha.device)
        if not picked.any():
            return None
        shapes = torch.zeros_like(alpha)
        shapes[picked] = hand_drawn(seg_from_alpha(alpha[picked]), self._roto_generator)
        return picked, shapes

    def _narrowed(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """For ``cfg.narrow``: the batch cut to a narrower frame (a width drawn from the multiples
        of the network stride between half the height and the full width, each frame at its own
        horizontal place, every array alike); else the batch as it is."""
        if not self.cfg.narrow:
            return batch
        gen = self._narrow_generator
        if float(torch.rand((), generator=gen)) >= self.cfg.narrow:
            return batch
        image = batch["image"]
        n, _, h, w = image.shape
        widths = narrow_widths(w, h, self.model.stride)  # (TrainConfig refuses a size with none)
        width = widths[int(torch.randint(len(widths), (), generator=gen))]
        starts = torch.randint(w - width + 1, (n, 1), generator=gen)
        cols = (starts + torch.arange(width)).to(image.device)  # [n, width]: each frame's columns

        def cut(t: torch.Tensor) -> torch.Tensor:
            if t.dim() != 4 or t.shape[-1] != w:
                return t
            index = cols.view(n, 1, 1, width).expand(n, t.shape[1], t.shape[2], width)
            return torch.gather(t, 3, index)

        return {k: cut(v) for k, v in batch.items()}

    def generator_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One Adam step of the generator; returns (detached output, loss values as detached
        0-d tensors: reading them waits for the device, so the loop does it only when logging)."""
        cfg, weights = self.cfg, self.cfg.losses
        image, target = batch["image"], self._target(batch)
        rotos = self._rotos(batch)
        if weights.bce:
            logits = self.generate(image, logits=True, rotos=rotos)
            output = torch.sigmoid(logits)
        else:
            output = self.generate(image, rotos=rotos)
        if cfg.stage == "seg":
            terms = segmentation_terms(image, output, target, weights, self.perceptual)
            main_weight = {"seg": weights.beta}
        else:
            background = random_backgrounds(image, self._bg_generator)
            terms = alpha_terms(image, output, target, background, weights, self.perceptual)
            main_weight = {"alpha": weights.beta}
        if weights.bce:
            terms["bce"] = F.binary_cross_entropy_with_logits(logits, target)
        scale = {**main_weight, "border": weights.gamma, "per": weights.lambda_per, "bce": weights.bce}
        total = sum(scale[name] * value for name, value in terms.items())
        if self.adversarial:
            self.disc.requires_grad_(False)
            with self._autocast():
                # The unwrapped discriminator: its DDP twin only runs in its own step.
                fake_logits = self.disc(image, output)
            terms["adv"] = adversarial_g_loss(weights.adversarial, fake_logits)
            total = total + terms["adv"]
            self.disc.requires_grad_(True)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(total).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self._update_ema()
        logs = {f"g_{name}": value.detach() for name, value in terms.items()}
        logs["g_total"] = total.detach()
        return output.detach(), logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * weights; early in a fresh run the decay ramps up
        as (1 + step) / (10 + step) so the average does not drag the random initial weights along."""
        if self.ema_net is None:
            return
        decay = self.cfg.ema
        if self._ema_warmup:
            decay = min(decay, (1 + self.step) / (10 + self.step))
        averaged = list(self.ema_net.parameters())
        live = [p.detach() for p in self.stage_net.parameters()]
        torch._foreach_lerp_(averaged, live, 1.0 - decay)
        for mine, theirs in zip(self.ema_net.buffers(), self.stage_net.buffers()):
            mine.copy_(theirs)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Within the block the stage network holds the averaged weights (no-op without EMA)."""
        if self.ema_net is None:
            yield
            return
        raw = {k: v.detach().clone() for k, v in self.stage_net.state_dict().items()}
        self.stage_net.load_state_dict(self.ema_net.state_dict())
        try:
            yield
        finally:
            self.stage_net.load_state_dict(raw)

    def discriminator_step(self, batch: dict[str, torch.Tensor], output: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step of the multi-scale discriminator on (image, target) vs (image, output)."""
        image = batch["image"]
        with self._autocast():
            # One pass over real and fake together keeps DDP to one forward per backward.
            both = self.disc_ddp(torch.cat([image, image]), torch.cat([self._target(batch), output]))
        real = [logits[: image.shape[0]] for logits in both]
        fake = [logits[image.shape[0] :] for logits in both]
        loss = adversarial_d_loss(self.cfg.losses.adversarial, real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return {"d_total": loss.detach()}

    # -- validation, checkpoints -------------------------------------------------------------------

    @torch.no_grad()
    def validate(self, loader: DataLoader) -> dict[str, float]:
        """Mean squared and absolute error (x1e3, as the paper reports) of the stage's output
        (with ``cfg.ema``: of the averaged weights, the ones the checkpoint holds)."""
        self.stage_net.eval()
        net = self.ema_net if self.ema_net is not None else self.stage_net
        sq, ab, n = 0.0, 0.0, 0
        for batch in loader:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            diff = self.generate(batch["image"], net) - self._target(batch)
            sq += float((diff**2).mean(dim=(1, 2, 3)).sum())
            ab += float(diff.abs().mean(dim=(1, 2, 3)).sum())
            n += diff.shape[0]
        self.stage_net.train()
        return {"val_mse_x1e3": 1e3 * sq / max(n, 1), "val_mae_x1e3": 1e3 * ab / max(n, 1)}

    def set_fine_tuned(self) -> None:
        """This run fine-tunes weights another run trained (``--init``): that run's entry for
        this stage goes into the recipe's ``history`` (oldest first) instead of being replaced,
        so the checkpoint still says every step its weights went through."""
        self._ema_warmup = False
        previous = self._base_recipe.get(self.cfg.stage)
        if isinstance(previous, dict):
            self._base_recipe["history"] = [*self._base_recipe.get("history", []), previous]

    @property
    def _precision_used(self) -> str:
        """The autocast precision this run uses, as the recipe names it."""
        return _PRECISION_NAMES.get(self.amp_dtype, str(self.amp_dtype))

    def _recipe(self) -> dict[str, Any]:
        recipe = {k: v for k, v in self._base_recipe.items() if k in ("seg", "alpha", "history")}
        # The processes that trained it (torchrun): the batch is per process, so they are part
        # of the recipe (the effective batch), and a resume on another number is a change.
        recipe[self.cfg.stage] = {**config_to_dict(self.cfg), "steps_done": self.step, "processes": self.dist.world,
                                  "precision_used": self._precision_used}
        if self._changes:
            recipe[self.cfg.stage]["changes"] = self._changes
        return recipe

    def check_finite(self) -> None:
        """Raise :class:`TrainingDiverged` when a loss since the last check, or a weight, is NaN
        or infinite: such weights must not replace the run's last good checkpoint."""
        params = list(self.stage_net.named_parameters())
        ok = torch.stack([self._finite, *(torch.isfinite(p).all() for _, p in params)])  # one device read
        if bool(ok.all()):
            self._checked_step = self.step
            return
        if not bool(ok[0]):
            raise self._diverged("the loss")
        bad = [name for (name, _), fine in zip(params, ok[1:].tolist()) if not fine]
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise self._diverged(f"weights ({bad[0]}{more})")

    def _diverged(self, what: str, when: str | None = None) -> "TrainingDiverged":
        when = when or f"between steps {self._checked_step} and {self.step}"
        kept = (f"the checkpoint of step {self._saved_step} in {self.out_dir} is kept" if self._saved_step
                else "nothing was saved")
        return TrainingDiverged(
            f"training diverged: {what} became NaN or infinite {when}; these weights are not saved "
            f"({kept}). Look for training items with NaN or "
            f"infinite pixels, or lower --lr-g, then start again"
            + (f" or --resume --out {self.out_dir}" if self._saved_step else "")
        )

    def save(self) -> Path:
        """Write ``checkpoint.safetensors`` (inference format; the averaged weights with
        ``cfg.ema``) and ``train_state.pt`` (with the raw weights then) atomically.
        Weights that went NaN or infinite are not written (:meth:`check_finite`)."""
        self.check_finite()
        recipe = self._recipe()
        with self.averaged_weights():
            path = self._save_checkpoint(recipe)
        self._saved_step = self.step
        state = {
            "step": self.step,
            "loaded": self.loaded,
            "stage": self.cfg.stage,
            "disc": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
        }
        # Everything a resume needs is in this one file (the checkpoint is written first, and a
        # run killed between the two writes must not pair weights and optimizer of two steps).
        state["recipe"] = json.dumps(recipe)
        state["net"] = self.stage_net.state_dict()
        if self.ema_net is not None:
            state["ema"] = self.ema_net.state_dict()
            state["ema_warmup"] = self._ema_warmup
        if self.best is not None:
            state["best"] = list(self.best)
        with atomic_path(self.out_dir / STATE_NAME) as tmp:
            torch.save(state, tmp)
        return path

    def save_best(self, val_mse: float) -> bool:
        """Write ``best.safetensors`` when ``val_mse`` beats every earlier validation of the run
        (the averaged weights with ``cfg.ema``, as the checkpoint); returns whether it did."""
        self.check_finite()
        if not math.isfinite(val_mse):  # weights finite but so large the output is not
            raise self._diverged("the validation error", f"at step {self.step} (weights finite but too large)")
        if self.best is not None and val_mse >= self.best[0]:
            return False
        self.best = (float(val_mse), self.step)
        with self.averaged_weights():
            self._save_checkpoint(self._recipe(), BEST_NAME, val_mse_x1e3=float(val_mse))
        return True

    def _save_checkpoint(self, recipe: dict[str, Any], name: str = CHECKPOINT_NAME, **meta: Any) -> Path:
        both = "seg" in recipe and "alpha" in recipe
        runs = [recipe[k] for k in ("seg", "alpha") if k in recipe] + list(recipe.get("history", []))
        data = sorted({spec for run in runs for spec in run.get("data", [])})
        return pomagan_post.save_checkpoint(
            self.model,
            self.out_dir / name,
            trained=both,
            description=(
                f"POMAGAN {self.model.variant}, trained with pomagan-train"
                if both
                else "segmentation stage only: the alpha network is not trained yet"
            ),
            training_data=", ".join(data),
            recipe=recipe,
            working_size=min(self.cfg.size),
            step=self.step,
            stage=self.cfg.stage,
            **meta,
        )

    def resume(self, run_dir: str | Path) -> None:
        """Continue a run: stage weights from its checkpoint, the rest from ``train_state.pt``."""
        run_dir = Path(run_dir)
        state_path = run_dir / STATE_NAME
        if not state_path.is_file():
            raise CheckpointError(f"cannot resume: {state_path} not found")
        state = torch.load(state_path, map_location=self.device, weights_only=True)
        if state.get("stage") != self.cfg.stage:
            raise CheckpointError(f"cannot resume: {run_dir} is a {state.get('stage')!r} run, not {self.cfg.stage!r}")
        saved = pomagan_post.load_checkpoint(run_dir / CHECKPOINT_NAME, variant=self.model.variant)
        # The checkpoint gives the other (frozen) network; the stage's weights, the average and
        # the recipe come from train_state.pt, saved with the optimizer at the same step.
        self.model.load_state_dict(saved.state_dict())
        self.model.checkpoint_info = saved.checkpoint_info
        whole = "recipe" in state  # train_state.pt of this version: everything at its own step
        saved_step = (saved.checkpoint_info.get("meta") or {}).get("step")
        if not whole and saved_step is not None and int(saved_step) != int(state["step"]):
            raise CheckpointError(
                f"cannot resume: {run_dir / CHECKPOINT_NAME} is of step {saved_step} but "
                f"{state_path.name} of step {state['step']} (the run stopped while saving); start a "
                f"new run with --init {run_dir / CHECKPOINT_NAME}"
            )
        recipe = json.loads(state["recipe"]) if whole else saved.checkpoint_info.get("recipe", {})
        self._base_recipe = dict(recipe)  # history included
        self._note_changes(self._base_recipe.get(self.cfg.stage), int(state["step"]))
        if self.ema_net is not None:  # the average (older files: the checkpoint held it)
            self.ema_net.load_state_dict(state["ema"] if "ema" in state else self.stage_net.state_dict())
            self._ema_warmup = bool(state.get("ema_warmup", True))
        if "net" in state:  # the raw weights (older files: only with EMA)
            self.stage_net.load_state_dict(state["net"])
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        # The optimizer state carries the old learning rates; the run's config (where --lr-g /
        # --lr-d given with --resume land, e.g. to anneal) decides.
        for opt, lr in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.step = self._saved_step = self._checked_step = int(state["step"])
        self.loaded = int(state.get("loaded", self.step))  # (files from before --reuse: one a step)
        # The alpha stage's random backgrounds go on from here, not from the run's first ones.
        self._bg_generator.manual_seed(self.cfg.seed + 7919 * self.dist.rank + self.step)
        if self.reuse_buffer is not None:  # (it starts empty: refilled from the loader)
            self.reuse_buffer.generator.manual_seed(self.cfg.seed + 7919 * self.dist.rank + 1 + self.step)
        self._roto_generator.manual_seed(self.cfg.seed + 7919 * self.dist.rank + 2 + self.step)
        self._narrow_generator.manual_seed(self.cfg.seed + 7919 * self.dist.rank + 3 + self.step)
        saved_stage = self._base_recipe.get(self.cfg.stage) or {}
        if saved_stage.get("val_data") == self.cfg.val_data:  # same yardstick
            candidates = [(float(state["best"][0]), int(state["best"][1]))] if state.get("best") else []
            best_path = run_dir / BEST_NAME  # written at each better validation, the state only at saves
            if best_path.is_file():  # (a run killed between the two: the file is the truth)
                meta = pomagan_post.read_checkpoint_info(best_path).get("meta", {})
                if "val_mse_x1e3" in meta and "step" in meta:
                    candidates.append((float(meta["val_mse_x1e3"]), int(meta["step"])))
            if candidates:
                self.best = min(candidates)

    def _note_changes(self, saved: Any, step: int) -> None:
        """Record the settings a resume changes (e.g. ``--lr-g`` lowered to anneal), with the
        step, so the checkpoint's recipe says which steps ran with which value."""
        if not isinstance(saved, dict):
            return
        now = config_to_dict(self.cfg)
        if isinstance(saved.get("losses"), dict):  # a loss setting added since: its default
            defaults = config_to_dict(TrainConfig(stage=self.cfg.stage))["losses"]
            now = {**now, "losses": {k: v for k, v in now["losses"].items()
                                     if k in saved["losses"] or v != defaults.get(k)}}
        saved = {**_ADDED_SETTINGS, **saved}  # (a run from before a setting existed: its default)
        changed = {k: [saved[k], now[k]] for k in RESUME_TRACKED if k in saved and saved[k] != now.get(k)}
        if "processes" in saved and saved["processes"] != self.dist.world:
            changed["processes"] = [saved["processes"], self.dist.world]
        if "precision_used" in saved and saved["precision_used"] != self._precision_used:  # "auto" elsewhere
            changed["precision_used"] = [saved["precision_used"], self._precision_used]
        self._changes = [*saved.get("changes", []), *([{"step": step, **changed}] if changed else [])]

    # -- the loop ------------------------------------------------------------------------------------

    def _should_stop(self, started: float, signalled: bool) -> bool:
        """``max_minutes`` elapsed or a stop signal arrived (every rank takes the same decision
        under DDP: one rank signalled stops them all)."""
        late = self.cfg.max_minutes is not None and time.time() - started > 60 * self.cfg.max_minutes
        if self.dist.world == 1:  # no device round trip (it would wait for the step to finish)
            return late or signalled
        flag = torch.tensor([float(late or signalled)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def fit(self, loader: DataLoader, val_loader: DataLoader | None = None, progress: bool = True) -> dict[str, float]:
        """Train until ``cfg.steps``; returns the last logged values."""
        cfg, main = self.cfg, self.dist.main
        log = _Log(self.out_dir, enabled=main, step=self.step)
        bar = _progress(cfg.steps, self.step, enabled=main and progress)
        started, start_step = time.time(), self.step
        try:
            with StopSignals("saving after this step, then stopping (Ctrl-C again to abort without "
                             "saving)") as signals:
                last = self._loop(loader, val_loader, log, bar, started, start_step, signals)
        finally:
            if bar is not None:
                bar.close()
            log.close()
        self.stopped_by = signals.signum
        return last

    def _loop(self, loader: DataLoader, val_loader: DataLoader | None, log: "_Log", bar: Any,
              started: float, start_step: int, signals: StopSignals) -> dict[str, float]:
        batches = _forever(loader, first_epoch=self.loaded // max(len(loader), 1))
        try:
            return self._steps(batches, val_loader, log, bar, started, start_step, signals)
        finally:
            batches.close()

    def _save_before_stopping(self, what: str) -> None:
        """Keep the steps done since the last save when ``what`` could not be loaded (the run
        then stops with the loader's error naming the file)."""
        if self.dist.main and self.step > self._saved_step:
            self.save()
            print(f"pomagan-train: stopped by {what} that could not be loaded (below); saved "
                  f"step {self.step} first (once the data is fixed: --resume --out {self.out_dir})",
                  file=sys.stderr)

    def _steps(self, batches: Iterator[dict[str, torch.Tensor]], val_loader: DataLoader | None, log: "_Log",
               bar: Any, started: float, start_step: int, signals: StopSignals) -> dict[str, float]:
        cfg, main = self.cfg, self.dist.main
        last: dict[str, float] = {}
        while self.step < cfg.steps:
            buffer = self.reuse_buffer
            if buffer is None or buffer.filled < buffer.ready or self.step % self.cfg.reuse == 0:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception:  # an item that cannot be loaded: keep the steps done since the last save
                    self._save_before_stopping("a training item")
                    raise
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                self.loaded += 1
                if buffer is not None:
                    buffer.add(batch)
            else:
                batch = buffer.sample(self.cfg.batch_size)
            batch = self._narrowed(batch)
            output, losses = self.generator_step(batch)
            if not self.scaler_g.is_enabled():  # fp16's scaler skips non-finite steps itself
                self._finite &= torch.isfinite(losses["g_total"])
            if self.adversarial:
                losses.update(self.discriminator_step(batch, output))
            self.step += 1
            values: dict[str, Any] = dict(losses)
            if val_loader is not None and self.step % cfg.val_every == 0:
                try:
                    values.update(self.validate(val_loader))
                except Exception:  # a validation item that cannot be loaded: as a training item's
                    self._save_before_stopping("a validation item")
                    raise
                if main:
                    self.save_best(float(values["val_mse_x1e3"]))
            if self.step % cfg.log_every == 0 or self.step == cfg.steps or "val_mse_x1e3" in values:
                self.check_finite()
                values = {k: float(v) for k, v in values.items()}
                values["steps_per_s"] = (self.step - start_step) / max(time.time() - started, 1e-9)
                log.write(self.step, values)
                last = values
                if bar is not None:
                    bar.set_postfix(g=f"{values['g_total']:.3f}", refresh=False)
            if bar is not None:
                bar.update(1)
            stop = self._should_stop(started, signals.signum is not None)
            if main and (self.step % cfg.save_every == 0 or self.step == cfg.steps or stop):
                self.save()
            if stop:
                break
        return last


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C / SIGTERM to the main process (which saves and stops;
    a worker that died of the signal would fail the batch being fetched)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _available_host_memory() -> int | None:
    """Bytes the host can still give (Linux's MemAvailable), else its physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def _check_reuse_buffer_fits(frames: int, cfg: TrainConfig, device: torch.device) -> None:
    """Refuse a reuse buffer of ``frames`` larger than the device's free memory (the host's
    available memory for the CPU) before the run starts: image and target, float32, at the
    training size."""
    need = frames * 4 * cfg.size[0] * cfg.size[1] * 4
    if device.type == "cuda":
        free, where = torch.cuda.mem_get_info(device)[0], f"{device} has {{:.1f}} GiB free"
    else:
        free, where = _available_host_memory(), "this machine has {:.1f} GiB available"
        if free is None:
            return
    if need > 0.9 * free:
        size = f"{frames} frames" if cfg.reuse_buffer else f"{frames} frames (the default, 64 batches)"
        raise BadInputError(f"the reuse buffer of {size} at {cfg.size[0]}x{cfg.size[1]} needs "
                            f"{need / 2**30:.1f} GiB and {where.format(free / 2**30)}: lower --reuse-buffer"
                            f"{'' if cfg.reuse_buffer else ' or --batch-size'}")


class TrainingStopped(Stopped):
    """Training stopped by a signal after saving; the exit code is 128 + the signal number."""


class TrainingDiverged(PomaganError):
    """A loss or weight went NaN or infinite: the run stops without saving those weights."""


def _set_epoch(dataset: Dataset, epoch: int) -> None:
    """New random crops / backgrounds / augmentations each epoch (datasets that support it)."""
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    for part in parts:
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)


def _forever(loader: DataLoader, first_epoch: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches, epoch after epoch. Closing it (the loop does, however it ends)
    shuts the epoch's worker processes down at once: after an error the traceback still
    holds the loader's iterator, and at exit Python would wait for workers that ignore the
    SIGTERM it sends them (``_ignore_stop_signals``) - a run that never ends."""
    epoch = first_epoch
    while True:
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        _set_epoch(loader.dataset, epoch)  # workers are started per epoch, so they see it
        batches = iter(loader)
        try:
            yield from batches
        finally:
            shutdown = getattr(batches, "_shutdown_workers", None)  # torch's multi-process iterator
            if shutdown is not None:
                shutdown()
        epoch += 1


def _collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A batch of the keys every sample has: items of a paired set carry no ``fg``/``bg``, a
    synthetic or composited set's do, and a run may mix them (training uses neither)."""
    from torch.utils.data import default_collate

    keys = [k for k in samples[0] if all(k in sample for sample in samples)]
    return default_collate([{k: sample[k] for k in keys} for sample in samples])


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from pomagan_post.progress import progress

    return progress(total, desc="train", unit="step", initial=initial)


class _Log:
    """``log.csv`` (one row per logged step, columns grow as values appear) + TensorBoard if installed."""

    def __init__(self, out_dir: Path, enabled: bool, step: int = 0) -> None:
        self.enabled = enabled
        self.path = out_dir / "log.csv"
        self.rows: list[dict[str, Any]] = []
        if enabled and self.path.is_file():
            with self.path.open() as handle:
                # Rows past the step the run resumes from were logged by steps that are run again
                # (an interrupted run saves every --save-every steps): drop them, no duplicates.
                self.rows = [row for row in csv.DictReader(handle) if int(float(row["step"])) <= step]
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.tb = None

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.rows.append({"step": step, **{k: f"{v:.6g}" for k, v in values.items()}})
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _datasets(specs: tuple[str, ...], cfg: TrainConfig, split: str, augment: bool) -> Dataset:
    from .data import build_dataset

    parts = [
        build_dataset(spec, cfg.size, split=split, seed=cfg.seed, augment=augment, backgrounds=cfg.backgrounds,
                      extra_people=cfg.extra_people if split == "train" else None,
                      props=cfg.props if split == "train" else 0.0,
                      closeups=cfg.closeups if split == "train" else 0.0,
                      mono=cfg.mono if split == "train" else 0.0)
        for spec in specs
    ]
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


#: Files that make a folder a training run's (``--out``).
RUN_FILES = (CHECKPOINT_NAME, STATE_NAME, BEST_NAME)  # (a log alone: a run that never saved)


def _refuse_run_folder(out_dir: Path) -> None:
    """A new run never writes over an earlier one: its checkpoints, log and best weights."""
    held = [name for name in RUN_FILES if (out_dir / name).is_file()]
    if held:
        raise BadInputError(f"{out_dir} already holds a training run ({', '.join(held)}); continue it with "
                            f"--resume --out {out_dir}, or start this one in a new --out folder")


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    device: str = "auto",
    init: str | None = None,
    seg_weights: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train one stage end to end (the function the CLI and torchrun call).

    Args:
        cfg: the stage config.
        out_dir: run folder (created); ``checkpoint.safetensors``, ``train_state.pt``,
            ``config.yaml`` and ``log.csv`` go there.
        device: ``auto``, ``cpu``, ``cuda`` (with torchrun each rank takes its local GPU).
        init, seg_weights: see :func:`build_model`.
        resume: continue the run found in ``out_dir``.
    Returns:
        The checkpoint path.
    """
    dist_info, torch_device = init_distributed(device)
    out_dir = Path(out_dir)
    if not resume:
        _refuse_run_folder(out_dir)
    cfg = _with_absolute_paths(cfg)
    torch.manual_seed(cfg.seed + dist_info.rank)
    perceptual = None
    if cfg.losses.perceptual == "vgg19":
        perceptual = VGG19Perceptual(cfg.losses.vgg_weights, cfg.losses.vgg_layers, cfg.losses.vgg_layer_weights)
    model = build_model(cfg, init=init, seg_weights=seg_weights)
    trainer = StageTrainer(cfg, model, torch_device, out_dir, dist_info, perceptual)
    if resume:
        trainer.resume(out_dir)
    elif init:
        trainer.set_fine_tuned()
    dataset = _datasets(cfg.data, cfg, "train", cfg.augment)
    val_set = _datasets((cfg.val_data,), cfg, "test", augment=False) if cfg.val_data and dist_info.main else None
    if resume and trainer.step >= cfg.steps:
        if dist_info.main:
            print(f"{out_dir} is already at step {trainer.step} of --steps {cfg.steps}: nothing to do "
                  f"(to train on, --resume with a larger --steps)", file=sys.stderr)
        return out_dir / CHECKPOINT_NAME
    # The run folder is made and its config written only now that every input has been read
    # and checked: a run that cannot start leaves nothing behind (and a resumed one's config
    # stays as it was).
    if dist_info.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / "config.yaml")
    if dist_info.world > 1:
        # Seeded by the step too, as the single-process sampler: a resumed run draws a new order
        # (seeded by the seed alone it would replay the epoch's first batches, the ones it trained on).
        sampler = DistributedSampler(dataset, dist_info.world, dist_info.rank, shuffle=True,
                                     seed=cfg.seed + trainer.step)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed + trainer.step))
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=torch_device.type == "cuda",
        drop_last=len(dataset) >= cfg.batch_size * dist_info.world,
        worker_init_fn=_ignore_stop_signals,
        collate_fn=_collate,
    )
    val_loader = None
    if val_set is not None:
        val_loader = DataLoader(val_set, batch_size=cfg.batch_size, num_workers=0, collate_fn=_collate)
    try:
        trainer.fit(loader, val_loader, progress=progress)
    except SignalStop as exc:  # Ctrl-C again while stopping: no save, as the first notice said
        saved = (f"the last save, step {trainer._saved_step}, is in {out_dir} (--resume --out {out_dir})"
                 if trainer._saved_step else "nothing was saved")
        raise TrainingStopped(f"aborted by a second Ctrl-C at step {trainer.step}, not saved; {saved}",
                              exc.signum) from None
    if dist_info.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if trainer.stopped_by is not None:
        name = signal.Signals(trainer.stopped_by).name
        if not dist_info.main:  # rank 0 saved the run and says how to continue it
            raise TrainingStopped(f"rank {dist_info.rank}: {name} at step {trainer.step}", trainer.stopped_by)
        raise TrainingStopped(
            f"{name} at step {trainer.step}; saved "
            f"{out_dir / CHECKPOINT_NAME} (continue with --resume --out {out_dir})", trainer.stopped_by)
    if trainer.step < cfg.steps and dist_info.main:  # --max-minutes ended it: not an error, but say so
        print(f"pomagan-train: stopped after --max-minutes {cfg.max_minutes:g} at step {trainer.step} of "
              f"{cfg.steps}; saved {out_dir / CHECKPOINT_NAME} (continue with --resume --out {out_dir})",
              file=sys.stderr)
    return out_dir / CHECKPOINT_NAME
