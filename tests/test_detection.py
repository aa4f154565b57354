"""Fawzi et al.'s detector with label recovery: closed forms on a quadratic model, mechanics at scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core.analysis.detection import class_curvatures, detect, evaluate_detector, roc_auc


class Quadratic(nn.Module):
    """Logits ``f_0 = w·x`` and ``f_k = c_k |x|² / 2`` (k ≥ 1): the curvature of ``f_0 − f_k`` is ``−c_k``."""

    def __init__(self, curvatures: list[float]) -> None:
        super().__init__()
        self.register_buffer("w", torch.full((4,), 3.0))
        self.register_buffer("c", torch.tensor(curvatures))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return torch.cat([(x @ self.w)[:, None], self.c * (x * x).sum(1, keepdim=True) / 2], dim=1)


def test_roc_auc_closed_forms() -> None:
    assert roc_auc([0, 1], [2, 3]) == 1.0
    assert roc_auc([2, 3], [0, 1]) == 0.0
    assert roc_auc([1, 1], [1, 1]) == 0.5
    assert roc_auc([0, 2], [1, 3]) == 0.75
    with pytest.raises(ValueError, match="at least one"):
        roc_auc([], [1.0])


def test_roc_auc_agrees_with_scikit_learn_with_many_ties() -> None:
    from sklearn.metrics import roc_auc_score

    generator = np.random.default_rng(0)
    negative, positive = generator.integers(0, 5, 300).astype(float), generator.integers(1, 6, 200).astype(float)
    expected = roc_auc_score(np.r_[np.zeros(300), np.ones(200)], np.r_[negative, positive])
    assert roc_auc(negative, positive) == pytest.approx(expected, abs=1e-12)


def test_class_curvatures_match_the_quadratic_model_and_curvature_score() -> None:
    clf = bw.Classifier(Quadratic([1.0, -2.0, 0.5]), input_shape=(4,), bounds=(-1.0, 1.0))
    x = torch.tensor([[0.2, 0.1, 0.0, 0.1], [0.1, 0.3, 0.2, 0.0]])
    scores = class_curvatures(clf, x, n_directions=8).scores
    assert np.isnan(scores[:, 0]).all()  # the predicted class (w·x dominates near these points)
    for k, c in enumerate([1.0, -2.0, 0.5], start=1):
        expected = -c / (torch.full((4,), 3.0) - c * x).norm(dim=1)
        np.testing.assert_allclose(scores[:, k], expected.numpy(), rtol=1e-3)
    runner_up = bw.analysis.curvature_score(clf, x, n_directions=8)
    np.testing.assert_allclose(scores[np.arange(2), runner_up.runner_up], runner_up.scores, rtol=1e-6)


def test_detect_recovers_the_most_positively_curved_class_only_when_flagged() -> None:
    clf = bw.Classifier(Quadratic([1.0, -2.0, 0.5]), input_shape=(4,), bounds=(-1.0, 1.0))
    x = torch.tensor([[0.2, 0.1, 0.0, 0.1], [0.1, 0.3, 0.2, 0.0]])
    everything = detect(clf, x, threshold=-np.inf, n_directions=8)
    assert everything.flagged.all()
    assert (everything.recovered == 2).all()  # c = -2: the boundary with class 2 curves most positively
    nothing = detect(clf, x, threshold=np.inf, n_directions=8)
    assert not nothing.flagged.any() and (nothing.recovered == nothing.predicted).all()


def test_evaluate_detector_reports_rates_that_follow_the_threshold() -> None:
    clf, data = bw.zoo.load("digits-smooth", device="cpu")
    images, labels = data.split("test")
    clean, truth = images[:30], labels[:30]
    attack = bw.deepfool(clf, clean, clip=True)
    report = evaluate_detector(clf, clean, clean + attack.perturbations, truth, false_positive_rate=0.1)
    assert report.false_positive_rate <= 0.1 + 1e-9
    assert report.detection_rate == report.perturbed.flagged.mean()
    assert report.auc > 0.6  # the smooth model: the benchmark measures ~0.9 on 200 digits
    with pytest.raises(ValueError, match="`labels` must hold one label per perturbed image"):
        evaluate_detector(clf, clean, clean, truth[:5])


def test_class_curvatures_at_scale_score_only_the_candidates() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 1000)
    )
    clf = bw.Classifier(net, input_shape=(3, 64, 64), bounds=(0.0, 1.0))
    images = torch.rand(3, 3, 64, 64)
    result = class_curvatures(clf, images, n_directions=4, candidates=5)
    scores = result.scores
    assert scores.shape == (3, 1000)
    assert (np.isfinite(scores).sum(1) == 5).all()
    top = clf.logits(images).topk(6, dim=1).indices.numpy()
    for row, ranked in zip(scores, top, strict=True):
        assert set(np.flatnonzero(np.isfinite(row))) == set(ranked[1:].tolist())
    np.testing.assert_array_equal(result.candidates, top[:, 1:])
    np.testing.assert_array_equal(result.predicted, top[:, 0])
    with pytest.raises(ValueError, match="`candidates`"):
        class_curvatures(clf, images, candidates=0)


def test_a_set_cancel_event_stops_the_detector_before_any_work() -> None:
    import threading

    clf = bw.Classifier(Quadratic([1.0, -2.0, 0.5]), input_shape=(4,), bounds=(-1.0, 1.0))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(bw.Cancelled):
        detect(clf, torch.zeros(2, 4), threshold=0.0, cancel=cancel)
    calls = []
    class_curvatures(clf, torch.full((2, 4), 0.1), n_directions=4, progress=lambda done, total: calls.append(done))
    assert calls == [1, 2]
