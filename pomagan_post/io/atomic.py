"""Atomic file writes: a temporary name in the destination folder, renamed into place.

Readers never see a half-written file under the final name; a failed write leaves nothing.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path"]


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike[str], fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it replaces ``path``.

    The temporary name keeps ``path``'s extension (writers that pick a format by extension
    work), parent folders are created, and the file gets the usual mode (``0666 & ~umask``,
    not ``mkstemp``'s 0600). On an exception the temporary file is removed and ``path`` is
    untouched.

    Args:
        path: the final file.
        fsync: flush the file to disk before the rename (for files that must survive a crash).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
