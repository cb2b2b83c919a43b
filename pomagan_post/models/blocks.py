"""Building blocks shared by the POMAGAN generators.

Everything here is a plain ``nn.Module``: no I/O, no globals. Shapes are written where they change.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["make_norm", "ConvNormAct", "ResidualBlock", "ASPP", "Encoder", "UpBlock", "NORMS"]

NORMS = ("instance", "group", "batch", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """A normalisation layer by name.

    Args:
        kind: ``"instance"`` (pix2pixHD's choice, affine), ``"group"`` (8 groups or fewer),
            ``"batch"`` or ``"none"``.
        channels: number of feature channels.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        groups = 8
        while channels % groups:
            groups //= 2
        return nn.GroupNorm(groups, channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


class ConvNormAct(nn.Sequential):
    """Conv2d -> norm -> ReLU (the activation can be switched off)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        dilation: int = 1,
        norm: str = "instance",
        act: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        padding = dilation * (kernel - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_ch,
                out_ch,
                kernel,
                stride=stride,
                padding=padding,
                dilation=dilation,
                bias=norm in ("none",),
                padding_mode=padding_mode,
            ),
            make_norm(norm, out_ch),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """pix2pixHD residual block: x + norm(conv(relu(norm(conv(x))))). Shape preserved."""

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(channels, channels, 3, norm=norm, padding_mode="reflect"),
            ConvNormAct(channels, channels, 3, norm=norm, act=False, padding_mode="reflect"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLab v3): parallel 1x1, dilated 3x3 and image pooling.

    [B, C, h, w] -> [B, out_ch, h, w]. The image-pooling branch makes the block resolution-free.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        rates: Sequence[int] = (6, 12, 18),
        norm: str = "instance",
    ) -> None:
        super().__init__()
        branch_ch = out_ch // 2 if out_ch >= 64 else out_ch
        self.branches = nn.ModuleList([ConvNormAct(in_ch, branch_ch, 1, norm=norm)])
        for rate in rates:
            self.branches.append(ConvNormAct(in_ch, branch_ch, 3, dilation=rate, norm=norm))
        # Image pooling: a global average has a 1x1 extent, where instance norm is undefined.
        self.pool_proj = nn.Sequential(nn.Conv2d(in_ch, branch_ch, 1), nn.ReLU(inplace=True))
        n = len(self.branches) + 1
        self.project = ConvNormAct(n * branch_ch, out_ch, 1, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        feats = [branch(x) for branch in self.branches]
        pooled = self.pool_proj(F.adaptive_avg_pool2d(x, 1))  # [B, c, 1, 1]
        feats.append(pooled.expand(-1, -1, h, w))
        return self.project(torch.cat(feats, dim=1))  # [B, n*c, h, w] -> [B, out, h, w]


class Encoder(nn.Module):
    """U-Net style convolutional encoder.

    A 7x7 stem at full resolution followed by ``len(widths) - 1`` stride-2 3x3 convolutions.
    ``forward`` returns every level's output, finest first, for the decoder's skip connections:
    [B, in, H, W] -> [[B, w0, H, W], [B, w1, H/2, W/2], ..., [B, wn, H/2^n, W/2^n]].
    """

    def __init__(self, in_ch: int, widths: Sequence[int], norm: str = "instance") -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.stem = ConvNormAct(in_ch, widths[0], 7, norm=norm, padding_mode="reflect")
        self.downs = nn.ModuleList(
            ConvNormAct(widths[i], widths[i + 1], 3, stride=2, norm=norm)
            for i in range(len(widths) - 1)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        return feats


class UpBlock(nn.Module):
    """Decoder step: concatenate skips along depth, then a stride-2 deconvolution.

    [B, in_ch (decoder + skips), h, w] -> [B, out_ch, 2h, 2w].
    """

    def __init__(self, in_ch: int, out_ch: int, norm: str = "instance") -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=norm == "none")
        self.norm = make_norm(norm, out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([x] + skips, dim=1)
        return self.act(self.norm(self.deconv(x)))
