"""The curvature spectrum of the boundary and the curvature-based detector of perturbed images (Fawzi et al.)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..classifier import Classifier
from ..curvature import (
    CURVATURE_MODES,
    averaged_matrix,
    boundary_operator,
    check_bases,
    check_step,
    default_step,
    nearest_boundary_point,
    residuals,
    solve_ends,
)
from ..distributed import PER_IMAGE, Executor, shardable
from ..progress import CancelEvent, Progress, track
from ..validation import check_choice, check_number, check_positive_int


@dataclass(frozen=True, eq=False)
class CurvatureSpectrum:
    """Principal curvatures at the boundary point near ``x``: both ends of the spectrum (all of it when small)."""

    values: np.ndarray  # (m,) principal curvatures, descending; all d - 1 when `complete`, else k + k ends
    complete: bool  # the whole spectrum was computed (dense operator), so `flat_share` is exact
    largest: np.ndarray  # (k,) most positive curvatures, descending
    smallest: np.ndarray  # (k,) most negative curvatures, ascending
    flat_share: float  # share of the d - 1 tangent directions with |curvature| <= flat_tolerance (NaN if incomplete)
    flat_tolerance: float  # L2 input units^-1
    boundary_point: torch.Tensor  # input_shape
    normal: torch.Tensor  # input_shape, unit, toward the original class
    original: int
    reached: int
    distance: float  # |boundary_point - x|
    gap: float  # F at boundary_point, logit units (0 on the boundary; see core.curvature.nearest_boundary_point)
    mode: str  # "finite_difference" or "exact"
    residuals: np.ndarray  # (m,) ‖A v − λ v‖ of each value's eigenvector, A the (unsymmetrised) curvature operator
    lanczos_converged: bool  # ARPACK met `tol` (always True for the dense, complete spectrum)
    n_hvp: int  # Hessian-vector products used
    n_bases: int | None  # tangent bases averaged (None: the products along one basis, or Lanczos on them)

    def __repr__(self) -> str:
        return (
            f"CurvatureSpectrum(largest={self.largest[:3].round(4).tolist()}, smallest={self.smallest[:3].round(4).tolist()}, "
            f"flat_share={self.flat_share:.3f}, {self.original}->{self.reached}, n_hvp={self.n_hvp}, "
            f"max_residual={self.residuals.max(initial=0.0):.2g})"
        )


def _spectrum_options(
    clf: Classifier,
    *,
    k: int,
    mode: str,
    step: float | None,
    flat_tolerance: float | None,
    dense_limit: int,
    seed: int,
    tol: float,
    max_iter: int,
    n_bases: int | None,
) -> tuple[int, float, float | None, int | None]:
    """The options of :func:`curvature_spectrum` checked (before any work): ``k``, ``step``, ``flat_tolerance``,
    ``n_bases``."""
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    k = check_positive_int(k, "k")
    check_positive_int(dense_limit, "dense_limit")
    check_positive_int(max_iter, "max_iter")
    check_choice(mode, "mode", CURVATURE_MODES)
    step = check_step(clf, step)
    if isinstance(tol, bool) or not (isinstance(tol, int | float) and tol >= 0):
        raise ValueError(f"`tol` must be a number >= 0; got {tol!r}.")
    if flat_tolerance is not None:
        flat_tolerance = check_number(flat_tolerance, "flat_tolerance", minimum=0)
    n_bases = check_bases(clf, n_bases, mode)
    dim = clf.input_dim
    if k > (dim - 1) // 2 and dim > dense_limit and n_bases is None:
        raise ValueError(f"`k` must be <= {(dim - 1) // 2} for this input; got {k}.")
    return k, step, flat_tolerance, n_bases


def curvature_spectrum(
    clf: Classifier,
    x: object,
    *,
    k: int = 10,
    mode: str = "finite_difference",
    step: float | None = None,
    flat_tolerance: float | None = None,
    dense_limit: int = 1024,
    seed: int = 0,
    tol: float = 1e-4,
    max_iter: int = 50,
    n_bases: int | None = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> CurvatureSpectrum:
    """The principal curvatures of the boundary nearest ``x`` (see :mod:`boundary_widgets.core.curvature`).

    One pipeline: the nearest boundary point (one DeepFool, ``max_iter`` steps), the curvature
    operator there, then its spectrum. For inputs of at most ``dense_limit`` dimensions the whole
    ``(d - 1)``-spectrum comes from the dense operator (d Hessian-vector products, batched);
    above that, the ``k`` most positive and ``k`` most negative come from one Lanczos run on both
    ends (``tol``, start vector from ``seed``) and ``flat_share`` is NaN. ``residuals`` and
    ``lanczos_converged`` say how well each pair is resolved. ``flat_tolerance`` (default:
    1% of the largest |curvature|) decides which directions count as flat. ``n_bases`` (finite
    differences; see :func:`~boundary_widgets.core.curvature.principal_curvatures`): the whole spectrum of
    the products averaged over that many random tangent bases (``seed`` picks them; ``n_bases · (d − 1)``
    products), whatever ``dense_limit``: on a ReLU network the products along one basis depend on
    the basis, their average much less. ``progress``:
    Hessian-vector products done / expected; ``cancel`` is honoured between products. Over a batch of
    images (on a cluster too): :func:`curvature_spectra`.
    """
    k, step, flat_tolerance, n_bases = _spectrum_options(
        clf,
        k=k,
        mode=mode,
        step=step,
        flat_tolerance=flat_tolerance,
        dense_limit=dense_limit,
        seed=seed,
        tol=tol,
        max_iter=max_iter,
        n_bases=n_bases,
    )
    sample = clf.check_inputs(x, "x", batched=False, in_bounds=True)
    dim = clf.input_dim
    complete = dim <= dense_limit or n_bases is not None

    with track(progress, cancel, total=None, desc="Curvature spectrum (Hessian-vector products)") as tracker:
        boundary = nearest_boundary_point(clf, sample, max_iter=max_iter, cancel=tracker.cancel)
        operator, hessian, normal, gradient_norm = boundary_operator(
            clf, boundary, mode=mode, step=step, tracker=tracker
        )
        if complete:
            if n_bases is None:
                tracker.set_total(tracker.done + dim)
                matrix = operator.matmat(np.eye(dim))
            else:
                tracker.set_total(tracker.done + n_bases * (dim - 1))
                matrix = averaged_matrix(hessian, normal, gradient_norm, n_bases=n_bases, seed=seed)
            values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
            # The normal is an eigenvector with eigenvalue 0 by construction (P n = 0): drop it.
            keep = np.delete(np.arange(dim), np.argmax(np.abs(vectors.T @ normal.numpy())))[::-1]
            values, vectors = values[keep], vectors[:, keep]
            errors = np.linalg.norm(matrix @ vectors - vectors * values[None], axis=0)
            converged = True
            k = min(k, values.size)
            largest, smallest = values[:k], values[::-1][:k]
        else:
            # "BE": k from each end in one Lanczos run (ascending).
            pairs = solve_ends(operator, 2 * k, which="BE", tol=tol, seed=seed, mode=mode, tracker=tracker)
            values, vectors, converged = pairs.values, pairs.vectors, pairs.converged
            order = np.argsort(-values)
            values, vectors = values[order], vectors[:, order]
            errors = residuals(operator, values, vectors)
            largest, smallest = values[:k], values[::-1][:k]
    scale = float(np.abs(np.concatenate([largest, smallest])).max())
    tolerance = 0.01 * scale if flat_tolerance is None else float(flat_tolerance)
    flat_share = float(np.mean(np.abs(values) <= tolerance)) if complete else float("nan")
    return CurvatureSpectrum(
        values=values,
        complete=complete,
        largest=largest,
        smallest=smallest,
        flat_share=flat_share,
        flat_tolerance=tolerance,
        boundary_point=boundary.point,
        normal=normal.float().reshape(clf.input_shape),
        original=boundary.original,
        reached=boundary.reached,
        distance=boundary.distance,
        gap=boundary.gap,
        mode=mode,
        residuals=errors,
        lanczos_converged=converged,
        n_hvp=hessian.n_hvp,
        n_bases=n_bases,
    )


def _spectra_arguments(clf: Classifier, images: object, **options: object) -> torch.Tensor:
    """:func:`curvature_spectra`' arguments checked (before any work): the batch of images."""
    _spectrum_options(clf, **options)
    batch = clf.check_inputs(images, "images", batched=True, in_bounds=True)
    if batch.shape[0] == 0:
        raise ValueError("`images` must hold at least one image; got an empty batch.")
    return batch


@shardable(inputs=("images",), check=_spectra_arguments)
def curvature_spectra(
    clf: Classifier,
    images: object,
    *,
    k: int = 10,
    mode: str = "finite_difference",
    step: float | None = None,
    flat_tolerance: float | None = None,
    dense_limit: int = 1024,
    seed: int = 0,
    tol: float = 1e-4,
    max_iter: int = 50,
    n_bases: int | None = None,
    executor: Executor = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> list[CurvatureSpectrum]:
    """:func:`curvature_spectrum` of each image of the batch ``images`` ``(N, *input_shape)``: a list of N spectra.

    ``executor``: a ``distributed.Client`` runs the images in shards on its cluster (see
    :mod:`boundary_widgets.core.distributed`); each spectrum is the one :func:`curvature_spectrum` gives
    for its image (``max_iter`` bounds the DeepFool steps to the boundary point). ``progress``/``cancel``: one
    unit per image; ``cancel`` is honoured between products.
    """
    options = {
        "k": k,
        "mode": mode,
        "step": step,
        "flat_tolerance": flat_tolerance,
        "dense_limit": dense_limit,
        "seed": seed,
        "tol": tol,
        "max_iter": max_iter,
        "n_bases": n_bases,
    }
    batch = _spectra_arguments(clf, images, **options)
    spectra = []
    with track(progress, cancel, total=batch.shape[0], desc="Curvature spectra") as tracker:
        for x in batch:
            spectra.append(curvature_spectrum(clf, x, **options, cancel=tracker.cancel))
            tracker.advance()
    return spectra


@dataclass(frozen=True, eq=False)
class CurvatureScores:
    """Per image: the mean curvature of its top-1/top-2 logit-gap level set along random directions."""

    scores: np.ndarray = field(metadata=PER_IMAGE)  # (N,) float64: mean_v v'H v / |grad F| (high: perturbed-like)
    predicted: np.ndarray = field(metadata=PER_IMAGE)  # (N,) int64, top-1 class
    runner_up: np.ndarray = field(metadata=PER_IMAGE)  # (N,) int64, top-2 class
    n_directions: int
    step: float

    def __repr__(self) -> str:
        median = float(np.median(self.scores)) if self.scores.size else float("nan")
        return (
            f"CurvatureScores(n={self.scores.size}, median_score={median:.4g}, "
            f"n_directions={self.n_directions}, step={self.step:.3g})"
        )


def _curvature_score_arguments(
    clf: Classifier, images: object, *, n_directions: int, step: float | None, seed: int, batch_size: int
) -> tuple[torch.Tensor, float]:
    """:func:`curvature_score`'s arguments checked (before any work): the batch and the step."""
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    batch = clf.check_inputs(images, "images", batched=True, in_bounds=True)
    if batch.shape[0] == 0:
        raise ValueError("`images` must hold at least one image; got an empty batch.")
    check_positive_int(n_directions, "n_directions")
    check_positive_int(batch_size, "batch_size")
    h = default_step(clf) if step is None else float(step)
    if not h > 0:
        raise ValueError(f"`step` must be > 0; got {step!r}.")
    return batch, h


@shardable(inputs=("images",), check=_curvature_score_arguments)
def curvature_score(
    clf: Classifier,
    images: object,
    *,
    n_directions: int = 50,
    step: float | None = None,
    seed: int = 0,
    batch_size: int = 4096,
    executor: Executor = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> CurvatureScores:
    """The paper's detector: the sign of the boundary curvature along random directions, at each image.

    With ``F = f_top1 − f_top2`` at ``x``, the score is ``mean_v (F(x + h v) + F(x − h v) − 2 F(x)) / (h² |∇F(x)|)``
    over ``n_directions`` random unit ``v`` (second differences with the authors' non-infinitesimal
    step ``h``). A natural image sits near a peak of its class's lead, where ``F`` bends down
    (score < 0); just across a boundary, where an adversarial step lands, it does not, so a high
    score flags a perturbed image. ``executor``: a ``distributed.Client`` runs the images in shards on its cluster
    (see :mod:`boundary_widgets.core.distributed`). ``progress``/``cancel``: one unit per batch of
    ``batch_size`` shifted points (``2 · n_directions`` per image).
    """
    batch, h = _curvature_score_arguments(
        clf, images, n_directions=n_directions, step=step, seed=seed, batch_size=batch_size
    )
    n, dim = batch.shape[0], clf.input_dim
    generator = torch.Generator().manual_seed(int(seed))
    directions = torch.randn(n_directions, dim, generator=generator)
    directions = (directions / directions.norm(dim=1, keepdim=True)).to(clf.device)
    # Images per block so that a block's shifted points (2 · n_directions each) fill about one batch.
    blocks = batch.split(max(1, batch_size // (2 * n_directions)))
    with track(progress, cancel, total=len(blocks), desc="Curvature scores") as tracker:
        with clf.evaluating(), torch.enable_grad():
            point = batch.detach().clone().requires_grad_(True)
            logits = clf.forward(point)
            top2 = logits.topk(2, dim=1).indices
            gap = logits.gather(1, top2[:, :1]) - logits.gather(1, top2[:, 1:])
            (gradient,) = torch.autograd.grad(gap.sum(), point)
        logits_out = []
        for block in blocks:
            flat = block.reshape(-1, 1, dim)
            shifted = torch.cat([flat + h * directions, flat - h * directions], dim=1)
            logits_out.append(clf.logits(shifted.reshape(-1, *clf.input_shape), batch_size=batch_size))
            tracker.advance()
    shifted_logits = torch.cat(logits_out).reshape(n, 2 * n_directions, -1)
    index = top2[:, None, :].expand(n, 2 * n_directions, 2)
    picked = shifted_logits.gather(2, index)
    shifted_gap = picked[..., 0] - picked[..., 1]  # (n, 2M)
    second = (shifted_gap[:, :n_directions] + shifted_gap[:, n_directions:] - 2 * gap.detach()) / h**2
    curvature = second.mean(1) / gradient.flatten(1).norm(dim=1).clamp_min(1e-12)
    return CurvatureScores(
        scores=curvature.double().cpu().numpy(),
        predicted=top2[:, 0].cpu().numpy().astype(np.int64),
        runner_up=top2[:, 1].cpu().numpy().astype(np.int64),
        n_directions=int(n_directions),
        step=h,
    )


__all__ = [
    "CurvatureScores",
    "CurvatureSpectrum",
    "curvature_score",
    "curvature_spectra",
    "curvature_spectrum",
]
