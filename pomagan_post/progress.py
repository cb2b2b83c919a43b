"""Progress on stderr for long work (renders, training, evaluation).

On a terminal: a live tqdm bar (fps, ETA). Anywhere else (a render farm's task log, ``nohup``,
a CI log) a bar's carriage-return redraws pile up into one endless line, so
:class:`LineProgress` writes whole lines instead, one every ``interval`` seconds and one at the
end, in a fixed form that farm log parsers can match::

    shot: 120/1000 frames (12%), 9.8 frames/s, 0:01:29 left
    shot: 1000/1000 frames (100%) in 0:01:42, 9.8 frames/s

``POMAGAN_PROGRESS_INTERVAL`` (seconds) changes the interval of those lines.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from typing import Any, TextIO

__all__ = ["LineProgress", "progress"]

#: Seconds between two progress lines in a log (not a terminal).
DEFAULT_INTERVAL = 30.0


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


class LineProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``close`` interface, written as whole lines.

    Args:
        total: the count at completion.
        desc: what is progressing (a shot's name, ``train``).
        unit: what is counted, singular (``frame``, ``step``).
        initial: the count already done (a resumed run); the rate counts only new work.
        interval: seconds between lines (at most one line per interval; always one at the end).
        stream: where the lines go.
    """

    def __init__(self, total: int | None, desc: str = "", unit: str = "it", initial: int = 0,
                 interval: float | None = None, stream: TextIO | None = None) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = int(initial)
        self._initial = int(initial)
        if interval is None:
            interval = float(os.environ.get("POMAGAN_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
        self.interval = max(0.0, float(interval))
        self.stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()
        self._last = self._start
        self._postfix = ""
        self._closed = False

    def _counts(self) -> str:
        units = self.unit + ("s" if self.unit and not self.unit.endswith("s") else "")
        if self.total:
            return f"{self.n}/{self.total} {units} ({100 * self.n // self.total}%)"
        return f"{self.n} {units}"

    def _rate(self, elapsed: float) -> float:
        return (self.n - self._initial) / elapsed if elapsed > 0 else 0.0

    def _write(self, text: str) -> None:
        prefix = f"{self.desc}: " if self.desc else ""
        self.stream.write(f"{prefix}{text}{self._postfix}\n")
        self.stream.flush()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last < self.interval or (self.total and self.n >= self.total):
            return  # the end has its own line
        self._last = now
        rate = self._rate(now - self._start)
        left = ""
        if self.total and rate > 0:
            left = f", {_duration((self.total - self.n) / rate)} left"
        self._write(f"{self._counts()}, {rate:.3g} {self.unit}s/s{left}")

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        """Extra ``name=value`` pairs at the end of the next lines (e.g. a training loss)."""
        self._postfix = "".join(f", {k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.n == self._initial:
            return  # nothing happened: no line
        elapsed = time.monotonic() - self._start
        self._write(f"{self._counts()} in {_duration(elapsed)}, {self._rate(elapsed):.3g} {self.unit}s/s")


def progress(total: int | None, desc: str = "", unit: str = "it", initial: int = 0,
             stream: TextIO | None = None, **tqdm_options: Any) -> Any:
    """A progress bar on ``stream`` (default stderr): tqdm on a terminal, else :class:`LineProgress`."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc or None, unit=unit, initial=initial, file=stream,
                    dynamic_ncols=True, **tqdm_options)
    return LineProgress(total, desc, unit, initial, stream=stream)
