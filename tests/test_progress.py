"""Progress output: whole lines in a log (farm task logs, nohup), a live bar on a terminal."""

from __future__ import annotations

import io
import re

from pomagan_post.progress import LineProgress, progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_with_counts_rate_and_time_left() -> None:
    log = io.StringIO()
    bar = progress(10, desc="shot", unit="frame", stream=log)
    assert isinstance(bar, LineProgress)
    bar.interval = 0.0  # a line at every update
    for _ in range(10):
        bar.update(1)
    bar.set_postfix(g="0.123")
    bar.close()
    bar.close()  # once only
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 10
    assert re.fullmatch(r"shot: 1/10 frames \(10%\), [0-9.e+]+ frames/s, 0:00:00 left", lines[0]), lines[0]
    assert re.fullmatch(r"shot: 9/10 frames \(90%\), [0-9.e+]+ frames/s, 0:00:00 left", lines[8]), lines[8]
    assert re.fullmatch(r"shot: 10/10 frames \(100%\) in 0:00:00, [0-9.e+]+ frames/s, g=0.123", lines[9]), lines[9]


def test_lines_come_at_most_once_an_interval_and_resumed_counts_start_where_they_were() -> None:
    log = io.StringIO()
    bar = LineProgress(1000, desc="train", unit="step", initial=400, interval=3600, stream=log)
    for _ in range(100):
        bar.update(1)
    assert log.getvalue() == ""  # within the interval
    bar.close()
    assert re.fullmatch(r"train: 500/1000 steps \(50%\) in 0:00:00, [0-9.e+]+ steps/s\n", log.getvalue())
    idle = io.StringIO()
    LineProgress(5, stream=idle).close()
    assert idle.getvalue() == ""  # nothing done, nothing said


def test_a_terminal_gets_a_live_bar() -> None:
    term = _Terminal()
    bar = progress(3, desc="shot", unit="frame", stream=term)
    bar.update(3)
    bar.close()
    assert "\r" in term.getvalue() and "3/3" in term.getvalue()
