"""SparseFool (Modas et al., arXiv 1811.02248): adversarial perturbations that touch few pixels.

Each round runs DeepFool (batched over the images still to fool) from the current point to get
a boundary point ``x_B = x_i + λ r`` and the boundary normal ``w``, then a greedy L1 step moves
one coordinate at a time (largest ``|w_j|`` first) toward the hyperplane through ``x_B``,
clipping to the bounds. It stops when the label changes; the result carries the final 0.02
overshoot and is clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .classifier import Classifier
from .deepfool import deepfool
from .validation import check_number, check_positive_int, renamed_keywords

_DEEPFOOL_OVERSHOOT = 0.02


@dataclass(frozen=True, eq=False)
class SparseFoolResult:
    """Per image of the batch; tensors on the CPU. ``x + perturbations`` lies within the bounds."""

    perturbations: torch.Tensor  # (N, *input_shape)
    distances: torch.Tensor  # (N,) L2 norm of each perturbation
    nonzero: torch.Tensor  # (N,) coordinates the perturbation changes
    original: torch.Tensor  # (N,) label of x
    reached: torch.Tensor  # (N,) label of x + perturbation
    converged: torch.Tensor  # (N,) bool: the label changed
    iterations: torch.Tensor  # (N,) rounds of DeepFool + linear solver

    def __repr__(self) -> str:
        n = self.distances.numel()
        return (
            f"SparseFoolResult(n={n}, converged={int(self.converged.sum())}/{n}, "
            f"median_nonzero={self.nonzero.float().median().item():.4g})"
        )


def linear_solver(
    x: torch.Tensor, normal: torch.Tensor, boundary_point: torch.Tensor, bounds: tuple[float, float]
) -> torch.Tensor:
    """Greedy L1 step of SparseFool for one flat ``x (d,)``: move coordinates in order of ``|normal_j|``
    until ``x`` crosses the hyperplane ``{y : normalᵀ(y − boundary_point) = 0}``, clipping to ``bounds``."""
    point = x.clone()
    start_side = torch.sign(normal @ (x - boundary_point))
    push = 1e-3 * start_side  # lands just past the hyperplane, as the reference code does
    for j in normal.abs().argsort(descending=True):
        if normal[j] == 0:
            break
        gap = normal @ (point - boundary_point) + push
        # Along coordinate j alone the hyperplane is |gap| / |w_j| away, in the direction sign(w_j)·(-side).
        point[j] = (point[j] - gap / normal[j]).clamp(*bounds)
        if torch.sign(normal @ (point - boundary_point)) != start_side:
            break
    return point


@renamed_keywords(deepfool_iter="max_iter")
def sparsefool(
    clf: Classifier,
    x: object,
    *,
    lam: float = 3.0,
    max_rounds: int = 20,
    overshoot: float = 0.02,
    candidates: int = 10,
    max_iter: int = 50,
) -> SparseFoolResult:
    """Sparse perturbations that change each image's label (a batch or one image).

    ``lam`` (λ, the paper's 3) sets how far past DeepFool's boundary point the hyperplane is
    taken: larger is sparser but longer. ``max_rounds`` bounds the rounds; ``max_iter`` the
    DeepFool steps inside each round (as everywhere in the kit).
    """
    batch = clf.check_inputs(x, in_bounds=True)
    n, dim = batch.shape[0], clf.input_dim
    check_positive_int(max_rounds, "max_rounds")
    check_positive_int(max_iter, "max_iter")
    lam = check_number(lam, "lam", minimum=1)
    overshoot = check_number(overshoot, "overshoot", minimum=0)

    flat = batch.reshape(n, dim).cpu()
    current = flat.clone()
    fooled = flat.clone()
    original = clf.predict(batch).cpu()
    reached = original.clone()
    iterations = torch.zeros(n, dtype=torch.long)
    for _ in range(max_rounds):
        active = (reached == original).nonzero().flatten()
        if active.numel() == 0:
            break
        found = deepfool(
            clf,
            current[active].reshape(-1, *clf.input_shape),
            candidates=candidates,
            max_iter=max_iter,
            overshoot=_DEEPFOOL_OVERSHOOT,
        )
        # DeepFool's perturbation carries its overshoot; λ scales the bare step r.
        steps = found.perturbations.reshape(-1, dim) / (1 + _DEEPFOOL_OVERSHOOT)
        normals = found.normals.reshape(-1, dim)
        for row, i in enumerate(active.tolist()):
            current[i] = linear_solver(current[i], normals[row], current[i] + lam * steps[row], clf.bounds)
        fooled[active] = (flat[active] + (1 + overshoot) * (current[active] - flat[active])).clamp(*clf.bounds)
        reached[active] = clf.predict(fooled[active].reshape(-1, *clf.input_shape)).cpu()
        iterations[active] += 1
    perturbations = fooled - flat
    return SparseFoolResult(
        perturbations=perturbations.reshape(n, *clf.input_shape),
        distances=perturbations.norm(dim=1),
        nonzero=(perturbations.abs() > 1e-7).sum(1),
        original=original,
        reached=reached,
        converged=reached != original,
        iterations=iterations,
    )
