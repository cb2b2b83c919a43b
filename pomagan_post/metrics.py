"""Matting quality metrics in the conventions of the Deep Image Matting benchmark (Xu et al. 2017).

Inputs are float alpha mattes in [0, 1] (not 0-255). Sums are over the evaluation mask (the trimap's
unknown region in the benchmark, the whole frame when no mask is given); papers usually divide the
Gradient error by 1e3 when tabulating it.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from .errors import BadInputError

__all__ = ["gradient_error"]


def gradient_error(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, sigma: float = 1.4
) -> float:
    """Gradient error: sum of squared differences of Gaussian-derivative gradient magnitudes.

    Follows the DIM evaluation code (``compute_gradient_loss`` / ``gaussgradient``): both mattes are
    filtered with first-derivative-of-Gaussian kernels (``sigma`` = 1.4, kernel normalised to unit
    L2 norm, replicated borders), and ``sum(mask * (|grad pred| - |grad gt|)^2)`` is returned.

    Args:
        pred: predicted alpha ``[H, W]`` in [0, 1].
        gt: ground-truth alpha ``[H, W]`` in [0, 1].
        mask: optional ``[H, W]`` weights or booleans (e.g. the trimap's unknown region).
        sigma: Gaussian standard deviation in pixels.

    Returns:
        The unscaled Gradient error (divide by 1e3 for the usual table units).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise BadInputError(
            f"expected two [H, W] mattes of one size, got {pred.shape} and {gt.shape}"
        )
    if mask is not None and np.shape(mask) != gt.shape:
        raise BadInputError(f"mask {np.shape(mask)} does not match the mattes {gt.shape}")
    error = (_gradient_magnitude(pred, sigma) - _gradient_magnitude(gt, sigma)) ** 2
    if mask is not None:
        error = error * np.asarray(mask, dtype=np.float64)
    return float(error.sum())


def _gradient_magnitude(alpha: np.ndarray, sigma: float) -> np.ndarray:
    kernel_x = _gaussian_derivative_kernel(sigma)
    # cv2 correlates; the kernel is odd in x and even in y, so convolution only flips the sign,
    # which the magnitude ignores.
    gx = cv2.filter2D(alpha, cv2.CV_64F, kernel_x, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(alpha, cv2.CV_64F, kernel_x.T, borderType=cv2.BORDER_REPLICATE)
    return np.hypot(gx, gy)


@functools.lru_cache(maxsize=8)
def _gaussian_derivative_kernel(sigma: float) -> np.ndarray:
    """DIM's ``gaussgradient`` x-kernel: ``g(y) * g'(x)`` with ``g`` cut where it drops below 1%."""
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * 1e-2))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))
    dgauss = -u * gauss / sigma**2
    kernel = np.outer(gauss, dgauss)  # rows: y, columns: x
    kernel /= np.sqrt((kernel**2).sum())
    kernel.setflags(write=False)  # shared by the cache
    return kernel
