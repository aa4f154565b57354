"""The frames of a slice: dense (one frame) and adaptive (coarse to fine, one frame per level)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..classifier import Classifier
from .certified import certified_frames, proof_units
from .options import SliceOptions
from .points import PointEvaluation, PointEvaluator
from .request import SliceRequest
from .result import PlaneSlice

# Adaptive refinement: samples per axis of the first (coarse) level; how much steeper than the typical
# steepest margin slope seen (its SLOPE_QUANTILE) the margin may change between samples; the points
# per cell side at which a cell is checked for a place its corners' margins cannot rule out; and, for
# cells larger than the coarse lattice's (a slow model's first levels, where islands hide between
# samples and the slope is least known), how close to a boundary (in cell diagonals, at that slope)
# any one corner may come.
MIN_COARSE_SAMPLES = 33
REFINE_SAFETY = 1.25
SLOPE_QUANTILE = 0.8
CELL_CHECK_POINTS = 5
COARSE_CORNER_SAFETY = 0.75
# A first frame in seconds on any model: the adaptive slice starts from a lattice of ``START_SAMPLES``
# per axis (9×9: about a hundred forwards) when the ``MIN_COARSE_SAMPLES`` lattice (33×33) would be
# slow, and refines from there level by level (17×17, 33×33, …) only where needed. Slow is judged
# without a clock (a loaded machine would make the result depend on the load): the 33×33 lattice's
# activations (``Classifier.bytes_per_sample``) above ``COARSE_LEVEL_BYTES`` of the device. Measured:
# a 2-core CPU runs about 2 GB/s of activations (digits-cnn, a ResNet-18), an H100 a hundred times more;
# a 33×33 lattice is 35 MB for digits-cnn, 0.8 GB for a ResNet-18 at 3×32×32, 38 GB at 3×224×224.
START_SAMPLES = 9
COARSE_LEVEL_BYTES = {"cpu": 256 * 2**20, "cuda": 8 * 2**30}
# Dense slices run in blocks of this many of the evaluator's largest chunks (at least its speed probe's need).
DENSE_BLOCK_CHUNKS = 64


def starts_coarse(clf: Classifier, points: int) -> bool:
    """Whether an adaptive slice on ``clf`` starts from the 9×9 lattice: when ``points`` forwards (its
    33×33 lattice) hold more activations than ``COARSE_LEVEL_BYTES`` of the classifier's device."""
    limit = COARSE_LEVEL_BYTES.get(clf.device.type, COARSE_LEVEL_BYTES["cpu"])
    return points * clf.bytes_per_sample() > limit


def total_units(options: SliceOptions, evaluator: PointEvaluator) -> int:
    """Units of progress of a slice: chunks of the full grid (dense) or levels (adaptive; certified: the adaptive
    levels, then the proof's)."""
    ra, rb = options.resolution
    if options.method == "dense":
        return -(-ra * rb // evaluator.chunk)
    levels = int(np.log2(first_step(evaluator.clf, ra, rb))) + 1
    return levels + proof_units(options) if options.method == "certified" else levels


def dense_frames(request: SliceRequest) -> Iterator[PlaneSlice]:
    """Every cell, evaluated in blocks of ``DENSE_BLOCK_CHUNKS`` of the evaluator's largest chunks written
    into the result arrays as they come: the grid's coordinates and the evaluator's buffers exist for
    one block at a time, so the peak stays near the result arrays themselves."""
    tracker = request.tracker
    tracker.check()
    alphas, betas = request.alphas, request.betas
    n_points = alphas.size * betas.size
    labels = np.empty(n_points, dtype=np.int64)
    confidence = np.empty(n_points, dtype=np.float32)
    margin = np.empty(n_points, dtype=np.float32)
    # Progress counts chunks of the size planned at the start; a speed probe's chunks are no larger.
    unit, block = request.evaluator.chunk, DENSE_BLOCK_CHUNKS * request.evaluator.max_chunk
    n_clipped, start = 0, 0

    def advance(done: int) -> None:
        request.check_state(None if start + done == n_points else start + done)
        units = tracker.total if start + done == n_points else (start + done) // unit
        if units > tracker.done:
            tracker.advance(units - tracker.done)

    while start < n_points:
        index = np.arange(start, min(start + block, n_points))
        result = request.evaluator(
            alphas[index % alphas.size], betas[index // alphas.size], cancel=tracker.cancel, on_chunk=advance
        )
        labels[index], confidence[index], margin[index] = result.labels, result.confidence, result.margin
        n_clipped += result.n_clipped
        start += index.size
    shape = (betas.size, alphas.size)
    yield request.make_slice(
        labels.reshape(shape),
        confidence.reshape(shape),
        margin.reshape(shape),
        np.ones(shape, dtype=bool),
        n_clipped=n_clipped,
        is_final=True,
    )


def lattice_indices(n: int, step: int) -> np.ndarray:
    """Grid indices ``0, step, 2 step, ...`` and always the last one, ``n - 1``."""
    indices = np.arange(0, n, step)
    return indices if indices[-1] == n - 1 else np.append(indices, n - 1)


def coarse_step(ra: int, rb: int, samples: int = MIN_COARSE_SAMPLES) -> int:
    """The largest power-of-two step that still puts ``samples`` samples on each axis."""
    step = 1
    while min(lattice_indices(ra, 2 * step).size, lattice_indices(rb, 2 * step).size) >= samples:
        step *= 2
    return step


def first_step(clf: Classifier, ra: int, rb: int) -> int:
    """The lattice step of an adaptive slice's first level: 33 samples per axis, or 9 on a model that
    :func:`starts_coarse`."""
    step = coarse_step(ra, rb)
    if starts_coarse(clf, lattice_indices(ra, step).size * lattice_indices(rb, step).size):
        return coarse_step(ra, rb, START_SAMPLES)
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
    """``values`` sampled at ``(rows, cols)`` interpolated to ``(to_rows, to_cols)``, one axis after the other.

    A target on a source node takes that node's value exactly (a NaN neighbour, from NaN logits, does
    not leak into it through a zero weight).
    """
    k, t = _linear_weights(rows, to_rows)
    by_rows = _lerp(values[k], values[k + 1], t.astype(np.float32)[:, None])
    k, t = _linear_weights(cols, to_cols)
    return _lerp(by_rows[:, k], by_rows[:, k + 1], t.astype(np.float32))


def _lerp(low: np.ndarray, high: np.ndarray, t: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # inf margins (an infinite logit) give NaN between nodes: undefined there
        return np.where(t == 0, low, np.where(t == 1, high, low * (1 - t) + high * t))


def _covering_cells(cell_edges: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point index, the cells (between consecutive ``cell_edges``) whose closed span holds it (one or two)."""
    last = cell_edges.size - 2
    low = np.clip(np.searchsorted(cell_edges, points, side="left") - 1, 0, last)
    high = np.clip(np.searchsorted(cell_edges, points, side="right") - 1, 0, last)
    return low, high


def _pairs(field: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The two ends of every edge along ``axis``."""
    n = field.shape[axis]
    return field.take(np.arange(n - 1), axis=axis), field.take(np.arange(1, n), axis=axis)


@dataclass
class Lattice:
    """Samples of the slice on a sub-grid: evaluated where ``evaluated``, interpolated elsewhere."""

    rows: np.ndarray  # (nr,) indices into betas
    cols: np.ndarray  # (nc,) indices into alphas
    labels: np.ndarray  # (nr, nc) int64
    confidence: np.ndarray  # (nr, nc) float32
    margin: np.ndarray  # (nr, nc) float32
    evaluated: np.ndarray  # (nr, nc) bool

    def refined(self, rows: np.ndarray, cols: np.ndarray) -> Lattice:
        """This lattice seen on a finer one: bilinear margin/confidence, nearest labels, nothing new evaluated."""
        evaluated = np.zeros((rows.size, cols.size), dtype=bool)
        evaluated[np.ix_(np.searchsorted(rows, self.rows), np.searchsorted(cols, self.cols))] = self.evaluated
        return Lattice(
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
            with np.errstate(invalid="ignore"):  # inf - inf between two cells with an infinite logit
                change = np.abs(np.diff(self.margin, axis=axis)) / np.expand_dims(np.diff(coords), 1 - axis)
            slopes.append(change[both & np.isfinite(change)])  # NaN logits give NaN margins: no slope there
        slopes = np.concatenate(slopes)
        return float(np.quantile(slopes, SLOPE_QUANTILE)) if slopes.size else 0.0

    def cells_to_refine(
        self, alphas: np.ndarray, betas: np.ndarray, slope: float, *, coarse: bool = False
    ) -> np.ndarray:
        """``(nr - 1, nc - 1)`` bool: corners disagree, the cell may hold a boundary or an island, or a
        corner's margin is NaN (NaN logits: the edge of an undefined region is refined like a boundary).

        With the margin changing at most at ``REFINE_SAFETY * slope``, no label changes within
        ``margin / (REFINE_SAFETY * slope)`` of a corner: a cell is refined when these four discs
        may leave part of it uncovered. Checked on ``CELL_CHECK_POINTS``² points of the cell, each
        standing for its neighbourhood (half the spacing each way), so nothing uncovered is missed.
        ``coarse`` cells are refined also when any corner's margin is below
        ``COARSE_CORNER_SAFETY * slope * diagonal``, whatever the other corners say.
        """
        corners = lambda field: (field[:-1, :-1], field[1:, :-1], field[:-1, 1:], field[1:, 1:])  # noqa: E731
        first, *others = corners(self.labels)
        lowest = np.minimum.reduce(corners(self.margin))
        refine = np.logical_or.reduce([first != other for other in others]) | np.isnan(lowest)
        if slope <= 0:
            return refine
        height = np.diff(betas[self.rows])[:, None]
        width = np.diff(alphas[self.cols])[None, :]
        if coarse:
            refine |= lowest < COARSE_CORNER_SAFETY * slope * np.hypot(height, width)
        reach = np.stack(corners(self.margin)) / (REFINE_SAFETY * slope)  # (4, nr - 1, nc - 1)
        # A corner whose disc reaches across the diagonal covers the cell alone: only the others are checked.
        open_rows, open_cols = np.nonzero(~refine & (reach.max(axis=0) < np.hypot(height, width)))
        height, width, reach = height[open_rows, 0], width[0, open_cols], reach[:, open_rows, open_cols]
        slack = np.hypot(height, width) / (2 * (CELL_CHECK_POINTS - 1))
        uncovered = np.zeros(open_rows.size, dtype=bool)
        fractions = np.linspace(0.0, 1.0, CELL_CHECK_POINTS)
        for t in fractions:  # along betas (rows)
            for s in fractions:  # along alphas (columns)
                # Distances to the corners (row, col) (0, 0), (1, 0), (0, 1), (1, 1), as ``corners`` orders them.
                gaps = (
                    np.hypot(t * height, s * width) - reach[0],
                    np.hypot((1 - t) * height, s * width) - reach[1],
                    np.hypot(t * height, (1 - s) * width) - reach[2],
                    np.hypot((1 - t) * height, (1 - s) * width) - reach[3],
                )
                uncovered |= np.minimum.reduce(gaps) + slack >= 0
        refine[open_rows[uncovered], open_cols[uncovered]] = True
        return refine

    def frame(self, request: SliceRequest, n_clipped: int, *, is_final: bool) -> PlaneSlice:
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


def adaptive_frames(request: SliceRequest) -> Iterator[PlaneSlice]:
    """Coarse-to-fine: evaluate a coarse lattice, then, halving the step, only the cells near a boundary.

    The first level is the ``MIN_COARSE_SAMPLES`` lattice (33×33), or the ``START_SAMPLES`` lattice
    (9×9) for a model that :func:`starts_coarse`, so the first frame costs about a hundred forwards.
    A cell of the current lattice is refined when its corner labels disagree or when, with the margin
    changing at most at ``REFINE_SAFETY`` times ``slope`` (a high quantile of the slopes seen so far),
    a boundary — or a small island between the samples — could lie inside it (see
    :meth:`Lattice.cells_to_refine`). Cells left alone keep their corners' common label and get margin
    and confidence by bilinear interpolation.
    """
    alphas, betas, tracker = request.alphas, request.betas, request.tracker
    step = first_step(request.clf, alphas.size, betas.size)
    rows, cols = lattice_indices(betas.size, step), lattice_indices(alphas.size, step)
    tracker.check()
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
    result = request.evaluator(
        alphas[grid_cols.ravel()], betas[grid_rows.ravel()], cancel=tracker.cancel, on_chunk=request.check_state
    )
    shape = grid_rows.shape
    lattice = Lattice(
        rows,
        cols,
        result.labels.reshape(shape),
        result.confidence.reshape(shape),
        result.margin.reshape(shape),
        np.ones(shape, dtype=bool),
    )
    n_clipped = result.n_clipped
    slope = lattice.margin_slope(alphas, betas)
    request.advance()
    if request.progressive or step == 1:
        yield lattice.frame(request, n_clipped, is_final=step == 1)
    coarse_cells = coarse_step(alphas.size, betas.size)
    while step > 1:
        refine = lattice.cells_to_refine(alphas, betas, slope, coarse=step > coarse_cells)
        step //= 2
        finer = lattice.refined(lattice_indices(betas.size, step), lattice_indices(alphas.size, step))
        low_r, high_r = _covering_cells(lattice.rows, finer.rows)
        low_c, high_c = _covering_cells(lattice.cols, finer.cols)
        # A finer node lies in a refined cell if any of the (up to four) cells covering it is refined;
        # OR-ing rows first, then columns, takes two gathers instead of four 2-D ones.
        rows_any = refine[low_r] | refine[high_r]
        in_refined_cell = rows_any[:, low_c] | rows_any[:, high_c]
        todo = in_refined_cell & ~finer.evaluated
        tracker.check()
        todo_rows, todo_cols = np.nonzero(todo)
        result = request.evaluator(
            alphas[finer.cols[todo_cols]],
            betas[finer.rows[todo_rows]],
            cancel=tracker.cancel,
            on_chunk=request.check_state,
        )
        finer.store(todo, result)
        n_clipped += result.n_clipped
        lattice = finer
        if step > 1:  # the slope only guides the next refinement
            slope = max(slope, lattice.margin_slope(alphas, betas))
        request.advance()
        if request.progressive or step == 1:
            yield lattice.frame(request, n_clipped, is_final=step == 1)


SLICE_METHODS: dict[str, Callable[[SliceRequest], Iterator[PlaneSlice]]] = {
    "adaptive": adaptive_frames,
    "dense": dense_frames,
    "certified": functools.partial(certified_frames, sampled=adaptive_frames),
}


__all__ = [
    "CELL_CHECK_POINTS",
    "COARSE_CORNER_SAFETY",
    "COARSE_LEVEL_BYTES",
    "DENSE_BLOCK_CHUNKS",
    "MIN_COARSE_SAMPLES",
    "REFINE_SAFETY",
    "SLICE_METHODS",
    "SLOPE_QUANTILE",
    "START_SAMPLES",
    "Lattice",
    "SliceRequest",
    "adaptive_frames",
    "coarse_step",
    "dense_frames",
    "first_step",
    "lattice_indices",
    "starts_coarse",
    "total_units",
]
