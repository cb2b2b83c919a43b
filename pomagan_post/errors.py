"""One error root for the whole product.

Library code raises these; the CLI turns them into one-line messages and non-zero exit codes.
"""

from __future__ import annotations

__all__ = [
    "PomaganError",
    "BadInputError",
    "MissingFramesError",
    "UnsupportedFormatError",
    "WeightsNotFoundError",
    "CheckpointError",
    "DeviceError",
    "Stopped",
    "frame_list",
]


class PomaganError(Exception):
    """Base class of every error POMAGAN Post raises on purpose."""

    exit_code = 1
    #: what the CLI prints before the message (``PROG: error: ...``); a deliberate stop says so
    label = "error"


class BadInputError(PomaganError, ValueError):
    """Input data or arguments that cannot be processed (wrong shape, bad option value, ...)."""

    exit_code = 2


class MissingFramesError(PomaganError):
    """Frames of a sequence are missing or unreadable; ``frames`` lists their numbers."""

    exit_code = 3

    def __init__(self, message: str, frames: list[int] | None = None) -> None:
        super().__init__(message)
        self.frames = list(frames or [])


def frame_list(numbers: list[int], limit: int = 8) -> str:
    """Frame numbers for a message: ``"3, 4, 9"``, the first ``limit`` then ``", ... (N in all)"``."""
    text = ", ".join(str(n) for n in numbers[:limit])
    return text + (f", ... ({len(numbers)} in all)" if len(numbers) > limit else "")


class UnsupportedFormatError(PomaganError):
    """A file format, codec or pixel format this tool cannot read or write."""

    exit_code = 4


class WeightsNotFoundError(PomaganError, FileNotFoundError):
    """A checkpoint path that does not exist (or no bundled default installed)."""

    exit_code = 5


class CheckpointError(PomaganError):
    """A checkpoint file that exists but is corrupt, foreign or for another variant."""

    exit_code = 5


class DeviceError(PomaganError):
    """A device or precision that is not available on this machine."""

    exit_code = 6


class Stopped(PomaganError):
    """Work stopped on purpose by a signal (Ctrl-C, a scheduler's SIGTERM) after leaving its
    outputs consistent; the exit code is 128 + the signal number, as a shell reports a kill."""

    label = "stopped"

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
