"""Threads around the pipeline: decode ahead into a bounded queue, write behind on a small pool.

Both keep host memory bounded: at most ``depth`` decoded frames wait for the engine, at most
``max_pending`` encoded frames wait for the disk, whatever the clip length.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, TypeVar

__all__ = ["prefetch", "WriteBehind", "default_writers", "usable_cpus"]

T = TypeVar("T")
_DONE = object()


def usable_cpus() -> int:
    """The CPU cores this process may run on: its affinity (a farm slot pinned with taskset or
    a container's cpuset), not the machine's count, where the system says (Linux)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_writers() -> int:
    """Writer threads per image-sequence output: half the CPU cores, 2 to 8 (a render writes
    alpha and foreground, so together about one thread a core). EXR zip and PNG deflate release
    the GIL while they compress, so threads scale (DESIGN.md: EXR half 1080p 40 fps on one
    thread, 95 on twelve)."""
    return min(8, max(2, usable_cpus() // 2))


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = 4, name: str = "pomagan-decode") -> Iterator[T]:
    """Iterate ``items`` on a worker thread, at most ``depth`` items ahead of the consumer.

    An exception raised by ``items`` is re-raised in the consumer at the point it happened.
    Closing the returned generator (or leaving a ``for`` loop early) stops the worker.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(_Raised(exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator's own clean-up runs here, before join returns
                close()
        put(_DONE)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join(timeout=30)


class WriteBehind:
    """Run write jobs on ``workers`` threads with at most ``max_pending`` queued or running.

    ``submit`` blocks while the pool is full and raises the first error of a finished job, so
    a failing disk stops the producer promptly; ``wait`` finishes everything and raises the
    first error; ``cancel`` drops jobs not started yet and waits for the running ones.
    """

    def __init__(self, workers: int = 3, max_pending: int | None = None, name: str = "pomagan-write") -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(max_pending or 2 * max(1, workers))
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()

    def _raise_failed(self) -> None:
        with self._lock:
            done = [f for f in self._futures if f.done()]
            self._futures = [f for f in self._futures if not f.done()]
        for future in done:
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def submit(self, job: Callable[..., Any], *args: Any) -> None:
        self._raise_failed()
        self._slots.acquire()

        def run() -> Any:
            try:
                return job(*args)
            finally:
                self._slots.release()

        try:
            future = self._pool.submit(run)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._futures.append(future)

    def wait(self) -> None:
        """Finish every job; raise the first error."""
        with self._lock:
            futures = list(self._futures)
        first: BaseException | None = None
        for future in futures:
            exc = future.exception()
            if exc is not None and first is None:
                first = exc
        with self._lock:
            self._futures = []
        self._pool.shutdown(wait=True)
        if first is not None:
            raise first

    def cancel(self) -> None:
        """Drop queued jobs, let running ones end; never raises."""
        with self._lock:
            futures = list(self._futures)
            self._futures = []
        for future in futures:
            if future.cancel():
                self._slots.release()  # the job never ran, so never released its slot
        self._pool.shutdown(wait=True, cancel_futures=True)
