"""Edge refinement: full-resolution alpha from the working-resolution matte, and clean foreground.

The network sees a ~1280x768 frame; film plates are 2K/4K. Two steps make the edges hold up there:

* :func:`guided_upsample` lifts the low-resolution alpha to the plate resolution with a colour
  fast guided filter (He & Sun 2015): the per-window linear model ``alpha ~ A . I + b`` is fitted
  at low resolution, ``A`` and ``b`` are upsampled bilinearly and applied to the full-resolution
  frame, so hair strands follow the plate rather than a blurred matte.
* :func:`estimate_foreground` solves ``I = a F + (1 - a) B`` for the foreground colour with the
  multi-level method of Germer et al. 2020 (the algorithm of pymatting's
  ``estimate_foreground_ml``), with red-black Gauss-Seidel sweeps so half the frame updates in
  parallel at a time (GPU friendly). Edges then carry no background spill, unlike ``a x I``.

Every function takes either torch batches (image ``[N, 3, H, W]``, alpha ``[N, 1, h, w]``, any
float dtype, any device) or single numpy frames (image ``[H, W, 3]``, alpha ``[h, w]``) and returns
the same kind, as float32. Computation is always float32 on the input's device. Non-finite input
pixels (NaN/inf in an EXR) are treated as 0 so that one bad pixel cannot poison the whole solve.
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from .errors import BadInputError

__all__ = [
    "bilinear_upsample",
    "estimate_foreground",
    "guided_upsample",
    "guided_upsample_tensor",
    "premultiplied_foreground",
]

Array = TypeVar("Array", torch.Tensor, np.ndarray)


# --------------------------------------------------------------------------------------------
# Alpha upsampling


def guided_upsample(
    alpha_low: Array, image_full: Array, *, radius: int = 1, eps: float = 1e-4
) -> Array:
    """Upsample a low-resolution alpha to the resolution of ``image_full`` with a guided filter.

    Colour fast guided filter: the guide is ``image_full`` resized to the alpha's size; the
    coefficients are box-averaged there, upsampled bilinearly and applied to ``image_full``.

    Args:
        alpha_low: ``[N, 1, h, w]`` tensor, ``[h, w]`` array or ``[N, h, w]`` arrays, values in [0, 1].
        image_full: ``[N, 3, H, W]`` tensor, ``[H, W, 3]`` array or ``[N, H, W, 3]`` arrays, display-referred (the
            model-space frame, roughly [0, 1]; ``eps`` is relative to that range).
        radius: box radius in low-resolution pixels (window ``2 * radius + 1``).
        eps: regularisation; smaller follows the guide's edges more closely, larger is smoother.

    Returns:
        Alpha at ``H x W`` in [0, 1], float32, same kind as the inputs
        (``[N, 1, H, W]`` / ``[H, W]`` / ``[N, H, W]``).
    """
    if radius < 1 or eps <= 0:
        raise BadInputError(f"guided_upsample needs radius >= 1 and eps > 0, got {radius}, {eps}")
    guide, alpha, is_numpy = _as_batch(image_full, alpha_low, same_size=False)
    return _as_input_kind(guided_upsample_tensor(alpha, guide, radius, eps), is_numpy)


def guided_upsample_tensor(alpha: torch.Tensor, guide: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """The filter of :func:`guided_upsample` on validated float tensors, TorchScript-compilable
    (the Nuke export calls it inside its ``forward``).

    ``[N, 1, h, w]`` alpha, ``[N, 3, H, W]`` guide (finite float32) -> ``[N, 1, H, W]`` in [0, 1].
    """
    guide_low = _resize(guide, [alpha.shape[-2], alpha.shape[-1]])
    coeffs = _guided_coefficients(guide_low, alpha, radius, eps)  # [N, 4, h, w]: A (3), b (1)
    coeffs = _resize(coeffs, [guide.shape[-2], guide.shape[-1]])  # [N, 4, h, w] -> [N, 4, H, W]
    return (coeffs[:, :3] * guide).sum(1, keepdim=True).add_(coeffs[:, 3:]).clamp_(0.0, 1.0)


def bilinear_upsample(alpha_low: Array, image_full: Array) -> Array:
    """Upsample a low-resolution alpha bilinearly (the baseline for :func:`guided_upsample`).

    Args:
        alpha_low: ``[N, 1, h, w]`` tensor or ``[h, w]`` array.
        image_full: ``[N, 3, H, W]`` tensor or ``[H, W, 3]`` array; only its size is used.

    Returns:
        Alpha at ``H x W`` in [0, 1], float32, same kind as the inputs.
    """
    guide, alpha, is_numpy = _as_batch(image_full, alpha_low, same_size=False)
    out = _resize(alpha, [guide.shape[-2], guide.shape[-1]]).clamp_(0.0, 1.0)
    return _as_input_kind(out, is_numpy)


def _guided_coefficients(
    guide: torch.Tensor, alpha: torch.Tensor, radius: int, eps: float
) -> torch.Tensor:
    """Box-averaged colour guided filter coefficients.

    ``[N, 3, h, w]`` guide, ``[N, 1, h, w]`` alpha -> ``[N, 4, h, w]`` (A for r, g, b; then b).
    """
    # Centre the guide per image so the variance terms lose less to float32 cancellation.
    # Written out channel by channel (no generator unpacking) so TorchScript compiles it.
    centre = guide.mean((2, 3), keepdim=True)
    guide = guide - centre
    r, g, b = guide[:, 0:1], guide[:, 1:2], guide[:, 2:3]
    products = torch.cat([r * r, r * g, r * b, g * g, g * b, b * b], 1)  # upper triangle
    means = _box(torch.cat([guide, alpha, guide * alpha, products], 1), radius)
    mean_i, mean_p, mean_ip, mean_ii = means[:, :3], means[:, 3:4], means[:, 4:7], means[:, 7:]
    cov_ip = mean_ip - mean_i * mean_p  # [N, 3, h, w]
    # Symmetric 3x3 covariance + eps * identity, named by its upper-triangle entries.
    mr, mg, mb = mean_i[:, 0:1], mean_i[:, 1:2], mean_i[:, 2:3]
    rr = mean_ii[:, 0:1] - mr * mr + eps
    rg = mean_ii[:, 1:2] - mr * mg
    rb = mean_ii[:, 2:3] - mr * mb
    gg = mean_ii[:, 3:4] - mg * mg + eps
    gb = mean_ii[:, 4:5] - mg * mb
    bb = mean_ii[:, 5:6] - mb * mb + eps
    # Inverse via the adjugate (symmetric, so six distinct cofactors).
    inv_rr, inv_rg, inv_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    inv_gg, inv_gb, inv_bb = rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg
    inv_det = 1.0 / (rr * inv_rr + rg * inv_rg + rb * inv_rb)
    cr, cg, cb = cov_ip[:, 0:1], cov_ip[:, 1:2], cov_ip[:, 2:3]
    a = torch.cat(
        [
            inv_rr * cr + inv_rg * cg + inv_rb * cb,
            inv_rg * cr + inv_gg * cg + inv_gb * cb,
            inv_rb * cr + inv_gb * cg + inv_bb * cb,
        ],
        1,
    ).mul_(inv_det)
    offset = mean_p - (a * mean_i).sum(1, keepdim=True)
    mean_ab = _box(torch.cat([a, offset], 1), radius)
    mean_a, mean_b = mean_ab[:, :3], mean_ab[:, 3:]
    # b was fitted against the centred guide; move it back to the uncentred one.
    return torch.cat([mean_a, mean_b - (mean_a * centre).sum(1, keepdim=True)], 1)


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a ``(2r+1)^2`` window, counting only pixels inside the image (separable)."""
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def _resize(x: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Bilinear resize to ``size`` (h, w), antialiased when shrinking; identity when the size
    already matches."""
    h, w = int(size[0]), int(size[1])
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    shrinking = h < x.shape[-2] or w < x.shape[-1]
    return F.interpolate(x, size=[h, w], mode="bilinear", align_corners=False, antialias=shrinking)


# --------------------------------------------------------------------------------------------
# Foreground estimation


def estimate_foreground(
    image: Array,
    alpha: Array,
    *,
    regularization: float = 1e-5,
    gradient_weight: float = 1.0,
    n_small_iterations: int = 10,
    n_big_iterations: int = 2,
    small_size: int = 32,
) -> Array:
    """Straight (unpremultiplied) foreground colour ``F`` such that ``I = a F + (1 - a) B``.

    Multi-level foreground estimation (Germer et al. 2020): coarse-to-fine over ``ceil(log2(max(H,
    W)))`` levels, at each level a few Gauss-Seidel sweeps (red-black order, so each half-sweep is
    one parallel update of the whole frame) of the per-pixel 2x2 solve for ``F`` and ``B`` with a
    smoothness term whose weight grows across alpha edges. Values above 1 (scene-linear
    HDR) and below 0 (ACEScg) are kept: estimates are bounded by ``[min(0, I), max(1, I)]`` over
    the pixel's neighbourhood (its 16-pixel block and the eight around it), not ``[0, 1]``, and
    not over the whole image, where one negative pixel or highlight anywhere loosened the bounds
    of every edge in the frame.

    Args:
        image: ``[N, 3, H, W]`` tensor, ``[H, W, 3]`` or ``[N, H, W, 3]`` array, any float dtype, any light
            (scene-linear is fine).
        alpha: ``[N, 1, H, W]`` tensor, ``[H, W]`` or ``[N, H, W]`` array in [0, 1], same size as ``image``.
        regularization: smoothness weight between neighbours everywhere (must be > 0).
        gradient_weight: extra smoothness weight proportional to the alpha difference.
        n_small_iterations: sweeps per level while the level fits in ``small_size`` pixels.
        n_big_iterations: sweeps per level above that.
        small_size: side length below which a level counts as small.

    Returns:
        Foreground ``[N, 3, H, W]`` / ``[H, W, 3]`` / ``[N, H, W, 3]``, float32, same kind as the inputs.
    """
    if regularization <= 0 or gradient_weight < 0:
        raise BadInputError(
            f"estimate_foreground needs regularization > 0 and gradient_weight >= 0, "
            f"got {regularization}, {gradient_weight}"
        )
    image_t, alpha_t, is_numpy = _as_batch(image, alpha, same_size=True)
    alpha_t = alpha_t.clamp(0.0, 1.0)
    lower, upper = _local_bounds(image_t)

    # Start from the mean colour of the confident foreground / background.
    fb = torch.cat([_masked_mean(image_t, alpha_t > 0.9), _masked_mean(image_t, alpha_t < 0.1)], 1)
    # fb: [N, 6, 1, 1], F (3) then B (3)

    height, width = image_t.shape[-2:]
    n_levels = max(1, math.ceil(math.log2(max(height, width))))
    for level in range(n_levels + 1):
        h, w = round(height ** (level / n_levels)), round(width ** (level / n_levels))
        small = h <= small_size and w <= small_size
        fb = _foreground_level(
            _resize_nearest(image_t, h, w),
            _resize_nearest(alpha_t, h, w),
            _resize_nearest(fb, h, w),
            n_small_iterations if small else n_big_iterations,
            regularization,
            gradient_weight,
            *_bounds_at(lower, upper, h, w),
        )
    return _as_input_kind(_pinned_to_the_image(fb, image_t, alpha_t, *_bounds_at(lower, upper, height, width)),
                          is_numpy)


#: Side, in pixels of the full frame, of the blocks whose values bound the foreground estimate.
_BOUND_BLOCK = 16


def _local_bounds(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``([N, 1, h, w], [N, 1, h, w])``: on a grid of 16-pixel blocks, ``min(0, I)`` and
    ``max(1, I)`` over each block and the eight around it (every channel)."""
    height, width = image.shape[-2:]
    grid = (max(1, math.ceil(height / _BOUND_BLOCK)), max(1, math.ceil(width / _BOUND_BLOCK)))
    upper = F.max_pool2d(F.adaptive_max_pool2d(image.amax(1, keepdim=True), grid), 3, 1, 1)
    lower = -F.max_pool2d(F.adaptive_max_pool2d(-image.amin(1, keepdim=True), grid), 3, 1, 1)
    return lower.clamp_(max=0.0), upper.clamp_(min=1.0)


def _bounds_at(lower: torch.Tensor, upper: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The block bounds for an ``h`` x ``w`` level: the widest over the blocks a pixel covers
    where the level is coarser than the grid, else the pixel's block's."""
    grid_h, grid_w = lower.shape[-2:]
    fit = (min(h, grid_h), min(w, grid_w))
    if fit != (grid_h, grid_w):
        upper = F.adaptive_max_pool2d(upper, fit)
        lower = -F.adaptive_max_pool2d(-lower, fit)
    return _resize_nearest(lower, h, w), _resize_nearest(upper, h, w)


def _pinned_to_the_image(fb: torch.Tensor, image: torch.Tensor, alpha: torch.Tensor,
                         lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """The estimate's F, drawn towards the compositing equation's own answer where the matte is
    mostly opaque: ``F_eq = (I - (1 - a) B) / a`` with the estimated background, weighted by
    ``2a - 1`` from none at a = 0.5 to all at a = 1. The smoothness term alone lets F drift from
    the image next to an edge (up to 0.17 on a fully opaque pixel of the astronaut example), so
    a pixel the matte calls opaque would not be the plate's colour; pinned, it is exactly the
    image at a = 1, and ``a F + (1 - a) B`` is the image wherever a >= 1."""
    fg, bg = fb[:, :3], fb[:, 3:]
    weight = (2.0 * alpha - 1.0).clamp_(0.0, 1.0)
    solved = (image - (1.0 - alpha) * bg).div_(alpha.clamp(min=0.5)).clamp_(lower, upper)
    return torch.lerp(fg, solved, weight)  # exactly ``solved`` where the weight is 1


def _foreground_level(
    image: torch.Tensor,
    alpha: torch.Tensor,
    fb: torch.Tensor,
    n_iterations: int,
    regularization: float,
    gradient_weight: float,
    lower: torch.Tensor,
    upper: torch.Tensor,
) -> torch.Tensor:
    """Red-black Gauss-Seidel sweeps at one level: ``[N, 6, h, w]`` F/B in, refined F/B out.

    Per pixel, with neighbour weights ``w_d = reg + gw |a - a_d|`` and ``s = sum w_d``, minimise
    ``|a F + (1-a) B - I|^2 + sum_d w_d (|F - F_d|^2 + |B - B_d|^2)`` for F, B with the
    neighbours held fixed: a 2x2 system per channel. Pixels of one checkerboard colour have no
    neighbours of their own colour, so each half-sweep updates half the frame in parallel and
    converges like the sequential sweep of the reference implementation.
    """
    weights = [regularization + gradient_weight * (alpha - a_d).abs() for a_d in _neighbours(alpha)]
    s = sum(weights)
    a0, a1 = alpha, 1.0 - alpha
    # det of [[a0^2 + s, a0 a1], [a0 a1, a1^2 + s]], written without cancellation.
    inv_det = 1.0 / (s * (a0 * a0 + a1 * a1 + s))
    c_ff, c_fb, c_bb = (a1 * a1 + s) * inv_det, a0 * a1 * inv_det, (a0 * a0 + s) * inv_det
    rhs = torch.cat([a0 * image, a1 * image], 1)  # [N, 6, h, w]
    h, w = alpha.shape[-2:]
    rows = torch.arange(h, device=alpha.device)[:, None]
    red = ((rows + torch.arange(w, device=alpha.device)) % 2 == 0).float()  # [h, w]

    # The estimate lives inside a replicate-padded buffer so neighbours are views, and every
    # half-sweep runs in place: full frames at 4K are too big to allocate a dozen times a sweep.
    padded = F.pad(fb, (1, 1, 1, 1), mode="replicate")  # [N, 6, h + 2, w + 2]
    fb, neighbour_fb = padded[..., 1:-1, 1:-1], _neighbours(padded, pad=False)
    b, update = torch.empty_like(fb), torch.empty_like(fb)
    b_f, b_b, update_f, update_b = b[:, :3], b[:, 3:], update[:, :3], update[:, 3:]
    for _ in range(n_iterations):
        for colour in (red, 1.0 - red):
            torch.mul(neighbour_fb[0], weights[0], out=b)
            for fb_d, w_d in zip(neighbour_fb[1:], weights[1:]):
                b.addcmul_(fb_d, w_d)
            b.add_(rhs)
            torch.mul(b_f, c_ff, out=update_f).addcmul_(b_b, c_fb, value=-1.0)
            torch.mul(b_b, c_bb, out=update_b).addcmul_(b_f, c_fb, value=-1.0)
            update.clamp_(lower, upper).sub_(fb).mul_(colour)
            fb.add_(update)  # only this colour's pixels change
            _replicate_border(padded)
    return fb


def _masked_mean(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean colour over masked pixels: ``[N, 3, H, W]``, ``[N, 1, H, W]`` -> ``[N, 3, 1, 1]``."""
    mask = mask.float()
    return (image * mask).sum((2, 3), keepdim=True) / (mask.sum((2, 3), keepdim=True) + 1e-5)


def _neighbours(x: torch.Tensor, pad: bool = True) -> list[torch.Tensor]:
    """Left, right, up and down neighbours of every pixel, as views of the replicate-padded ``x``.

    With ``pad=False``, ``x`` already carries a one-pixel border and the views cover its inside.
    """
    p = F.pad(x, (1, 1, 1, 1), mode="replicate") if pad else x
    return [p[..., 1:-1, :-2], p[..., 1:-1, 2:], p[..., :-2, 1:-1], p[..., 2:, 1:-1]]


def _replicate_border(padded: torch.Tensor) -> None:
    """Refresh a one-pixel border in place from the pixels just inside it."""
    padded[..., 0, :] = padded[..., 1, :]
    padded[..., -1, :] = padded[..., -2, :]
    padded[..., :, 0] = padded[..., :, 1]
    padded[..., :, -1] = padded[..., :, -2]


def _resize_nearest(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Nearest-neighbour resize with integer index maths (``src = dst * size_src // size_dst``)."""
    src_h, src_w = x.shape[-2:]
    if (src_h, src_w) == (h, w):
        return x
    rows = torch.arange(h, device=x.device) * src_h // h
    cols = torch.arange(w, device=x.device) * src_w // w
    return x.index_select(-2, rows).index_select(-1, cols)


def premultiplied_foreground(
    image: Array, alpha: Array, method: Literal["estimate", "multiply"] = "estimate"
) -> Array:
    """Premultiplied foreground ``a x F``.

    Args:
        image: ``[N, 3, H, W]`` tensor, ``[H, W, 3]`` or ``[N, H, W, 3]`` array.
        alpha: ``[N, 1, H, W]`` tensor, ``[H, W]`` or ``[N, H, W]`` array, same size as ``image``.
        method: ``"estimate"`` uses :func:`estimate_foreground` (no background spill on edges);
            ``"multiply"`` is the plain ``a x I``.

    Returns:
        ``[N, 3, H, W]`` / ``[H, W, 3]`` / ``[N, H, W, 3]`` float32, same kind as the inputs.
    """
    if method not in ("estimate", "multiply"):
        raise BadInputError(f"unknown foreground method {method!r}; use 'estimate' or 'multiply'")
    image_t, alpha_t, is_numpy = _as_batch(image, alpha, same_size=True)
    colour = estimate_foreground(image_t, alpha_t) if method == "estimate" else image_t
    return _as_input_kind(colour * alpha_t.clamp(0.0, 1.0), is_numpy)


# --------------------------------------------------------------------------------------------
# Input handling


def _as_batch(
    image: Array, alpha: Array, *, same_size: bool
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate an image/alpha pair; return float32 ``[N,3,H,W]``, ``[N,1,h,w]`` and the input's
    kind: 0 torch, 1 one numpy frame (``[H, W, 3]``, ``[h, w]``), 2 numpy frames (``[N, H, W, 3]``,
    ``[N, h, w]``, as :meth:`Engine.process` takes and gives them)."""
    if isinstance(image, np.ndarray) and isinstance(alpha, np.ndarray):
        one = image.ndim == 3 and alpha.ndim == 2
        many = image.ndim == 4 and alpha.ndim == 3 and image.shape[0] == alpha.shape[0]
        if not (one or many) or image.shape[-1] != 3:
            raise BadInputError(
                f"expected a [H, W, 3] image and a [h, w] alpha, or [N, H, W, 3] images and [N, h, w] "
                f"alphas, got {image.shape} and {alpha.shape}"
            )
        _check_float(image.dtype, alpha.dtype)
        image_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        alpha_t = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))
        if one:
            image_t, alpha_t = image_t[None], alpha_t[None]
        image_t, alpha_t = image_t.permute(0, 3, 1, 2), alpha_t[:, None]
        is_numpy = 1 if one else 2
    elif isinstance(image, torch.Tensor) and isinstance(alpha, torch.Tensor):
        if (
            image.ndim != 4
            or image.shape[1] != 3
            or alpha.ndim != 4
            or alpha.shape[1] != 1
            or alpha.shape[0] != image.shape[0]
        ):
            raise BadInputError(
                f"expected an [N, 3, H, W] image and an [N, 1, h, w] alpha, "
                f"got {tuple(image.shape)} and {tuple(alpha.shape)}"
            )
        if image.device != alpha.device:
            raise BadInputError(f"image on {image.device} but alpha on {alpha.device}")
        _check_float(image.dtype, alpha.dtype)
        image_t, alpha_t, is_numpy = image.float(), alpha.float(), 0
    else:
        raise BadInputError(
            f"image and alpha must both be numpy arrays or both torch tensors, "
            f"got {type(image).__name__} and {type(alpha).__name__}"
        )
    if same_size and image_t.shape[-2:] != alpha_t.shape[-2:]:
        raise BadInputError(
            f"image {tuple(image_t.shape[-2:])} and alpha {tuple(alpha_t.shape[-2:])} "
            "differ in size"
        )
    if min(image_t.shape[-2:]) < 1 or min(alpha_t.shape[-2:]) < 1:
        raise BadInputError("image and alpha must not be empty")
    return _finite(image_t), _finite(alpha_t), is_numpy


def _check_float(*dtypes: np.dtype | torch.dtype) -> None:
    for dtype in dtypes:
        if isinstance(dtype, torch.dtype):
            floating = dtype.is_floating_point
        else:
            floating = np.issubdtype(dtype, np.floating)
        if not floating:
            raise BadInputError(f"expected floating-point pixels, got {dtype}")


def _finite(x: torch.Tensor) -> torch.Tensor:
    """Replace NaN/inf with 0."""
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _as_input_kind(x: torch.Tensor, is_numpy: int) -> Array:
    """``[N, C, H, W]`` tensor -> the layout the input came in (:func:`_as_batch`'s kind): the
    tensor, ``[H, W, 3]`` / ``[H, W]`` for one numpy frame, ``[N, H, W, 3]`` / ``[N, H, W]``."""
    if not is_numpy:
        return x
    x = x.detach().cpu()
    x = x[:, 0] if x.shape[1] == 1 else x.permute(0, 2, 3, 1)
    return (x[0] if is_numpy == 1 else x).contiguous().numpy()
