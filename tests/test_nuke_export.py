"""The Nuke Inference export: a TorchScript file CatFileCreator accepts, matching the eager engine.

Tolerance: the exported module and ``Engine(upsample="guided", foreground="multiply")`` at the
same working size run the same float32 operations (the engine in channels_last), so alpha and the
premultiplied foreground agree to ``TOL`` (measured: ~1e-5 at most at these sizes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import pomagan_post
from pomagan_post.cli import main
from pomagan_post.colour import to_model
from pomagan_post.engine import working_shape
from pomagan_post.export import NukeMatte, export_nuke

from .conftest import TEST_DEVICE

# Nuke's Inference runs TorchScript only: torch's deprecation warnings for it are expected here.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch\\.jit.*:FutureWarning")

TOL = 1e-4
WORKING_SIZE = 32
SIZES = [(40, 56), (97, 131), (17, 9), (23, 64)]


@pytest.fixture(scope="module")
def model() -> pomagan_post.Pomagan:
    return pomagan_post.load_checkpoint(None)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory: pytest.TempPathFactory) -> torch.jit.ScriptModule:
    path = export_nuke(model, tmp_path_factory.mktemp("nuke") / "pomagan.pt", working_size=WORKING_SIZE)
    return torch.jit.load(str(path), map_location="cpu")


def _plate(h: int, w: int) -> np.ndarray:
    """Scene-linear RGB with highlights above 1, a NaN and negative values."""
    rgb = np.random.default_rng(h * w).random((h, w, 3)).astype(np.float32) * 3.0 - 0.2
    rgb[0, 0, 0] = np.nan
    return rgb


def _to_nuke(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()  # [1, 3, H, W]


def test_attributes_are_knobs(exported) -> None:
    assert exported.working_size == WORKING_SIZE and isinstance(exported.working_size, int)
    # check boxes bind to integers 0/1, not True/False (Foundry's .cat reference, "Custom Knobs")
    assert exported.guided == 1 and type(exported.guided) is int
    assert exported.guide_radius == 1 and exported.guide_eps == pytest.approx(1e-4)
    assert exported.flip == 0 and type(exported.flip) is int  # one pass, as render's default --tta none
    assert exported.pixel_aspect == 1.0 and isinstance(exported.pixel_aspect, float)
    assert exported.roto == 0 and type(exported.roto) is int  # the network's own guess, as render's default


def test_flip_knob_is_the_engines_flip_tta(exported, model) -> None:
    """With the flip knob on the module matches the engine's tta="flip" (the frame and its
    mirror image averaged), which differs from the one-pass default: the knob does something."""
    rgb = _plate(64, 80)
    with torch.inference_mode():
        one = exported(_to_nuke(rgb))
        exported.flip = 1  # what the custom check box does
        try:
            both = exported(_to_nuke(rgb))
        finally:
            exported.flip = 0
    engine = pomagan_post.Engine(model, device="cpu", working_size=WORKING_SIZE, foreground="multiply", tta="flip")
    alpha, _ = engine.matte(rgb[None], "linear")
    # float noise the sigmoid's steep part amplifies at a few pixels of this noise plate: with the
    # run 8 weights 7.0e-4 at most, 3.2e-5 on average (one pass: 1.9e-4, 4.3e-6); under 5e-4
    # with run 7's. The flip itself changes the matte by more than 1e-3 (below).
    diff = np.abs(both[0, 3].numpy() - alpha[0])
    assert diff.max() < 10 * TOL and diff.mean() < TOL / 2, (diff.max(), diff.mean())
    assert float((one[0, 3] - both[0, 3]).abs().max()) > 10 * TOL


def test_roto_knob_takes_the_person_from_the_alpha_channel(exported, model) -> None:
    """With the roto knob on, the input's alpha (a roto, feathered here: it counts from 0.5) is
    the segmentation, as render --roto feeds it: the matte matches the engine given the hard
    shape, alone and with the flip knob, and differs from the network's own guess; off, the
    alpha is ignored; on with three channels in, the error says what to set."""
    rgb = _plate(64, 80)
    columns = np.arange(80, dtype=np.float32)
    feathered = np.broadcast_to(np.clip(0.5 + (29.5 - columns) / 8, 0, 1), (64, 80))
    hard = (feathered >= 0.5).astype(np.float32)
    rgba = torch.cat([_to_nuke(rgb), torch.from_numpy(np.ascontiguousarray(feathered))[None, None]], 1)
    with torch.inference_mode():
        ignored = exported(rgba)
        plain = exported(_to_nuke(rgb))
        try:
            exported.roto = 1
            guided = exported(rgba)
            exported.flip = 1
            both = exported(rgba)
            exported.flip = 0
            with pytest.raises(Exception, match="Channels In to rgba.red, rgba.green, rgba.blue, rgba.alpha"):
                exported(_to_nuke(rgb))
        finally:
            exported.roto, exported.flip = 0, 0
    torch.testing.assert_close(ignored, plain)
    for tta, out in (("none", guided), ("flip", both)):
        engine = pomagan_post.Engine(model, device="cpu", working_size=WORKING_SIZE, foreground="multiply", tta=tta)
        alpha, _ = engine.matte(rgb[None], "linear", seg=hard[None])
        diff = np.abs(out[0, 3].numpy() - alpha[0])
        assert diff.max() < 10 * TOL and diff.mean() < TOL / 2, (tta, diff.max(), diff.mean())
    assert float((guided[0, 3] - plain[0, 3]).abs().max()) > 0.2


@pytest.mark.parametrize("size", SIZES)
def test_matches_the_engine(exported, model, size: tuple[int, int]) -> None:
    h, w = size
    rgb = _plate(h, w)
    with torch.inference_mode():
        out = exported(_to_nuke(rgb))
    assert out.shape == (1, 4, h, w) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    engine = pomagan_post.Engine(model, device="cpu", working_size=WORKING_SIZE, foreground="multiply")
    # What render runs (the same torch colour conversion as the export's forward).
    alpha, fg = engine.matte(rgb[None], "linear")
    alpha, fg = alpha[0], fg[0]
    got = out[0].permute(1, 2, 0).numpy()
    # float32 rounding only (the saved TorchScript's kernels vs eager; the same module run eagerly
    # matches to 3e-6): relative errors near 1.5e-4, so with the bundled weights after run 6 the
    # largest difference was 4.9e-4 at 97x131, mean 1.2e-5 (1.6e-4 / 4e-6 with earlier weights);
    # a real mismatch (resize, padding, colour) moves whole regions by far more.
    assert np.abs(got[..., 3] - alpha).max() < 10 * TOL and np.abs(got[..., 3] - alpha).mean() < TOL / 4
    # The foreground is alpha x plate: its error is the alpha error scaled by the plate (up to 2.8).
    assert np.abs(got[..., :3] - fg).max() < 5 * TOL * np.nanmax(np.abs(rgb))
    # Premultiplied: |rgb| <= alpha * max|plate| everywhere.
    assert np.all(np.abs(got[..., :3]) <= got[..., 3:] * np.nanmax(np.abs(rgb)) + 1e-5)


def test_working_size_knob_and_bilinear(exported, model) -> None:
    rgb = _plate(64, 80)
    exported.working_size = 48  # what a custom knob does
    try:
        with torch.inference_mode():
            out = exported(_to_nuke(rgb))
    finally:
        exported.working_size = WORKING_SIZE
    engine = pomagan_post.Engine(model, device="cpu", working_size=48, upsample="bilinear",
                                 foreground="multiply")
    wrapper = NukeMatte(model, working_size=48, guided=False)
    with torch.inference_mode():
        eager = wrapper(_to_nuke(rgb))
    alpha = engine.predict_alpha(to_model(rgb, "linear"))
    assert np.abs(eager[0, 3].numpy() - alpha).max() < TOL
    assert out.shape == eager.shape


def test_working_shape_is_the_engines() -> None:
    scripted = torch.jit.script(working_shape)
    for h, w, s in [(5, 32, 16), (1080, 1920, 768), (97, 131, 32), (3, 7, 16), (2161, 4096, 768)]:
        assert scripted(h, w, s) == working_shape(h, w, s)


def test_metadata_and_cli(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(main, ["export", "--target", "nuke", str(out), "--working-size", "64"])
    assert result.exit_code == 0, result.output
    assert "Channels In" in result.output and "rgba.alpha" in result.output
    files = {"pomagan.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=files)
    meta = json.loads(files["pomagan.json"])
    assert meta["variant"] == "fast" and meta["knobs"]["working_size"] == 64
    assert Path(meta["checkpoint"]).is_absolute() and Path(meta["checkpoint"]).is_file()
    assert "flip (Bool), pixel_aspect (Float" in result.output  # every knob the module reads
    assert loaded.working_size == 64
    bad = CliRunner().invoke(main, ["export", "--target", "nuke", str(tmp_path / "x.pt"), "--working-size", "4"])
    assert bad.exit_code == 2 and "at least 16" in bad.output
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.gpu
def test_fp16_on_cuda(exported) -> None:
    """Nuke's "Optimize for Speed and Memory": weights and input in half on the GPU."""
    module = exported.to(TEST_DEVICE).half()
    x = _to_nuke(np.nan_to_num(_plate(97, 131))).to(TEST_DEVICE)
    with torch.inference_mode():
        half = module(x.half())
        full = module.float()(x)
    assert half.dtype == torch.float16 and half.device == x.device and half.shape == (1, 4, 97, 131)
    # Whole network in half (not autocast): on this noise plate, where the matte is ambiguous
    # everywhere, the bundled model's alpha moved by mean 0.0025, 99th pct 0.035, max 0.14 (half
    # on the CPU) and by mean 0.0051, 99th pct 0.068 on an H200 (torch 2.11), so the bulk is
    # bounded, not single pixels.
    diff = (half.float() - full).abs()[:, 3].flatten()
    assert diff.mean() < 0.01 and diff.quantile(0.99) < 0.1


def test_pixel_aspect_knob_is_the_engines(exported, model) -> None:
    """pixel_aspect 2 on the scripted module (what the knob does) mattes an anamorphic plate
    desqueezed, as the engine does; back to 1 it is the square-pixel matte again."""
    rgb = _plate(48, 40)
    engine = pomagan_post.Engine(model, device="cpu", working_size=WORKING_SIZE, foreground="multiply",
                                 pixel_aspect=2.0)
    alpha, _ = engine.matte(rgb[None], "linear")
    try:
        exported.pixel_aspect = 2.0
        with torch.inference_mode():
            wide = exported(_to_nuke(rgb))[0, 3].numpy()
    finally:
        exported.pixel_aspect = 1.0
    with torch.inference_mode():
        square = exported(_to_nuke(rgb))[0, 3].numpy()
    assert np.abs(wide - alpha[0]).max() < 10 * TOL
    assert np.abs(wide - square).max() > 100 * TOL  # the knob changes what the network sees



def test_export_never_writes_over_another_file(tmp_path) -> None:
    from click.testing import CliRunner

    from pomagan_post.cli import main

    shot = tmp_path / "shot.mov"
    shot.write_bytes(b"not an export")
    result = CliRunner().invoke(main, ["export", "--target", "nuke", str(shot)])
    assert result.exit_code == 2 and "name it OUT.pt" in result.stderr
    kept = tmp_path / "old.pt"
    kept.write_bytes(b"someone's notes")
    result = CliRunner().invoke(main, ["export", "--target", "nuke", str(kept)])
    assert result.exit_code == 2 and "is not an earlier export of this tool; refusing" in result.stderr
    assert shot.read_bytes() == b"not an export" and kept.read_bytes() == b"someone's notes"
    # a PyTorch checkpoint is a zip archive as an export is, and is someone's work too
    checkpoint = tmp_path / "finetune.pt"
    torch.save({"net": {"w": torch.ones(3)}}, checkpoint)
    saved = checkpoint.read_bytes()
    result = CliRunner().invoke(main, ["export", "--target", "nuke", str(checkpoint)])
    assert result.exit_code == 2 and "is not an earlier export of this tool; refusing" in result.stderr
    assert checkpoint.read_bytes() == saved


def test_export_replaces_an_earlier_export(model, tmp_path) -> None:
    from pomagan_post.export import is_nuke_export

    earlier = export_nuke(model, tmp_path / "pomagan.pt", working_size=WORKING_SIZE, verify=False)
    assert is_nuke_export(earlier)
    result = CliRunner().invoke(main, ["export", "--target", "nuke", str(earlier), "--working-size", "96"])
    assert result.exit_code == 0, result.output
    assert is_nuke_export(earlier) and torch.jit.load(str(earlier)).working_size == 96
