"""Certified slices: every cell of the map proven single-label, or flagged.

The sampled map (the adaptive method) gives labels, margins and confidence at the cell centres. Then
the proof runs coarse to fine over a quad-tree of boxes: a box whose margin is proven positive over
its whole area (:mod:`boundary_widgets.core.bounds`) proves every cell inside it; the others are
split in four, down to ``ProofOptions.min_cell`` of a cell or until the budget of boxes ends. The
centres of the cells left not wholly proven are then evaluated (if the sampled map interpolated
them), and a wholly proven cell takes its proven label.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..bounds import CellBounder
from ..bounds.engine import BYTES_PER_BOX_FACTOR
from ..classifier import Classifier
from ..paths import ConnectingPath
from ..plane import Plane
from .options import ProofOptions, SliceOptions
from .points import chunk_budget
from .request import SliceRequest
from .result import Certificate, PlaneSlice

# The proof starts from blocks of cells such that each axis has at least this many blocks.
COARSE_BLOCKS = 16
# Boxes bounded at once on a CPU at least (memory allowing): one box at a time, a wide network's operators cost
# about as much in per-call overhead as in arithmetic (measured on a ResNet-style 3×32×32 net: 2× slower than 8).
MIN_CHUNK_BOXES = 8
# A path lies in a slice's plane when each anchor is this close to its projection, relative to its norm.
PLANE_TOLERANCE = 1e-4


def bounder(clf: Classifier, plane: Plane, options: SliceOptions) -> CellBounder:
    """The bound engine for this slice: the model traced, every operator checked and one box bounded at the
    plane's origin (raises ``UnsupportedModelError`` naming what has no bound)."""
    # The cache-sized chunk on a CPU, but MIN_CHUNK_BOXES boxes where the memory budget allows.
    boxes = MIN_CHUNK_BOXES * BYTES_PER_BOX_FACTOR * clf.bytes_per_sample()
    chunk_bytes = chunk_budget(clf.device, options.memory_budget, convolutional=True, cpu_floor=boxes)
    return CellBounder(clf, plane, clip=options.clip, chunk_bytes=chunk_bytes)


def start_size(resolution: tuple[int, int], proof: ProofOptions) -> int:
    """Side of the first boxes, in cells: the largest power of two leaving ``COARSE_BLOCKS`` blocks per axis."""
    size = 1
    while proof.coarse and -(-min(resolution) // (2 * size)) >= COARSE_BLOCKS:
        size *= 2
    return size


def proof_units(options: SliceOptions) -> int:
    """Units of progress of the proof: its levels, then the evaluation of the unproven cells' centres."""
    levels = np.log2(start_size(options.resolution, options.proof)) - np.log2(options.proof.min_cell)
    return round(float(levels)) + 2


@dataclasses.dataclass
class _Proof:
    """The proof so far: per cell what was proven, and the boxes still to bound (edges in cell units)."""

    proven: np.ndarray  # (Rb, Ra) float64
    label_low: np.ndarray  # (Rb, Ra) int64, least proven label (for "do the proven parts agree")
    label_high: np.ndarray  # (Rb, Ra) int64
    margin: np.ndarray  # (Rb, Ra) float32, +inf where nothing is proven
    rows: np.ndarray  # (M,) float64, first edge of each pending box along v (cell i spans [i, i + 1])
    cols: np.ndarray  # (M,) float64
    size: float  # side of the pending boxes, in cells
    leaves: list[np.ndarray]  # (k, 3) rows, cols, size: boxes left unproven for good

    def record(self, rows: np.ndarray, cols: np.ndarray, labels: np.ndarray, lower: np.ndarray) -> None:
        rb, ra = self.proven.shape
        if self.size >= 1:  # blocks of whole cells: each cell of a block is proven, once
            offsets = np.arange(int(self.size))
            r = (rows.astype(int)[:, None, None] + offsets[None, :, None]).repeat(offsets.size, axis=2)
            c = (cols.astype(int)[:, None, None] + offsets[None, None, :]).repeat(offsets.size, axis=1)
            inside = (r < rb) & (c < ra)
            which = np.broadcast_to(np.arange(rows.size)[:, None, None], r.shape)[inside]
            r, c = r[inside], c[inside]
            self.proven[r, c] = 1.0
            self.label_low[r, c] = self.label_high[r, c] = labels[which]
            self.margin[r, c] = lower[which]
            return
        r, c = np.floor(rows).astype(int), np.floor(cols).astype(int)
        np.add.at(self.proven, (r, c), self.size**2)
        np.minimum.at(self.label_low, (r, c), labels)
        np.maximum.at(self.label_high, (r, c), labels)
        np.minimum.at(self.margin, (r, c), lower)

    def certificate(
        self, request: SliceRequest, bounded: int, budget: int, *, exhausted: bool, complete: bool
    ) -> Certificate:
        proof = request.options.proof
        pending = np.stack([self.rows, self.cols, np.full(self.rows.shape, self.size)], axis=1)
        leaves = np.concatenate([*self.leaves, pending]) if self.leaves or pending.size else np.zeros((0, 3))
        any_proven = self.proven > 0
        agree = any_proven & (self.label_low == self.label_high)
        return Certificate(
            proven=np.minimum(self.proven, 1.0).astype(np.float32),
            proven_label=np.where(agree, self.label_low, -1).astype(np.int64),
            proven_margin=np.where(any_proven, self.margin, np.nan).astype(np.float32),
            boundary=_boxes(request, leaves),
            min_cell=proof.min_cell,
            safety_margin=proof.safety_margin,
            budget=budget,
            n_bounded=bounded,
            exhausted=exhausted,
            is_complete=complete,
        )


def _steps(request: SliceRequest) -> tuple[float, float]:
    alphas, betas = request.alphas, request.betas
    return (alphas[-1] - alphas[0]) / (alphas.size - 1), (betas[-1] - betas[0]) / (betas.size - 1)


def _boxes(request: SliceRequest, leaves: np.ndarray) -> np.ndarray:
    """Boxes ``(k, 3)`` (first row edge, first column edge, size; clipped to the grid) -> ``(k, 4)``: alpha, beta,
    half-width along u, along v."""
    rb, ra = request.betas.size, request.alphas.size
    da, db = _steps(request)
    rows, cols, size = leaves[:, 0], leaves[:, 1], leaves[:, 2]
    row_end, col_end = np.minimum(rows + size, rb), np.minimum(cols + size, ra)
    alpha = request.alphas[0] + ((cols + col_end) / 2 - 0.5) * da
    beta = request.betas[0] + ((rows + row_end) / 2 - 0.5) * db
    return np.stack([alpha, beta, (col_end - cols) / 2 * da, (row_end - rows) / 2 * db], axis=1)


def certified_frames(
    request: SliceRequest, sampled: Callable[[SliceRequest], Iterator[PlaneSlice]]
) -> Iterator[PlaneSlice]:
    """The sampled map's frames (no certificate yet), then one frame per level of the proof, then the final slice."""
    options, tracker = request.options, request.tracker
    proof = options.proof
    bound = bounder(request.clf, request.plane, options)
    for frame in sampled(request):
        sampled_map = frame
        if request.progressive:
            yield dataclasses.replace(frame, is_final=False) if frame.is_final else frame
    rb, ra = request.betas.size, request.alphas.size
    size = start_size((ra, rb), proof)
    starts_r, starts_c = np.arange(0, rb, size, dtype=float), np.arange(0, ra, size, dtype=float)
    grid_r, grid_c = np.meshgrid(starts_r, starts_c, indexing="ij")
    state = _Proof(
        proven=np.zeros((rb, ra)),
        label_low=np.full((rb, ra), np.iinfo(np.int64).max),
        label_high=np.full((rb, ra), -1),
        margin=np.full((rb, ra), np.inf, dtype=np.float32),
        rows=grid_r.ravel(),
        cols=grid_c.ravel(),
        size=float(size),
        leaves=[],
    )
    budget = proof.boxes_allowed((ra, rb))
    bounded, exhausted, levels = 0, False, 0
    while state.rows.size:
        tracker.check()
        todo = min(state.rows.size, budget - bounded)
        rows, cols = state.rows[:todo], state.cols[:todo]
        leaves = np.stack([rows, cols, np.full(todo, state.size)], axis=1)
        a, b, ha, hb = _boxes(request, leaves).T
        margins = bound(a, b, ha, hb, cancel=tracker.cancel, on_chunk=request.check_state)
        bounded += todo
        threshold = proof.safety_margin * np.maximum(1.0, margins.scale)
        won = margins.lower > threshold
        state.record(rows[won], cols[won], margins.labels[won], margins.lower[won])
        lost_r, lost_c = rows[~won], cols[~won]
        if todo < state.rows.size:  # the budget ended: what was not bounded stays unproven
            exhausted = True
            state.leaves.append(
                np.stack([state.rows[todo:], state.cols[todo:], np.full(state.rows.size - todo, state.size)], axis=1)
            )
        if exhausted or state.size <= proof.min_cell:
            state.leaves.append(np.stack([lost_r, lost_c, np.full(lost_r.size, state.size)], axis=1))
            state.rows, state.cols = np.zeros(0), np.zeros(0)
        else:
            half = state.size / 2
            child_r = (lost_r[:, None] + np.array([0, 0, half, half])[None]).ravel()
            child_c = (lost_c[:, None] + np.array([0, half, 0, half])[None]).ravel()
            inside = (child_r < rb) & (child_c < ra)
            state.rows, state.cols, state.size = child_r[inside], child_c[inside], half
        levels += 1
        request.advance()
        if request.progressive and state.rows.size:
            certificate = state.certificate(request, bounded, budget, exhausted=exhausted, complete=False)
            yield dataclasses.replace(sampled_map, is_final=False, certificate=certificate)
    if proof_units(options) - 1 > levels:  # every box proven (or the budget ended) before the last level
        tracker.advance(proof_units(options) - 1 - levels)
    certificate = state.certificate(request, bounded, budget, exhausted=exhausted, complete=True)
    yield _final(request, sampled_map, certificate)


def _final(request: SliceRequest, sampled_map: PlaneSlice, certificate: Certificate) -> PlaneSlice:
    """Evaluate the centres of the cells not wholly proven (where the sampled map interpolated), and give every
    wholly proven cell its proven label."""
    tracker = request.tracker
    whole = (certificate.proven >= 1) & (certificate.proven_label >= 0)  # one class over the whole cell
    todo = ~whole & ~sampled_map.evaluated
    labels, confidence, margin = (np.array(a) for a in (sampled_map.labels, sampled_map.confidence, sampled_map.margin))
    evaluated = np.array(sampled_map.evaluated)
    n_clipped = round(sampled_map.clipped_fraction * sampled_map.n_evaluated)
    tracker.check()
    rows, cols = np.nonzero(todo)
    if rows.size:
        result = request.evaluator(
            request.alphas[cols], request.betas[rows], cancel=tracker.cancel, on_chunk=request.check_state
        )
        labels[todo], confidence[todo], margin[todo] = result.labels, result.confidence, result.margin
        evaluated[todo] = True
        n_clipped += result.n_clipped
    labels[whole] = certificate.proven_label[whole]
    request.advance()
    final = request.make_slice(labels, confidence, margin, evaluated, n_clipped=n_clipped, is_final=True)
    return dataclasses.replace(final, certificate=certificate)


@dataclasses.dataclass(frozen=True)
class PathCertificate:
    """Whether a connecting path is *proven* to stay in its class: every segment lies in wholly proven cells of it."""

    proven: bool
    label: int  # the path's class
    segments: np.ndarray  # (K - 1,) bool, segment k (anchor k to k + 1) lies in wholly proven cells of `label`
    reason: str | None  # why it is not proven; None when it is

    def __repr__(self) -> str:
        status = "proven" if self.proven else f"not proven: {self.reason}"
        return (
            f"PathCertificate(label={self.label}, segments={int(self.segments.sum())}/{self.segments.size}, {status})"
        )


def _segment_cells(sl: PlaneSlice, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The grid cells a straight segment of the plane passes through (rows, cols), or None if it leaves the grid.

    The segment is cut wherever it crosses a cell edge; the middle of each piece lies inside one cell, and the
    crossings themselves lie on the closed boxes of the cells before and after them.
    """
    da, db = sl.alphas[1] - sl.alphas[0], sl.betas[1] - sl.betas[0]
    edges_a = sl.alphas[0] - da / 2 + da * np.arange(sl.alphas.size + 1)
    edges_b = sl.betas[0] - db / 2 + db * np.arange(sl.betas.size + 1)
    low, high = np.array([edges_a[0], edges_b[0]]), np.array([edges_a[-1], edges_b[-1]])
    if (np.minimum(start, end) < low).any() or (np.maximum(start, end) > high).any():
        return None
    cuts = [np.array([0.0, 1.0])]
    for axis, edges in ((0, edges_a), (1, edges_b)):
        if end[axis] != start[axis]:
            t = (edges - start[axis]) / (end[axis] - start[axis])
            cuts.append(t[(t > 0) & (t < 1)])
    t = np.unique(np.concatenate(cuts))
    middle = start + ((t[:-1] + t[1:]) / 2)[:, None] * (end - start)
    cols = np.clip(np.floor((middle[:, 0] - edges_a[0]) / da).astype(int), 0, sl.alphas.size - 1)
    rows = np.clip(np.floor((middle[:, 1] - edges_b[0]) / db).astype(int), 0, sl.betas.size - 1)
    return rows, cols


def certify_path(sl: PlaneSlice, path: ConnectingPath) -> PathCertificate:
    """Whether ``path`` is proven to stay in its class by the certified slice ``sl``.

    The path must lie in the slice's plane (each anchor within ``PLANE_TOLERANCE`` of its projection, relative to
    its norm; a ``ValueError`` otherwise: a path off the plane is not covered by the slice's proof). A segment is
    proven when every cell it passes through is wholly proven to be of the path's class; a cell only partly proven
    does not count, nor does a segment that leaves the slice's cells.
    """
    if not isinstance(sl, PlaneSlice):
        raise TypeError(f"`sl` must be a PlaneSlice; got {type(sl).__name__}.")
    if sl.certificate is None or not sl.certificate.is_complete:
        raise ValueError("`sl` must be a finished slice of method='certified' (it has no complete certificate).")
    if not isinstance(path, ConnectingPath):
        raise TypeError(f"`path` must be a ConnectingPath; got {type(path).__name__}.")
    plane = sl.plane
    if tuple(path.anchors.shape[1:]) != plane.shape:
        raise ValueError(
            f"`path` must live in the slice's input shape {plane.shape}; got {tuple(path.anchors.shape[1:])}."
        )
    anchors = path.anchors.reshape(len(path.anchors), -1).double()
    origin, u, v = (t.reshape(-1).double() for t in (plane.origin, plane.u, plane.v))
    delta = anchors - origin
    coordinates = torch.stack([delta @ u, delta @ v], dim=1)
    residual = (delta - coordinates[:, :1] * u - coordinates[:, 1:] * v).norm(dim=1)
    if bool((residual > PLANE_TOLERANCE * (1 + anchors.norm(dim=1))).any()):
        raise ValueError(
            f"`path` must lie in the slice's plane; an anchor is {float(residual.max()):.3g} (L2) away from it."
        )
    points = coordinates.numpy()
    certificate = sl.certificate
    wholly = (certificate.proven >= 1) & (certificate.proven_label == path.label)
    segments = np.zeros(len(points) - 1, dtype=bool)
    reason = None
    for k in range(len(points) - 1):
        cells = _segment_cells(sl, points[k], points[k + 1])
        if cells is None:
            reason = reason or f"segment {k} leaves the slice's extent"
            continue
        segments[k] = bool(wholly[cells].all())
        if not segments[k]:
            reason = reason or f"segment {k} crosses a cell not wholly proven to be class {path.label}"
    return PathCertificate(bool(segments.all()), int(path.label), segments, None if segments.all() else reason)


__all__ = [
    "COARSE_BLOCKS",
    "MIN_CHUNK_BOXES",
    "PLANE_TOLERANCE",
    "PathCertificate",
    "bounder",
    "certified_frames",
    "certify_path",
    "proof_units",
    "start_size",
]
