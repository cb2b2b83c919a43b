"""``pomagan-train blend``: a fine-tuned checkpoint's weights blended with its base's."""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

import pomagan_post
from pomagan_post.checkpoint import save_checkpoint
from pomagan_post.cli import main as post_cli
from pomagan_train.cli import main as train_cli


def _checkpoint(path: Path, seed: int, variant: str = "fast", steps: int = 10) -> Path:
    torch.manual_seed(seed)
    model = pomagan_post.create_model(variant)
    recipe = {"seg": {"steps_done": steps, "size": [64, 48], "batch_size": 2},
              "alpha": {"steps_done": steps, "size": [64, 48], "batch_size": 2}}
    return save_checkpoint(model, path, recipe=recipe, working_size=48, description=f"seed {seed}")


def test_blend_mixes_the_chosen_network_and_records_it(tmp_path: Path) -> None:
    tuned, base = _checkpoint(tmp_path / "tuned.safetensors", 1, steps=30), _checkpoint(tmp_path / "base.safetensors", 2)
    out = tmp_path / "blend.safetensors"
    result = CliRunner().invoke(train_cli, ["blend", str(tuned), "--base", str(base), "--weight", "0.25",
                                            "--stage", "seg", "--out", str(out)])
    assert result.exit_code == 0, result.output
    a, b, c = (pomagan_post.load_checkpoint(p).state_dict() for p in (tuned, base, out))
    seg = [k for k in c if k.startswith("segmentation.") and c[k].is_floating_point()]
    assert seg and all(torch.allclose(c[k], 0.25 * a[k] + 0.75 * b[k], atol=1e-6) for k in seg)
    assert all(torch.equal(c[k], a[k]) for k in c if not k.startswith("segmentation."))  # alpha: the fine-tuned's
    info = pomagan_post.read_checkpoint_info(out)
    assert info["recipe"]["seg"]["blended"]["weight"] == 0.25
    assert info["recipe"]["seg"]["blended"]["base"] == "base.safetensors"
    assert "blended" not in info["recipe"]["alpha"]
    shown = CliRunner().invoke(post_cli, ["info", "--weights", str(out)]).output
    assert "then blended: 0.25 x these weights + 0.75 x those of base.safetensors (10 steps)" in shown, shown
    # its mattes are those of a working model: finite, in [0, 1]
    model = pomagan_post.load_checkpoint(out)
    with torch.no_grad():
        alpha, _ = model(torch.rand(1, 3, 48, 64))
    assert torch.isfinite(alpha).all() and 0 <= float(alpha.min()) and float(alpha.max()) <= 1


def test_blend_weight_one_and_zero_give_the_two_checkpoints(tmp_path: Path) -> None:
    tuned, base = _checkpoint(tmp_path / "t.safetensors", 1), _checkpoint(tmp_path / "b.safetensors", 2)
    for weight, same_as in (("1", tuned), ("0", base)):
        out = tmp_path / f"w{weight}.safetensors"
        result = CliRunner().invoke(train_cli, ["blend", str(tuned), "--base", str(base), "--weight", weight,
                                                "--out", str(out)])
        assert result.exit_code == 0, result.output
        got, want = pomagan_post.load_checkpoint(out).state_dict(), pomagan_post.load_checkpoint(same_as).state_dict()
        assert all(torch.equal(got[k], want[k]) for k in got)


def test_bad_blends_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    tuned, base = _checkpoint(tmp_path / "t.safetensors", 1), _checkpoint(tmp_path / "b.safetensors", 2)
    other = _checkpoint(tmp_path / "p.safetensors", 3, variant="paper")
    out = tmp_path / "o.safetensors"
    for args, message in (
        (["--base", str(base), "--weight", "1.5"], "--weight is the fine-tuned checkpoint's share, 0 to 1, got 1.5"),
        (["--base", str(other), "--weight", "0.5"], "is the fast variant and"),
        (["--base", str(tmp_path / "missing.safetensors"), "--weight", "0.5"], "missing.safetensors"),
        (["--base", str(base), "--weight", "0.5", "--out", str(tuned)], "exists: blend writes a new checkpoint"),
    ):
        full = ["blend", str(tuned), *args] + ([] if "--out" in args else ["--out", str(out)])
        result = CliRunner().invoke(train_cli, full)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not out.exists()
