"""The one protocol for long work: ``progress=`` and ``cancel=``, with one meaning everywhere.

Every public function that can run for more than a second takes both keyword arguments:

- ``progress``: ``None``/``False`` (silent), ``True`` (a ``tqdm.auto`` bar, for scripts and
  notebooks) or a callable ``progress(done, total)`` called after each unit of work (``total``
  may be ``None`` when it is not known in advance).
- ``cancel``: ``None`` or anything with ``is_set()`` (a ``threading.Event``). It is checked
  between chunks and iterations; once set, the function raises :class:`Cancelled`.

Inside, a function opens one :func:`track` block and calls ``tracker.advance()`` per unit of
work (or ``tracker.check()`` where it only wants to honour ``cancel``). Nested calls receive
``cancel=tracker.cancel`` so that one event stops the whole computation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable


class Cancelled(Exception):
    """Raised by a long computation when its ``cancel`` event is set."""


@runtime_checkable
class CancelEvent(Protocol):
    def is_set(self) -> bool: ...


ProgressCallback = Callable[[int, "int | None"], object]
Progress = bool | ProgressCallback | None


def check_protocol(progress: object, cancel: object) -> None:
    """Raise a ``TypeError`` naming the argument when ``progress`` or ``cancel`` is not of the protocol."""
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"`progress` must be None, a bool or a callable progress(done, total); got {progress!r:.80}.")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise TypeError(f"`cancel` must be a threading.Event (anything with is_set()) or None; got {cancel!r:.80}.")


def raise_if_cancelled(cancel: CancelEvent | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the computation was cancelled (`cancel` is set).")


class Tracker:
    """Counts units of work, reports them to ``progress`` and checks ``cancel`` at each step."""

    def __init__(self, progress: Progress, cancel: CancelEvent | None, *, total: int | None, desc: str) -> None:
        self.cancel = cancel
        self.total = total
        self.done = 0
        self._callback: ProgressCallback | None = None
        self._bar = None
        if progress is True:
            from tqdm.auto import tqdm  # only scripts and notebooks that ask for a bar pay for tqdm

            self._bar = tqdm(total=total, desc=desc, leave=False)
        elif callable(progress):
            self._callback = progress

    def check(self) -> None:
        """Raise :class:`Cancelled` when the cancel event is set."""
        raise_if_cancelled(self.cancel)

    def set_total(self, total: int | None) -> None:
        """A new estimate of the units expected (work whose length is learnt on the way, e.g. Lanczos)."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def advance(self, n: int = 1) -> None:
        """``n`` more units are done: report them, then honour ``cancel``."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._callback is not None:
            self._callback(self.done, self.total)
        self.check()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@contextlib.contextmanager
def track(
    progress: Progress, cancel: CancelEvent | None, *, total: int | None = None, desc: str = ""
) -> Iterator[Tracker]:
    """A :class:`Tracker` for one computation; checks the arguments and ``cancel`` before any work."""
    check_protocol(progress, cancel)
    tracker = Tracker(progress, cancel, total=total, desc=desc)
    try:
        tracker.check()
        yield tracker
    finally:
        tracker.close()


__all__ = [
    "CancelEvent",
    "Cancelled",
    "Progress",
    "ProgressCallback",
    "Tracker",
    "check_protocol",
    "raise_if_cancelled",
    "track",
]
