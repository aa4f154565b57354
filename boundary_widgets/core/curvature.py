"""Principal curvatures of the decision boundary (Fawzi et al., *Classification regions of deep networks*).

At the DeepFool boundary point ``z`` of ``x``, with ``F = f_original − f_reached`` and unit
normal ``n = ∇F(z)/‖∇F(z)‖``, the principal curvatures and directions are the eigenpairs of
``P ∇²F(z) P / ‖∇F(z)‖`` with ``P = I − n nᵀ``. The eigenpairs come from Lanczos (scipy
``eigsh``) on a Hessian-vector-product operator; the Hessian itself is never formed.

On piecewise-linear (ReLU) networks the finite-difference product is not exactly linear in
``v`` (activation patterns change within the step ``h``), so the values depend somewhat on the
Lanczos start vector (``seed``) and ``tol``: read them as estimates of the curved directions, as
the authors did. Exact mode on smooth models is a true linear operator and converges tightly.

Sign: ``F`` grows toward the original class, so a negative curvature along ``v`` means the
boundary bends around ``x`` (the original region is locally convex in the plane of ``n, v``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import ArpackError, LinearOperator, eigsh

from .classifier import Classifier
from .deepfool import deepfool
from .validation import check_choice, check_positive_int

CURVATURE_MODES = ("finite_difference", "exact")
# Our names for the ends of the spectrum -> eigsh's `which`.
CURVATURE_WHICH = {"magnitude": "LM", "positive": "LA", "negative": "SA"}


@dataclass(frozen=True, eq=False)
class CurvatureResult:
    """Principal curvatures at the boundary point nearest ``x``, most curved first (per ``which``)."""

    values: np.ndarray  # (k,) principal curvatures, L2 input units^-1
    directions: torch.Tensor  # (k, *input_shape) unit principal directions, orthogonal to `normal`
    normal: torch.Tensor  # input_shape, unit ∇F(z), pointing toward the original class
    boundary_point: torch.Tensor  # input_shape, z = x + DeepFool perturbation
    original: int  # class of x
    reached: int  # class across the boundary at z
    distance: float  # ‖z − x‖
    converged: bool  # DeepFool reached another class
    gradient_norm: float  # ‖∇F(z)‖
    which: str  # "magnitude", "positive" or "negative"
    mode: str  # "finite_difference" or "exact"
    step: float | None  # finite-difference step h (None in exact mode)
    n_hvp: int  # Hessian-vector products used

    def __repr__(self) -> str:
        values = ", ".join(f"{v:.4g}" for v in self.values)
        return f"CurvatureResult(values=[{values}], {self.original}->{self.reached}, mode={self.mode!r}, n_hvp={self.n_hvp})"


def default_step(clf: Classifier) -> float:
    """The authors' finite-difference step: ``sqrt(d) · (high − low) / 512 · 10``."""
    low, high = clf.bounds
    return math.sqrt(clf.input_dim) * (high - low) / 512 * 10


class BoundaryHessian:
    """``v ↦ ∇²F(z) v`` for ``F = f_a − f_b``, counting products; gradients by autograd.

    ``finite_difference`` is the central difference ``(∇F(z + h v̂) − ∇F(z − h v̂)) / 2h · ‖v‖``
    (both gradients in one batch of two), which sees the kinks of ReLU networks; ``exact`` is
    double backward, for smooth models (zero almost everywhere for ReLU networks).
    """

    def __init__(
        self, clf: Classifier, z: torch.Tensor, classes: tuple[int, int], *, mode: str, step: float | None
    ) -> None:
        self.clf = clf
        self.z = z.detach().to(clf.device, torch.float32).reshape(1, *clf.input_shape)
        self.classes = classes
        self.mode = check_choice(mode, "mode", CURVATURE_MODES)
        self.step = None if self.mode == "exact" else float(step)
        self.n_hvp = 0

    def _difference(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, self.classes[0]] - logits[:, self.classes[1]]

    def gradient(self) -> torch.Tensor:
        """``∇F(z)`` flattened, float64 ``(d,)``."""
        with self.clf.evaluating(), torch.enable_grad():
            point = self.z.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._difference(self.clf.forward(point)).sum(), point)
        return grad.flatten().double().cpu()

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``∇²F(z) v`` for a flat float64 ``v (d,)``."""
        self.n_hvp += 1
        norm = float(v.norm())
        if norm == 0:
            return torch.zeros_like(v)
        unit = (v / norm).float().to(self.clf.device).reshape(1, *self.clf.input_shape)
        with self.clf.evaluating(), torch.enable_grad():
            if self.mode == "exact":
                point = self.z.clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(self._difference(self.clf.forward(point)).sum(), point, create_graph=True)
                (product,) = torch.autograd.grad((grad * unit).sum(), point, allow_unused=True)
                product = torch.zeros_like(point) if product is None else product
            else:
                points = torch.cat([self.z + self.step * unit, self.z - self.step * unit]).requires_grad_(True)
                (grads,) = torch.autograd.grad(self._difference(self.clf.forward(points)).sum(), points)
                product = (grads[0] - grads[1]) / (2 * self.step)
        return product.flatten().double().cpu() * norm


def curvature_operator(hessian: BoundaryHessian, normal: torch.Tensor, gradient_norm: float) -> LinearOperator:
    """``v ↦ P ∇²F P v / ‖∇F‖`` with ``P = I − n nᵀ`` as a scipy operator on float64 vectors."""
    n = normal.double().flatten()

    def project(v: torch.Tensor) -> torch.Tensor:
        return v - n * (n @ v)

    def apply(v: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.asarray(v, dtype=np.float64).ravel())
        return (project(hessian.matvec(project(v))) / gradient_norm).numpy()

    dim = n.numel()
    return LinearOperator((dim, dim), matvec=apply, dtype=np.float64)


def principal_curvatures(
    clf: Classifier,
    x: object,
    *,
    k: int = 5,
    which: str = "magnitude",
    mode: str = "finite_difference",
    step: float | None = None,
    tol: float = 1e-4,
    seed: int = 0,
    max_iter: int = 50,
) -> CurvatureResult:
    """The ``k`` principal curvatures and directions of the boundary nearest ``x``.

    ``which``: ``"magnitude"`` (largest |curvature|), ``"positive"`` or ``"negative"`` (most
    positive / negative first). ``mode``: ``"finite_difference"`` (default; step ``h`` =
    :func:`default_step` unless ``step`` is given) or ``"exact"`` (double backward, smooth
    models). ``tol`` is eigsh's relative accuracy; ``seed`` fixes its start vector.
    ``max_iter`` bounds the DeepFool steps that find the boundary point.
    """
    sample = clf.check_inputs(x, "x", batched=False)
    k = check_positive_int(k, "k")
    if k >= clf.input_dim:
        raise ValueError(f"`k` must be < the input dimension {clf.input_dim}; got {k}.")
    check_choice(which, "which", list(CURVATURE_WHICH))
    check_choice(mode, "mode", CURVATURE_MODES)
    if step is None:
        step = default_step(clf)
    elif not (isinstance(step, int | float) and not isinstance(step, bool) and step > 0):
        raise ValueError(f"`step` must be a number > 0; got {step!r}.")
    if not (isinstance(tol, int | float) and tol >= 0):
        raise ValueError(f"`tol` must be a number >= 0; got {tol!r}.")

    found = deepfool(clf, sample, overshoot=0.0, max_iter=max_iter)
    z = (sample.cpu() + found.perturbations)[0]
    original, reached = int(found.original[0]), int(found.reached[0])
    if original == reached:
        # No boundary crossed: use the runner-up class so that F is still a logit gap.
        ranked = clf.logits(z).argsort(descending=True)
        reached = int(ranked[1]) if int(ranked[0]) == original else int(ranked[0])
    hessian = BoundaryHessian(clf, z, (original, reached), mode=mode, step=step)
    gradient = hessian.gradient()
    gradient_norm = float(gradient.norm())
    if gradient_norm == 0:
        raise ValueError("the logit gap has a zero gradient at the boundary point; curvature is undefined there.")
    normal = gradient / gradient_norm
    operator = curvature_operator(hessian, normal, gradient_norm)

    start = np.random.default_rng(seed).standard_normal(clf.input_dim)
    try:
        values, vectors = eigsh(operator, k=k, which=CURVATURE_WHICH[which], tol=tol, v0=start)
    except ArpackError as error:
        if np.any(operator.matvec(start)):
            raise
        raise ValueError(
            f"the boundary Hessian is zero at this point in `mode` {mode!r} (a piecewise-linear model such as a "
            "ReLU network)" + ("; use mode='finite_difference'." if mode == "exact" else "; try another `step`.")
        ) from error
    order = {
        "magnitude": np.argsort(-np.abs(values)),
        "positive": np.argsort(-values),
        "negative": np.argsort(values),
    }[which]
    directions = torch.from_numpy(vectors[:, order].T.copy()).float().reshape(k, *clf.input_shape)
    return CurvatureResult(
        values=values[order],
        directions=directions,
        normal=normal.float().reshape(clf.input_shape),
        boundary_point=z,
        original=original,
        reached=reached,
        distance=float(found.distances[0]),
        converged=bool(found.converged[0]),
        gradient_norm=gradient_norm,
        which=which,
        mode=mode,
        step=hessian.step,
        n_hvp=hessian.n_hvp,
    )
