"""Dataset-wide analyses on a Dask cluster: shards of images on workers, the same results as in-process.

The dataset-wide functions (``band_margins``, ``curvature_score``, ``curvature_spectra``,
``borderline_samples``, ``borderline_pairs``, ``find_paths``, ``deepfool``) take ``executor=``:
``None`` runs them in this process; a ``distributed.Client`` (or a :class:`Sharding` holding one,
with options) runs them on its cluster. This package knows no analysis: a function declares itself
shardable with :func:`shardable` (which arguments are split, and its argument check), and its
result dataclass marks the fields with one row per image (``field(metadata=PER_IMAGE)``).

- :mod:`.sharding`: the call is checked in the client before any work (the function's own check),
  then split into shards of consecutive images; each worker receives the classifier once (one
  broadcast scatter, or ``clf_factory`` called once on the worker) and runs its shards on its own
  device (``cuda`` when the worker sees a GPU: with ``dask_cuda.LocalCUDACluster`` each worker owns
  one). Each shard runs the very same function in-process on its images, so per-image results equal
  the in-process run to float precision (a batch of another size may round its last bits
  differently; a targeted, clipped DeepFool that needs ~25 steps, as in borderline samples, can
  amplify that on a few images); nothing in these functions draws random numbers per batch.
  Results come back as shards complete (``distributed.as_completed``), drive the one
  ``progress=``/``cancel=`` protocol, and are merged in input order (:mod:`.merge`) into the same
  frozen result object the in-process call returns.
- :mod:`.store`: with ``Sharding(store=folder)`` each finished shard is written there
  (``shard-<start>-<stop>.npz``: plain NumPy arrays, ``numpy.load`` opens them without the kit) with
  the fingerprint of what it was computed from; a rerun reads the shards that verify and computes the
  others. A shard that cannot be written never loses the run's results (:class:`StoreError` carries
  them).
- :mod:`.workers`: a worker that dies costs a retry of its shards (Dask reschedules the tasks of a
  lost worker, up to ``distributed.scheduler.allowed-failures`` times; tasks are pure, so a retry
  gives the same result); a shard that raises is retried image by image on its worker, so only the
  images that fail are lost, and the run ends with :class:`ShardError` holding each one's exception,
  the other results in ``.partial`` (and in the store).

Dask is imported only when a cluster is used: the core imports without it.
"""

from .errors import ImageFailure, ShardError, StoreError
from .merge import PER_IMAGE, merge_results
from .sharding import Executor, Sharding, shardable
from .store import read_shard, read_store

__all__ = [
    "PER_IMAGE",
    "Executor",
    "ImageFailure",
    "ShardError",
    "Sharding",
    "StoreError",
    "merge_results",
    "read_shard",
    "read_store",
    "shardable",
]
