"""Top-5 principal curvatures: our Lanczos (scipy eigsh) against power iteration with deflation.

Run: ``python benchmarks/curvature.py``. Power iteration is PyHessian's: per eigenpair, start
from a random vector, orthogonalise against the pairs found, ``v <- Hv/|Hv|``, stop when the
Rayleigh quotient changes by less than ``tol`` relative (or after 100 products). Both use the
same operator ``P ∇²F P / |∇F|`` (finite-difference Hessian-vector products at the DeepFool
boundary point), the same ``tol`` and largest-magnitude curvatures. Counts Hessian-vector
products and time, interleaved per image; also how far the two sets of values agree. Our count
includes the k products of the residual check that ``principal_curvatures`` reports.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.sparse.linalg import eigsh

import boundary_widgets as bw
from boundary_widgets.core.curvature import BoundaryHessian, curvature_operator, principal_curvatures

K = 5
TOL = 1e-3
N_IMAGES = 5
POWER_MAX_ITER = 100


def power_iteration(operator, dim: int, *, k: int, tol: float, seed: int) -> np.ndarray:
    """Largest-magnitude eigenvalues by power iteration with deflation (PyHessian's loop)."""
    rng = np.random.default_rng(seed)
    values, vectors = [], []
    for _ in range(k):
        v = rng.standard_normal(dim)
        value = None
        for _ in range(POWER_MAX_ITER):
            for found in vectors:
                v = v - (found @ v) * found
            v = v / np.linalg.norm(v)
            product = operator.matvec(v)
            estimate = float(v @ product)
            v = product
            if value is not None and abs(value - estimate) / (abs(value) + 1e-6) < tol:
                value = estimate
                break
            value = estimate
        for found in vectors:
            v = v - (found @ v) * found
        vectors.append(v / np.linalg.norm(v))
        values.append(value)
    return np.array(values)


def compare(model: str, mode: str) -> None:
    clf, data = bw.zoo.load(model, device="cpu")
    images = data.split("test")[0][:N_IMAGES]
    rows = []
    for index, x in enumerate(images):
        start = time.perf_counter()
        ours = principal_curvatures(clf, x, k=K, mode=mode, tol=TOL, seed=index)
        ours_time = time.perf_counter() - start

        start = time.perf_counter()
        hessian = BoundaryHessian(clf, ours.boundary_point, (ours.original, ours.reached), mode=mode, step=ours.step)
        operator = curvature_operator(hessian, ours.normal.flatten().double(), ours.gradient_norm)
        power = power_iteration(operator, clf.input_dim, k=K, tol=TOL, seed=index)
        power_time = time.perf_counter() - start
        n_power = hessian.n_hvp

        # Reference: Lanczos run to near machine precision on the same operator.
        reference = eigsh(
            operator, k=K, which="LM", tol=1e-10, v0=np.random.default_rng(99).standard_normal(clf.input_dim)
        )[0]
        reference = reference[np.argsort(-np.abs(reference))]
        power = power[np.argsort(-np.abs(power))]
        error_ours = np.max(np.abs(ours.values - reference) / np.abs(reference))
        error_power = np.max(np.abs(power - reference) / np.abs(reference))
        rows.append((index, ours.n_hvp, n_power, ours_time, power_time, error_ours, error_power))

    print(f"\n{model}, mode {mode!r}: top-{K} |curvature|, {N_IMAGES} test images, tol {TOL}")
    header = f"{'image':>5}{'HVP ours':>10}{'HVP power':>11}{'ratio':>7}{'t ours':>9}{'t power':>9}"
    print(header + f"{'err ours':>10}{'err power':>11}")
    for index, n_ours, n_power, t_ours, t_power, error_ours, error_power in rows:
        print(
            f"{index:>5}{n_ours:>10}{n_power:>11}{n_power / n_ours:>7.2f}{t_ours:>9.3f}{t_power:>9.3f}"
            f"{error_ours:>10.2g}{error_power:>11.2g}"
        )
    totals = [sum(r[i] for r in rows) for i in (1, 2, 3, 4)]
    print(f"total{totals[0]:>10}{totals[1]:>11}{totals[1] / totals[0]:>7.2f}{totals[2]:>9.3f}{totals[3]:>9.3f}")
    print(f"HVP ratio (power / Lanczos): {totals[1] / totals[0]:.2f}x   (target >= 3x)")
    print(f"time ratio (power / Lanczos, ours includes DeepFool): {totals[3] / totals[2]:.2f}x")


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; err = max relative error of the 5 values")
    print("against Lanczos at tol 1e-10 on the same operator; power iteration stops at 100 products per pair.")
    compare("digits-cnn", "finite_difference")
    compare("digits-smooth", "exact")


if __name__ == "__main__":
    main()
