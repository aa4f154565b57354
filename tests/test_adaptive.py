"""Adaptive slices: agreement with dense ones, progressive frames, the cache and cancellation."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core.slices import cache as slice_cache
from boundary_widgets.core.slices import frames as slice_frames

ISLAND_CENTRE = (0.125, 0.125)  # the middle of a coarse cell: no coarse sample lies on the island
ISLAND_RADIUS = 0.1


class IslandNet(nn.Module):
    """2-D inputs: class 0 almost everywhere, class 1 on the half-plane x0 + x1 > 2, class 2 on a small disc."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = torch.tensor(ISLAND_CENTRE, dtype=x.dtype, device=x.device)
        island = 3.0 * (ISLAND_RADIUS - (x - centre).norm(dim=1))
        return torch.stack([torch.zeros_like(island), x[:, 0] + x[:, 1] - 2.0, island], dim=1)


class CountingNet(nn.Module):
    """Wraps a module and counts the samples it is run on (also through the classifier's eval view,
    which shares this list but not the module's attributes)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.counts = [0]

    @property
    def samples(self) -> int:
        return self.counts[0]

    @samples.setter
    def samples(self, value: int) -> None:
        self.counts[0] = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.counts[0] += x.shape[0]
        return self.inner(x)


@pytest.fixture(autouse=True)
def empty_cache():
    bw.clear_slice_cache()
    yield
    bw.clear_slice_cache()


@pytest.fixture
def island_plane():
    return bw.Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))


@pytest.fixture
def digits_plane(digits):
    clf, data = digits
    x = data.split("test")[0][5]
    gen = torch.Generator().manual_seed(3)
    u = bw.directions.make("adversarial", clf, x)
    return clf, bw.Plane.through(x, u, torch.randn(1, 8, 8, generator=gen))


def linear_plane() -> bw.Plane:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand((2, 3), generator=gen)
    return bw.Plane.through(x, torch.randn((2, 3), generator=gen), torch.randn((2, 3), generator=gen))


@pytest.mark.parametrize("resolution", [129, (150, 97)])
def test_adaptive_linear_equals_dense_and_saves_work(linear_clf, resolution):
    plane = linear_plane()
    dense = bw.compute_slice(linear_clf, plane, extent=4.0, resolution=resolution, method="dense", cache=False)
    adaptive = bw.compute_slice(linear_clf, plane, extent=4.0, resolution=resolution, method="adaptive", cache=False)
    assert len(np.unique(dense.labels)) >= 2, "the plane must cross a boundary for the test to mean something"
    assert adaptive.labels.shape == adaptive.margin.shape == adaptive.confidence.shape == dense.labels.shape
    clear = dense.margin > 1e-3
    np.testing.assert_array_equal(adaptive.labels[clear], dense.labels[clear])
    assert adaptive.n_evaluated == adaptive.evaluated.sum() < 0.5 * dense.labels.size
    # Evaluated cells carry the model's values; the others are interpolated, so a linear model's
    # margin (piecewise linear) is close everywhere.
    np.testing.assert_allclose(adaptive.margin[adaptive.evaluated], dense.margin[adaptive.evaluated], atol=1e-5)
    np.testing.assert_allclose(adaptive.margin, dense.margin, atol=0.05 * dense.margin.max())
    assert adaptive.method == "adaptive" and adaptive.is_final


def test_adaptive_finds_an_island_between_coarse_samples(island_plane, monkeypatch):
    clf = bw.Classifier(IslandNet(), input_shape=(2,), bounds=(-10.0, 10.0))
    settings = dict(extent=4.0, resolution=129, cache=False)
    dense = bw.compute_slice(clf, island_plane, method="dense", **settings)
    adaptive = bw.compute_slice(clf, island_plane, method="adaptive", **settings)
    island = dense.labels == 2
    assert 0 < island.sum() < 20
    clear = dense.margin > 1e-3
    np.testing.assert_array_equal(adaptive.labels[clear], dense.labels[clear])
    np.testing.assert_array_equal(adaptive.labels == 2, island)
    # Without the margin test only label disagreements refine, and the island is lost: the guard is what finds it.
    monkeypatch.setattr(slice_frames, "REFINE_SAFETY", 0.0)
    unguarded = bw.compute_slice(clf, island_plane, method="adaptive", **settings)
    assert not (unguarded.labels == 2).any()


def test_first_level_misses_the_island(island_plane):
    clf = bw.Classifier(IslandNet(), input_shape=(2,), bounds=(-10.0, 10.0))
    frames = list(bw.iter_slice(clf, island_plane, extent=4.0, resolution=129, cache=False))
    assert len(frames) == 3
    assert not (frames[0].labels == 2).any(), "the island must fall between the coarse samples"
    assert (frames[-1].labels == 2).any()


def test_progressive_frames_are_complete_and_end_with_the_result(digits_plane):
    clf, plane = digits_plane
    settings = dict(extent=3.0, resolution=129, cache=False)
    seen = []
    result = bw.compute_slice(clf, plane, on_frame=seen.append, **settings)
    frames = list(bw.iter_slice(clf, plane, **settings))
    assert len(seen) == len(frames) == 3
    assert seen[-1] is result
    previous = 0
    for frame, again in zip(seen, frames, strict=True):
        for field in (frame.labels, frame.confidence, frame.margin, frame.evaluated):
            assert field.shape == (129, 129)
        assert np.isfinite(frame.margin).all() and (frame.margin >= 0).all()
        assert ((frame.confidence > 0) & (frame.confidence <= 1)).all()
        assert set(np.unique(frame.labels)) <= set(range(clf.num_classes))
        assert frame.n_evaluated == frame.evaluated.sum() > previous
        previous = frame.n_evaluated
        np.testing.assert_array_equal(frame.labels, again.labels)
    assert [f.is_final for f in seen] == [False, False, True]
    last = frames[-1]
    for name in ("labels", "confidence", "margin", "evaluated"):
        np.testing.assert_array_equal(getattr(last, name), getattr(result, name))
    dense = bw.compute_slice(clf, plane, method="dense", **settings)
    clear = dense.margin > 1e-3
    np.testing.assert_array_equal(result.labels[clear], dense.labels[clear])
    np.testing.assert_allclose(result.margin[result.evaluated], dense.margin[result.evaluated], atol=1e-4)


def test_small_grid_is_evaluated_whole_in_one_frame(linear_clf):
    frames = list(bw.iter_slice(linear_clf, linear_plane(), extent=2.0, resolution=20, cache=False))
    assert len(frames) == 1 and frames[0].is_final and frames[0].evaluated.all()


def counting_classifier() -> tuple[bw.Classifier, CountingNet]:
    torch.manual_seed(0)
    net = CountingNet(nn.Sequential(nn.Flatten(), nn.Linear(6, 3)))
    clf = bw.Classifier(net, input_shape=(2, 3), bounds=(-10.0, 10.0))
    clf.bytes_per_sample()  # measured once by a probe pass; count only slice work from here on
    net.samples = 0
    return clf, net


@pytest.mark.parametrize("method", ["adaptive", "dense"])
def test_repeated_call_runs_no_forward_pass(method):
    clf, net = counting_classifier()
    plane = linear_plane()
    first = bw.compute_slice(clf, plane, extent=3.0, resolution=65, method=method)
    assert net.samples >= first.n_evaluated > 0
    net.samples = 0
    frames = []
    again = bw.compute_slice(clf, plane, extent=3.0, resolution=65, method=method, on_frame=frames.append)
    assert net.samples == 0 and again is first and frames == [first]
    assert not first.labels.flags.writeable
    bw.compute_slice(clf, plane, extent=3.0, resolution=66, method=method)
    assert net.samples > 0, "another resolution is another slice"


def test_cache_follows_model_changes_and_clear():
    clf, net = counting_classifier()
    plane = linear_plane()
    bw.compute_slice(clf, plane, extent=3.0, resolution=40)
    with torch.no_grad():
        net.inner[1].bias.add_(1.0)
    net.samples = 0
    bw.compute_slice(clf, plane, extent=3.0, resolution=40)
    assert net.samples > 0, "changed weights must not be served from the cache"
    bw.clear_slice_cache()
    net.samples = 0
    bw.compute_slice(clf, plane, extent=3.0, resolution=40)
    assert net.samples > 0
    net.samples = 0
    bw.compute_slice(clf, plane, extent=3.0, resolution=40, cache=False)
    assert net.samples > 0


def test_cache_is_bounded_in_bytes(linear_clf):
    plane = linear_plane()
    made = [bw.compute_slice(linear_clf, plane, extent=3.0, resolution=r, cache=False) for r in (30, 31, 32)]
    size = sum(made[0].__dict__[k].nbytes for k in ("labels", "confidence", "margin", "evaluated", "alphas", "betas"))
    size += 3 * plane.origin.numel() * 4
    assert made[0].nbytes == size
    cache = slice_cache.SliceCache(max_bytes=int(2.6 * size))
    for n, sl in enumerate(made):
        cache.put(("key", n), linear_clf, sl)
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes
    assert cache.get(("key", 0), linear_clf) is None, "the oldest entry goes first"
    assert cache.get(("key", 2), linear_clf) is made[2]


def test_cancel_before_start_and_between_levels():
    clf, net = counting_classifier()
    plane = linear_plane()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(bw.SliceCancelled):
        bw.compute_slice(clf, plane, extent=3.0, resolution=129, cancel=cancel)
    assert net.samples == 0
    cancel.clear()
    frames = []

    def stop_after_first(frame: bw.PlaneSlice) -> None:
        frames.append(frame)
        cancel.set()

    with pytest.raises(bw.SliceCancelled):
        bw.compute_slice(clf, plane, extent=3.0, resolution=129, cancel=cancel, on_frame=stop_after_first)
    assert len(frames) == 1 and not frames[0].is_final
    cancel.clear()
    net.samples = 0
    bw.compute_slice(clf, plane, extent=3.0, resolution=129, cancel=cancel)
    assert net.samples > 0, "a cancelled computation must not be cached"


def test_cancel_from_another_thread_stops_a_dense_slice(digits):
    clf, data = digits
    plane = bw.Plane.through(data.split("test")[0][0], torch.randn(1, 8, 8), torch.randn(1, 8, 8))
    cancel = threading.Event()
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    with pytest.raises(bw.SliceCancelled):
        # Many small chunks: cancel is checked between them.
        bw.compute_slice(
            clf, plane, extent=3.0, resolution=400, method="dense", cancel=cancel, memory_budget=2**16, cache=False
        )
    timer.join()


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"method": "quadtree"}, ValueError, "`method`"),
        ({"cancel": object()}, TypeError, "`cancel`"),
        ({"on_frame": 3}, TypeError, "`on_frame`"),
        ({"clip": "yes"}, TypeError, "`clip`"),
        ({"cache": "no"}, TypeError, "`cache`"),
        ({"precision": "int8"}, ValueError, "`precision`"),
        ({"memory_budget": 0}, ValueError, "`memory_budget`"),
        ({"resolution": 1}, ValueError, "`resolution`"),
    ],
)
def test_bad_arguments_are_named(linear_clf, kwargs, error, name):
    with pytest.raises(error, match=name):
        bw.compute_slice(linear_clf, linear_plane(), extent=3.0, **kwargs)
    if "on_frame" not in kwargs:
        with pytest.raises(error, match=name):
            bw.iter_slice(linear_clf, linear_plane(), extent=3.0, **kwargs)  # checked at the call, not at next()
