"""Batched DeepFool against closed-form answers on linear classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw


def linear_distance(w: np.ndarray, b: np.ndarray, x: np.ndarray) -> tuple[float, int, np.ndarray]:
    """DeepFool's one step on argmax(Wx + b): distance to the nearest boundary plus its 1e-4 logit
    push (1e-4 / |w_k - w_k0|), the class across, and the unit normal."""
    scores = w @ x + b
    k0 = int(scores.argmax())
    best = (np.inf, -1, None)
    for k in range(len(b)):
        if k != k0:
            dw = w[k] - w[k0]
            d = (abs(scores[k] - scores[k0]) + 1e-4) / np.linalg.norm(dw)
            if d < best[0]:
                best = (d, k, dw / np.linalg.norm(dw))
    return best


@pytest.fixture
def linear():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    return bw.Classifier(net, input_shape=(2, 3), bounds=(-10.0, 10.0))


def test_linear_exact_distance_in_one_step(linear):
    x = torch.randn(16, 2, 3, generator=torch.Generator().manual_seed(0))
    result = bw.deepfool(linear, x, overshoot=0.0)
    w = linear.net[1].weight.detach().double().numpy()
    b = linear.net[1].bias.detach().double().numpy()
    assert result.converged.all()
    assert (result.iterations == 1).all()
    for i in range(16):
        distance, across, normal = linear_distance(w, b, x[i].double().numpy().ravel())
        assert result.distances[i].item() == pytest.approx(distance, rel=1e-5, abs=1e-6)
        assert int(result.reached[i]) == across
        direction = result.perturbations[i].double().numpy().ravel()
        np.testing.assert_allclose(direction / np.linalg.norm(direction), normal, atol=1e-4)


def test_batched_equals_one_by_one(digits):
    clf, data = digits
    images = data.split("test")[0][:12]
    batched = bw.deepfool(clf, images)
    for i in range(12):
        single = bw.deepfool(clf, images[i])
        torch.testing.assert_close(single.perturbations[0], batched.perturbations[i], atol=1e-4, rtol=1e-3)
        assert bool(single.converged[0]) == bool(batched.converged[i])
        assert int(single.iterations[0]) == int(batched.iterations[i])


def test_digits_deepfool_flips_and_reports(digits):
    clf, data = digits
    images = data.split("test")[0][:32]
    result = bw.deepfool(clf, images)
    assert result.converged.all()
    torch.testing.assert_close(clf.predict(images + result.perturbations).cpu(), result.reached)
    assert (result.reached != result.original).all()


def test_clip_reports_and_stays_in_bounds(digits):
    clf, data = digits
    images = data.split("test")[0][:32]
    result = bw.deepfool(clf, images, clip=True)
    adversarial = images + result.perturbations
    assert adversarial.min() >= -1e-6 and adversarial.max() <= 1 + 1e-6
    assert result.clipped.any(), "digits have saturated pixels: some steps must be clipped"
    assert not bw.deepfool(clf, images).clipped.any()


def test_target_class_reached(linear):
    x = torch.randn(8, 2, 3, generator=torch.Generator().manual_seed(1))
    result = bw.deepfool(linear, x, target=2, max_iter=100)
    assert (result.reached[result.converged] == 2).all()
    assert result.converged.all()


def test_max_iter_non_convergence_is_reported(digits):
    clf, data = digits
    result = bw.deepfool(clf, data.split("test")[0][:8], max_iter=1, overshoot=0.0)
    assert not result.converged.all()
    assert (result.iterations <= 1).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_iter": 0}, "`max_iter` must be >= 1"),
        ({"overshoot": -1}, "`overshoot`"),
        ({"target": 99}, "`target`"),
        ({"subspace": torch.ones(64, 2)}, "orthonormal"),
        ({"subspace": torch.eye(5)}, "`subspace` must be a"),
    ],
)
def test_bad_parameters(digits, kwargs, match):
    clf, data = digits
    with pytest.raises(ValueError, match=match):
        bw.deepfool(clf, data.split("test")[0][:2], **kwargs)
