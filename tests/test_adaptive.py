"""Adaptive slices: agreement with dense ones, progressive frames, the cache and cancellation."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core.slices import SliceOptions, chunk_size, default_resolution, input_memory_format
from boundary_widgets.core.slices import cache as slice_cache
from boundary_widgets.core.slices import frames as slice_frames
from boundary_widgets.core.slices import options as slice_options
from boundary_widgets.core.slices import points as slice_points

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
    monkeypatch.setattr(slice_frames, "REFINE_SAFETY", 1e-9)
    monkeypatch.setattr(slice_frames, "COARSE_CORNER_SAFETY", 0.0)
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
    size = sum(
        made[0].__dict__[k].nbytes
        for k in ("labels", "confidence", "margin", "evaluated", "undefined", "alphas", "betas")
    )
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
    with pytest.raises(bw.Cancelled):
        bw.compute_slice(clf, plane, extent=3.0, resolution=129, cancel=cancel)
    assert net.samples == 0
    cancel.clear()
    frames = []

    def stop_after_first(frame: bw.PlaneSlice) -> None:
        frames.append(frame)
        cancel.set()

    with pytest.raises(bw.Cancelled):
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
    with pytest.raises(bw.Cancelled):
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


@pytest.mark.parametrize("method", ["adaptive", "dense"])
def test_results_are_read_only_whether_cached_or_not(linear_clf, method):
    fresh = bw.compute_slice(linear_clf, linear_plane(), extent=3.0, resolution=65, method=method, cache=False)
    frames = list(bw.iter_slice(linear_clf, linear_plane(), extent=3.0, resolution=65, method=method, cache=False))
    for sl in (fresh, *frames, pickle.loads(pickle.dumps(fresh))):
        for name in ("labels", "confidence", "margin", "evaluated", "alphas", "betas"):
            with pytest.raises(ValueError, match="read-only"):
                getattr(sl, name)[0] = 0


def test_progress_counts_levels_or_chunks():
    clf, net = counting_classifier()
    plane = linear_plane()
    calls = []
    adaptive = bw.compute_slice(clf, plane, extent=3.0, resolution=129, progress=lambda *c: calls.append(c))
    levels = [frame for frame in bw.iter_slice(clf, plane, extent=3.0, resolution=129, cache=False)]
    assert calls == [(k, len(levels)) for k in range(1, len(levels) + 1)] and len(levels) == 3
    calls.clear()
    bw.compute_slice(clf, plane, extent=3.0, resolution=129, progress=lambda *c: calls.append(c))
    assert calls == [(1, 1)], "a cache hit is one unit"
    calls.clear()
    budget = 7 * clf.bytes_per_sample()  # 7 points a chunk
    net.samples = 0
    bw.compute_slice(
        clf, plane, extent=3.0, resolution=20, method="dense", memory_budget=budget, progress=lambda *c: calls.append(c)
    )
    chunks = -(-400 // 7)
    assert calls == [(k, chunks) for k in range(1, chunks + 1)] and net.samples == 400
    assert adaptive.is_final
    with pytest.raises(TypeError, match="`progress`"):
        bw.compute_slice(clf, plane, extent=3.0, resolution=20, progress="yes")
    with pytest.raises(TypeError, match="`progress`"):
        bw.iter_slice(clf, plane, extent=3.0, resolution=20, progress=3)


def test_progress_bar(linear_clf):
    sl = bw.compute_slice(linear_clf, linear_plane(), extent=3.0, resolution=65, progress=True, cache=False)
    assert sl.is_final


@pytest.mark.parametrize(
    ("resolution", "message"),
    [
        (4097, "at most 4096 cells per axis"),
        ((8, 60000), "at most 4096 cells per axis"),
        (4096, "MiB of result arrays"),
        ((4096, 3900), "MiB of result arrays"),
    ],
)
def test_resolution_is_capped_before_any_work(resolution, message):
    clf, net = counting_classifier()
    with pytest.raises(ValueError, match=f"`resolution`.*{message}"):
        bw.compute_slice(clf, linear_plane(), extent=3.0, resolution=resolution)
    with pytest.raises(ValueError, match="`resolution`"):
        bw.iter_slice(clf, linear_plane(), extent=3.0, resolution=resolution)
    assert net.samples == 0
    side = int((slice_options.MAX_RESULT_BYTES / slice_options.RESULT_BYTES_PER_CELL) ** 0.5)
    assert slice_options.normalize_resolution((side, side)) == (side, side)
    assert slice_options.normalize_resolution((4096, 2)) == (4096, 2)


def test_slice_options_are_checked_and_normalised():
    options = SliceOptions(extent=2.0, resolution=5, method="dense", clip=np.bool_(True), memory_budget=np.int64(64))
    assert options.extent == ((-2.0, 2.0), (-2.0, 2.0)) and options.resolution == (5, 5)
    assert options.clip is True and options.memory_budget == 64 and type(options.memory_budget) is int
    np.testing.assert_array_equal(options.alphas, np.linspace(-2, 2, 5))
    assert options.key() == SliceOptions(extent=((-2, 2), (-2, 2)), resolution=(5, 5), method="dense", clip=True).key()
    with pytest.raises(AttributeError):
        options.method = "adaptive"
    for kwargs, name in (
        ({"extent": -1.0}, "`extent`"),
        ({"resolution": 1}, "`resolution`"),
        ({"method": "x"}, "`method`"),
        ({"precision": "half"}, "`precision`"),
        ({"memory_budget": 0}, "`memory_budget`"),
    ):
        with pytest.raises(ValueError, match=name):
            SliceOptions(**{"extent": 1.0, "resolution": 4, **kwargs})


def test_default_resolution_depends_on_the_device(linear_clf):
    assert default_resolution("cpu") == 128 and default_resolution(torch.device("cuda", 1)) == 256
    sl = bw.compute_slice(linear_clf, linear_plane(), extent=3.0)
    assert sl.resolution == (128, 128)


class FakeClassifier:
    """What chunk sizing reads from a classifier: its device and its bytes per sample."""

    def __init__(self, device: str, bytes_per_sample: int) -> None:
        self.device = torch.device(device)
        self._bytes = bytes_per_sample

    def bytes_per_sample(self) -> int:
        return self._bytes


def test_chunk_size_on_cuda_comes_from_free_memory(monkeypatch):
    asked = []

    def mem_get_info(device):
        asked.append(device)
        return 4 * 10**9, 80 * 10**9  # (free, total) bytes

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    clf = FakeClassifier("cuda:1", 10**6)
    assert chunk_size(clf) == 2000, "half of the free memory over the bytes per sample"
    assert asked == [torch.device("cuda", 1)]
    assert chunk_size(clf, 3 * 10**8) == 300, "a smaller budget wins"
    assert chunk_size(clf, 10**12) == 2000, "a larger budget cannot exceed the free memory"
    assert chunk_size(FakeClassifier("cuda", 10)) == slice_points.MAX_CHUNK_POINTS
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1000, 80 * 10**9))
    assert chunk_size(clf) == 1, "at least one point a chunk"


def test_chunk_size_on_cpu_stays_in_cache(monkeypatch):
    def no_cuda(device):
        raise AssertionError("a CPU chunk must not ask CUDA")

    monkeypatch.setattr(torch.cuda, "mem_get_info", no_cuda)
    clf = FakeClassifier("cpu", 1000)
    assert chunk_size(clf) == slice_points.CPU_CHUNK_BYTES // 1000
    assert chunk_size(clf, 10**9) == slice_points.CPU_CHUNK_BYTES // 1000
    assert chunk_size(clf, 5000) == 5
    with pytest.raises(ValueError, match="`memory_budget`"):
        chunk_size(clf, 0)
    torch.manual_seed(0)
    dense_net = nn.Sequential(nn.Flatten(), nn.Linear(768, 64), nn.ReLU(), nn.Linear(64, 3))
    conv_net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 14 * 14, 3))
    dense, conv = (bw.Classifier(net, input_shape=(3, 16, 16)) for net in (dense_net, conv_net))
    assert chunk_size(dense) == slice_points.CPU_CHUNK_BYTES // dense.bytes_per_sample()
    assert chunk_size(conv) == slice_points.CPU_CONV_CHUNK_BYTES // conv.bytes_per_sample(), "convolutions: larger"
    assert chunk_size(conv, 1000 * conv.bytes_per_sample()) == 1000


def test_channels_last_for_image_batches_on_cuda_only():
    assert input_memory_format("cuda", (3, 64, 64)) == torch.channels_last
    assert input_memory_format("cuda", (2, 3)) == torch.contiguous_format
    assert input_memory_format("cpu", (3, 64, 64)) == torch.contiguous_format


class FlattenByView(nn.Module):
    """A conv net that flattens with ``.view``, which an NHWC activation refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        return self.head(y.view(y.shape[0], -1))


@pytest.mark.parametrize("flatten", ["reshape", "view"])
def test_channels_last_path_gives_the_same_slice(monkeypatch, flatten):
    """The CUDA layout forced on the CPU: the same labels; a model that cannot take it runs in the default one."""
    torch.manual_seed(0)
    if flatten == "view":
        net = FlattenByView()
    else:
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    clf = bw.Classifier(net, input_shape=(3, 6, 6))
    plane = bw.Plane.through(torch.rand(3, 6, 6), torch.randn(3, 6, 6), torch.randn(3, 6, 6))
    settings = dict(extent=20.0, resolution=24, method="dense", cache=False)
    default = bw.compute_slice(clf, plane, **settings)
    monkeypatch.setattr(slice_points, "input_memory_format", lambda device, shape: torch.channels_last)
    nhwc = bw.compute_slice(clf, plane, **settings)
    assert len(default.classes_present) > 1
    np.testing.assert_array_equal(nhwc.labels, default.labels)
    np.testing.assert_allclose(nhwc.margin, default.margin, rtol=1e-4, atol=1e-5)
    evaluator = slice_points.PointEvaluator(clf, plane)
    expected = torch.contiguous_format if flatten == "view" else torch.channels_last
    assert evaluator.memory_format == expected, "a model that refused NHWC is not asked again"
    evaluator(np.zeros(3), np.ones(3))
    assert evaluator.memory_format == expected


def test_chunk_candidates_are_the_budget_chunk_and_powers_of_two_below():
    assert slice_points.chunk_candidates(1138) == (1138, 1024, 512, 256, 128)
    assert slice_points.chunk_candidates(1024) == (1024, 512, 256, 128, 64)
    assert slice_points.chunk_candidates(7) == (7, 4, 2, 1)
    assert slice_points.chunk_candidates(1) == (1,)


class TimedNet(nn.Module):
    """A linear model on a fake clock: a batch of ``n`` costs ``n * (1 + |log2(n / 64)|)`` ticks, so 64 is fastest."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 3)
        self.clock = [0.0]
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        self.batches.append(n)
        self.clock[0] += n * (1 + abs(np.log2(n / 64)))
        return self.linear(x.flatten(1))


def test_speed_probe_picks_the_fastest_chunk_and_remembers_it(monkeypatch):
    torch.manual_seed(0)
    net = TimedNet()
    clf = bw.Classifier(net, input_shape=(2, 3), bounds=(-10.0, 10.0))
    monkeypatch.setattr(slice_points, "time", type("FakeTime", (), {"perf_counter": lambda: net.clock[0]}))
    budget = 256 * clf.bytes_per_sample()  # chunks of at most 256 points
    plane = linear_plane()
    settings = dict(extent=3.0, resolution=128, method="dense", memory_budget=budget, cache=False)
    net.batches.clear()
    calls = []
    probed = bw.compute_slice(clf, plane, progress=lambda *c: calls.append(c), **settings)
    candidates = slice_points.chunk_candidates(256)
    probe = [size for _ in range(slice_points.PROBE_ROUNDS) for size in candidates for _ in range(256 // size)]
    assert net.batches[: len(probe)] == probe, "the probe times each candidate on 256 of the slice's own points"
    assert set(net.batches[len(probe) : -1]) == {64}
    assert sum(net.batches) == 128 * 128, "nothing is evaluated twice"
    assert [done for done, _ in calls] == sorted({done for done, _ in calls}) and calls[-1] == (64, 64)
    net.batches.clear()
    again = bw.compute_slice(clf, plane, **settings)
    assert set(net.batches) == {64}, "the fastest chunk is remembered: no second probe"
    np.testing.assert_array_equal(again.labels, probed.labels)
    np.testing.assert_allclose(again.margin, probed.margin, rtol=1e-5, atol=1e-6)
    evaluator = slice_points.PointEvaluator(clf, plane, memory_budget=budget, precision="bfloat16")
    assert not evaluator.probed and evaluator.chunk == 256, "another precision is timed on its own"


def test_first_frames_never_probe():
    torch.manual_seed(0)
    net = TimedNet()
    clf = bw.Classifier(net, input_shape=(2, 3), bounds=(-10.0, 10.0))
    budget = 256 * clf.bytes_per_sample()
    net.batches.clear()
    bw.compute_slice(clf, linear_plane(), extent=3.0, resolution=32, method="dense", memory_budget=budget, cache=False)
    frames = bw.iter_slice(clf, linear_plane(), extent=3.0, resolution=256, memory_budget=budget, cache=False)
    next(frames)
    assert set(net.batches[:-1]) == {256}, "a 32² preview and an adaptive slice's first level run in budget chunks"
    assert not slice_points.PointEvaluator(clf, linear_plane(), memory_budget=budget).probed


def test_starts_coarse_when_the_33x33_lattice_holds_many_activations():
    lattice = 33 * 33
    assert not slice_frames.starts_coarse(FakeClassifier("cpu", 31784), lattice), "digits-cnn: 35 MB"
    assert slice_frames.starts_coarse(FakeClassifier("cpu", 3 * 224 * 224 * 4), lattice), "a 224² input alone: 0.7 GB"
    assert not slice_frames.starts_coarse(FakeClassifier("cuda", 3 * 224 * 224 * 4), lattice), "a GPU runs 100× more"
    assert slice_frames.starts_coarse(FakeClassifier("cuda", 35 * 2**20), lattice), "a ResNet-18 at 224²: 38 GB"


@pytest.fixture
def slow_models(monkeypatch):
    """Every model counts as slow: adaptive slices start from the 9×9 lattice."""
    monkeypatch.setattr(slice_frames, "COARSE_LEVEL_BYTES", {"cpu": 0, "cuda": 0})


def test_slow_model_first_frame_is_a_9x9_lattice_and_the_result_agrees_with_dense(digits_plane, slow_models):
    clf, plane = digits_plane
    settings = dict(extent=3.0, resolution=129, cache=False)
    calls = []
    frames = list(bw.iter_slice(clf, plane, progress=lambda *c: calls.append(c), **settings))
    assert frames[0].n_evaluated == 81 and len(frames) == 5, "9, 17, 33, 65 and 129 per axis"
    assert np.all(np.diff([f.n_evaluated for f in frames]) >= 0) and frames[-1].is_final
    assert calls == [(k, 5) for k in range(1, 6)], "progress counts the five levels"
    dense = bw.compute_slice(clf, plane, method="dense", **settings)
    result = frames[-1]
    clear = dense.margin > 1e-3
    np.testing.assert_array_equal(result.labels[clear], dense.labels[clear])
    assert (result.labels == dense.labels).mean() >= 0.995
    assert result.n_evaluated < 0.2 * dense.labels.size
    np.testing.assert_allclose(result.margin[result.evaluated], dense.margin[result.evaluated], atol=1e-4)


def test_slow_model_still_finds_an_island_between_coarse_samples(island_plane, slow_models, monkeypatch):
    clf = bw.Classifier(IslandNet(), input_shape=(2,), bounds=(-10.0, 10.0))
    settings = dict(extent=4.0, resolution=129, cache=False)
    dense = bw.compute_slice(clf, island_plane, method="dense", **settings)
    frames = list(bw.iter_slice(clf, island_plane, **settings))
    assert frames[0].n_evaluated == 81 and not (frames[0].labels == 2).any()
    np.testing.assert_array_equal(frames[-1].labels == 2, dense.labels == 2)
    clear = dense.margin > 1e-3
    np.testing.assert_array_equal(frames[-1].labels[clear], dense.labels[clear])
    # The island's margin is 3× steeper than the slope the 9×9 lattice sees: on cells that large only
    # the any-corner guard finds it.
    monkeypatch.setattr(slice_frames, "COARSE_CORNER_SAFETY", 0.0)
    assert not (bw.compute_slice(clf, island_plane, **settings).labels == 2).any()


def one_cell(margins: tuple[float, float, float, float]) -> slice_frames.Lattice:
    """A lattice of one unit cell, one label; margins at the corners (0, 0), (1, 0), (0, 1), (1, 1) as (row, col)."""
    margin = np.array([[margins[0], margins[2]], [margins[1], margins[3]]], dtype=np.float32)
    ones = np.ones((2, 2), dtype=bool)
    return slice_frames.Lattice(np.arange(2), np.arange(2), np.zeros((2, 2), np.int64), margin, margin, ones)


def test_a_cell_is_refined_only_where_its_corner_margins_leave_room_for_a_boundary():
    axis = np.arange(2.0)
    safety = slice_frames.REFINE_SAFETY
    # One corner close to a boundary, three far from it: the discs margin / (safety × slope) cover the cell.
    assert not one_cell((0.05, 2.0, 2.0, 2.0)).cells_to_refine(axis, axis, slope=1.0).any()
    # Every corner half a cell from a boundary: the centre (0.71 from each) may hold an island.
    assert one_cell((0.5 * safety,) * 4).cells_to_refine(axis, axis, slope=1.0).all()
    # Far from every boundary: nothing to refine; steeper margins: refine.
    assert not one_cell((1.5,) * 4).cells_to_refine(axis, axis, slope=1.0).any()
    assert one_cell((1.5,) * 4).cells_to_refine(axis, axis, slope=3.0).all()
    assert not one_cell((0.0,) * 4).cells_to_refine(axis, axis, slope=0.0).any(), "a flat margin: no boundary"
    # A coarse cell is refined whenever one corner comes close, whatever the others say.
    assert one_cell((0.05, 2.0, 2.0, 2.0)).cells_to_refine(axis, axis, slope=1.0, coarse=True).all()


def _plain_dense_loop(clf: bw.Classifier, plane: bw.Plane, extent: float, resolution: int, chunk: int) -> tuple:
    """A dense slice spelled out: row-major points in chunks, one forward and one summary per chunk."""
    axis = torch.as_tensor(np.linspace(-extent, extent, resolution), dtype=torch.float32)
    a_all, b_all = axis.repeat(resolution), axis.repeat_interleave(resolution)
    origin, u, v = (t.reshape(1, -1) for t in plane.to(clf.device))
    labels, confidence, margin = [], [], []
    with torch.no_grad():
        for a, b in zip(a_all.split(chunk), b_all.split(chunk), strict=True):
            x = torch.addcmul(torch.addcmul(origin, a[:, None], u), b[:, None], v).reshape(-1, *clf.input_shape)
            logits = clf.forward(x).float()
            top2 = logits.topk(2, dim=1)
            labels.append(top2.indices[:, 0])
            confidence.append(torch.softmax(logits, dim=1).gather(1, top2.indices[:, :1])[:, 0])
            margin.append(top2.values[:, 0] - top2.values[:, 1])
    shape = (resolution, resolution)
    return tuple(torch.cat(parts).numpy().reshape(shape) for parts in (labels, confidence, margin))


@pytest.mark.parametrize("model", ["digits-cnn", "1000-class conv"])
def test_a_dense_slice_equals_the_plain_chunk_loop_bit_for_bit(digits, model):
    if model == "digits-cnn":
        clf, x, budget = digits[0], digits[1].split("test")[0][0], None
    else:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 1000)).eval()
        clf, x = bw.Classifier(net, input_shape=(3, 16, 16)), torch.rand(3, 16, 16)
        budget = 100 * clf.bytes_per_sample()  # chunks of 100 points, summarised a few at a time
    generator = torch.Generator().manual_seed(0)
    plane = bw.Plane.through(x, torch.randn(x.shape, generator=generator), torch.randn(x.shape, generator=generator))
    sl = bw.compute_slice(clf, plane, extent=4.0, resolution=40, method="dense", memory_budget=budget, cache=False)
    chunk = slice_points.PointEvaluator(clf, plane, memory_budget=budget).chunk
    labels, confidence, margin = _plain_dense_loop(clf, plane, 4.0, 40, chunk)
    assert np.unique(labels).size > 1, "the plane crosses a boundary"
    np.testing.assert_array_equal(sl.labels, labels)
    np.testing.assert_array_equal(sl.confidence, confidence)
    np.testing.assert_array_equal(sl.margin, margin)
