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
