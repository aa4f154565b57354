"""Certified slices: the bounds hold (closed forms, sampled points inside proven cells, every operator), and the
proof runs coarse to fine with the slices' protocol."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import model_state
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core.bounds import UnsupportedModelError, bound_cells, exact_float32
from boundary_widgets.core.bounds import graph as bound_graph
from boundary_widgets.core.slices import DEFAULT_SAFETY_MARGIN

# float32 without directed rounding: sampled margins may fall below a bound by rounding, relative to the logits.
ROUNDING = 1e-5


def sampled_points(boxes: np.ndarray, per_box: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``per_box`` points in each box ``(alpha, beta, half_alpha, half_beta)``: its four corners, then uniform."""
    a, b, ha, hb = (boxes[:, k : k + 1] for k in range(4))
    s = rng.uniform(-1, 1, (len(boxes), per_box))
    t = rng.uniform(-1, 1, (len(boxes), per_box))
    s[:, :4], t[:, :4] = [-1, -1, 1, 1], [-1, 1, -1, 1]
    return (a + ha * s).ravel(), (b + hb * t).ravel()


def check_bounds_hold(clf: bw.Classifier, plane: bw.Plane, boxes: np.ndarray, *, per_box: int = 24, clip=False):
    """Every sampled point of every box has logit[label] - logit[j] >= the proven lower bound, for every j."""
    margins = bound_cells(clf, plane, *boxes.T, clip=clip)
    alphas, betas = sampled_points(boxes, per_box, np.random.default_rng(1))
    points = plane.points(alphas, betas)
    logits = clf.logits(points.clamp(*clf.bounds) if clip else points).double()
    labels = torch.as_tensor(np.repeat(margins.labels, per_box))
    own = logits.gather(1, labels[:, None])[:, 0]
    others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
    sampled = (own - others).view(len(boxes), per_box).amin(dim=1).numpy()
    slack = ROUNDING * np.maximum(1.0, margins.scale)
    assert (sampled >= margins.lower - slack).all(), float((margins.lower - sampled).max())
    return margins, sampled


def random_boxes(n: int, *, extent: float, seed: int = 0, widths=(0.0, 0.01, 0.1, 0.5)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    half = rng.choice(widths, size=(n, 1)) * rng.uniform(0.5, 1.0, (n, 2))
    return np.concatenate([rng.uniform(-extent, extent, (n, 2)), half], axis=1)


def plane_for(clf: bw.Classifier, seed: int = 0) -> bw.Plane:
    generator = torch.Generator().manual_seed(seed)
    shape = clf.input_shape
    low, high = clf.bounds
    x = low + (high - low) * torch.rand(shape, generator=generator)
    return bw.Plane.through(x, torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))


# ---------------------------------------------------------------------------------------------
# Closed forms


class Affine2(nn.Module):
    """Two classes on 2-D inputs with one straight boundary: logit difference ``g(x) = w·x + c``."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[0.3, -0.4], [-0.5, 0.2]]))
            self.head.bias.copy_(torch.tensor([0.1, -0.15]))

    def forward(self, x):
        return self.head(x)


def test_linear_model_proves_exactly_the_cells_the_line_misses():
    """Cell proven <=> |g(centre)| > |g_a| h_a + |g_b| h_b (the least |g| over the box), up to the safety margin;
    in particular every cell farther from the line than its half-diagonal is proven, none crossing it is."""
    clf = bw.Classifier(Affine2(), input_shape=(2,), bounds=(-4.0, 4.0), mean=0.25, std=2.0)
    plane = bw.Plane.through(torch.tensor([0.5, -0.25]), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    sl = bw.compute_slice(
        clf, plane, extent=3, resolution=(40, 32), method="certified", proof=bw.ProofOptions(min_cell=1.0, coarse=False)
    )
    w = (clf.net.head.weight[0] - clf.net.head.weight[1]).detach().double().numpy() / 2.0  # the std divides the input
    c = float((clf.net.head.bias[0] - clf.net.head.bias[1]).detach()) - float(w.sum() * 0.25)
    grid_a, grid_b = np.meshgrid(sl.alphas, sl.betas)
    g = w[0] * (0.5 + grid_a) + w[1] * (-0.25 + grid_b) + c
    ha, hb = (sl.alphas[1] - sl.alphas[0]) / 2, (sl.betas[1] - sl.betas[0]) / 2
    least = np.abs(g) - (abs(w[0]) * ha + abs(w[1]) * hb)
    proven = sl.certificate.proven == 1
    scale = 1e-6 + DEFAULT_SAFETY_MARGIN * 3
    assert proven[least > scale].all() and not proven[least < 0].any()
    assert (np.abs(g) / np.hypot(*w) > np.hypot(ha, hb))[~proven].sum() == (least > scale)[~proven].sum() == 0
    assert (sl.certificate.proven_label[proven] == np.where(g > 0, 0, 1)[proven]).all()
    assert ((least < 0) == ~proven).mean() > 0.99  # and tight: only cells within the safety margin differ


class Ring(nn.Module):
    """Class 0 on the ring ``r1 < |x|_1 < r2`` of the L1 norm, built from ReLUs: ``min(|x|_1 - r1, r2 - |x|_1)``."""

    def __init__(self, r1: float = 1.0, r2: float = 2.0) -> None:
        super().__init__()
        self.r1, self.r2 = r1, r2

    def forward(self, x):
        norm = F.relu(x[:, :1]) + F.relu(-x[:, :1]) + F.relu(x[:, 1:]) + F.relu(-x[:, 1:])
        inner, outer = norm - self.r1, self.r2 - norm
        ring = inner - F.relu(inner - outer)  # min(inner, outer)
        return torch.cat([ring, torch.zeros_like(ring)], dim=1)


def test_ring_proves_all_but_a_band_around_its_two_boundaries():
    clf = bw.Classifier(Ring(), input_shape=(2,), bounds=(-4.0, 4.0))
    plane = bw.Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    sl = bw.compute_slice(
        clf, plane, extent=2.5, resolution=48, method="certified", proof=bw.ProofOptions(min_cell=0.25)
    )
    certificate = sl.certificate
    assert certificate.proven_area > 0.97 and not certificate.exhausted
    # Every unproven leaf lies near a boundary: |f(centre)| at most the box's reach (f is 1-Lipschitz per coordinate)
    # plus the relaxations' slack at the kinks (at most the same again per ReLU layer crossed).
    a, b, ha, hb = certificate.boundary.T
    norm = np.abs(a) + np.abs(b)
    f = np.minimum(norm - 1.0, 2.0 - norm)
    assert (np.abs(f) <= 3 * (ha + hb)).all()
    # Wholly proven cells: the closed-form label everywhere in them (sampled), and the slice's label.
    whole = (certificate.proven == 1) & (certificate.proven_label >= 0)
    rows, cols = np.nonzero(whole)
    h = (sl.alphas[1] - sl.alphas[0]) / 2
    boxes = np.stack([sl.alphas[cols], sl.betas[rows], np.full(rows.size, h), np.full(rows.size, h)], axis=1)
    pa, pb = sampled_points(boxes, 16, np.random.default_rng(0))
    norm = np.abs(pa) + np.abs(pb)
    truth = np.where((norm > 1.0) & (norm < 2.0), 0, 1)
    assert (truth == np.repeat(certificate.proven_label[whole], 16)).all()
    assert (sl.labels[whole] == certificate.proven_label[whole]).all()


# ---------------------------------------------------------------------------------------------
# Every operator against sampled evaluation


class Residual(nn.Module):
    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


def small_resnet(classes: int = 4) -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        Residual(),
        nn.MaxPool2d(3, stride=2, padding=1),
        Residual(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )
    for module in net.modules():  # running statistics away from (0, 1)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 5), nn.Linear(6, 3)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        return self.head(torch.cat([torch.tanh(self.a(x)), F.gelu(self.b(x), approximate="tanh")], dim=1))


class Functional(nn.Module):
    """Functional forms, methods, constants and a head that is not a Linear (logits bounded apart)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(5, 9))
        self.conv = nn.Conv1d(2, 3, 2)

    def forward(self, x):
        y = F.leaky_relu(self.conv(x), 0.1).flatten(1)  # (N, 9)
        y = torch.sigmoid(F.linear(y, self.weight)) * 2.0 - 0.5
        y = F.softplus(y, beta=2.0).relu() + F.silu(y)
        return y[:, :4] / 3.0


OPERATOR_MODELS = {
    "linear-relu": lambda: (nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)), (2, 3)),
    "leaky-softplus": lambda: (
        nn.Sequential(
            nn.Flatten(), nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.Softplus(0.5), nn.Linear(8, 3)
        ),
        (2, 3),
    ),
    "tanh-sigmoid": lambda: (
        nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 3)),
        (2, 3),
    ),
    "gelu-silu": lambda: (
        nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 3)),
        (2, 3),
    ),
    "relu6-hardtanh-dropout": lambda: (
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(6, 8),
            nn.ReLU6(),
            nn.Dropout(0.5),
            nn.Linear(8, 8),
            nn.Hardtanh(-0.5, 0.5),
            nn.Linear(8, 3),
        ),
        (2, 3),
    ),
    "conv1d-bn1d-pools": lambda: (
        nn.Sequential(
            nn.Conv1d(2, 4, 3, padding=1),
            nn.BatchNorm1d(4),
            nn.ReLU(),
            nn.MaxPool1d(3, stride=1, padding=1),
            nn.AvgPool1d(2),
            nn.AdaptiveAvgPool1d(2),
            nn.Flatten(),
            nn.Linear(8, 3),
        ),
        (2, 5),
    ),
    "conv2d-overlapping-maxpool": lambda: (
        nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=1, padding=1),
            nn.MaxPool2d(2, dilation=2),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(3 * 2 * 2, 3),
        ),
        (1, 9, 9),
    ),
    "bn1d-unflatten": lambda: (
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(6, 8),
            nn.BatchNorm1d(8),
            nn.Unflatten(1, (2, 4)),
            nn.Flatten(),
            nn.ReLU(),
            nn.Linear(8, 3),
        ),
        (2, 3),
    ),
    "residual-add": lambda: (small_resnet(), (1, 6, 6)),
    "cat-tanh-gelu": lambda: (Concat(), (2, 3)),
    "functional": lambda: (Functional(), (2, 4)),
}


@pytest.mark.parametrize("name", list(OPERATOR_MODELS))
def test_every_operator_bounds_the_sampled_logit_differences(name):
    torch.manual_seed(0)
    net, shape = OPERATOR_MODELS[name]()
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    clf = bw.Classifier(net, input_shape=shape, bounds=(-1.0, 1.0), mean=0.1, std=0.8)
    plane = plane_for(clf)
    boxes = random_boxes(60, extent=1.5)
    margins, sampled = check_bounds_hold(clf, plane, boxes)
    # Not vacuous: on boxes of zero width the bound is the margin itself.
    exact = boxes[:, 2] == 0
    assert np.allclose(margins.lower[exact], sampled[exact], atol=1e-4 * max(1.0, margins.scale.max()))


def test_clip_bounds_the_classifier_on_clipped_points():
    torch.manual_seed(0)
    net, shape = OPERATOR_MODELS["linear-relu"]()
    clf = bw.Classifier(net, input_shape=shape, bounds=(0.0, 1.0))
    plane = plane_for(clf)
    boxes = random_boxes(60, extent=2.0)  # most boxes leave the bounds
    check_bounds_hold(clf, plane, boxes, clip=True)


def test_overlapping_maxpool_windows_each_take_their_own_maximum():
    """3×3 windows with stride 1 share members: a bound per window, not per member, holds."""
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.MaxPool2d(3, stride=1), nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)
    )
    clf = bw.Classifier(net, input_shape=(1, 7, 7), bounds=(-1.0, 1.0))
    check_bounds_hold(clf, plane_for(clf, seed=2), random_boxes(120, extent=1.0, widths=(0.0, 0.05, 0.3)), per_box=40)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [((2, 2), (2, 2), (0, 0), (1, 1)), ((3, 3), (3, 3), (1, 1), (1, 1)), ((2, 3), (2, 4), (0, 1), (1, 1)),
     ((2, 2), (3, 3), (0, 0), (2, 1)), ((1, 1), (1, 1), (0, 0), (1, 1))],
)  # fmt: skip
def test_disjoint_maxpool_windows_pick_the_members_of_the_window_by_window_rule(kernel, stride, padding, dilation):
    """Windows that share no member are pooled by torch's max-pooling: the same members, upper bound and
    domination as the rule that looks at every window's members."""
    generator = torch.Generator().manual_seed(0)
    lo = torch.randn(4, 3, 9, 11, generator=generator)
    hi = lo + torch.rand(4, 3, 9, 11, generator=generator)
    hi[:, :, ::2] += 2  # some windows with a member far above the others: dominated
    fast = bound_graph._disjoint_window_members(lo, hi, kernel, stride, padding, dilation)
    reference = bound_graph._window_members(lo, hi, kernel, stride, padding, dilation)
    for a, b in zip(fast, reference, strict=True):
        assert torch.equal(a, b)
    assert fast[3].any()


# ---------------------------------------------------------------------------------------------
# Sampled points inside proven cells of the zoo's models and a residual net


def _zoo_plane(clf, data, seed):
    x = data.images[seed]
    u = bw.directions.make("adversarial", clf, x).vector
    v = bw.directions.make("random", clf, x, seed=seed).vector
    return bw.Plane.through(x, u, v)


@pytest.fixture(scope="module")
def proven_models():
    models = []
    for name in ("digits-cnn", "digits-mlp", "digits-smooth"):
        clf, data = bw.zoo.load(name, device="cpu")
        models.append((name, clf, _zoo_plane(clf, data, 0), 3.0))
    net = small_resnet(classes=5)
    clf = bw.Classifier(net, input_shape=(1, 6, 6), bounds=(0.0, 1.0))
    plane = plane_for(clf, seed=4)
    with torch.no_grad():  # every logit ties at the plane's origin: boundaries cross the plane
        features = net[:-1](plane.origin[None])[0]
        net[-1].weight.mul_(5)
        net[-1].bias.copy_(-net[-1].weight @ features)
    models.append(("residual", clf, plane, 2.0))
    return models


POINTS = {"digits-cnn": 12_000, "digits-mlp": 50_000, "digits-smooth": 12_000, "residual": 30_000}  # forwards are cheap


def test_random_points_in_proven_cells_carry_the_proven_label(proven_models):
    """10⁵ points in all, in the wholly proven cells: half in the tenth of least proven margin, a fifth on
    corners, the rest uniform."""
    rng = np.random.default_rng(0)
    total = 0
    for name, clf, plane, extent in proven_models:
        proof = bw.ProofOptions(min_cell=0.5)
        sl = bw.compute_slice(clf, plane, extent=extent, resolution=16, method="certified", proof=proof, cache=False)
        certificate = sl.certificate
        whole = (certificate.proven == 1) & (certificate.proven_label >= 0)
        assert 0.5 < whole.mean() < 1, name  # a boundary crosses the plane
        rows, cols = np.nonzero(whole)
        lowest = np.argsort(certificate.proven_margin[whole])[: max(1, rows.size // 10)]
        n = POINTS[name]
        cells = np.concatenate([rng.choice(lowest, n // 2), rng.integers(0, rows.size, n - n // 2)])
        s, t = rng.uniform(-1, 1, (2, n))
        corners = rng.random(n) < 0.2
        s[corners], t[corners] = np.sign(s[corners]), np.sign(t[corners])
        ha, hb = (sl.alphas[1] - sl.alphas[0]) / 2, (sl.betas[1] - sl.betas[0]) / 2
        alphas, betas = sl.alphas[cols[cells]] + ha * s, sl.betas[rows[cells]] + hb * t
        predicted = clf.predict(plane.points(alphas, betas), batch_size=4096).numpy()
        expected = certificate.proven_label[rows[cells], cols[cells]]
        assert (predicted == expected).all(), (name, int((predicted != expected).sum()))
        total += n
    assert total >= 100_000


# ---------------------------------------------------------------------------------------------
# The certified slice (on the digits MLP, whose bounds are cheap)


@pytest.fixture(scope="module")
def mlp():
    clf, data = bw.zoo.load("digits-mlp", device="cpu")
    return clf, _zoo_plane(clf, data, 1)


def test_certified_slice_agrees_with_dense_and_proves_nearly_all_area(mlp):
    clf, plane = mlp
    dense = bw.compute_slice(clf, plane, extent=3, resolution=32, method="dense", cache=False)
    sl = bw.compute_slice(clf, plane, extent=3, resolution=32, method="certified", cache=False)
    certificate = sl.certificate
    assert certificate.proven_area > 0.98 and certificate.is_complete and not certificate.exhausted
    whole = certificate.proven == 1
    assert (sl.labels == dense.labels).all()
    assert (certificate.proven_label[whole] == dense.labels[whole]).all()
    # Cells not wholly proven were evaluated at their centre, and hold a boundary leaf.
    assert sl.evaluated[~whole].all()
    a, b = certificate.boundary[:, 0], certificate.boundary[:, 1]
    cells = {
        (int(np.abs(sl.betas - bb).argmin()), int(np.abs(sl.alphas - aa).argmin())) for aa, bb in zip(a, b, strict=True)
    }
    assert cells == set(zip(*np.nonzero(~whole), strict=True))
    assert np.isnan(certificate.proven_margin[certificate.proven == 0]).all()
    assert (certificate.proven_margin[whole] > 0).all()
    assert np.allclose(certificate.boundary[:, 2], (sl.alphas[1] - sl.alphas[0]) / 2 * certificate.min_cell)


def test_coarse_blocks_prove_the_same_cells_with_fewer_boxes(mlp):
    clf, plane = mlp
    grid = bw.ProofOptions(min_cell=1.0, coarse=False)
    fine = bw.compute_slice(clf, plane, extent=3, resolution=32, method="certified", proof=grid).certificate
    coarse = bw.compute_slice(
        clf, plane, extent=3, resolution=32, method="certified", proof=bw.ProofOptions(min_cell=1.0)
    )
    coarse = coarse.certificate
    assert fine.n_bounded == 32 * 32 and coarse.n_bounded < fine.n_bounded
    # A block proven at once proves every cell inside it; a cell unproven alone is never in a proven block.
    assert not (coarse.proven[fine.proven == 0] == 1).any()
    assert (coarse.proven == 1).mean() >= (fine.proven == 1).mean() - 0.02


def test_budget_end_is_reported_honestly(mlp):
    clf, plane = mlp
    sl = bw.compute_slice(clf, plane, extent=3, resolution=32, method="certified", proof=bw.ProofOptions(budget=20))
    certificate = sl.certificate
    assert certificate.exhausted and certificate.n_bounded == 20 and certificate.budget == 20
    # Whatever was not proven is a boundary leaf, whatever its size: the leaves and the proven area tile the plane.
    cell_area = (sl.alphas[1] - sl.alphas[0]) * (sl.betas[1] - sl.betas[0])
    leaf_area = (4 * certificate.boundary[:, 2] * certificate.boundary[:, 3]).sum() / cell_area
    assert np.isclose(leaf_area + certificate.proven.sum(), 32 * 32)
    assert certificate.proven_area < 1.0


def test_frames_go_from_sampled_to_proven_levels(mlp):
    clf, plane = mlp
    frames = list(bw.iter_slice(clf, plane, extent=3, resolution=32, method="certified", cache=False))
    assert [f.is_final for f in frames] == [False] * (len(frames) - 1) + [True]
    with_certificate = [f.certificate for f in frames if f.certificate is not None]
    assert frames[0].certificate is None and len(with_certificate) >= 3
    assert [c.is_complete for c in with_certificate] == [False] * (len(with_certificate) - 1) + [True]
    areas = [c.proven_area for c in with_certificate]
    assert areas == sorted(areas)
    final = bw.compute_slice(clf, plane, extent=3, resolution=32, method="certified", cache=False)
    assert np.array_equal(final.certificate.proven, frames[-1].certificate.proven)
    assert np.array_equal(final.labels, frames[-1].labels)


def test_progress_cancel_and_cache(mlp):
    clf, plane = mlp
    calls = []
    first = bw.compute_slice(
        clf, plane, extent=3, resolution=32, method="certified", progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == list(range(1, len(calls) + 1))
    assert bw.compute_slice(clf, plane, extent=3, resolution=32, method="certified") is first
    assert (
        bw.compute_slice(clf, plane, extent=3, resolution=32, method="certified", proof=bw.ProofOptions(min_cell=0.5))
        is not first
    )
    cancel = threading.Event()

    def stop(frame):
        if frame.certificate is not None:
            cancel.set()

    with pytest.raises(bw.Cancelled):
        bw.compute_slice(
            clf, plane, extent=3, resolution=32, method="certified", on_frame=stop, cancel=cancel, cache=False
        )


# ---------------------------------------------------------------------------------------------
# Refusals, precision flags, the user's module


class WithLayerNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm, self.head = nn.LayerNorm(6), nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.norm(x.flatten(1)))


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
            x = -x
        return self.head(x.flatten(1))


class Squared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = x.flatten(1)
        return self.head(x * x)


@pytest.mark.parametrize(
    ("net", "message"),
    [
        (WithLayerNorm(), "module `norm` (LayerNorm) has no bound"),
        (Branching(), "cannot be traced by torch.fx"),
        (Squared(), "product of two bounded tensors"),
        (nn.Sequential(nn.Flatten(), nn.Linear(6, 3), nn.Softmax(dim=1)), "(Softmax) has no bound"),
        (
            nn.Sequential(nn.Conv1d(2, 2, 2), nn.MaxPool1d(2, ceil_mode=True), nn.Flatten(), nn.Linear(2, 3)),
            "ceil_mode",
        ),
    ],
)
def test_unsupported_models_are_refused_before_any_work(net, message):
    clf = bw.Classifier(net, input_shape=(2, 3), bounds=(-1.0, 1.0))
    plane = plane_for(clf)
    calls = []
    with pytest.raises(UnsupportedModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bw.iter_slice(clf, plane, extent=1, resolution=8, method="certified", progress=lambda d, t: calls.append(d))
    assert calls == []
    assert issubclass(UnsupportedModelError, ValueError)


def test_proof_options_are_checked():
    with pytest.raises(ValueError, match="`min_cell` must be a power of 1/2"):
        bw.ProofOptions(min_cell=0.3)
    with pytest.raises(ValueError, match="`budget` must be >= 1"):
        bw.ProofOptions(budget=0)
    with pytest.raises(ValueError, match="`safety_margin` must be >= 0"):
        bw.ProofOptions(safety_margin=-1)
    clf = bw.Classifier(Affine2(), input_shape=(2,), bounds=(-4.0, 4.0))
    plane = bw.Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="`proof` applies to method='certified' only"):
        bw.compute_slice(clf, plane, extent=1, resolution=8, method="dense", proof=bw.ProofOptions())
    with pytest.raises(TypeError, match="`proof` must be a ProofOptions"):
        bw.compute_slice(clf, plane, extent=1, resolution=8, method="certified", proof={"min_cell": 0.5})


def test_precision_flags_are_exact_inside_and_restored_after(monkeypatch):
    flags = [
        torch.backends.cuda.matmul,
        torch.backends.cudnn.conv,
        torch.backends.mkldnn.matmul,
        torch.backends.mkldnn.conv,
    ]
    before = [flag.fp32_precision for flag in flags]
    seen = []
    relu = bound_graph.MODULE_BOUNDS[nn.ReLU]

    def recording_relu(module, x):
        seen.append(([flag.fp32_precision for flag in flags], torch.is_autocast_enabled("cpu")))
        return relu(module, x)

    monkeypatch.setitem(bound_graph.MODULE_BOUNDS, nn.ReLU, recording_relu)
    try:
        for flag in flags:
            flag.fp32_precision = "tf32"
        net, shape = OPERATOR_MODELS["linear-relu"]()
        clf = bw.Classifier(net, input_shape=shape, bounds=(-1.0, 1.0))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bound_cells(clf, plane_for(clf), *random_boxes(4, extent=1.0).T)
        assert seen and all(s == (["ieee"] * 4, False) for s in seen)
        assert [flag.fp32_precision for flag in flags] == ["tf32"] * 4
        with exact_float32(torch.device("cpu")), exact_float32(torch.device("cpu")):
            pass
        assert [flag.fp32_precision for flag in flags] == ["tf32"] * 4
    finally:
        for flag, value in zip(flags, before, strict=True):
            flag.fp32_precision = value


def test_users_module_is_not_changed():
    net = small_resnet()
    net.train()
    before = model_state(net)
    clf = bw.Classifier(net, input_shape=(1, 6, 6), bounds=(0.0, 1.0))
    bw.compute_slice(clf, plane_for(clf), extent=1, resolution=8, method="certified", cache=False)
    assert model_state(net) == before
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


# ---------------------------------------------------------------------------------------------
# Paths and drawing


class Affine3(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 0.5, 0.3], [-1.0, 0.0, -0.2]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(x)


def test_a_path_in_proven_cells_of_its_class_is_proven():
    """g = 2 a + 0.5 b on the plane z = 0: class 0 where g > 0."""
    clf = bw.Classifier(Affine3(), input_shape=(3,), bounds=(-4.0, 4.0))
    plane = bw.Plane.through(torch.zeros(3), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
    sl = bw.compute_slice(clf, plane, extent=2, resolution=32, method="certified")
    far = bw.find_path(clf, torch.tensor([1.0, -1.5, 0.0]), torch.tensor([1.5, 1.5, 0.0]))
    certificate = bw.certify_path(sl, far)
    assert certificate.proven and certificate.label == 0 and certificate.segments.all() and certificate.reason is None
    # The same path with an anchor beside the boundary: that segment crosses cells not wholly proven.
    anchors = torch.stack([far.anchors[0], torch.tensor([0.02, 0.0, 0.0]), far.anchors[-1]])
    near = bw.certify_path(sl, dataclasses.replace(far, anchors=anchors))
    assert not near.proven and list(near.segments) == [False, False] and "not wholly proven" in near.reason
    outside = dataclasses.replace(far, anchors=torch.stack([far.anchors[0], torch.tensor([3.0, 0.0, 0.0])]))
    assert "leaves the slice's extent" in bw.certify_path(sl, outside).reason
    off_plane = dataclasses.replace(far, anchors=far.anchors + torch.tensor([0.0, 0.0, 0.1]))
    with pytest.raises(ValueError, match="`path` must lie in the slice's plane"):
        bw.certify_path(sl, off_plane)
    with pytest.raises(ValueError, match="method='certified'"):
        bw.certify_path(bw.compute_slice(clf, plane, extent=2, resolution=8), far)


def test_plot_shades_unproven_area_and_outlines_boundary_leaves(mlp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clf, plane = mlp
    sl = bw.compute_slice(clf, plane, extent=3, resolution=32, method="certified")
    display = bw.plot_slice(sl)
    alpha = display.proof_image_.get_array()[..., 3]
    assert np.allclose(alpha, 0.7 * (1 - sl.certificate.proven))
    outlines = display.proof_boxes_.get_xydata()
    assert len(outlines) == 6 * len(sl.certificate.boundary) - 1 and not np.isnan(outlines[[0, -1]]).any()
    plain = bw.plot_slice(sl, proof=False)
    assert plain.proof_image_ is None and plain.proof_boxes_ is None
    assert bw.plot_slice(bw.compute_slice(clf, plane, extent=3, resolution=8)).proof_image_ is None
    plt.close("all")


def test_slice_explorer_shades_unproven_area_of_a_certified_slice():
    from boundary_widgets.widgets import SliceExplorer

    clf, data = bw.zoo.load("digits-mlp", device="cpu")
    explorer = SliceExplorer(clf, data.images[0], method="certified", resolution=24, extent=3.0, threaded=False)
    certificate = explorer.slice.certificate
    view = explorer.map_view
    assert view.unproven.visible and len(view.proof_boxes.x) == 6 * len(certificate.boundary) - 1 > 0
    assert f"{certificate.proven_area:.2%} of the area proven" in explorer.status.value
    assert "not proven single-label" in view.markers_legend.value
    explorer.method = "adaptive"
    explorer.wait()
    assert not view.unproven.visible and len(view.proof_boxes.x) == 0
    explorer.close()
