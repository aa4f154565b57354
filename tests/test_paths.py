"""Connecting paths and straight-line profiles against toy classifiers with known class regions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import model_state
from torch import nn

import boundary_widgets as bw


class Ring(nn.Module):
    """Class 0 is the annulus 1 < r < 2 of the first two coordinates (connected, not convex); class 1 elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        radius = (x[:, 0] ** 2 + x[:, 1] ** 2 + 1e-12).sqrt()
        inside = 0.25 - (radius - 1.5) ** 2
        return torch.stack([4 * inside, torch.zeros_like(inside)], dim=1)


class TwoBalls(nn.Module):
    """Class 0 is two unit balls centred at ±2 on the first axis (two parts, a gap of width 2); class 1 elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = torch.zeros(x.shape[1])
        centre[0] = 2.0
        inside = torch.maximum(1 - ((x - centre) ** 2).sum(1), 1 - ((x + centre) ** 2).sum(1))
        return torch.stack([inside, torch.zeros_like(inside)], dim=1)


@pytest.fixture
def ring():
    return bw.Classifier(Ring(), input_shape=(4,), bounds=(-3.0, 3.0))


@pytest.fixture
def two_balls():
    return bw.Classifier(TwoBalls(), input_shape=(4,), bounds=(-3.0, 3.0))


RING_A = torch.tensor([1.5, 0.1, 0.3, -0.2])
RING_B = torch.tensor([-1.5, 0.2, 0.1, 0.4])


def recheck(clf: bw.Classifier, path: bw.ConnectingPath, samples_per_segment: int) -> np.ndarray:
    """Labels of points sampled along every segment of the path, independently of find_path's own samples."""
    t = torch.linspace(0, 1, samples_per_segment + 1)[:, None]
    flat = path.anchors.reshape(path.anchors.shape[0], -1)
    points = torch.cat([flat[j] + t * (flat[j + 1] - flat[j]) for j in range(len(flat) - 1)])
    return clf.predict(points.reshape(-1, *clf.input_shape)).numpy()


def test_ring_path_found_and_stays_in_class_at_10x_density(ring):
    line = bw.line_profile(ring, RING_A, RING_B, n=201)
    assert line.n_changes == 2, "the straight line crosses the hole of the ring"
    assert line.classes_crossed == [0, 1, 0]

    path = bw.find_path(ring, RING_A, RING_B, samples_per_segment=16)
    assert path.valid and path.reason is None
    # Measured: one anchor pushed to radius 1.31 suffices (DeepFool's point alone, on the boundary, needed 55).
    assert 1 <= path.n_anchors <= 2 and path.depth <= 2
    assert path.anchors.shape == (path.n_anchors + 2, 4)
    torch.testing.assert_close(path.anchors[0], RING_A)
    torch.testing.assert_close(path.anchors[-1], RING_B)
    assert (recheck(ring, path, 160) == 0).all()
    radius = path.anchors[:, :2].norm(dim=1)
    assert ((radius > 1) & (radius < 2)).all()
    assert path.anchors.min() >= -3 and path.anchors.max() <= 3
    # The polyline goes around the hole: longer than the chord, shorter than half the outer circle plus slack.
    assert path.straight_length < path.length < 2 * np.pi + 1
    assert path.length == pytest.approx(float(np.diff(path.anchor_positions).sum()))
    assert (path.labels == 0).all() and path.positions[-1] == pytest.approx(path.length)
    np.testing.assert_allclose(path.confidences, path.probabilities[:, 0])
    assert path.line.n_changes == 2


def test_anchors_pushed_into_the_class_need_far_fewer_levels(ring):
    """DeepFool alone leaves each anchor on the boundary (margin ~0); the push puts it well inside.

    An anchor left on the boundary sits one stabiliser step (1e-4) past the linearised boundary, which the
    ring's curvature can all but cancel (margins down to ~5e-7): the levels it needs vary, so it gets 12."""
    on_boundary = bw.find_path(ring, RING_A, RING_B, samples_per_segment=16, push=0.0, max_depth=12)
    pushed = bw.find_path(ring, RING_A, RING_B, samples_per_segment=16)
    assert on_boundary.valid and pushed.valid
    assert on_boundary.n_anchors > 30 and pushed.n_anchors <= 2
    assert pushed.n_evaluated < on_boundary.n_evaluated / 5

    def anchor_margins(path):
        logits = ring.logits(path.anchors[1:-1])
        return (logits[:, 0] - logits[:, 1]).numpy()

    # The ring's margin is 4 * (0.25 - (r - 1.5)**2): 1 at its middle, 0 on its edges.
    assert anchor_margins(on_boundary).min() < 0.05
    assert anchor_margins(pushed).min() > 0.5
    # A reach of a quarter segment gets to the middle of the ring: the largest margin on the way is taken.
    deepest = bw.find_path(ring, RING_A, RING_B, samples_per_segment=16, push=0.25)
    assert deepest.valid and anchor_margins(deepest).min() > 0.99


def test_straight_path_needs_no_anchor(ring):
    a, b = torch.tensor([1.5, 0.0, 0.0, 0.0]), torch.tensor([1.2, 0.9, 0.0, 0.0])
    path = bw.find_path(ring, a, b)
    assert path.valid and path.straight and path.n_anchors == 0
    assert path.length == pytest.approx(path.straight_length)


@pytest.mark.parametrize("max_depth", [2, 6])
def test_disconnected_class_never_valid(two_balls, max_depth):
    a, b = torch.tensor([-2.2, 0.1, 0.0, 0.2]), torch.tensor([1.9, -0.2, 0.1, 0.0])
    path = bw.find_path(two_balls, a, b, max_depth=max_depth)
    assert not path.valid
    assert "`max_depth`" in path.reason
    assert (path.labels != 0).any(), "the failing samples are kept"
    assert (recheck(two_balls, path, 160) != 0).any()
    assert path.depth == max_depth


def test_midpoint_that_cannot_be_pulled_back_is_reported(two_balls):
    a, b = torch.tensor([-2.2, 0.1, 0.0, 0.2]), torch.tensor([1.9, -0.2, 0.1, 0.0])
    path = bw.find_path(two_balls, a, b, max_iter=1, overshoot=0.0)
    assert not path.valid
    assert "DeepFool" in path.reason and "`max_iter`=1" in path.reason


def test_line_profile_linear_one_change_at_analytic_spot():
    net = nn.Linear(6, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0, 1.0, 3.0], [0.0, 1.0, -1.0, 2.0, 0.5, 1.0]]))
        net.bias.copy_(torch.tensor([0.3, -0.1]))
    clf = bw.Classifier(nn.Sequential(nn.Flatten(), net), input_shape=(2, 3), bounds=(-10.0, 10.0))
    a = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    b = torch.tensor([[-1.0, 2.0, 0.0], [1.0, -1.0, 0.0]])
    w, bias = net.weight.detach().double(), net.bias.detach().double()
    gap = lambda x: float((w[0] - w[1]) @ x.double().flatten() + bias[0] - bias[1])  # noqa: E731
    t_star = gap(a) / (gap(a) - gap(b))
    assert 0 < t_star < 1

    profile = bw.line_profile(clf, a, b, n=50)
    assert profile.n_changes == 1
    assert profile.change_t[0] == pytest.approx(t_star, abs=1e-6)
    assert (profile.labels[profile.t < t_star] == 0).all() and (profile.labels[profile.t > t_star] == 1).all()
    assert profile.probabilities.shape == (50, 2) and profile.margins.shape == (50,)
    logits = clf.logits(a + torch.as_tensor(profile.t, dtype=torch.float32)[:, None, None] * (b - a))
    np.testing.assert_allclose(profile.margins, (logits[:, 0] - logits[:, 1]).abs().numpy(), atol=1e-5)
    assert profile.length == pytest.approx(float((b - a).norm()))


def test_find_paths_equals_find_path_per_pair(ring):
    A = torch.stack([RING_A, RING_A * 0.9, torch.tensor([1.5, 0.0, 0.0, 0.0]), RING_B])
    B = torch.stack([RING_B, -RING_A * 0.9, torch.tensor([1.2, 0.9, 0.0, 0.0]), torch.tensor([0.0, -1.6, 0.5, 0.0])])
    batched = bw.find_paths(ring, A, B, samples_per_segment=8)
    assert len(batched) == 4
    assert len({p.n_anchors for p in batched}) > 1, "pairs of different difficulty share the batch"
    for i, together in enumerate(batched):
        alone = bw.find_path(ring, A[i], B[i], samples_per_segment=8)
        assert together.valid == alone.valid and together.n_anchors == alone.n_anchors
        torch.testing.assert_close(together.anchors, alone.anchors, atol=1e-5, rtol=1e-5)
        np.testing.assert_array_equal(together.labels, alone.labels)


def test_digits_paths_valid_and_batched_matches(digits):
    clf, data = digits
    images, _ = data.split("test")
    predicted = clf.predict(images[:60])
    first, second = (np.flatnonzero(predicted.numpy() == k)[:2] for k in (3, 7))
    A, B = images[[first[0], second[0]]], images[[first[1], second[1]]]
    batched = bw.find_paths(clf, A, B)
    for i, together in enumerate(batched):
        alone = bw.find_path(clf, A[i], B[i])
        assert together.valid and alone.valid
        assert together.n_anchors == alone.n_anchors
        torch.testing.assert_close(together.anchors, alone.anchors, atol=1e-4, rtol=1e-4)
        assert together.label == int(predicted[first[0] if i == 0 else second[0]])


@pytest.mark.parametrize("b", [90, 94])
def test_digits_leaving_pair_found_with_defaults(digits, b):
    """Test images 41 and 90 / 94 (both "7"): the straight line leaves the class twice; the default path does not."""
    clf, data = digits
    images, _ = data.split("test")
    path = bw.find_path(clf, images[41], images[b])
    assert path.line.n_changes == 2 and path.label == 7
    assert path.valid and 1 <= path.n_anchors <= 2
    assert (clf.predict(path.points_at(np.linspace(0, path.length, 1025))) == 7).all()
    assert (clf.probabilities(path.anchors[1:-1])[:, 7] > 0.9).all(), "anchors sit well inside the class"
    assert path.anchors.min() >= clf.bounds[0] and path.anchors.max() <= clf.bounds[1]
    assert path.length < 1.1 * path.straight_length


def test_plane_through_path(ring):
    path = bw.find_path(ring, RING_A, RING_B)
    plane = path.plane()
    coordinates = path.plane_coordinates()
    assert coordinates.shape == (path.n_anchors + 2, 2)
    np.testing.assert_allclose(coordinates[0], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(coordinates[-1], [path.straight_length, 0.0], atol=1e-5)
    flat = path.anchors.reshape(len(path.anchors), -1)
    chord = (flat[-1] - flat[0]) / (flat[-1] - flat[0]).norm()
    offsets = flat - flat[0]
    off_line = (offsets - (offsets @ chord)[:, None] * chord).norm(dim=1)
    farthest = int(off_line.argmax())
    # The farthest anchor lies in the plane: its projection keeps its whole distance to the line.
    assert abs(coordinates[farthest, 1]) == pytest.approx(float(off_line[farthest]), rel=1e-5)
    torch.testing.assert_close(plane.points(coordinates[:, 0], coordinates[:, 1])[farthest], path.anchors[farthest])
    straight = bw.find_path(ring, torch.tensor([1.5, 0.0, 0.0, 0.0]), torch.tensor([1.2, 0.9, 0.0, 0.0]))
    assert straight.plane_coordinates().shape == (2, 2)


def test_points_at_follow_the_polyline(ring):
    path = bw.find_path(ring, RING_A, RING_B)
    points = path.points_at(path.anchor_positions)
    torch.testing.assert_close(points, path.anchors, atol=1e-5, rtol=1e-5)
    middle = path.points_at([(path.anchor_positions[0] + path.anchor_positions[1]) / 2])
    torch.testing.assert_close(middle[0], (path.anchors[0] + path.anchors[1]) / 2, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: bw.find_path(c, RING_A, torch.zeros(4)), ValueError, "`line_profile`"),
        (lambda c: bw.find_path(c, RING_A, RING_B, samples_per_segment=1), ValueError, "`samples_per_segment` must be"),
        (lambda c: bw.find_path(c, RING_A, RING_B, max_depth=-1), ValueError, "`max_depth` must be >= 0"),
        (lambda c: bw.find_path(c, RING_A, RING_B, overshoot=-0.1), ValueError, "`overshoot`"),
        (lambda c: bw.find_path(c, RING_A, RING_B, push=-1), ValueError, "`push` must be >= 0"),
        (lambda c: bw.find_paths(c, RING_A[None], RING_B[None], push=True), TypeError, "`push` must be a number"),
        (lambda c: bw.find_path(c, RING_A, torch.zeros(3)), ValueError, "`x_b` must have shape"),
        (lambda c: bw.find_path(c, RING_A * 3, RING_B), ValueError, "`x_a` must lie within"),
        (lambda c: bw.find_path("model", RING_A, RING_B), TypeError, "`clf`"),
        (
            lambda c: bw.find_paths(c, RING_A[None], RING_B.repeat(2, 1)),
            ValueError,
            "`images_a` and `images_b` must hold",
        ),
        (lambda c: bw.find_paths(c, RING_A[None], torch.zeros(1, 4)), ValueError, r"\(pair 0\).*`line_profile`"),
        (lambda c: bw.line_profile(c, RING_A, RING_B, n=1), ValueError, "`n` must be >= 2"),
    ],
)
def test_bad_input_errors_name_the_argument(ring, call, error, match):
    with pytest.raises(error, match=match):
        call(ring)


def test_user_model_unchanged(digits):
    trained, data = digits
    net = bw.zoo.get("digits-cnn").build()
    # The trained weights: an untrained net may call every test image one class, leaving no pair of two classes.
    net.load_state_dict(trained.net.state_dict())
    net.train()
    net.features[0].weight.requires_grad_(False)
    before = model_state(net)
    clf = bw.Classifier(net, input_shape=(1, 8, 8))
    images = data.split("test")[0]
    labels = clf.predict(images[:40]).numpy()
    i, j = np.flatnonzero(labels == labels[0])[:2]
    bw.find_path(clf, images[i], images[j], max_depth=2)
    bw.line_profile(clf, images[0], images[1])
    with pytest.raises(ValueError):
        bw.find_path(clf, images[i], images[int(np.flatnonzero(labels != labels[0])[0])])
    assert model_state(net) == before


def test_plot_path_returns_display_without_showing(ring, digits):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = bw.find_path(ring, RING_A, RING_B)
    display = bw.plot_path(path, n_images=5, top_k=2)
    assert isinstance(display, bw.PathDisplay)
    assert display.figure_ is display.ax_.figure and len(display.image_axes_) == 5
    np.testing.assert_allclose(display.lines_["0"].get_ydata(), path.confidences)
    np.testing.assert_allclose(display.lines_["straight"].get_ydata(), path.line.probabilities[:, 0])
    assert set(display.lines_) == {"0", "1", "straight"}
    plt.close(display.figure_)

    clf, data = digits
    images = data.split("test")[0]
    labels = clf.predict(images[:30]).numpy()
    i, j = np.flatnonzero(labels == labels[0])[:2]
    display = bw.plot_path(bw.find_path(clf, images[i], images[j]), n_images=4, straight=False)
    assert "straight" not in display.lines_
    assert display.image_axes_[0].images[0].get_array().shape == (8, 8)
    plt.close(display.figure_)
    with pytest.raises(TypeError, match="`path`"):
        bw.plot_path(path.line)
    with pytest.raises(ValueError, match="`n_images` must be >= 2"):
        bw.plot_path(path, n_images=1)


def test_find_path_reports_each_bisection_level_and_honours_cancel(ring):
    reports = []
    path = bw.find_path(
        ring, RING_A, RING_B, samples_per_segment=16, progress=lambda done, total: reports.append((done, total))
    )
    assert path.valid and path.depth >= 1
    assert reports == [(level, 8) for level in range(1, path.depth + 1)]

    class CancelAfter:
        """Set once the first level has been checked: the path stops between levels."""

        def __init__(self) -> None:
            self.polls = 0

        def is_set(self) -> bool:
            self.polls += 1
            return self.polls > 2

    with pytest.raises(bw.Cancelled):
        bw.find_paths(ring, RING_A[None], RING_B[None], samples_per_segment=16, cancel=CancelAfter())
    with pytest.raises(TypeError, match="`progress`"):
        bw.find_path(ring, RING_A, RING_B, progress="yes")
