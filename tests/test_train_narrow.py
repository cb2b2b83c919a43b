"""``pomagan-train --narrow P``: a share of batches cut to a narrower frame (square and upright
frames, people filling the width), every array of a frame cut alike."""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

import pomagan_post
from pomagan_train import trainer
from pomagan_train.cli import main as train_cli

from .test_train_run import TINY


def _trainer(tmp_path: Path, narrow: float, size: tuple[int, int] = (320, 192)) -> trainer.StageTrainer:
    from pomagan_train.config import load_config

    cfg = load_config("seg", None, variant="fast", size=size, batch_size=4, narrow=narrow, workers=0,
                      losses={"perceptual": "off"}, val_data=None)
    model = pomagan_post.create_model("fast")
    return trainer.StageTrainer(cfg, model, torch.device("cpu"), tmp_path / "run")


def _batch(n: int = 4, h: int = 192, w: int = 320) -> dict[str, torch.Tensor]:
    """Columns numbered: image channel 0 holds each pixel's column, the matte the same plus 1000
    times the frame's index, so a cut shows where it was taken from."""
    cols = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(n, 1, h, w)
    frames = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    image = torch.cat([cols, torch.zeros(n, 2, h, w)], 1)
    return {"image": image, "seg": cols + 1000 * frames}


def test_narrow_cuts_every_array_alike_at_each_frames_own_place(tmp_path: Path) -> None:
    cut_trainer = _trainer(tmp_path, 1.0)
    widths, starts = set(), set()
    for _ in range(40):
        batch = _batch()
        out = cut_trainer._narrowed(batch)
        width = out["image"].shape[-1]
        widths.add(width)
        assert out["image"].shape == (4, 3, 192, width) and out["seg"].shape == (4, 1, 192, width)
        assert width % 16 == 0 and 96 <= width < 320  # half the height to less than the width, in strides
        for i in range(4):
            first = int(out["image"][i, 0, 0, 0])
            assert torch.equal(out["image"][i, 0, 7], torch.arange(first, first + width, dtype=torch.float32))
            assert torch.equal(out["seg"][i, 0], out["image"][i, 0] + 1000 * i)  # the matte cut where the image was
            starts.add(first)
    assert len(widths) >= 8 and len(starts) > 20  # widths 96 to 304; frames cut at many places
    kept = _trainer(tmp_path, 0.0)._narrowed(_batch())
    assert kept["image"].shape[-1] == 320


def test_narrow_trains_is_recorded_and_checked(tmp_path: Path) -> None:
    run = tmp_path / "seg"
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(run), "--steps", "2", "--narrow", "1"])
    assert result.exit_code == 0, result.output
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]
    assert recipe["narrow"] == 1.0
    from pomagan_post.cli import main as post_cli

    info = CliRunner().invoke(post_cli, ["info", "--weights", str(run / "checkpoint.safetensors")])
    assert "100% of batches cut to narrower frames" in info.output, info.output
    refused = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(tmp_path / "x"), "--steps", "1",
                                             "--narrow", "1.5"])
    assert refused.exit_code == 2 and "narrow must be a share between 0 and 1, got 1.5" in refused.output
    refused = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(tmp_path / "y"), "--steps", "1",
                                             "--size", "32x64", "--narrow", "0.5"])
    assert refused.exit_code == 2 and "narrow: a 32x64 frame has no narrower width" in refused.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
