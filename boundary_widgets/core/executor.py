"""Dataset-wide analyses on a Dask cluster: shards of images on workers, the same results as in-process.

The dataset-wide functions (``band_margins``, ``curvature_score``, ``curvature_spectrum`` over many
images, ``borderline_samples``, ``find_paths``, ``deepfool``) take ``executor=``: ``None`` runs them
in this process; a ``distributed.Client`` (or a :class:`Sharding` holding one, with options) runs
them on its cluster:

- the images are split into shards of consecutive images; each worker receives the classifier once
  (one broadcast scatter, or ``clf_factory`` called once on the worker) and runs its shards on its
  own device (``cuda`` when the worker sees a GPU: with ``dask_cuda.LocalCUDACluster`` each worker
  owns one);
- each shard runs the very same function in-process on its images, so per-image results equal the
  in-process run to float precision (a batch of another size may round its last bits differently; a
  targeted, clipped DeepFool that needs ~25 steps, as in borderline samples, can amplify that on a few
  images); nothing in these functions draws random numbers per batch;
- results come back as shards complete (``distributed.as_completed``), drive the one
  ``progress=``/``cancel=`` protocol, and are concatenated in input order into the same frozen
  result object the in-process call returns;
- with ``store=`` each finished shard is written to ``store/shard-<start>-<stop>.npz`` (plain NumPy
  arrays, ``numpy.load`` opens them without the kit) and a rerun with the same store skips them;
- a worker that dies costs a retry of its shards (Dask reschedules the tasks of a lost worker, up to
  ``distributed.scheduler.allowed-failures`` times; tasks are pure, so a retry gives the same
  result); a shard that raises is retried image by image on its worker, so only the images that
  fail are lost, and the run ends with :class:`ShardError` naming each of them and why, the other
  results in ``.partial`` (and in the store).

Dask is imported only when a cluster is used: the core imports without it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import importlib
import inspect
import io
import json
import math
import os
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .classifier import Classifier
from .progress import CancelEvent, Cancelled, Progress, track
from .validation import as_float_tensor, check_positive_int

# What `executor=` accepts: None (in-process), a distributed.Client or a Sharding (Dask is not imported here).
Executor = Any

_MAX_DEFAULT_SHARD = 256
_MAX_SHARD_BYTES = 16 * 2**20
_FORMAT = "boundary_widgets.shards/1"


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


@dataclasses.dataclass(frozen=True)
class ImageFailure:
    """One image that could not be computed on the cluster."""

    index: int  # position of the image in the input
    error: str  # exception type
    message: str


class ShardError(RuntimeError):
    """Some images raised on the cluster. The others' results are in ``partial`` (and in the store).

    ``failures``: one :class:`ImageFailure` per failed image, in input order. ``indices``: ``(M,)``
    the input positions of the images in ``partial`` (in order); ``partial`` is the function's
    result over those images only, or ``None`` when none succeeded (for :func:`borderline_pairs`, both
    are dicts by pair).
    """

    def __init__(self, failures: Sequence[ImageFailure], partial: object, indices: object, total: int) -> None:
        self.failures = tuple(failures)
        self.partial = partial
        self.indices = indices
        shown = "; ".join(f"image {f.index}: {f.error}: {f.message}" for f in self.failures[:5])
        more = f"; and {len(self.failures) - 5} more" if len(self.failures) > 5 else ""
        super().__init__(
            f"{len(self.failures)} of {total} images failed on the cluster ({shown}{more}). The results of the "
            f"other {total - len(self.failures)} are in `.partial` (their input positions in `.indices`) and in the "
            "store, if any."
        )


# ---------------------------------------------------------------------------------------------------------------
# Results: which fields hold one row per image, how shards are concatenated.

# Fields with one entry per image (first axis); every other field is the same for all shards.
_PER_IMAGE_FIELDS = {
    "BandMargins": ("margins", "converged", "labels"),
    "CurvatureScores": ("scores", "predicted", "runner_up"),
    "DeepFoolResult": (
        "perturbations",
        "distances",
        "original",
        "reached",
        "converged",
        "clipped",
        "iterations",
        "normals",
    ),
    "BorderlineSamples": (
        "samples",
        "source_points",
        "target_points",
        "fraction",
        "p_source",
        "p_target",
        "iterations",
        "success",
        "failure",
    ),
}


def _concat_values(values: list[object]) -> object:
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(values)
    if isinstance(first, np.ndarray):
        return np.concatenate(values)
    if isinstance(first, tuple | list):
        return type(first)(item for value in values for item in value)
    raise TypeError(f"cannot concatenate per-image values of type {type(first).__name__}.")


def merge_results(parts: Sequence[object]) -> object:
    """Shard results (in input order) -> one result, as if computed on all their images at once."""
    if not parts:
        raise ValueError("`parts` must hold at least one shard result.")
    first = parts[0]
    if isinstance(first, list):
        return [item for part in parts for item in part]
    name = type(first).__name__
    if name not in _PER_IMAGE_FIELDS or not dataclasses.is_dataclass(first):
        raise TypeError(f"cannot merge shard results of type {name}.")
    if len(parts) == 1:
        return first
    per_image = _PER_IMAGE_FIELDS[name]
    fields = {}
    for field in dataclasses.fields(first):
        values = [getattr(part, field.name) for part in parts]
        if field.name in per_image:
            fields[field.name] = _concat_values(values)
            continue
        arrays = [np.asarray(value) for value in values if isinstance(value, np.ndarray | torch.Tensor)]
        if any(
            array.shape != arrays[0].shape or not np.array_equal(array, arrays[0], equal_nan=array.dtype.kind == "f")
            for array in arrays
        ):
            # A field added to a result since: merging it as shared would silently keep the first shard's rows.
            raise TypeError(
                f"cannot merge {name}.{field.name}: it differs between shards and is not a per-image field."
            )
        fields[field.name] = values[0]
    return type(first)(**fields)


# ---------------------------------------------------------------------------------------------------------------
# The store: one .npz per shard, plain arrays under readable names, and a JSON description to rebuild the object.


def _encode(value: object, key: str, arrays: dict[str, np.ndarray]) -> object:
    """A JSON description of ``value``; its arrays go into ``arrays`` under ``key`` ('/'-separated names)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = type(value)
        return {
            "dataclass": f"{kind.__module__}:{kind.__qualname__}",
            "fields": {
                f.name: _encode(getattr(value, f.name), f"{key}/{f.name}".lstrip("/"), arrays)
                for f in dataclasses.fields(value)
            },
        }
    if isinstance(value, list):
        return {"list": [_encode(item, f"{key}/{i}".lstrip("/"), arrays) for i, item in enumerate(value)]}
    if isinstance(value, torch.Tensor):
        arrays[key] = value.detach().cpu().numpy()
        return {"array": key, "as": "tensor"}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"cannot store an object array ({key}).")
        arrays[key] = value
        return {"array": key}
    if isinstance(value, tuple):
        if value and all(isinstance(item, str) for item in value):
            arrays[key] = np.array(value, dtype=str)
            return {"array": key, "as": "str_tuple"}
        if value and all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
            return {"tuple": list(value)}
        return {"items": [_encode(item, f"{key}/{i}".lstrip("/"), arrays) for i, item in enumerate(value)]}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return {"value": value}
    raise TypeError(f"cannot store a value of type {type(value).__name__} ({key}).")


def _decode(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> object:
    if "dataclass" in spec:
        module, qualname = spec["dataclass"].split(":")
        if not module.startswith("boundary_widgets."):
            raise ValueError(f"the store names a class outside boundary_widgets: {spec['dataclass']!r}.")
        kind = getattr(importlib.import_module(module), qualname)
        if not dataclasses.is_dataclass(kind):
            raise ValueError(f"the store names a class that is not a result: {spec['dataclass']!r}.")
        return kind(**{name: _decode(field, arrays) for name, field in spec["fields"].items()})
    if "list" in spec:
        return [_decode(item, arrays) for item in spec["list"]]
    if "items" in spec:
        return tuple(_decode(item, arrays) for item in spec["items"])
    if "tuple" in spec:
        return tuple(spec["tuple"])
    if "array" in spec:
        array = arrays[spec["array"]]
        if spec.get("as") == "tensor":
            return torch.from_numpy(np.array(array))
        if spec.get("as") == "str_tuple":
            return tuple(str(item) for item in array)
        return np.array(array)
    return spec["value"]


def _shard_path(store: Path, start: int, stop: int) -> Path:
    return store / f"shard-{start:08d}-{stop:08d}.npz"


def _write_shard(path: Path, result: object) -> None:
    arrays: dict[str, np.ndarray] = {}
    spec = _encode(result, "", arrays)
    arrays["__result__"] = np.array(json.dumps(spec))
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez(file, **arrays)
    os.replace(partial, path)  # a shard file exists only once it is complete


def read_shard(path: str | os.PathLike) -> object:
    """The result object of one shard file of a store (``numpy.load`` reads the same file without the kit)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return _decode(json.loads(str(arrays.pop("__result__"))), arrays)


def read_store(store: str | os.PathLike) -> object:
    """The result of a completed run from its store, the shards concatenated in input order."""
    folder = Path(store)
    manifest = json.loads((folder / "manifest.json").read_text())
    n, size = manifest["n_images"], manifest["shard_size"]
    paths = [_shard_path(folder, start, min(start + size, n)) for start in range(0, n, size)]
    missing = [path.name for path in paths if not path.exists()]
    if missing:
        raise ValueError(
            f"`store` is incomplete: {len(missing)} of {len(paths)} shards are missing ({missing[0]}, ...)."
        )
    return merge_results([read_shard(path) for path in paths])


def _fingerprint(function: Callable, clf: Classifier, inputs: Sequence[torch.Tensor], options: Mapping) -> str:
    """What a store's shards depend on: the function, its options, the images and the model's weights."""
    digest = hashlib.sha256()
    digest.update(f"{function.__module__}.{function.__qualname__}".encode())
    for name, value in sorted(options.items()):
        digest.update(name.encode())
        if isinstance(value, torch.Tensor | np.ndarray):  # a tensor's repr elides its middle
            digest.update(np.ascontiguousarray(np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value)))
        else:
            digest.update(repr(value).encode())
    digest.update(repr((clf.input_shape, clf.bounds, clf.class_names)).encode())
    for tensor in inputs:
        digest.update(np.ascontiguousarray(tensor.numpy()).tobytes())
    for name, tensor in clf.net.state_dict().items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor.detach().cpu().float().numpy()).tobytes())
    return digest.hexdigest()


def _open_store(store: Path, fingerprint: str, function_name: str, n: int, shard_size: int | None) -> int:
    """Create or check the store's manifest; returns the shard size the store uses."""
    manifest_path = store / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("fingerprint") != fingerprint or manifest.get("n_images") != n:
            raise ValueError(
                f"`store` {str(store)!r} holds shards of another run ({manifest.get('function')} over "
                f"{manifest.get('n_images')} images, other options, images or model); use a new folder or empty it."
            )
        if shard_size is not None and shard_size != manifest["shard_size"]:
            raise ValueError(
                f"`shard_size` must be {manifest['shard_size']}, the size the store {str(store)!r} was started with; "
                f"got {shard_size}."
            )
        return int(manifest["shard_size"])
    if shard_size is None:
        raise AssertionError("a new store needs a shard size")
    store.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": _FORMAT,
        "function": function_name,
        "n_images": n,
        "shard_size": shard_size,
        "fingerprint": fingerprint,
        "files": "shard-<start>-<stop>.npz: images [start, stop); numpy.load(path) reads the arrays",
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return shard_size


# ---------------------------------------------------------------------------------------------------------------
# The classifier on the workers.


class _ClassifierRecipe:
    """What a worker needs to rebuild the classifier on its own device; pickles the network via ``torch.save``
    (cloudpickle, so classes defined in a notebook travel too) and loads it on the CPU first, whatever device
    the client's copy is on, so a worker that sees one GPU can load a model saved from ``cuda:3``."""

    def __init__(self, clf: Classifier | None, factory: Callable | None) -> None:
        self.token = uuid.uuid4().hex
        self.factory = factory
        self.net = None if clf is None else clf.net
        self.options = (
            None
            if clf is None
            else {
                "input_shape": clf.input_shape,
                "bounds": clf.bounds,
                "mean": _stat(getattr(clf, "_mean", None)),
                "std": _stat(getattr(clf, "_std", None)),
                "class_names": clf.class_names,
                "output": getattr(clf, "_output", None),
            }
        )

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
        return Classifier(self.net, device=device, **self.options)


def _stat(value: torch.Tensor | None) -> list[float] | None:
    return None if value is None else value.detach().cpu().flatten().tolist()


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


def _worker_classifier(recipe: _ClassifierRecipe, device: str | None) -> Classifier:
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
class _ShardOutcome:
    start: int
    stop: int
    result: object  # the function's result over `indices` (all of the shard unless some images failed), or None
    indices: np.ndarray  # (m,) input positions of the images in `result`
    failures: tuple[ImageFailure, ...]
    seconds: float  # compute time on the worker


def _on_cpu(value: object) -> object:
    """The result with its tensors on the CPU: a GPU worker's result must unpickle on a client without one."""
    if isinstance(value, list):
        return [_on_cpu(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        moved = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if isinstance(item, torch.Tensor) and item.device.type != "cpu":
                moved[field.name] = item.cpu()
        return dataclasses.replace(value, **moved) if moved else value
    return value


def _run_shard(
    function: Callable,
    recipe: _ClassifierRecipe,
    device: str | None,
    start: int,
    inputs: tuple[torch.Tensor, ...],
    options: dict,
    per_image: bool,
) -> _ShardOutcome:
    """One task: the function on the shard's images, in-process on the worker. A shard that raises is run again
    image by image so that only the images that fail are lost; errors are returned, not raised (a raised error
    would only be retried by Dask, and fail the same way)."""
    began = time.perf_counter()
    n = len(inputs[0])
    clf = _worker_classifier(recipe, device)

    if not per_image:
        try:
            result = _on_cpu(function(clf, *inputs, **options))
            return _ShardOutcome(start, start + n, result, np.arange(start, start + n), (), time.perf_counter() - began)
        except Exception:
            pass  # run again image by image below, to keep the others and name the ones that fail
    parts, indices, failures = [], [], []
    for i in range(n):
        try:
            if per_image:
                parts.append([function(clf, *(x[i] for x in inputs), **options)])
            else:
                parts.append(function(clf, *(x[i : i + 1] for x in inputs), **options))
            indices.append(start + i)
        except Exception as error:
            message = str(error) or traceback.format_exception_only(type(error), error)[-1].strip()
            failures.append(ImageFailure(start + i, type(error).__name__, message))
    result = _on_cpu(merge_results(parts)) if parts else None
    return _ShardOutcome(
        start, start + n, result, np.array(indices, dtype=np.int64), tuple(failures), time.perf_counter() - began
    )


# ---------------------------------------------------------------------------------------------------------------
# The client side.


def _default_shard_size(client: Any, n: int, image_bytes: int) -> int:
    """About two shards per worker (DeepFool's per-image cost falls with the batch size: 3.4 ms per digit in
    shards of 128 against 4.4 ms in shards of 32), at most 256 images and ``_MAX_SHARD_BYTES`` of inputs (a
    shard's images travel inside its task, which the scheduler keeps so that a lost worker's shard can run again)."""
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    return max(1, min(_MAX_DEFAULT_SHARD, _MAX_SHARD_BYTES // image_bytes, math.ceil(n / (2 * workers))))


def _as_batch(value: object, name: str, clf: Classifier) -> torch.Tensor:
    batch = as_float_tensor(value, name)
    if tuple(batch.shape[1:]) != clf.input_shape or batch.ndim != len(clf.input_shape) + 1:
        raise ValueError(f"`{name}` must have shape (N, *{clf.input_shape}) to be sharded; got {tuple(batch.shape)}.")
    if batch.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one input; got 0.")
    return batch.cpu().contiguous()


class _SetEvent:
    @staticmethod
    def is_set() -> bool:
        return True


@dataclasses.dataclass
class _Job:
    """One call of a dataset-wide function, split into shards."""

    function: Callable
    clf: Classifier
    batches: tuple[torch.Tensor, ...]  # (N, *input_shape) each, on the CPU
    options: dict[str, Any]
    per_image: bool
    store: Path | None
    ranges: list[tuple[int, int]]
    outcomes: dict[int, _ShardOutcome] = dataclasses.field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.batches[0].shape[0]

    def result(self) -> tuple[object, list[ImageFailure], np.ndarray]:
        ordered = [self.outcomes[start] for start, _ in self.ranges]
        failures = [failure for outcome in ordered for failure in outcome.failures]
        parts = [outcome.result for outcome in ordered if outcome.result is not None]
        indices = np.concatenate([outcome.indices for outcome in ordered])
        return (merge_results(parts) if parts else None), failures, indices


def _prepare(
    function: Callable, arguments: Mapping[str, object], sharding: Sharding, inputs: int, per_image: bool
) -> _Job:
    """Check the call in the client (the function's own checks included) and cut it into shards."""
    names = list(inspect.signature(function).parameters)
    clf = arguments[names[0]]
    if not isinstance(clf, Classifier):
        raise TypeError(f"`{names[0]}` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    data_names = names[1 : 1 + inputs]
    batches = tuple(_as_batch(arguments[name], name, clf) for name in data_names)
    n = batches[0].shape[0]
    for name, batch in zip(data_names[1:], batches[1:], strict=True):
        if batch.shape[0] != n:
            raise ValueError(f"`{data_names[0]}` and `{name}` must hold as many inputs; got {n} and {batch.shape[0]}.")
    client_side = {names[0], *data_names, "executor", "progress", "cancel"}
    options = {name: arguments[name] for name in names if name in arguments and name not in client_side}

    # The function's own argument checks, before any work: on the first input, with `cancel` already set.
    if "cancel" in names:
        try:
            first = (batch[0] if per_image else batch[:1] for batch in batches)
            function(clf, *first, **options, cancel=_SetEvent())
        except Cancelled:
            pass

    store = None if sharding.store is None else Path(sharding.store)
    shard_size = sharding.shard_size
    if store is not None:
        fingerprint = _fingerprint(function, clf, batches, options)
        if shard_size is None and not (store / "manifest.json").exists():
            shard_size = _default_shard_size(sharding.client, n, sum(batch[0].numel() * 4 for batch in batches))
        shard_size = _open_store(store, fingerprint, function.__qualname__, n, shard_size)
    elif shard_size is None:
        shard_size = _default_shard_size(sharding.client, n, sum(batch[0].numel() * 4 for batch in batches))
    ranges = [(start, min(start + shard_size, n)) for start in range(0, n, shard_size)]
    return _Job(function, clf, batches, options, per_image, store, ranges)


def run_sharded(
    function: Callable, arguments: Mapping[str, object], *, inputs: int = 1, per_image: bool = False
) -> Any:
    """Run ``function`` over the shards of its inputs on ``arguments['executor']``'s cluster.

    Called by the dataset-wide functions as their first statement when ``executor`` is given, with
    ``locals()`` as ``arguments``: the first parameter is the classifier, the next ``inputs``
    parameters are sharded along their first axis, ``executor``, ``progress`` and ``cancel`` stay on
    the client, and every other parameter is passed to each shard unchanged. ``per_image=True``
    calls ``function`` on one input at a time (a function of one image) and returns a list.
    """
    executor = arguments["executor"]
    sharding = executor if isinstance(executor, Sharding) else Sharding(executor)
    job = _prepare(function, arguments, sharding, inputs, per_image)
    _run_jobs([job], sharding, arguments.get("progress"), arguments.get("cancel"), function.__name__)
    result, failures, indices = job.result()
    if failures:
        error = ShardError(failures, result, indices, job.size)
        kinds = {(failure.error, failure.message) for failure in failures}
        if len(failures) == job.size and len(kinds) == 1 and next(iter(kinds))[0] in ("TypeError", "ValueError"):
            # Every image failed alike: the call's arguments, not the images (a function without `cancel`
            # cannot check them in the client first).
            kind, message = next(iter(kinds))
            raise {"TypeError": TypeError, "ValueError": ValueError}[kind](message) from error
        raise error
    return result


def _run_jobs(jobs: list[_Job], sharding: Sharding, progress: Progress, cancel: CancelEvent | None, desc: str) -> None:
    """Every shard of every job: finished ones read from their store, the others computed on the cluster."""
    total = sum(job.size for job in jobs)
    with track(progress, cancel, total=total, desc=f"{desc} on the cluster") as tracker:
        pending = []
        for index, job in enumerate(jobs):
            for start, stop in job.ranges:
                path = None if job.store is None else _shard_path(job.store, start, stop)
                if path is not None and path.exists():
                    job.outcomes[start] = _ShardOutcome(start, stop, read_shard(path), np.arange(start, stop), (), 0.0)
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
    checksum = getattr(clf, "state_checksum", None)
    key = (factory,) if factory is not None else (clf, checksum() if callable(checksum) else uuid.uuid4().hex)
    known = _sent.get(client)
    if known is not None and known[1].status == "finished" and len(known[0]) == len(key):
        if all(a is b or (type(a) is type(b) and a == b) for a, b in zip(known[0], key, strict=True)):
            return known[1]
    recipe = _ClassifierRecipe(None if factory is not None else clf, factory)
    [shared] = client.scatter([recipe], broadcast=True, hash=False)
    if known is not None:
        client.cancel([known[1]])
    _sent[client] = (key, shared)
    return shared


def _compute(jobs: list[_Job], sharding: Sharding, pending: list[tuple[int, int, int]], tracker: Any) -> None:
    from distributed import as_completed

    client = sharding.client
    clf = jobs[0].clf
    shared = _shared_recipe(client, clf, sharding.clf_factory)
    run = uuid.uuid4().hex[:8]
    # Shards dealt round-robin as a preference only (another worker may take one: a lost worker's, or by
    # work stealing): left alone, the scheduler put both of two 128-image shards on one of two workers.
    workers = sorted(client.scheduler_info().get("workers", {}))

    def preferred(number: int) -> dict[str, Any]:
        return {"workers": [workers[number % len(workers)]], "allow_other_workers": True} if workers else {}

    futures = {
        client.submit(
            _run_shard,
            jobs[index].function,
            shared,
            sharding.device,
            start,
            tuple(batch[start:stop] for batch in jobs[index].batches),
            jobs[index].options,
            jobs[index].per_image,
            key=f"{jobs[index].function.__name__}-{run}-{index}-{start:08d}-{stop:08d}",
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
                outcome: _ShardOutcome = future.result()
                future.release()
                job.outcomes[outcome.start] = outcome
                if job.store is not None and not outcome.failures:
                    _write_shard(_shard_path(job.store, outcome.start, outcome.stop), outcome.result)
                tracker.advance(outcome.stop - outcome.start)
    finally:
        unfinished = [future for future in futures if not future.done()]
        if unfinished:
            client.cancel(unfinished)


def borderline_pairs(
    clf: Classifier,
    images: object,
    classes: Sequence[int],
    *,
    executor: Executor = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
    **options: Any,
) -> dict[tuple[int, int], Any]:
    """:func:`~boundary_widgets.core.analysis.borderline_samples` for every ordered pair of ``classes``.

    For the pair ``(source, target)`` the images are those of ``images`` predicted ``source``; a
    class no image is predicted as has no pairs in the result. ``options`` go to each call
    (``threshold``, ``bisection_steps``, ``max_iter``). With ``executor`` every pair's shards go to
    the cluster at once (with a ``Sharding`` store, each pair in its own subfolder ``source-target``);
    ``progress`` counts images over all pairs.
    """
    from .analysis.borderline import borderline_samples
    from .validation import check_class_index

    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    batch = clf.check_inputs(images, "images", batched=True, in_bounds=True).cpu()
    chosen = [check_class_index(k, "classes", clf.num_classes) for k in classes]
    if len(set(chosen)) != len(chosen) or len(chosen) < 2:
        raise ValueError(f"`classes` must hold at least two different class indices; got {list(classes)!r}.")
    predicted = clf.predict(batch).cpu()
    groups = {k: batch[predicted == k] for k in chosen if bool((predicted == k).any())}
    pairs = [(s, t) for s in groups for t in chosen if s != t]
    if executor is None:
        results = {}
        with track(progress, cancel, total=len(pairs), desc="borderline pairs") as tracker:
            for s, t in pairs:
                results[s, t] = borderline_samples(clf, groups[s], s, t, **options)
                tracker.advance()
        return results
    sharding = executor if isinstance(executor, Sharding) else Sharding(executor)
    jobs = []
    for s, t in pairs:
        store = None if sharding.store is None else Path(sharding.store) / f"{s}-{t}"
        arguments = {"clf": clf, "images": groups[s], "source": s, "target": t, **options}
        jobs.append(_prepare(borderline_samples, arguments, dataclasses.replace(sharding, store=store), 1, False))
    _run_jobs(jobs, sharding, progress, cancel, "borderline pairs")
    results, failures, partial, indices = {}, [], {}, {}
    for pair, job in zip(pairs, jobs, strict=True):
        result, failed, kept = job.result()
        results[pair], partial[pair], indices[pair] = result, result, kept
        failures += [dataclasses.replace(f, message=f"pair {pair[0]}->{pair[1]}: {f.message}") for f in failed]
    if failures:
        raise ShardError(failures, partial, indices, sum(job.size for job in jobs))
    return results


__all__ = [
    "Executor",
    "ImageFailure",
    "ShardError",
    "Sharding",
    "borderline_pairs",
    "merge_results",
    "read_shard",
    "read_store",
    "run_sharded",
]
