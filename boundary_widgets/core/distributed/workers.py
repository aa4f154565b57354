"""The worker side of a sharded run: the classifier rebuilt once per worker, and one shard computed."""

from __future__ import annotations

import ctypes
import dataclasses
import io
import os
import pickle
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable

import numpy as np
import torch

from ..classifier import Classifier
from .errors import ImageFailure
from .merge import merge_results, on_cpu


class ClassifierRecipe:
    """What a worker needs to rebuild the classifier on its own device; pickles the network via ``torch.save``
    (cloudpickle, so classes defined in a notebook travel too) and loads it on the CPU first, whatever device
    the client's copy is on, so a worker that sees one GPU can load a model saved from ``cuda:3``."""

    def __init__(self, clf: Classifier | None, factory: Callable[[torch.device], Classifier] | None) -> None:
        self.token = uuid.uuid4().hex
        self.factory = factory
        self.net = None if clf is None else clf.net
        self.settings = None if clf is None else clf.settings()

    def __getstate__(self) -> dict:
        import cloudpickle

        state = dict(self.__dict__)
        if self.net is not None:
            buffer = io.BytesIO()
            torch.save(self.net, buffer, pickle_module=cloudpickle)
            state["net"] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("net"), bytes):
            state["net"] = torch.load(io.BytesIO(state["net"]), map_location="cpu", weights_only=False)
        self.__dict__.update(state)

    def build(self, device: torch.device) -> Classifier:
        if self.factory is not None:
            clf = self.factory(device)
            if not isinstance(clf, Classifier):
                raise TypeError(f"`clf_factory` must return a boundary_widgets.Classifier; got {type(clf).__name__}.")
            return clf
        return Classifier(self.net, device=device, **self.settings)


_worker_classifiers: dict[str, Classifier] = {}
_worker_lock = threading.Lock()
_malloc_tuned = False

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's own ceiling for its dynamic threshold on 64-bit


def _tune_worker_malloc() -> None:
    """Give a Dask worker glibc's usual allocation of tensor-sized blocks back.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, and any explicit threshold turns
    off glibc's dynamic mmap threshold: every allocation above 128 KiB then becomes an mmap/munmap with
    fresh page faults, and DeepFool on the digits ran 2.4× slower in a worker than in the client.
    Raising the mmap threshold to the ceiling the dynamic rule would reach restores the speed.
    """
    global _malloc_tuned
    if _malloc_tuned or "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    _malloc_tuned = True
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to undo


def worker_classifier(recipe: ClassifierRecipe, device: str | None) -> Classifier:
    """The classifier of this run on this worker, built once (the worker's threads share it)."""
    with _worker_lock:
        _tune_worker_malloc()
        if recipe.token not in _worker_classifiers:
            if device is None:
                device = "cuda" if torch.cuda.is_available() else "cpu"
            _worker_classifiers.clear()  # one run's classifier at a time per worker process
            _worker_classifiers[recipe.token] = recipe.build(torch.device(device))
        return _worker_classifiers[recipe.token]


@dataclasses.dataclass(frozen=True)
class ShardOutcome:
    start: int
    stop: int
    result: object  # the function's result over `indices` (all of the shard unless some images failed), or None
    indices: np.ndarray  # (m,) input positions of the images in `result`
    failures: tuple[ImageFailure, ...]
    seconds: float  # compute time on the worker


def _failure(index: int, error: Exception) -> ImageFailure:
    """The error as it travels back to the client: itself, or (when it cannot be pickled) a RuntimeError naming it."""
    where = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        error = RuntimeError(f"{type(error).__module__}.{type(error).__qualname__}: {error}")
    return ImageFailure(index, error, where)


def run_shard(
    function: Callable,
    recipe: ClassifierRecipe,
    device: str | None,
    start: int,
    inputs: tuple[torch.Tensor, ...],
    options: dict,
) -> ShardOutcome:
    """One task: the function on the shard's images, in-process on the worker. A shard that raises is run again
    image by image so that only the images that fail are lost; errors are returned, not raised (a raised error
    would only be retried by Dask, and fail the same way)."""
    began = time.perf_counter()
    n = len(inputs[0])
    clf = worker_classifier(recipe, device)
    try:
        result = on_cpu(function(clf, *inputs, **options))
        return ShardOutcome(start, start + n, result, np.arange(start, start + n), (), time.perf_counter() - began)
    except Exception:
        pass  # run again image by image below, to keep the others and name the ones that fail
    parts, indices, failures = [], [], []
    for i in range(n):
        try:
            parts.append(function(clf, *(x[i : i + 1] for x in inputs), **options))
            indices.append(start + i)
        except Exception as error:
            failures.append(_failure(start + i, error))
    result = on_cpu(merge_results(parts)) if parts else None
    return ShardOutcome(
        start, start + n, result, np.array(indices, dtype=np.int64), tuple(failures), time.perf_counter() - began
    )


__all__ = ["ClassifierRecipe", "ShardOutcome", "run_shard", "worker_classifier"]
