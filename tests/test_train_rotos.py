"""``pomagan-train alpha --roto-rate``: roto-like shapes drawn from true segmentations
(``pomagan_train.rotos.hand_drawn``) fed to the alpha network in place of the segmentation
network's output for a share of the frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from click.testing import CliRunner

import pomagan_post
from pomagan_train import trainer
from pomagan_train.cli import main as train_cli
from pomagan_train.rotos import MAX_GROW, MAX_SHIFT, hand_drawn

from .test_train_run import TINY


def _people(n: int = 24, h: int = 96, w: int = 128) -> torch.Tensor:
    """Shapes like a person's: a head and shoulders running off the frame's bottom edge."""
    rng = np.random.default_rng(3)
    out = np.zeros((n, 1, h, w), np.float32)
    for i in range(n):
        cx = int(rng.integers(40, 88))
        cv2.ellipse(out[i, 0], (cx, 30), (14, 18), 0, 0, 360, 1.0, -1)
        cv2.rectangle(out[i, 0], (cx - 30 - i % 5, 52), (cx + 30, h - 1), 1.0, -1)
        cv2.rectangle(out[i, 0], (cx - 6, 40), (cx + 6, 56), 1.0, -1)
    return torch.from_numpy(out)


def test_hand_drawn_rotos_move_the_edge_a_few_pixels_and_nothing_else() -> None:
    """Hard shapes of the batch's size; each differs from the true one only near its edge (no
    specks far from it, the part at the frame's edge kept there); some drawn outside the edge,
    some inside; a seeded generator draws the same shapes again."""
    true = _people()
    drawn = hand_drawn(true, torch.Generator().manual_seed(7))
    again = hand_drawn(true, torch.Generator().manual_seed(7))
    assert drawn.shape == true.shape and set(drawn.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(drawn, again)
    reach = MAX_GROW + MAX_SHIFT + 5  # (+ the smoothing and wavering of the edge)
    grown, shrunk = 0, 0
    for t, d in zip(true[:, 0].numpy(), drawn[:, 0].numpy()):
        inside = cv2.distanceTransform(t.astype(np.uint8), cv2.DIST_L2, 5)
        outside = cv2.distanceTransform((1 - t).astype(np.uint8), cv2.DIST_L2, 5)
        far = (inside > reach) | (outside > reach)
        assert np.array_equal(d[far], t[far])
        assert (d != t).any()
        assert d[-1].sum() >= t[-1].sum() - 2 * (MAX_GROW + MAX_SHIFT) - 2  # the bottom edge stays covered
        grown += d.sum() > t.sum()
        shrunk += d.sum() < t.sum()
    assert grown >= 3 and shrunk >= 3


def test_roto_rate_feeds_rotos_to_the_alpha_stage_and_is_recorded(tmp_path: Path, monkeypatch) -> None:
    """--roto-rate 1: every frame's segmentation input is a roto drawn from its true matte (the
    real hand_drawn, watched); the recipe records the share and info says it; 0 draws none; the
    segmentation stage refuses it."""
    drawn: list[int] = []
    real = trainer.hand_drawn

    def watched(seg: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        drawn.append(seg.shape[0])
        return real(seg, generator)

    monkeypatch.setattr(trainer, "hand_drawn", watched)
    seg_run = tmp_path / "seg"
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(seg_run), "--steps", "1"])
    assert result.exit_code == 0, result.output
    weights = str(seg_run / "checkpoint.safetensors")
    run = tmp_path / "alpha"
    result = CliRunner().invoke(train_cli, ["alpha", *TINY, "--out", str(run), "--steps", "2",
                                            "--seg-weights", weights, "--roto-rate", "1"])
    assert result.exit_code == 0, result.output
    assert drawn == [2, 2]  # both frames of both steps' batches
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["alpha"]
    assert recipe["roto_rate"] == 1.0
    from pomagan_post.cli import main as post_cli

    info = CliRunner().invoke(post_cli, ["info", "--weights", str(run / "checkpoint.safetensors")])
    assert "100% of frames fed a roto drawn from the true matte" in info.output, info.output
    drawn.clear()
    result = CliRunner().invoke(train_cli, ["alpha", *TINY, "--out", str(tmp_path / "none"), "--steps", "1",
                                            "--seg-weights", weights])
    assert result.exit_code == 0 and drawn == []
    refused = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(tmp_path / "x"), "--steps", "1",
                                             "--roto-rate", "0.5"])
    assert refused.exit_code == 2 and "roto_rate is for the alpha stage" in refused.output
    assert not (tmp_path / "x").exists()
    refused = CliRunner().invoke(train_cli, ["alpha", *TINY, "--out", str(tmp_path / "y"), "--steps", "1",
                                             "--seg-weights", weights, "--roto-rate", "1.5"])
    assert refused.exit_code == 2 and "roto_rate must be a share between 0 and 1, got 1.5" in refused.output

