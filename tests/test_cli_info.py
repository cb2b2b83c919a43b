"""`pomagan-post info` and the CLI's error handling."""

from __future__ import annotations

from pathlib import Path

import pomagan_post
from click.testing import CliRunner

from pomagan_post.cli import main


def test_info_describes_versions_variants_and_checkpoint() -> None:
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, result.output
    assert f"pomagan-post {pomagan_post.__version__}" in result.output
    assert "torch " in result.output
    for name in pomagan_post.list_models():
        assert f"  {name} " in result.output
    info = pomagan_post.read_checkpoint_info(None)
    assert f"variant: {info['variant']}" in result.output
    if not info["trained"]:
        assert "UNTRAINED PLACEHOLDER" in result.output


def test_every_command_reports_its_version() -> None:
    from ffmpeg_filters.cli import main as ffmpeg_main
    from pomagan_train.cli import main as train_main

    for command, name in ((main, "pomagan-post"), (train_main, "pomagan-train"), (ffmpeg_main, "pomagan-ffmpeg")):
        result = CliRunner().invoke(command, ["--version"])
        assert result.exit_code == 0 and result.output == f"{name}, version {pomagan_post.__version__}\n"


def test_info_stats_prints_the_counted_sizes() -> None:
    result = CliRunner().invoke(main, ["info", "--stats"])
    assert result.exit_code == 0, result.output
    assert "101.60 M params, 1839.0 GFLOPs at 1280x768" in result.output
    assert "4.00 M params, 109.5 GFLOPs at 1280x768" in result.output


def test_info_with_a_missing_checkpoint_is_one_line_and_exit_5(tmp_path: Path) -> None:
    missing = tmp_path / "missing.safetensors"
    result = CliRunner().invoke(main, ["info", "--weights", str(missing)])
    assert result.exit_code == 5
    assert result.output.strip().endswith(f"pomagan-post: error: checkpoint not found: {missing}")
    assert "Traceback" not in result.output


def test_info_with_a_corrupt_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    result = CliRunner().invoke(main, ["info"], env={"POMAGAN_WEIGHTS": str(bad)})
    assert result.exit_code == 5
    assert "is not a POMAGAN checkpoint" in result.output


def test_info_refuses_weights_that_went_nan_and_says_so(tmp_path: Path) -> None:
    """A diverged run's checkpoint (NaN weights) would matte every frame empty: info shows it
    as unusable and exits 5, and render and load_checkpoint refuse it."""
    import math

    import cv2
    import numpy as np
    import pytest
    import torch

    from pomagan_post.errors import CheckpointError

    model = pomagan_post.create_model("fast")
    with torch.no_grad():
        model.alpha.head.weight[0, 0, 0, 0] = math.nan
    bad = pomagan_post.save_checkpoint(model, tmp_path / "nan.safetensors", description="diverged")
    result = CliRunner().invoke(main, ["info", "--weights", str(bad)])
    assert result.exit_code == 5
    assert "status: UNUSABLE (below)" in result.output and "description: diverged" in result.output
    assert result.output.strip().splitlines()[-1] == (
        f"pomagan-post: error: {bad} holds NaN or infinite weights (1 of {len(model.state_dict())} tensors, "
        f"e.g. alpha.head.weight): the training run that wrote it diverged; use an earlier checkpoint")
    with pytest.raises(CheckpointError, match="NaN or infinite weights"):
        pomagan_post.load_checkpoint(bad)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((32, 32, 3), 90, np.uint8))
    result = CliRunner().invoke(main, ["render", str(still), "-o", str(tmp_path / "out"), "--weights", str(bad)])
    assert result.exit_code == 5 and "NaN or infinite weights" in result.output
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
