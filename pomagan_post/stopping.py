"""Stopping long work cleanly on a signal: a render farm's or scheduler's kill (SIGTERM), Ctrl-C.

The signal handler only records the request; the work stops at its next safe point (between
batches of a render, between training steps, in ``pomagan-ffmpeg``'s watch loop), where
:func:`stop_point` raises :class:`SignalStop`. Raising from the handler itself, as Python does
for Ctrl-C by default, lands wherever the main thread happens to be: also between a lock's
acquire and the block that would release it (a writer pool's, a queue's), and the clean-up then
waits on that lock forever. A second Ctrl-C stops at once (someone insists); a second SIGTERM
does not (a process group's kill can reach a process twice), the farm's SIGKILL after its grace
period does.

Handlers are installed only from the main thread (a host application's worker thread, e.g. a
Nuke render, keeps the host's own handling) and restored on leaving.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

__all__ = ["SignalStop", "StopSignals", "stop_point"]

_active: list["StopSignals"] = []


class SignalStop(KeyboardInterrupt):
    """Work stopped at a safe point because of signal ``signum`` (unwinds like Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """``with StopSignals(notice) as stop:`` SIGINT and SIGTERM set ``stop.signum`` instead of
    interrupting; :meth:`check` (or :func:`stop_point` anywhere inside) raises
    :class:`SignalStop` once one came. ``notice`` is written to stderr when the first signal
    arrives (with a raw write: a buffered print from a handler can collide with the main
    thread's own writes)."""

    def __init__(self, notice: str | None = None) -> None:
        self.signum: int | None = None
        self._notice = notice
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        _active.append(self)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise SignalStop(signum)  # Ctrl-C twice: stop now
            return  # a second SIGTERM: the stop is under way
        self.signum = signum
        if self._notice:
            try:
                os.write(2, f"\n{signal.Signals(signum).name}: {self._notice}\n".encode())
            except OSError:
                pass

    def check(self) -> None:
        """Raise :class:`SignalStop` if a signal came."""
        if self.signum is not None:
            raise SignalStop(self.signum)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if self in _active:
            _active.remove(self)


def stop_point() -> None:
    """A safe point to stop at: raises :class:`SignalStop` when a signal came while a
    :class:`StopSignals` is active (in any thread's view); otherwise does nothing."""
    for stop in list(_active):
        stop.check()
