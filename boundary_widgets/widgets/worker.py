"""One background thread for long widget work; a newer request cancels the stale one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


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


class Worker:
    """Runs the latest submitted function on one daemon thread (or inline when ``threaded=False``).

    Each :meth:`submit` bumps a generation counter and sets the cancel event of the job before,
    so a slider moved during work stops the old computation instead of queueing behind it.
    Only the newest pending request is kept. ``work(job)`` is responsible for its own errors.
    """

    def __init__(self, *, threaded: bool = True) -> None:
        self.threaded = threaded
        self.generation = 0
        self._condition = threading.Condition()
        self._pending: tuple[Job, Callable[[Job], None]] | None = None
        self._current: Job | None = None
        self._thread: threading.Thread | None = None

    def submit(self, work: Callable[[Job], None]) -> Job:
        with self._condition:
            self.generation += 1
            job = Job(self.generation)
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
        self._run(job, work)
        return job

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        try:
            work(job)
        except StaleJob:
            pass
        finally:
            with self._condition:
                if self._current is job:
                    self._current = None
                self._condition.notify_all()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while self._pending is None:
                    self._condition.wait()
                job, work = self._pending
                self._pending = None
                self._current = job
            self._run(job, work)

    @property
    def busy(self) -> bool:
        with self._condition:
            return self._pending is not None or self._current is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no work is pending or running; False when ``timeout`` seconds passed first."""
        with self._condition:
            return self._condition.wait_for(lambda: self._pending is None and self._current is None, timeout)
