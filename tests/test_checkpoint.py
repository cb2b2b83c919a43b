"""Checkpoint format: bit-exact round trips, safe loading, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import pomagan_post
from pomagan_post import CheckpointError, WeightsNotFoundError
from pomagan_post.checkpoint import read_checkpoint_info


@pytest.fixture
def fast_model() -> pomagan_post.Pomagan:
    return pomagan_post.create_model("fast").eval()


def test_round_trip_is_bit_exact(tmp_path: Path, fast_model: pomagan_post.Pomagan) -> None:
    path = pomagan_post.save_checkpoint(
        fast_model, tmp_path / "ckpt.safetensors", description="test", recipe={"lr": 1e-4}, steps=12
    )
    loaded = pomagan_post.load_checkpoint(path)
    assert not loaded.training
    assert loaded.variant == "fast" and loaded.config == fast_model.config
    original = fast_model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    image = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(loaded(image)[0], fast_model(image)[0])
    info = loaded.checkpoint_info
    assert info["recipe"] == {"lr": 1e-4} and info["meta"] == {"steps": 12}
    assert info["trained"] is True and info["input"]["range"] == [0.0, 1.0]
    assert info["input"]["stride"] == 16


def test_fp16_storage_halves_the_file_and_loads_as_float32(
    tmp_path: Path, fast_model: pomagan_post.Pomagan
) -> None:
    full = pomagan_post.save_checkpoint(fast_model, tmp_path / "fp32.safetensors")
    half = pomagan_post.save_checkpoint(fast_model, tmp_path / "fp16.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded = pomagan_post.load_checkpoint(half)
    for name, tensor in loaded.state_dict().items():
        expected = fast_model.state_dict()[name]
        assert tensor.dtype == expected.dtype
        if expected.is_floating_point():
            assert torch.equal(tensor, expected.half().float()), name


def test_custom_config_round_trips(tmp_path: Path) -> None:
    model = pomagan_post.create_model("fast", widths=(8, 16, 16), seg_widths=(4, 8, 8))
    loaded = pomagan_post.load_checkpoint(pomagan_post.save_checkpoint(model, tmp_path / "c.safetensors"))
    assert loaded.config.widths == (8, 16, 16) and loaded.stride == 4


def test_bundled_default_loads_and_is_labelled() -> None:
    model = pomagan_post.load_checkpoint(None)
    assert isinstance(model, pomagan_post.Pomagan) and not model.training
    info = read_checkpoint_info(None)
    assert info["variant"] == model.variant
    if not info["trained"]:
        assert "PLACEHOLDER" in info["description"]


def test_missing_file_is_weights_not_found(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="checkpoint not found: .*nope.safetensors"):
        pomagan_post.load_checkpoint(tmp_path / "nope.safetensors")


def _saved_bytes(tmp_path: Path, model: pomagan_post.Pomagan) -> bytes:
    return pomagan_post.save_checkpoint(model, tmp_path / "good.safetensors").read_bytes()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: len(b) // 2], "not a POMAGAN checkpoint"),
        (lambda b: b[:5], "corrupt or truncated"),
        (lambda b: b"\x00" * 64, "not a POMAGAN checkpoint"),
        (lambda b: bytes(range(256)) * 40, "not a POMAGAN checkpoint"),
        # One flipped byte in the tensor data: only the checksum can tell.
        (lambda b: b[:-100] + bytes([b[-100] ^ 0xFF]) + b[-99:], "does not match its checksum"),
    ],
    ids=["truncated-half", "truncated-header", "zeros", "garbage", "bit-flip"],
)
def test_corrupt_files_give_a_clear_error(
    tmp_path: Path, fast_model: pomagan_post.Pomagan, damage, message: str
) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(damage(_saved_bytes(tmp_path, fast_model)))
    with pytest.raises(CheckpointError, match=message):
        pomagan_post.load_checkpoint(bad)


def test_pickle_checkpoints_are_refused_without_running_them(
    tmp_path: Path, fast_model: pomagan_post.Pomagan
) -> None:
    path = tmp_path / "model.pt"
    torch.save(fast_model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not a POMAGAN checkpoint"):
        pomagan_post.load_checkpoint(path)


def test_foreign_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="without POMAGAN metadata"):
        pomagan_post.load_checkpoint(path)


def test_variant_mismatch(tmp_path: Path, fast_model: pomagan_post.Pomagan) -> None:
    path = pomagan_post.save_checkpoint(fast_model, tmp_path / "fast.safetensors")
    with pytest.raises(CheckpointError, match="holds variant 'fast', not the requested 'paper'"):
        pomagan_post.load_checkpoint(path, variant="paper")


def test_tensors_that_do_not_fit_the_config(tmp_path: Path, fast_model: pomagan_post.Pomagan) -> None:
    path = pomagan_post.save_checkpoint(fast_model, tmp_path / "fast.safetensors")
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as handle:
        header = handle.metadata()
    config = json.loads(header["config"])
    config["alpha_res_blocks"] = 3  # claims one more block than the tensors hold
    header["config"] = json.dumps(config)
    header.pop("sha256")
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(CheckpointError, match="does not fit variant 'fast': tensors .* missing"):
        pomagan_post.load_checkpoint(path)


def test_newer_format_version_is_refused(tmp_path: Path, fast_model: pomagan_post.Pomagan) -> None:
    path = pomagan_post.save_checkpoint(fast_model, tmp_path / "fast.safetensors")
    with safe_open(str(path), "pt") as handle:
        header = handle.metadata()
    header["format_version"] = "99"
    save_file(load_file(str(path)), str(path), metadata=header)
    with pytest.raises(CheckpointError, match="newer than this pomagan-post understands"):
        pomagan_post.load_checkpoint(path)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path, fast_model: pomagan_post.Pomagan) -> None:
    target = tmp_path / "sub" / "ckpt.safetensors"
    pomagan_post.save_checkpoint(fast_model, target)
    pomagan_post.save_checkpoint(fast_model, target)  # overwrite in place
    assert sorted(p.name for p in target.parent.iterdir()) == ["ckpt.safetensors"]
