"""The client side of a sharded run: how a function declares it can be sharded, cutting the call into shards,
scheduling them on the cluster, reading and writing the store, and merging the results."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from ..classifier import Classifier
from ..progress import CancelEvent, Progress, Tracker, check_protocol, track
from ..validation import as_float_tensor, check_positive_int
from .errors import ImageFailure, ShardError, StoreError
from .merge import merge_results
from .store import RunKey, inputs_digest, load_shard, open_store, run_key, shard_path, write_shard
from .workers import ClassifierRecipe, ShardOutcome, run_shard

# What `executor=` accepts: None (in-process), a distributed.Client or a Sharding (Dask is not imported here).
Executor = Any

_MAX_DEFAULT_SHARD = 256
_MAX_SHARD_BYTES = 16 * 2**20
_CLIENT_SIDE = ("executor", "progress", "cancel")

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Sharding:
    """How to run a dataset-wide function on a Dask cluster; pass it as ``executor=``.

    ``client`` is a ``distributed.Client``. ``shard_size`` images per task (default: about two
    shards per worker, at most 256 images and 16 MB of inputs; a store keeps the size it was started
    with). ``store``, a folder: each finished shard is written there and skipped on a rerun. ``clf_factory``, for
    models too large to pickle cheaply: a picklable callable ``clf_factory(device) -> Classifier``
    called once on each worker instead of sending the classifier. ``device``: the workers' device
    (default: ``cuda`` when the worker sees a GPU, else ``cpu``).
    """

    client: Any
    shard_size: int | None = None
    store: str | os.PathLike | None = None
    clf_factory: Callable[[torch.device], Classifier] | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if not (callable(getattr(self.client, "submit", None)) and callable(getattr(self.client, "scatter", None))):
            raise TypeError(f"`executor` must be a distributed.Client or a Sharding; got {type(self.client).__name__}.")
        if self.shard_size is not None:
            check_positive_int(self.shard_size, "shard_size")
        if self.store is not None and not isinstance(self.store, str | os.PathLike):
            raise TypeError(f"`store` must be a folder path or None; got {type(self.store).__name__}.")
        if self.clf_factory is not None and not callable(self.clf_factory):
            raise TypeError(f"`clf_factory` must be callable(device) -> Classifier; got {self.clf_factory!r:.80}.")
        if self.device is not None:
            try:
                torch.device(self.device)
            except (TypeError, RuntimeError) as error:
                raise ValueError(
                    f"`device` must name a torch device such as 'cuda' or 'cpu'; got {self.device!r}."
                ) from error

    @staticmethod
    def of(executor: Executor) -> Sharding:
        """``executor`` (a ``distributed.Client`` or a ``Sharding``) as a ``Sharding``."""
        return executor if isinstance(executor, Sharding) else Sharding(executor)

    def in_subfolder(self, name: str) -> Sharding:
        """The same sharding with its store (if any) in the subfolder ``name``."""
        return self if self.store is None else dataclasses.replace(self, store=Path(self.store) / name)


# ---------------------------------------------------------------------------------------------------------------
# Declaring a function shardable.


@dataclasses.dataclass(frozen=True)
class ShardSpec:
    """How a dataset-wide function is sharded (see :func:`shardable`)."""

    function: Callable[..., Any]  # the public function; each shard calls it in-process on its images
    classifier: str  # the name of its first parameter, the classifier
    inputs: tuple[str, ...]  # the parameters split into shards along their first axis
    options: tuple[str, ...]  # the parameters passed to every shard unchanged
    check: Callable[..., object]  # check(clf, *inputs, **options): the function's argument checks, no work

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, object]:
        """A call's arguments by parameter name, defaults included."""
        bound = inspect.signature(self.function).bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)


def shardable(*, inputs: Sequence[str], check: Callable[..., object]) -> Callable[[_F], _F]:
    """Declare a function of ``(clf, *inputs, *, **options, executor, progress, cancel)`` shardable.

    Called with ``executor=None`` (the default) the function runs as written. Called with a
    ``distributed.Client`` or a :class:`Sharding`, the call is checked in the client by
    ``check(clf, *inputs, **options)`` (the function's own argument checks, which must raise
    ``TypeError``/``ValueError`` on bad arguments and do no work), the ``inputs`` are cut into
    shards of consecutive images, each shard runs the function in-process on a worker, and the
    shards' results are merged in input order (see :mod:`~.merge`). ``progress``/``cancel`` stay
    in the client and count images.
    """

    def decorate(function: _F) -> _F:
        parameters = inspect.signature(function).parameters
        names = list(parameters)
        if names[1 : 1 + len(inputs)] != list(inputs) or any(
            name not in parameters or parameters[name].kind is not inspect.Parameter.KEYWORD_ONLY
            for name in _CLIENT_SIDE
        ):
            raise TypeError(
                f"{function.__qualname__} must take (clf, {', '.join(inputs)}, ..., *, executor, progress, cancel)."
            )
        options = tuple(name for name in names[1 + len(inputs) :] if name not in _CLIENT_SIDE)

        @functools.wraps(function)
        def sharded(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("executor") is None:
                return function(*args, **kwargs)
            return run_sharded(spec, spec.bind(*args, **kwargs))

        spec = ShardSpec(sharded, names[0], tuple(inputs), options, check)
        sharded.shard_spec = spec  # type: ignore[attr-defined]
        return sharded  # type: ignore[return-value]

    return decorate


# ---------------------------------------------------------------------------------------------------------------
# One call, cut into shards.


@dataclasses.dataclass
class Job:
    """One call of a shardable function, cut into shards."""

    spec: ShardSpec
    clf: Classifier
    batches: tuple[torch.Tensor, ...]  # (N, *input_shape) each, on the CPU
    options: dict[str, Any]
    ranges: list[tuple[int, int]]
    store: Path | None = None
    key: RunKey | None = None  # the fingerprints the store's shards are checked against
    outcomes: dict[int, ShardOutcome] = dataclasses.field(default_factory=dict)
    store_error: StoreError | None = None  # the first shard that could not be written (the others are not tried)

    @property
    def size(self) -> int:
        return self.batches[0].shape[0]

    def shard_inputs(self, start: int, stop: int) -> str:
        return inputs_digest(self.batches, start, stop)

    def merged(self) -> tuple[object, list[ImageFailure], np.ndarray]:
        """The merged result of the shards that succeeded, the failed images and the input positions of the result."""
        ordered = [self.outcomes[start] for start, _ in self.ranges]
        failures = [failure for outcome in ordered for failure in outcome.failures]
        parts = [outcome.result for outcome in ordered if outcome.result is not None]
        indices = np.concatenate([outcome.indices for outcome in ordered])
        return (merge_results(parts) if parts else None), failures, indices


def _as_batch(value: object, name: str, clf: Classifier) -> torch.Tensor:
    batch = as_float_tensor(value, name)
    if tuple(batch.shape[1:]) != clf.input_shape or batch.ndim != len(clf.input_shape) + 1:
        raise ValueError(f"`{name}` must have shape (N, *{clf.input_shape}) to be sharded; got {tuple(batch.shape)}.")
    if batch.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one input; got 0.")
    return batch.cpu().contiguous()


def _default_shard_size(client: Any, n: int, image_bytes: int) -> int:
    """About two shards per worker (DeepFool's per-image cost falls with the batch size: 3.4 ms per digit in
    shards of 128 against 4.4 ms in shards of 32), at most 256 images and ``_MAX_SHARD_BYTES`` of inputs (a
    shard's images travel inside its task, which the scheduler keeps so that a lost worker's shard can run again)."""
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    return max(1, min(_MAX_DEFAULT_SHARD, _MAX_SHARD_BYTES // image_bytes, math.ceil(n / (2 * workers))))


def prepare(spec: ShardSpec, arguments: Mapping[str, object], sharding: Sharding) -> Job:
    """Check the call in the client (the function's own checks, then the store) and cut it into shards."""
    clf = arguments[spec.classifier]
    if not isinstance(clf, Classifier):
        raise TypeError(f"`{spec.classifier}` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    options = {name: arguments[name] for name in spec.options}
    spec.check(clf, *(arguments[name] for name in spec.inputs), **options)
    batches = tuple(_as_batch(arguments[name], name, clf) for name in spec.inputs)
    n = batches[0].shape[0]
    for name, batch in zip(spec.inputs[1:], batches[1:], strict=True):
        if batch.shape[0] != n:
            raise ValueError(f"`{spec.inputs[0]}` and `{name}` must hold as many inputs; got {n} and {batch.shape[0]}.")

    def default_size() -> int:
        return _default_shard_size(sharding.client, n, sum(batch[0].numel() * 4 for batch in batches))

    store = key = None
    if sharding.store is None:
        shard_size = sharding.shard_size or default_size()
    else:
        store = Path(sharding.store)
        key = run_key(spec.function, clf, options, batches)
        shard_size = open_store(store, key, n, sharding.shard_size, default_size)
    ranges = [(start, min(start + shard_size, n)) for start in range(0, n, shard_size)]
    return Job(spec, clf, batches, options, ranges, store, key)


# ---------------------------------------------------------------------------------------------------------------
# Running jobs.


def run_sharded(spec: ShardSpec, arguments: Mapping[str, object]) -> Any:
    """Run one call of a shardable function (``arguments`` by parameter name) on its executor's cluster."""
    sharding = Sharding.of(arguments["executor"])
    progress, cancel = arguments.get("progress"), arguments.get("cancel")
    check_protocol(progress, cancel)
    job = prepare(spec, arguments, sharding)
    run_jobs([job], sharding, progress, cancel, spec.function.__name__)
    result, failures, indices = job.merged()
    if failures:
        raise ShardError(failures, result, indices, job.size) from failures[0].error
    if job.store_error is not None:
        raise unwritten(job.store_error, result)
    return result


def unwritten(error: StoreError, result: object) -> StoreError:
    """The error of a finished run whose shards could not all be written, holding its complete ``result``."""
    return StoreError(
        f"{error} The run finished: its complete result is in this error's `.result`; the shards not written will "
        "be computed again on a rerun.",
        error.path,
        result,
    )


def run_jobs(
    jobs: Sequence[Job], sharding: Sharding, progress: Progress, cancel: CancelEvent | None, desc: str
) -> None:
    """Every shard of every job: those in their store that verify are read, the others computed on the cluster."""
    total = sum(job.size for job in jobs)
    with track(progress, cancel, total=total, desc=f"{desc} on the cluster") as tracker:
        pending = []
        for index, job in enumerate(jobs):
            for start, stop in job.ranges:
                stored = None
                if job.store is not None and job.key is not None:
                    path = shard_path(job.store, start, stop)
                    stored = load_shard(path, job.key, job.shard_inputs(start, stop), start, stop)
                if stored is not None:
                    job.outcomes[start] = ShardOutcome(start, stop, stored, np.arange(start, stop), (), 0.0)
                    tracker.advance(stop - start)
                else:
                    pending.append((index, start, stop))
        if pending:
            _compute(jobs, sharding, pending, tracker)


# Per client, the last classifier sent to its workers: (what it was built from, the scattered recipe's future).
_sent: weakref.WeakKeyDictionary[Any, tuple[tuple, Any]] = weakref.WeakKeyDictionary()


def _shared_recipe(client: Any, clf: Classifier, factory: Callable | None) -> Any:
    """The classifier's recipe on every worker: sent once (a broadcast scatter), again only when the model or
    factory changed, so that repeated runs neither resend nor rebuild it."""
    key = (factory,) if factory is not None else (clf, clf.state_checksum())
    known = _sent.get(client)
    if known is not None and known[1].status == "finished" and len(known[0]) == len(key):
        if all(a is b or (type(a) is type(b) and a == b) for a, b in zip(known[0], key, strict=True)):
            return known[1]
    recipe = ClassifierRecipe(None if factory is not None else clf, factory)
    [shared] = client.scatter([recipe], broadcast=True, hash=False)
    if known is not None:
        client.cancel([known[1]])
    _sent[client] = (key, shared)
    return shared


def _store(job: Job, outcome: ShardOutcome) -> None:
    """Write a finished shard to the job's store; the first failure is kept and ends the job's writing."""
    if job.store is None or job.key is None or outcome.failures or job.store_error is not None:
        return
    try:
        path = shard_path(job.store, outcome.start, outcome.stop)
        write_shard(
            path, outcome.result, job.key, job.shard_inputs(outcome.start, outcome.stop), outcome.start, outcome.stop
        )
    except StoreError as error:
        job.store_error = error


def _compute(jobs: Sequence[Job], sharding: Sharding, pending: list[tuple[int, int, int]], tracker: Tracker) -> None:
    from distributed import as_completed

    client = sharding.client
    shared = _shared_recipe(client, jobs[0].clf, sharding.clf_factory)
    run = uuid.uuid4().hex[:8]
    # Shards dealt round-robin as a preference only (another worker may take one: a lost worker's, or by
    # work stealing): left alone, the scheduler put both of two 128-image shards on one of two workers.
    workers = sorted(client.scheduler_info().get("workers", {}))

    def preferred(number: int) -> dict[str, Any]:
        return {"workers": [workers[number % len(workers)]], "allow_other_workers": True} if workers else {}

    futures = {
        client.submit(
            run_shard,
            jobs[index].spec.function,
            shared,
            sharding.device,
            start,
            tuple(batch[start:stop] for batch in jobs[index].batches),
            jobs[index].options,
            key=f"{jobs[index].spec.function.__name__}-{run}-{index}-{start:08d}-{stop:08d}",
            pure=False,
            **preferred(number),
        ): index
        for number, (index, start, stop) in enumerate(pending)
    }
    completed = as_completed(list(futures))
    try:
        while not completed.is_empty():
            batch = completed.next_batch(block=False)
            if not batch:
                tracker.check()
                time.sleep(0.02)
                continue
            for future in batch:
                job = jobs[futures[future]]
                outcome: ShardOutcome = future.result()
                future.release()
                job.outcomes[outcome.start] = outcome
                _store(job, outcome)
                tracker.advance(outcome.stop - outcome.start)
    finally:
        unfinished = [future for future in futures if not future.done()]
        if unfinished:
            client.cancel(unfinished)


__all__ = ["Executor", "Job", "ShardSpec", "Sharding", "prepare", "run_jobs", "run_sharded", "shardable", "unwritten"]
