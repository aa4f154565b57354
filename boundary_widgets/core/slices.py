"""Classification of a plane through an input: the label map and its margins."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .classifier import Classifier
from .plane import Plane
from .progress import CancelEvent, Cancelled, raise_if_cancelled
from .validation import check_choice, check_positive_int

Extent = float | tuple[tuple[float, float], tuple[float, float]]
Resolution = int | tuple[int, int]
PRECISIONS = ("float32", "bfloat16", "float16")
DEFAULT_MEMORY_BUDGET = 256 * 2**20
DEFAULT_METHOD = "adaptive"
# On a CPU, a chunk whose activations stay in cache runs faster than one that fills the budget.
CPU_CHUNK_BYTES = 8 * 2**20
# Adaptive refinement: samples per axis of the first (coarse) level, and how close to a boundary
# (in units of the cell diagonal, at the steepest typical margin slope) a cell must be to be refined.
MIN_COARSE_SAMPLES = 33
REFINE_SAFETY = 0.75
SLOPE_QUANTILE = 0.8
DEFAULT_CACHE_BYTES = 64 * 2**20


# The name slices used before the one progress/cancel protocol; kept for existing callers.
SliceCancelled = Cancelled


@dataclass(frozen=True, eq=False)
class PlaneSlice:
    """The classification of a grid on a plane. Row ``i`` of each map is ``betas[i]``, column ``j`` is ``alphas[j]``."""

    alphas: np.ndarray  # (Ra,) float64, L2 units along plane.u
    betas: np.ndarray  # (Rb,) float64, L2 units along plane.v
    labels: np.ndarray  # (Rb, Ra) int64, predicted class
    confidence: np.ndarray  # (Rb, Ra) float32, top-1 probability
    margin: np.ndarray  # (Rb, Ra) float32, top-1 minus top-2 logit (>= 0)
    evaluated: np.ndarray  # (Rb, Ra) bool, cells the model was run on (all for "dense")
    n_evaluated: int
    plane: Plane
    class_names: tuple[str, ...]
    extent: tuple[tuple[float, float], tuple[float, float]]
    resolution: tuple[int, int]  # (Ra, Rb)
    method: str
    clip: bool
    clipped_fraction: float  # share of evaluated points that clipping moved (0 when clip=False)
    precision: str
    is_final: bool = True  # False for the intermediate frames of a progressive computation

    @property
    def classes_present(self) -> list[int]:
        return [int(k) for k in np.unique(self.labels)]

    def label_at(self, alpha: float, beta: float) -> int:
        """The label of the grid cell nearest to (alpha, beta)."""
        i = int(np.abs(self.betas - beta).argmin())
        j = int(np.abs(self.alphas - alpha).argmin())
        return int(self.labels[i, j])


def normalize_extent(extent: object) -> tuple[tuple[float, float], tuple[float, float]]:
    """One half-width ``e`` -> ``((-e, e), (-e, e))``; ``((a0, a1), (b0, b1))`` is checked as it is."""
    if isinstance(extent, int | float | np.number) and not isinstance(extent, bool):
        if not np.isfinite(extent) or extent <= 0:
            raise ValueError(f"`extent` must be a finite half-width > 0; got {extent}.")
        e = float(extent)
        return (-e, e), (-e, e)
    try:
        (a0, a1), (b0, b1) = ((float(lo), float(hi)) for lo, hi in extent)  # type: ignore[union-attr]
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`extent` must be a half-width or ((alpha_min, alpha_max), (beta_min, beta_max)); got {extent!r}."
        ) from error
    for name, lo, hi in (("alpha", a0, a1), ("beta", b0, b1)):
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"`extent` {name} range must be finite and increasing (min < max); got ({lo}, {hi}).")
    return (a0, a1), (b0, b1)


def normalize_resolution(resolution: object) -> tuple[int, int]:
    """An int ``R`` -> ``(R, R)``; a pair ``(Ra, Rb)`` as it is; each >= 2."""
    if isinstance(resolution, tuple | list):
        if len(resolution) != 2:
            raise ValueError(f"`resolution` must be an int or a pair (Ra, Rb); got {resolution!r}.")
        return (
            check_positive_int(resolution[0], "resolution", minimum=2),
            check_positive_int(resolution[1], "resolution", minimum=2),
        )
    r = check_positive_int(resolution, "resolution", minimum=2)
    return r, r


def grid_axes(extent: object, resolution: object) -> tuple[np.ndarray, np.ndarray]:
    (a0, a1), (b0, b1) = normalize_extent(extent)
    ra, rb = normalize_resolution(resolution)
    return np.linspace(a0, a1, ra), np.linspace(b0, b1, rb)


@dataclass(frozen=True)
class PointEvaluation:
    labels: np.ndarray  # (N,) int64
    confidence: np.ndarray  # (N,) float32
    margin: np.ndarray  # (N,) float32
    n_clipped: int


# Margins within this share of the largest |logit| are re-checked in float32. Measured on the digits
# models: bfloat16 moved margins by up to 1.2 % of the largest |logit|, float16 by 0.17 %; ×4 and ×6 safety.
RECHECK_SHARE = {"bfloat16": 0.05, "float16": 0.01}


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, precision))


def _summarise(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    top2 = logits.topk(2, dim=1)
    confidence = torch.softmax(logits, dim=1).gather(1, top2.indices[:, :1])[:, 0]
    return top2.indices[:, 0], confidence, top2.values[:, 0] - top2.values[:, 1]


def evaluate_plane_points(
    clf: Classifier,
    plane: Plane,
    alphas: np.ndarray,
    betas: np.ndarray,
    *,
    clip: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    precision: str = "float32",
    cancel: CancelEvent | None = None,
) -> PointEvaluation:
    """Classify the plane's points ``(alphas[n], betas[n])``; images are built chunk by chunk on the device.

    A chunk holds at most ``memory_budget`` bytes of activations (on a CPU at most
    ``CPU_CHUNK_BYTES``). Under half precision, points whose margin is below ``RECHECK_SHARE`` of
    their largest |logit| are evaluated again in float32, so that near-ties take their float32 label. ``cancel`` is checked
    before every chunk.
    """
    check_choice(precision, "precision", PRECISIONS)
    budget = check_positive_int(memory_budget, "memory_budget")
    device = clf.device
    chunk_bytes = min(budget, CPU_CHUNK_BYTES) if device.type == "cpu" else budget
    chunk = max(1, chunk_bytes // clf.bytes_per_sample())
    origin, u, v = (t.reshape(1, -1) for t in plane.to(device))
    a_all = torch.as_tensor(np.asarray(alphas, dtype=np.float32), device=device)
    b_all = torch.as_tensor(np.asarray(betas, dtype=np.float32), device=device)
    labels, confidence, margin = [], [], []
    n_clipped = 0
    with clf.evaluating(), torch.no_grad():
        for start in range(0, a_all.numel(), chunk):
            raise_if_cancelled(cancel)
            a = a_all[start : start + chunk, None]
            b = b_all[start : start + chunk, None]
            x = torch.addcmul(torch.addcmul(origin, a, u), b, v)
            if clip:
                clipped = x.clamp(*clf.bounds)
                n_clipped += int((clipped != x).any(dim=1).sum())
                x = clipped
            x = x.reshape(-1, *clf.input_shape)
            with _autocast(device, precision):
                logits = clf.forward(x).float()
            lab, conf, marg = _summarise(logits)
            if precision != "float32":
                near_tie = marg < RECHECK_SHARE[precision] * logits.abs().amax(dim=1)
                if bool(near_tie.any()):
                    lab[near_tie], conf[near_tie], marg[near_tie] = _summarise(clf.forward(x[near_tie]).float())
            labels.append(lab)
            confidence.append(conf)
            margin.append(marg)
    if not labels:
        return PointEvaluation(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), 0)
    cat = lambda parts, dtype: torch.cat(parts).cpu().numpy().astype(dtype)  # noqa: E731
    return PointEvaluation(cat(labels, np.int64), cat(confidence, np.float32), cat(margin, np.float32), n_clipped)


def check_slice_arguments(clf: object, plane: object) -> None:
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    if not isinstance(plane, Plane):
        raise TypeError(f"`plane` must be a boundary_widgets.Plane; got {type(plane).__name__}.")
    if plane.shape != clf.input_shape:
        raise ValueError(f"`plane` must live in the classifier's input shape {clf.input_shape}; got {plane.shape}.")


@dataclass(frozen=True)
class _SliceRequest:
    """Checked arguments of one slice computation."""

    clf: Classifier
    plane: Plane
    alphas: np.ndarray  # (Ra,)
    betas: np.ndarray  # (Rb,)
    extent: tuple[tuple[float, float], tuple[float, float]]
    method: str
    clip: bool
    memory_budget: int
    precision: str
    cancel: CancelEvent | None
    progressive: bool  # whether intermediate frames are wanted (built only then)

    def evaluate(self, alphas: np.ndarray, betas: np.ndarray) -> PointEvaluation:
        return evaluate_plane_points(
            self.clf,
            self.plane,
            alphas,
            betas,
            clip=self.clip,
            memory_budget=self.memory_budget,
            precision=self.precision,
            cancel=self.cancel,
        )

    def make_slice(
        self,
        labels: np.ndarray,
        confidence: np.ndarray,
        margin: np.ndarray,
        evaluated: np.ndarray,
        *,
        n_clipped: int,
        is_final: bool,
    ) -> PlaneSlice:
        n_evaluated = int(evaluated.sum())
        return PlaneSlice(
            alphas=self.alphas,
            betas=self.betas,
            labels=labels,
            confidence=confidence,
            margin=margin,
            evaluated=evaluated,
            n_evaluated=n_evaluated,
            plane=self.plane,
            class_names=self.clf.class_names,
            extent=self.extent,
            resolution=(self.alphas.size, self.betas.size),
            method=self.method,
            clip=self.clip,
            clipped_fraction=n_clipped / max(n_evaluated, 1),
            precision=self.precision,
            is_final=is_final,
        )


def _dense_frames(request: _SliceRequest) -> Iterator[PlaneSlice]:
    raise_if_cancelled(request.cancel)
    grid_a, grid_b = np.meshgrid(request.alphas, request.betas)
    result = request.evaluate(grid_a.ravel(), grid_b.ravel())
    shape = grid_a.shape
    yield request.make_slice(
        result.labels.reshape(shape),
        result.confidence.reshape(shape),
        result.margin.reshape(shape),
        np.ones(shape, dtype=bool),
        n_clipped=result.n_clipped,
        is_final=True,
    )


def _lattice(n: int, step: int) -> np.ndarray:
    """Grid indices ``0, step, 2 step, ...`` and always the last one, ``n - 1``."""
    indices = np.arange(0, n, step)
    return indices if indices[-1] == n - 1 else np.append(indices, n - 1)


def _coarse_step(ra: int, rb: int) -> int:
    """The largest power-of-two step that still puts ``MIN_COARSE_SAMPLES`` samples on each axis."""
    step = 1
    while min(_lattice(ra, 2 * step).size, _lattice(rb, 2 * step).size) >= MIN_COARSE_SAMPLES:
        step *= 2
    return step


def _linear_weights(source: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For 1-D linear interpolation between sorted indices: each target's left source node ``k`` and weight ``t``."""
    k = np.clip(np.searchsorted(source, targets, side="right") - 1, 0, source.size - 2)
    return k, (targets - source[k]) / (source[k + 1] - source[k])


def _nearest(source: np.ndarray, targets: np.ndarray) -> np.ndarray:
    k, t = _linear_weights(source, targets)
    return np.where(t <= 0.5, k, k + 1)


def _bilinear(
    values: np.ndarray, rows: np.ndarray, cols: np.ndarray, to_rows: np.ndarray, to_cols: np.ndarray
) -> np.ndarray:
    """``values`` sampled at ``(rows, cols)`` interpolated to ``(to_rows, to_cols)``, one axis after the other."""
    k, t = _linear_weights(rows, to_rows)
    t = t.astype(np.float32)[:, None]
    by_rows = values[k] * (1 - t) + values[k + 1] * t
    k, t = _linear_weights(cols, to_cols)
    t = t.astype(np.float32)
    return by_rows[:, k] * (1 - t) + by_rows[:, k + 1] * t


def _covering_cells(cell_edges: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point index, the cells (between consecutive ``cell_edges``) whose closed span holds it (one or two)."""
    last = cell_edges.size - 2
    low = np.clip(np.searchsorted(cell_edges, points, side="left") - 1, 0, last)
    high = np.clip(np.searchsorted(cell_edges, points, side="right") - 1, 0, last)
    return low, high


@dataclass
class _Lattice:
    """Samples of the slice on a sub-grid: evaluated where ``evaluated``, interpolated elsewhere."""

    rows: np.ndarray  # (nr,) indices into betas
    cols: np.ndarray  # (nc,) indices into alphas
    labels: np.ndarray  # (nr, nc) int64
    confidence: np.ndarray  # (nr, nc) float32
    margin: np.ndarray  # (nr, nc) float32
    evaluated: np.ndarray  # (nr, nc) bool

    def refined(self, rows: np.ndarray, cols: np.ndarray) -> _Lattice:
        """This lattice seen on a finer one: bilinear margin/confidence, nearest labels, nothing new evaluated."""
        evaluated = np.zeros((rows.size, cols.size), dtype=bool)
        evaluated[np.ix_(np.searchsorted(rows, self.rows), np.searchsorted(cols, self.cols))] = self.evaluated
        return _Lattice(
            rows,
            cols,
            self.labels[_nearest(self.rows, rows)][:, _nearest(self.cols, cols)],
            _bilinear(self.confidence, self.rows, self.cols, rows, cols),
            _bilinear(self.margin, self.rows, self.cols, rows, cols),
            evaluated,
        )

    def store(self, mask: np.ndarray, result: PointEvaluation) -> None:
        self.labels[mask] = result.labels
        self.confidence[mask] = result.confidence
        self.margin[mask] = result.margin
        self.evaluated[mask] = True

    def margin_slope(self, alphas: np.ndarray, betas: np.ndarray) -> float:
        """A high quantile of |Δ margin| / distance over the edges whose two ends were evaluated."""
        slopes = []
        for axis, coords in ((1, alphas[self.cols]), (0, betas[self.rows])):
            both = np.logical_and(*_pairs(self.evaluated, axis))
            change = np.abs(np.diff(self.margin, axis=axis)) / np.expand_dims(np.diff(coords), 1 - axis)
            slopes.append(change[both])
        slopes = np.concatenate(slopes)
        return float(np.quantile(slopes, SLOPE_QUANTILE)) if slopes.size else 0.0

    def cells_to_refine(self, alphas: np.ndarray, betas: np.ndarray, slope: float) -> np.ndarray:
        """``(nr - 1, nc - 1)`` bool: corners disagree, or a corner is within reach of a boundary at ``slope``."""
        corners = lambda field: (field[:-1, :-1], field[1:, :-1], field[:-1, 1:], field[1:, 1:])  # noqa: E731
        first, *others = corners(self.labels)
        disagree = np.logical_or.reduce([first != other for other in others])
        lowest_margin = np.minimum.reduce(corners(self.margin))
        diagonal = np.hypot(np.diff(betas[self.rows])[:, None], np.diff(alphas[self.cols])[None, :])
        return disagree | (lowest_margin < REFINE_SAFETY * slope * diagonal)

    def frame(self, request: _SliceRequest, n_clipped: int, *, is_final: bool) -> PlaneSlice:
        all_rows, all_cols = np.arange(request.betas.size), np.arange(request.alphas.size)
        if self.rows.size == all_rows.size and self.cols.size == all_cols.size:  # the full grid: nothing to fill
            return request.make_slice(
                self.labels, self.confidence, self.margin, self.evaluated, n_clipped=n_clipped, is_final=is_final
            )
        evaluated = np.zeros((all_rows.size, all_cols.size), dtype=bool)
        evaluated[np.ix_(self.rows, self.cols)] = self.evaluated
        return request.make_slice(
            self.labels[_nearest(self.rows, all_rows)][:, _nearest(self.cols, all_cols)],
            _bilinear(self.confidence, self.rows, self.cols, all_rows, all_cols),
            _bilinear(self.margin, self.rows, self.cols, all_rows, all_cols),
            evaluated,
            n_clipped=n_clipped,
            is_final=is_final,
        )


def _pairs(field: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The two ends of every edge along ``axis``."""
    n = field.shape[axis]
    return field.take(np.arange(n - 1), axis=axis), field.take(np.arange(1, n), axis=axis)


def _adaptive_frames(request: _SliceRequest) -> Iterator[PlaneSlice]:
    """Coarse-to-fine: evaluate a coarse lattice, then, halving the step, only the cells near a boundary.

    A cell of the current lattice is refined when its corner labels disagree or when its smallest
    corner margin is below ``REFINE_SAFETY * slope * diagonal``: with the margin changing at most at
    ``slope`` (a high quantile of the slopes seen so far), a boundary — or a small island between
    the samples — could then lie inside it. Cells left alone keep their corners' common label and get
    margin and confidence by bilinear interpolation.
    """
    alphas, betas = request.alphas, request.betas
    step = _coarse_step(alphas.size, betas.size)
    rows, cols = _lattice(betas.size, step), _lattice(alphas.size, step)
    raise_if_cancelled(request.cancel)
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
    result = request.evaluate(alphas[grid_cols.ravel()], betas[grid_rows.ravel()])
    shape = grid_rows.shape
    lattice = _Lattice(
        rows,
        cols,
        result.labels.reshape(shape),
        result.confidence.reshape(shape),
        result.margin.reshape(shape),
        np.ones(shape, dtype=bool),
    )
    n_clipped = result.n_clipped
    slope = lattice.margin_slope(alphas, betas)
    if request.progressive or step == 1:
        yield lattice.frame(request, n_clipped, is_final=step == 1)
    while step > 1:
        refine = lattice.cells_to_refine(alphas, betas, slope)
        step //= 2
        finer = lattice.refined(_lattice(betas.size, step), _lattice(alphas.size, step))
        low_r, high_r = _covering_cells(lattice.rows, finer.rows)
        low_c, high_c = _covering_cells(lattice.cols, finer.cols)
        # A finer node lies in a refined cell if any of the (up to four) cells covering it is refined;
        # OR-ing rows first, then columns, takes two gathers instead of four 2-D ones.
        rows_any = refine[low_r] | refine[high_r]
        in_refined_cell = rows_any[:, low_c] | rows_any[:, high_c]
        todo = in_refined_cell & ~finer.evaluated
        raise_if_cancelled(request.cancel)
        todo_rows, todo_cols = np.nonzero(todo)
        result = request.evaluate(alphas[finer.cols[todo_cols]], betas[finer.rows[todo_rows]])
        finer.store(todo, result)
        n_clipped += result.n_clipped
        lattice = finer
        if step > 1:  # the slope only guides the next refinement
            slope = max(slope, lattice.margin_slope(alphas, betas))
        if request.progressive or step == 1:
            yield lattice.frame(request, n_clipped, is_final=step == 1)


SLICE_METHODS: dict[str, Callable[[_SliceRequest], Iterator[PlaneSlice]]] = {
    "adaptive": _adaptive_frames,
    "dense": _dense_frames,
}


class _SliceCache:
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
        arrays = (sl.labels, sl.confidence, sl.margin, sl.evaluated, sl.alphas, sl.betas)
        planes = (sl.plane.origin, sl.plane.u, sl.plane.v)
        size = sum(a.nbytes for a in arrays) + sum(t.numel() * t.element_size() for t in planes)
        if size > self.max_bytes:
            return
        for array in arrays:
            array.flags.writeable = False  # a cached result is shared by every caller
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


_CACHE = _SliceCache(DEFAULT_CACHE_BYTES)


def clear_slice_cache() -> None:
    """Forget every cached slice (see ``cache=`` of :func:`compute_slice`)."""
    _CACHE.clear()


def _cache_key(request: _SliceRequest) -> tuple:
    return (
        id(request.clf),
        request.clf.state_checksum(),
        request.plane.fingerprint(),
        request.extent,
        (request.alphas.size, request.betas.size),
        request.method,
        request.clip,
        request.precision,
    )


def iter_slice(
    clf: Classifier,
    plane: Plane,
    *,
    extent: Extent,
    resolution: Resolution = 128,
    method: Literal["adaptive", "dense"] = DEFAULT_METHOD,
    clip: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    precision: str = "float32",
    cancel: CancelEvent | None = None,
    cache: bool = True,
) -> Iterator[PlaneSlice]:
    """The frames of :func:`compute_slice` as they are ready: coarse first, the finished slice last.

    Arguments are checked at once (not at the first ``next``). Every frame is a complete
    ``PlaneSlice`` of the requested resolution; only the last has ``is_final=True`` and it equals
    ``compute_slice(...)`` with the same arguments. ``method="dense"`` yields one frame. With
    ``cache=True`` a cached result is yielded alone; a finished result is cached, a cancelled or
    abandoned one is not. Raises :class:`SliceCancelled` from ``next`` once ``cancel.is_set()``.
    """
    return _start_frames(
        clf,
        plane,
        extent=extent,
        resolution=resolution,
        method=method,
        clip=clip,
        memory_budget=memory_budget,
        precision=precision,
        cancel=cancel,
        cache=cache,
    )


def _start_frames(
    clf: Classifier,
    plane: Plane,
    *,
    extent: Extent,
    resolution: Resolution = 128,
    method: Literal["adaptive", "dense"] = DEFAULT_METHOD,
    clip: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    precision: str = "float32",
    cancel: CancelEvent | None = None,
    cache: bool = True,
    progressive: bool = True,
) -> Iterator[PlaneSlice]:
    check_slice_arguments(clf, plane)
    check_choice(method, "method", tuple(SLICE_METHODS))
    if not isinstance(clip, bool | np.bool_):
        raise TypeError(f"`clip` must be a bool; got {type(clip).__name__}.")
    check_choice(precision, "precision", PRECISIONS)
    check_positive_int(memory_budget, "memory_budget")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise TypeError(f"`cancel` must be a threading.Event (anything with is_set()) or None; got {cancel!r:.80}.")
    if not isinstance(cache, bool | np.bool_):
        raise TypeError(f"`cache` must be a bool; got {type(cache).__name__}.")
    alphas, betas = grid_axes(extent, resolution)
    request = _SliceRequest(
        clf,
        plane,
        alphas,
        betas,
        normalize_extent(extent),
        method,
        bool(clip),
        memory_budget,
        precision,
        cancel,
        progressive,
    )
    return _frames(request, _cache_key(request) if cache else None)


def _frames(request: _SliceRequest, key: tuple | None) -> Iterator[PlaneSlice]:
    raise_if_cancelled(request.cancel)
    cached = _CACHE.get(key, request.clf) if key is not None else None
    if cached is not None:
        yield cached
        return
    for frame in SLICE_METHODS[request.method](request):
        if frame.is_final and key is not None:
            _CACHE.put(key, request.clf, frame)
        yield frame


def compute_slice(
    clf: Classifier,
    plane: Plane,
    *,
    extent: Extent,
    resolution: Resolution = 128,
    method: Literal["adaptive", "dense"] = DEFAULT_METHOD,
    clip: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    precision: str = "float32",
    on_frame: Callable[[PlaneSlice], object] | None = None,
    cancel: CancelEvent | None = None,
    cache: bool = True,
) -> PlaneSlice:
    """Classify an ``Ra × Rb`` grid on ``plane`` spanning ``extent`` (L2 units around the origin).

    ``method="adaptive"`` (the default) evaluates a coarse lattice (at least ``MIN_COARSE_SAMPLES``
    per axis), then halves the step level by level down to the full grid, evaluating only cells
    whose corner labels disagree or whose margin says a boundary (or a small island) may be
    inside; other cells take their corners' label, and margin/confidence by bilinear
    interpolation. ``evaluated`` marks the cells the model was run on. ``method="dense"``
    evaluates every cell, for exact work.

    Images are built on the classifier's device one chunk at a time, the chunk sized so that one
    forward pass fits in ``memory_budget`` bytes. ``precision`` ``"bfloat16"``/``"float16"`` runs
    the model under autocast and re-checks near-ties in float32. ``clip=True`` clips every point
    to the classifier's bounds and reports the share of evaluated points it moved.

    Progress and cancellation (for a worker thread):

    - ``on_frame(sl)`` is called in the calling thread after each level with a complete
      ``PlaneSlice`` of the requested resolution (coarse levels interpolated; ``sl.is_final`` is
      ``False`` for all but the last). Its return value is ignored; an exception it raises stops
      the computation and propagates. The last call receives the object that is returned.
      ``method="dense"`` and a cache hit call it once.
    - ``cancel`` is a ``threading.Event`` (anything with ``is_set()``); it is checked before each
      level and between chunks of forward passes, and when set the call raises
      :class:`SliceCancelled`. Nothing is cached then.

    ``cache=True`` keeps finished results in a process-wide cache bounded in bytes (see
    :func:`clear_slice_cache`), keyed by the classifier object and the state of its tensors, the
    plane's values, extent, resolution, method, clip and precision: a repeated call runs no forward
    pass. Cached results have read-only arrays.
    """
    if on_frame is not None and not callable(on_frame):
        raise TypeError(f"`on_frame` must be callable or None; got {type(on_frame).__name__}.")
    frames = _start_frames(
        clf,
        plane,
        extent=extent,
        resolution=resolution,
        method=method,
        clip=clip,
        memory_budget=memory_budget,
        precision=precision,
        cancel=cancel,
        cache=cache,
        progressive=on_frame is not None,
    )
    for frame in frames:
        if on_frame is not None:
            on_frame(frame)
    return frame
