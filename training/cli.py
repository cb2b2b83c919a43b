"""``pomagan-train``: synthetic data, the two training stages, evaluation.

Thin click wrappers: the work is in :mod:`pomagan_train.data`, :mod:`pomagan_train.trainer` and
:mod:`pomagan_train.evaluate`. Multi-GPU: ``torchrun --nproc_per_node N -m pomagan_train.cli seg ...``
(or the ``pomagan-train`` script path) runs the same command on every GPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click

from pomagan_post import __version__
from pomagan_post.cli import OneLineGroup, one_line_errors, tta_option
from pomagan_post.errors import BadInputError

__all__ = ["main"]


_one_line_errors = one_line_errors("pomagan-train")


def _size(value: str | None) -> tuple[int, int] | None:
    from .data import parse_size

    return None if value is None else parse_size(value)


def _pair(value: str | None) -> tuple[float, float] | None:
    """``"0.3,0.1"`` -> (0.3, 0.1); checked by the config."""
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))  # type: ignore[return-value]
    except ValueError:
        raise BadInputError(f"--extra-people takes two numbers P2,P3, got {value!r}") from None


PROPS_HELP = ("Synthetic sets: chance of objects of the background touching the people (a flag by a "
              "shoulder, a stand, a bag), drawn behind them and textured like clothing (default 0: none).")
CLOSEUPS_HELP = ("Synthetic sets: chance of a close-up framing of the front person (head 30 to 55 % of the "
                 "frame's height, shoulders broadened across the frame: portrait photos, a push-in's end; "
                 "default 0: none).")
MONO_HELP = ("Synthetic sets: chance of a monochrome frame (black and white, sometimes toned or a trace of "
             "colour left: B&W film, archive prints, desaturated grades; default 0: none).")
#: What each generator option changes, for the warning when no synthetic:N set is there to change.
_GENERATOR_OPTIONS = {"props": "draws objects into", "closeups": "frames", "mono": "makes monochrome"}


def _unused_generator_options(chosen: dict[str, float], has_generated: bool, where: str) -> None:
    """Warn of each generator option set when the data has no ``synthetic:N`` set to shape."""
    for name, value in chosen.items():
        if value and not has_generated:
            click.echo(f"warning: --{name} {value:g} {_GENERATOR_OPTIONS[name]} synthetic:N sets only; {where}",
                       err=True)


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pomagan-train")
def main() -> None:
    """Train POMAGAN (paper reproduction or a studio's own footage) and evaluate checkpoints."""


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n", "count", type=int, default=1000, show_default=True, help="Number of samples.")
@click.option("--size", default="1280x768", show_default=True, help="WIDTHxHEIGHT.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--backgrounds", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of photos to use as backgrounds (besides procedural ones).")
@click.option("--props", type=float, default=0.0, show_default=True, metavar="P", help=PROPS_HELP)
@click.option("--closeups", type=float, default=0.0, show_default=True, metavar="P", help=CLOSEUPS_HELP)
@click.option("--mono", type=float, default=0.0, show_default=True, metavar="P", help=MONO_HELP)
@_one_line_errors
def synth(out: str, count: int, size: str, seed: int, backgrounds: str | None, props: float,
          closeups: float, mono: float) -> None:
    """Write a synthetic portrait dataset (image, alpha, fg, bg) to OUT."""
    from .data.synthetic import write_dataset

    width, height = _size(size)
    write_dataset(out, count, (width, height), seed, backgrounds=backgrounds, props=props, closeups=closeups,
                  mono=mono)
    click.echo(f"wrote {count} samples to {out}", err=True)


def _train_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--config", "config_path", default=None,
                     help="YAML config (a path, or a shipped name such as paper_seg)."),
        click.option("--data", multiple=True, help="Dataset spec: synthetic:N, a folder, or kind:path (repeatable)."),
        click.option("--val-data", default=None, help="Validation dataset spec ('none' to skip)."),
        click.option("--backgrounds", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Folder of background photos for composition / synthetic sets (e.g. MS-COCO)."),
        click.option("--extra-people", default=None, metavar="P2,P3",
                     help="Synthetic training sets: chances of a second and a third person (default 0.1,0.03)."),
        click.option("--props", type=float, default=None, metavar="P", help=PROPS_HELP),
        click.option("--closeups", type=float, default=None, metavar="P", help=CLOSEUPS_HELP),
        click.option("--mono", type=float, default=None, metavar="P", help=MONO_HELP),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder."),
        click.option("--steps", type=int, default=None, help="Total generator steps."),
        click.option("--size", default=None, help="Training size WIDTHxHEIGHT (paper: 1280x768)."),
        click.option("--batch-size", type=int, default=None),
        click.option("--lr-g", type=float, default=None, help="Generator learning rate (paper: 1e-4)."),
        click.option("--lr-d", type=float, default=None, help="Discriminator learning rate (paper: 1e-5)."),
        click.option("--ema", type=float, default=None, metavar="DECAY",
                     help="Keep a moving average of the generator's weights (e.g. 0.999) and save that."),
        click.option("--variant", default=None, help="Model variant (paper, fast, ...)."),
        click.option("--device", default="auto", show_default=True),
        click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default=None),
        click.option("--perceptual", type=click.Choice(["vgg19", "off"]), default=None,
                     help="Perceptual loss (off is recorded in the checkpoint)."),
        click.option("--adversarial", type=click.Choice(["gan", "lsgan", "hinge", "off"]), default=None,
                     help="Adversarial term (paper: gan; off trains on the supervised terms alone)."),
        click.option("--bce", type=float, default=None, metavar="WEIGHT",
                     help="Add a cross-entropy term of this weight (0: off, the paper); on the bundled "
                          "model it lowered MSE by hedging (MODEL_CARD.md)."),
        click.option("--vgg-weights", type=click.Path(dir_okay=False), default=None,
                     help="torchvision VGG-19 weights file (default: torchvision's cache file)."),
        click.option("--grad-checkpoint", is_flag=True, default=None, help="Trade compute for memory."),
        click.option("--workers", type=int, default=None, help="DataLoader workers."),
        click.option("--init", default=None, help="Fine-tune from a checkpoint ('default' = bundled)."),
        click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint."),
        click.option("--seed", type=int, default=None),
        click.option("--log-every", type=int, default=None, help="Steps between log rows."),
        click.option("--val-every", type=int, default=None, help="Steps between validations."),
        click.option("--save-every", type=int, default=None, help="Steps between checkpoints."),
        click.option("--max-minutes", type=float, default=None,
                     help="Stop and save after this much wall time (resume later with --resume)."),
        click.option("--reuse", type=int, default=None, metavar="K",
                     help="Train on each loaded batch, then on K-1 batches drawn from a buffer of recent "
                          "frames (flipped at random): when loading limits the GPU (default 1: off)."),
        click.option("--reuse-buffer", type=int, default=None, metavar="FRAMES",
                     help="Frames in that buffer, held on the training device (default: 64 batches)."),
        click.option("--roto-rate", type=float, default=None, metavar="P",
                     help="Alpha stage: feed this share of frames a roto-like shape drawn from the true "
                          "matte instead of the segmentation network's output, to follow render --roto "
                          "(default 0: off)."),
        click.option("--narrow", type=float, default=None, metavar="P",
                     help="Cut this share of batches to a narrower frame (a width from half the height to "
                          "the full width, in steps of the network stride): square and upright frames, "
                          "people filling the width (default 0: off)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_stage(stage: str, seg_weights: str | None = None, **opts: Any) -> None:
    from .config import load_config
    from .data import generated
    from .trainer import train

    out_dir = Path(opts["out_dir"])
    config_path = opts["config_path"]
    if opts["resume"] and not (out_dir / "train_state.pt").is_file():
        raise BadInputError(f"nothing to resume: {out_dir} has no train_state.pt (is --out the run's folder?)")
    if opts["resume"] and config_path is None and (out_dir / "config.yaml").is_file():
        config_path = out_dir / "config.yaml"  # resume with the run's own settings
    losses = {k: v for k, v in (("perceptual", opts["perceptual"]), ("adversarial", opts["adversarial"]),
                                ("vgg_weights", opts["vgg_weights"]), ("bce", opts["bce"])) if v is not None}
    val_data = opts["val_data"]
    cfg = load_config(
        stage,
        config_path,
        data=list(opts["data"]) or None,
        val_data=None if val_data in (None, "none") else val_data,
        backgrounds=opts["backgrounds"],
        extra_people=_pair(opts["extra_people"]),
        props=opts["props"],
        closeups=opts["closeups"],
        mono=opts["mono"],
        steps=opts["steps"],
        size=_size(opts["size"]),
        batch_size=opts["batch_size"],
        lr_g=opts["lr_g"],
        lr_d=opts["lr_d"],
        ema=opts["ema"],
        variant=opts["variant"],
        precision=opts["precision"],
        grad_checkpoint=True if opts["grad_checkpoint"] else None,
        workers=opts["workers"],
        seed=opts["seed"],
        log_every=opts["log_every"],
        val_every=opts["val_every"],
        save_every=opts["save_every"],
        max_minutes=opts["max_minutes"],
        reuse=opts["reuse"],
        reuse_buffer=opts["reuse_buffer"],
        roto_rate=opts["roto_rate"],
        narrow=opts["narrow"],
        losses=losses or None,
    )
    _unused_generator_options({name: getattr(cfg, name) for name in _GENERATOR_OPTIONS},
                              any(generated(spec) for spec in cfg.data), "--data has none: no frame is changed")
    if opts["reuse_buffer"] is not None and cfg.reuse == 1:
        raise BadInputError("--reuse-buffer sizes the buffer of --reuse K (K of 2 or more); with reuse off "
                            "(K = 1) it would hold nothing: add --reuse K")
    if val_data == "none":
        from dataclasses import replace

        cfg = replace(cfg, val_data=None)
    path = train(cfg, out_dir, device=opts["device"], init=opts["init"], seg_weights=seg_weights, resume=opts["resume"])
    if os.environ.get("RANK", "0") == "0":  # (under torchrun, once: rank 0 wrote it)
        click.echo(f"checkpoint: {path}", err=True)


@main.command()
@_train_options
@_one_line_errors
def seg(**opts: Any) -> None:
    """Train the segmentation network (stage 1)."""
    _run_stage("seg", **opts)


@main.command()
@_train_options
@click.option("--seg-weights", default=None,
              help="Checkpoint with the trained segmentation network ('default' = bundled); required for a "
                   "new run, not with --resume (the run's checkpoint holds the one it trains against).")
@_one_line_errors
def alpha(seg_weights: str | None, **opts: Any) -> None:
    """Train the alpha generation network (stage 2) with the segmentation network frozen.

    The segmentation network comes from --seg-weights; the alpha network is a new one unless
    --init names a checkpoint whose alpha network to fine-tune.
    """
    if opts["resume"]:
        if seg_weights is not None:
            raise BadInputError(
                "--resume continues against the segmentation network saved in the run; to train the alpha "
                "network against another one, start a new run: --init RUN/checkpoint.safetensors --seg-weights NEW")
        seg_weights = str(Path(opts["out_dir"]) / "checkpoint.safetensors")
    _run_stage("alpha", seg_weights=seg_weights, **opts)


@main.command()
@click.argument("fine_tuned", type=click.Path(dir_okay=False))
@click.option("--base", required=True, help="The checkpoint FINE_TUNED was fine-tuned from ('default' = bundled).")
@click.option("--weight", type=float, required=True,
              help="Share of FINE_TUNED's weights, 0 to 1 (1: FINE_TUNED unchanged, 0: the base's).")
@click.option("--stage", type=click.Choice(["seg", "alpha", "both"]), default="both", show_default=True,
              help="Which network to blend; the other keeps FINE_TUNED's weights.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Checkpoint to write.")
@_one_line_errors
def blend(fine_tuned: str, base: str, weight: float, stage: str, out_path: str) -> None:
    """Blend a fine-tuned checkpoint's weights with those it was fine-tuned from.

    Each weight becomes WEIGHT x fine-tuned + (1 - WEIGHT) x base (weight-space ensembling,
    WiSE-FT, Wortsman et al. 2022): a fine-tune on narrow data (synthetic portraits, one
    studio's shots) often gains there and loses elsewhere, and a blend keeps part of the gain
    with less of the loss. Measure the result (pomagan-train eval, your own shots) before using
    it. Only the chosen network's weights are mixed; the other network, the description, the
    working size and the recipe are FINE_TUNED's, and the recipe records the blend (info shows
    it). Both checkpoints must be one architecture with the chosen networks trained; BASE is not
    checked to be FINE_TUNED's starting point. --weight 0 takes the chosen network whole from
    BASE: e.g. one run's segmentation network with another run's alpha network
    (blend SEG_RUN --base ALPHA_RUN --weight 0 --stage alpha).
    """
    from .blend import blend_checkpoints

    path = blend_checkpoints(fine_tuned, base, weight, stage, out_path)
    click.echo(f"wrote {path}", err=True)


@main.command("eval")
@click.option("--weights", default=None, help="Checkpoint (default: the bundled one).")
@click.option("--data", "data_specs", multiple=True, required=True,
              help="Test set spec (repeatable; each is a row of the table). NAME=SPEC names the row.")
@click.option("--size", default="1280x768", show_default=True, help="Test composite size WIDTHxHEIGHT.")
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", default="auto", show_default=True)
@click.option("--working-size", type=int, default=None,
              help="Network short side [default: the checkpoint's, else 768].")
@tta_option("Test-time augmentation, as pomagan-post render's")
@click.option("--limit", type=int, default=None, help="Evaluate at most this many samples per set.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for results.md / results.csv.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the test composites.")
@click.option("--backgrounds", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of background photos for composition test sets (the paper: PASCAL VOC).")
@click.option("--props", type=float, default=0.0, show_default=True, metavar="P", help=PROPS_HELP)
@click.option("--closeups", type=float, default=0.0, show_default=True, metavar="P", help=CLOSEUPS_HELP)
@click.option("--mono", type=float, default=0.0, show_default=True, metavar="P", help=MONO_HELP)
@click.option("--baselines", is_flag=True,
              help="Also score two baselines on each set: all-zero alpha, and the segmentation "
                   "stage alone thresholded at 0.5; plus a diagnostic: the alpha stage fed the true "
                   "segmentation (what a perfect first stage would give).")
@_one_line_errors
def eval_(weights: str | None, data_specs: tuple[str, ...], size: str, device: str, precision: str,
          working_size: int | None, tta: str, limit: int | None, out_dir: str | None, seed: int,
          backgrounds: str | None, baselines: bool, props: float, closeups: float, mono: float) -> None:
    """Evaluate a checkpoint: MSE, MAE, SAD, Grad, Conn per test set, in the paper's layout."""
    import pomagan_post
    from pomagan_post.checkpoint import untrained_warning

    from .data import build_dataset, generated
    from .evaluate import (ThresholdedSegmentation, TrueSegmentationAlpha, evaluate, results_table, worst_items,
                           write_results, zero_alpha)

    model = pomagan_post.load_checkpoint(weights)
    warning = untrained_warning(model.checkpoint_info)
    if warning:
        click.echo(f"warning: {warning}; the scores below are of that model", err=True)
    engine = pomagan_post.Engine(model, device=device, precision=precision, working_size=working_size, tta=tta)
    predictors = {"": engine}
    if baselines:
        predictors[" (zero alpha)"] = zero_alpha
        predictors[" (thresholded seg)"] = ThresholdedSegmentation(engine)
        predictors[" (alpha stage on true seg)"] = TrueSegmentationAlpha(engine)
    datasets = []  # every set opened (and its files checked) before the first is scored
    for spec in data_specs:
        name, _, rest = spec.partition("=") if "=" in spec else (spec, "", spec)
        _unused_generator_options({"props": props, "closeups": closeups, "mono": mono}, generated(rest),
                                  f"{name} is as it is")
        datasets.append((name, build_dataset(rest, _size(size), split="test", seed=seed, augment=False,
                                             backgrounds=backgrounds, props=props, closeups=closeups,
                                             mono=mono)))
    results: dict = {}

    def report(unfinished: str | None = None) -> None:
        click.echo(results_table(results, fmt="markdown"))
        for name, result in results.items():
            if not name.endswith(tuple(suffix for suffix in predictors if suffix)) and result.count > 1:
                worst = ", ".join(f"#{index} {value:.1f}" for index, value in worst_items(result))
                click.echo(f"{name}: worst items by MSE (x1e3): {worst}", err=True)
        if out_dir:
            write_results(results, out_dir)
            click.echo(f"wrote {out_dir}/results.md, results.csv and items.csv (every item's scores)"
                       + (f", of the {len(results)} row(s) finished before {unfinished!r} stopped" if unfinished
                          else ""), err=True)

    row = ""
    try:
        for name, dataset in datasets:
            for suffix, predictor in predictors.items():
                row = name + suffix
                results[row] = evaluate(predictor, dataset, limit=limit, desc=row)
    except BaseException:
        # A bad item deep in a later set (a NaN pixel, a file corrupt past its header) or Ctrl-C:
        # the rows already scored are not lost (an hour of scoring, on a big set).
        if results:
            report(unfinished=row)
        raise
    report()


if __name__ == "__main__":
    main()
