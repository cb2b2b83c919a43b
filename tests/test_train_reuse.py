"""``pomagan-train --reuse K``: each loaded batch followed by K-1 batches drawn from a buffer of
recently loaded frames (for a GPU that the data loader cannot keep busy)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import pomagan_post
from pomagan_post.cli import main as post_cli
from pomagan_train.cli import main as train_cli
from pomagan_train.data.synthetic import SyntheticPortraits
from pomagan_train.trainer import ReuseBuffer

TINY = ["--variant", "fast", "--size", "64x48", "--batch-size", "2", "--device", "cpu", "--perceptual", "off",
        "--workers", "0", "--data", "synthetic:40", "--val-data", "none", "--log-every", "1"]


def _batch(start: int, n: int) -> dict[str, torch.Tensor]:
    """Frames told apart by their values: frame i's image is i + a left-to-right ramp, its
    target a ramp the other way (so a flip shows in both)."""
    ramp = torch.linspace(0, 1, 8)
    image = torch.stack([i + ramp.expand(3, 4, 8) for i in range(start, start + n)])
    seg = torch.stack([i + ramp.flip(0).expand(1, 4, 8) for i in range(start, start + n)])
    return {"image": image, "seg": seg, "fg": torch.zeros(n, 3, 4, 8)}


def test_buffer_draws_stored_frames_flipped_with_their_targets() -> None:
    buffer = ReuseBuffer(4, ("image", "seg"), torch.device("cpu"), seed=3)
    buffer.add(_batch(0, 3))
    buffer.add(_batch(3, 3))  # 6 frames into 4 slots: frames 0 and 1 are gone
    assert buffer.filled == 4 and set(buffer.store) == {"image", "seg"}  # fg is not kept
    drawn = buffer.sample(400)
    ramp = torch.linspace(0, 1, 8)
    seen, flipped = set(), 0
    for image, seg in zip(drawn["image"], drawn["seg"]):
        index = int(image.min())
        seen.add(index)
        straight = torch.allclose(image, index + ramp.expand(3, 4, 8))
        mirrored = torch.allclose(image, index + ramp.flip(0).expand(3, 4, 8))
        assert straight or mirrored
        # the target went the same way as its image
        assert torch.allclose(seg, index + (ramp if mirrored else ramp.flip(0)).expand(1, 4, 8))
        flipped += mirrored
    assert seen == {2, 3, 4, 5}
    assert 140 < flipped < 260  # about half of them flipped


def test_buffer_draws_are_seeded() -> None:
    draws = []
    for _ in range(2):
        buffer = ReuseBuffer(8, ("image", "seg"), torch.device("cpu"), seed=5)
        buffer.add(_batch(0, 8))
        draws.append(buffer.sample(16)["image"])
    assert torch.equal(draws[0], draws[1])


def test_a_run_with_reuse_loads_one_batch_in_k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """7 steps with --reuse 3 and a 4-frame buffer: steps 1 and 2 load (draws start once the
    buffer is full), then one in three: steps 4 and 7. 4 batches of 2 frames; the recipe and
    ``info`` say so."""
    loaded = []
    render = SyntheticPortraits.__getitem__
    monkeypatch.setattr(SyntheticPortraits, "__getitem__", lambda self, i: loaded.append(i) or render(self, i))
    run = tmp_path / "run"
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(run), "--steps", "7", "--reuse", "3",
                                            "--reuse-buffer", "4"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert len(loaded) == 8
    with (run / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(1, 8))
    assert all(float(r["g_total"]) > 0 for r in rows)
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]
    assert recipe["reuse"] == 3 and recipe["reuse_buffer"] == 4
    info = CliRunner().invoke(post_cli, ["info", "--weights", str(run / "checkpoint.safetensors")])
    assert "each loaded batch followed by 2 drawn from a buffer of 4 frames" in info.output, info.output

    # Resumed at step 7 to 11: the buffer starts empty, so steps 8 and 9 load, 10 is one in
    # three, 11 draws.
    loaded.clear()
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(run), "--steps", "11", "--resume"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert len(loaded) == 6
    assert pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["meta"]["step"] == 11


@pytest.mark.parametrize("args, message", [
    (["--reuse", "0"], "reuse must be at least 1"),
    (["--reuse", "2", "--reuse-buffer", "1"], "reuse_buffer must hold a batch at least (2 frames)"),
    (["--reuse", "2", "--reuse-buffer", "100000000"],
     "the reuse buffer of 100000000 frames at 64x48 needs 4577.6 GiB and this machine has"),
    (["--reuse", "2", "--batch-size", "10000000"], "(the default, 64 batches) at 64x48 needs"),
    (["--reuse-buffer", "8"], "--reuse-buffer sizes the buffer of --reuse K"),
])
def test_bad_reuse_settings_are_named(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(tmp_path / "r"), "--steps", "1", *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "r").exists()


def test_a_resume_picks_up_the_data_where_the_loads_left_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The epoch a resumed run starts in follows the batches loaded, not the steps: 16 steps
    without reuse load 16 batches (4 epochs of 8 frames at batch 2), so a resume with --reuse 4
    goes on in epoch 4 (from the steps it would go back to epoch 1 and render the same frames
    again). A changed buffer size is recorded as a change, as --reuse is."""
    epochs = []
    set_epoch = SyntheticPortraits.set_epoch
    monkeypatch.setattr(SyntheticPortraits, "set_epoch", lambda self, e: epochs.append(e) or set_epoch(self, e))
    run = tmp_path / "run"
    args = [a if a != "synthetic:40" else "synthetic:8" for a in TINY]
    result = CliRunner().invoke(train_cli, ["seg", *args, "--out", str(run), "--steps", "16"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert torch.load(run / "train_state.pt", weights_only=True)["loaded"] == 16
    epochs.clear()
    result = CliRunner().invoke(train_cli, ["seg", *args, "--out", str(run), "--steps", "20", "--resume",
                                            "--reuse", "4", "--reuse-buffer", "4"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert epochs[0] == 4, epochs
    result = CliRunner().invoke(train_cli, ["seg", *args, "--out", str(run), "--steps", "22", "--resume",
                                            "--reuse-buffer", "6"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    changes = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]["changes"]
    assert changes == [{"step": 16, "reuse": [1, 4], "reuse_buffer": [0, 4]},
                       {"step": 20, "reuse_buffer": [4, 6]}], changes
