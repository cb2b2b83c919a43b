"""Console entry points of ``pomagan-post``, ``pomagan-train`` and ``pomagan-ffmpeg``.

Each command's module imports torch, which takes a second or two; a Ctrl-C in that time used to
end the command with a Python traceback. Here the import runs first, and a Ctrl-C during it ends
the command the way a Ctrl-C later does: one line on stderr, exit 130.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def _run(module: str, prog: str) -> Any:
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        print(f"{prog}: stopped: SIGINT (while starting)", file=sys.stderr, flush=True)
        sys.exit(130)
    return main()


def post() -> Any:
    return _run("pomagan_post.cli", "pomagan-post")


def train() -> Any:
    return _run("pomagan_train.cli", "pomagan-train")


def ffmpeg() -> Any:
    return _run("ffmpeg_filters.cli", "pomagan-ffmpeg")
