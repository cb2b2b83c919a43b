"""Alpha matte quality metrics: MSE, MAE, SAD, Gradient, Connectivity and dtSSD.

Definitions follow the Deep Image Matting evaluation code (Xu et al. 2017, after Rhemann et al.
2009: ``compute_mse_loss``, ``compute_sad_loss``, ``compute_gradient_loss``,
``compute_connectivity_error``) and, for dtSSD, Erofeev et al. 2015 in the per-pixel form of the
RobustVideoMatting evaluation (``evaluation/evaluate_lr.py``).

Every function takes float mattes in [0, 1] (numpy arrays or torch tensors; ``[H, W]``,
``[H, W, 1]`` or ``[1, H, W]``; clips ``[T, H, W]`` for :func:`dtssd`) and returns the *raw*
value on that [0, 1] scale: no x1e3 or /1e3 is applied here. The report scales are applied only
when tabulating (:data:`TABLE_SCALES`, used by :func:`pomagan_train.evaluate.results_table`):

=========  ==================================  =====================================
metric     raw value returned here             reported in tables (paper, Table 1)
=========  ==================================  =====================================
MSE        mean (pred - gt)^2                  x 1e3
MAE        mean abs(pred - gt)                 x 1e3
SAD        sum abs(pred - gt)                  / 1e3
Grad       sum (|grad pred| - |grad gt|)^2     as is (DIM-style papers divide by 1e3)
Conn       sum abs(phi(pred) - phi(gt))        as is (DIM-style papers divide by 1e3)
dtSSD      mean_t RMS of temporal-derivative   x 1e2 (as RVM)
           differences
=========  ==================================  =====================================

Why Grad and Conn are *not* divided by 1e3: the POMAGAN paper's Table 1 gives SAD/1e3 = 8.18
with MAE x1e3 = 7.80 (about 1.05 Mpx images, whole image), i.e. a raw SAD of ~8200, next to
Grad 6130 and Conn 9150. Raw Connectivity on [0, 1] mattes is of the order of the raw SAD and
raw Gradient error a fraction of it to a few times it, so 6130 / 9150 are raw values; divided by
1e3 they would need raw sums of 6-9 million on a 1 Mpx image, beyond what either metric can
reach for a matte that has an SAD of 8200. (DIM's Composition-1k tables, computed on the
unknown region, do divide SAD, Grad and Conn by 1e3.)

Evaluation region: the whole image by default (as the paper). ``mask=`` (booleans or weights) or
``trimap=`` (the trimap's unknown region: DIM's ``trimap == 128``, see :func:`unknown_region`)
restricts the sums and means to a region, as the DIM benchmark does.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pomagan_post.errors import BadInputError
from pomagan_post.metrics import gradient_error

__all__ = [
    "mse",
    "mae",
    "sad",
    "grad",
    "conn",
    "dtssd",
    "unknown_region",
    "METRICS",
    "TABLE_SCALES",
]

#: Report scale per metric: ``table value = raw value * scale`` (the paper's Table 1 units).
TABLE_SCALES: dict[str, float] = {
    "mse": 1e3,
    "mae": 1e3,
    "sad": 1e-3,
    "grad": 1.0,
    "conn": 1.0,
    "dtssd": 1e2,
}

_RANGE_TOLERANCE = 1e-4  # float rounding around 0 and 1 (e.g. bilinear resampling in fp16)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def _as_array(x: Any, name: str, frames: bool = False) -> np.ndarray:
    """Float64 ``[H, W]`` (``[T, H, W]`` when ``frames``) from numpy/torch, channel of size 1
    (first or last) dropped. Integer data and values outside [0, 1] are refused."""
    array = _to_numpy(x)
    ndim = 3 if frames else 2
    if array.ndim == ndim + 1 and array.shape[-1] == 1:
        array = array[..., 0]  # [..., H, W, 1] -> [..., H, W]
    elif array.ndim == ndim + 1 and array.shape[-3] == 1:
        array = array[..., 0, :, :]  # [..., 1, H, W] -> [..., H, W]
    if array.ndim != ndim:
        layout = "[T, H, W]" if frames else "[H, W]"
        raise BadInputError(f"{name}: expected a matte shaped {layout}, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    if not np.issubdtype(array.dtype, np.floating):
        raise BadInputError(
            f"{name}: expected float values in [0, 1], got dtype {array.dtype}; "
            "convert integer mattes first (e.g. uint8 / 255)"
        )
    array = array.astype(np.float64)
    if array.size:
        low, high = float(array.min()), float(array.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            raise BadInputError(f"{name}: contains NaN or infinite values")
        if low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
            raise BadInputError(
                f"{name}: values must lie in [0, 1], got [{low:g}, {high:g}] "
                "(0-255 mattes must be divided by 255)"
            )
    return array


def _pair(pred: Any, gt: Any, frames: bool = False) -> tuple[np.ndarray, np.ndarray]:
    p = _as_array(pred, "pred", frames)
    g = _as_array(gt, "gt", frames)
    if p.shape != g.shape:
        raise BadInputError(f"pred {p.shape} and gt {g.shape} differ in shape")
    return p, g


def unknown_region(trimap: Any) -> np.ndarray:
    """The trimap's unknown region as a boolean array of the trimap's shape.

    A pixel is unknown when it is neither definite background nor definite foreground:
    ``0 < trimap < 255`` for integer trimaps, ``0 < trimap < 1`` for float trimaps. For the
    benchmark trimaps (values 0 / 128 / 255, or those divided by 255) this is exactly DIM's
    ``trimap == 128``.
    """
    array = _to_numpy(trimap)
    top = 255 if np.issubdtype(array.dtype, np.integer) else 1.0
    return (array > 0) & (array < top)


def _weights(mask: Any, trimap: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """Per-pixel weights of the evaluation region (broadcast to ``shape``), or None for the
    whole image."""
    if mask is not None and trimap is not None:
        raise BadInputError("give either mask or trimap, not both")
    if mask is None and trimap is None:
        return None
    region = _to_numpy(mask if trimap is None else trimap)
    if region.ndim == len(shape) + 1 and region.shape[-1] == 1:
        region = region[..., 0]  # [..., H, W, 1] -> [..., H, W]
    elif region.ndim == len(shape) + 1 and region.shape[-3] == 1:
        region = region[..., 0, :, :]  # [..., 1, H, W] -> [..., H, W]
    weights = (region if trimap is None else unknown_region(region)).astype(np.float64)
    if trimap is None and weights.size and (weights.min() < 0 or weights.max() > 1):
        raise BadInputError(
            "mask weights must lie in [0, 1]; pass a 0/128/255 trimap as trimap=, not mask="
        )
    try:
        return np.broadcast_to(weights, shape)
    except ValueError:
        kind = "mask" if trimap is None else "trimap"
        raise BadInputError(f"{kind} {weights.shape} does not match the mattes {shape}") from None


def _weighted_mean(error: np.ndarray, weights: np.ndarray | None) -> float:
    if weights is None:
        return float(error.mean()) if error.size else float("nan")
    total = float(weights.sum())
    return float((error * weights).sum() / total) if total > 0 else float("nan")


def _weighted_sum(error: np.ndarray, weights: np.ndarray | None) -> float:
    return float(error.sum() if weights is None else (error * weights).sum())


def mse(pred: Any, gt: Any, mask: Any = None, trimap: Any = None) -> float:
    """Mean squared error ``sum(w * (pred - gt)^2) / sum(w)``; ``w`` = 1 on the whole image.

    Args:
        pred: predicted alpha in [0, 1], ``[H, W]`` (also ``[H, W, 1]``, ``[1, H, W]``, torch).
        gt: ground-truth alpha, same shape.
        mask: optional region, booleans or weights ``[H, W]``.
        trimap: optional trimap; the region is its unknown part (:func:`unknown_region`).
    Returns:
        The raw MSE on the [0, 1] scale (tables show it x 1e3); NaN for an empty region.
    """
    p, g = _pair(pred, gt)
    return _weighted_mean((p - g) ** 2, _weights(mask, trimap, g.shape))


def mae(pred: Any, gt: Any, mask: Any = None, trimap: Any = None) -> float:
    """Mean absolute error ``sum(w * |pred - gt|) / sum(w)``; ``w`` = 1 on the whole image.

    Arguments as :func:`mse`. Returns the raw MAE on the [0, 1] scale (tables show it x 1e3);
    NaN for an empty region.
    """
    p, g = _pair(pred, gt)
    return _weighted_mean(np.abs(p - g), _weights(mask, trimap, g.shape))


def sad(pred: Any, gt: Any, mask: Any = None, trimap: Any = None) -> float:
    """Sum of absolute differences ``sum(w * |pred - gt|)``; ``w`` = 1 on the whole image.

    Arguments as :func:`mse`. Returns the raw sum on the [0, 1] scale (tables show it / 1e3).
    """
    p, g = _pair(pred, gt)
    return _weighted_sum(np.abs(p - g), _weights(mask, trimap, g.shape))


def _minmax(alpha: np.ndarray) -> np.ndarray:
    """MATLAB ``mat2gray`` / ``cv2.normalize(NORM_MINMAX)``: stretch to [0, 1]; constant -> 0."""
    low, high = float(alpha.min()), float(alpha.max())
    if high - low <= np.finfo(np.float64).eps:
        return np.zeros_like(alpha)
    return (alpha - low) / (high - low)


def grad(
    pred: Any,
    gt: Any,
    mask: Any = None,
    trimap: Any = None,
    sigma: float = 1.4,
    normalize: bool = True,
) -> float:
    """Gradient error ``sum(w * (|grad P| - |grad G|)^2)`` (DIM ``compute_gradient_loss``).

    ``P`` and ``G`` are ``pred`` and ``gt`` min-max stretched to [0, 1] (MATLAB ``mat2gray``, as
    the DIM, mmediting and RVM evaluation code do; a no-op for mattes spanning 0..1, a constant
    matte becomes 0). ``|grad X| = sqrt((X * Hx)^2 + (X * Hy)^2)`` with the DIM ``gaussgradient``
    kernels: ``Hx[i, j] = g(i) g'(j)`` for ``i, j`` in ``-h..h``, ``g`` the Gaussian of std
    ``sigma`` = 1.4, ``g'`` its derivative, ``h = ceil(sigma sqrt(-2 ln(sqrt(2 pi) sigma 0.01)))``
    = 4 (a 9x9 kernel), scaled to unit L2 norm; ``Hy = Hx^T``; replicated borders.

    Args:
        pred, gt, mask, trimap: as :func:`mse`.
        sigma: Gaussian standard deviation in pixels.
        normalize: apply the min-max stretch (the reference does; switch off to compare the
            mattes' own gradients).
    Returns:
        The raw sum on the [0, 1] scale. Reported as is in tables (the paper's ~5000-6000 for
        ~1 Mpx images); DIM's Composition-1k tables divide it by 1e3.
    """
    p, g = _pair(pred, gt)
    weights = _weights(mask, trimap, g.shape)
    if normalize:
        p, g = _minmax(p), _minmax(g)
    return gradient_error(p, g, mask=weights, sigma=sigma)


def _largest_component(binary: np.ndarray) -> np.ndarray:
    """Boolean map of the largest 4-connected component of ``binary`` (empty -> all False)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=4
    )
    if count <= 1:  # label 0 is the background
        return np.zeros(binary.shape, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def conn(
    pred: Any, gt: Any, mask: Any = None, trimap: Any = None, step: float = 0.1
) -> float:
    """Connectivity error (DIM ``compute_connectivity_error``, Rhemann et al. 2009).

    For thresholds ``t_k = k * step`` (0, 0.1, ..., 1): ``Omega_k`` is the largest 4-connected
    component of ``(pred >= t_k) & (gt >= t_k)``. Each pixel's level ``l`` is ``t_{k-1}`` for the
    first ``k >= 1`` whose ``Omega_k`` does not contain it (1 when every ``Omega_k`` does).
    With ``d = alpha - l``, ``phi(alpha) = 1 - d * (d >= 0.15)``; the error is
    ``sum(w * |phi(pred) - phi(gt)|)``.

    Thresholds are ``k / 10`` correctly rounded (like MATLAB's ``0:0.1:1``, unlike
    ``np.arange(0, 1.1, 0.1)`` whose 0.6 is 0.6000000000000001 and so misses alpha 153/255).

    Args:
        pred, gt, mask, trimap: as :func:`mse` (the components are always found on the whole
            image; the region only weights the sum).
        step: threshold step.
    Returns:
        The raw sum on the [0, 1] scale. Reported as is in tables (the paper's ~3000-9000 for
        ~1 Mpx images); DIM's Composition-1k tables divide it by 1e3.
    """
    p, g = _pair(pred, gt)
    weights = _weights(mask, trimap, g.shape)
    steps = int(round(1.0 / step))
    thresholds = np.arange(steps + 1) / steps
    level = np.full(g.shape, -1.0)
    for k in range(1, steps + 1):
        omega = _largest_component((p >= thresholds[k]) & (g >= thresholds[k]))
        level[(level == -1.0) & ~omega] = thresholds[k - 1]
    level[level == -1.0] = 1.0
    d_pred, d_gt = p - level, g - level
    phi_pred = 1.0 - d_pred * (d_pred >= 0.15)
    phi_gt = 1.0 - d_gt * (d_gt >= 0.15)
    return _weighted_sum(np.abs(phi_pred - phi_gt), weights)


def dtssd(pred: Any, gt: Any, mask: Any = None, trimap: Any = None) -> float:
    """Temporal coherence error of a clip (dtSSD, Erofeev et al. 2015; RVM's per-pixel form).

    With ``D_t = (pred_t - pred_{t-1}) - (gt_t - gt_{t-1})`` for ``t = 1..T-1``::

        dtSSD = mean_t sqrt( sum_p w_p D_t(p)^2 / sum_p w_p )

    (``w`` = 1 on the whole frame). Erofeev et al. define the sum without ``/ sum w``; RVM's
    evaluation divides by the pixel count to make it resolution independent and reports it
    x 1e2, as our tables do. RVM's spreadsheet also averages in a 0 for the first frame; here
    the mean is over the ``T - 1`` frame differences only.

    Args:
        pred: predicted alphas ``[T, H, W]`` (also ``[T, H, W, 1]``, ``[T, 1, H, W]``), T >= 2.
        gt: ground-truth alphas, same shape.
        mask: optional region, ``[H, W]`` (all frames) or ``[T, H, W]`` (frame ``t``'s weights
            apply to the difference ending at ``t``).
        trimap: optional trimap(s), same shapes as ``mask``; the region is the unknown part.
    Returns:
        The raw value on the [0, 1] scale (tables show it x 1e2); NaN for an empty region.
    """
    p, g = _pair(pred, gt, frames=True)
    if g.shape[0] < 2:
        raise BadInputError(f"dtssd needs a clip of at least 2 frames, got {g.shape[0]}")
    weights = _weights(mask, trimap, g.shape)
    diff = np.diff(p, axis=0) - np.diff(g, axis=0)  # [T-1, H, W]
    per_frame = []
    for t in range(diff.shape[0]):
        w = None if weights is None else weights[t + 1]
        per_frame.append(np.sqrt(_weighted_mean(diff[t] ** 2, w)))
    return float(np.mean(per_frame))


#: Single-image metrics by name, in table order.
METRICS = {"mse": mse, "mae": mae, "sad": sad, "grad": grad, "conn": conn}
