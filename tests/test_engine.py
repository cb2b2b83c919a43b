"""The inference engine: full-resolution outputs for any size, batching, devices, precision."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import pomagan_post
from pomagan_post import BadInputError, DeviceError, Engine

from .conftest import TEST_DEVICE


@pytest.fixture(scope="module")
def model() -> pomagan_post.Pomagan:
    torch.manual_seed(0)
    return pomagan_post.create_model("fast").eval()


def _frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth content plus noise: closer to an image than white noise.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.4 * np.sin(xx[None, ..., None] / 37.0 + yy[None, ..., None] / 23.0 + np.arange(3))
    return np.clip(base + 0.1 * rng.standard_normal((n, h, w, 3)), 0, 1).astype(np.float32)


def test_flip_tta_averages_the_mirror_images_pass(model: pomagan_post.Pomagan) -> None:
    """tta="flip" is the mean of the network on the frame and, mirrored back, on its mirror
    image; so a mirrored shot gets the mirrored matte. tta="none" (the default) is one pass."""
    images = torch.from_numpy(_frames(2, 64, 96)).permute(0, 3, 1, 2).contiguous()  # no resize, no padding
    flip = Engine(model, device="cpu", working_size=64, tta="flip")
    one = Engine(model, device="cpu", working_size=64)
    assert one.tta == "none" and flip.tta == "flip" and "tta='flip'" in repr(flip)
    with torch.inference_mode():
        alpha_a, seg_a = model(images)
        alpha_b, seg_b = model(images.flip(-1))
    alpha, seg = flip.infer(images)
    torch.testing.assert_close(alpha, 0.5 * (alpha_a + alpha_b.flip(-1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(seg, 0.5 * (seg_a + seg_b.flip(-1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(one.infer(images)[0], alpha_a, atol=1e-5, rtol=0)
    mirrored, _ = flip.infer(images.flip(-1))
    torch.testing.assert_close(mirrored, alpha.flip(-1), atol=1e-5, rtol=0)
    assert (alpha_a - alpha_b.flip(-1)).abs().max() > 1e-3  # an untrained net is not symmetric: the test bites
    # The diagnostic path (a given segmentation) is flip-averaged the same way.
    truth = (images[:, :1] > 0.5).float()
    with torch.inference_mode():
        expected = 0.5 * (model.matte(images, truth) + model.matte(images.flip(-1), truth.flip(-1)).flip(-1))
    torch.testing.assert_close(flip.infer(images, truth)[0], expected, atol=1e-5, rtol=0)
    with pytest.raises(BadInputError, match="unknown tta 'rotate'; use one of none, flip"):
        Engine(model, device="cpu", tta="rotate")


@pytest.mark.parametrize("batch", [1, 3])
def test_odd_size_gives_full_resolution_outputs(model: pomagan_post.Pomagan, batch: int) -> None:
    engine = Engine(model, device=TEST_DEVICE, working_size=128, batch_size=2, foreground="multiply")
    frames = _frames(batch, 563, 1001)
    alpha, fg = engine.process(frames)
    assert isinstance(alpha, np.ndarray) and isinstance(fg, np.ndarray)
    assert alpha.shape == (batch, 563, 1001) and fg.shape == (batch, 563, 1001, 3)
    assert alpha.dtype == np.float32 and fg.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    np.testing.assert_allclose(fg, frames * alpha[..., None], rtol=1e-6, atol=1e-6)


def test_default_engine_refines_edges_and_estimates_foreground(model: pomagan_post.Pomagan) -> None:
    """Guided upsampling and foreground estimation are the defaults (see pomagan_post.refine)."""
    from pomagan_post.refine import guided_upsample, premultiplied_foreground

    engine = Engine(model, device="cpu", working_size=64)
    assert (engine.upsample, engine.foreground_method) == ("guided", "estimate")
    frames = _frames(2, 120, 200)
    alpha, fg = engine.process(frames)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    alpha_low, _ = engine.infer(x)
    assert alpha_low.shape[-2:] == (64, 107)
    np.testing.assert_allclose(alpha, guided_upsample(alpha_low, x)[:, 0].numpy(), atol=1e-6)
    expected = premultiplied_foreground(x, torch.from_numpy(alpha)[:, None], method="estimate")
    np.testing.assert_allclose(fg, expected.permute(0, 2, 3, 1).numpy(), atol=1e-5)
    bilinear = Engine(model, device="cpu", working_size=64, upsample="bilinear").predict_alpha(frames)
    assert np.abs(bilinear - alpha).max() > 1e-3
    with pytest.raises(BadInputError, match="unknown upsample 'nearest'"):
        Engine(model, device="cpu", upsample="nearest")
    with pytest.raises(BadInputError, match="unknown foreground 'guess'"):
        Engine(model, device="cpu", foreground="guess")


def test_working_shape_keeps_aspect_and_never_upscales(model: pomagan_post.Pomagan) -> None:
    engine = Engine(model, device="cpu")
    assert engine.working_shape(1080, 1920) == (768, 1365)
    assert engine.working_shape(2160, 3840) == (768, 1365)
    assert engine.working_shape(1920, 1080) == (1365, 768)
    assert engine.working_shape(563, 1001) == (563, 1001)  # smaller than 768: native size
    # The network runs padded to its stride; infer() crops back to the working shape.
    alpha, seg = engine.infer(torch.rand(1, 3, 563, 1001))
    assert alpha.shape == seg.shape == (1, 1, 563, 1001)


def test_working_size_defaults_to_the_checkpoints(model: pomagan_post.Pomagan, tmp_path) -> None:
    assert Engine(model, device="cpu").working_size == 768
    path = pomagan_post.save_checkpoint(model, tmp_path / "c.safetensors", working_size=256)
    loaded = pomagan_post.load_checkpoint(path)
    assert Engine(loaded, device="cpu").working_size == 256
    assert Engine(loaded, device="cpu", working_size=512).working_size == 512


def test_no_resize_path_equals_the_plain_model(model: pomagan_post.Pomagan) -> None:
    engine = Engine(model, device="cpu", working_size=768, tta="none")
    frames = _frames(2, 64, 96)
    alpha = engine.predict_alpha(frames)
    with torch.no_grad():
        expected, _ = model(torch.from_numpy(frames).permute(0, 3, 1, 2))
    np.testing.assert_allclose(alpha, expected[:, 0].numpy(), atol=1e-5)


def test_batch_size_does_not_change_results(model: pomagan_post.Pomagan) -> None:
    frames = _frames(3, 90, 130)
    one = Engine(model, device="cpu", batch_size=1).predict_alpha(frames)
    three = Engine(model, device="cpu", batch_size=3).predict_alpha(frames)
    np.testing.assert_allclose(one, three, atol=1e-5)


def test_padded_batches_give_a_frame_the_same_matte_wherever_its_batch_ends(model: pomagan_post.Pomagan) -> None:
    """pad_batches: a short (last) batch runs at the full batch shape, filled with copies of its
    last frame, and its frames get exactly the mattes a full batch gives them; without it the
    network sees the short shape."""
    frames = _frames(4, 90, 130)
    shapes: list[int] = []
    hook = model.register_forward_pre_hook(lambda module, args: shapes.append(args[0].shape[0]))
    try:
        padded = Engine(model, device="cpu", batch_size=4, pad_batches=True)
        whole = padded.predict_alpha(frames)
        shapes.clear()
        tail = padded.predict_alpha(frames[3:])
        assert shapes == [4] and tail.shape == (1, 90, 130)
        np.testing.assert_array_equal(tail[0], whole[3])
        flipped = Engine(model, device="cpu", batch_size=4, pad_batches=True, tta="flip")
        shapes.clear()
        assert flipped.predict_alpha(frames[:3]).shape == (3, 90, 130) and shapes == [8]
        shapes.clear()
        Engine(model, device="cpu", batch_size=4).predict_alpha(frames[3:])
        assert shapes == [1]
    finally:
        hook.remove()


def test_torch_in_torch_out_and_single_frames(model: pomagan_post.Pomagan) -> None:
    engine = Engine(model, device="cpu")
    frame = torch.from_numpy(_frames(1, 40, 50)[0])
    alpha, fg = engine.process(frame)
    assert isinstance(alpha, torch.Tensor) and isinstance(fg, torch.Tensor) and alpha.shape == (40, 50)
    assert fg.shape == (40, 50, 3)
    batch_alpha = engine.predict_alpha(frame.unsqueeze(0).numpy())
    np.testing.assert_allclose(alpha.numpy(), batch_alpha[0], atol=1e-6)


@pytest.mark.parametrize("size", [(2, 2), (7, 300), (20, 20)])
def test_tiny_frames_are_padded_enough(model: pomagan_post.Pomagan, size: tuple[int, int]) -> None:
    alpha = Engine(model, device="cpu").predict_alpha(_frames(1, *size))
    assert alpha.shape == (1, *size) and np.isfinite(alpha).all()


def test_nan_and_out_of_range_input_gives_finite_alpha(model: pomagan_post.Pomagan) -> None:
    frames = _frames(1, 48, 48)
    frames[0, :10] = np.nan
    frames[0, 10:20] = 7.0
    alpha = Engine(model, device="cpu").predict_alpha(frames)
    assert np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1


def test_foreground_keeps_values_above_one(model: pomagan_post.Pomagan) -> None:
    """Scene-linear highlights survive premultiplication (nothing clamps the image)."""
    image = np.full((1, 4, 4, 3), 5.0, np.float32)
    alpha = np.full((1, 4, 4), 0.5, np.float32)
    for method in ("estimate", "multiply"):
        engine = Engine(model, device="cpu", foreground=method)
        np.testing.assert_allclose(engine.foreground(image, alpha), 2.5, rtol=1e-5)
    with pytest.raises(BadInputError, match="do not match"):
        engine.foreground(image, alpha[:, :3])


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((2, 32, 32, 4), np.float32), r"expected RGB frames shaped \[N, H, W, 3\]"),
        (np.zeros((32, 32), np.float32), r"got shape \(32, 32\)"),
        (np.zeros((1, 32, 32, 3), np.uint8), "got dtype torch.uint8"),
        (np.zeros((0, 32, 32, 3), np.float32), "too small"),
    ],
)
def test_bad_frames_are_refused(model: pomagan_post.Pomagan, frames: np.ndarray, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        Engine(model, device="cpu").predict_alpha(frames)


def test_matte_refuses_integer_frames_and_takes_reversed_views(model: pomagan_post.Pomagan) -> None:
    """A decoded 8-bit picture passed as it is came back as a wrong matte (codes read as values,
    nearly all clamped to white) and a foreground in 0-254: refused, as predict_alpha refuses
    it. OpenCV's BGR-to-RGB view (a negative stride) is taken, equal to a copy."""
    engine = Engine(model, device="cpu", working_size=32)
    rgb = np.random.default_rng(0).random((1, 24, 40, 3), dtype=np.float32)
    with pytest.raises(BadInputError, match=r"got dtype uint8; convert integer images first \(e.g. uint8 / 255"):
        engine.matte((rgb * 255).astype(np.uint8))
    with pytest.raises(BadInputError, match="too small to matte"):
        engine.matte(rgb[:, :1, :1])
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    view = bgr[..., ::-1]  # what cv2.imread(path)[..., ::-1] gives
    assert any(stride < 0 for stride in view.strides)
    for call in (lambda x: engine.matte(x)[0], lambda x: engine.predict_alpha(x),
                 lambda x: engine.process(x[0])[1]):
        np.testing.assert_array_equal(call(view), call(rgb))
    np.testing.assert_array_equal(engine.process(rgb[0].tolist())[0], engine.process(rgb[0])[0])  # a list


def test_load_checkpoint_names_a_bad_device_or_variant() -> None:
    with pytest.raises(BadInputError, match="unknown device 'bogus'"):
        pomagan_post.load_checkpoint(None, device="bogus")
    with pytest.raises(BadInputError, match="unknown variant 'nonsense'; variants: paper, fast"):
        pomagan_post.load_checkpoint(None, variant="nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            pomagan_post.load_checkpoint(None, device="cuda")


def test_renders_sharing_an_engine_take_turns(model: pomagan_post.Pomagan) -> None:
    """A render sets the engine's batch padding and pixel aspect for its shot; a second render
    on another thread waits for the first, and the engine's own settings come back after."""
    import threading

    from pomagan_post.engine import padded_batches, taking_turns

    engine = Engine(model, device="cpu", working_size=32)
    assert engine.pad_batches is False
    inside, release, order = threading.Event(), threading.Event(), []

    def first() -> None:
        with taking_turns(engine), padded_batches(engine):
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    def second() -> None:
        inside.wait(10)
        with taking_turns(engine), padded_batches(engine):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    inside.wait(10)
    threading.Event().wait(0.2)  # the second render has had time to try
    assert order == ["first in"]
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first in", "first out", "second in"] and engine.pad_batches is False


def test_device_and_precision_validation(model: pomagan_post.Pomagan) -> None:
    with pytest.raises(BadInputError, match="unknown device 'tpu'"):
        Engine(model, device="tpu")
    with pytest.raises(BadInputError, match="unknown precision 'fp8'"):
        Engine(model, device="cpu", precision="fp8")
    with pytest.raises(DeviceError, match="fp16 needs a CUDA device"):
        Engine(model, device="cpu", precision="fp16")
    with pytest.raises(BadInputError, match="batch_size must be at least 1"):
        Engine(model, device="cpu", batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            Engine(model, device="cuda:0")
    assert Engine(model, device="auto").device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert Engine(model, device="cpu", precision="auto").dtype == torch.float32


def test_bf16_on_cpu_tracks_fp32(model: pomagan_post.Pomagan) -> None:
    frames = _frames(1, 64, 64)
    fp32 = Engine(model, device="cpu", precision="fp32").predict_alpha(frames)
    bf16 = Engine(model, device="cpu", precision="bf16").predict_alpha(frames)
    # bf16 keeps 8 mantissa bits; through ~30 layers of random weights the alpha stays close.
    assert np.abs(fp32 - bf16).max() < 0.05


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_gpu_mixed_precision_matches_fp32(model: pomagan_post.Pomagan, precision: str) -> None:
    frames = _frames(2, 540, 960)
    fp32 = Engine(model, device=TEST_DEVICE, precision="fp32").predict_alpha(frames)
    mixed = Engine(model, device=TEST_DEVICE, precision=precision).predict_alpha(frames)
    assert np.isfinite(mixed).all()
    assert np.abs(fp32 - mixed).mean() < 5e-3 and np.abs(fp32 - mixed).max() < 0.1


def test_auto_batch_size(model: pomagan_post.Pomagan) -> None:
    engine = Engine(model, device="cpu", batch_size="auto", working_size=32)
    assert engine.auto_batch and isinstance(engine.batch_size, int) and 1 <= engine.batch_size <= 4
    assert engine.fit_batch(48, 80) == engine.batch_size
    frames = _frames(3, 48, 80)
    fixed = Engine(model, device="cpu", batch_size=1, working_size=32).predict_alpha(frames)
    np.testing.assert_allclose(engine.predict_alpha(frames), fixed, atol=1e-5)
    assert Engine(model, device="cpu", batch_size="3").batch_size == 3
    with pytest.raises(BadInputError, match="integer >= 1 or auto"):
        Engine(model, device="cpu", batch_size="many")


def test_compile_failure_falls_back_to_eager(model: pomagan_post.Pomagan, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """A compiler that breaks at the first call (no C++ compiler, unsupported platform) leaves
    the engine eager, with the same results and one logged warning."""
    def broken_compile(module: torch.nn.Module, **options: object) -> object:
        def run(*args: object) -> object:
            raise RuntimeError("no working compiler in this test")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    frames = _frames(2, 40, 56)
    eager = Engine(model, device="cpu", working_size=32).predict_alpha(frames)
    engine = Engine(model, device="cpu", working_size=32, compile=True)
    with caplog.at_level("WARNING", logger="pomagan_post.engine"):
        compiled = engine.predict_alpha(frames)
    np.testing.assert_array_equal(compiled, eager)
    assert engine.compile_mode is None and "running the network eagerly" in caplog.text
    np.testing.assert_array_equal(engine.predict_alpha(frames), eager)  # eager from then on


@pytest.mark.gpu
def test_gpu_pinned_uploads_and_auto_batch(model: pomagan_post.Pomagan) -> None:
    """numpy frames through the pinned staging buffer give the results torch frames on the
    device give; the auto batch on a GPU is a real batch."""
    frames = _frames(5, 270, 480)
    engine = Engine(model, device=TEST_DEVICE, precision="fp32", batch_size=2)
    from_numpy = engine.predict_alpha(frames)
    on_device = engine.predict_alpha(torch.from_numpy(frames).to(TEST_DEVICE)).cpu().numpy()
    np.testing.assert_allclose(from_numpy, on_device, atol=1e-5)
    fg_numpy = engine.foreground(frames, from_numpy)
    fg_device = engine.foreground(torch.from_numpy(frames).to(TEST_DEVICE),
                                  torch.from_numpy(from_numpy).to(TEST_DEVICE)).cpu().numpy()
    np.testing.assert_allclose(fg_numpy, fg_device, atol=1e-5)
    auto = Engine(model, device=TEST_DEVICE, batch_size="auto")
    assert 1 <= auto.fit_batch(2160, 3840) <= auto.fit_batch(1080, 1920) <= 16
    assert torch.backends.cudnn.benchmark


@pytest.mark.gpu
def test_gpu_compile_matches_eager(model: pomagan_post.Pomagan) -> None:
    frames = _frames(2, 270, 480)
    eager = Engine(model, device=TEST_DEVICE, precision="fp32").predict_alpha(frames)
    engine = Engine(model, device=TEST_DEVICE, precision="fp32", compile=True)
    compiled = engine.predict_alpha(frames)
    assert np.abs(compiled - eager).max() < 1e-3  # compiled (or fallen back: eager) within rounding


@pytest.mark.parametrize("colorspace", ["linear", "srgb", "rec709", "cineon", "pq"])
def test_matte_in_one_pass_equals_the_step_by_step_path(model: pomagan_post.Pomagan, colorspace: str) -> None:
    """Engine.matte (colour conversion, network, upsampling and foreground in one device pass;
    PQ converts on the host) gives what to_model + predict_alpha + foreground give."""
    from pomagan_post.colour import to_model

    frames = _frames(3, 37, 53, seed=4) * (2.5 if colorspace == "linear" else 1.0)
    frames[0, 3, 4, 1] = np.nan
    engine = Engine(model, device="cpu", working_size=32, batch_size=2)
    alpha, fg = engine.matte(frames, colorspace)
    want_alpha = engine.predict_alpha(to_model(frames, colorspace))
    finite = np.nan_to_num(frames, nan=0.0, posinf=65504.0, neginf=-65504.0)
    assert alpha.shape == (3, 37, 53) and fg.shape == (3, 37, 53, 3)
    assert alpha.dtype == fg.dtype == np.float32 and alpha.flags.c_contiguous
    np.testing.assert_allclose(alpha, want_alpha, atol=2e-5)  # same maths; float32 rounding of pow differs by layout
    # Given the alpha, the foreground is the same solve on the same finite values. (Compared
    # with the alpha it came with: where random weights leave alpha ambiguous, the solve turns
    # an alpha change of 3e-6 into 2e-3, so the step-by-step alpha would not be a fair input.)
    np.testing.assert_allclose(fg, engine.foreground(finite, alpha), atol=1e-6)
    assert np.isfinite(fg).all()
    only, none = engine.matte(frames, colorspace, need_fg=False)
    assert none is None
    np.testing.assert_allclose(only, alpha, atol=1e-6)
    with pytest.raises(BadInputError, match="RGB frames"):
        engine.matte(frames[0], colorspace)
    # Infinities (EXR can hold them) count as +-65504: finite outputs, alpha as before.
    frames[1, 5, 6, 0], frames[2, 7, 8, 2] = np.inf, -np.inf
    alpha, fg = engine.matte(frames, colorspace)
    assert np.isfinite(fg).all() and ((alpha >= 0) & (alpha <= 1)).all()
    np.testing.assert_allclose(alpha, engine.predict_alpha(to_model(frames, colorspace)), atol=2e-5)


def test_matte_with_a_given_segmentation_is_predict_alphas(model: pomagan_post.Pomagan) -> None:
    """Engine.matte(seg=...) (render --roto) feeds the alpha network the given segmentation,
    batch by batch, as predict_alpha(seg=...) does; a segmentation of another shape is refused."""
    frames = _frames(3, 37, 53, seed=5)
    seg = np.zeros((3, 37, 53), np.float32)
    seg[:, 8:30, 10:40] = 1.0
    seg[1] = 1.0 - seg[1]
    engine = Engine(model, device="cpu", working_size=32, batch_size=2)
    alpha, fg = engine.matte(frames, "srgb", seg=seg)
    np.testing.assert_allclose(alpha, engine.predict_alpha(frames, seg=seg), atol=2e-5)
    np.testing.assert_allclose(fg, engine.foreground(frames, alpha), atol=1e-6)
    assert np.abs(alpha - engine.matte(frames, "srgb")[0]).max() > 0.2  # not the network's own guess
    with pytest.raises(BadInputError, match=r"segmentation shaped \(3, 37, 52\); the frames need \(3, 37, 53\)"):
        engine.matte(frames, "srgb", seg=seg[..., :52])


def test_foreground_solve_in_chunks_gives_the_same_frames(model: pomagan_post.Pomagan, monkeypatch) -> None:
    """Big frames are refined a few at a time (device memory); the frames come out the same."""
    from pomagan_post import engine as engine_module

    frames = _frames(3, 29, 41, seed=9)
    engine = Engine(model, device="cpu", working_size=32, batch_size=3)
    whole_alpha, whole_fg = engine.matte(frames, "srgb")
    monkeypatch.setattr(engine_module, "REFINE_CHUNK_PIXELS", 29 * 41 * 2)  # two frames a solve
    alpha, fg = engine.matte(frames, "srgb")
    np.testing.assert_array_equal(alpha, whole_alpha)
    np.testing.assert_allclose(fg, whole_fg, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("colorspace", ["linear", "srgb"])
def test_gpu_matte_matches_the_cpu(model: pomagan_post.Pomagan, colorspace: str) -> None:
    """The one-pass device path (colour conversion, solve, pinned copy back) on the GPU in fp32
    gives the CPU's frames; results are independent, writable arrays."""
    frames = _frames(3, 270, 480, seed=2) * (1.5 if colorspace == "linear" else 1.0)
    # An engine moves its model to its device: each engine gets its own copy.
    cpu = Engine(copy.deepcopy(model), device="cpu", working_size=128, batch_size=2)
    gpu = Engine(copy.deepcopy(model), device=TEST_DEVICE, precision="fp32", working_size=128, batch_size=2)
    want_alpha, want_fg = cpu.matte(frames, colorspace)
    alpha, fg = gpu.matte(frames, colorspace)
    first = alpha.copy()
    gpu.matte(frames[::-1].copy(), colorspace)  # a second call must not overwrite the first results
    np.testing.assert_array_equal(alpha, first)
    assert alpha.flags.writeable and alpha.shape == (3, 270, 480) and fg.shape == (3, 270, 480, 3)
    # fp32 on the GPU is true fp32 (TF32 off): only summation order differs from the CPU.
    assert np.abs(alpha - want_alpha).max() < 1e-3
    assert np.abs(fg - want_fg).mean() < 1e-3


@pytest.mark.gpu
def test_gpu_graphed_foreground_solve_matches_eager(model: pomagan_post.Pomagan) -> None:
    frames = _frames(3, 270, 480, seed=3)
    graphed = Engine(model, device=TEST_DEVICE, precision="fp32", working_size=128, batch_size=2)
    eager = Engine(model, device=TEST_DEVICE, precision="fp32", working_size=128, batch_size=2,
                   cuda_graphs=False)
    for _ in range(2):  # the first call captures (batch shapes 2 and 1), the second replays
        alpha, fg = graphed.matte(frames, "srgb")
    assert graphed._graphed_solve.enabled and len(graphed._graphed_solve._graphs) == 2
    want_alpha, want_fg = eager.matte(frames, "srgb")
    # Two engines' networks may differ in the last bits (cuDNN's autotuned algorithms: on an
    # H200 alpha moved by up to 2.8e-5), and the solve carries that into the foreground.
    np.testing.assert_allclose(alpha, want_alpha, atol=1e-4)
    np.testing.assert_allclose(fg, want_fg, atol=1e-3)
    # The solve alone, on the same tensors: a replayed graph gives the eager solve.
    from pomagan_post.engine import _GraphedSolve
    from pomagan_post.refine import premultiplied_foreground

    gen = torch.Generator(device=TEST_DEVICE).manual_seed(0)
    image = torch.rand(2, 3, 270, 480, device=TEST_DEVICE, generator=gen)
    matte = torch.rand(2, 1, 270, 480, device=TEST_DEVICE, generator=gen)
    solve = _GraphedSolve()
    solve(image, matte)  # captures
    replayed = solve(image * 0.5, matte)  # replays with new inputs
    assert solve.enabled and len(solve._graphs) == 1
    torch.testing.assert_close(replayed, premultiplied_foreground(image * 0.5, matte), atol=1e-5, rtol=0)


def test_anamorphic_frames_are_matted_desqueezed() -> None:
    """pixel_aspect 2 (a 2x anamorphic plate): the network sees the picture as shown (twice the
    stored width), the matte comes back at the stored size, and on squeezed synthetic
    portraits the bundled model's matte is far closer to the truth than matting them squeezed
    (people at half their width), as render now does from a shot's pixel aspect."""
    import torch.nn.functional as F

    from pomagan_post.engine import shot_pixel_aspect, working_shape
    from pomagan_train.data import build_dataset

    assert working_shape(858, 1024, 192, 2.0) == (192, 458)  # 2048x858 shown
    assert working_shape(192, 160, 192, 2.0) == (192, 320)  # shown as wide as it is tall x 2
    with pytest.raises(BadInputError, match="pixel aspect"):
        Engine(pomagan_post.load_checkpoint(None), device="cpu", pixel_aspect=0)
    data = build_dataset("synthetic:8", (320, 192), split="test", seed=7, augment=False)
    items = [data[i] for i in range(8)]
    squeeze = lambda t: F.interpolate(t, size=(192, 160), mode="bilinear", antialias=True, align_corners=False)
    image = squeeze(torch.stack([item["image"] for item in items])).permute(0, 2, 3, 1).numpy()
    truth = squeeze(torch.stack([item["alpha"] for item in items]))[:, 0].numpy()
    engine = Engine(pomagan_post.load_checkpoint(None), device="cpu", batch_size=8)
    squeezed = engine.predict_alpha(image)
    with shot_pixel_aspect(engine, 2.0):
        assert engine.working_shape(192, 160) == (192, 320)
        shown = engine.predict_alpha(image)
    assert engine.pixel_aspect == 1.0 and shown.shape == squeezed.shape == (8, 192, 160)
    error_squeezed = float(((squeezed - truth) ** 2).mean())
    error_shown = float(((shown - truth) ** 2).mean())
    assert error_shown < 0.5 * error_squeezed, (error_shown, error_squeezed)


def test_camera_log_footage_named_as_such_mattes_like_the_display_picture() -> None:
    """Synthetic portraits encoded to S-Log3: with colorspace="slog3" the engine decodes them
    and the matte is the display picture's again (as Rec.709 the network sees a flat picture
    and the matte differs; how much that costs depends on the weights, README)."""
    from pomagan_post.colour import linear_to_slog3, srgb_eotf
    from pomagan_train.data import build_dataset

    data = build_dataset("synthetic:8", (320, 192), split="test", seed=7, augment=False)
    items = [data[i] for i in range(8)]
    display = torch.stack([item["image"] for item in items]).permute(0, 2, 3, 1).numpy()
    truth = torch.stack([item["alpha"] for item in items])[:, 0].numpy()
    log = np.clip(linear_to_slog3(srgb_eotf(display)), 0, 1)
    engine = Engine(pomagan_post.load_checkpoint(None), device="cpu", batch_size=8)
    mattes = {name: engine.matte(frames, space, need_fg=False)[0]
              for name, frames, space in (("display", display, "srgb"), ("as rec709", log, "rec709"),
                                          ("decoded", log, "slog3"))}
    errors = {name: float(((matte - truth) ** 2).mean()) for name, matte in mattes.items()}
    change = {name: float(np.abs(matte - mattes["display"]).mean()) for name, matte in mattes.items()}
    assert errors["decoded"] == pytest.approx(errors["display"], rel=0.02), errors
    # read as Rec.709 the matte moves away from the display picture's; decoded it hardly does
    assert change["as rec709"] > 10 * change["decoded"] and change["as rec709"] > 5e-4, change



def test_matte_settings_name_the_weights_and_what_changes_a_matte(model: pomagan_post.Pomagan) -> None:
    """What a render records to catch a resume with other settings: the same weights give the
    same digest whatever the device, precision or batch size; changed weights another."""
    import copy

    one = Engine(model, device="cpu", working_size=64, batch_size=1, precision="fp32")
    two = Engine(model, device="cpu", working_size=64, batch_size=3, precision="bf16")
    assert one.matte_settings() == two.matte_settings()
    assert one.matte_settings() == {"weights": one.matte_settings()["weights"], "working_size": 64,
                                    "upsample": "guided", "foreground": "estimate", "tta": "none"}
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    assert Engine(other, device="cpu", working_size=64).matte_settings()["weights"] != one.matte_settings()["weights"]
    assert Engine(model, device="cpu", working_size=96, tta="flip").matte_settings()["tta"] == "flip"
