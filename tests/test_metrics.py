"""Matting metrics against values worked out by hand on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pomagan_post.errors import BadInputError
from pomagan_train import metrics
from pomagan_train.metrics import conn, dtssd, grad, mae, mse, sad, unknown_region

# 4x4: background on the left half, foreground on the right half.
GT = np.array([[0, 0, 1, 1]] * 4, dtype=np.float64)
# Two errors: 0.5 at (0, 1) and 0.25 at (3, 3).
PRED = GT.copy()
PRED[0, 1] = 0.5
PRED[3, 3] = 0.75


def test_mse_mae_sad_whole_image() -> None:
    assert sad(PRED, GT) == pytest.approx(0.5 + 0.25)  # sum |d|
    assert mae(PRED, GT) == pytest.approx(0.75 / 16)  # mean |d|
    assert mse(PRED, GT) == pytest.approx((0.5**2 + 0.25**2) / 16)  # mean d^2


@pytest.mark.parametrize("fn", [mse, mae, sad, grad, conn])
def test_identical_mattes_score_zero(fn) -> None:
    rng = np.random.default_rng(0)
    alpha = rng.random((12, 10))
    assert fn(alpha, alpha) == 0.0


def test_mask_and_trimap_restrict_the_region() -> None:
    # Unknown region: columns 1 and 2 (holds the 0.5 error, not the 0.25 one).
    trimap = np.array([[0, 128, 128, 255]] * 4, dtype=np.uint8)
    region = trimap == 128
    assert sad(PRED, GT, trimap=trimap) == pytest.approx(0.5)
    assert mae(PRED, GT, trimap=trimap) == pytest.approx(0.5 / 8)
    assert mse(PRED, GT, trimap=trimap) == pytest.approx(0.25 / 8)
    # The same region as booleans, as a float trimap (128 / 255), with a channel axis.
    for kwargs in (
        {"mask": region},
        {"trimap": trimap.astype(np.float32) / 255},
        {"trimap": trimap[..., None]},
        {"mask": torch.from_numpy(region)[None]},
    ):
        assert mse(PRED, GT, **kwargs) == pytest.approx(0.25 / 8)
    # Weights: half weight on the (0, 1) error pixel, 1 elsewhere.
    weights = np.ones_like(GT)
    weights[0, 1] = 0.5
    assert mse(PRED, GT, mask=weights) == pytest.approx((0.5 * 0.25 + 0.0625) / 15.5)
    # An empty region has no mean.
    assert math.isnan(mse(PRED, GT, mask=np.zeros_like(GT, dtype=bool)))
    assert sad(PRED, GT, mask=np.zeros_like(GT, dtype=bool)) == 0.0


def test_unknown_region_is_dim_trimap_128() -> None:
    trimap = np.array([0, 128, 255, 64], dtype=np.uint8)
    assert unknown_region(trimap).tolist() == [False, True, False, True]
    assert unknown_region(trimap.astype(np.float64) / 255).tolist() == [False, True, False, True]


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a[..., None],  # [H, W, 1]
        lambda a: a[None],  # [1, H, W]
        lambda a: a.astype(np.float32),
        lambda a: torch.from_numpy(a),
        lambda a: torch.from_numpy(a).float()[None],  # a dataset's [1, H, W] tensor
    ],
)
def test_input_types(convert) -> None:
    for fn in (mse, mae, sad, grad, conn):
        assert fn(convert(PRED), convert(GT)) == pytest.approx(fn(PRED, GT), rel=1e-6)


def test_bool_mattes_are_accepted() -> None:
    assert sad(GT > 0.5, GT) == 0.0


@pytest.mark.parametrize(
    "pred, gt, kwargs",
    [
        ((GT * 255).astype(np.uint8), GT, {}),  # integer data
        (GT * 255, GT, {}),  # 0-255 floats
        (np.full_like(GT, np.nan), GT, {}),
        (GT[:3], GT, {}),  # shape mismatch
        (GT[None, None], GT[None, None], {}),  # 4-D
        (PRED, GT, {"mask": GT > 0, "trimap": GT}),  # both regions
        (PRED, GT, {"mask": np.ones((3, 3))}),  # region of another size
        (PRED, GT, {"mask": np.array([[0, 128, 128, 255]] * 4)}),  # a trimap given as mask
    ],
)
def test_bad_inputs_are_refused(pred, gt, kwargs) -> None:
    with pytest.raises(BadInputError):
        mse(pred, gt, **kwargs)


# --- Gradient -------------------------------------------------------------------------------


def _dim_kernel(sigma: float = 1.4) -> np.ndarray:
    """DIM gaussgradient's x kernel, written out as in the MATLAB code (element by element)."""
    eps = 1e-2
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * eps)))
    size = 2 * half + 1
    gauss = lambda x: math.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dgauss = lambda x: -x * gauss(x) / sigma**2
    hx = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            hx[i, j] = gauss(i - half) * dgauss(j - half)
    return hx / math.sqrt((hx**2).sum())


def _naive_gradient_magnitude(img: np.ndarray, hx: np.ndarray) -> np.ndarray:
    """Replicate-padded correlation with hx and hx^T, pixel by pixel."""
    half = hx.shape[0] // 2
    padded = np.pad(img, half, mode="edge")
    gx = np.zeros_like(img)
    gy = np.zeros_like(img)
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            window = padded[r : r + hx.shape[0], c : c + hx.shape[1]]
            gx[r, c] = (window * hx).sum()
            gy[r, c] = (window * hx.T).sum()
    return np.sqrt(gx**2 + gy**2)


def test_dim_kernel_is_9x9_unit_norm() -> None:
    # h = ceil(1.4 sqrt(-2 ln(sqrt(2 pi) 1.4 0.01))) = ceil(1.4 * 2.588) = ceil(3.62) = 4.
    hx = _dim_kernel()
    assert hx.shape == (9, 9)
    assert (hx**2).sum() == pytest.approx(1.0)


def test_grad_on_a_step_edge_by_hand() -> None:
    # gt: a vertical step (columns >= 5 are 1) in a 6x12 image; pred: all zeros (no gradient).
    # The step is constant along y, so with replicated borders the y-derivative is 0 and
    #   gx(c) = sum_{u,v} g(u) g'(v) step(c + v) / n = (sum_u g(u)) * sum_{v: c+v >= 5} g'(v) / n
    # (u, v in -4..4, n the kernel's L2 norm). The error is rows * sum_c gx(c)^2.
    sigma, half = 1.4, 4
    u = np.arange(-half, half + 1)
    g = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dg = -u * g / sigma**2
    norm = np.sqrt((np.outer(g, dg) ** 2).sum())
    cols = 12
    gx = np.array([g.sum() * dg[c + u >= 5].sum() / norm for c in range(cols)])
    expected = 6 * (gx**2).sum()

    gt = np.zeros((6, cols))
    gt[:, 5:] = 1.0
    assert grad(np.zeros_like(gt), gt) == pytest.approx(expected, rel=1e-9)
    assert grad(gt, np.zeros_like(gt)) == pytest.approx(expected, rel=1e-9)  # symmetric
    # Same number from the element-by-element MATLAB-style kernel and a naive filter.
    naive = (_naive_gradient_magnitude(gt, _dim_kernel()) ** 2).sum()
    assert expected == pytest.approx(naive, rel=1e-9)


def test_grad_matches_a_naive_filter_on_random_mattes() -> None:
    rng = np.random.default_rng(1)
    pred, gt = rng.random((10, 13)), rng.random((10, 13))
    pred[0, 0], pred[-1, -1] = 0.0, 1.0  # both span [0, 1]: the min-max stretch is a no-op
    gt[0, 0], gt[-1, -1] = 0.0, 1.0
    hx = _dim_kernel()
    error_map = (_naive_gradient_magnitude(pred, hx) - _naive_gradient_magnitude(gt, hx)) ** 2
    assert grad(pred, gt) == pytest.approx(error_map.sum(), rel=1e-9)
    assert grad(pred, gt) == pytest.approx(grad(gt, pred), rel=1e-12)
    region = np.zeros((10, 13), dtype=bool)
    region[3:7, 2:9] = True
    assert grad(pred, gt, mask=region) == pytest.approx(error_map[region].sum(), rel=1e-9)
    trimap = np.where(region, 128, 255).astype(np.uint8)
    assert grad(pred, gt, trimap=trimap) == pytest.approx(error_map[region].sum(), rel=1e-9)


def test_grad_min_max_stretch_like_mat2gray() -> None:
    gt = np.zeros((8, 8))
    gt[:, 4:] = 1.0
    # A half-strength step is stretched to the full step first (DIM's mat2gray), so no error...
    assert grad(0.5 * gt, gt) == pytest.approx(0.0, abs=1e-12)
    # ...unless the stretch is switched off.
    assert grad(0.5 * gt, gt, normalize=False) > 0.0


# --- Connectivity ---------------------------------------------------------------------------


def test_conn_fractional_pixel_cut_off_from_the_largest_component() -> None:
    # A 2x2 foreground block and, diagonal to it, one fractional pixel (gt 0.6, pred 0.7).
    # Diagonal neighbours are not 4-connected, so for every threshold 0.1..0.6 the pixel is its
    # own 1-pixel component, not the largest (the 4-pixel block): it is lost at t_1, level
    # l = t_0 = 0. phi = 1 - d (d = alpha - l >= 0.15): gt 1 - 0.6 = 0.4, pred 1 - 0.7 = 0.3.
    # The block (1 in both, in every component up to t = 1) and the zeros give phi equal.
    # Connectivity = |0.4 - 0.3| = 0.1.
    gt = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0.6]])
    pred = gt.copy()
    pred[2, 2] = 0.7
    assert conn(pred, gt) == pytest.approx(0.1)


def test_conn_fractional_pixel_joined_to_the_largest_component() -> None:
    # The same pixel values 4-adjacent to the block: it belongs to the largest component for
    # t <= 0.6 and leaves it at t = 0.7 (gt 0.6 < 0.7), so l = 0.6. gt d = 0 -> phi 1;
    # pred d = 0.1 < 0.15 -> phi 1 (the 0.15 rule). Connectivity = 0.
    # (With np.arange(0, 1.1, 0.1) thresholds, 0.6 would be 0.6000000000000001, gt 0.6 would
    # fail it, l would be 0.5 and the error 0.2: thresholds must be k / 10.)
    gt = np.array([[1, 1, 0], [1, 1, 0.6], [0, 0, 0]])
    pred = gt.copy()
    pred[1, 2] = 0.7
    assert conn(pred, gt) == pytest.approx(0.0, abs=1e-12)
    assert conn(pred, gt * 1.0) == conn(pred, np.round(gt * 255) / 255)  # 153/255 == 0.6


def test_conn_level_and_the_015_rule() -> None:
    # A hole in the prediction inside the block: gt 1, pred 0.45 at (1, 1). It stays in the
    # largest component up to t = 0.4 and leaves at t = 0.5, so l = 0.4.
    # gt d = 0.6 -> phi 0.4; pred d = 0.05 < 0.15 -> phi 1. Connectivity = 0.6
    # (not the plain |phi| difference 0.55 one would get without the 0.15 rule).
    gt = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=np.float64)
    pred = gt.copy()
    pred[1, 1] = 0.45
    assert conn(pred, gt) == pytest.approx(0.6)
    assert conn(gt, pred) == pytest.approx(0.6)
    # Weighted by a region: only (1, 1) counts.
    region = np.zeros((3, 3), dtype=bool)
    region[1, 1] = True
    assert conn(pred, gt, mask=region) == pytest.approx(0.6)
    assert conn(pred, gt, mask=~region) == pytest.approx(0.0)


# --- dtSSD ----------------------------------------------------------------------------------


def test_dtssd_three_frame_clip_by_hand() -> None:
    # 2x2 frames, ground truth static (all 0), prediction flickers:
    #   frame 1 - frame 0 = [[0.2, 0], [0, 0]]   -> sqrt(0.04 / 4) = 0.1
    #   frame 2 - frame 1 = [[0, 0], [0, 0.4]]   -> sqrt(0.16 / 4) = 0.2
    # dtSSD = mean(0.1, 0.2) = 0.15.
    gt = np.zeros((3, 2, 2))
    pred = np.zeros((3, 2, 2))
    pred[1] = [[0.2, 0.0], [0.0, 0.0]]
    pred[2] = [[0.2, 0.0], [0.0, 0.4]]
    assert dtssd(pred, gt) == pytest.approx(0.15)
    # Only pixel (0, 0): sqrt(0.04 / 1) = 0.2 and 0 -> 0.1.
    region = np.array([[True, False], [False, False]])
    assert dtssd(pred, gt, mask=region) == pytest.approx(0.1)
    # Per-frame mask [T, H, W]: frame t's weights apply to the difference ending at t.
    per_frame = np.stack([region, region, ~region])
    assert dtssd(pred, gt, mask=per_frame) == pytest.approx((0.2 + math.sqrt(0.16 / 3)) / 2)
    # Layouts: [T, H, W, 1] numpy and [T, 1, H, W] torch.
    assert dtssd(pred[..., None], gt[..., None]) == pytest.approx(0.15)
    clip_pred, clip_gt = torch.from_numpy(pred)[:, None], torch.from_numpy(gt)[:, None]
    assert dtssd(clip_pred, clip_gt) == pytest.approx(0.15)


def test_dtssd_ignores_static_errors() -> None:
    rng = np.random.default_rng(2)
    gt = rng.random((4, 5, 6)) * 0.5
    assert dtssd(gt + 0.3, gt) == pytest.approx(0.0, abs=1e-12)  # same error every frame
    assert dtssd(gt, gt) == 0.0


def test_dtssd_needs_two_frames() -> None:
    with pytest.raises(BadInputError):
        dtssd(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(BadInputError):
        dtssd(np.zeros((4, 4)), np.zeros((4, 4)))


def test_table_scales_are_the_papers() -> None:
    assert metrics.TABLE_SCALES == {
        "mse": 1e3, "mae": 1e3, "sad": 1e-3, "grad": 1.0, "conn": 1.0, "dtssd": 1e2
    }
    assert list(metrics.METRICS) == ["mse", "mae", "sad", "grad", "conn"]
