"""Stopping on a signal at a safe point (``pomagan_post.stopping``): the handler only records the
signal, so nothing is interrupted half-way (a lock held, a queue being filled); the work stops
where it checks, between batches of a render."""

from __future__ import annotations

import os
import signal
import threading
from fractions import Fraction
from pathlib import Path

import pytest

from pomagan_post import Engine, load_checkpoint
from pomagan_post.renderer import render
from pomagan_post.stopping import SignalStop, StopSignals, stop_point

from .imaging import make_exr_plate


def test_a_signal_is_recorded_not_raised_where_the_work_happens_to_be() -> None:
    lock = threading.Lock()
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        with lock:  # a signal arriving here used to raise inside the block
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes: give it the chance
                pass
        assert stop.signum == signal.SIGTERM and not lock.locked()
        with pytest.raises(SignalStop) as raised:
            stop_point()
        assert raised.value.signum == signal.SIGTERM and isinstance(raised.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored on leaving
    stop_point()  # outside any StopSignals: nothing to stop


def test_ctrl_c_twice_stops_at_once_sigterm_twice_does_not() -> None:
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a process group's kill can arrive twice
        for _ in range(1000):
            pass
        assert stop.signum == signal.SIGTERM
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
        assert stop.signum == signal.SIGINT
        with pytest.raises(SignalStop) as raised:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        assert raised.value.signum == signal.SIGINT


def test_a_render_stops_after_the_batch_in_hand(tmp_path: Path) -> None:
    """SIGTERM while frame 3 is written (batches of 2): frame 4, in the same batch, is still
    written; the render stops before frame 5 with SignalStop carrying what was written."""
    engine = Engine(load_checkpoint(None), device="cpu", working_size=32, batch_size=2)
    pattern, _ = make_exr_plate(tmp_path, frames=tuple(range(1, 9)))

    def kill_at_3(number: int, done: int, total: int) -> None:
        if number == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with StopSignals(), pytest.raises(SignalStop) as raised:
        render(pattern, engine=engine, callback=kill_at_3)
    assert raised.value.signum == signal.SIGTERM
    assert raised.value.render_report.written == [1, 2, 3, 4]  # type: ignore[attr-defined]
    out = tmp_path / "plate_pomagan"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"plate_{kind}.{f:04d}.exr" for kind in ("alpha", "fg") for f in (1, 2, 3, 4))


def test_a_stopped_video_render_reports_only_the_frames_its_movies_hold(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Video outputs convert and encode behind the render: frames still being converted when it
    stops are not in the partial movies, so they are not reported as written (a farm reading the
    report would skip them); the resume renders them, and the result equals an unstopped render."""
    import time

    import av

    from pomagan_post.io import video
    from pomagan_post.io.video import VideoSink, partial_path

    from .imaging import write_clip

    clip = write_clip(tmp_path / "shot.mov", n=10, size=(64, 48), codec="prores_ks", pix_fmt="yuv444p10le")
    engine = Engine(load_checkpoint(None), device="cpu", working_size=32, batch_size=2)
    slow = VideoSink._to_frame

    def slow_to_frame(self: VideoSink, image: object) -> object:  # conversion lags the model
        time.sleep(0.4)
        return slow(self, image)

    def stop_at_6(number: int, done: int, total: int) -> None:
        if number == 6:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(VideoSink, "_to_frame", slow_to_frame)
    out = tmp_path / "out"
    with StopSignals(), pytest.raises(SignalStop) as raised:
        render(clip, output_dir=out, engine=engine, callback=stop_at_6, audio=False)
    written = raised.value.render_report.written  # type: ignore[attr-defined]
    held = {kind: video._whole_frames(partial_path(out / f"shot_{kind}.mov"), Fraction(24))
            for kind in ("alpha", "fg")}
    assert 0 < len(written) < 8  # frames 0-7 were handed over; the last ones were still converting
    assert written == list(range(min(held.values())))

    monkeypatch.setattr(VideoSink, "_to_frame", slow)
    resumed = render(clip, output_dir=out, engine=engine, skip_existing=True, audio=False)
    assert resumed.written == list(range(min(held.values()), 10))
    whole = render(clip, output_dir=tmp_path / "whole", engine=engine, audio=False)
    assert whole.written == list(range(10))
    for kind in ("alpha", "fg"):
        with av.open(str(out / f"shot_{kind}.mov")) as a, av.open(str(tmp_path / "whole" / f"shot_{kind}.mov")) as b:
            pa = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size]
            pb = [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
        assert len(pa) == 10 and pa == pb
