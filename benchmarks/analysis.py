"""Analyses, batched against one image at a time, measured interleaved: ``python benchmarks/analysis.py``.

- band margins: one subspace-constrained DeepFool per band over the whole batch, against a loop
  of single-image calls (same results);
- hull distance: NNLS with a weighted sum row, against scipy SLSQP on the same QP.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.optimize import minimize

import boundary_widgets as bw
from boundary_widgets.core.analysis.hull import _nearest_hull_point


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def band_margins_per_image(clf, images, bands):
    return np.array(
        [[bw.deepfool(clf, x, subspace=b.basis, max_iter=100).distances.item() for b in bands] for x in images]
    )


def slsqp_distance(points: np.ndarray, z: np.ndarray) -> float:
    n = points.shape[0]

    def objective(alpha):
        residual = points.T @ alpha - z
        return 0.5 * residual @ residual, points @ residual

    result = minimize(
        objective,
        np.full(n, 1.0 / n),
        jac=True,
        method="SLSQP",
        bounds=[(0, None)] * n,
        constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1, "jac": lambda a: np.ones_like(a)}],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    return float(np.sqrt(2 * result.fun))


def main() -> None:
    torch.set_num_threads(1)
    clf, data = bw.zoo.load("digits-mlp", device="cpu")
    images = data.split("test")[0][:32]
    bands = bw.dct.bands(clf.input_shape)
    rows = []
    for _ in range(3):
        batched_s, batched = timed(lambda: bw.analysis.band_margins(clf, images, bands=bands).margins)
        single_s, single = timed(lambda: band_margins_per_image(clf, images, bands))
        rows.append(("band margins, 32 images x 4 bands", batched_s, single_s, np.abs(batched - single).max()))
    rng = np.random.default_rng(0)
    points, queries = rng.normal(size=(135, 64)), rng.normal(size=(5, 64))
    scale = float(np.abs(points).max())
    for _ in range(3):
        nnls_s, ours = timed(
            lambda: [np.linalg.norm(points.T @ _nearest_hull_point(points, q, scale) - q) for q in queries]
        )
        slsqp_s, theirs = timed(lambda: [slsqp_distance(points, q) for q in queries])
        rows.append(("hull distance, 5 points, 135 x 64", nnls_s, slsqp_s, np.abs(np.subtract(ours, theirs)).max()))
    print(f"{'case':38s} {'ours s':>9s} {'baseline s':>11s} {'speed-up':>9s} {'max diff':>9s}")
    for name, ours_s, base_s, diff in rows:
        print(f"{name:38s} {ours_s:9.3f} {base_s:11.3f} {base_s / ours_s:8.1f}x {diff:9.2g}")


if __name__ == "__main__":
    main()
