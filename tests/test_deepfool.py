"""Batched DeepFool against closed-form answers on linear classifiers."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw


def linear_distance(w: np.ndarray, b: np.ndarray, x: np.ndarray) -> tuple[float, int, np.ndarray]:
    """DeepFool's one step on argmax(Wx + b): distance to the nearest boundary plus its 1e-4 push
    (in input units, as LTS4/DeepFool and foolbox), the class across, and the unit normal."""
    scores = w @ x + b
    k0 = int(scores.argmax())
    best = (np.inf, -1, None)
    for k in range(len(b)):
        if k != k0:
            dw = w[k] - w[k0]
            d = abs(scores[k] - scores[k0]) / np.linalg.norm(dw) + 1e-4
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


def _small_resnet(num_classes: int = 10) -> nn.Module:
    """A residual conv net with BatchNorm (eval mode, random running statistics) and ReLU."""

    class Residual(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.norm = nn.BatchNorm2d(channels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.norm(self.conv(x)))

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        Residual(8),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        Residual(16),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    )
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return net


@pytest.mark.parametrize("strategy", ["loop", "replicated"])
def test_batched_backward_equals_the_other_gradient_strategies(strategy):
    from boundary_widgets.core.deepfool import candidate_gradients

    clf = bw.Classifier(_small_resnet(), input_shape=(3, 12, 12), mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3])
    images = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    classes = torch.stack([torch.randperm(10, generator=torch.Generator().manual_seed(i))[:4] for i in range(6)])
    with clf.evaluating(), torch.enable_grad():
        logits_b, grads_b = candidate_gradients(clf, images, classes, strategy="batched")
        logits_o, grads_o = candidate_gradients(clf, images, classes, strategy=strategy)
    assert grads_b.shape == (6, 4, 3 * 12 * 12)
    torch.testing.assert_close(logits_b, logits_o, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads_b, grads_o, atol=1e-6, rtol=1e-5)
    assert grads_b.abs().max() > 0
    # Column k is the gradient of logit classes[:, k]: check one against a plain backward.
    point = images[2:3].clone().requires_grad_(True)
    with clf.evaluating(), torch.enable_grad():
        (grad,) = torch.autograd.grad(clf.forward(point)[0, classes[2, 1]], point)
    torch.testing.assert_close(grads_b[2, 1], grad.flatten(), atol=1e-6, rtol=1e-5)


def test_deepfool_is_the_same_whichever_gradient_strategy(digits, monkeypatch):
    module = importlib.import_module("boundary_widgets.core.deepfool")
    clf, data = digits
    images = data.split("test")[0][:16]
    original = module.candidate_gradients
    results = {}
    for strategy in ("batched", "replicated", "auto"):
        monkeypatch.setattr(module, "candidate_gradients", lambda *a, s=strategy, **k: original(*a, **k, strategy=s))
        results[strategy] = bw.deepfool(clf, images)
    for strategy in ("replicated", "auto"):
        torch.testing.assert_close(
            results["batched"].perturbations, results[strategy].perturbations, atol=1e-5, rtol=1e-4
        )
        assert torch.equal(results["batched"].iterations, results[strategy].iterations)


def test_progress_counts_step_rounds_and_cancel_stops(digits):
    import threading

    clf, data = digits
    images = data.split("test")[0][:8]
    calls = []
    result = bw.deepfool(clf, images, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i + 1, 50) for i in range(int(result.iterations.max()))]
    cancel = threading.Event()
    with pytest.raises(bw.Cancelled):
        bw.deepfool(clf, images, overshoot=0.0, progress=lambda done, total: cancel.set(), cancel=cancel)
    cancel.set()
    with pytest.raises(bw.Cancelled):
        bw.deepfool(clf, images, cancel=cancel)


class _NoVmapDouble(torch.autograd.Function):
    """Doubles its input; the backward reads a value (`.item()`), which vmap cannot batch."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return 2 * x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * (2.0 if grad.abs().max().item() >= 0 else 0.0)


def test_a_network_vmap_cannot_batch_falls_back_to_replication():
    from boundary_widgets.core.deepfool import _NO_VMAP, candidate_gradients

    class Net(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return _NoVmapDouble.apply(x.flatten(1))[:, :3] * torch.tensor([1.0, -1.0, 0.5])

    clf = bw.Classifier(Net(), input_shape=(4,), bounds=(-1.0, 1.0))
    images = torch.rand(2, 4)
    classes = torch.tensor([[0, 1], [2, 1]])
    with clf.evaluating(), torch.enable_grad():
        _, grads = candidate_gradients(clf, images, classes, strategy="batched")
    assert clf in _NO_VMAP
    expected = torch.zeros(2, 2, 4)
    expected[0, 0, 0], expected[0, 1, 1], expected[1, 0, 2], expected[1, 1, 1] = 2.0, -2.0, 1.0, -2.0
    torch.testing.assert_close(grads, expected)


@pytest.mark.parametrize("scale", [1e-6, 1e-4, 1.0, 1e4, 1e12, 1e20])
def test_distance_does_not_depend_on_the_scale_of_the_logits(scale):
    """A binary linear model whose boundary is 0.3 away: one step of 0.3 + 1e-4 (the stabiliser, in
    input units) times 1 + overshoot, whatever the logits' scale (|w|² of 1e20 would overflow float32)."""
    net = nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]) * scale / 2)
        net.bias.copy_(torch.tensor([0.3, -0.3]) * scale / 2)
    clf = bw.Classifier(net, input_shape=(4,), bounds=(-10.0, 10.0))
    result = bw.deepfool(clf, torch.zeros(4))
    assert bool(result.converged[0]) and int(result.iterations[0]) == 1
    assert result.distances[0].item() == pytest.approx((0.3 + 1e-4) * 1.02, rel=1e-3)
    torch.testing.assert_close(result.normals[0], torch.tensor([-1.0, 0, 0, 0]))


class _Recorder(nn.Module):
    """Records the batch size of every forward pass (what a step holds in memory at once)."""

    def __init__(self, net: nn.Module, sizes: list[int]) -> None:
        super().__init__()
        self.net, self.sizes = net, sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return self.net(x)


def test_a_thousand_candidates_go_in_groups_with_the_same_result(monkeypatch):
    """``candidates=num_classes`` on 1000 classes: the gradients go in groups of
    ``candidate_columns`` (a memory budget), so no forward pass holds more than one group, and the
    result equals the one computed with every candidate at once (the same first smallest ratio)."""
    module = importlib.import_module("boundary_widgets.core.deepfool")
    torch.manual_seed(0)
    sizes: list[int] = []
    net = _Recorder(nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 1000)), sizes)
    clf = bw.Classifier(net, input_shape=(1, 4, 4), bounds=(-10.0, 10.0))
    images = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    whole = bw.deepfool(clf, images, candidates=1000)
    budget = 40 * (2 * clf.bytes_per_sample() + 4 * clf.input_dim)
    monkeypatch.setattr(module, "_CHUNK_BYTES", budget)
    assert module.candidate_columns(clf, 1000) == 40
    sizes.clear()
    grouped = bw.deepfool(clf, images, candidates=1000)
    assert max(sizes) <= 40 < 1000
    assert whole.converged.all() and torch.equal(whole.reached, grouped.reached)
    torch.testing.assert_close(whole.perturbations, grouped.perturbations, atol=1e-5, rtol=1e-4)


class _Sphere(nn.Module):
    """Logits ``[(r² − |x|²) / 2r, 0]``: class 1 outside the sphere of radius r; along a ray from
    outside, DeepFool's steps are Newton's on ``ρ² − r²``."""

    def __init__(self, radius: float) -> None:
        super().__init__()
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gap = (self.radius**2 - (x.flatten(1) ** 2).sum(1)) / (2 * self.radius)
        return torch.stack([gap, torch.zeros_like(gap)], dim=1)


def test_linearising_before_the_overshoot_lands_the_whole_overshoot_past_a_sphere():
    """From 2r outside a sphere, ``linearise="iterate"`` (LTS4/hold-me-tight) steps from x + r: the
    radius follows Newton's recursion ρ ← ρ − max((ρ² − r²)/2ρ, 1e-4) and it stops when the overshot point
    x + 1.02 r is inside, 2 % past the boundary; the kit's default linearises at the overshot point and
    lands within 0.2 % past it."""
    radius = 0.7
    clf = bw.Classifier(_Sphere(radius), input_shape=(3,), bounds=(-5.0, 5.0))
    x = torch.tensor([2 * radius, 0.0, 0.0])
    moved, rho = 0.0, 2 * radius
    for _ in range(50):
        moved += max((rho**2 - radius**2) / (2 * rho), 1e-4)
        rho = 2 * radius - moved
        if 2 * radius - 1.02 * moved < radius:
            break
    reference = bw.deepfool(clf, x, linearise="iterate")
    assert bool(reference.converged[0]) and int(reference.iterations[0]) == 3
    assert reference.distances[0].item() == pytest.approx(1.02 * moved, rel=1e-5)
    assert reference.distances[0].item() / radius == pytest.approx(1.02, abs=1e-3)
    kit = bw.deepfool(clf, x)
    assert bool(kit.converged[0]) and 1 < kit.distances[0].item() / radius < 1.002


@pytest.mark.parametrize("gap", [0.3, 5e-5])
def test_the_reference_linearisation_floors_the_step_where_the_default_adds_the_stabiliser(gap):
    """A binary linear model whose boundary is ``gap`` away, reached in one step: the default step is
    ``|f|/|w| + 1e-4`` (LTS4/DeepFool, foolbox), ``linearise="iterate"``'s is ``max(|f|/|w|, 1e-4)``
    (LTS4/hold-me-tight's subspace DeepFool); both times 1 + overshoot."""
    net = nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]) / 2)
        net.bias.copy_(torch.tensor([gap, -gap]) / 2)
    clf = bw.Classifier(net, input_shape=(4,), bounds=(-10.0, 10.0))
    default = bw.deepfool(clf, torch.zeros(4))
    reference = bw.deepfool(clf, torch.zeros(4), linearise="iterate")
    for result in (default, reference):
        assert bool(result.converged[0]) and int(result.iterations[0]) == 1
    assert default.distances[0].item() == pytest.approx((gap + 1e-4) * 1.02, rel=1e-5)
    assert reference.distances[0].item() == pytest.approx(max(gap, 1e-4) * 1.02, rel=1e-5)
