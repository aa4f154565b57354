"""The process-wide cache of finished slices."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

from ..classifier import Classifier
from ..plane import Plane
from .options import SliceOptions
from .result import PlaneSlice

DEFAULT_CACHE_BYTES = 64 * 2**20


class SliceCache:
    """Least-recently-used finished slices, bounded by the bytes of their arrays; safe across threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, tuple[weakref.ref, PlaneSlice, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple, clf: Classifier) -> PlaneSlice | None:
        with self._lock:
            entry = self._entries.get(key)
            # id() can be reused once a classifier is gone: the weak reference tells.
            if entry is None or entry[0]() is not clf:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple, clf: Classifier, sl: PlaneSlice) -> None:
        size = sl.nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._bytes -= self._entries.pop(key)[2]
            self._entries[key] = (weakref.ref(clf), sl, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._bytes -= self._entries.popitem(last=False)[1][2]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


CACHE = SliceCache(DEFAULT_CACHE_BYTES)


def clear_slice_cache() -> None:
    """Forget every cached slice (see ``cache=`` of :func:`compute_slice`)."""
    CACHE.clear()


def cache_key(clf: Classifier, plane: Plane, options: SliceOptions) -> tuple:
    """The classifier object and the values of its parameters and buffers, the plane's values, and the options."""
    return (id(clf), clf.state_checksum(), plane.fingerprint(), options.key())


__all__ = [
    "CACHE",
    "DEFAULT_CACHE_BYTES",
    "SliceCache",
    "cache_key",
    "clear_slice_cache",
]
