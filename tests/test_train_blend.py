"""``pomagan-train blend``: a fine-tuned checkpoint's weights blended with its base's."""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

import pomagan_post
from pomagan_post.checkpoint import save_checkpoint
from pomagan_post.cli import main as post_cli
from pomagan_train.cli import main as train_cli


def _checkpoint(path: Path, seed: int, variant: str = "fast", steps: int = 10, stages: tuple[str, ...] = ("seg", "alpha"),
                **overrides) -> Path:
    torch.manual_seed(seed)
    model = pomagan_post.create_model(variant, **overrides)
    recipe = {stage: {"steps_done": steps, "size": [64, 48], "batch_size": 2} for stage in stages}
    return save_checkpoint(model, path, recipe=recipe, working_size=48, description=f"seed {seed}",
                           trained=len(stages) == 2)


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
    assert info["recipe"]["seg"]["blended"]["base"] == str(base.resolve())
    assert "blended" not in info["recipe"]["alpha"]
    shown = CliRunner().invoke(post_cli, ["info", "--weights", str(out)]).output
    assert f"then blended: 0.25 x these weights + 0.75 x those of {base.resolve()} (10 steps in all)" in shown, shown
    # its mattes are those of a working model: finite, in [0, 1]
    model = pomagan_post.load_checkpoint(out)
    with torch.no_grad():
        alpha, _ = model(torch.rand(1, 3, 48, 64))
    assert torch.isfinite(alpha).all() and 0 <= float(alpha.min()) and float(alpha.max()) <= 1


def test_blend_weight_one_and_zero_give_the_two_checkpoints(tmp_path: Path) -> None:
    tuned, base = _checkpoint(tmp_path / "t.safetensors", 1, steps=30), _checkpoint(tmp_path / "b.safetensors", 2)
    for weight, same_as in (("1", tuned), ("0", base)):
        out = tmp_path / f"w{weight}.safetensors"
        result = CliRunner().invoke(train_cli, ["blend", str(tuned), "--base", str(base), "--weight", weight,
                                                "--out", str(out)])
        assert result.exit_code == 0, result.output
        got, want = pomagan_post.load_checkpoint(out).state_dict(), pomagan_post.load_checkpoint(same_as).state_dict()
        assert all(torch.equal(got[k], want[k]) for k in got)
    # --weight 0 on one stage: that network taken whole from the base, and info says so
    out = tmp_path / "seg_of_t_alpha_of_b.safetensors"
    result = CliRunner().invoke(train_cli, ["blend", str(tuned), "--base", str(base), "--weight", "0",
                                            "--stage", "alpha", "--out", str(out)])
    assert result.exit_code == 0, result.output
    got, t, b = (pomagan_post.load_checkpoint(p).state_dict() for p in (out, tuned, base))
    assert all(torch.equal(got[k], (b if k.startswith("alpha.") else t)[k]) for k in got)
    # info's alpha line is the base's own run of that network (10 steps), not the replaced
    # network's (30); the segmentation line stays the fine-tuned's
    shown = CliRunner().invoke(post_cli, ["info", "--weights", str(out)]).output
    assert (f"alpha stage: 10 steps at 64x48, batch 2, perceptual loss ?, adversarial loss ?, the network "
            f"taken whole from {base.resolve()}") in shown, shown
    assert "seg stage: 30 steps at 64x48" in shown and "blended: 0 x" not in shown
    info = pomagan_post.read_checkpoint_info(out)
    assert pomagan_post.checkpoint.stage_steps(info["recipe"], "alpha") == 10
    assert pomagan_post.checkpoint.stage_steps(info["recipe"], "seg") == 30


def test_a_blend_of_a_blend_keeps_both_in_the_record(tmp_path: Path) -> None:
    tuned, base = _checkpoint(tmp_path / "t.safetensors", 1), _checkpoint(tmp_path / "b.safetensors", 2)
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    for source, weight, out in ((tuned, "0.6", first), (first, "0.5", second)):
        result = CliRunner().invoke(train_cli, ["blend", str(source), "--base", str(base), "--weight", weight,
                                                "--stage", "alpha", "--out", str(out)])
        assert result.exit_code == 0, result.output
    a, b, c = (pomagan_post.load_checkpoint(p).state_dict() for p in (tuned, base, second))
    alpha = [k for k in c if k.startswith("alpha.") and c[k].is_floating_point()]
    assert all(torch.allclose(c[k], 0.3 * a[k] + 0.7 * b[k], atol=1e-6) for k in alpha)
    shown = CliRunner().invoke(post_cli, ["info", "--weights", str(second)]).output
    assert (f"then blended: 0.6 x these weights + 0.4 x those of {base.resolve()} (10 steps in all), "
            f"then blended: 0.5 x these weights + 0.5 x those of {base.resolve()}") in shown, shown
    result = CliRunner().invoke(train_cli, ["blend", str(tuned), "--base", str(second), "--weight", "0.5",
                                            "--stage", "alpha", "--out", str(tmp_path / "third.safetensors")])
    shown = CliRunner().invoke(post_cli, ["info", "--weights", str(tmp_path / "third.safetensors")]).output
    assert f"those of {second.resolve()} (10 steps in all, itself a blend)" in shown, shown


def test_bad_blends_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    tuned, base = _checkpoint(tmp_path / "t.safetensors", 1), _checkpoint(tmp_path / "b.safetensors", 2)
    other = _checkpoint(tmp_path / "p.safetensors", 3, variant="paper")
    narrow = _checkpoint(tmp_path / "n.safetensors", 4, seg_res_blocks=1)
    seg_only = _checkpoint(tmp_path / "s.safetensors", 5, stages=("seg",))
    out = tmp_path / "o.safetensors"
    for args, message in (
        (["--base", str(base), "--weight", "1.5"], "--weight is the fine-tuned checkpoint's share, 0 to 1, got 1.5"),
        (["--base", str(other), "--weight", "0.5"], "is the fast variant and"),
        (["--base", str(narrow), "--weight", "0.5"], "the fast+custom variant: only checkpoints of one variant"),
        (["--base", str(seg_only), "--weight", "0.5", "--stage", "alpha"],
         "its alpha network was never trained (the recipe has no alpha stage)"),
        (["--base", str(seg_only), "--weight", "0.5"], "its alpha network was never trained"),
        (["--base", str(tmp_path / "missing.safetensors"), "--weight", "0.5"], "missing.safetensors"),
        (["--base", str(base), "--weight", "0.5", "--out", str(tuned)], "exists: blend writes a new checkpoint"),
        (["--base", str(base), "--weight", "0.5", "--out", str(tmp_path / "newdir") + "/"], "--out must name a checkpoint file"),
        (["--base", str(base), "--weight", "0.5", "--out", str(tuned / "x.safetensors")], "cannot write"),
    ):
        full = ["blend", str(tuned), *args] + ([] if "--out" in args else ["--out", str(out)])
        result = CliRunner().invoke(train_cli, full)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    deeper = _checkpoint(tmp_path / "d.safetensors", 6, seg_res_blocks=3)  # both "fast+custom"
    result = CliRunner().invoke(train_cli, ["blend", str(narrow), "--base", str(deeper), "--weight", "0.5",
                                            "--out", str(out)])
    assert result.exit_code == 2 and "are networks of different shapes" in result.output, result.output
    result = CliRunner().invoke(train_cli, ["blend", str(seg_only), "--base", str(base), "--weight", "0.5",
                                            "--out", str(out)])
    assert result.exit_code == 2 and f"{seg_only}: its alpha network was never trained" in result.output
    assert not out.exists()
