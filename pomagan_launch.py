"""Console entry points of ``pomagan-post``, ``pomagan-train`` and ``pomagan-ffmpeg``.

Each command's module imports torch, which takes a second or two; a Ctrl-C in that time used to
end the command with a Python traceback, or, caught by a bare ``except`` somewhere inside the
import, be lost, and the command ran to the end. Here the import runs first with Ctrl-C only
noted, and a Ctrl-C during it ends the command the way a Ctrl-C later does: one line on stderr,
exit 130, before any work.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any


def _run(module: str, prog: str) -> Any:
    noted: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    except ValueError:  # not the main thread: no handler of ours, KeyboardInterrupt as it comes
        previous = None
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        noted.append(signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if noted:
        print(f"{prog}: stopped: SIGINT (while starting)", file=sys.stderr, flush=True)
        sys.exit(130)
    return main()


def post() -> Any:
    return _run("pomagan_post.cli", "pomagan-post")


def train() -> Any:
    return _run("pomagan_train.cli", "pomagan-train")


def ffmpeg() -> Any:
    return _run("ffmpeg_filters.cli", "pomagan-ffmpeg")
