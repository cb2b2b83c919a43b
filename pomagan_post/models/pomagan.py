"""The POMAGAN generators: segmentation network, alpha generation network, and the chain.

How each network follows the paper ("POMAGAN: portrait matting GAN", section 3; restated in
``shared/paper-notes.md``), point by point:

Segmentation network G_s (:class:`SegmentationNet`)
    * "U-Net style generator, conv encoder downsamples the image" -> :class:`Encoder`: a 7x7 stem
      at full resolution, then ``len(widths) - 1`` stride-2 3x3 convolutions (four: 1/16).
    * "consecutive residual blocks" -> ``seg_res_blocks`` pix2pixHD :class:`ResidualBlock` s at the
      bottleneck.
    * "ASPP (parallel dilated convolutions with different rates)" -> :class:`ASPP` after the
      residual blocks: 1x1, 3x3 at ``aspp_rates`` (6/12/18) and image pooling, projected back.
    * "decoder of deconvolution layers back to full size" -> one stride-2
      ``ConvTranspose2d`` per encoder downsampling (:class:`UpBlock`).
    * "each encoder layer's output is concatenated (depth) with its mirror decoder layer" -> every
      :class:`UpBlock` concatenates the encoder output of the same resolution before deconvolving;
      the full-resolution stem output is concatenated before the 7x7 output convolution.
    * "segmentation map s (person 1, else 0)" -> one channel, sigmoid, [0, 1].

Alpha generation network G_a (:class:`AlphaNet`)
    * "takes I and s separately; Encoder 1 (U-Net style) encodes I" -> ``image_encoder``.
    * "the segmentation encoding block, a second, independent encoder, encodes s" ->
      ``seg_encoder`` (own weights, own widths ``seg_widths``, 1 input channel).
    * "features concatenated along depth, passed through residual blocks" -> bottleneck features
      of both encoders concatenated, reduced by a 1x1 convolution to the image encoder's width
      (our choice, to keep the residual blocks at the same cost as G_s), then
      ``alpha_res_blocks`` residual blocks.
    * "decoder predicts alpha; short connections from both encoders' layers to the decoder
      layers" -> each :class:`UpBlock` concatenates the image-encoder *and* the seg-encoder output
      of its resolution; the output convolution sees both full-resolution stems too.
    * One channel, sigmoid, [0, 1].

Chain (:class:`Pomagan`): image -> ``segment`` -> s -> ``matte(image, s)`` -> alpha. Inputs are
display-referred sRGB-encoded floats in [0, 1]; the networks map them to [-1, 1] themselves.

Choices the paper leaves open (channel widths, block counts, normalisation) are the variant's
:class:`PomaganConfig`; the registered variants and their measured parameter and FLOP counts are
listed in ``pomagan_post/models/__init__.py`` and the README.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .blocks import ASPP, NORMS, Encoder, ConvNormAct, ResidualBlock, UpBlock

__all__ = ["PomaganConfig", "SegmentationNet", "AlphaNet", "Pomagan"]


@dataclass(frozen=True)
class PomaganConfig:
    """Architecture of one POMAGAN variant (everything the paper leaves to the implementer).

    Args:
        widths: channels of the image encoders, stem first; ``len(widths) - 1`` stride-2
            downsamplings, so the network stride is ``2 ** (len(widths) - 1)``.
        seg_widths: channels of the alpha network's segmentation encoding block (same length).
        seg_res_blocks: residual blocks at the segmentation network's bottleneck.
        alpha_res_blocks: residual blocks at the alpha network's bottleneck.
        aspp_rates: dilation rates of the ASPP's 3x3 branches.
        norm: normalisation layer, one of ``instance``, ``group``, ``batch``, ``none``.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    seg_widths: tuple[int, ...] = (32, 64, 128, 256, 256)
    seg_res_blocks: int = 6
    alpha_res_blocks: int = 6
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    norm: str = "instance"

    def __post_init__(self) -> None:
        if len(self.widths) < 2 or len(self.widths) != len(self.seg_widths):
            raise ValueError("widths and seg_widths need the same length, at least 2")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        # Lists from JSON become tuples so configs compare and hash.
        for name in ("widths", "seg_widths", "aspp_rates"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))

    @property
    def stride(self) -> int:
        """Input sizes must be multiples of this (the engine pads to it)."""
        return 2 ** (len(self.widths) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PomaganConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown architecture fields: {sorted(unknown)}")
        return cls(**data)


def _to_signed(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 - 1.0  # [0, 1] -> [-1, 1]


class SegmentationNet(nn.Module):
    """G_s: image -> coarse person segmentation. [B, 3, H, W] -> [B, 1, H, W] in [0, 1].

    H and W must be multiples of ``2 ** (len(widths) - 1)``.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 128, 256, 512, 512),
        res_blocks: int = 6,
        aspp_rates: tuple[int, ...] = (6, 12, 18),
        norm: str = "instance",
    ) -> None:
        super().__init__()
        self.encoder = Encoder(3, widths, norm=norm)
        bottom = widths[-1]
        self.res_blocks = nn.Sequential(*(ResidualBlock(bottom, norm=norm) for _ in range(res_blocks)))
        self.aspp = ASPP(bottom, bottom, aspp_rates, norm=norm)
        # Level i (coarsest first) takes the decoder features plus encoder level i.
        self.ups = nn.ModuleList()
        dec_ch = bottom
        for level in range(len(widths) - 1, 0, -1):
            self.ups.append(UpBlock(dec_ch + widths[level], widths[level - 1], norm=norm))
            dec_ch = widths[level - 1]
        self.head = nn.Conv2d(dec_ch + widths[0], 1, 7, padding=3, padding_mode="reflect")

    def forward(self, image: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """``logits=True``: the values before the sigmoid (training's cross-entropy term)."""
        feats = self.encoder(_to_signed(image))  # finest first; feats[-1]: [B, C, H/16, W/16]
        x = self.aspp(self.res_blocks(feats[-1]))
        for i, up in enumerate(self.ups):  # coarsest skip first (index loop: TorchScript)
            x = up(x, [feats[len(feats) - 1 - i]])  # [B, c, h, w] -> [B, c', 2h, 2w]
        x = self.head(torch.cat([x, feats[0]], dim=1))  # [B, 2*w0, H, W] -> [B, 1, H, W]
        return x if logits else torch.sigmoid(x)


class AlphaNet(nn.Module):
    """G_a: image + coarse segmentation -> alpha. ([B, 3, H, W], [B, 1, H, W]) -> [B, 1, H, W]."""

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 128, 256, 512, 512),
        seg_widths: tuple[int, ...] = (32, 64, 128, 256, 256),
        res_blocks: int = 6,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        self.image_encoder = Encoder(3, widths, norm=norm)
        self.seg_encoder = Encoder(1, seg_widths, norm=norm)
        bottom = widths[-1]
        self.fuse = ConvNormAct(bottom + seg_widths[-1], bottom, 1, norm=norm)
        self.res_blocks = nn.Sequential(*(ResidualBlock(bottom, norm=norm) for _ in range(res_blocks)))
        self.ups = nn.ModuleList()
        dec_ch = bottom
        for level in range(len(widths) - 1, 0, -1):
            in_ch = dec_ch + widths[level] + seg_widths[level]
            self.ups.append(UpBlock(in_ch, widths[level - 1], norm=norm))
            dec_ch = widths[level - 1]
        self.head = nn.Conv2d(dec_ch + widths[0] + seg_widths[0], 1, 7, padding=3, padding_mode="reflect")

    def forward(self, image: torch.Tensor, seg: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """``logits=True``: the values before the sigmoid (training's cross-entropy term)."""
        img_feats = self.image_encoder(_to_signed(image))
        seg_feats = self.seg_encoder(_to_signed(seg))
        x = torch.cat([img_feats[-1], seg_feats[-1]], dim=1)  # depth concatenation
        x = self.res_blocks(self.fuse(x))  # [B, C + Cs, h, w] -> [B, C, h, w]
        for i, up in enumerate(self.ups):  # coarsest skips first
            level = len(img_feats) - 1 - i
            x = up(x, [img_feats[level], seg_feats[level]])
        x = self.head(torch.cat([x, img_feats[0], seg_feats[0]], dim=1))  # -> [B, 1, H, W]
        return x if logits else torch.sigmoid(x)


class Pomagan(nn.Module):
    """The full POMAGAN: image -> (alpha, segmentation).

    Args:
        config: the architecture.
        variant: registry name the config came from (recorded in checkpoints).
    """

    # Python-only metadata: TorchScript (the Nuke export) compiles the networks, not this.
    __jit_unused_properties__ = ["stride"]

    def __init__(self, config: PomaganConfig = PomaganConfig(), variant: str = "custom") -> None:
        super().__init__()
        self.config = config
        self.variant = variant
        #: Metadata of the checkpoint the weights came from (set by ``load_checkpoint``).
        self.checkpoint_info: dict[str, Any] | None = None
        self.segmentation = SegmentationNet(
            config.widths, config.seg_res_blocks, config.aspp_rates, config.norm
        )
        self.alpha = AlphaNet(config.widths, config.seg_widths, config.alpha_res_blocks, config.norm)

    @property
    def stride(self) -> int:
        return self.config.stride

    def segment(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] sRGB [0, 1] -> [B, 1, H, W] person probability."""
        return self.segmentation(image)

    def matte(self, image: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] image and [B, 1, H, W] segmentation -> [B, 1, H, W] alpha."""
        return self.alpha(image, seg)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seg = self.segment(image)
        return self.matte(image, seg), seg
