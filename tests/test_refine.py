"""Edge refinement: guided alpha upsampling and foreground estimation on synthetic hair composites.

Every scene is composited in the test from a known foreground F, alpha and background B, so the
true premultiplied foreground ``a x F`` and the true full-resolution alpha are known exactly.
Measured numbers in the comments are from the CPU (torch 2.14, seed 0 scenes).
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pomagan_post import premultiplied_foreground  # (public, as estimate_foreground)
from pomagan_post.errors import BadInputError
from pomagan_post.metrics import gradient_error
from pomagan_post.refine import bilinear_upsample, estimate_foreground, guided_upsample

SIZE = 256


def _smooth_noise(rng: np.random.Generator, cells: int, tint: tuple[float, ...]) -> np.ndarray:
    """[SIZE, SIZE, 3] smooth colour texture."""
    noise = rng.random((cells, cells, 3)).astype(np.float32)
    return cv2.resize(noise, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) * np.float32(tint)


def _hair_alpha(rng: np.random.Generator) -> np.ndarray:
    """[SIZE, SIZE] alpha: a head-like disc with ~60 wavy strands, 0.25-0.75 px wide, AA'd at 4x."""
    big = SIZE * 4
    alpha = np.zeros((big, big), np.float32)
    centre = np.array([big * 0.5, big * 0.62])
    cv2.circle(alpha, tuple(int(c) for c in centre), int(big * 0.28), 1.0, -1, lineType=cv2.LINE_AA)
    for _ in range(60):
        angle = rng.uniform(-np.pi, 0.0)
        direction = np.array([np.cos(angle), np.sin(angle)])
        point = centre + big * 0.27 * direction
        step = rng.uniform(0.1, 0.3) * big / 24
        points = []
        for _ in range(24):
            points.append(point)
            turn = rng.normal(0.0, 0.12)
            direction = np.array(
                [
                    direction[0] * np.cos(turn) - direction[1] * np.sin(turn),
                    direction[0] * np.sin(turn) + direction[1] * np.cos(turn),
                ]
            )
            point = point + step * direction
        strand = np.zeros_like(alpha)
        polyline = np.round(np.array(points) * 16).astype(np.int32)  # 4 fractional bits
        cv2.polylines(
            strand, [polyline], False, float(rng.uniform(0.5, 1.0)),
            thickness=int(rng.integers(1, 4)), lineType=cv2.LINE_AA, shift=4,
        )  # fmt: skip
        np.maximum(alpha, strand, out=alpha)
    return cv2.resize(alpha, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def _composite(seed: int = 0, fg_gain: float = 1.0):
    """(image, alpha, foreground) numpy float32; brown-ish F over a busy blue-green B."""
    rng = np.random.default_rng(seed)
    alpha = _hair_alpha(rng)
    fg = (0.15 + 0.5 * _smooth_noise(rng, 6, (1.0, 0.7, 0.45))) * np.float32(fg_gain)
    bg = 0.2 + 0.7 * _smooth_noise(rng, 12, (0.4, 0.8, 1.0))
    image = alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg
    return image.astype(np.float32), alpha, fg.astype(np.float32)


@pytest.fixture(scope="module")
def scene():
    return _composite()


def _premultiplied_mse(alpha: np.ndarray, fg: np.ndarray, estimate: np.ndarray) -> float:
    return float(((alpha[..., None] * (estimate - fg)) ** 2).mean())


def _downsample(alpha: np.ndarray, factor: float) -> np.ndarray:
    """Antialiased bilinear shrink, as the engine shrinks frames to the working resolution."""
    size = round(alpha.shape[0] / factor), round(alpha.shape[1] / factor)
    alpha_t = torch.from_numpy(alpha)[None, None]
    return F.interpolate(alpha_t, size=size, mode="bilinear", antialias=True)[0, 0].numpy()


# -- foreground estimation -------------------------------------------------------------------


@pytest.mark.parametrize("fg_gain", [1.0, 6.0], ids=["sdr", "hdr"])
def test_estimated_foreground_removes_background_spill(fg_gain):
    # Measured error ratio MSE(a F_est) / MSE(a I) against the true a F: 0.056 (SDR), 0.027 (HDR,
    # foreground up to 3.9 in linear light); 0.071 / 0.034 before F was pinned to the compositing
    # equation where a > 0.5. pymatting's estimate_foreground_ml gets 0.068 on SDR.
    image, alpha, fg = _composite(fg_gain=fg_gain)
    estimate = estimate_foreground(image, alpha)
    ratio = _premultiplied_mse(alpha, fg, estimate) / _premultiplied_mse(alpha, fg, image)
    assert ratio < 0.15
    assert np.isfinite(estimate).all()
    if fg_gain > 1.0:  # HDR colour survives: not clamped to 1
        assert estimate[alpha > 0.5].max() > 2.0


@pytest.mark.parametrize("fg_gain", [1.0, 6.0], ids=["sdr", "hdr"])
def test_opaque_pixels_keep_the_plate_colour(fg_gain):
    # Where the matte is 1 the foreground is the image, bit for bit (the smoothness term alone
    # left up to 0.0099 / 0.021 there on this scene, and 0.17 on the astronaut example).
    image, alpha, _ = _composite(fg_gain=fg_gain)
    opaque = alpha >= 1.0
    assert opaque.sum() > 10_000
    estimate = estimate_foreground(image, alpha)
    np.testing.assert_array_equal(estimate[opaque], image[opaque])


def test_estimate_agrees_with_pymatting(scene):
    pymatting = pytest.importorskip("pymatting")
    image, alpha, _ = scene
    ours = estimate_foreground(image, alpha)
    reference = pymatting.estimate_foreground_ml(image, alpha)
    # Measured on the hair scene where alpha > 0.01: mean |diff| 6.7e-4, 99th percentile 9.3e-3,
    # max 0.083 (4.9e-4, 6.8e-3, 0.027 before our F was pinned to the compositing equation where
    # a > 0.5; the sweep order, red-black against sequential, is the only other difference).
    diff = np.abs(ours - reference)[alpha > 0.01]
    assert diff.mean() < 3e-3
    assert np.quantile(diff, 0.99) < 0.03


def test_premultiplied_foreground_methods(scene):
    image, alpha, _ = scene
    multiplied = premultiplied_foreground(image, alpha, method="multiply")
    np.testing.assert_allclose(multiplied, alpha[..., None] * image, atol=1e-6)
    estimated = premultiplied_foreground(image, alpha)
    expected = alpha[..., None] * estimate_foreground(image, alpha)
    np.testing.assert_allclose(estimated, expected, atol=1e-6)


# -- alpha upsampling ------------------------------------------------------------------------


@pytest.mark.parametrize("grain", [0.0, 0.01], ids=["clean", "grain"])
def test_guided_upsample_recovers_hair_better_than_bilinear(scene, grain):
    # 4x down, then up. Measured Gradient error (/1e3) against the true alpha:
    #   clean: guided 1.11, bilinear 3.78 (ratio 0.29); with grain sigma 0.01: guided 1.13.
    # MSE drops too (clean: 2.7e-3 vs 9.2e-3; grain: 2.9e-3).
    image, alpha, _ = scene
    image = image + np.random.default_rng(1).normal(0.0, grain, image.shape).astype(np.float32)
    low = _downsample(alpha, 4)
    guided, bilinear = guided_upsample(low, image), bilinear_upsample(low, image)
    assert guided.shape == bilinear.shape == alpha.shape
    assert gradient_error(guided, alpha) < 0.5 * gradient_error(bilinear, alpha)
    assert ((guided - alpha) ** 2).mean() < 0.5 * ((bilinear - alpha) ** 2).mean()


def test_guided_upsample_same_size_keeps_alpha(scene):
    image, alpha, _ = scene
    # Measured mean |diff| 1.5e-3; up to 0.29 on single strands (3x3 window regression).
    out = guided_upsample(alpha, image)
    assert np.abs(out - alpha).mean() < 5e-3


def test_gradient_error_metric(scene):
    _, alpha, _ = scene
    assert gradient_error(alpha, alpha) == 0.0
    blurred = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    assert gradient_error(blurred, alpha) > 0.0
    mask = np.zeros_like(alpha)
    assert gradient_error(blurred, alpha, mask=mask) == 0.0
    with pytest.raises(BadInputError):
        gradient_error(alpha, alpha[:-1])


# -- degenerate inputs, kinds, shapes --------------------------------------------------------


def _degenerate_cases():
    rng = np.random.default_rng(3)
    textured = rng.random((48, 64, 3)).astype(np.float32)
    flat = np.full((48, 64, 3), 0.5, np.float32)
    soft = rng.random((48, 64)).astype(np.float32)
    return {
        "alpha0": (textured, np.zeros((48, 64), np.float32)),
        "alpha1": (textured, np.ones((48, 64), np.float32)),
        "flat_image": (flat, soft),
        "flat_all": (flat, np.full((48, 64), 0.5, np.float32)),
        "hdr": (textured * 50.0, soft),
        "black": (np.zeros_like(flat), soft),
    }


@pytest.mark.parametrize("case", list(_degenerate_cases()))
def test_degenerate_inputs_stay_finite(case):
    image, alpha = _degenerate_cases()[case]
    upsampled = guided_upsample(alpha[::4, ::4], image)
    assert np.isfinite(upsampled).all() and upsampled.min() >= 0.0 and upsampled.max() <= 1.0
    fg = estimate_foreground(image, alpha)
    assert np.isfinite(fg).all()
    assert fg.min() >= 0.0 and fg.max() <= max(1.0, float(image.max())) + 1e-6
    if case == "alpha1":  # nothing to solve: F is the image
        np.testing.assert_allclose(fg, image, atol=1e-3)


def test_non_finite_pixels_do_not_spread():
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    image[5, 7] = np.nan
    image[20, 3] = np.inf
    alpha = np.full((32, 32), 0.5, np.float32)
    assert np.isfinite(estimate_foreground(image, alpha)).all()
    assert np.isfinite(guided_upsample(alpha[::2, ::2], image)).all()


def test_numpy_in_numpy_out(scene):
    image, alpha, _ = scene
    low = alpha[::4, ::4]
    for out, shape in [
        (guided_upsample(low, image), alpha.shape),
        (bilinear_upsample(low, image), alpha.shape),
        (estimate_foreground(image.astype(np.float16), alpha.astype(np.float64)), image.shape),
        (estimate_foreground(image[:, ::-1, ::-1], alpha[:, ::-1]), image.shape),  # strided views
        (premultiplied_foreground(image, alpha), image.shape),
    ]:
        assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == shape


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_torch_batch_matches_single_frames(dtype):
    frames = [_composite(seed) for seed in (0, 1)]
    image = torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i, _, _ in frames]).to(dtype)
    alpha = torch.stack([torch.from_numpy(a)[None] for _, a, _ in frames]).to(dtype)
    low = F.interpolate(alpha.float(), scale_factor=0.25, mode="area").to(dtype)

    fg, up = estimate_foreground(image, alpha), guided_upsample(low, image)
    assert fg.shape == (2, 3, SIZE, SIZE) and fg.dtype == torch.float32
    assert up.shape == (2, 1, SIZE, SIZE) and up.dtype == torch.float32
    for n in range(2):
        one = slice(n, n + 1)
        np.testing.assert_allclose(fg[one], estimate_foreground(image[one], alpha[one]), atol=1e-5)
        np.testing.assert_allclose(up[one], guided_upsample(low[one], image[one]), atol=1e-5)


def test_numpy_frames_in_engine_layout_match_single_frames():
    """``[N, H, W, 3]`` images with ``[N, h, w]`` alphas (as Engine.process gives them) come
    back in that layout, each frame as it would alone."""
    frames = [_composite(seed) for seed in (0, 1)]
    image = np.stack([i for i, _, _ in frames])
    alpha = np.stack([a for _, a, _ in frames])
    low = np.ascontiguousarray(alpha[:, ::4, ::4])
    fg, up = estimate_foreground(image, alpha), guided_upsample(low, image)
    pre = premultiplied_foreground(image, alpha, "multiply")
    assert fg.shape == image.shape and up.shape == alpha.shape and pre.shape == image.shape
    assert all(isinstance(x, np.ndarray) and x.dtype == np.float32 for x in (fg, up, pre))
    for n in range(2):
        np.testing.assert_allclose(fg[n], estimate_foreground(image[n], alpha[n]), atol=1e-5)
        np.testing.assert_allclose(up[n], guided_upsample(low[n], image[n]), atol=1e-5)
        np.testing.assert_allclose(pre[n], image[n] * alpha[n][..., None], atol=1e-6)


_IMAGE_NP, _ALPHA_NP = np.zeros((16, 16, 3), np.float32), np.zeros((16, 16), np.float32)
_IMAGE_T, _ALPHA_T = torch.zeros(2, 3, 16, 16), torch.zeros(2, 1, 16, 16)


@pytest.mark.parametrize(
    "image, alpha",
    [
        (np.zeros((16, 16, 4), np.float32), _ALPHA_NP),  # RGBA
        (_IMAGE_NP, np.zeros((16, 16, 1), np.float32)),  # alpha with a channel axis
        (_IMAGE_NP[..., 0], _ALPHA_NP),  # grey image
        (_IMAGE_T, _ALPHA_T[:1]),  # batch mismatch
        (_IMAGE_T[0], _ALPHA_T[0]),  # unbatched tensors
        (_IMAGE_T, torch.zeros(2, 3, 16, 16)),  # 3-channel alpha
        (_IMAGE_T, _ALPHA_NP),  # mixed kinds
        ((_IMAGE_NP * 255).astype(np.uint8), _ALPHA_NP),  # integer pixels
        (np.zeros((0, 16, 3), np.float32), np.zeros((0, 16), np.float32)),  # empty
        (np.zeros((2, 16, 16, 3), np.float32), np.zeros((3, 16, 16), np.float32)),  # numpy batch mismatch
        (np.zeros((2, 16, 16, 3), np.float32), _ALPHA_NP),  # numpy frames with one alpha
    ],
    ids=["rgba", "alpha_hw1", "grey", "batch", "unbatched", "alpha_c3", "mixed", "uint8", "empty",
         "np_batch", "np_one_alpha"],
)
def test_bad_shapes_raise(image, alpha):
    with pytest.raises(BadInputError):
        guided_upsample(alpha, image)
    with pytest.raises(BadInputError):
        estimate_foreground(image, alpha)


def test_bad_options_raise():
    with pytest.raises(BadInputError):  # foreground needs alpha at the image's size
        estimate_foreground(_IMAGE_NP, _ALPHA_NP[:8])
    with pytest.raises(BadInputError):
        estimate_foreground(_IMAGE_NP, _ALPHA_NP, regularization=0.0)
    with pytest.raises(BadInputError):
        guided_upsample(_ALPHA_NP, _IMAGE_NP, radius=0)
    with pytest.raises(BadInputError):
        premultiplied_foreground(_IMAGE_NP, _ALPHA_NP, method="divide")


# -- GPU ---------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_cuda_fp16_matches_fp32(scene):
    device = torch.device(os.environ.get("POMAGAN_TEST_DEVICE", "cuda"))
    image_np, alpha_np, _ = scene
    image = torch.from_numpy(image_np).permute(2, 0, 1)[None].to(device)
    alpha = torch.from_numpy(alpha_np)[None, None].to(device)
    low = F.interpolate(alpha, scale_factor=0.25, mode="area")

    fg32, fg16 = estimate_foreground(image, alpha), estimate_foreground(image.half(), alpha.half())
    up32, up16 = guided_upsample(low, image), guided_upsample(low.half(), image.half())
    assert fg16.dtype == up16.dtype == torch.float32 and fg16.device.type == device.type
    # Only the fp16 rounding of the inputs differs; the solve is float32. Measured with fp16-rounded
    # inputs on the CPU: mean |diff| 3.8e-5 (foreground), 3.5e-5 (alpha).
    assert (fg16 - fg32).abs().mean() < 5e-4 and (up16 - up32).abs().mean() < 5e-4
    # CUDA agrees with the CPU result (float32 summation order only).
    fg_cpu = estimate_foreground(image_np, alpha_np)
    np.testing.assert_allclose(fg32[0].permute(1, 2, 0).cpu().numpy(), fg_cpu, atol=1e-3)


def test_a_far_away_pixel_does_not_change_the_foreground_of_an_edge():
    """On a scene-linear plate, a 2x2 patch at -0.05 (or a 20.0 highlight) in a far corner
    leaves every pixel 48 or more pixels away within 2e-4 of what it was, and a plate in [0, 1]
    there keeps a foreground in [0, 1]: the estimate's bounds are local (over the whole frame,
    one negative patch let edge pixels everywhere go to -0.05)."""
    rng = np.random.default_rng(3)
    image = (rng.random((96, 128, 3)) * 0.6 + 0.02).astype(np.float32)
    alpha = np.clip(np.linspace(-0.5, 1.5, 128, dtype=np.float32)[None, :].repeat(96, 0), 0, 1)
    alpha = alpha * (rng.random((96, 128)) * 0.2 + 0.8).astype(np.float32)
    base = estimate_foreground(image, alpha)
    rows, cols = np.mgrid[0:96, 0:128]
    far = np.maximum(abs(rows - 3), abs(cols - 124)) >= 48
    for value in (-0.05, 20.0):
        other = image.copy()
        other[2:4, 124:126] = value
        fg = estimate_foreground(other, alpha)
        assert np.abs(fg - base)[far].max() < 2e-4, value  # (measured 2.6e-6, 8.4e-5; was 0.05)
        assert fg[far].min() >= 0.0 and fg[far].max() <= 1.0, value
