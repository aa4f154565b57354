"""Fawzi et al.'s detector of perturbed images, whole: flag by curvature, then recover the label.

*Classification regions of deep neural networks* (arXiv 1705.09552): the boundary's curvature
along random directions has one sign at natural images and the other at adversarially perturbed
ones, so a threshold on :func:`~boundary_widgets.core.analysis.curvature.curvature_score` flags
perturbed images; for a flagged image, the class whose boundary with the predicted class is the
most positively curved at the image is the recovered label (the perturbation crossed that boundary).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..classifier import Classifier
from ..curvature import default_step
from ..progress import CancelEvent, Progress, track
from ..validation import check_number, check_positive_int
from .curvature import curvature_score


@dataclass(frozen=True, eq=False)
class ClassCurvatures:
    """Per image and class: the curvature score of ``f_predicted − f_i`` (see :func:`class_curvatures`)."""

    scores: np.ndarray  # (N, C) float64; NaN at the predicted class and at classes not among the candidates
    predicted: np.ndarray  # (N,) int64, the model's label
    candidates: np.ndarray  # (N, K) int64, the classes scored: the K highest logits after the predicted one
    n_directions: int
    step: float

    def __repr__(self) -> str:
        n, classes = self.scores.shape
        return (
            f"ClassCurvatures(images={n}, classes={classes}, candidates={self.candidates.shape[1]}, "
            f"n_directions={self.n_directions}, step={self.step:.4g})"
        )


@dataclass(frozen=True, eq=False)
class Detection:
    """Per image: the detector's score, whether it is flagged, and the label recovered for flagged images."""

    scores: np.ndarray  # (N,) float64, curvature_score of top-1 vs top-2 (higher: more perturbed-like)
    flagged: np.ndarray  # (N,) bool, scores > threshold
    threshold: float
    predicted: np.ndarray  # (N,) int64, the model's label
    runner_up: np.ndarray  # (N,) int64, the top-2 class (the baseline guess at the original label)
    class_scores: np.ndarray  # (N, C) float64, curvature of f_predicted − f_i along random directions; NaN at predicted
    recovered: np.ndarray  # (N,) int64, the most positively curved class where flagged, else the predicted label

    def __repr__(self) -> str:
        return (
            f"Detection(images={self.scores.size}, flagged={int(self.flagged.sum())}, threshold={self.threshold:.4g})"
        )


@dataclass(frozen=True, eq=False)
class DetectionReport:
    """The detector on clean images against perturbed copies of them with known true labels."""

    auc: float  # ROC AUC of the score, perturbed (positive) against clean
    threshold: float  # score above which an image is flagged (calibrated on the clean images)
    false_positive_rate: float  # share of clean images flagged
    detection_rate: float  # share of perturbed images flagged
    recovery_accuracy: float  # share of flagged perturbed images whose recovered label is the true label
    runner_up_accuracy: float  # the same for the baseline "recover the top-2 class"
    clean: Detection
    perturbed: Detection

    def __repr__(self) -> str:
        return (
            f"DetectionReport(auc={self.auc:.3f}, detection_rate={self.detection_rate:.3f} at "
            f"false_positive_rate={self.false_positive_rate:.3f}, recovery_accuracy={self.recovery_accuracy:.3f}, "
            f"runner_up_accuracy={self.runner_up_accuracy:.3f})"
        )


def roc_auc(negative: object, positive: object) -> float:
    """Probability that a positive scores above a negative (ties count half): the Mann–Whitney form of ROC AUC."""
    negative = np.sort(np.asarray(negative, dtype=float).ravel())
    positive = np.asarray(positive, dtype=float).ravel()
    if negative.size == 0 or positive.size == 0:
        raise ValueError("`negative` and `positive` must each hold at least one score.")
    below = np.searchsorted(negative, positive, side="left")  # negatives strictly below each positive
    tied = np.searchsorted(negative, positive, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (negative.size * positive.size))


def class_curvatures(
    clf: Classifier,
    images: object,
    *,
    n_directions: int = 50,
    step: float | None = None,
    seed: int = 0,
    candidates: int = 9,
    batch_size: int = 4096,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> ClassCurvatures:
    """For every candidate class ``i``, the curvature score of ``F_i = f_predicted − f_i`` at each image.

    The same estimate as :func:`curvature_score` (second differences along the same seeded random
    unit directions with step ``h``, divided by ``|∇F_i|``), for every class instead of the
    runner-up only. Only the ``candidates`` classes with the highest logits after the predicted one
    are scored (one input gradient each: a 1000-class model needs no 1000 backward passes); the
    predicted class and the others are NaN in ``scores``. Column ``runner_up`` equals ``curvature_score``.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    batch = clf.check_inputs(images, "images", batched=True)
    check_positive_int(n_directions, "n_directions")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(candidates, "candidates")
    h = default_step(clf) if step is None else check_number(step, "step", minimum=0.0, exclusive=True)
    n, dim = batch.shape[0], clf.input_dim
    with track(progress, cancel, total=2, desc="class curvatures") as tracker:
        generator = torch.Generator().manual_seed(int(seed))
        directions = torch.randn(n_directions, dim, generator=generator)
        directions = (directions / directions.norm(dim=1, keepdim=True)).to(clf.device)
        with clf.evaluating(), torch.enable_grad():
            point = batch.detach().clone().requires_grad_(True)
            logits = clf.forward(point)
            classes = logits.shape[1]
            ranked = logits.detach().topk(min(candidates + 1, classes), dim=1).indices  # (N, K): predicted first
            picked = logits.gather(1, ranked)
            jacobian = torch.stack(
                [
                    torch.autograd.grad(picked[:, j].sum(), point, retain_graph=j < ranked.shape[1] - 1)[0].flatten(1)
                    for j in range(ranked.shape[1])
                ],
                dim=1,
            )  # (N, K, d)
        gradient_norms = (jacobian[:, :1] - jacobian).norm(dim=2)  # (N, K); column 0 is the predicted class
        centre = picked.detach()[:, :1] - picked.detach()  # (N, K)
        tracker.advance()
        flat = batch.reshape(n, 1, dim)
        shifted = torch.cat([flat + h * directions, flat - h * directions], dim=1).reshape(-1, *clf.input_shape)
        shifted_logits = clf.logits(shifted, batch_size=batch_size).reshape(n, 2 * n_directions, classes)
        shifted_picked = shifted_logits.gather(2, ranked[:, None, :].expand(n, 2 * n_directions, ranked.shape[1]))
        gaps = shifted_picked[..., :1] - shifted_picked  # (N, 2M, K)
        second = (gaps[:, :n_directions] + gaps[:, n_directions:] - 2 * centre[:, None, :]) / h**2
        picked_scores = (second.mean(1) / gradient_norms.clamp_min(1e-12)).double().cpu()
        scores = torch.full((n, classes), float("nan"), dtype=torch.float64)
        scores.scatter_(1, ranked[:, 1:].cpu(), picked_scores[:, 1:])
        tracker.advance()
    return ClassCurvatures(
        scores=scores.numpy(),
        predicted=ranked[:, 0].cpu().numpy().astype(np.int64),
        candidates=ranked[:, 1:].cpu().numpy().astype(np.int64),
        n_directions=int(n_directions),
        step=float(h),
    )


def _flag(result: Detection, threshold: float) -> Detection:
    flagged = result.scores > threshold
    most_curved = np.nan_to_num(result.class_scores, nan=-np.inf).argmax(1)
    recovered = np.where(flagged, most_curved, result.predicted).astype(np.int64)
    return replace(result, flagged=flagged, threshold=threshold, recovered=recovered)


def detect(
    clf: Classifier,
    images: object,
    *,
    threshold: float,
    n_directions: int = 50,
    step: float | None = None,
    seed: int = 0,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> Detection:
    """Flag the images whose curvature score exceeds ``threshold`` and recover a label for each flagged one.

    The score is :func:`curvature_score` (top-1 against top-2). The recovered label is the class
    ``i`` whose boundary with the predicted class curves most positively at the image (the largest
    :func:`class_curvatures` score): a perturbation that just crossed a boundary sits where the
    original class's lead bends up again.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    threshold = check_number(threshold, "threshold", finite=False)
    with track(progress, cancel, total=2, desc="detection") as tracker:
        detector = curvature_score(clf, images, n_directions=n_directions, step=step, seed=seed, cancel=tracker.cancel)
        tracker.advance()
        class_scores = class_curvatures(
            clf, images, n_directions=n_directions, step=step, seed=seed, cancel=tracker.cancel
        ).scores
        tracker.advance()
    unflagged = Detection(
        scores=detector.scores,
        flagged=np.zeros(detector.scores.size, dtype=bool),
        threshold=np.inf,
        predicted=detector.predicted,
        runner_up=detector.runner_up,
        class_scores=class_scores,
        recovered=detector.predicted,
    )
    return _flag(unflagged, threshold)


def evaluate_detector(
    clf: Classifier,
    clean_images: object,
    perturbed_images: object,
    labels: object,
    *,
    false_positive_rate: float = 0.05,
    n_directions: int = 50,
    step: float | None = None,
    seed: int = 0,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> DetectionReport:
    """The detector's ROC AUC, detection rate and recovery accuracy on ``clean_images`` against ``perturbed_images``.

    The threshold is the ``1 − false_positive_rate`` quantile of the clean scores. ``labels`` are the
    true labels of ``perturbed_images``; recovery accuracy counts the flagged perturbed images
    whose recovered label is the true one (NaN when none is flagged).
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    rate = check_number(false_positive_rate, "false_positive_rate", minimum=0.0, maximum=1.0)
    clf.check_inputs(clean_images, "clean_images", batched=True)
    n_perturbed = clf.check_inputs(perturbed_images, "perturbed_images", batched=True).shape[0]
    truth = torch.as_tensor(labels).reshape(-1).cpu().numpy().astype(np.int64)
    if truth.size != n_perturbed:
        raise ValueError(f"`labels` must hold one label per perturbed image ({n_perturbed}); got {truth.size}.")
    options = {"n_directions": n_directions, "step": step, "seed": seed}
    with track(progress, cancel, total=2, desc="detector") as tracker:
        clean_result = detect(clf, clean_images, threshold=np.inf, cancel=tracker.cancel, **options)
        tracker.advance()
        perturbed_result = detect(clf, perturbed_images, threshold=np.inf, cancel=tracker.cancel, **options)
        tracker.advance()
    threshold = float(np.quantile(clean_result.scores, 1 - rate))
    clean_result, perturbed_result = _flag(clean_result, threshold), _flag(perturbed_result, threshold)
    flagged = perturbed_result.flagged

    def accuracy(guess: np.ndarray) -> float:
        return float((guess == truth)[flagged].mean()) if flagged.any() else float("nan")

    return DetectionReport(
        auc=roc_auc(clean_result.scores, perturbed_result.scores),
        threshold=threshold,
        false_positive_rate=float(clean_result.flagged.mean()),
        detection_rate=float(flagged.mean()),
        recovery_accuracy=accuracy(perturbed_result.recovered),
        runner_up_accuracy=accuracy(perturbed_result.runner_up),
        clean=clean_result,
        perturbed=perturbed_result,
    )


__all__ = [
    "ClassCurvatures",
    "Detection",
    "DetectionReport",
    "class_curvatures",
    "detect",
    "evaluate_detector",
    "roc_auc",
]
