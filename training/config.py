"""Typed, immutable training configuration, built once and saved as YAML beside the checkpoint.

A config file (YAML) holds any subset of the fields below; it is laid over the stage's defaults
(the paper's settings), and command-line options are laid over the file. Nested ``losses`` keys
are merged field by field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pomagan_post.errors import BadInputError

__all__ = [
    "LossConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "default_config",
    "find_config",
    "load_config",
    "save_config",
]

STAGES = ("seg", "alpha")
ADVERSARIAL = ("gan", "lsgan", "hinge", "off")
PERCEPTUAL = ("vgg19", "off")
MATTE_TERMS = ("matte", "fg", "comp")


@dataclass(frozen=True)
class LossConfig:
    """Loss terms and weights (paper-notes: objective of each stage).

    Args:
        adversarial: ``gan`` (the paper's standard GAN, BCE), ``lsgan``, ``hinge`` or ``off``.
        perceptual: ``vgg19`` (Johnson et al. on five layers) or ``off`` (recorded in the
            checkpoint's recipe; the paper's "without L_per" ablation).
        vgg_weights: torchvision VGG-19 ImageNet weights file; ``None`` = torchvision's cache file.
        vgg_layers: VGG-19 ``features`` indices whose outputs L_1..L_5 are compared
            (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1).
        vgg_layer_weights: c_i for each layer, in (0, 1] (pix2pixHD's 1/32 .. 1).
        lambda_per: weight of L_per (lambda).
        beta: weight of L_seg / L_alpha.
        gamma: weight of L_border.
        matte_terms: which L1 terms make L_seg / L_alpha: ``matte`` (s or alpha itself), ``fg``
            (F = I x matte) and ``comp`` (composite over a background; alpha stage only).
        border: include L_border.
        border_kernel: side (pixels at the training size) of the square structuring element for
            dilate / erode.
        border_threshold: alpha stage: bin(alpha*) = alpha* > threshold.
        bce: weight of a binary cross-entropy term between the stage's output and its target,
            computed from the network's logits; 0 = off (the paper). Not in the paper: its L1
            terms reach the logits through the sigmoid's slope s(1 - s), so a pixel the network
            has confidently wrong (s near 1 on background) gets almost no gradient; the
            cross-entropy's gradient there is s - target, about 1.
    """

    adversarial: str = "gan"
    perceptual: str = "vgg19"
    vgg_weights: str | None = None
    vgg_layers: tuple[int, ...] = (1, 6, 11, 20, 29)
    vgg_layer_weights: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    lambda_per: float = 10.0
    beta: float = 10.0
    gamma: float = 10.0
    matte_terms: tuple[str, ...] = ("matte", "fg", "comp")
    border: bool = True
    border_kernel: int = 15
    border_threshold: float = 0.5
    bce: float = 0.0

    def __post_init__(self) -> None:
        _check_types(self, "losses.")
        for name in ("vgg_layers", "vgg_layer_weights", "matte_terms"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not 0 < self.border_threshold < 1:
            raise BadInputError(f"losses.border_threshold must lie in (0, 1), got {self.border_threshold}")
        if self.adversarial not in ADVERSARIAL:
            raise BadInputError(f"losses.adversarial must be one of {ADVERSARIAL}, got {self.adversarial!r}")
        if self.perceptual not in PERCEPTUAL:
            raise BadInputError(f"losses.perceptual must be one of {PERCEPTUAL}, got {self.perceptual!r}")
        if len(self.vgg_layers) != len(self.vgg_layer_weights):
            raise BadInputError("losses.vgg_layers and losses.vgg_layer_weights differ in length")
        if any(not 0 < c <= 1 for c in self.vgg_layer_weights):
            raise BadInputError("losses.vgg_layer_weights (c_i) must lie in (0, 1]")
        if any(not 0 <= i < VGG19_FEATURE_LAYERS for i in self.vgg_layers):  # (a layer beyond was dropped)
            raise BadInputError(f"losses.vgg_layers are indices of VGG-19's features, 0 to "
                                f"{VGG19_FEATURE_LAYERS - 1}; got {list(self.vgg_layers)}")
        unknown = set(self.matte_terms) - set(MATTE_TERMS)
        if unknown or not self.matte_terms:
            raise BadInputError(f"losses.matte_terms must be a non-empty subset of {MATTE_TERMS}")
        if self.border_kernel < 3 or self.border_kernel % 2 == 0:
            raise BadInputError("losses.border_kernel must be an odd number >= 3")
        if not self.bce >= 0:
            raise BadInputError(f"losses.bce must be a weight >= 0, got {self.bce}")


#: Layers in torchvision's VGG-19 ``features``.
VGG19_FEATURE_LAYERS = 37


def narrow_widths(width: int, height: int, stride: int) -> list[int]:
    """The widths ``narrow`` cuts a ``width`` x ``height`` frame to: the multiples of ``stride``
    from half the height (rounded up, and at least two strides) to below the full width."""
    low = max(2 * stride, -(-height // (2 * stride)) * stride)
    return list(range(low, width, stride))


def _check_types(config: Any, where: str = "") -> None:
    """Each setting of the type its field declares: YAML reads ``"off"`` (quoted) or ``yes`` as
    text, and ``1e-4`` (no dot) as text too; such a value would be taken as true, or fail deep in
    training, instead of being named here."""
    for item in fields(config):
        value, kind = getattr(config, item.name), str(item.type)
        if value is None and "None" in kind:
            continue
        base = kind.replace(" | None", "")
        if base == "bool":
            ok = isinstance(value, bool)
            hint = "true or false, unquoted"
        elif base == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
            hint = "a whole number"
        elif base == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            hint = "a number (YAML reads 1e-4 as text: write 1.0e-4)"
        else:
            continue
        if not ok:
            raise BadInputError(f"{where}{item.name} must be {hint}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """One training stage.

    Args:
        stage: ``seg`` (segmentation network) or ``alpha`` (alpha network, segmentation frozen).
        variant: model variant from :func:`pomagan_post.list_models`.
        data: dataset specs (``synthetic:N``, a folder, ``kind:path``), concatenated.
        val_data: dataset spec for periodic validation (``None``: no validation).
        backgrounds: folder of background photos for composition / synthetic sets (the
            paper: MS-COCO for training, PASCAL VOC for testing); ``None``: procedural
            backgrounds plus the person-free sample photos of scikit-image / matplotlib.
        extra_people: ``synthetic:N`` training sets: chances of a second and a third person
            (the generator's default 0.1 / 0.03 also draws validation and test sets).
        props: ``synthetic:N`` training sets: chance of objects of the background touching the
            people (a flag by a shoulder, a stand, a bag: what real footage shows the model
            keeping); 0, the default, as the validation and test sets.
        closeups: ``synthetic:N`` training sets: chance of a close-up framing of the front person
            (head 30 to 55 % of the height, shoulders across the frame: portrait photos, a
            push-in's end); 0, the default, as the validation and test sets.
        mono: ``synthetic:N`` training sets: chance of a monochrome frame (black-and-white film,
            an archive print, a desaturated grade); 0, the default, as the validation and test sets.
        size: training size (width, height); the paper's 1280x768.
        batch_size: per process (paper: 2 for seg, 1 for alpha).
        steps: total generator steps.
        lr_g, lr_d: Adam learning rates (paper: 1e-4, 1e-5).
        ema: decay of an exponential moving average of the generator's weights (e.g. 0.999;
            ``None``: off, as in the paper). When set, validation and ``checkpoint.safetensors``
            use the averaged weights (``train_state.pt`` keeps the raw ones for resuming): it
            smooths the step-to-step noise of small batches, e.g. fine-tuning on one GPU or a CPU.
        betas: Adam betas.
        precision: ``auto`` (bf16 autocast on CUDA where supported, else fp16; fp32 on CPU),
            ``fp32``, ``fp16``, ``bf16``.
        grad_checkpoint: recompute generator activations in the backward pass (saves memory).
        augment: apply the training augmentation.
        workers: DataLoader worker processes.
        seed: base random seed (each process adds its rank).
        log_every, val_every, save_every: in steps.
        max_minutes: stop (and save) after this much wall time even before ``steps``: fits a
            run into a lent GPU's time; ``--resume`` continues it later.
        reuse: train on each loaded batch, then on ``reuse - 1`` batches drawn from a buffer of
            recently loaded frames (each frame flipped left-right at random): for when loading
            limits the device (e.g. synthetic portraits rendered on the CPU for a GPU). Draws
            start once the buffer holds 8 batches (or is full); until then every step loads. 1: off.
        reuse_buffer: frames that buffer holds on the training device (the newest replace the
            oldest); ``0`` = 64 batches.
        roto_rate: alpha stage: the share of frames whose segmentation input is a roto-like shape
            drawn from the frame's true matte (:func:`pomagan_train.rotos.hand_drawn`: grown or
            shrunk by up to 3 pixels, smoothed, wavered, shifted by up to 2) instead of the frozen
            segmentation network's output, so the alpha network learns to follow a hand-drawn
            roto (``render --roto``). 0: off (the paper).
        narrow: the share of batches cut to a narrower frame before the step: a width drawn from
            the multiples of the network stride between half the height and the full width, each
            frame cut at its own place (a 320x192 batch becomes 96x192 to 304x192: upright and
            square frames, and people filling the frame's width). A network trained at one size
            alone has only ever seen that frame; ``render`` runs it on the shot's own shape.
            0: off (the paper).
        d_scales, d_layers, d_base: multi-scale PatchGAN (pix2pixHD: 3 scales, 3 layers, 64).
        losses: :class:`LossConfig`.
    """

    stage: str = "seg"
    variant: str = "paper"
    data: tuple[str, ...] = ("synthetic:2000",)
    val_data: str | None = "synthetic:16"
    backgrounds: str | None = None
    extra_people: tuple[float, float] = (0.1, 0.03)
    props: float = 0.0
    closeups: float = 0.0
    mono: float = 0.0
    size: tuple[int, int] = (1280, 768)
    batch_size: int = 2
    steps: int = 100_000
    lr_g: float = 1e-4
    lr_d: float = 1e-5
    betas: tuple[float, float] = (0.5, 0.999)
    ema: float | None = None
    precision: str = "auto"
    grad_checkpoint: bool = False
    augment: bool = True
    workers: int = 2
    seed: int = 0
    log_every: int = 20
    val_every: int = 1000
    save_every: int = 1000
    max_minutes: float | None = None
    reuse: int = 1
    reuse_buffer: int = 0
    roto_rate: float = 0.0
    narrow: float = 0.0
    d_scales: int = 3
    d_layers: int = 3
    d_base: int = 64
    losses: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        for name in ("data", "size", "betas"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        from .data.synthetic import check_chance, check_extra_people

        object.__setattr__(self, "extra_people", check_extra_people(self.extra_people))
        object.__setattr__(self, "props", check_chance(self.props, "props"))
        object.__setattr__(self, "closeups", check_chance(self.closeups, "closeups"))
        object.__setattr__(self, "mono", check_chance(self.mono, "mono"))
        _check_types(self)
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise BadInputError(f"betas must be two numbers in [0, 1), e.g. [0.5, 0.999], got {list(self.betas)}")
        if self.workers < 0:
            raise BadInputError(f"workers must be 0 (load in the training process) or more, got {self.workers}")
        if self.stage == "seg" and not {"matte", "fg"} & set(self.losses.matte_terms):
            raise BadInputError("losses.matte_terms of the segmentation stage needs matte or fg (it has no "
                                f"composite term), got {list(self.losses.matte_terms)}")
        if self.stage not in STAGES:
            raise BadInputError(f"stage must be one of {STAGES}, got {self.stage!r}")
        from pomagan_post.models import get_config, list_models

        if self.variant not in list_models():
            raise BadInputError(f"unknown variant {self.variant!r}; use one of {', '.join(list_models())}")
        if len(self.size) != 2 or min(self.size) < 16:
            raise BadInputError(f"size must be (width, height), each >= 16, got {self.size}")
        stride = get_config(self.variant).stride
        if any(v % stride or v < 2 * stride for v in self.size):  # the bottleneck needs 2x2 or more
            w, h = (max(2 * stride, -(-v // stride) * stride) for v in self.size)
            raise BadInputError(
                f"size {self.size[0]}x{self.size[1]}: width and height must be multiples of {stride} "
                f"(the {self.variant} variant's network stride), at least {2 * stride}, e.g. {w}x{h}"
            )
        for name in ("batch_size", "steps", "log_every", "val_every", "save_every", "d_scales"):
            if getattr(self, name) < 1:
                raise BadInputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.reuse < 1:
            raise BadInputError(f"reuse must be at least 1 (1: every step a newly loaded batch), got {self.reuse}")
        if self.reuse_buffer and self.reuse_buffer < self.batch_size:
            raise BadInputError(f"reuse_buffer must hold a batch at least ({self.batch_size} frames) or be 0 "
                                f"(64 batches), got {self.reuse_buffer}")
        if not 0.0 <= self.roto_rate <= 1.0:
            raise BadInputError(f"roto_rate must be a share between 0 and 1, got {self.roto_rate}")
        if not 0.0 <= self.narrow <= 1.0:
            raise BadInputError(f"narrow must be a share between 0 and 1, got {self.narrow}")
        if self.narrow and not narrow_widths(self.size[0], self.size[1], stride):
            raise BadInputError(f"narrow: a {self.size[0]}x{self.size[1]} frame has no narrower width of "
                                f"at least half its height in steps of {stride}; train wider frames")
        if self.roto_rate and self.stage != "alpha":
            raise BadInputError("roto_rate is for the alpha stage: the segmentation network is fed no "
                                "segmentation to replace with a roto")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise BadInputError(f"ema must be a decay between 0 and 1 (e.g. 0.999), got {self.ema}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise BadInputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.precision not in ("auto", "fp32", "fp16", "bf16"):
            raise BadInputError(f"precision must be auto, fp32, fp16 or bf16, got {self.precision!r}")
        if not self.data:
            raise BadInputError("no training data given")


def default_config(stage: str) -> TrainConfig:
    """The paper's settings for a stage: batch 2, lambda/beta/gamma 10/10/10 (seg);
    batch 1, 10/100/100 (alpha)."""
    if stage == "seg":
        return TrainConfig(stage="seg", batch_size=2, losses=LossConfig(beta=10.0, gamma=10.0))
    if stage == "alpha":
        return TrainConfig(stage="alpha", batch_size=1, losses=LossConfig(beta=100.0, gamma=100.0))
    raise BadInputError(f"stage must be one of {STAGES}, got {stage!r}")


def _merge(base: Any, updates: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(base)}
    unknown = sorted(set(updates) - set(known))
    if unknown:
        raise BadInputError(f"unknown {where} setting(s): {', '.join(unknown)}")
    changes = {}
    for key, value in updates.items():
        current = getattr(base, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = _merge(current, value, f"{where}.{key}" if where != "config" else key)
        changes[key] = value
    try:
        return replace(base, **changes)
    except TypeError as exc:
        raise BadInputError(f"bad {where} value: {exc}") from None


def config_from_dict(stage: str, data: dict[str, Any]) -> TrainConfig:
    """Stage defaults overlaid with ``data`` (a parsed YAML mapping)."""
    data = dict(data)
    if data.get("stage", stage) != stage:
        raise BadInputError(f"config is for stage {data['stage']!r}, not {stage!r}")
    data.pop("stage", None)
    return _merge(default_config(stage), data, "config")


def load_config(stage: str, path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults for ``stage``, then the YAML file at ``path`` (if any), then ``overrides``
    (``None`` values are ignored; a ``losses`` dict is merged field by field)."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = find_config(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise BadInputError(f"config {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise BadInputError(f"config {path} must be a mapping of settings")
        data.update(loaded)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "losses":
            data["losses"] = {**data.get("losses", {}), **value}
        else:
            data[key] = value
    return config_from_dict(stage, data)


def find_config(path: str | Path) -> Path:
    """A config file path, or the name of one shipped in ``pomagan_train/configs``
    (``paper_seg`` or ``paper_seg.yaml``)."""
    path = Path(path)
    if path.is_file():
        return path
    packaged = Path(__file__).parent / "configs" / (path.name if path.suffix else f"{path.name}.yaml")
    if path.parent == Path(".") and packaged.is_file():
        return packaged
    shipped = ", ".join(sorted(p.stem for p in packaged.parent.glob("*.yaml")))
    raise BadInputError(f"config file not found: {path} (shipped configs: {shipped})")


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain JSON/YAML-ready dict (tuples as lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return plain(config)


def save_config(config: TrainConfig, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
