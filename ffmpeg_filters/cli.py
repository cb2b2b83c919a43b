"""``pomagan-ffmpeg INPUT OUTPUT --preset NAME [-- extra ffmpeg args]``: a thin click wrapper
over :func:`ffmpeg_filters.run`. Errors are one line on stderr with a non-zero exit code."""

from __future__ import annotations

import click

from pomagan_post import __version__
from pomagan_post.cli import OneLineCommand, interrupt_signal, one_line_errors
from pomagan_post.engine import TTA_MODES
from pomagan_post.errors import Stopped
from pomagan_post.stopping import StopSignals
from pomagan_post.temporal import MAX_RADIUS

from .pipeline import build_commands, check_paths, format_commands, run
from .presets import PRESETS

__all__ = ["main"]

_PRESET_HELP = "\n".join(f"{name:{max(map(len, PRESETS))}s} {p.description}" for name, p in PRESETS.items())


@click.command(cls=OneLineCommand, context_settings={"help_option_names": ["-h", "--help"]},
               epilog="\b\nPresets:\n" + _PRESET_HELP)
@click.argument("input", metavar="INPUT")
@click.argument("output", metavar="OUTPUT")
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- FFMPEG ARGS...]")
@click.option("-p", "--preset", required=True, metavar="NAME",
              help="Encoder preset: " + ", ".join(PRESETS) + " (list below).")
@click.option("--comp", default=None, metavar="COLOR|IMAGE",
              help="review: background colour (green, #00b140, 0.5,0.5,0.5) or image [default: grey].")
@click.option("--working-size", type=int, default=None, help="pomagan-post pipe --working-size.")
@click.option("--batch-size", type=int, default=None, help="pomagan-post pipe --batch-size.")
@click.option("--tta", type=click.Choice(TTA_MODES), default=None,
              help="pomagan-post pipe --tta [default: none].")
@click.option("--device", default=None, help="pomagan-post pipe --device (auto, cpu, cuda, cuda:N).")
@click.option("--precision", default=None, help="pomagan-post pipe --precision.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Checkpoint for pomagan-post pipe.")
@click.option("--garbage-matte", default=None, metavar="IMAGE",
              help="pomagan-post pipe --garbage-matte: one image, the picture's size, limiting every "
                   "frame's matte (white keeps, black removes).")
@click.option("--temporal", type=click.IntRange(0, MAX_RADIUS), default=None, metavar="N",
              help="pomagan-post pipe --temporal: steady the matte over N frames either side "
                   "(2 is a good start) [default: 0, each frame on its own].")
@click.option("--frames", default=None, metavar="RANGE",
              help="Only these frames, 0-based like pomagan-post render counts a video: 100-199, "
                   "100- (to the end) or 100, or in the input's timecode, 01:00:10:00-01:00:12:00; "
                   "audio and timecode follow.")
@click.option("--audio/--no-audio", default=True, show_default=True, help="Carry the input's audio.")
@click.option("-y", "--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--dry-run", is_flag=True, help="Print the three commands as one shell pipeline; run nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Do not echo the stages' messages (errors still print).")
@click.version_option(__version__, prog_name="pomagan-ffmpeg")
@one_line_errors("pomagan-ffmpeg")
def main(input: str, output: str, extra_args: tuple[str, ...], preset: str, comp: str | None,
         working_size: int | None, batch_size: int | None, tta: str | None, device: str | None, precision: str | None,
         weights: str | None, garbage_matte: str | None, temporal: int | None, frames: str | None, audio: bool,
         overwrite: bool,
         dry_run: bool, quiet: bool) -> None:
    """Matte INPUT into OUTPUT: ffmpeg decode | pomagan-post pipe | ffmpeg encode, no temporary
    frames. Arguments after -- go to the encoding ffmpeg (output options). Size, frame rate,
    timecode, colour tags and audio come from INPUT (ffprobe).
    """
    options = dict(comp=comp, working_size=working_size, batch_size=batch_size, tta=tta, device=device,
                   precision=precision, weights=weights, garbage_matte=garbage_matte, temporal=temporal,
                   audio=audio, frames=frames)
    if dry_run:  # the same path checks the run makes, so that a dry run says what the run would
        check_paths(input, output, preset, overwrite)
        click.echo(format_commands(build_commands(input, output, preset, extra_args=extra_args, **options)))
        return
    try:
        with StopSignals():  # a farm's kill or Ctrl-C: run() stops the stages, removes its temp file
            report = run(input, output, preset, extra_args=extra_args, overwrite=overwrite, quiet=quiet,
                         progress=not quiet, **options)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM
        signum = interrupt_signal(exc)
        raise Stopped(f"{signum.name}; nothing written to {output} (it appears only when the whole clip "
                      "is done): run the same command again", signum) from None
    if not quiet:
        rate = f", {report.frames / report.seconds:.2f} fps" if report.frames and report.seconds > 0 else ""
        click.echo(f"wrote {report.output} ({preset}): {report.frames} frame(s) in {report.seconds:.1f} s{rate}",
                   err=True)
