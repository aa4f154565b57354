"""SparseFool (Modas et al., arXiv 1811.02248): adversarial perturbations that touch few pixels.

Each round runs DeepFool (batched over the images still to fool) from the current point ``x_i``
to its boundary point ``x_i + r``; as in the reference code (LTS4/SparseFool), the boundary
normal ``w`` is the gradient of the logit difference (reached minus original class) **at that
boundary point**, and the hyperplane is taken through ``x_B = x_i + λ r``. The linear solver then
moves coordinates in order of ``|w_j|`` toward the hyperplane, clipping to the bounds, until it
crosses: vectorised and batched (one sort and one cumulative sum per image, on the device). It
stops when the label changes; the result carries the final 0.02 overshoot and is clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .classifier import Classifier
from .deepfool import candidate_gradients, deepfool
from .progress import CancelEvent, Progress, track
from .validation import check_number, check_positive_int

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
    """SparseFool's L1 step for flat points ``x (d,)`` or a batch ``(n, d)`` (within ``bounds``).

    Moves coordinates in order of ``|normal_j|`` (largest first) toward the hyperplane
    ``{y : normalᵀ(y − boundary_point) = 0}``: each to its bound while that is not enough, the
    last one just past the hyperplane (by ``1e-3`` in ``normalᵀy``, as the reference code does).
    The greedy loop, without the loop: coordinate j, sent to its bound, closes ``|normal_j|·room_j``
    of the gap, so a cumulative sum over the sorted coordinates says where the crossing happens.
    """
    single = x.ndim == 1
    x, normal, boundary_point = (t.reshape(1, -1) if single else t for t in (x, normal, boundary_point))
    low, high = bounds
    w = normal.double()
    start = x.double()
    offset = (w * (start - boundary_point.double())).sum(1, keepdim=True)  # (n, 1) signed gap
    side = offset.sign()
    # Each coordinate moves against the gap: direction -side·sign(w_j), to the bound on that side.
    direction = -side * w.sign()
    target = torch.where(direction > 0, high, low)
    full_move = torch.where(direction != 0, target - start, torch.zeros_like(start))
    closes = w.abs() * full_move * direction  # (n, d) gap closed by sending coordinate j to its bound
    order = w.abs().argsort(dim=1, descending=True, stable=True)
    closed_before = closes.gather(1, order).cumsum(1)  # [m]: gap closed once sorted coordinates 0..m are at bounds
    remaining = offset.abs()
    crossing = (closed_before >= remaining).int().argmax(1, keepdim=True)  # first sorted index reaching it
    reaches = (closed_before >= remaining).any(1, keepdim=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    before = rank < crossing
    at = (rank == crossing) & reaches
    # The last coordinate closes what is left plus the push past the hyperplane (or stops at its bound).
    left = (
        remaining
        + 1e-3 * side.abs()
        - (closed_before.gather(1, crossing) - closes.gather(1, order.gather(1, crossing)))
    )
    last_move = (left / w.abs().clamp_min(1e-300)).clamp_max(full_move.abs()) * direction
    move = torch.where(before | ~reaches, full_move, torch.zeros_like(start))
    move = torch.where(at, last_move, move)
    point = (start + move).clamp(low, high).to(x.dtype)
    return point[0] if single else point


def boundary_normals(
    clf: Classifier, points: torch.Tensor, original: torch.Tensor, reached: torch.Tensor
) -> torch.Tensor:
    """``∇(f_reached − f_original)`` at each of ``points (n, *input_shape)``, flat ``(n, d)``."""
    classes = torch.stack([reached, original], dim=1).to(clf.device)
    with clf.evaluating(), torch.enable_grad():
        _, grads = candidate_gradients(clf, points.to(clf.device), classes)
    return grads[:, 0] - grads[:, 1]


def sparsefool(
    clf: Classifier,
    x: object,
    *,
    lam: float = 3.0,
    max_rounds: int = 20,
    overshoot: float = 0.02,
    candidates: int = 10,
    max_iter: int = 50,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> SparseFoolResult:
    """Sparse perturbations that change each image's label (a batch or one image).

    ``lam`` (λ, the paper's 3) sets how far past DeepFool's boundary point the hyperplane is
    taken: larger is sparser but longer. ``max_rounds`` bounds the rounds; ``max_iter`` the
    DeepFool steps inside each round (as everywhere in the kit). ``progress``/``cancel``: one
    unit per round (at most ``max_rounds``); see :mod:`~.progress`.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    batch = clf.check_inputs(x, "x", in_bounds=True)
    n, dim = batch.shape[0], clf.input_dim
    check_positive_int(max_rounds, "max_rounds")
    check_positive_int(max_iter, "max_iter")
    lam = check_number(lam, "lam", minimum=1)
    overshoot = check_number(overshoot, "overshoot", minimum=0)

    with track(progress, cancel, total=max_rounds, desc="SparseFool") as tracker:
        flat = batch.reshape(n, dim)
        current = flat.clone()
        fooled = flat.clone()
        original = clf.predict(batch)
        reached = original.clone()
        iterations = torch.zeros(n, dtype=torch.long, device=flat.device)
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
                cancel=tracker.cancel,
            )
            # DeepFool's perturbation carries its overshoot; the boundary point is x_i + r, and λ scales r.
            steps = found.perturbations.reshape(-1, dim).to(flat.device) / (1 + _DEEPFOOL_OVERSHOOT)
            normals = boundary_normals(
                clf, (current[active] + steps).reshape(-1, *clf.input_shape), original[active], found.reached
            )
            # Where DeepFool did not cross, the logit difference is not a boundary: use its last step.
            stuck = ~found.converged.to(flat.device)
            normals[stuck] = found.normals.reshape(-1, dim).to(flat.device)[stuck]
            current[active] = linear_solver(current[active], normals, current[active] + lam * steps, clf.bounds)
            fooled[active] = (flat[active] + (1 + overshoot) * (current[active] - flat[active])).clamp(*clf.bounds)
            reached[active] = clf.predict(fooled[active].reshape(-1, *clf.input_shape))
            iterations[active] += 1
            tracker.advance()
    perturbations = (fooled - flat).cpu()
    return SparseFoolResult(
        perturbations=perturbations.reshape(n, *clf.input_shape),
        distances=perturbations.norm(dim=1),
        nonzero=(perturbations.abs() > 1e-7).sum(1),
        original=original.cpu(),
        reached=reached.cpu(),
        converged=(reached != original).cpu(),
        iterations=iterations.cpu(),
    )


__all__ = [
    "SparseFoolResult",
    "boundary_normals",
    "linear_solver",
    "sparsefool",
]
