"""What a sharded run reports: images that raised on the cluster, and a store that cannot be read or written."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class ImageFailure:
    """One image that could not be computed on the cluster."""

    index: int  # position of the image in the input (in its pair's images, for `borderline_pairs`)
    error: Exception  # what it raised on its worker
    traceback: str = dataclasses.field(default="", compare=False)  # where, on the worker
    where: str = ""  # which call of a run of several, e.g. "pair 3->5"

    def __str__(self) -> str:
        where = f"{self.where}, " if self.where else ""
        return f"{where}image {self.index}: {type(self.error).__name__}: {self.error}"


class ShardError(RuntimeError):
    """Some images raised on the cluster. The others' results are in ``partial`` (and in the store).

    ``failures``: one :class:`ImageFailure` per failed image, in input order; the first one's error is
    also this error's ``__cause__``. ``indices``: ``(M,)`` the input positions of the images in
    ``partial`` (in order); ``partial`` is the function's result over those images only, or ``None``
    when none succeeded (for ``borderline_pairs``, both are dicts by pair).
    """

    def __init__(self, failures: Sequence[ImageFailure], partial: object, indices: object, total: int) -> None:
        self.failures = tuple(failures)
        self.partial = partial
        self.indices = indices
        shown = "; ".join(str(failure) for failure in self.failures[:5])
        more = f"; and {len(self.failures) - 5} more" if len(self.failures) > 5 else ""
        super().__init__(
            f"{len(self.failures)} of {total} images failed on the cluster ({shown}{more}). The results of the "
            f"other {total - len(self.failures)} are in `.partial` (their input positions in `.indices`) and in the "
            "store, if any."
        )


class StoreError(OSError):
    """A store's file could not be read or written. ``path`` names it.

    When the run itself finished (only writing its shards failed), ``result`` holds its complete
    result, as the call would have returned it: computed results are never lost to the disk.
    """

    def __init__(self, message: str, path: str | os.PathLike, result: object = None) -> None:
        super().__init__(message)
        self.path = os.fspath(path)
        self.result = result


__all__ = ["ImageFailure", "ShardError", "StoreError"]
