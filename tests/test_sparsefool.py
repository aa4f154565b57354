"""SparseFool: the vectorised linear solver against the greedy loop, batching, the boundary normal."""

from __future__ import annotations

import threading

import pytest
import torch

import boundary_widgets as bw
from boundary_widgets.core.sparsefool import boundary_normals, linear_solver, sparsefool


def greedy_loop_solver(
    x: torch.Tensor, normal: torch.Tensor, boundary_point: torch.Tensor, bounds: tuple[float, float]
) -> torch.Tensor:
    """The reference: one coordinate at a time, largest |normal_j| first, clipped, until the side changes."""
    point = x.clone()
    start_side = torch.sign(normal @ (x - boundary_point))
    push = 1e-3 * start_side
    for j in normal.abs().argsort(descending=True, stable=True):
        if normal[j] == 0:
            break
        gap = normal @ (point - boundary_point) + push
        point[j] = (point[j] - gap / normal[j]).clamp(*bounds)
        if torch.sign(normal @ (point - boundary_point)) != start_side:
            break
    return point


def _digits_problems(digits, n: int = 24):
    """Real SparseFool sub-problems on digits: the current point, its boundary normal and x_B = x + 3 r."""
    clf, data = digits
    images = data.split("test")[0][:n]
    found = bw.deepfool(clf, images)
    flat = images.reshape(n, -1)
    steps = found.perturbations.reshape(n, -1) / 1.02
    normals = boundary_normals(clf, images + steps.reshape(images.shape), found.original, found.reached)
    return flat, normals.float(), flat + 3.0 * steps, clf.bounds


def test_vectorised_solver_equals_the_greedy_loop_on_digits(digits):
    flat, normals, boundary_points, bounds = _digits_problems(digits)
    batched = linear_solver(flat, normals, boundary_points, bounds)
    changed = 0
    for i in range(flat.shape[0]):
        expected = greedy_loop_solver(flat[i], normals[i], boundary_points[i], bounds)
        torch.testing.assert_close(batched[i], expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(linear_solver(flat[i], normals[i], boundary_points[i], bounds), batched[i])
        assert torch.equal(batched[i] != flat[i], expected != flat[i])
        changed += int((expected != flat[i]).sum())
    assert changed > flat.shape[0], "the problems must need several coordinates (clipping), not one each"


@pytest.mark.parametrize("bounds", [(-10.0, 10.0), (-0.1, 0.1), (0.0, 1.0)])
def test_vectorised_solver_equals_the_loop_on_random_problems(bounds):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(40, 30, generator=generator).clamp(*bounds)
    normal = torch.randn(40, 30, generator=generator)
    normal[::5, 10:] = 0  # zero coordinates are never moved
    boundary_point = x + 0.5 * torch.randn(40, 30, generator=generator)
    batched = linear_solver(x, normal, boundary_point, bounds)
    for i in range(40):
        torch.testing.assert_close(
            batched[i], greedy_loop_solver(x[i], normal[i], boundary_point[i], bounds), atol=1e-5, rtol=0
        )


def test_solver_crosses_just_past_the_hyperplane_with_one_coordinate_when_unclipped():
    normal = torch.tensor([0.1, -0.8, 0.3, 0.5])
    x = torch.zeros(4)
    boundary_point = 0.4 * normal
    moved = linear_solver(x, normal, boundary_point, (-10.0, 10.0))
    assert int((moved != 0).sum()) == 1 and moved[1] != 0
    assert float(normal @ (moved - boundary_point)) == pytest.approx(1e-3, abs=1e-6)
    clipped = linear_solver(x, normal, boundary_point, (-0.1, 0.1))
    assert clipped.abs().max() <= 0.1 and int((clipped != 0).sum()) >= 2


def test_batched_equals_one_by_one(digits):
    clf, data = digits
    images = data.split("test")[0][:6]
    batched = sparsefool(clf, images)
    for i in range(6):
        single = sparsefool(clf, images[i])
        torch.testing.assert_close(single.perturbations[0], batched.perturbations[i], atol=1e-4, rtol=1e-3)
        assert int(single.iterations[0]) == int(batched.iterations[i])
        assert int(single.reached[0]) == int(batched.reached[i])


def test_normal_is_the_logit_difference_gradient_at_the_boundary_point(digits):
    clf, data = digits
    x = data.split("test")[0][3]
    found = bw.deepfool(clf, x)
    point = (x + found.perturbations[0] / 1.02).clone().requires_grad_(True)
    with torch.enable_grad():
        logits = clf.net(point[None])[0]
        (expected,) = torch.autograd.grad(logits[found.reached[0]] - logits[found.original[0]], point)
    got = boundary_normals(clf, point.detach()[None], found.original, found.reached)[0]
    torch.testing.assert_close(got, expected.flatten(), atol=1e-5, rtol=1e-4)
    # It differs from the direction of DeepFool's last step (what SparseFool used before).
    cosine = torch.nn.functional.cosine_similarity(got, found.normals[0].flatten(), dim=0)
    assert cosine < 0.9999


def test_flips_within_bounds_with_few_pixels(digits):
    clf, data = digits
    images = data.split("test")[0][:16]
    found = sparsefool(clf, images)
    adversarial = images + found.perturbations
    assert found.converged.all()
    torch.testing.assert_close(clf.predict(adversarial), found.reached)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert found.nonzero.float().median() < 0.25 * clf.input_dim


def test_progress_counts_rounds_and_cancel_stops(digits):
    clf, data = digits
    images = data.split("test")[0][:4]
    calls = []
    found = sparsefool(clf, images, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i + 1, 20) for i in range(int(found.iterations.max()))]
    cancel = threading.Event()
    with pytest.raises(bw.Cancelled):
        sparsefool(clf, images, lam=1.0, progress=lambda done, total: cancel.set(), cancel=cancel)
    stop_in_deepfool = threading.Event()
    stop_in_deepfool.set()
    with pytest.raises(bw.Cancelled):
        sparsefool(clf, images, cancel=stop_in_deepfool)
