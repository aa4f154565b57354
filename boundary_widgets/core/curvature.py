"""Principal curvatures of the decision boundary (Fawzi et al., *Classification regions of deep networks*).

At the boundary point ``z`` of ``x`` (DeepFool, then bisection onto the boundary), with ``F = f_original − f_reached`` and unit
normal ``n = ∇F(z)/‖∇F(z)‖``, the principal curvatures and directions are the eigenpairs of
``P ∇²F(z) P / ‖∇F(z)‖`` with ``P = I − n nᵀ``. The eigenpairs come from Lanczos (scipy
``eigsh``) on a Hessian-vector-product operator; the Hessian itself is never formed.

On piecewise-linear (ReLU) networks the finite-difference product is not exactly linear in
``v`` (activation patterns change within the step ``h``), so the values depend somewhat on the
Lanczos start vector (``seed``) and ``tol``: read them as estimates of the curved directions, as
the authors did. Exact mode on smooth models is a true linear operator and converges tightly.
``n_bases=B`` replaces that operator by a linear one: the finite-difference products along ``B``
random orthonormal bases of the tangent space, averaged into one symmetric matrix (the Hessian
averaged over directions at radius ``h``); its error falls as ``1/√B`` and the seed then picks the
bases (``benchmarks/references.py`` prints the spread across seeds for both estimators).

Sign: ``F`` grows toward the original class, so a negative curvature along ``v`` means the
boundary bends around ``x`` (the original region is locally convex in the plane of ``n, v``).

Over 500 lines on purpose: one algorithm whose steps (boundary point, operator or its average,
Lanczos, result) are public one by one for the analyses that reuse them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .classifier import Classifier
from .deepfool import deepfool
from .progress import CancelEvent, Progress, Tracker, track
from .validation import check_choice, check_positive_int

if TYPE_CHECKING:  # scipy loads when curvatures are computed, not with the kit
    from scipy.sparse.linalg import LinearOperator

CURVATURE_MODES = ("finite_difference", "exact")
# Our names for the ends of the spectrum -> eigsh's `which`.
CURVATURE_WHICH = {"magnitude": "LM", "positive": "LA", "negative": "SA"}
# Points per forward pass when the Hessian is applied to many vectors at once (two per product).
_PRODUCTS_PER_BATCH = 32
# The averaged operator holds three d × d float64 matrices (the sum, a basis, its products): within
# a classroom pod (about 2 GB) up to d = 6,688 numbers per input, e.g. 1×64×64 but not 3×64×64.
AVERAGED_OPERATOR_BYTES = 2**30


@dataclass(frozen=True, eq=False)
class CurvatureResult:
    """Principal curvatures at the boundary point nearest ``x``, most curved first (per ``which``)."""

    values: np.ndarray  # (k,) principal curvatures, L2 input units^-1
    directions: torch.Tensor  # (k, *input_shape) unit principal directions, orthogonal to `normal`
    normal: torch.Tensor  # input_shape, unit ∇F(z), pointing toward the original class
    boundary_point: torch.Tensor  # input_shape, z: DeepFool's point bisected onto F = 0 (see nearest_boundary_point)
    original: int  # class of x
    reached: int  # class across the boundary at z
    distance: float  # ‖z − x‖
    converged: bool  # DeepFool reached another class
    gap: float  # F(z), logit units; |gap| / gradient_norm ≈ how far z is off the boundary (input units)
    gradient_norm: float  # ‖∇F(z)‖
    which: str  # "magnitude", "positive" or "negative"
    mode: str  # "finite_difference" or "exact"
    step: float | None  # finite-difference step h (None in exact mode)
    n_hvp: int  # Hessian-vector products used (Lanczos and the residual check; with `n_bases`, the bases')
    residuals: np.ndarray  # (k,) ‖A v − λ v‖ of each pair, A the curvature operator (averaged with `n_bases`)
    lanczos_converged: bool  # ARPACK met `tol` (False: the pairs are its best estimates when it stopped)
    spread: np.ndarray  # (k,) largest over the other Lanczos runs of min |λ' − λ| / |λ| (λ' its values); NaN: one run
    lanczos_runs: int  # Lanczos runs from different start vectors (seeds seed, seed + 1, ...)
    n_bases: int | None  # tangent bases averaged, d − 1 products each (None: Lanczos on the products themselves)

    def __repr__(self) -> str:
        values = ", ".join(f"{v:.4g}" for v in self.values)
        return (
            f"CurvatureResult(values=[{values}], {self.original}->{self.reached}, mode={self.mode!r}, "
            f"n_hvp={self.n_hvp}, max_residual={self.residuals.max(initial=0.0):.2g}"
            + ("" if self.lanczos_runs == 1 else f", max_spread={np.nanmax(self.spread):.2g}")
            + ")"
        )


@dataclass(frozen=True, eq=False)
class BoundaryPoint:
    """Step 1 of the pipeline: the boundary point ``z`` of ``x`` (DeepFool, then bisection onto ``F = 0``)."""

    point: torch.Tensor  # input_shape, z on the CPU
    original: int  # class of x
    reached: int  # class across the boundary (the runner-up at z when DeepFool did not cross)
    distance: float  # ‖z − x‖
    converged: bool  # DeepFool reached another class
    gap: float  # F(z) = f_original − f_reached at z, logit units (0 on the boundary)
    bracket: float  # length of the final bisection bracket around F = 0, L2 input units (inf: not refined)

    def __repr__(self) -> str:
        return (
            f"BoundaryPoint(original={self.original}, reached={self.reached}, distance={self.distance:.4g}, "
            f"converged={self.converged}, gap={self.gap:.2g})"
        )


def default_step(clf: Classifier) -> float:
    """The authors' finite-difference step: ``sqrt(d) · (high − low) / 512 · 10``."""
    low, high = clf.bounds
    return math.sqrt(clf.input_dim) * (high - low) / 512 * 10


# Bisection onto F = 0 stops when the bracket is this share of the DeepFool distance (or when float32
# cannot split it further): the boundary point is then within that much of F = 0 along the segment.
BOUNDARY_TOLERANCE = 1e-6
_BISECTION_STEPS = 64


def _gap(clf: Classifier, points: torch.Tensor, classes: tuple[int, int]) -> torch.Tensor:
    logits = clf.logits(points.float())
    return (logits[:, classes[0]] - logits[:, classes[1]]).double().cpu()


def nearest_boundary_point(
    clf: Classifier, x: torch.Tensor, *, max_iter: int = 50, cancel: CancelEvent | None = None
) -> BoundaryPoint:
    """The boundary point of one checked input ``x`` ``(1, *input_shape)``, on ``F = 0`` to a stated tolerance.

    DeepFool without overshoot ends past the boundary (one linearised step from deep inside a curved
    region can overshoot it by far); the segment between its last two iterates (the second-to-last
    on the original side) is then bisected on the logit gap ``F = f_original − f_reached`` until the
    bracket is ``BOUNDARY_TOLERANCE`` × the DeepFool distance. ``z`` is the bracket's end with the
    smaller ``|F|``; ``gap`` reports ``F(z)`` and ``bracket`` the final bracket's length.
    """
    found = deepfool(clf, x, overshoot=0.0, max_iter=max_iter, cancel=cancel)
    x = x.cpu().reshape(1, *clf.input_shape)
    z = (x + found.perturbations)[0]
    original, reached = int(found.original[0]), int(found.reached[0])
    converged = bool(found.converged[0])
    if not converged:
        # No boundary crossed: use the runner-up class so that F is still a logit gap.
        ranked = clf.logits(z).argsort(descending=True)
        reached = int(ranked[1]) if int(ranked[0]) == original else int(ranked[0])
        return BoundaryPoint(
            point=z,
            original=original,
            reached=reached,
            distance=float(found.distances[0]),
            converged=False,
            gap=float(_gap(clf, z[None], (original, reached))[0]),
            bracket=math.inf,
        )
    inside = z - float(found.last_steps[0]) * found.normals[0]  # the iterate before the last step
    classes = (original, reached)
    low, high = inside.double(), z.double()
    gap_low, gap_high = _gap(clf, torch.stack([low, high]), classes).tolist()
    if not gap_low > 0:  # rounding put the earlier iterate across: bracket from x itself
        low = x[0].double()
        gap_low = float(_gap(clf, low[None], classes)[0])
    tolerance = BOUNDARY_TOLERANCE * max(float(found.distances[0]), float(torch.finfo(torch.float32).eps))
    for _ in range(_BISECTION_STEPS):
        if float((high - low).norm()) <= tolerance:
            break
        middle = (low + high) / 2
        if torch.equal(middle.float(), low.float()) or torch.equal(middle.float(), high.float()):
            break
        gap_middle = float(_gap(clf, middle[None], classes)[0])
        if gap_middle > 0:
            low, gap_low = middle, gap_middle
        else:
            high, gap_high = middle, gap_middle
    point, gap = (low, gap_low) if abs(gap_low) < abs(gap_high) else (high, gap_high)
    point = point.float()
    return BoundaryPoint(
        point=point,
        original=original,
        reached=reached,
        distance=float((point - x[0]).norm()),
        converged=True,
        gap=gap,
        bracket=float((high - low).norm()),
    )


class BoundaryHessian:
    """Step 2: ``v ↦ ∇²F(z) v`` for ``F = f_a − f_b``, counting products; gradients by autograd.

    ``finite_difference`` is the central difference ``(∇F(z + h v̂) − ∇F(z − h v̂)) / 2h · ‖v‖``
    (both gradients in one batch of two; :meth:`matmat` puts many products in one batch), which
    sees the kinks of ReLU networks; ``exact`` is double backward, for smooth models (zero almost
    everywhere for ReLU networks). ``tracker`` (a :class:`~.progress.Tracker`) is advanced by
    one per product, so a cancel event is honoured between products.
    """

    def __init__(
        self,
        clf: Classifier,
        x: torch.Tensor,
        classes: tuple[int, int],
        *,
        mode: str,
        step: float | None,
        tracker: Tracker | None = None,
    ) -> None:
        self.clf = clf
        self.z = x.detach().to(clf.device, torch.float32).reshape(1, *clf.input_shape)
        self.classes = classes
        self.mode = check_choice(mode, "mode", CURVATURE_MODES)
        self.step = None if self.mode == "exact" else float(step)
        self.tracker = tracker
        self.n_hvp = 0

    def _difference(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, self.classes[0]] - logits[:, self.classes[1]]

    def gradient(self) -> torch.Tensor:
        """``∇F(z)`` flattened, float64 ``(d,)``."""
        with self.clf.evaluating(), torch.enable_grad():
            point = self.z.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._difference(self.clf.forward(point)).sum(), point)
        return grad.flatten().double().cpu()

    def _count(self, products: int) -> None:
        self.n_hvp += products
        if self.tracker is not None:
            self.tracker.advance(products)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``∇²F(z) v`` for a flat float64 ``v (d,)``."""
        return self.matmat(v.reshape(-1, 1))[:, 0]

    def matmat(self, vectors: torch.Tensor) -> torch.Tensor:
        """``∇²F(z) V`` for float64 columns ``V (d, m)``; finite differences batch the products."""
        columns = []
        chunk = 1 if self.mode == "exact" else _PRODUCTS_PER_BATCH
        for block in vectors.split(chunk, dim=1):
            columns.append(self._products(block))
            self._count(block.shape[1])
        return torch.cat(columns, dim=1)

    def _products(self, block: torch.Tensor) -> torch.Tensor:
        norms = block.norm(dim=0)
        units = (block / norms.clamp_min(1e-300)).T.float().to(self.clf.device).reshape(-1, *self.clf.input_shape)
        with self.clf.evaluating(), torch.enable_grad():
            if self.mode == "exact":
                point = self.z.clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(self._difference(self.clf.forward(point)).sum(), point, create_graph=True)
                (product,) = torch.autograd.grad((grad * units).sum(), point, allow_unused=True)
                products = torch.zeros_like(point) if product is None else product
            else:
                points = torch.cat([self.z + self.step * units, self.z - self.step * units]).requires_grad_(True)
                (grads,) = torch.autograd.grad(self._difference(self.clf.forward(points)).sum(), points)
                half = units.shape[0]
                products = (grads[:half] - grads[half:]) / (2 * self.step)
        return products.flatten(1).double().cpu().T * norms


def curvature_operator(hessian: BoundaryHessian, normal: torch.Tensor, gradient_norm: float) -> LinearOperator:
    """``v ↦ P ∇²F P v / ‖∇F‖`` with ``P = I − n nᵀ`` as a scipy operator on float64 vectors (and blocks)."""
    from scipy.sparse.linalg import LinearOperator

    n = normal.double().flatten()

    def project(v: torch.Tensor) -> torch.Tensor:
        return v - n[:, None] * (n @ v)[None]

    def apply(v: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.asarray(v, dtype=np.float64).reshape(n.numel(), -1))
        return (project(hessian.matmat(project(v))) / gradient_norm).numpy()

    dim = n.numel()
    return LinearOperator((dim, dim), matvec=lambda v: apply(v)[:, 0], matmat=apply, dtype=np.float64)


def averaged_matrix(
    hessian: BoundaryHessian, normal: torch.Tensor, gradient_norm: float, *, n_bases: int, seed: int
) -> np.ndarray:
    """``(d, d)`` float64: the curvature operator averaged over ``n_bases`` random orthonormal tangent bases.

    Each basis ``U`` (``d × (d − 1)``, uniformly random, ``U Uᵀ = P``) costs ``d − 1`` products
    ``G = P A U`` (``A`` the Hessian-vector product); the operator is the symmetric matrix
    ``Σ (G Uᵀ + U Gᵀ) / (2 · n_bases · ‖∇F‖)``. For a linear ``A`` one basis gives ``P A P / ‖∇F‖``
    exactly; for finite differences on a ReLU network each basis sees other activation patterns, and
    the average converges as ``1/√n_bases`` (the seed picks the bases). Whole bases, because ``S``
    random directions rescaled by ``(d − 1)/S`` give an unbiased matrix whose largest eigenvalues are
    not: its noise grows as ``√(d/S)`` (24× the Lanczos values at 3×64×64 with 200 directions).
    A dense ``d × d`` matrix (see :func:`check_bases` for the size it may take).
    """
    n = normal.double().flatten()
    dim = n.numel()
    rng = np.random.default_rng(seed)
    total = torch.zeros(dim, dim, dtype=torch.float64)
    for _ in range(n_bases):
        draws = torch.from_numpy(rng.standard_normal((dim, dim - 1)))
        basis, _ = torch.linalg.qr(draws - n[:, None] * (n @ draws)[None])
        product = hessian.matmat(basis)
        total += (product - n[:, None] * (n @ product)[None]) @ basis.T
    return ((total + total.T) / (2 * n_bases * gradient_norm)).numpy()


def check_bases(clf: Classifier, n_bases: object, mode: str) -> int | None:
    """``n_bases`` checked for :func:`averaged_matrix` (None passes): an int >= 1, finite differences, and
    three ``d × d`` float64 matrices within ``AVERAGED_OPERATOR_BYTES``."""
    if n_bases is None:
        return None
    if mode == "exact":
        raise ValueError("`n_bases` averages finite differences; mode='exact' is already a linear operator.")
    n_bases = check_positive_int(n_bases, "n_bases")
    dim = clf.input_dim
    if 3 * dim * dim * 8 > AVERAGED_OPERATOR_BYTES:
        raise ValueError(
            f"`n_bases` averages whole tangent bases, held as d × d float64 matrices: inputs of shape "
            f"{clf.input_shape} (d = {dim}) need {3 * dim * dim * 8 / 2**30:.1f} GiB, over the "
            f"{AVERAGED_OPERATOR_BYTES / 2**30:.0f} GiB limit (expected d <= "
            f"{math.isqrt(AVERAGED_OPERATOR_BYTES // 24)}); use Lanczos on the products (n_bases=None)."
        )
    return n_bases


def boundary_operator(
    clf: Classifier, boundary: BoundaryPoint, *, mode: str, step: float | None, tracker: Tracker | None = None
) -> tuple[LinearOperator, BoundaryHessian, torch.Tensor, float]:
    """Step 2 of the pipeline: the curvature operator at ``boundary``, its Hessian, unit normal and ``‖∇F(z)‖``."""
    hessian = BoundaryHessian(
        clf, boundary.point, (boundary.original, boundary.reached), mode=mode, step=step, tracker=tracker
    )
    gradient = hessian.gradient()
    gradient_norm = float(gradient.norm())
    if gradient_norm == 0:
        raise ValueError("the logit gap has a zero gradient at the boundary point; curvature is undefined there.")
    normal = gradient / gradient_norm
    return curvature_operator(hessian, normal, gradient_norm), hessian, normal, gradient_norm


@dataclass(frozen=True, eq=False)
class Eigenpairs:
    """Eigenpairs of a symmetric operator from Lanczos (ARPACK), in its order (``which``)."""

    values: np.ndarray  # (k,) eigenvalues
    vectors: np.ndarray  # (d, k) unit eigenvectors, one per column
    converged: bool  # ARPACK met `tol` (False: the pairs are its best estimates when it stopped)

    def __repr__(self) -> str:
        return f"Eigenpairs(values={np.round(self.values, 4).tolist()}, converged={self.converged})"


def start_vector(dim: int, seed: int) -> np.ndarray:
    """Lanczos' start vector ``(dim,)`` for ``seed``: standard normal draws."""
    return np.random.default_rng(seed).standard_normal(dim)


def lanczos(
    operator: LinearOperator, k: int, *, which: str, tol: float, seed: int, tracker: Tracker | None = None
) -> Eigenpairs:
    """Step 3: ``k`` eigenpairs of ``operator`` (eigsh's ``which``), values ``(k,)`` and vectors ``(d, k)``.

    Returns ARPACK's best estimates, ``converged=False``, when it stopped before meeting ``tol``. The
    tracker's ``total`` is the products expected: one Lanczos basis first, one restart more each
    time the count passes it.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    dim = operator.shape[0]
    basis = min(dim, max(2 * k + 1, 20))  # eigsh's default ncv
    if tracker is not None:
        tracker.set_total(tracker.done + basis + 1 + k)  # ARPACK's start, its basis, the residual check
        inner = operator.matvec

        def counted(v: np.ndarray) -> np.ndarray:
            if tracker.done >= tracker.total - k:
                tracker.set_total(tracker.total + basis - k)  # another restart (k more for the residual check)
            return inner(v)

        operator = LinearOperator(operator.shape, matvec=counted, matmat=operator.matmat, dtype=operator.dtype)
    start = start_vector(dim, seed)
    try:
        values, vectors = eigsh(operator, k=k, which=which, tol=tol, v0=start, ncv=basis)
    except ArpackNoConvergence as error:
        if error.eigenvalues.size == 0:
            raise ValueError(f"Lanczos found no eigenpair within its iterations; raise `tol` (now {tol}).") from error
        return Eigenpairs(error.eigenvalues, error.eigenvectors, False)
    return Eigenpairs(values, vectors, True)


def solve_ends(
    operator: LinearOperator,
    k: int,
    *,
    which: str,
    tol: float,
    seed: int,
    mode: str,
    tracker: Tracker | None = None,
) -> Eigenpairs:
    """:func:`lanczos`, with a zero operator (a ReLU network in exact mode) or one that maps the start
    vector to zero (finite differences that stay in one linear region) explained as a ValueError."""
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence

    try:
        return lanczos(operator, k, which=which, tol=tol, seed=seed, tracker=tracker)
    except ArpackError as error:
        if isinstance(error, ArpackNoConvergence):
            raise
        dim = operator.shape[0]
        if not np.any(operator.matvec(np.ones(dim))):
            raise ValueError(
                f"the boundary Hessian is zero at this point in `mode` {mode!r} (a piecewise-linear model such as a "
                "ReLU network)" + ("; use mode='finite_difference'." if mode == "exact" else "; try another `step`.")
            ) from error
        if not np.any(operator.matvec(start_vector(dim, seed))):
            raise ValueError(
                f"the curvature operator maps Lanczos' start vector (`seed` {seed}) to zero: on a piecewise-linear "
                "model z ± h·v stays in one linear region along it; average over tangent bases with "
                "`n_bases`, or try another `seed` or `step`."
            ) from error
        raise


def residuals(operator: LinearOperator, values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``‖A v − λ v‖`` for each eigenpair (one batched application of ``A``)."""
    return np.linalg.norm(operator.matmat(vectors) - vectors * values[None], axis=0)


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
    lanczos_runs: int = 1,
    n_bases: int | None = None,
    max_iter: int = 50,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> CurvatureResult:
    """The ``k`` principal curvatures and directions of the boundary nearest ``x``.

    A pipeline: the nearest boundary point (DeepFool, :func:`nearest_boundary_point`), the
    curvature operator there (:func:`boundary_operator`), its ends by Lanczos (:func:`lanczos`),
    then one batched product to report each pair's residual.
    ``which``: ``"magnitude"`` (largest |curvature|), ``"positive"`` or ``"negative"`` (most
    positive / negative first). ``mode``: ``"finite_difference"`` (default; step ``h`` =
    :func:`default_step` unless ``step`` is given) or ``"exact"`` (double backward, smooth
    models). ``tol`` is eigsh's relative accuracy; ``seed`` fixes its start vector.
    ``lanczos_runs`` > 1 runs Lanczos ``lanczos_runs − 1`` more times, from the start vectors of
    ``seed + 1``, … (as many more products), and reports in ``spread`` how far each value of the first
    run is from the nearest value another run found, relative to it: on a smooth model (a linear
    operator) that is at the level of ``tol``; on a ReLU network the finite-difference product is not
    linear in ``v`` and Lanczos' answer depends on its start (see ``benchmarks/references.py`` for
    digits-cnn), which ``residuals`` and ``spread`` say. The values and directions are the first run's.
    ``n_bases`` (finite differences only; inputs of at most 6,688 numbers): Lanczos on
    :func:`averaged_matrix` of that many random tangent bases (``n_bases · (d − 1)`` products per
    run, the seed picks them) instead of on the finite-difference operator; a linear operator, so
    ``residuals`` are at the level of ``tol`` (against the averaged operator) and ``spread`` is the
    sampling error: on digits-cnn, 24 bases (1,512 products) keep the top 5 of seeds 0 and 1 within
    5 % on 92 % of 50 test digits, where Lanczos on the products does on none (``benchmarks/references.py``).
    ``max_iter`` bounds the DeepFool steps that find the boundary point. ``progress``:
    Hessian-vector products done / expected; ``cancel`` is honoured between products.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    sample = clf.check_inputs(x, "x", batched=False, in_bounds=True)
    k = check_positive_int(k, "k")
    if k >= clf.input_dim:
        raise ValueError(f"`k` must be < the input dimension {clf.input_dim}; got {k}.")
    check_choice(which, "which", list(CURVATURE_WHICH))
    check_choice(mode, "mode", CURVATURE_MODES)
    step = check_step(clf, step)
    if isinstance(tol, bool) or not (isinstance(tol, int | float) and tol >= 0):
        raise ValueError(f"`tol` must be a number >= 0; got {tol!r}.")
    check_positive_int(max_iter, "max_iter")
    check_positive_int(lanczos_runs, "lanczos_runs")
    n_bases = check_bases(clf, n_bases, mode)

    from scipy.sparse.linalg import aslinearoperator

    with track(progress, cancel, total=None, desc="Principal curvatures (Hessian-vector products)") as tracker:
        boundary = nearest_boundary_point(clf, sample, max_iter=max_iter, cancel=tracker.cancel)
        operator, hessian, normal, gradient_norm = boundary_operator(
            clf, boundary, mode=mode, step=step, tracker=tracker
        )
        if n_bases is not None:
            tracker.set_total(tracker.done + n_bases * (clf.input_dim - 1) * lanczos_runs)

        def solve(run: int) -> tuple[LinearOperator, Eigenpairs]:
            if n_bases is None:
                chosen, counted = operator, tracker
            else:  # the products are the bases'; Lanczos on the averaged operator costs none
                matrix = averaged_matrix(hessian, normal, gradient_norm, n_bases=n_bases, seed=run)
                chosen, counted = aslinearoperator(matrix), None
            ends = CURVATURE_WHICH[which]
            return chosen, solve_ends(chosen, k, which=ends, tol=tol, seed=run, mode=mode, tracker=counted)

        operator, pairs = solve(seed)
        values, vectors, converged = pairs.values, pairs.vectors, pairs.converged
        order = _order(values, which)
        values, vectors = values[order], vectors[:, order]
        errors = residuals(operator, values, vectors)
        spread = np.full(k, np.nan)
        if lanczos_runs > 1:
            spread[:] = 0.0
            for other in range(seed + 1, seed + lanczos_runs):
                again = solve(other)[1].values
                nearest = np.abs(values[:, None] - again[None, :]).min(axis=1)
                spread = np.maximum(spread, nearest / np.maximum(np.abs(values), np.finfo(float).tiny))
    directions = torch.from_numpy(vectors.T.copy()).float().reshape(-1, *clf.input_shape)
    return CurvatureResult(
        values=values,
        directions=directions,
        normal=normal.float().reshape(clf.input_shape),
        boundary_point=boundary.point,
        original=boundary.original,
        reached=boundary.reached,
        distance=boundary.distance,
        converged=boundary.converged,
        gap=boundary.gap,
        gradient_norm=gradient_norm,
        which=which,
        mode=mode,
        step=hessian.step,
        n_hvp=hessian.n_hvp,
        residuals=errors,
        lanczos_converged=converged,
        spread=spread,
        lanczos_runs=int(lanczos_runs),
        n_bases=n_bases,
    )


def _order(values: np.ndarray, which: str) -> np.ndarray:
    """Indices putting ``values`` most curved first, per ``which``."""
    key = {"magnitude": -np.abs(values), "positive": -values, "negative": values}[which]
    return np.argsort(key, kind="stable")


def check_step(clf: Classifier, step: object) -> float:
    """The finite-difference step: :func:`default_step` for ``None``, else a number > 0."""
    if step is None:
        return default_step(clf)
    if isinstance(step, bool) or not (isinstance(step, int | float) and step > 0 and math.isfinite(step)):
        raise ValueError(f"`step` must be a number > 0; got {step!r}.")
    return float(step)


__all__ = [
    "CURVATURE_MODES",
    "CURVATURE_WHICH",
    "BoundaryHessian",
    "BoundaryPoint",
    "CurvatureResult",
    "Eigenpairs",
    "averaged_matrix",
    "boundary_operator",
    "check_bases",
    "check_step",
    "curvature_operator",
    "default_step",
    "lanczos",
    "nearest_boundary_point",
    "principal_curvatures",
    "residuals",
    "solve_ends",
    "start_vector",
]
