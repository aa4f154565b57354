"""Classifier wrapper, planes, dense slices, the zoo, plotting and the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import model_state
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core.slices import normalize_extent


def analytic_labels(clf: bw.Classifier, plane: bw.Plane, sl: bw.PlaneSlice) -> tuple[np.ndarray, np.ndarray]:
    """Labels of a linear model on the grid from W, b in closed form, and the gap between the top two scores."""
    linear = clf.net[1]
    w = linear.weight.detach().double().numpy()
    b = linear.bias.detach().double().numpy()
    o, u, v = (t.double().numpy().ravel() for t in (plane.origin, plane.u, plane.v))
    grid_a, grid_b = np.meshgrid(sl.alphas, sl.betas)
    scores = (w @ o + b)[None, None] + grid_a[..., None] * (w @ u) + grid_b[..., None] * (w @ v)
    ordered = np.sort(scores, axis=-1)
    return scores.argmax(-1), ordered[..., -1] - ordered[..., -2]


def test_linear_slice_matches_half_planes(linear_clf):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand((2, 3), generator=gen)
    plane = bw.Plane.through(x, torch.randn((2, 3), generator=gen), torch.randn((2, 3), generator=gen))
    sl = bw.compute_slice(linear_clf, plane, extent=4.0, resolution=(97, 64), method="dense")
    expected, gap = analytic_labels(linear_clf, plane, sl)
    assert sl.labels.shape == (64, 97)
    assert len(np.unique(expected)) >= 2, "the plane must cross a boundary for the test to mean something"
    clear = gap > 1e-4
    np.testing.assert_array_equal(sl.labels[clear], expected[clear])
    np.testing.assert_allclose(sl.margin[clear], gap[clear], rtol=1e-4, atol=1e-4)
    assert sl.n_evaluated == 97 * 64 and sl.evaluated.all()


def test_slice_independent_of_memory_budget(digits):
    clf, data = digits
    x = data.split("test")[0][3]
    plane = bw.Plane.through(x, torch.randn(1, 8, 8), torch.randn(1, 8, 8))
    one_chunk = bw.compute_slice(clf, plane, extent=3.0, resolution=40, memory_budget=2**30)
    many_chunks = bw.compute_slice(clf, plane, extent=3.0, resolution=40, memory_budget=clf.bytes_per_sample() * 7)
    np.testing.assert_array_equal(one_chunk.labels, many_chunks.labels)
    np.testing.assert_allclose(one_chunk.margin, many_chunks.margin, atol=1e-5)


def test_slice_grid_points_are_the_plane_points(digits):
    clf, data = digits
    x = data.split("test")[0][0]
    plane = bw.Plane.through(x, torch.randn(1, 8, 8), torch.randn(1, 8, 8))
    sl = bw.compute_slice(clf, plane, extent=((-1.0, 2.0), (0.5, 3.0)), resolution=(5, 4))
    i, j = 2, 3
    point = plane.point(sl.alphas[j], sl.betas[i])
    assert int(clf.predict(point)) == sl.labels[i, j]
    assert clf.probabilities(point).max().item() == pytest.approx(float(sl.confidence[i, j]), abs=1e-5)


def test_clip_keeps_points_in_bounds_and_reports(digits):
    clf, data = digits
    x = data.split("test")[0][0]
    plane = bw.Plane.through(x, torch.randn(1, 8, 8), torch.randn(1, 8, 8))
    sl = bw.compute_slice(clf, plane, extent=5.0, resolution=9, clip=True)
    assert sl.clip and 0.5 < sl.clipped_fraction <= 1.0
    assert bw.compute_slice(clf, plane, extent=5.0, resolution=9).clipped_fraction == 0.0


def test_plane_is_orthonormal_and_points_batch():
    gen = torch.Generator().manual_seed(0)
    x, u, v = (torch.randn(3, 4, 4, generator=gen) for _ in range(3))
    plane = bw.Plane.through(x, 5 * u, u + v)
    assert plane.u.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert plane.v.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert (plane.u * plane.v).sum().item() == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(plane.u, u / u.norm())
    alphas, betas = np.array([0.0, 1.5, -2.0]), np.array([0.0, -0.5, 3.0])
    batch = plane.points(alphas, betas)
    for n in range(3):
        torch.testing.assert_close(batch[n], plane.point(alphas[n], betas[n]))
    assert plane.coordinates(plane.point(1.5, -0.5)) == pytest.approx((1.5, -0.5), abs=1e-5)


def test_classifier_normalisation_and_output_selection():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    mean, std = [0.2, 0.4, 0.6], [0.5, 0.25, 2.0]
    clf = bw.Classifier(net, input_shape=(3, 2, 2), mean=mean, std=std)
    x = torch.rand(5, 3, 2, 2)
    normalised = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(clf.logits(x), net(normalised).detach())

    class TupleNet(nn.Module):
        def forward(self, x):
            return x.flatten(1) @ torch.ones(4, 3), {"aux": 0}

    tuple_clf = bw.Classifier(TupleNet(), input_shape=(4,), output=0, class_names=["a", "b", "c"])
    assert tuple_clf.logits(torch.ones(4)).shape == (3,)
    assert tuple_clf.class_names == ("a", "b", "c")


def test_user_model_unchanged_after_calls_and_errors(digits):
    torch.manual_seed(0)
    net = bw.zoo.get("digits-cnn").build()
    net.train()
    net.features[0].weight.requires_grad_(False)
    before = model_state(net)
    clf = bw.Classifier(net, input_shape=(1, 8, 8))
    _, data = digits
    x = data.split("test")[0][0]
    calls = [
        lambda: clf.logits(x),
        lambda: clf.predict(x[None]),
        lambda: bw.deepfool(clf, data.split("test")[0][:4]),
        lambda: bw.directions.make("adversarial", clf, x, method="gradient"),
        lambda: bw.compute_slice(
            clf, bw.Plane.through(x, torch.randn(1, 8, 8), torch.randn(1, 8, 8)), extent=1.0, resolution=4
        ),
    ]
    for call in calls:
        call()
        assert model_state(net) == before
    with pytest.raises(ValueError):
        bw.compute_slice(clf, bw.Plane.through(x, torch.randn(1, 8, 8), torch.randn(1, 8, 8)), extent=-1.0)
    assert model_state(net) == before

    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = net

        def forward(self, x):
            out = self.inner(x)
            if x.shape[0] == 3:
                raise RuntimeError("boom")
            return out

    wrapper = bw.Classifier(Exploding(), input_shape=(1, 8, 8))
    with pytest.raises(RuntimeError, match="boom"):
        wrapper.logits(data.split("test")[0][:3])
    assert model_state(net) == before


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        (lambda c, x, p: c.logits(torch.zeros(1, 9, 9)), ValueError, "`x` must have shape"),
        (
            lambda c, x, p: bw.directions.make("random", c, x.clone().fill_(float("nan"))),
            ValueError,
            "`x` must be finite",
        ),
        (lambda c, x, p: c.logits(torch.full((1, 8, 8), float("inf"))), ValueError, "`x` must be finite"),
        (lambda c, x, p: c.logits("image"), TypeError, "`x` must be"),
        (lambda c, x, p: bw.compute_slice(c, p, extent=1.0, resolution=1), ValueError, "`resolution` must be >= 2"),
        (lambda c, x, p: bw.compute_slice(c, p, extent=0.0), ValueError, "`extent`"),
        (lambda c, x, p: bw.compute_slice(c, p, extent=((1, -1), (0, 1))), ValueError, "`extent` alpha range"),
        (lambda c, x, p: bw.compute_slice(c, p, extent=((0, 1), (1, 1))), ValueError, "`extent` beta range"),
        (lambda c, x, p: bw.compute_slice(c, p, extent=1.0, method="magic"), ValueError, "`method` must be one of"),
        (lambda c, x, p: bw.compute_slice(c, p, extent=1.0, precision="int8"), ValueError, "`precision`"),
        (lambda c, x, p: bw.compute_slice(c, "plane", extent=1.0), TypeError, "`plane`"),
        (lambda c, x, p: bw.Plane.through(x, x * 0, torch.ones_like(x)), ValueError, "`u` must be a non-zero"),
        (
            lambda c, x, p: bw.Plane.through(x, torch.ones_like(x), torch.zeros_like(x)),
            ValueError,
            "`v` must be a non-zero",
        ),
        (lambda c, x, p: bw.Plane.through(x, torch.ones_like(x), -3 * torch.ones_like(x)), ValueError, "parallel"),
        (lambda c, x, p: bw.Plane.through(x, torch.ones(3), torch.ones_like(x)), ValueError, "`u` must have the shape"),
        (lambda c, x, p: bw.directions.make("random", c, x * 5 + 2), ValueError, "bounds"),
    ],
)
def test_bad_input_errors_name_the_argument(digits, call, error, names):
    clf, data = digits
    x = data.split("test")[0][0]
    plane = bw.Plane.through(x, torch.randn(1, 8, 8), torch.randn(1, 8, 8))
    with pytest.raises(error, match=names.replace("(", r"\(").replace("[", r"\[")):
        call(clf, x, plane)


def test_model_output_must_be_logits_matrix():
    with pytest.raises(ValueError, match=r"\(N, classes\)"):
        bw.Classifier(nn.Flatten(0), input_shape=(4,))
    with pytest.raises(ValueError, match="`class_names` must have one name per class"):
        bw.Classifier(nn.Linear(4, 3), input_shape=(4,), class_names=["a", "b"])
    with pytest.raises(ValueError, match="`net` could not be run"):
        bw.Classifier(nn.Linear(5, 3), input_shape=(4,))
    with pytest.raises(TypeError, match=r"`net` must be a torch\.nn\.Module"):
        bw.Classifier(lambda x: x, input_shape=(4,))


def test_extent_forms():
    assert normalize_extent(2) == ((-2.0, 2.0), (-2.0, 2.0))
    assert normalize_extent(((0, 1), (-3, 4))) == ((0.0, 1.0), (-3.0, 4.0))


def test_core_imports_no_ui_library():
    code = (
        "import sys, boundary_widgets, boundary_widgets.core;"
        "bad = [m for m in ('matplotlib', 'ipywidgets', 'bqplot') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", bw.zoo.available())
def test_shipped_weights_reach_stated_accuracy(name):
    clf, data = bw.zoo.load(name, device="cpu")
    images, labels = data.split("test")
    accuracy = (clf.predict(images) == labels).float().mean().item()
    assert accuracy >= bw.zoo.get(name).min_test_accuracy


def test_moons_slice_is_the_input_space():
    clf, data = bw.zoo.load("moons-mlp", device="cpu")
    plane = bw.Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    sl = bw.compute_slice(clf, plane, extent=((-1.5, 2.5), (-1.0, 1.5)), resolution=50)
    images, labels = data.split("test")
    hits = [sl.label_at(float(a), float(b)) == int(y) for (a, b), y in zip(images, labels, strict=True)]
    assert np.mean(hits) > 0.93
    assert sl.classes_present == [0, 1]


def test_plot_slice_returns_display_without_showing(digits):
    import matplotlib

    matplotlib.use("Agg")
    clf, data = digits
    x = data.split("test")[0][0]
    u = bw.directions.make("adversarial", clf, x)
    sl = bw.compute_slice(clf, bw.Plane.through(x, u, bw.directions.make("random", clf, x)), extent=3, resolution=32)
    display = bw.plot_slice(sl)
    assert display.ax_.figure is display.figure_
    assert display.lines_ is not None, "an adversarial plane crosses a boundary: lines must be drawn"
    legend_names = [t.get_text() for t in display.legend_.get_texts()]
    by_area = sorted(sl.classes_present, key=lambda k: (-(sl.labels == k).sum(), k))
    assert legend_names == [sl.class_names[k] for k in by_area]
    picture = display.image_.get_array()
    assert picture.shape == (32, 32, 3)


def test_boundary_lines_follow_linear_boundary():
    from boundary_widgets.render import boundary_lines

    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        net.bias.copy_(torch.tensor([-0.6, 0.6]))
    clf = bw.Classifier(net, input_shape=(2,), bounds=(-5, 5))
    plane = bw.Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    sl = bw.compute_slice(clf, plane, extent=2.0, resolution=41)
    lines = boundary_lines(sl)
    vertices = lines[~np.isnan(lines).any(1)]
    np.testing.assert_allclose(vertices[:, 0], 0.6, atol=1e-6)  # the boundary x = 0.6, exactly


def test_cli_demo_writes_png(tmp_path):
    output = tmp_path / "demo.png"
    result = subprocess.run(
        [sys.executable, "-m", "boundary_widgets.cli", "demo", "--resolution", "24", "--output", str(output)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert output.stat().st_size > 10_000
    assert "wrote" in result.stdout and str(output) in result.stdout


def test_cli_render_rejects_unknown_direction(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "boundary_widgets.cli",
            "render",
            "--u",
            "nonsense",
            "--output",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "unknown direction kind 'nonsense'" in result.stderr


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_half_precision_labels_equal_float32(digits, precision):
    clf, data = digits
    images = data.split("test")[0]
    for i in range(3):
        x = images[i]
        u = bw.directions.make("adversarial", clf, x)
        plane = bw.Plane.through(x, u, bw.directions.make("random", clf, x, seed=i))
        exact = bw.compute_slice(clf, plane, extent=3.0, resolution=96, method="dense", cache=False)
        half = bw.compute_slice(clf, plane, extent=3.0, resolution=96, method="dense", precision=precision, cache=False)
        assert half.precision == precision
        np.testing.assert_array_equal(half.labels, exact.labels)
