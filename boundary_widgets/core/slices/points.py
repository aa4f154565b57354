"""Point evaluation: the plane's points classified chunk by chunk on the device, sized to a memory budget."""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..classifier import Classifier
from ..plane import Plane
from ..progress import CancelEvent, raise_if_cancelled
from ..validation import check_choice, check_positive_int
from .options import PRECISIONS

# Memory budgets cover the activations of one forward chunk: its inputs plus every leaf module's
# output per sample (``Classifier.bytes_per_sample``); the result arrays are capped apart
# (``MAX_RESULT_BYTES``).
DEFAULT_MEMORY_BUDGET = 256 * 2**20
# On a CPU, a chunk whose activations stay in cache runs faster than one that fills the budget.
# Convolutions (oneDNN) gain from larger batches. Measured in CPU time, one thread: dense layers peak
# near 8 MiB chunks (digits MLP 2.4M points/s at 8 MiB, 1.4M at 32 MiB), a ResNet-style network near
# 32 MiB (3x32x32: 2340 images/s at 8 MiB, 3040 at 32 MiB; 3x64x64: 510 and 760; digits CNN 72k and 74k).
CPU_CHUNK_BYTES = 8 * 2**20
CPU_CONV_CHUNK_BYTES = 32 * 2**20
# On CUDA the default budget is this share of the free device memory (``torch.cuda.mem_get_info``).
CUDA_FREE_SHARE = 0.5
# Fewer, larger chunks stop paying off long before this; it keeps ``cancel`` checked regularly.
MAX_CHUNK_POINTS = 65536
DEFAULT_RESOLUTION = {"cpu": 128, "cuda": 256}

# Chunks chosen by speed: the memory budget gives the largest chunk, but a smaller one often runs
# faster (on a CPU its activations stay in cache: digits-cnn peaks near 256 points, not the budget's
# 1055). A call with many points times the first of them in chunks of each candidate size
# (:func:`chunk_candidates`), each on about the memory chunk's number of points (one chunk of a few
# points is too short to time on a loaded machine), ``PROBE_ROUNDS`` times in turn; its points are the
# call's own, nothing is evaluated twice. The rest runs in the fastest (its best round), remembered per
# classifier, precision and layout. Only a call of at least ``PROBE_MIN_POINTS`` points and
# ``PROBE_MIN_FACTOR`` times the probe's own probes: never a 32² preview or the coarse first level of an
# adaptive slice (a widget's first frame).
PROBE_SPAN = 16  # candidates go down to the memory chunk / PROBE_SPAN
PROBE_ROUNDS = 2  # the first run of a batch shape pays for its set-up (oneDNN primitives, cuDNN plans)
PROBE_MIN_POINTS = 4096
PROBE_MIN_FACTOR = 4

# Margins within this share of the largest |logit| are re-checked in float32. Measured on the digits
# models: bfloat16 moved margins by up to 1.2 % of the largest |logit|, float16 by 0.17 %; ×4 and ×6 safety.
RECHECK_SHARE = {"bfloat16": 0.05, "float16": 0.01}
# Logits of consecutive float32 chunks are summarised (label, confidence, margin) together, up to this many
# logits at once: a few operations per chunk cost a small model's chunk several percent of its time.
SUMMARY_ELEMENTS = 2**18


def default_resolution(device: str | torch.device) -> int:
    """Cells per axis of a slice when none is given: 128 on a CPU, 256 on a GPU (where the model is fast)."""
    return DEFAULT_RESOLUTION.get(torch.device(device).type, DEFAULT_RESOLUTION["cuda"])


def chunk_budget(
    device: str | torch.device, memory_budget: int | None = None, *, convolutional: bool = False, cpu_floor: int = 0
) -> int:
    """Bytes of activations one forward chunk may hold on ``device``.

    CPU: ``memory_budget`` (default ``DEFAULT_MEMORY_BUDGET``) but at most ``CPU_CHUNK_BYTES``, which
    keeps a chunk in cache (``CPU_CONV_CHUNK_BYTES`` for a ``convolutional`` model), or ``cpu_floor``
    where that is larger (a caller whose chunks cost per-call overhead below it). CUDA:
    ``CUDA_FREE_SHARE`` of the memory free now on that device, and at most ``memory_budget`` when
    given. Other devices: ``memory_budget`` or the default.
    """
    device = torch.device(device)
    if memory_budget is not None:
        memory_budget = check_positive_int(memory_budget, "memory_budget")
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        available = max(1, int(CUDA_FREE_SHARE * free))
        return available if memory_budget is None else min(memory_budget, available)
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    if device.type != "cpu":
        return budget
    return min(budget, max(cpu_floor, CPU_CONV_CHUNK_BYTES if convolutional else CPU_CHUNK_BYTES))


def _is_convolutional(net: nn.Module | None) -> bool:
    return net is not None and any(isinstance(m, nn.modules.conv._ConvNd) for m in net.modules())


def chunk_size(clf: Classifier, memory_budget: int | None = None) -> int:
    """Points per forward chunk: :func:`chunk_budget` over the classifier's bytes per sample, in
    ``[1, MAX_CHUNK_POINTS]``."""
    budget = chunk_budget(clf.device, memory_budget, convolutional=_is_convolutional(getattr(clf, "net", None)))
    return int(np.clip(budget // clf.bytes_per_sample(), 1, MAX_CHUNK_POINTS))


def chunk_candidates(chunk: int) -> tuple[int, ...]:
    """The chunk sizes a speed probe times: ``chunk`` (the memory budget's) and the powers of two below
    it, down to ``chunk / PROBE_SPAN``; largest first."""
    chunk = check_positive_int(chunk, "chunk")
    sizes = [chunk]
    power = 1 << (chunk.bit_length() - 1)
    if power == chunk:
        power //= 2
    while power >= max(1, chunk // PROBE_SPAN):
        sizes.append(power)
        power //= 2
    return tuple(sizes)


# The fastest chunk found by a probe, per classifier (its module's speed does not depend on the values of
# its weights) and (precision, layout, memory chunk).
_FASTEST_CHUNK: weakref.WeakKeyDictionary[Classifier, dict[tuple, int]] = weakref.WeakKeyDictionary()
_FASTEST_LOCK = threading.Lock()


def input_memory_format(device: str | torch.device, input_shape: tuple[int, ...]) -> torch.memory_format:
    """``channels_last`` for image batches (4-D) on CUDA, where cuDNN's NHWC convolutions are faster
    (tensor cores); the default layout elsewhere."""
    if torch.device(device).type == "cuda" and len(input_shape) == 3:
        return torch.channels_last
    return torch.contiguous_format


# Classifiers whose model refused a channels_last batch (e.g. a ``.view`` on an NHWC activation):
# they run in the default layout from then on, without a failed try per slice.
_DEFAULT_LAYOUT_ONLY: weakref.WeakSet[Classifier] = weakref.WeakSet()


@dataclass(frozen=True)
class PointEvaluation:
    labels: np.ndarray  # (N,) int64
    confidence: np.ndarray  # (N,) float32
    margin: np.ndarray  # (N,) float32
    n_clipped: int


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, precision))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _summarise(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    top2 = logits.topk(2, dim=1)
    confidence = torch.softmax(logits, dim=1).gather(1, top2.indices[:, :1])[:, 0]
    return top2.indices[:, 0], confidence, top2.values[:, 0] - top2.values[:, 1]


class PointEvaluator:
    """Classifies points of one plane, chunk by chunk in the input layout fixed once.

    ``max_chunk`` comes from the memory budget (:func:`chunk_size`); ``chunk`` is the fastest size a
    probe found for this classifier, precision and layout (``max_chunk`` until one has run).
    """

    def __init__(
        self,
        clf: Classifier,
        plane: Plane,
        *,
        clip: bool = False,
        memory_budget: int | None = None,
        precision: str = "float32",
    ) -> None:
        self.clf = clf
        self.precision = check_choice(precision, "precision", PRECISIONS)
        self.clip = clip
        self.max_chunk = chunk_size(clf, memory_budget)
        self.memory_format = input_memory_format(clf.device, clf.input_shape)
        if clf in _DEFAULT_LAYOUT_ONLY:
            self.memory_format = torch.contiguous_format
        with _FASTEST_LOCK:
            fastest = _FASTEST_CHUNK.get(clf, {}).get(self._speed_key())
        self.probed = fastest is not None
        self.chunk = self.max_chunk if fastest is None else fastest
        self._origin, self._u, self._v = (t.reshape(1, -1) for t in plane.to(clf.device))

    def _speed_key(self) -> tuple:
        return (self.precision, str(self.memory_format), self.max_chunk)

    def _probe_sizes(self, n_points: int) -> list[int]:
        """The chunk sizes of this call's probe, in the order run (``[]``: no probe)."""
        candidates = chunk_candidates(self.max_chunk)
        sizes = [size for _ in range(PROBE_ROUNDS) for size in candidates for _ in range(self.max_chunk // size)]
        if self.probed or len(candidates) < 2:
            return []
        if n_points < max(PROBE_MIN_POINTS, PROBE_MIN_FACTOR * sum(sizes)):
            return []
        return sizes

    def _remember(self, seconds_per_point: dict[int, float]) -> None:
        self.chunk = min(seconds_per_point, key=seconds_per_point.get)
        self.probed = True
        with _FASTEST_LOCK:
            _FASTEST_CHUNK.setdefault(self.clf, {})[self._speed_key()] = self.chunk

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory_format is not torch.contiguous_format:
            try:
                with _autocast(self.clf.device, self.precision):
                    return self.clf.forward(x.contiguous(memory_format=self.memory_format)).float()
            except RuntimeError:
                # e.g. a ``.view`` on an NHWC activation: this model runs in the default layout.
                self.memory_format = torch.contiguous_format
                _DEFAULT_LAYOUT_ONLY.add(self.clf)
        with _autocast(self.clf.device, self.precision):
            return self.clf.forward(x).float()

    def __call__(
        self,
        alphas: np.ndarray,
        betas: np.ndarray,
        *,
        cancel: CancelEvent | None = None,
        on_chunk: Callable[[int], object] | None = None,
    ) -> PointEvaluation:
        """Classify the points ``(alphas[n], betas[n])``. ``cancel`` is checked before every chunk and
        ``on_chunk(points_done)`` called after each. A call with enough points first times the chunk
        sizes (see ``PROBE_MIN_POINTS``), unless this classifier's fastest is known."""
        clf, device = self.clf, self.clf.device
        a_all = torch.as_tensor(np.asarray(alphas, dtype=np.float32), device=device)
        b_all = torch.as_tensor(np.asarray(betas, dtype=np.float32), device=device)
        labels, confidence, margin = [], [], []
        pending: list[torch.Tensor] = []  # float32 logits not summarised yet
        n_clipped = 0
        probe = self._probe_sizes(a_all.numel())
        seconds_per_point: dict[int, float] = {}
        group = [0.0, 0]  # seconds and points of the probe's current run of one size
        start = 0
        # Every chunk's images are built in this one buffer (the forward's normalisation copies them).
        rows = min(a_all.numel(), max(self.chunk, *probe, 0))
        images = torch.empty(rows, self._origin.shape[1], dtype=self._origin.dtype, device=device)

        def summarise() -> None:
            lab, conf, marg = _summarise(pending[0] if len(pending) == 1 else torch.cat(pending))
            labels.append(lab)
            confidence.append(conf)
            margin.append(marg)
            pending.clear()

        with clf.evaluating(), torch.no_grad():
            while start < a_all.numel():
                raise_if_cancelled(cancel)
                probing = len(probe) > 0
                size = probe.pop(0) if probing else self.chunk
                if probing:
                    _synchronize(device)
                    began = time.perf_counter()
                a = a_all[start : start + size, None]
                b = b_all[start : start + size, None]
                x = torch.addcmul(self._origin, a, self._u, out=images[: a.shape[0]]).addcmul_(b, self._v)
                if self.clip:
                    clipped = x.clamp(*clf.bounds)
                    n_clipped += int((clipped != x).any(dim=1).sum())
                    x = clipped
                x = x.reshape(-1, *clf.input_shape)
                logits = self._logits(x)
                if self.precision == "float32":
                    pending.append(logits)
                    start += size
                    if probing or start >= a_all.numel() or sum(t.numel() for t in pending) >= SUMMARY_ELEMENTS:
                        summarise()
                else:
                    lab, conf, marg = _summarise(logits)
                    near_tie = marg < RECHECK_SHARE[self.precision] * logits.abs().amax(dim=1)
                    if bool(near_tie.any()):
                        lab[near_tie], conf[near_tie], marg[near_tie] = _summarise(clf.forward(x[near_tie]).float())
                    labels.append(lab)
                    confidence.append(conf)
                    margin.append(marg)
                    start += size
                if on_chunk is not None:
                    on_chunk(min(start, a_all.numel()))
                if probing:  # the chunk's whole cost, the caller's per-chunk work (e.g. a state check) included
                    _synchronize(device)
                    group[0] += time.perf_counter() - began
                    group[1] += size
                    if not probe or probe[0] != size:  # a run of one size ends: its seconds per point
                        took = group[0] / group[1]
                        seconds_per_point[size] = min(took, seconds_per_point.get(size, took))
                        group = [0.0, 0]
                    if not probe:
                        self._remember(seconds_per_point)
        if not labels:
            return PointEvaluation(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), 0)
        cat = lambda parts, dtype: torch.cat(parts).cpu().numpy().astype(dtype)  # noqa: E731
        return PointEvaluation(cat(labels, np.int64), cat(confidence, np.float32), cat(margin, np.float32), n_clipped)


def evaluate_plane_points(
    clf: Classifier,
    plane: Plane,
    alphas: np.ndarray,
    betas: np.ndarray,
    *,
    clip: bool = False,
    memory_budget: int | None = None,
    precision: str = "float32",
    cancel: CancelEvent | None = None,
) -> PointEvaluation:
    """Classify the plane's points ``(alphas[n], betas[n])``; images are built chunk by chunk on the device.

    A chunk holds at most :func:`chunk_size` points: at most ``memory_budget`` bytes of activations (see
    :func:`chunk_budget` for the defaults on each device); within that, the fastest size a probe found
    (see :class:`PointEvaluator`). Image batches run in ``channels_last``
    on CUDA. Under half precision (autocast), points whose margin is below ``RECHECK_SHARE`` of their
    largest |logit| are evaluated again in float32, so that near-ties take their float32 label.
    ``cancel`` is checked before every chunk.
    """
    evaluator = PointEvaluator(clf, plane, clip=clip, memory_budget=memory_budget, precision=precision)
    return evaluator(alphas, betas, cancel=cancel)


__all__ = [
    "CPU_CHUNK_BYTES",
    "CPU_CONV_CHUNK_BYTES",
    "CUDA_FREE_SHARE",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_RESOLUTION",
    "MAX_CHUNK_POINTS",
    "RECHECK_SHARE",
    "PointEvaluation",
    "PointEvaluator",
    "chunk_budget",
    "chunk_size",
    "default_resolution",
    "evaluate_plane_points",
    "input_memory_format",
]
