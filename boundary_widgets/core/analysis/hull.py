"""Convex-hull membership of feature vectors (Yousefzadeh): a linear program, and the distance by NNLS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import as_float_tensor, check_finite, check_number

# Weight of the row that enforces sum(alpha) = 1 in the NNLS form of the distance problem, relative to
# the data scale: large enough that the constraint holds to ~1e-7, small enough to keep NNLS well conditioned.
_SUM_ROW_WEIGHT = 1e3


@dataclass(frozen=True, eq=False)
class HullMembership:
    """For each query point: inside the convex hull of the reference points or not, and how far from it."""

    inside: np.ndarray  # (M,) bool, the linear program alpha >= 0, sum(alpha) = 1, Z alpha = z is feasible
    distance: np.ndarray  # (M,) float64, min |Z alpha - z| over the simplex (0 inside), L2
    weights: np.ndarray  # (M, N) float64, the convex weights alpha of the nearest hull point

    def __repr__(self) -> str:
        return f"HullMembership(points={self.inside.size}, inside={int(self.inside.sum())})"


def _as_matrix(value: object, name: str) -> np.ndarray:
    tensor = as_float_tensor(value, name)
    if tensor.numel() == 0:
        raise ValueError(f"`{name}` must hold at least one point; got an empty array of shape {tuple(tensor.shape)}.")
    check_finite(tensor, name)
    return tensor.reshape(tensor.shape[0], -1).double().numpy() if tensor.ndim > 1 else tensor.double().numpy()


def _nearest_hull_point(points: np.ndarray, z: np.ndarray, scale: float) -> np.ndarray:
    """Convex weights minimising |points.T @ alpha - z|: NNLS with a heavily weighted row sum(alpha) = 1."""
    from scipy.optimize import nnls  # scipy.optimize loads only when a hull is asked about

    weight = _SUM_ROW_WEIGHT * scale
    system = np.vstack([points.T, np.full(points.shape[0], weight)])
    alpha, _ = nnls(system, np.append(z, weight), maxiter=50 * system.shape[1])
    return alpha / alpha.sum()


def hull_membership(features: object, x: object, *, tolerance: float = 1e-7) -> HullMembership:
    """Whether each row of ``x`` lies in the convex hull of the rows of ``features``, and its distance.

    ``features``: ``(N, p)`` (or ``(N, *feature_shape)``) reference points; ``x``: one point
    ``(p,)`` or a batch ``(M, p)``. Membership is decided by the linear program of the paper
    (scipy ``linprog``, HiGHS); the distance ``min |Z alpha - x|`` over ``alpha >= 0, sum alpha = 1``
    is a least-squares problem solved by NNLS with the sum as an extra, heavily weighted row
    (exact up to ~1e-7 relative). ``tolerance`` is the LP's feasibility tolerance relative to the
    data scale.
    """
    from scipy.optimize import linprog

    points = _as_matrix(features, "features")
    if points.ndim != 2 or points.shape[0] < 1:
        raise ValueError(f"`features` must be a non-empty (N, p) array; got shape {points.shape}.")
    queries = _as_matrix(x, "x")
    if queries.ndim == 1:
        queries = queries[None]
    if queries.shape[1] != points.shape[1]:
        raise ValueError(f"`x` must have {points.shape[1]} features like `features`; got {queries.shape[1]}.")
    check_number(tolerance, "tolerance", minimum=0, exclusive=True)
    n = points.shape[0]
    scale = max(float(np.abs(points).max()), float(np.abs(queries).max()), 1e-12)
    equality = np.vstack([points.T / scale, np.ones(n)])
    inside = np.zeros(queries.shape[0], dtype=bool)
    distance = np.zeros(queries.shape[0])
    weights = np.zeros((queries.shape[0], n))
    for i, query in enumerate(queries):
        program = linprog(
            np.zeros(n),
            A_eq=equality,
            b_eq=np.append(query / scale, 1.0),
            bounds=(0, None),
            method="highs",
            options={"primal_feasibility_tolerance": tolerance},
        )
        inside[i] = program.status == 0
        if inside[i]:
            weights[i] = program.x
        else:
            weights[i] = _nearest_hull_point(points, query, scale)
            distance[i] = float(np.linalg.norm(points.T @ weights[i] - query))
    return HullMembership(inside=inside, distance=distance, weights=weights)


__all__ = [
    "HullMembership",
    "hull_membership",
]
