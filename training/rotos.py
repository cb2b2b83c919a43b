"""Roto-like segmentations for training the alpha stage (``pomagan-train alpha --roto-rate P``).

``render --roto`` feeds the alpha network a hand-drawn shape of the person in place of the
segmentation network's guess. A roto artist's shape is not the true one: its edge runs a few
pixels inside or outside the subject's, smoother than it (few points, curves), wavering, and a
tracked shape slips. :func:`hand_drawn` makes such shapes from the true segmentation of a batch
on the training device, so the alpha network learns to follow a roto's outline where it is
right and the picture where it is off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["hand_drawn", "MAX_GROW", "MAX_SHIFT"]

#: Largest growth / shrinkage of the true shape, in training pixels.
MAX_GROW = 3
#: Largest shift of the shape, in training pixels, each way.
MAX_SHIFT = 2


def _gaussian(sigma: float, device: torch.device) -> torch.Tensor:
    half = max(1, int(3 * sigma))
    x = torch.arange(-half, half + 1, device=device, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def hand_drawn(seg: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotos drawn from true segmentations: ``[B, 1, H, W]`` of 0/1 -> the same, each frame's
    shape grown or shrunk by 0 to :data:`MAX_GROW` pixels, its edge smoothed (a Gaussian of
    sigma 1 to 3 pixels, thresholded at 0.5) and wavered (low-frequency noise of up to 0.25
    added near the edge only, so nothing appears far from it), then shifted by up to
    :data:`MAX_SHIFT` pixels each way. Random choices come from ``generator`` (a CPU one), so a
    seeded run draws the same shapes."""
    out = []
    height, width = seg.shape[-2:]
    for frame in seg.float().split(1):
        draw = torch.rand(5, generator=generator).tolist()
        grow = int(draw[0] * (2 * MAX_GROW + 1)) - MAX_GROW
        if grow > 0:
            frame = F.max_pool2d(frame, 2 * grow + 1, stride=1, padding=grow)
        elif grow < 0:
            frame = -F.max_pool2d(-frame, 2 * -grow + 1, stride=1, padding=-grow)
        kernel = _gaussian(1.0 + 2.0 * draw[1], frame.device)
        half = kernel.numel() // 2
        soft = F.pad(frame, (half, half, half, half), mode="replicate")
        soft = F.conv2d(F.conv2d(soft, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
        coarse = torch.randn(1, 1, max(2, height // 24), max(2, width // 24), generator=generator)
        waver = F.interpolate(coarse.to(frame.device), size=(height, width), mode="bilinear",
                              align_corners=False) * (0.25 * draw[2])
        near_edge = ((soft > 0.02) & (soft < 0.98)).float()
        shape = (soft + waver * near_edge >= 0.5).float()
        dx = int(draw[3] * (2 * MAX_SHIFT + 1)) - MAX_SHIFT
        dy = int(draw[4] * (2 * MAX_SHIFT + 1)) - MAX_SHIFT
        moved = F.pad(shape, (MAX_SHIFT,) * 4, mode="replicate")  # (a shape at the frame's edge stays there)
        top, left = MAX_SHIFT - dy, MAX_SHIFT - dx
        out.append(moved[..., top:top + height, left:left + width])
    return torch.cat(out).to(seg.dtype)
