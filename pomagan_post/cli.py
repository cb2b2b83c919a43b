"""The ``pomagan-post`` command line: thin click wrappers over the library.

Messages go to stderr (stdout may be a pipe); a :class:`~pomagan_post.errors.PomaganError`
becomes one line on stderr and the error's exit code, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from . import __version__
from .engine import TTA_MODES
from .errors import BadInputError, CheckpointError, MissingFramesError, PomaganError, Stopped
from .stopping import StopSignals, stop_point
from .temporal import MAX_RADIUS

__all__ = ["OneLineCommand", "OneLineGroup", "interrupt_signal", "main", "one_line_errors", "temporal_option",
           "tta_option"]


class _OneLineUsageError(click.UsageError):
    """A mistake on the command line shown as the other errors are: one line on stderr,
    ``PROG: error: MESSAGE (see 'PROG COMMAND --help')``, exit 2."""

    def show(self, file: Any = None) -> None:
        root = self.ctx.find_root().info_name if self.ctx else None
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx else ""
        message = " ".join(self.format_message().split())
        click.echo(f"{root or 'pomagan'}: error: {message}{hint}", file=file, err=file is None)


@contextlib.contextmanager
def _usage_in_one_line() -> Iterator[None]:
    """Click's usage errors raised inside become :class:`_OneLineUsageError`; a command given
    no arguments that shows its help still does."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as exc:
        raise _OneLineUsageError(exc.format_message(), exc.ctx) from None


class OneLineCommand(click.Command):
    """A click command whose command-line mistakes (a bad option value, a missing argument) are
    one line, as README promises for every error."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        with _usage_in_one_line():
            return super().make_context(info_name, args, parent=parent, **extra)


class OneLineGroup(OneLineCommand, click.Group):
    """A click group like :class:`OneLineCommand`, whose subcommands are such commands too."""

    command_class = OneLineCommand

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        with _usage_in_one_line():  # no such command
            return super().resolve_command(ctx, args)


def one_line_errors(prog: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for click callbacks: a :class:`PomaganError` becomes ``PROG: error: ...`` on
    stderr (one line; the error's ``label`` replaces ``error``) and the error's exit code, never a
    traceback. Shared by every CLI."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except PomaganError as exc:
                text = str(exc)
                if "\nOriginal Traceback" in text:  # re-raised from a DataLoader worker: its own
                    lines = text.strip().splitlines()  # message follows the traceback's frames
                    frames_end = max((k for k, line in enumerate(lines) if line.startswith(" ")), default=-1)
                    own = lines[frames_end + 1:] or lines[-1:]
                    text = "\n".join([own[0].split(": ", 1)[-1], *own[1:]])  # less "module.ErrorType: "
                message = " ".join(text.split())
                click.echo(f"{prog}: {exc.label}: {message}", err=True)
                sys.exit(exc.exit_code)

        return wrapper

    return decorate


_one_line_errors = one_line_errors("pomagan-post")


def tta_option(what: str = "Test-time augmentation") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--tta none|flip``, shared by the commands that run the network."""
    return click.option(
        "--tta", type=click.Choice(TTA_MODES), default=TTA_MODES[0], show_default=True,
        help=f"{what}: none runs the network once per frame; flip also runs the mirror image "
             "and averages the two mattes (lower error on the synthetic test set, twice the "
             "network work; where the passes disagree the matte turns semi-transparent).")


def temporal_option(more: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--temporal N``, shared by ``render`` and ``pipe`` (and named by ``pomagan-ffmpeg``)."""
    return click.option(
        "--temporal", default=0, show_default=True, type=click.IntRange(0, MAX_RADIUS), metavar="N",
        help="Steady the matte over N frames either side (0: each frame on its own; 2 is a good "
             "start for video): the neighbours' mattes follow the motion (optical flow) and are "
             "averaged where the pictures match, so moving edges stay sharp; about 2N flow "
             "passes a frame on the CPU." + more)


def interrupt_signal(exc: KeyboardInterrupt) -> signal.Signals:
    """The signal behind an interrupt: a :class:`~pomagan_post.stopping.SignalStop`'s, else SIGINT
    (a plain Ctrl-C outside :class:`~pomagan_post.stopping.StopSignals`)."""
    return signal.Signals(getattr(exc, "signum", signal.SIGINT))


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pomagan-post")
def main() -> None:
    """POMAGAN Post: portrait mattes (alpha + premultiplied foreground) from a shot."""


@main.command()
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    envvar="POMAGAN_WEIGHTS",
    default=None,
    help="Checkpoint to describe (default: the bundled one; env POMAGAN_WEIGHTS).",
)
@click.option("--stats", is_flag=True, help="Also measure parameters and GFLOPs of every variant at 1280x768.")
@_one_line_errors
def info(weights: str | None, stats: bool) -> None:
    """Versions, devices, model variants and the checkpoint in use."""
    import torch

    from .checkpoint import load_checkpoint, read_checkpoint_info, stage_steps
    from .models import create_model, describe_model, list_models, model_stats

    out = functools.partial(click.echo, err=False)
    out(f"pomagan-post {__version__}")
    out(f"python {platform.python_version()}, torch {torch.__version__}, "
        f"CUDA build {torch.version.cuda or 'none'}")
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            out(f"device cuda:{index}: {props.name}, {props.total_memory / 2**30:.1f} GiB")
    else:
        out("device: cpu only (no CUDA device available)")
    out(f"cpu threads: {torch.get_num_threads()}")
    out("variants:")
    for name in list_models():
        line = f"  {name:8s} {describe_model(name)}"
        if stats:
            s = model_stats(create_model(name))
            line += f"  [{s['params'] / 1e6:.2f} M params, {s['gflops']:.1f} GFLOPs at 1280x768]"
        out(line)
    try:  # the header can describe weights that cannot be used (tensors that do not fit, NaN)
        ckpt, problem = load_checkpoint(weights).checkpoint_info, None
    except CheckpointError as exc:
        ckpt, problem = read_checkpoint_info(weights), exc
    label = "bundled default" if weights is None else "weights"
    out(f"{label}: {ckpt['path']}")
    out(f"  variant: {ckpt['variant']}")
    stages = [k for k in ("seg", "alpha") if isinstance(ckpt["recipe"].get(k), dict)]
    if problem is not None:
        out("  status: UNUSABLE (below)")
    elif ckpt["trained"]:
        out("  status: trained")
    elif stages:
        out(f"  status: PARTLY TRAINED (stages trained: {', '.join(stages)}; mattes need both)")
    else:
        out("  status: UNTRAINED PLACEHOLDER (random weights: mattes are meaningless)")
    if ckpt["description"]:
        out(f"  description: {ckpt['description']}")
    out(f"  trained on: {ckpt['training_data'] or 'nothing (untrained)'}")
    for stage in ("seg", "alpha"):
        recipe = ckpt["recipe"].get(stage)
        if isinstance(recipe, dict) and "steps_done" in recipe:
            size = "x".join(str(v) for v in recipe.get("size", []))
            losses = recipe.get("losses", {})
            processes = int(recipe.get("processes", 1) or 1)
            batch = (f"{recipe.get('batch_size')} per process x {processes} processes" if processes > 1
                     else f"{recipe.get('batch_size')}")
            line = (f"  {stage} stage: {recipe['steps_done']} steps at {size}, batch "
                    f"{batch}, perceptual loss {losses.get('perceptual', '?')}, "
                    f"adversarial loss {losses.get('adversarial', '?')}")
            if losses.get("bce"):
                line += f", cross-entropy term (weight {losses['bce']})"
            if recipe.get("ema"):
                line += f", weights averaged (EMA {recipe['ema']})"
            if int(recipe.get("reuse", 1) or 1) > 1:
                line += (f", each loaded batch followed by {int(recipe['reuse']) - 1} drawn from a buffer "
                         f"of {recipe.get('reuse_buffer') or 64 * int(recipe.get('batch_size') or 1)} frames")
            if recipe.get("roto_rate"):
                line += f", {float(recipe['roto_rate']):.0%} of frames fed a roto drawn from the true matte"
            if recipe.get("props"):
                line += (f", {float(recipe['props']):.0%} of synthetic frames with background objects "
                         "touching the people")
            if recipe.get("closeups"):
                line += f", {float(recipe['closeups']):.0%} of synthetic frames framed as close-ups"
            if recipe.get("mono"):
                line += f", {float(recipe['mono']):.0%} of synthetic frames monochrome"
            if recipe.get("narrow"):
                line += f", {float(recipe['narrow']):.0%} of batches cut to narrower frames"
            taken = recipe.get("taken_from")
            if isinstance(taken, dict):  # blend --weight 0: this network is another checkpoint's
                line += f", the network taken whole from {taken.get('base', '?')}"
            blends = [*recipe.get("blended_before", []), recipe.get("blended")]
            for blend in (b for b in blends if isinstance(b, dict) and "weight" in b):
                w, steps = float(blend["weight"]), blend.get("base_steps")
                line += (", then replaced by the network of" if w == 0 else
                         f", then blended: {w:g} x these weights + {1 - w:g} x those of")
                line += (f" {blend.get('base', '?')} ({'?' if steps is None else steps} steps in all"
                         f"{', itself a blend' if blend.get('base_is_a_blend') else ''})")
            used = recipe.get("precision_used")
            if recipe.get("precision"):
                line += f", precision {recipe['precision']}"
                line += f" ({used} used)" if used and used != recipe["precision"] else ""
            for change in recipe.get("changes", []):
                what = ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in change.items() if k != "step")
                line += f"; from step {change.get('step')}: {what}"
            earlier = [r for r in ckpt["recipe"].get("history", [])
                       if isinstance(r, dict) and r.get("stage") == stage and "steps_done" in r]
            if earlier:
                runs = "; ".join(f"{r['steps_done']} at {'x'.join(str(v) for v in r.get('size', []))}, "
                                 f"batch {r.get('batch_size')}" for r in earlier)
                total = stage_steps(ckpt["recipe"], stage)
                line += f"; fine-tuned from earlier runs ({runs}): {total} steps in all"
            out(line)
    if ckpt["input"].get("working_size"):
        out(f"  working size: {ckpt['input']['working_size']} (short side the network runs at)")
    if ckpt["created"]:
        out(f"  created: {ckpt['created']}")
    if problem is not None:
        raise problem


@main.command()
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("--colorspace", default=None, metavar="NAME",
              help="Colour space override, as for render (shows what render would convert from).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON array (an object per input) for pipeline tools instead of text.")
@click.option("--check", is_flag=True,
              help="Also decode every frame's pixels as render would (a farm's check before a "
                   "long render) and exit 3 if any frame is missing, unreadable or another size.")
@click.option("--start-frame", type=click.IntRange(min=0), default=None, metavar="N",
              help="Number a video's frames from N (default 0), in --frames, image-sequence "
                   "outputs and a garbage matte's frames: 1 matches Nuke's numbering of a movie, "
                   "1001 a plate's. Not for sequences (numbered by their files).")
@_one_line_errors
def probe(inputs: tuple[str, ...], colorspace: str | None, start_frame: int | None,
          check: bool, as_json: bool) -> None:
    """What render will see in INPUT (a video, a sequence, a folder or an image), without
    rendering: size, frames, rate, timecode, colour, audio, and what it will do about phone
    rotation, variable frame rate, interlacing, and a sequence's missing frames or frames of
    another size (every frame's header is read; a file cut short inside its pixels shows only
    when rendered, or with --check). Nothing is written."""
    from .io.sequence import format_frame_list
    from .renderer import open_source

    failed = 0
    broken = False
    records: list[dict[str, Any]] = []
    for item in inputs:
        try:
            source = open_source(item, on_error="skip", colorspace=colorspace, start_frame=start_frame)
        except PomaganError as exc:
            click.echo(f"pomagan-post: {exc.label}: {_naming(item, exc)}", err=True)
            failed = failed or exc.exit_code
            records.append({"input": item, "error": _naming(item, exc), "exit_code": exc.exit_code})
            continue
        with source:
            info, meta = source.info, source.info.metadata
            missing = dict(getattr(source, "failed", {}))
            single = bool(getattr(getattr(source, "pattern", None), "is_single_file", False))
            if hasattr(source, "check_headers") and not single:
                missing.update(source.check_headers())  # sizes and readability, frame by frame
            checked = _check_pixels(source, item, missing) if check else None
        broken = broken or (checked is not None and bool(missing))
        if as_json:
            records.append(_probe_record(item, info, meta, single, missing, checked))
            continue
        lines = _probe_lines(item, info, meta, single, missing, format_frame_list)
        if checked is not None:
            lines += _check_lines(checked, format_frame_list)
        for line in lines:
            click.echo(line)
    if as_json:
        import json

        click.echo(json.dumps(records))
    if failed:
        sys.exit(failed)
    if broken:
        sys.exit(MissingFramesError.exit_code)


def _check_pixels(source: Any, item: str, missing: dict[int, str]) -> Any:
    """``probe --check``: every frame not already found bad decoded, with progress on stderr;
    the frames it finds bad join ``missing``."""
    from .progress import progress as progress_bar
    from .renderer import check_pixels

    todo = len([f for f in source.info.frames if f not in missing])
    bar = progress_bar(todo, desc=f"checking {Path(item).name}", unit="frame")
    try:
        if missing and hasattr(source, "failed"):  # header failures are not decoded again
            source.failed.update(missing)
        checked = check_pixels(source, on_frame=lambda: bar.update(1))
    finally:
        bar.close()
    missing.update(checked.bad)
    return checked


def _probe_record(item: str, info: Any, meta: dict[str, Any], single: bool, missing: dict[int, str],
                  checked: Any) -> dict[str, Any]:
    """``probe --json``: one input as plain JSON values (rates as "num/den" strings and floats,
    windows as [x, y, w, h], frame numbers as integers)."""
    video = "codec" in meta
    fps = info.fps
    record: dict[str, Any] = {
        "input": item,
        "kind": "video" if video else "image" if single else "sequence",
        "format": meta.get("codec") if video else meta.get("format"),
        "width": info.width, "height": info.height, "pixel_aspect": info.pixel_aspect,
        "channels": info.channels,
        "bits": meta.get("bit_depth") if video else meta.get("bits"),
        "frames": list(info.frames),
        "first": info.frames[0] if info.frames else None,
        "last": info.frames[-1] if info.frames else None,
        "fps": f"{fps.numerator}/{fps.denominator}" if fps else None,
        "fps_float": float(fps) if fps else None,
        "timecode": info.timecode,
        "colorspace": info.colorspace,
        "missing": {str(frame): reason for frame, reason in sorted(missing.items())},
    }
    if video:
        record.update({key: meta.get(key) for key in (
            "pix_fmt", "color_trc", "color_primaries", "color_matrix", "matrix_used", "color_range",
            "rotation", "interlaced", "frame_rate_mode")})
        record["audio_tracks"] = meta.get("audio_tracks", int(bool(meta.get("has_audio"))))
    else:
        record["pattern"] = str(meta.get("pattern", item))
        record["pixel_type"] = meta.get("pixel_type")
        for key in ("data_window", "display_window"):
            if key in meta:
                record[key] = list(meta[key])
    if checked is not None:
        record["check"] = {"decoded": checked.checked, "bad": sorted(checked.bad),
                           "stopped_at": checked.stopped_at, "repeated": checked.repeated,
                           "non_finite": {str(f): n for f, n in sorted(checked.non_finite.items())}}
    return record


def _check_lines(checked: Any, frame_list: Callable[[list[int]], str]) -> list[str]:
    """The lines ``probe --check`` adds: what decoding every frame found."""
    lines = [f"  pixels: {checked.checked} frame(s) decoded"
             + (f", {len(checked.bad)} not" if checked.bad else "")]
    if checked.stopped_at is not None:
        lines.append(f"  decoding stopped at frame {checked.stopped_at}: the frames after it "
                     "were not checked (a video's frames depend on the ones before)")
    if checked.repeated:
        lines.append(f"  no picture in the file for frame(s) {frame_list(checked.repeated)} (dropped "
                     "when it was recorded or converted): render repeats the frame before each, as "
                     "players show them")
    if checked.non_finite:
        frames = sorted(checked.non_finite)
        total = sum(checked.non_finite.values())
        lines.append(f"  NaN or infinite values: {total} in {len(frames)} frame(s): "
                     f"{frame_list(frames)} (render reads NaN as 0, infinity as the brightest value)")
    return lines


def _by_reason(failed: dict[int, str], frame_list: Callable[[list[int]], str]) -> list[tuple[str, str]]:
    """Failed frames grouped by reason, in frame order: [("frames 12-23", "did not decode"), ...];
    a reason that names its frame already ("frame 3: ...") loses that prefix."""
    grouped: dict[str, list[int]] = {}
    for frame, reason in sorted(failed.items()):
        grouped.setdefault(reason.removeprefix(f"frame {frame}: "), []).append(frame)
    return [(f"frame{'s' if len(frames) > 1 else ''} {frame_list(frames)}", reason)
            for reason, frames in grouped.items()]


def _naming(item: str, error: Exception) -> str:
    """An error's one-line message, led by the input it is about unless it names it already."""
    message = " ".join(str(error).split())
    name = Path(item).name
    return message if item in message or (name and name in message) else f"{item}: {message}"


def _probe_lines(item: str, info: Any, meta: dict[str, Any], single: bool, missing: dict[int, str],
                 frame_list: Callable[[list[int]], str]) -> list[str]:
    """The lines ``probe`` prints for one input."""
    fps = f"{float(info.fps):.6g} fps" if info.fps else "no frame rate"
    frames = info.frames
    span = f"{frames[0]}-{frames[-1]} ({len(frames)} frames)" if frames else "none"
    if "codec" in meta:  # a video
        kind = (f"video ({meta['codec']}, {meta['pix_fmt']}, "
                f"{meta['bit_depth']}-bit{', alpha' if meta['has_alpha'] else ''})")
        matrix = meta["color_matrix"]
        if matrix == "unknown" and meta.get("matrix_used"):  # (as players read an untagged stream)
            matrix += (", read as BT.601 as players read standard definition"
                       if meta["matrix_used"] == "smpte170m" else ", read as BT.709")
        colour = (f"{info.colorspace} (tags: transfer {meta['color_trc']}, primaries "
                  f"{meta['color_primaries']}, matrix {matrix}, {meta['color_range']} range)")
    else:
        kind = (f"{'image' if single else 'sequence ' + str(meta.get('pattern', item))} ({meta.get('format')}, "
                f"{meta.get('pixel_type')}, {meta.get('bits')}-bit, {info.channels} channel(s))")
        colour = info.colorspace
        if single:
            span, fps = "one image", ""
    timing = ", ".join(part for part in (span, fps, f"timecode {info.timecode or 'none'}") if part)
    lines = [f"{item}: {kind}",
             f"  size: {info.width}x{info.height}, pixel aspect {info.pixel_aspect:g}",
             f"  frames: {timing}",
             f"  colour: {colour}"]
    if "data_window" in meta and tuple(meta["data_window"]) != tuple(meta.get("display_window", ())):
        lines.append(f"  windows: data {tuple(meta['data_window'])}, display {tuple(meta['display_window'])} (x, y, w, h)")
    if "codec" in meta:
        tracks = meta.get("audio_tracks", int(meta["has_audio"]))
        lines.append(f"  audio: {tracks} track(s), {meta['audio_codec']}, carried into the foreground video"
                     if tracks else "  audio: none")
        if meta.get("rotation"):
            stored = "x".join(str(v) for v in meta["stored_size"])
            lines.append(f"  rotation: stored {stored}, display matrix {meta['rotation']} degrees; "
                         "rendered upright as players show it")
        if meta.get("frame_rate_mode") == "variable":
            lines.append(f"  variable frame rate: {meta['decoded_frames']} frames at "
                         f"{float(meta['average_fps']):.4g} fps on average, conformed to {fps}")
        if meta.get("interlaced"):
            lines.append("  interlaced: matted as whole frames (deinterlace first for moving subjects)")
    elif meta.get("orientation", 1) != 1:
        lines.append(f"  orientation: {meta['orientation']} (EXIF/TIFF); rendered as viewers show it")
    if missing:
        lines.append(f"  missing, unreadable or another size: {len(missing)} frame(s): "
                     f"{frame_list(sorted(missing))} (render stops at the first unless --on-error skip)")
        lines += [f"    {frames}: {reason}" for frames, reason in _by_reason(missing, frame_list)[:10]]
    return lines


@main.command()
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: <stem>_pomagan/ beside each input).")
@click.option("--outputs", default="alpha,fg", show_default=True, metavar="KINDS",
              help="Comma-separated outputs to write: alpha, fg (comp comes with --comp).")
@click.option("--alpha-name", default=None, metavar="PATTERN",
              help="Alpha file or pattern, e.g. matte.####.exr or matte.mov (relative: in the output folder).")
@click.option("--fg-name", default=None, metavar="PATTERN", help="Foreground file or pattern.")
@click.option("--comp-name", default=None, metavar="PATTERN", help="Composite file or pattern.")
@click.option("-f", "--format", "format_", default=None, metavar="FORMAT",
              help="exr, png, tiff, dpx (image sequence) or video (default: the input's family).")
@click.option("--codec", default=None, metavar="CODEC",
              help="Video codec: prores4444 (yuva444p10le .mov; the default), prores4444-fast (the "
                   "same from FFmpeg's prores_aw: about 3x less CPU, more loss), png (PNG in .mov) "
                   "or ffv1 (.mkv).")
@click.option("--frames", default=None, metavar="RANGE",
              help="Frame range: 1001-1100, 1001-1100x2, 1001,1005-1010 (default: all; "
                   "video frames count from 0, or from --start-frame), or in the input's "
                   "timecode: 01:00:10:00-01:00:12:00.")
@click.option("--start-frame", type=click.IntRange(min=0), default=None, metavar="N",
              help="Number a video's frames from N (default 0), in --frames, image-sequence "
                   "outputs and a garbage matte's frames: 1 matches Nuke's numbering of a movie, "
                   "1001 a plate's. Not for sequences (numbered by their files).")
@click.option("--fps", default=None, metavar="RATE",
              help="An image sequence's frame rate: 25, 23.976, 24000/1001 (default: the rate "
                   "its EXR/DPX files state, else 24 for a video output). Not for videos.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", default="auto", show_default=True,
              help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.")
@click.option("--batch-size", default="4", show_default=True, metavar="N|auto",
              help="Frames per forward pass, or auto (from free GPU memory); halved "
                   "automatically on GPU out-of-memory.")
@click.option("--writers", type=click.IntRange(min=1), default=None,
              help="Writer threads per image-sequence output [default: half the CPU cores, 2-8].")
@click.option("--working-size", type=int, default=None,
              help="Short side of the resolution the network runs at "
                   "[default: the checkpoint's, else 768].")
@tta_option()
@click.option("--weights", type=click.Path(dir_okay=False), envvar="POMAGAN_WEIGHTS", default=None,
              help="Checkpoint (default: the bundled one; env POMAGAN_WEIGHTS).")
@click.option("--skip-existing", is_flag=True,
              help="Keep frames whose outputs all exist (resume a crashed or split render); "
                   "refused when they were rendered with other settings (every format; a "
                   "video's unfinished partial file is then rendered afresh).")
@click.option("--overwrite", is_flag=True,
              help="Replace files at the output names that pomagan-post did not write (by default "
                   "such a file stops the render before any work; earlier renders' outputs are "
                   "replaced either way).")
@click.option("--on-error", default="stop", show_default=True, metavar="stop|skip",
              help="stop at a missing/corrupt input frame, or skip it, list it and exit non-zero.")
@click.option("--premultiplied/--straight", default=None,
              help="Foreground alpha convention. Default: the format's - premultiplied for EXR, "
                   "TIFF and ProRes; straight for PNG, DPX, PNG-in-MOV and FFV1. Labelled in the files.")
@click.option("--comp", default=None, metavar="COLOR|IMAGE",
              help="Also write a composite over a colour (green, #00b140, 0.5,0.5,0.5: display "
                   "values) or an image, for review.")
@click.option("--colorspace", default=None, metavar="NAME",
              help="Input colour space override: linear, srgb, rec709, cineon, pq, hlg, camera "
                   "log (logc3, slog3, vlog: videos do not say so) or an OpenColorIO name "
                   "(e.g. ACEScg). Outputs stay in it.")
@click.option("--audio/--no-audio", default=True, show_default=True,
              help="Carry a video's audio into the foreground video.")
@click.option("--garbage-matte", default=None, metavar="IMAGE|SEQUENCE|VIDEO",
              help="Keep only what lies inside this matte (white keeps, black removes), for "
                   "background clutter the model keeps: one image for every frame, or a sequence / "
                   "video with the shot's frame numbers; the shot's size.")
@click.option("--roto", default=None, metavar="IMAGE|SEQUENCE|VIDEO",
              help="The subject's shape drawn on its edge (white inside; 0.5 and up counts): the "
                   "network takes where the person is from it instead of guessing, and pulls the "
                   "soft edge (hair, motion blur) from the picture. For shots where the model "
                   "misses parts or keeps props. Read as --garbage-matte is; one input only.")
@click.option("--exr-compression", default="zip", show_default=True, metavar="NAME",
              help="EXR outputs: zip, zips (1 scanline, Nuke's default), piz, rle, none (lossless); "
                   "pxr24, b44, b44a, dwaa, dwab (lossy: they change the matte).")
@click.option("--display-window", is_flag=True,
              help="EXR outputs too: the picture as shown (display window) only, not the region of "
                   "the frames' data windows (drops overscan; for a stray pixel far outside the "
                   "frame that makes the network see a huge region).")
@temporal_option(" Reads and mattes N frames beyond a --frames range too (not written), so a "
                 "chunk matches a whole render.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write what happened as JSON (an object per input: frames written, "
                   "skipped and failed with reasons, outputs, timings, exit code), even when a "
                   "render fails or is stopped.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages (errors still print).")
@_one_line_errors
def render(inputs: tuple[str, ...], output_dir: str | None, outputs: str, alpha_name: str | None,
           fg_name: str | None, comp_name: str | None, format_: str | None, codec: str,
           frames: str | None, start_frame: int | None, fps: str | None, device: str, precision: str, batch_size: str, writers: int | None,
           working_size: int | None, tta: str, weights: str | None, skip_existing: bool, overwrite: bool,
           on_error: str, premultiplied: bool | None, comp: str | None, colorspace: str | None, audio: bool,
           garbage_matte: str | None, roto: str | None, exr_compression: str, display_window: bool,
           temporal: int, report_path: str | None, quiet: bool) -> None:
    """Render alpha + foreground for INPUT: a video, an image sequence (plate.####.exr,
    %04d, $F4, @), a folder holding one sequence, or a single image.

    With no options, writes <stem>_alpha and <stem>_fg next to the input in <stem>_pomagan/,
    in the input's family (sequence -> same frame numbers, image -> image, video -> ProRes 4444).

    Several INPUTs (shot1.mov shot2.mov, *.mov) render one after the other with the model
    loaded once; one that fails is reported and the rest still render.
    """
    say = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    settings = dict(
        output_dir=output_dir, outputs=[k.strip() for k in outputs.split(",") if k.strip()],
        alpha_name=alpha_name, fg_name=fg_name, comp_name=comp_name, format=format_, codec=codec,
        frames=frames, start_frame=start_frame, fps=fps, device=device, precision=precision, batch_size=batch_size,
        working_size=working_size, tta=tta, weights=weights, writers=writers,
        skip_existing=skip_existing, overwrite=overwrite, on_error=on_error, premultiplied=premultiplied,
        comp=comp, colorspace=colorspace, audio=audio, garbage_matte=garbage_matte, exr_compression=exr_compression,
        display_window=display_window, temporal=temporal, roto=roto, progress=not quiet, log=say)
    if roto is not None and len(inputs) > 1:
        raise click.UsageError(f"--roto is one shot's shape; {len(inputs)} inputs were given: render them one by one")
    if report_path:
        _check_report_path(report_path)
    entries: list[dict[str, Any]] = []
    try:
        # A farm's kill (SIGTERM) or Ctrl-C stops the render at the next frame or so (a batch's
        # network pass, a frame's foreground solve): frames already matted land, writers finish
        # or delete their temporary files; the batch in hand is rendered again on resume.
        with StopSignals("stopping: frames written so far are kept (Ctrl-C again: at once)"):
            _render_inputs(inputs, settings, entries)
    finally:
        if report_path:
            try:
                _write_report(report_path, entries)
            except OSError as exc:  # the folder went read-only or full during the render
                click.echo(f"pomagan-post: error: cannot write the report {report_path}: "
                           f"{exc.strerror or exc}", err=True)
                if sys.exc_info()[0] is None:  # (a render error in flight keeps its exit code)
                    sys.exit(1)


def _check_report_path(path: str) -> None:
    """``--report`` writes JSON: never over a picture, a video or any file that is not an
    earlier render's report (a plate frame typed by mistake would be lost)."""
    import json

    from .io.sequence import IMAGE_EXTENSIONS
    from .io.video import is_video_path
    from .io.atomic import refuse_unwritable

    if Path(path).suffix.lower() in IMAGE_EXTENSIONS or is_video_path(path):
        raise BadInputError(f"--report {path}: the report is JSON, not a picture or video; "
                            "name it e.g. render_report.json")
    try:  # said now, not after the render
        refuse_unwritable([Path(path).absolute().parent])
    except PomaganError as exc:
        raise PomaganError(f"--report {path}: {exc}") from None
    if Path(path).is_file():
        try:
            earlier = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            earlier = None
        if not (isinstance(earlier, list) and all(isinstance(e, dict) and "input" in e for e in earlier)):
            raise BadInputError(f"--report {path}: the file is there and is not an earlier render's "
                                "report; refusing to write over it")


def _write_report(path: str, entries: list[dict[str, Any]]) -> None:
    """``render --report``: the entries as a JSON array, written atomically."""
    import json

    from .io.atomic import atomic_path

    with atomic_path(path) as temp:
        temp.write_text("[\n" + ",\n".join(json.dumps(entry) for entry in entries) + "\n]\n")


def _render_inputs(inputs: tuple[str, ...], settings: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    """The inputs one after the other (the model loaded once); exits with the first failure's
    code after listing them. ``entries`` gets each input's report or error."""
    from .renderer import build_engine, output_stem

    say = settings["log"]
    alpha_name, fg_name, comp_name = settings["alpha_name"], settings["fg_name"], settings["comp_name"]
    output_dir = settings["output_dir"]
    if len(inputs) == 1:
        code = _render_one(inputs[0], settings, entries)
        if code:
            sys.exit(code)
        return
    named = [f"--{k}-name" for k, v in (("alpha", alpha_name), ("fg", fg_name), ("comp", comp_name)) if v]
    if named:
        raise BadInputError(f"{', '.join(named)} names one shot's outputs; with {len(inputs)} inputs "
                            "leave it out (each input's outputs are named after it)")
    if output_dir is not None:  # one folder for all: two inputs of one name would collide
        seen: dict[str, str] = {}
        for item in inputs:
            try:
                stem = output_stem(item)
            except PomaganError:
                continue  # reported when its turn comes
            if stem in seen:
                raise BadInputError(f"{seen[stem]} and {item} would both write {stem}_* into "
                                    f"{output_dir}; render them to separate folders")
            seen[stem] = item
    from .engine import resolve_batch_size

    settings["engine"] = build_engine(
        settings["weights"], settings["device"], settings["precision"], settings["working_size"],
        resolve_batch_size(settings["batch_size"], name="batch size"), say, settings["tta"])
    failed: list[tuple[str, int]] = []
    for index, item in enumerate(inputs, 1):
        say(f"[{index}/{len(inputs)}] {item}")
        try:
            code = _render_one(item, settings, entries)
        except Stopped:
            raise
        except PomaganError as exc:
            click.echo(f"pomagan-post: {exc.label}: {_naming(item, exc)}", err=True)
            code = exc.exit_code
        if code:
            failed.append((item, code))
    if failed:
        listed = ", ".join(f"{item} (exit {code})" for item, code in failed)
        click.echo(f"pomagan-post: error: {len(failed)} of {len(inputs)} inputs not fully rendered: "
                   f"{listed}", err=True)
        sys.exit(failed[0][1])
    say(f"rendered all {len(inputs)} inputs")


def _render_one(input: str, settings: dict[str, Any], entries: list[dict[str, Any]]) -> int:
    """One input through :func:`pomagan_post.renderer.render`, its report on stderr and in
    ``entries``; returns the exit code (0, or 3 when frames were skipped) or raises the error."""
    try:
        code, report = _render_and_say(input, settings)
    except PomaganError as exc:
        # A render stopped or failed part-way: what it had written so far, with the error.
        partial = getattr(exc, "render_report", None)
        done = partial.to_dict() if partial is not None else {"input": input}
        if partial is None and isinstance(exc, MissingFramesError) and exc.frames:  # (found before rendering)
            done["failed"] = {str(frame): _naming(input, exc) for frame in exc.frames}
        entries.append({**done, "ok": False, "error": _naming(input, exc), "exit_code": exc.exit_code})
        raise
    entries.append({**report.to_dict(), "exit_code": code})
    return code


def _render_and_say(input: str, settings: dict[str, Any]) -> tuple[int, Any]:
    """:func:`_render_one` without the bookkeeping: (exit code, the render's report)."""
    from .io.sequence import format_frame_list
    from .renderer import render as render_shot

    say = settings["log"]
    try:
        stop_point()  # a signal that came before this input (loading the model, the last input)
        report = render_shot(input, **settings)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (render's StopSignals), at a batch boundary
        signum = interrupt_signal(exc)
        stopped = Stopped(
            f"{signum.name}; every frame file written is complete, and a video output keeps the "
            "frames encoded so far in its hidden .partial file: run the same command with "
            "--skip-existing to render the rest", signum)
        stopped.render_report = getattr(exc, "render_report", None)  # type: ignore[attr-defined]
        raise stopped from None
    except PomaganError:
        raise
    except OSError as exc:  # disk full, permission denied, ...: one line, not a traceback
        error = PomaganError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        error.render_report = getattr(exc, "render_report", None)  # type: ignore[attr-defined]
        raise error from None
    if report.written:
        say(f"wrote {len(report.written)} frame(s) in {report.seconds:.1f} s ({report.fps:.2f} fps):")
    if report.skipped_existing:
        say(f"skipped {len(report.skipped_existing)} frame(s) already rendered")
    for kind, path in report.outputs.items():
        label = (f" ({report.alpha_mode}{'; audio: ' + report.audio if report.audio else ''})"
                 if kind == "fg" else "")
        say(f"  {kind}: {path}{label}")
    if report.failed:
        for frames, reason in _by_reason(report.failed, format_frame_list):
            click.echo(f"pomagan-post: {frames} failed: {reason}", err=True)
        error = MissingFramesError(
            f"{len(report.failed)} frame(s) not rendered: {format_frame_list(report.failed)}",
            sorted(report.failed))
        click.echo(f"pomagan-post: error: {error}", err=True)
        return error.exit_code, report
    return 0, report


@main.command()
@click.option("--size", default=None, metavar="WxH", help="Frame size of the raw frames on stdin (required).")
@click.option("--pix-fmt", default="rgb24", show_default=True, metavar="FMT",
              help="Input pixel format: rgb24, rgb48le, rgba, rgba64le, gbrpf32le, gray, gray16le, "
                   "grayf32le (an input alpha channel is ignored), or limited-range Y'CbCr 4:4:4: "
                   "yuv444p, yuv444p10le, yuv444p12le, yuv444p16le (super-whites kept, see --matrix); "
                   "full range: yuvj444p.")
@click.option("--output", default=None, metavar="KIND",
              help="alpha (matte), rgba (colour + alpha), fg (premultiplied colour, no alpha) or "
                   "comp (over --comp) [default: comp with --comp, else rgba].")
@click.option("--out-pix-fmt", default=None, metavar="FMT",
              help="alpha: gray, gray16le, grayf32le; rgba: rgba, rgba64le, gbrapf32le, yuva444p10le, "
                   "yuva444p16le; fg/comp: rgb24, rgb48le, gbrpf32le, yuv444p10le, yuv444p16le "
                   "[default: RGB at the input's depth].")
@click.option("--matrix", default=None, metavar="NAME",
              help="Y'CbCr matrix of yuv* frames in or out: bt709, bt601, bt2020, smpte240m, fcc "
                   "(ffmpeg's names: smpte170m, bt470bg, bt2020nc too) [default: bt601 for standard "
                   "definition, else bt709, as players read untagged video].")
@click.option("--comp", default=None, metavar="COLOR|IMAGE",
              help="Background for --output comp: green, #00b140, 0.5,0.5,0.5 (display values) or an image.")
@click.option("--colorspace", default="rec709", show_default=True, metavar="NAME",
              help="Colour space of the input values: rec709, srgb, linear, pq, hlg, cineon, logc3, "
                   "slog3, vlog or an OpenColorIO name. Outputs stay in it.")
@click.option("--premultiplied/--straight", default=None,
              help="--output rgba colour premultiplied by alpha (default) or straight.")
@click.option("--batch-size", type=int, default=4, show_default=True, help="Frames per forward pass.")
@click.option("--working-size", type=int, default=None,
              help="Short side of the resolution the network runs at [default: the checkpoint's, else 768].")
@tta_option()
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", default="auto", show_default=True,
              help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.")
@click.option("--weights", type=click.Path(dir_okay=False), envvar="POMAGAN_WEIGHTS", default=None,
              help="Checkpoint (default: the bundled one; env POMAGAN_WEIGHTS).")
@click.option("--pixel-aspect", default=None, metavar="RATIO",
              help="Pixel width / height of the frames (2, 4:3, 1.333): an anamorphic stream is "
                   "matted desqueezed [default: 1, square pixels].")
@click.option("--garbage-matte", default=None, metavar="IMAGE",
              help="One image, the frames' size, limiting every frame's matte (white keeps, black "
                   "removes; its alpha when it has a meaningful one): a locked-off shot's clutter.")
@temporal_option(" Frames come out N frames behind the ones going in (the last N at the end).")
@click.option("--threads", type=int, default=None,
              help="Threads converting frames to and from bytes beside the network [default: the CPU "
                   "cores, 2-8].")
@click.option("-q", "--quiet", is_flag=True, help="No messages on stderr (errors still print).")
@_one_line_errors
def pipe(size: str | None, pix_fmt: str, output: str | None, out_pix_fmt: str | None, matrix: str | None,
         comp: str | None, colorspace: str, premultiplied: bool | None, batch_size: int, working_size: int | None, tta: str,
         device: str, precision: str, weights: str | None, pixel_aspect: str | None,
         garbage_matte: str | None, temporal: int, threads: int | None, quiet: bool) -> None:
    """Matte raw video frames from stdin to stdout, frame for frame (for ffmpeg pipelines).

    \b
    ffmpeg -i shot.mov -vf scale=flags=bilinear -f rawvideo -pix_fmt yuv444p10le - \\
      | pomagan-post pipe --size 1920x1080 --pix-fmt yuv444p10le --matrix bt709 \\
          --output rgba --straight --out-pix-fmt rgba64le \\
      | ffmpeg -f rawvideo -pix_fmt rgba64le -video_size 1920x1080 -framerate 24 -i - \\
          -c:v png -pix_fmt rgba64be rgba.mov

    Only frames go to stdout; messages go to stderr. Exit codes: 0 done; 2 bad option (before
    any output); 3 stdin ended inside a frame (the complete frames before it are written);
    141 the reader of stdout went away (quietly, like other Unix filters).
    """
    import os

    from .pipe import pipe as run_pipe

    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    for name, stream in (("stdout", stdout), ("stdin", stdin)):
        if stream.isatty():
            raise BadInputError(f"{name} is a terminal: pipe raw frames {'into' if name == 'stdin' else 'out of'} "
                                "pomagan-post pipe (see pomagan-post pipe --help)")
    say = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    try:
        run_pipe(stdin, stdout, size=size, pix_fmt=pix_fmt, output=output, out_pix_fmt=out_pix_fmt,
                 matrix=matrix, comp=comp, colorspace=colorspace, premultiplied=premultiplied, batch_size=batch_size,
                 working_size=working_size, tta=tta, device=device, precision=precision,
                 weights=weights, pixel_aspect=pixel_aspect, garbage_matte=garbage_matte,
                 temporal=temporal, threads=threads, log=say)
        stdout.flush()
    except KeyboardInterrupt as exc:  # Ctrl-C to the pipeline: a stop, as render's and pomagan-ffmpeg's
        signum = interrupt_signal(exc)
        raise Stopped(f"{signum.name}", signum) from None
    except BrokenPipeError:
        # The reader went away. Point stdout at /dev/null so the interpreter's final flush
        # cannot print "Exception ignored ... BrokenPipeError", and end like a SIGPIPE'd filter.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        sys.exit(141)


@main.command()
@click.argument("output", metavar="OUT.pt", type=click.Path(dir_okay=False))
@click.option("--target", type=click.Choice(["nuke"]), required=True,
              help="Host to export for: nuke (TorchScript for CatFileCreator / Inference).")
@click.option("--weights", type=click.Path(dir_okay=False), envvar="POMAGAN_WEIGHTS", default=None,
              help="Checkpoint (default: the bundled one; env POMAGAN_WEIGHTS).")
@click.option("--working-size", type=int, default=None,
              help="Default of the working_size knob: short side the network runs at "
                   "[default: the checkpoint's, else 768].")
@click.option("--upsample", type=click.Choice(["guided", "bilinear"]), default="guided",
              show_default=True, help="Alpha upsampling inside the module (the guided knob's default).")
@tta_option("Mirror-image averaging inside the module (the flip knob's default)")
@_one_line_errors
def export(output: str, target: str, weights: str | None, working_size: int | None, upsample: str,
           tta: str) -> None:
    """Write the model as OUT.pt for another host (see nuke_plugin/README.md for Nuke).

    An earlier export at OUT.pt is replaced; any other file there is refused."""
    import torch

    from .checkpoint import load_checkpoint, untrained_warning
    from .export import NUKE_CHANNELS_IN, NUKE_CHANNELS_OUT, export_nuke, is_nuke_export

    if Path(output).suffix.lower() != ".pt":
        raise BadInputError(f"the export is a TorchScript file: name it OUT.pt, not {output}")
    if Path(output).exists() and not is_nuke_export(output):  # (a torch.save checkpoint is a zip too)
        raise BadInputError(f"{output} is there and is not an earlier export of this tool; "
                            "refusing to write over it")
    model = load_checkpoint(weights)
    warning = untrained_warning(model.checkpoint_info)
    if warning:
        click.echo(f"pomagan-post: warning: {warning}", err=True)
    try:
        path = export_nuke(model, output, working_size=working_size, upsample=upsample, tta=tta)
    except OSError as exc:
        raise PomaganError(f"{exc.strerror or exc}: {exc.filename or output}") from None
    click.echo(f"wrote {path} (TorchScript, torch {torch.__version__}, variant {model.variant})", err=True)
    click.echo(f"  CatFileCreator: Channels In  {NUKE_CHANNELS_IN}", err=True)
    click.echo(f"                  Channels Out {NUKE_CHANNELS_OUT}", err=True)
    click.echo("                  custom knobs: working_size (Int), guided (Bool), "
               "guide_radius (Int), guide_eps (Float), flip (Bool), pixel_aspect (Float: 2 for a 2x "
               "anamorphic plate), roto (Bool: the person's shape from the input's alpha)", err=True)
