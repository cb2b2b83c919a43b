"""Atomic file writes: a temporary name in the destination folder, renamed into place.

Readers never see a half-written file under the final name; a failed write leaves nothing.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import PomaganError

__all__ = ["atomic_path", "Claim", "being_written", "claimed_by", "refuse_unwritable", "takes_files"]


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


def _claim_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


class Claim:
    """This process's claim on writing ``target``, held until :meth:`release`: an exclusive
    ``flock`` on the hidden ``.<name>.lock`` beside it, which holds the process id. A second
    process claiming the same target (a farm's two chunks rendering into one video, a task
    queued again while the first still runs, a pomagan-ffmpeg run and a render of one name) is
    refused at once, naming the first (``what`` it is: render, pomagan-ffmpeg), instead of
    both writing the same hidden partial file. The kernel drops the lock when its holder dies,
    so a killed render's lock file holds no one. Where ``fcntl`` is missing (Windows) nothing
    is locked."""

    def __init__(self, target: str | os.PathLike[str], what: str = "render") -> None:
        self.target = Path(target)
        self.path = _claim_path(self.target)
        self._file = None
        try:
            import fcntl
        except ImportError:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)  # (as the writer would make it)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise being_written(self.target, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {what}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self.path.unlink(missing_ok=True)
            self._file.close()
            self._file = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def being_written(target: str | os.PathLike[str], holder: str) -> Exception:
    """The error for a target another process holds a :class:`Claim` on (``holder``: what its
    lock file says, ``"<pid> <what>"``)."""
    from ..errors import BadInputError

    pid, _, what = holder.partition(" ")
    return BadInputError(f"{target} is being written by another {what or 'process'} (process "
                         f"{pid or 'unknown'}); wait for it to finish, or write to another name")


def claimed_by(target: str | os.PathLike[str]) -> str | None:
    """What the lock file of another process holding a :class:`Claim` on ``target`` right now
    says (``"<pid> <what>"``), else None; "" when it holds one without saying whose."""
    path = _claim_path(Path(target))
    try:
        import fcntl

        handle = open(path)
    except (ImportError, OSError):
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return handle.read().strip()
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def refuse_unwritable(folders: Iterable[str | os.PathLike[str]]) -> None:
    """Before any work: each output folder (or, where it is still to be made, the folder it
    would be made in) takes new files, so a read-only disk or folder is said at once, not after
    the model has matted the first batch."""
    for folder in dict.fromkeys(Path(os.path.abspath(f)) for f in folders):
        existing = folder
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise PomaganError(f"cannot write to {folder}: {existing} is a file, not a folder")
        if not takes_files(existing):
            raise PomaganError(f"cannot write to {existing}: read-only or no permission"
                               + (f" (to make {folder})" if existing != folder else ""))


def takes_files(folder: Path) -> bool:
    """Whether a file can be made in ``folder``, tried (a permission check alone passes for
    root in an immutable folder, or on a share that refuses writes)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".pomagan-write-check.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True
