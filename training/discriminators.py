"""Multi-scale conditional PatchGAN discriminators (pix2pixHD), as the paper uses for both stages.

Three identical PatchGANs see the condition (image) concatenated with the output (segmentation or
alpha) at full, 1/2 and 1/4 scale.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["PatchDiscriminator", "MultiscaleDiscriminator"]


class PatchDiscriminator(nn.Module):
    """70x70-style PatchGAN: [B, C, H, W] -> [B, 1, H/8, W/8] logits (for ``layers=3``)."""

    def __init__(self, in_ch: int, base: int = 64, layers: int = 3) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_ch, base, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True)]
        ch = base
        for i in range(1, layers + 1):
            out = min(base * 2**i, 512)
            stride = 2 if i < layers else 1
            seq += [
                nn.Conv2d(ch, out, 4, stride=stride, padding=2),
                nn.InstanceNorm2d(out, affine=True),
                nn.LeakyReLU(0.2, True),
            ]
            ch = out
        seq.append(nn.Conv2d(ch, 1, 4, stride=1, padding=2))
        self.net = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiscaleDiscriminator(nn.Module):
    """``scales`` identical PatchGANs on an image pyramid (1, 1/2, 1/4, ...).

    ``forward(condition, output)`` concatenates along depth and returns one logit map per scale,
    finest first.
    """

    def __init__(self, in_ch: int, scales: int = 3, base: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PatchDiscriminator(in_ch, base, layers) for _ in range(scales))

    def forward(self, condition: torch.Tensor, output: torch.Tensor) -> list[torch.Tensor]:
        x = torch.cat([condition, output], dim=1)
        logits = []
        for index, disc in enumerate(self.discriminators):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            logits.append(disc(x))
        return logits
