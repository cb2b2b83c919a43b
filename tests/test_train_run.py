"""Few-step CPU training runs of both stages: checkpoints, resume, DDP, render with the result."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import pomagan_post
from pomagan_train.cli import main as train_cli

TINY = [
    "--variant", "fast", "--size", "64x48", "--batch-size", "2", "--device", "cpu",
    "--perceptual", "off", "--workers", "0", "--data", "synthetic:4", "--val-data", "synthetic:2",
    "--log-every", "1", "--val-every", "2",
]


def _log_steps(run: Path) -> list[int]:
    with (run / "log.csv").open() as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def _train(args: list[str]) -> None:
    result = CliRunner().invoke(train_cli, args)
    assert result.exit_code == 0, result.output + repr(result.exception)


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("seg")
    _train(["seg", *TINY, "--out", str(run), "--steps", "2"])
    return run


def test_seg_stage_writes_an_inference_checkpoint(seg_run: Path) -> None:
    info = pomagan_post.read_checkpoint_info(seg_run / "checkpoint.safetensors")
    assert info["variant"] == "fast" and info["trained"] is False  # alpha not trained yet
    assert info["meta"] == {"step": 2, "stage": "seg"}
    assert info["recipe"]["seg"]["losses"]["perceptual"] == "off"  # the opt-out is recorded
    assert info["recipe"]["seg"]["steps_done"] == 2
    assert (seg_run / "train_state.pt").is_file() and (seg_run / "config.yaml").is_file()
    assert _log_steps(seg_run) == [1, 2]


def test_resume_continues_from_the_saved_step(seg_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "resumed"
    import shutil

    shutil.copytree(seg_run, run)
    before = pomagan_post.load_checkpoint(run / "checkpoint.safetensors").state_dict()
    with (run / "log.csv").open("a") as handle:  # a step logged after the last save, then killed
        handle.write("3,0.5,0.5,0.5,1.0,,\n")
    _train(["seg", "--out", str(run), "--resume", "--steps", "4", "--device", "cpu", "--lr-g", "2.5e-5"])
    assert _log_steps(run) == [1, 2, 3, 4]
    import torch

    state = torch.load(run / "train_state.pt", weights_only=True)
    assert [g["lr"] for g in state["opt_g"]["param_groups"]] == [2.5e-5]  # a new rate given on resume is used
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]
    assert recipe["lr_g"] == 2.5e-5
    assert recipe["changes"] == [{"step": 2, "lr_g": [1e-4, 2.5e-5]}]  # which steps ran at which rate
    _train(["seg", "--out", str(run), "--resume", "--steps", "5", "--device", "cpu"])  # nothing changed
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]
    assert recipe["changes"] == [{"step": 2, "lr_g": [1e-4, 2.5e-5]}] and recipe["steps_done"] == 5
    from pomagan_post.cli import main as post_cli

    result = CliRunner().invoke(post_cli, ["info", "--weights", str(run / "checkpoint.safetensors")])
    assert "seg stage: 5 steps at 64x48" in result.output and "from step 2: lr_g 0.0001 -> 2.5e-05" in result.output
    after = pomagan_post.load_checkpoint(run / "checkpoint.safetensors")
    assert after.checkpoint_info["meta"]["step"] == 5
    changed = [k for k, v in after.state_dict().items() if k.startswith("segmentation.") and not (v == before[k]).all()]
    assert changed, "resumed training did not update the segmentation network"
    unchanged_alpha = all((v == before[k]).all() for k, v in after.state_dict().items() if k.startswith("alpha."))
    assert unchanged_alpha


def test_alpha_stage_then_render_with_the_checkpoint(seg_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "alpha"
    _train(["alpha", *TINY, "--out", str(run), "--steps", "2", "--seg-weights", str(seg_run / "checkpoint.safetensors")])
    ckpt = run / "checkpoint.safetensors"
    model = pomagan_post.load_checkpoint(ckpt)
    info = model.checkpoint_info
    assert info["trained"] is True and set(info["recipe"]) == {"seg", "alpha"}
    seg_model = pomagan_post.load_checkpoint(seg_run / "checkpoint.safetensors")
    # The segmentation network was frozen in the alpha stage.
    for key, value in seg_model.state_dict().items():
        if key.startswith("segmentation."):
            assert (model.state_dict()[key] == value).all(), key

    import numpy as np

    from pomagan_post.cli import main as post_cli

    image = tmp_path / "still.png"
    import cv2

    rng = np.random.default_rng(0)
    cv2.imwrite(str(image), (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    result = CliRunner().invoke(post_cli, ["render", str(image), "--weights", str(ckpt), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    outputs = sorted(p.name for p in (tmp_path / "still_pomagan").iterdir())
    assert any("alpha" in name for name in outputs) and any("fg" in name for name in outputs)


def test_eval_prints_and_writes_the_table_with_baselines(seg_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(train_cli, [
        "eval", "--weights", str(seg_run / "checkpoint.safetensors"), "--data", "synth=synthetic:3",
        "--size", "64x48", "--device", "cpu", "--baselines", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "| Test set | MSE (x1e3) | MAE (x1e3) | SAD (/1e3) | Grad | Conn |" in result.output
    with (out / "results.csv").open() as handle:
        rows = {row["test_set"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"synth", "synth (zero alpha)", "synth (thresholded seg)", "synth (alpha stage on true seg)"}
    assert all(int(row["n"]) == 3 for row in rows.values())
    # All-zero alpha: MSE equals the mean of alpha*^2, positive on portraits.
    assert float(rows["synth (zero alpha)"]["mse_x1e3"]) > 0
    with (out / "items.csv").open() as handle:
        items = list(csv.DictReader(handle))
    assert len(items) == 12 and {r["index"] for r in items} == {"0", "1", "2"}
    model_items = [float(r["mse_x1e3"]) for r in items if r["test_set"] == "synth"]
    assert sum(model_items) / 3 == pytest.approx(float(rows["synth"]["mse_x1e3"]))
    assert "worst items by MSE" in result.output
    # A seg-only checkpoint scores an untrained alpha network: said, as render and export say it.
    assert "warning: the checkpoint is partly trained (stages trained: seg;" in result.output
    # Every set is opened before the first is scored: a typo in the last fails at once.
    late = CliRunner().invoke(train_cli, ["eval", "--weights", str(seg_run / "checkpoint.safetensors"),
                                          "--data", "synthetic:2", "--data", str(tmp_path / "nope"),
                                          "--size", "64x48", "--device", "cpu"])
    assert late.exit_code == 2 and "| Test set |" not in late.output and "nope" in late.output


def test_max_minutes_stops_and_saves_early(tmp_path: Path) -> None:
    run = tmp_path / "timed"
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(run), "--steps", "50", "--max-minutes",
                                            "0.00001", "--val-data", "none"])
    assert result.exit_code == 0, result.output
    assert _log_steps(run) == [1]
    assert pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["meta"]["step"] == 1
    assert (f"pomagan-train: stopped after --max-minutes 1e-05 at step 1 of 50; saved {run / 'checkpoint.safetensors'} "
            f"(continue with --resume --out {run})") in result.output


def test_alpha_stage_needs_seg_weights(tmp_path: Path) -> None:
    result = CliRunner().invoke(train_cli, ["alpha", *TINY, "--out", str(tmp_path / "x"), "--steps", "1"])
    assert result.exit_code == 2 and "the alpha stage needs --seg-weights" in result.output


def test_alpha_resume_keeps_the_runs_segmentation(seg_run: Path, tmp_path: Path) -> None:
    """--resume needs no --seg-weights (the run's checkpoint holds the segmentation network it
    trains against) and refuses another one rather than ignoring it."""
    run = tmp_path / "alpha"
    _train(["alpha", *TINY, "--out", str(run), "--steps", "1", "--seg-weights", str(seg_run / "checkpoint.safetensors")])
    _train(["alpha", "--out", str(run), "--resume", "--steps", "2", "--device", "cpu"])
    resumed = pomagan_post.load_checkpoint(run / "checkpoint.safetensors")
    assert resumed.checkpoint_info["meta"]["step"] == 2
    seg = pomagan_post.load_checkpoint(seg_run / "checkpoint.safetensors").state_dict()
    assert all((v == seg[k]).all() for k, v in resumed.state_dict().items() if k.startswith("segmentation."))
    other = CliRunner().invoke(train_cli, ["alpha", "--out", str(run), "--resume", "--steps", "3", "--device", "cpu",
                                           "--seg-weights", "default"])
    assert other.exit_code == 2 and "--resume continues against the segmentation network saved in the run" in other.output
    assert pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["meta"]["step"] == 2


def test_variant_mismatch_is_a_clear_error(seg_run: Path, tmp_path: Path) -> None:
    args = [*TINY, "--out", str(tmp_path / "x"), "--steps", "1", "--seg-weights", str(seg_run / "checkpoint.safetensors")]
    args[args.index("fast")] = "paper"
    result = CliRunner().invoke(train_cli, ["alpha", *args])
    assert result.exit_code == 5
    assert "holds variant 'fast' but the config trains 'paper'; pass --variant fast" in result.output


def test_missing_vgg_weights_stop_before_training(tmp_path: Path) -> None:
    args = [a for a in TINY if a not in ("--perceptual", "off")]
    missing = tmp_path / "vgg19.pth"
    result = CliRunner().invoke(train_cli, ["seg", *args, "--out", str(tmp_path / "x"), "--steps", "1",
                                            "--vgg-weights", str(missing)])
    assert result.exit_code == 5
    assert f"VGG-19 weights for the perceptual loss not found: {missing}" in result.output


def test_two_process_ddp_on_cpu(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "pomagan_train.cli", "seg", *TINY, "--out", str(run), "--steps", "2", "--val-data", "none",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")
    assert info["meta"]["step"] == 2
    assert _log_steps(run) == [1, 2]
    assert proc.stderr.count("checkpoint: ") == 1  # said once, by rank 0
    # The recipe holds the processes (the batch is per process); a resume on one is a change.
    assert info["recipe"]["seg"]["processes"] == 2
    _train(["seg", "--out", str(run), "--resume", "--steps", "3", "--device", "cpu"])
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]
    assert recipe["processes"] == 1 and recipe["changes"] == [{"step": 2, "processes": [2, 1]}]
    from pomagan_post.cli import main as post_cli

    shown = CliRunner().invoke(post_cli, ["info", "--weights", str(run / "checkpoint.safetensors")])
    assert "from step 2: processes 2 -> 1" in shown.output


def test_sigterm_to_a_two_process_ddp_run_stops_every_rank_at_one_step(tmp_path: Path) -> None:
    """A scheduler's SIGTERM to the whole torchrun job (launcher and both ranks): each rank
    finishes the same step (one all-reduce decides), rank 0 saves, and the run resumes."""
    import re
    import signal
    import time

    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pomagan_train.cli", "seg", *TINY, "--out", str(run), "--steps", "100000",
           "--save-every", "100000", "--val-data", "none"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 180
    while not ((run / "log.csv").is_file() and len(_log_steps(run)) >= 3) and time.time() < deadline \
            and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    # rank 0 says where it saved; rank 1 only that it stopped, at the same step (it saved nothing)
    saved = [int(n) for n in re.findall(r"pomagan-train: stopped: SIGTERM at step (\d+); saved", err)]
    other = [int(n) for n in re.findall(r"pomagan-train: stopped: rank 1: SIGTERM at step (\d+)\n", err)]
    assert len(saved) == 1 and other == saved, err[-3000:]
    step = saved[0]
    assert pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["meta"]["step"] == step
    assert _log_steps(run)[-1] == step
    _train(["seg", "--out", str(run), "--resume", "--steps", str(step + 1), "--device", "cpu"])
    assert pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["meta"]["step"] == step + 1


def test_fine_tuning_keeps_the_earlier_runs_in_the_recipe(seg_run: Path, tmp_path: Path) -> None:
    """--init: the starting weights' runs stay in the recipe's history and `info` adds them up;
    --resume continues the same run (no new history entry); --extra-people, --props and
    --closeups and --mono are recorded."""
    from pomagan_post.cli import main as post_cli

    alpha = tmp_path / "alpha"
    _train(["alpha", *TINY, "--out", str(alpha), "--steps", "2", "--seg-weights", str(seg_run / "checkpoint.safetensors")])
    tuned = tmp_path / "tuned"
    _train(["seg", *TINY, "--out", str(tuned), "--steps", "3", "--init", str(alpha / "checkpoint.safetensors"),
            "--extra-people", "0.5,0.2", "--props", "0.5", "--closeups", "0.25", "--mono", "0.2"])
    recipe = pomagan_post.read_checkpoint_info(tuned / "checkpoint.safetensors")["recipe"]
    assert recipe["seg"]["steps_done"] == 3 and recipe["seg"]["extra_people"] == [0.5, 0.2]
    assert recipe["seg"]["props"] == 0.5 and recipe["seg"]["closeups"] == 0.25 and recipe["seg"]["mono"] == 0.2
    assert [(r["stage"], r["steps_done"]) for r in recipe["history"]] == [("seg", 2)]
    assert recipe["alpha"]["steps_done"] == 2  # the alpha network is still the earlier run's
    _train(["seg", "--out", str(tuned), "--resume", "--steps", "4", "--device", "cpu"])
    recipe = pomagan_post.read_checkpoint_info(tuned / "checkpoint.safetensors")["recipe"]
    assert recipe["seg"]["steps_done"] == 4 and [r["steps_done"] for r in recipe["history"]] == [2]
    result = CliRunner().invoke(post_cli, ["info", "--weights", str(tuned / "checkpoint.safetensors")])
    assert result.exit_code == 0, result.output
    assert "seg stage: 4 steps at 64x48, batch 2" in result.output
    assert "50% of synthetic frames with background objects touching the people" in result.output
    assert "25% of synthetic frames framed as close-ups" in result.output
    assert "20% of synthetic frames monochrome" in result.output
    assert "fine-tuned from earlier runs (2 at 64x48, batch 2): 6 steps in all" in result.output
    bad = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(tmp_path / "bad"), "--extra-people", "0.5"])
    assert bad.exit_code != 0 and "extra_people" in bad.output


def _stage_weights(path: Path, prefix: str = "segmentation.") -> dict[str, "torch.Tensor"]:
    state = pomagan_post.load_checkpoint(path).state_dict()
    return {k[len(prefix):]: v.float() for k, v in state.items() if k.startswith(prefix)}


def test_ema_checkpoint_holds_the_average_and_resume_continues_it(seg_run: Path, tmp_path: Path) -> None:
    """--ema D with --init: after one step the checkpoint holds D * start + (1 - D) * trained
    weights, train_state.pt the trained ones; a resumed step averages on from there."""
    import torch

    decay = 0.75
    run = tmp_path / "ema"
    start = _stage_weights(seg_run / "checkpoint.safetensors")
    _train(["seg", *TINY, "--out", str(run), "--steps", "1", "--init", str(seg_run / "checkpoint.safetensors"),
            "--ema", str(decay), "--lr-g", "1e-3", "--adversarial", "off", "--val-data", "none"])
    averaged = _stage_weights(run / "checkpoint.safetensors")
    raw = torch.load(run / "train_state.pt", weights_only=True)["net"]
    moved = [k for k in raw if raw[k].is_floating_point() and not torch.equal(raw[k], start[k])]
    assert len(moved) > len(raw) // 2  # the step changed the weights (lr 1e-3)
    for key in moved:
        torch.testing.assert_close(averaged[key], decay * start[key] + (1 - decay) * raw[key], atol=1e-6, rtol=1e-5)
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]
    assert recipe["ema"] == decay and recipe["lr_g"] == 1e-3

    _train(["seg", "--out", str(run), "--resume", "--steps", "2", "--device", "cpu"])
    raw2 = torch.load(run / "train_state.pt", weights_only=True)["net"]
    averaged2 = _stage_weights(run / "checkpoint.safetensors")
    for key in moved:
        torch.testing.assert_close(averaged2[key], decay * averaged[key] + (1 - decay) * raw2[key], atol=1e-6, rtol=1e-5)
    from pomagan_post.cli import main as post_cli

    result = CliRunner().invoke(post_cli, ["info", "--weights", str(run / "checkpoint.safetensors")])
    assert result.exit_code == 0, result.output
    assert ("seg stage: 2 steps at 64x48, batch 2, perceptual loss off, adversarial loss off, weights averaged "
            "(EMA 0.75), precision auto") in result.output


def test_bad_ema_and_learning_rate_are_clear_errors(tmp_path: Path) -> None:
    for args, message in ((["--ema", "1.5"], "ema must be a decay between 0 and 1"),
                          (["--lr-g", "0"], "lr_g must be positive")):
        result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(tmp_path / "x"), "--steps", "1", *args])
        assert result.exit_code != 0 and message in result.output, result.output


def test_bce_term_is_weighted_logged_and_recorded(tmp_path: Path) -> None:
    run = tmp_path / "bce"
    _train(["seg", *TINY, "--out", str(run), "--steps", "2", "--adversarial", "off", "--bce", "2.5"])
    info = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")
    assert info["recipe"]["seg"]["losses"]["bce"] == 2.5
    with (run / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:  # the total is beta x L_seg + gamma x L_border + 2.5 x cross-entropy
        seg, border, bce = (float(row[k]) for k in ("g_seg", "g_border", "g_bce"))
        assert bce > 0
        assert float(row["g_total"]) == pytest.approx(10 * seg + 10 * border + 2.5 * bce, rel=1e-4)
    from pomagan_post.cli import main as post_cli

    result = CliRunner().invoke(post_cli, ["info", "--weights", str(run / "checkpoint.safetensors")])
    assert "adversarial loss off, cross-entropy term (weight 2.5)" in result.output, result.output
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(tmp_path / "x"), "--steps", "1", "--bce", "-1"])
    assert result.exit_code != 0 and "losses.bce must be a weight >= 0" in result.output, result.output


def test_resuming_a_run_from_before_a_loss_setting_existed_records_no_change(seg_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "old"
    shutil.copytree(seg_run, run)
    model = pomagan_post.load_checkpoint(run / "checkpoint.safetensors")
    info = model.checkpoint_info
    del info["recipe"]["seg"]["losses"]["bce"]  # as written before --bce was added
    pomagan_post.save_checkpoint(model, run / "checkpoint.safetensors", trained=False,
                                 recipe=info["recipe"], training_data=info["training_data"], **info["meta"])
    _train(["seg", "--out", str(run), "--resume", "--steps", "3", "--device", "cpu"])
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]
    assert recipe["steps_done"] == 3 and "changes" not in recipe
    _train(["seg", "--out", str(run), "--resume", "--steps", "4", "--device", "cpu", "--bce", "1"])
    recipe = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["recipe"]["seg"]
    assert [c["step"] for c in recipe["changes"]] == [3] and recipe["changes"][0]["losses"][1]["bce"] == 1.0


def test_best_checkpoint_follows_the_lowest_validation_and_survives_resume(tmp_path: Path) -> None:
    import torch

    run = tmp_path / "best"
    _train(["seg", *TINY, "--out", str(run), "--steps", "4", "--val-every", "1", "--lr-g", "3e-3",
            "--adversarial", "off"])
    with (run / "log.csv").open() as handle:
        vals = {int(r["step"]): float(r["val_mse_x1e3"]) for r in csv.DictReader(handle) if r["val_mse_x1e3"]}
    assert sorted(vals) == [1, 2, 3, 4]
    best_step = min(vals, key=vals.get)
    info = pomagan_post.read_checkpoint_info(run / "best.safetensors")
    assert info["meta"]["step"] == best_step and info["meta"]["stage"] == "seg"
    assert abs(info["meta"]["val_mse_x1e3"] - vals[best_step]) < 1e-3 * max(vals[best_step], 1)
    state = torch.load(run / "train_state.pt", weights_only=True)
    assert state["best"][1] == best_step
    before = (run / "best.safetensors").read_bytes()
    # Resumed at a rate too small to move float32 weights (and no averaging), validation repeats
    # step 4's value exactly, which is no improvement: the best file stays as it was.
    _train(["seg", "--out", str(run), "--resume", "--steps", "6", "--device", "cpu", "--lr-g", "1e-30"])
    with (run / "log.csv").open() as handle:
        after = {int(r["step"]): float(r["val_mse_x1e3"]) for r in csv.DictReader(handle) if r["val_mse_x1e3"]}
    assert after[5] == after[6] == vals[4]
    assert (run / "best.safetensors").read_bytes() == before
    assert torch.load(run / "train_state.pt", weights_only=True)["best"][1] == best_step
    # Killed outright between a better validation (best.safetensors written) and the next save
    # (train_state.pt still naming an earlier, worse best): the resume keeps the file's.
    state = torch.load(run / "train_state.pt", weights_only=True)
    state["best"] = [max(vals.values()) + 1.0, 1]
    torch.save(state, run / "train_state.pt")
    _train(["seg", "--out", str(run), "--resume", "--steps", "7", "--device", "cpu", "--lr-g", "1e-30"])
    assert (run / "best.safetensors").read_bytes() == before
    assert torch.load(run / "train_state.pt", weights_only=True)["best"][1] == best_step


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_saves_the_step_and_stops_with_a_resumable_run(tmp_path: Path, sig: str) -> None:
    """Ctrl-C or a scheduler's SIGTERM mid-run: the step finishes, the checkpoint and state are
    saved at that step, the exit code is 128 + the signal, and --resume continues from there."""
    import signal
    import time

    run = tmp_path / "sig"
    args = [sys.executable, "-m", "pomagan_train.cli", "seg", *TINY, "--out", str(run), "--steps", "100000",
            "--save-every", "100000", "--val-data", "none", "--workers", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = run / "log.csv"
    deadline = time.time() + 120
    while not (log.is_file() and len(_log_steps(run)) >= 3) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, sig), err
    step = pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["meta"]["step"]
    assert step >= 3 and f"pomagan-train: stopped: {sig} at step {step}; saved" in err
    assert "--resume" in err and "error" not in err  # a deliberate stop, not reported as an error
    assert _log_steps(run)[-1] == step  # every step up to the saved one is in the log, none after
    _train(["seg", "--out", str(run), "--resume", "--steps", str(step + 1), "--device", "cpu"])
    assert _log_steps(run)[-1] == step + 1


def test_a_second_ctrl_c_aborts_without_saving_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C twice: the run stops at once, one line (not click's "Aborted!", exit 1), exit 130,
    and the run folder is as its last save left it."""
    import signal
    import time

    run = tmp_path / "sig"
    args = [sys.executable, "-m", "pomagan_train.cli", "seg", *TINY, "--out", str(run), "--steps", "100000",
            "--save-every", "3", "--val-data", "none", "--workers", "1", "--size", "256x192", "--batch-size", "8"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (run / "train_state.pt").is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    saved = torch_step(run)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)  # the first is handled (two at once are one to Python), the step goes on: batch 8
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Aborted!" not in err and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("pomagan-train: stopped: aborted by a second Ctrl-C at step "), last
    assert torch_step(run) == saved and f"the last save, step {saved}, is in {run}" in last


def test_resume_of_a_folder_without_a_run_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(train_cli, ["seg", "--out", str(tmp_path / "typo"), "--resume", "--device", "cpu"])
    assert result.exit_code == 2 and "nothing to resume" in result.output and "train_state.pt" in result.output
    assert not (tmp_path / "typo").exists()  # nothing created


def _studio(root: Path, n: int = 6, size: tuple[int, int] = (64, 48)) -> Path:
    """A studio's paired set: ``plates/`` and ``mattes/`` with matching stems (a disc person)."""
    import cv2
    import numpy as np

    w, h = size
    (root / "plates").mkdir(parents=True)
    (root / "mattes").mkdir(parents=True)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        rng = np.random.default_rng(i)
        plate = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        matte = np.where((xx - w * 0.5) ** 2 + (yy - h * 0.5) ** 2 < (h * 0.3) ** 2, 255, 0).astype(np.uint8)
        cv2.imwrite(str(root / "plates" / f"sh010_{1001 + i}.png"), plate)
        cv2.imwrite(str(root / "mattes" / f"sh010_{1001 + i}.png"), matte)
    return root


def test_studio_pairs_and_synthetic_portraits_train_together(tmp_path: Path) -> None:
    """The documented fine-tune mixes a paired set (no fg/bg) with synthetic portraits (fg/bg)
    in one batch; on worker processes, as by default."""
    studio = _studio(tmp_path / "mystudio")
    run = tmp_path / "mix"
    args = [f"paired:{studio}" if a == "synthetic:4" else a for a in TINY]
    _train(["seg", *args, "--data", "synthetic:4", "--out", str(run), "--steps", "3", "--workers", "2"])
    assert _log_steps(run)[-1] == 3
    assert pomagan_post.read_checkpoint_info(run / "checkpoint.safetensors")["meta"]["step"] == 3


def test_a_run_started_with_relative_paths_resumes_from_another_folder(tmp_path: Path, monkeypatch) -> None:
    """The run's config and its checkpoint's recipe name the data by absolute path, and the
    precision "auto" resolved to: --resume from another folder finds the studio's set."""
    import yaml

    studio = _studio(tmp_path / "show" / "mystudio")
    monkeypatch.chdir(tmp_path / "show")
    args = ["paired:mystudio" if a == "synthetic:4" else a for a in TINY]
    _train(["seg", *args, "--out", "run", "--steps", "2"])
    config = yaml.safe_load((tmp_path / "show" / "run" / "config.yaml").read_text())
    assert config["data"] == [f"paired:{studio}"]
    monkeypatch.chdir(tmp_path)
    _train(["seg", "--out", "show/run", "--resume", "--steps", "3", "--device", "cpu"])
    recipe = pomagan_post.read_checkpoint_info(tmp_path / "show" / "run" / "checkpoint.safetensors")["recipe"]
    assert recipe["seg"]["steps_done"] == 3 and recipe["seg"]["data"] == [f"paired:{studio}"]
    assert recipe["seg"]["precision"] == "auto" and recipe["seg"]["precision_used"] == "fp32"
    assert "changes" not in recipe["seg"]


def test_a_matte_of_the_wrong_size_stops_before_the_run_folder_is_made(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    studio = _studio(tmp_path / "mystudio")
    cv2.imwrite(str(studio / "mattes" / "sh010_1004.png"), np.zeros((40, 60), np.uint8))
    run = tmp_path / "runs" / "bad"
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--data", f"paired:{studio}", "--out", str(run),
                                            "--steps", "2"])
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line == (f"pomagan-train: error: matte {studio / 'mattes' / 'sh010_1004.png'} is 60x40 but image "
                    f"{studio / 'plates' / 'sh010_1004.png'} is 64x48")
    assert not run.exists() and not run.parent.exists()


def test_a_new_run_never_writes_over_an_earlier_one(seg_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "earlier"
    shutil.copytree(seg_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(run), "--steps", "1"])
    assert result.exit_code == 2
    assert f"{run} already holds a training run" in result.output and f"--resume --out {run}" in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # A resume that fails on its inputs leaves the run's config as it was, so it still resumes.
    result = CliRunner().invoke(train_cli, ["seg", "--out", str(run), "--resume", "--device", "cpu",
                                            "--data", str(tmp_path / "mystuido")])
    assert result.exit_code == 2 and "dataset folder not found" in result.output
    assert (run / "config.yaml").read_bytes() == before["config.yaml"]


def test_resuming_a_finished_run_says_so(seg_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "done"
    shutil.copytree(seg_run, run)
    result = CliRunner().invoke(train_cli, ["seg", "--out", str(run), "--resume", "--device", "cpu"])
    assert result.exit_code == 0
    assert f"{run} is already at step 2 of --steps 2: nothing to do" in result.output


def test_an_item_that_cannot_be_loaded_mid_run_saves_first_and_exits(tmp_path: Path) -> None:
    """A plate whose header reads but whose pixels do not (cut short): the run stops with one
    line naming it, after saving the steps done, and exits (worker processes included)."""
    studio = _studio(tmp_path / "mystudio", n=12)
    bad = studio / "plates" / "sh010_1012.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    run = tmp_path / "run"
    args = [f"paired:{studio}" if a == "synthetic:4" else a for a in TINY]
    proc = subprocess.run([sys.executable, "-m", "pomagan_train.cli", "seg", *args, "--out", str(run),
                           "--steps", "100", "--save-every", "100", "--val-data", "none", "--workers", "2"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr  # bad training data, as the checks before a run say it
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pomagan-train: error: cannot read {bad}") and "Traceback" not in proc.stderr
    assert "pending error" not in proc.stderr  # OpenImageIO's message was taken, not printed at exit
    step = torch_step(run)
    assert 1 <= step < 100
    assert f"saved step {step} first (once the data is fixed: --resume --out {run})" in proc.stderr


def torch_step(run: Path) -> int:
    import torch

    return int(torch.load(run / "train_state.pt", weights_only=True)["step"])


def test_misspelt_kind_and_variant_are_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--data", "studo:/no/such", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown dataset kind 'studo'" in result.output
    args = [*TINY]
    args[args.index("--variant") + 1] = "fsat"
    result = CliRunner().invoke(train_cli, ["seg", *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown variant 'fsat'; use one of paper, fast" in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("setting, message", [
    ("losses: {border: \"off\"}", "losses.border must be true or false, unquoted, got 'off'"),
    ("augment: \"no\"", "augment must be true or false, unquoted, got 'no'"),
    ("lr_g: 1e-4", "lr_g must be a number (YAML reads 1e-4 as text: write 1.0e-4), got '1e-4'"),
    ("save_every: 2.5", "save_every must be a whole number, got 2.5"),
    ("betas: [0.5]", "betas must be two numbers in [0, 1)"),
    ("losses: {matte_terms: [comp]}", "losses.matte_terms of the segmentation stage needs matte or fg"),
    ("losses: {border_threshold: 1.5}", "losses.border_threshold must lie in (0, 1), got 1.5"),
    ("losses: {vgg_layers: [1, 6, 11, 20, 40]}", "losses.vgg_layers are indices of VGG-19's features, 0 to 36; "
                                                 "got [1, 6, 11, 20, 40]"),
])
def test_config_values_of_the_wrong_kind_are_named(tmp_path: Path, setting: str, message: str) -> None:
    """YAML reads a quoted "off" or 1e-4 as text: such a value is named, not taken as true or
    left to fail deep in training."""
    config = tmp_path / "c.yaml"
    config.write_text(f"stage: seg\n{setting}\n")
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--config", str(config), "--out", str(tmp_path / "x"),
                                            "--steps", "1"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "x").exists()
    if setting.startswith("augment"):  # and an option of the wrong value, once
        result = CliRunner().invoke(train_cli, ["seg", *TINY, "--workers", "-1", "--out", str(tmp_path / "x")])
        assert result.exit_code == 2 and "workers must be 0 (load in the training process) or more" in result.output


def _studio_with_a_nan_matte(tmp_path: Path) -> tuple[Path, Path]:
    """A studio folder whose matte of frame 1003 is a float EXR with a render's NaN block (20
    pixels, the first at x=22, y=12); returns the folder and that file."""
    import numpy as np
    import OpenImageIO as oiio

    studio = _studio(tmp_path / "mystudio")
    bad = studio / "mattes" / "sh010_1003.exr"
    (studio / "mattes" / "sh010_1003.png").unlink()
    matte = np.zeros((48, 64), np.float32)
    matte[10:30, 20:40] = 1.0
    matte[12:16, 22:27] = np.nan
    out = oiio.ImageOutput.create(str(bad))
    out.open(str(bad), oiio.ImageSpec(64, 48, 1, oiio.FLOAT))
    out.write_image(matte[:, :, None])
    out.close()
    return studio, bad


def test_nan_pixels_in_a_matte_stop_the_run_naming_the_file(tmp_path: Path) -> None:
    """A render's NaN block in one EXR matte: the run stops naming the file and the pixels,
    exit 2, and what it saved first holds finite weights (it used to finish with NaN weights)."""
    studio, bad = _studio_with_a_nan_matte(tmp_path)
    run = tmp_path / "run"
    args = [f"paired:{studio}" if a == "synthetic:4" else a for a in TINY]
    result = CliRunner().invoke(train_cli, ["alpha", *args, "--seg-weights", "default", "--out", str(run),
                                            "--steps", "12", "--val-data", "none", "--save-every", "1"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"pomagan-train: error: {bad}: 20 pixel(s) hold NaN or infinite values (the first at x=22, y=12); "
        "fix or remove the file")
    if (run / "checkpoint.safetensors").exists():  # steps before the bad item was drawn
        pomagan_post.load_checkpoint(run / "checkpoint.safetensors")  # finite, loads


def test_eval_keeps_the_sets_it_scored_when_a_later_one_holds_a_bad_item(seg_run: Path, tmp_path: Path) -> None:
    """A NaN matte found while scoring the second set: exit 2 naming the file, after the first
    set's row is printed and written (it was lost with the run)."""
    studio, bad = _studio_with_a_nan_matte(tmp_path)
    folder = tmp_path / "eval"
    result = CliRunner().invoke(train_cli, ["eval", "--weights", str(seg_run / "checkpoint.safetensors"),
                                            "--data", "synth=synthetic:2", "--data", f"studio=paired:{studio}",
                                            "--size", "64x48", "--device", "cpu", "--out", str(folder)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"pomagan-train: error: {bad}: 20 pixel(s) hold NaN or infinite values (the first at x=22, y=12); "
        "fix or remove the file")
    assert "| synth |" in result.output and "| studio |" not in result.output
    assert f"wrote {folder}/results.md, results.csv and items.csv (every item's scores), of the 1 row(s) " \
           "finished before 'studio' stopped" in result.output
    with (folder / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["test_set"], row["n"]) for row in rows] == [("synth", "2")]


def test_a_run_that_diverges_keeps_its_last_good_checkpoint(tmp_path: Path) -> None:
    """Weights blown up by an absurd learning rate: the run stops at the first NaN loss it
    logs, says between which steps, and does not write those weights over the checkpoint."""
    import re

    run = tmp_path / "run"
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(run), "--steps", "8", "--save-every", "1",
                                            "--val-data", "none", "--lr-g", "1e12"])
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    found = re.fullmatch(r"pomagan-train: error: training diverged: the loss became NaN or infinite between "
                         r"steps (\d+) and (\d+); these weights are not saved \((.*)\)\. Look for training items "
                         r"with NaN or infinite pixels, or lower --lr-g, then start again(.*)", line)
    assert found, line
    good, bad = int(found[1]), int(found[2])
    assert bad == good + 1 and bad <= 8
    if good:
        assert found[3] == f"the checkpoint of step {good} in {run} is kept" and found[4] == f" or --resume --out {run}"
        kept = pomagan_post.load_checkpoint(run / "checkpoint.safetensors")  # refuses NaN weights
        assert kept.checkpoint_info["meta"]["step"] == good and torch_step(run) == good
    else:
        assert found[3] == "nothing was saved" and not (run / "checkpoint.safetensors").exists()
    assert max(_log_steps(run)) == good  # no NaN row logged


def test_a_nan_validation_is_not_taken_as_the_best(seg_run: Path, tmp_path: Path) -> None:
    """Weights blown up but still finite give a NaN validation error: never the best, the run
    stops as diverged; after a resume the message counts from the resumed step."""
    import shutil

    run = tmp_path / "run"
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(run), "--steps", "6", "--val-every", "1",
                                            "--lr-g", "1e12", "--adversarial", "off"])
    assert result.exit_code == 1, result.output
    assert "training diverged:" in result.output and not (run / "best.safetensors").exists()
    resumed = tmp_path / "resumed"
    shutil.copytree(seg_run, resumed)
    best = (resumed / "best.safetensors").read_bytes()
    result = CliRunner().invoke(train_cli, ["seg", "--out", str(resumed), "--resume", "--steps", "9", "--device", "cpu",
                                            "--lr-g", "1e12", "--val-every", "1", "--log-every", "4"])
    assert result.exit_code == 1, result.output
    assert "the validation error became NaN or infinite at step 3 (weights finite but too large)" in result.output
    result = CliRunner().invoke(train_cli, ["seg", "--out", str(resumed), "--resume", "--steps", "9", "--device", "cpu",
                                            "--lr-g", "1e12", "--val-data", "none", "--log-every", "4"])
    assert result.exit_code == 1, result.output
    assert "the loss became NaN or infinite between steps 2 and 4" in result.output  # from the resumed step
    assert f"(the checkpoint of step 2 in {resumed} is kept)" in result.output
    assert (resumed / "best.safetensors").read_bytes() == best and torch_step(resumed) == 2


def test_a_validation_item_that_cannot_be_loaded_saves_first(tmp_path: Path) -> None:
    studio = _studio(tmp_path / "val")
    bad = studio / "plates" / "sh010_1002.png"
    bad.write_bytes(bad.read_bytes()[:200])
    run = tmp_path / "run"
    result = CliRunner().invoke(train_cli, ["seg", *TINY, "--out", str(run), "--steps", "6", "--val-every", "3",
                                            "--val-data", f"paired:{studio}"])
    assert result.exit_code == 2, result.output
    assert ("stopped by a validation item that could not be loaded (below); saved step 3 first "
            f"(once the data is fixed: --resume --out {run})") in result.output
    assert f"cannot read {bad}" in result.output.strip().splitlines()[-1] and torch_step(run) == 3


def test_size_must_be_a_multiple_of_the_stride(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [a if a != "64x48" else "60x60" for a in TINY]
    result = CliRunner().invoke(train_cli, ["seg", *args, "--out", str(run), "--steps", "1"])
    assert result.exit_code == 2
    assert result.output.strip() == ("pomagan-train: error: size 60x60: width and height must be multiples of "
                                     "16 (the fast variant's network stride), at least 32, e.g. 64x64")
    assert not run.exists()
    args = [a if a != "64x48" else "48x16" for a in TINY]  # a 1-pixel bottleneck: the norms fail
    result = CliRunner().invoke(train_cli, ["seg", *args, "--out", str(run), "--steps", "1"])
    assert result.exit_code == 2 and "at least 32, e.g. 48x32" in result.output and not run.exists()


def test_vgg_weights_that_are_not_a_state_dict_are_one_line(tmp_path: Path) -> None:
    script = tmp_path / "notes.py"
    script.write_text("print('hello')\n")
    args = [a for a in TINY if a not in ("--perceptual", "off")]
    result = CliRunner().invoke(train_cli, ["seg", *args, "--out", str(tmp_path / "run"), "--steps", "1",
                                            "--vgg-weights", str(script)])
    assert result.exit_code == 5 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == (
        f"pomagan-train: error: {script} is not a VGG-19 state dict (torch.load with weights_only=True cannot "
        "read it: not a torch file, cut short, or a pickle that holds more than tensors)")


def test_a_run_killed_between_its_two_saves_resumes_from_one_step(seg_run: Path, tmp_path: Path) -> None:
    """checkpoint.safetensors and train_state.pt are two writes: a run killed between them
    leaves them at different steps. The resume takes weights, average, optimizer and recipe
    from train_state.pt alone, so it equals a resume of the intact folder."""
    import shutil

    import torch

    intact, torn = tmp_path / "intact", tmp_path / "torn"
    shutil.copytree(seg_run, intact)
    _train(["seg", "--out", str(intact), "--resume", "--steps", "3", "--device", "cpu"])
    shutil.copytree(intact, torn)
    shutil.copy(seg_run / "checkpoint.safetensors", torn / "checkpoint.safetensors")  # step 2's
    for run in (intact, torn):
        _train(["seg", "--out", str(run), "--resume", "--steps", "4", "--device", "cpu"])
    a = pomagan_post.load_checkpoint(intact / "checkpoint.safetensors")
    b = pomagan_post.load_checkpoint(torn / "checkpoint.safetensors")
    assert b.checkpoint_info["meta"]["step"] == 4 and b.checkpoint_info["recipe"]["seg"]["steps_done"] == 4
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=0, msg=key)
    # A state file from before it held the weights: a mismatch is refused, not mixed.
    state = torch.load(torn / "train_state.pt", weights_only=True)
    for key in ("recipe", "net", "ema"):
        state.pop(key, None)
    state["step"] = 3
    torch.save(state, torn / "train_state.pt")
    result = CliRunner().invoke(train_cli, ["seg", "--out", str(torn), "--resume", "--steps", "5", "--device", "cpu"])
    assert result.exit_code == 5
    assert (f"cannot resume: {torn / 'checkpoint.safetensors'} is of step 4 but train_state.pt of step 3 "
            "(the run stopped while saving)") in result.output


def test_alpha_stage_without_init_trains_a_new_alpha_network(tmp_path: Path) -> None:
    """--seg-weights names the segmentation network; the alpha network is new unless --init
    names one to fine-tune (the bundled checkpoint's trained alpha network was taken over
    silently, and its runs dropped from the record)."""
    import pomagan_post.cli

    bundled = pomagan_post.load_checkpoint(None).alpha.state_dict()
    runs = {}
    for name, extra in (("fresh", []), ("tuned", ["--init", "default"])):
        run = tmp_path / name
        _train(["alpha", *TINY, "--seg-weights", "default", "--out", str(run), "--steps", "1", "--lr-g", "1e-9",
                "--adversarial", "off", "--val-data", "none", *extra])
        runs[name] = run
        got = pomagan_post.load_checkpoint(run / "checkpoint.safetensors").alpha.state_dict()
        diff = max(float((got[k] - bundled[k]).abs().max()) for k in got if got[k].is_floating_point())
        assert (diff > 0.01) if name == "fresh" else (diff < 1e-3), (name, diff)
    recipe = pomagan_post.read_checkpoint_info(runs["fresh"] / "checkpoint.safetensors")["recipe"]
    assert not [r for r in recipe.get("history", []) if r.get("stage") == "alpha"]
    assert recipe["alpha"]["steps_done"] == 1 and recipe["seg"]  # the segmentation's record kept
    shown = CliRunner().invoke(pomagan_post.cli.main, ["info", "--weights", str(runs["fresh"] / "checkpoint.safetensors")])
    alpha_line = next(line for line in shown.output.splitlines() if "alpha stage" in line)
    assert "fine-tuned from earlier runs" not in alpha_line, alpha_line
    shown = CliRunner().invoke(pomagan_post.cli.main, ["info", "--weights", str(runs["tuned"] / "checkpoint.safetensors")])
    assert "fine-tuned from earlier runs" in next(line for line in shown.output.splitlines() if "alpha stage" in line)

