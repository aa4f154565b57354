"""One background thread for long widget work; a newer request cancels the stale one."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.progress import Cancelled


class StaleJob(Exception):
    """Raised inside a job when a newer request has replaced it."""


@dataclass
class Job:
    """A request as the work sees it: its generation and the event set when it goes stale."""

    generation: int
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def stale(self) -> bool:
        return self.cancel.is_set()

    def check(self) -> None:
        if self.cancel.is_set():
            raise StaleJob


_LIVE_WORKERS: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def close_all_workers() -> None:
    """Cancel and join every worker before the interpreter tears torch down.

    A worker thread still inside torch when a script ends aborts the interpreter ("terminate
    called without an active exception", exit code 134); atexit handlers run while daemon
    threads are still alive, so the work is cancelled and the threads joined here.
    """
    for worker in list(_LIVE_WORKERS):
        worker.close()


class Worker:
    """Runs the latest submitted function on one daemon thread (or inline when ``threaded=False``).

    Each :meth:`submit` bumps a generation counter and sets the cancel event of the job before,
    so a slider moved during work stops the old computation instead of queueing behind it.
    Only the newest pending request is kept. ``work(job)`` is responsible for its own errors.
    :meth:`close` (also called at interpreter exit) cancels the work and joins the thread.
    """

    def __init__(self, *, threaded: bool = True) -> None:
        self.threaded = threaded
        self.generation = 0
        self.closed = False
        self._condition = threading.Condition()
        self._pending: tuple[Job, Callable[[Job], None]] | None = None
        self._current: Job | None = None
        self._thread: threading.Thread | None = None
        _LIVE_WORKERS.add(self)

    def close(self, timeout: float | None = 30.0) -> None:
        """Cancel running and pending work, stop the thread and wait for it; later submits are refused."""
        with self._condition:
            self.closed = True
            for job in (self._current, self._pending[0] if self._pending is not None else None):
                if job is not None:
                    job.cancel.set()
            self._pending = None
            self._condition.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def submit(self, work: Callable[[Job], None]) -> Job:
        with self._condition:
            self.generation += 1
            job = Job(self.generation)
            if self.closed:
                job.cancel.set()
                return job
            if self._current is not None:
                self._current.cancel.set()
            if self._pending is not None:
                self._pending[0].cancel.set()
            if not self.threaded:
                self._current = job
            else:
                self._pending = (job, work)
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._loop, name="boundary-widgets-worker", daemon=True)
                    self._thread.start()
                self._condition.notify_all()
                return job
        self._run(job, [work])
        return job

    def _run(self, job: Job, task: list[Callable[[Job], None]]) -> None:
        """Run ``task``'s one function; the reference is dropped before anyone is told the work is done
        (an idle worker must not keep the last work, and the explorer it closes over, alive)."""
        work = task.pop()
        try:
            work(job)
        except StaleJob:
            pass
        except Cancelled:
            if not job.stale:
                raise
        finally:
            del work
            with self._condition:
                if self._current is job:
                    self._current = None
                self._condition.notify_all()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self.closed:
                    self._condition.wait()
                if self.closed:
                    return
                job, work = self._pending
                self._pending = None
                self._current = job
                task = [work]
                del work
            self._run(job, task)

    @property
    def busy(self) -> bool:
        with self._condition:
            return self._pending is not None or self._current is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no work is pending or running; False when ``timeout`` seconds passed first."""
        with self._condition:
            return self._condition.wait_for(lambda: self._pending is None and self._current is None, timeout)


__all__ = [
    "Job",
    "StaleJob",
    "Worker",
    "close_all_workers",
]
