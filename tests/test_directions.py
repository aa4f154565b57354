"""Every direction kind behind one interface: shapes, seeds, batching, closed forms and errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core import curvature, dct
from boundary_widgets.core.directions import Parameter
from boundary_widgets.core.sparsefool import sparsefool

PARAMETER_TYPES = {"int", "float", "bool", "choice", "class", "image", "band", "basis"}


def kind_params(images: torch.Tensor) -> dict[str, dict]:
    """Parameters that make each built-in kind well defined on digits test image 0."""
    return {
        "random": {"seed": 3},
        "adversarial": {},
        "dct": {"band": "mid"},
        "curvature": {"index": 1, "k": 3},
        "image": {"other": images[7]},
        "sparse": {},
    }


def test_registry_lists_every_kind_with_parameter_specs():
    kinds = bw.directions.kinds()
    assert list(kinds) == bw.directions.available()
    assert {"random", "adversarial", "dct", "curvature", "image", "sparse"} <= set(kinds)
    for name, spec in kinds.items():
        assert spec.name == name and spec.description
        for parameter in spec.parameters:
            assert isinstance(parameter, Parameter)
            assert parameter.type in PARAMETER_TYPES, (name, parameter)
            if parameter.in_state and parameter.type != "image":  # an image has no default: it is required
                assert parameter.check(parameter.default) == parameter.default


@pytest.mark.parametrize("kind", ["random", "adversarial", "dct", "curvature", "image", "sparse"])
def test_every_kind_gives_a_unit_vector_of_the_input_shape_reproducibly(digits, kind):
    clf, data = digits
    images = data.split("test")[0]
    params = kind_params(images)[kind]
    first = bw.directions.make(kind, clf, images[0], **params)
    again = bw.directions.make(kind, clf, images[0], **params)
    assert first.vector.shape == clf.input_shape and first.vector.dtype == torch.float32
    assert first.vector.double().norm().item() == pytest.approx(1.0, abs=1e-6)
    assert first.kind == kind
    assert set(first.params) == set(bw.directions.get(kind).defaults())
    torch.testing.assert_close(first.vector, again.vector, atol=0, rtol=0)


@pytest.mark.parametrize("kind", ["random", "dct"])
def test_seeds_change_the_random_choices(digits, kind):
    clf, data = digits
    x = data.split("test")[0][0]
    params = {"dct": {"method": "random"}}.get(kind, {})
    first = bw.directions.make(kind, clf, x, seed=1, **params)
    second = bw.directions.make(kind, clf, x, seed=2, **params)
    assert not torch.allclose(first.vector, second.vector)


@pytest.mark.parametrize(
    ("kind", "params"),
    [("adversarial", {}), ("dct", {"band": "low"}), ("dct", {"method": "random"}), ("image", None), ("sparse", {})],
)
def test_batched_equals_one_by_one(digits, kind, params):
    clf, data = digits
    images = data.split("test")[0]
    params = {"other": images[20]} if params is None else params
    assert bw.directions.get(kind).batch_factory is not None
    batched = bw.directions.make_batch(kind, clf, images[:6], **params)
    for i in range(6):
        single = bw.directions.make(kind, clf, images[i], **params)
        torch.testing.assert_close(single.vector, batched[i].vector, atol=1e-4, rtol=1e-3)
        assert single.info.keys() == batched[i].info.keys()


def test_adversarial_on_a_linear_classifier_is_the_hyperplane_normal():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    clf = bw.Classifier(net, input_shape=(2, 3), bounds=(-10.0, 10.0))
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    direction = bw.directions.make("adversarial", clf, x)
    w = net[1].weight.detach().double()
    across, start = direction.info["reached_class"], direction.info["original"]
    normal = (w[across] - w[start]) / (w[across] - w[start]).norm()
    torch.testing.assert_close(direction.vector.double().flatten(), normal, atol=1e-5, rtol=0)


def test_dct_directions_lie_in_their_band(digits):
    clf, data = digits
    x = data.split("test")[0][0]
    for method in ("deepfool", "random"):
        direction = bw.directions.make("dct", clf, x, band="high", method=method)
        basis = dct.band(clf.input_shape, "high").basis.double()
        flat = direction.vector.double().flatten()
        torch.testing.assert_close(basis @ (basis.T @ flat), flat, atol=1e-5, rtol=0)
        assert (direction.info["rows"], direction.info["band"]) == ((6, 8), "high")
    found = bw.directions.make("dct", clf, x, band=(0, 3))
    assert found.info["band_dim"] == 9 and found.info["converged"]
    assert found.info["distance"] >= bw.deepfool(clf, x).distances[0].item()


def test_curvature_direction_matches_principal_curvatures(digits):
    clf, data = digits
    x = data.split("test")[0][4]
    direction = bw.directions.make("curvature", clf, x, index=2, k=4, which="positive")
    result = curvature.principal_curvatures(clf, x, k=4, which="positive")
    assert direction.info["curvature"] == pytest.approx(result.values[2])
    assert abs(float((direction.vector * result.directions[2]).sum())) == pytest.approx(1.0, abs=1e-5)
    assert abs(float((direction.vector * direction.info["normal"]).sum())) < 1e-5
    assert list(result.values) == sorted(result.values, reverse=True)


def test_two_image_directions_span_the_plane_through_three_images(digits):
    clf, data = digits
    images = data.split("test")[0]
    x, a, b = images[0], images[5], images[9]
    u = bw.directions.make("image", clf, x, other=a)
    v = bw.directions.make("image", clf, x, other=b)
    assert u.info["distance"] == pytest.approx(float((a - x).norm()))
    plane = bw.Plane.through(x, u, v)
    for other in (a, b):
        torch.testing.assert_close(plane.point(*plane.coordinates(other)), other, atol=1e-5, rtol=0)


def test_sparse_changes_few_pixels_within_bounds_and_flips(digits):
    clf, data = digits
    images = data.split("test")[0][:16]
    found = sparsefool(clf, images)
    dense = bw.deepfool(clf, images)
    adversarial = images + found.perturbations
    assert found.converged.all()
    torch.testing.assert_close(clf.predict(adversarial), found.reached)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert found.nonzero.float().median() < 0.25 * clf.input_dim
    assert found.nonzero.float().median() < (dense.perturbations.flatten(1).abs() > 1e-7).sum(1).float().median()


@pytest.mark.parametrize(
    ("kind", "params", "error", "match"),
    [
        ("nope", {}, ValueError, "`kind` must be one of"),
        ("dct", {"bandwidth": 2}, ValueError, r"unknown parameter\(s\) `bandwidth`"),
        ("dct", {"band": "top"}, ValueError, "`band` must be one of"),
        ("dct", {"band": 9}, ValueError, "`band` index must be in"),
        ("dct", {"method": "noise"}, ValueError, "`method` must be one of"),
        ("dct", {"block": 0}, ValueError, "`block` must be >= 1"),
        ("curvature", {"index": 5, "k": 5}, ValueError, "`index` must be < `k`"),
        ("curvature", {"which": "largest"}, ValueError, "`which` must be one of"),
        ("curvature", {"mode": "exact"}, ValueError, "use mode='finite_difference'"),
        ("image", {}, ValueError, "`other` is required"),
        ("image", {"other": torch.zeros(3, 8, 8)}, ValueError, "`other` must have shape"),
        ("image", {"other": torch.full((1, 8, 8), 2.0)}, ValueError, "`other` must lie within"),
        ("sparse", {"lam": 0.5}, ValueError, "`lam` must be >= 1"),
        ("sparse", {"max_rounds": 0}, ValueError, "`max_rounds` must be >= 1"),
    ],
)
def test_bad_parameters_are_clear_errors(digits, kind, params, error, match):
    clf, data = digits
    with pytest.raises(error, match=match):
        bw.directions.make(kind, clf, data.split("test")[0][0], **params)


def test_dct_needs_image_inputs():
    clf, _ = bw.zoo.load("moons-mlp", device="cpu")
    with pytest.raises(ValueError, match="needs image inputs"):
        bw.directions.make("dct", clf, np.zeros(2, dtype=np.float32))


ALL_KINDS = ["random", "adversarial", "dct", "curvature", "image", "sparse"]


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_cancel_set_from_progress_raises_cancelled(digits, kind, batched):
    """The first progress report sets the event: every kind stops with bw.Cancelled, in make and make_batch."""
    clf, data = digits
    images = data.split("test")[0]
    params = kind_params(images)[kind]
    cancel = threading.Event()
    reports = []

    def report(done, total):
        reports.append((done, total))
        cancel.set()

    with pytest.raises(bw.Cancelled):
        if batched:
            bw.directions.make_batch(kind, clf, images[:3], progress=report, cancel=cancel, **params)
        else:
            bw.directions.make(kind, clf, images[0], progress=report, cancel=cancel, **params)
    assert len(reports) == 1
    already = threading.Event()
    already.set()
    with pytest.raises(bw.Cancelled):
        bw.directions.make(kind, clf, images[0], cancel=already, **params)


@pytest.mark.parametrize(
    ("kind", "unit"),
    [
        ("random", "call"),
        ("image", "call"),
        ("adversarial", "DeepFool round"),
        ("sparse", "round"),
        ("curvature", "HVP"),
    ],
)
def test_progress_counts(digits, kind, unit):
    clf, data = digits
    images = data.split("test")[0]
    params = kind_params(images)[kind]
    reports = []
    direction = bw.directions.make(kind, clf, images[0], progress=lambda *r: reports.append(r), **params)
    expected = {
        "call": 1,
        "DeepFool round": direction.info.get("iterations"),
        "round": direction.info.get("iterations"),
        "HVP": direction.info.get("n_hvp"),
    }[unit]
    assert reports[-1][0] == expected
    batch = bw.directions.make_batch("curvature", clf, images[:2], progress=lambda *r: reports.append(r), k=2)
    assert reports[-2:] == [(1, 2), (2, 2)] and len(batch) == 2


def test_bad_progress_and_cancel_are_refused_before_work(digits):
    clf, data = digits
    with pytest.raises(TypeError, match="`progress`"):
        bw.directions.make("adversarial", clf, data.split("test")[0][0], progress="yes")
    with pytest.raises(TypeError, match="`cancel`"):
        bw.directions.make_batch("random", clf, data.split("test")[0][:2], cancel=True)


@pytest.fixture(scope="module")
def imagenet_like_64():
    """A random-weight 1000-class conv net at 3×64×64 (BatchNorm, ImageNet normalisation) and one image."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(256, 1000),
    )
    clf = bw.Classifier(net, input_shape=(3, 64, 64), mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    return clf, torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    ("kind", "params"),
    [("adversarial", {}), ("sparse", {"max_rounds": 3}), ("curvature", {"k": 2})],
)
def test_thousand_classes_at_64x64_within_memory(imagenet_like_64, kind, params):
    """No O(d²) anywhere: one d×d float32 matrix at d = 12288 is 604 MB; the bound is a tenth of that."""
    from test_dct_scale import peak_traced_bytes

    clf, image = imagenet_like_64
    direction, torch_peak, python_peak = peak_traced_bytes(lambda: bw.directions.make(kind, clf, image, **params))
    assert direction.vector.shape == (3, 64, 64)
    assert direction.vector.double().norm().item() == pytest.approx(1.0, abs=1e-6)
    assert 0 <= direction.info["reached_class"] < 1000 and direction.info["original"] != -1
    assert torch_peak + python_peak < 60 * 2**20, (torch_peak, python_peak)
    if kind == "adversarial":
        assert direction.info["converged"] and direction.info["reached_class"] != direction.info["original"]
    if kind == "curvature":
        assert np.isfinite(direction.info["curvature"]) and np.isfinite(direction.info["residual"])


def test_a_kind_gets_progress_and_cancel_only_when_it_declares_them(digits, monkeypatch):
    """The registry reads `takes_protocol` from the kind, never from the factory's signature."""
    from boundary_widgets.core.directions import registry

    clf, data = digits
    seen = {}

    def quick(clf, x, **params):
        seen["quick"] = sorted(params)
        return torch.ones(clf.input_shape), {}

    def slow(clf, x, *, progress=None, cancel=None):
        seen["slow"] = (progress, cancel)
        return torch.ones(clf.input_shape), {}

    for name, factory, declared in (("quick", quick, False), ("slow", slow, True)):
        kind = registry.DirectionKind(name, factory, f"a {name} test kind", takes_protocol=declared)
        monkeypatch.setitem(registry._REGISTRY, name, kind)
    reports = []
    cancel = threading.Event()
    bw.directions.make("quick", clf, data.images[0], progress=lambda *r: reports.append(r), cancel=cancel)
    assert seen["quick"] == [] and reports == [(1, 1)]  # counted for it: one call
    bw.directions.make("slow", clf, data.images[0], progress=print, cancel=cancel)
    assert seen["slow"] == (print, cancel)
