"""The ``pomagan-post`` command line: thin click wrappers over the library.

Messages go to stderr (stdout may be a pipe); a :class:`~pomagan_post.errors.PomaganError`
becomes one line on stderr and the error's exit code, never a traceback.
"""

from __future__ import annotations

import functools
import platform
import sys
from typing import Any, Callable

import click

from . import __version__
from .errors import PomaganError

__all__ = ["main"]


def _one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into ``pomagan-post: error: ...`` and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PomaganError as exc:
            message = " ".join(str(exc).split())
            click.echo(f"pomagan-post: error: {message}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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

    from .checkpoint import read_checkpoint_info
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
    ckpt = read_checkpoint_info(weights)
    label = "bundled default" if weights is None else "weights"
    out(f"{label}: {ckpt['path']}")
    out(f"  variant: {ckpt['variant']}")
    if ckpt["trained"]:
        out("  status: trained")
    else:
        out("  status: UNTRAINED PLACEHOLDER (random weights: mattes are meaningless)")
    if ckpt["description"]:
        out(f"  description: {ckpt['description']}")
    out(f"  trained on: {ckpt['training_data'] or 'nothing (untrained)'}")
    if ckpt["created"]:
        out(f"  created: {ckpt['created']}")
