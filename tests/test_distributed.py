"""Dataset-wide analyses on a Dask LocalCluster equal the in-process run: shards, faults, resume, a store on disk."""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import boundary_widgets as bw
from boundary_widgets.core import dct
from boundary_widgets.core.analysis import (
    band_margins,
    borderline_pairs,
    borderline_samples,
    curvature_score,
    curvature_spectra,
    curvature_spectrum,
)
from boundary_widgets.core.distributed import ShardError, Sharding, merge_results, read_shard, read_store

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

N = 64


@pytest.fixture
def client():
    """A 2-process LocalCluster for one test; closed, and every worker process checked gone, even when it fails."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    client = distributed.Client(cluster)
    pids = set(client.run(os.getpid).values())
    try:
        yield client
    finally:
        try:
            pids |= set(client.run(os.getpid).values())  # workers started since (a killed one's replacement)
        finally:
            client.close()
            cluster.close()
        deadline = time.monotonic() + 20
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = {pid for pid in alive if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"}
            time.sleep(0.1)
        assert not alive, f"worker processes left running: {sorted(alive)}"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """In-process references with one torch thread, as the workers run (threads_per_worker=1).

    Another thread count changes the order of float sums in the convolutions; targeted DeepFool
    with clipping amplifies those last bits (9e-5 in borderline samples, and an iteration count
    that differs, between 1 and 2 threads in one process).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    clf, data = bw.zoo.load("digits-cnn", device="cpu")
    return clf, data


def _test_images(data, n=N):
    return data.images[torch.as_tensor(data.test_indices[:n])]


def assert_same(actual, expected, where="result", *, atol=1e-6):
    """Equal field by field: labels, counts, flags and names exactly; floats to float precision."""
    assert type(actual) is type(expected), where
    if isinstance(expected, list | tuple):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{i}]", atol=atol)
    elif isinstance(expected, dct.Band):
        assert repr(actual) == repr(expected), where
    elif dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            assert_same(getattr(actual, field.name), getattr(expected, field.name), f"{where}.{field.name}", atol=atol)
    elif isinstance(expected, torch.Tensor | np.ndarray):
        a, e = np.asarray(actual), np.asarray(expected)
        assert a.shape == e.shape and a.dtype == e.dtype, where
        if np.issubdtype(e.dtype, np.floating):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=atol, err_msg=where)
        else:
            np.testing.assert_array_equal(a, e, err_msg=where)
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-5, abs=atol, nan_ok=True), where
    else:
        assert actual == expected, where


def _cheap_bands(clf):
    return dct.bands(clf.input_shape)[::2]  # the low and a high band: two DeepFools per image


def test_band_margins_equal_in_process_whatever_the_shard_size(client, digits):
    clf, data = digits
    images = _test_images(data)
    options = {"bands": _cheap_bands(clf), "max_iter": 30}
    expected = band_margins(clf, images, **options)
    assert expected.converged.any() and len(np.unique(expected.labels)) == 10
    for shard_size in (1, 7, N + 5):
        actual = band_margins(clf, images, **options, executor=Sharding(client, shard_size=shard_size))
        assert_same(actual, expected, f"band_margins (shard_size={shard_size})")
    # A plain Client picks its own shard size; a progress bar counts images.
    seen = []
    actual = band_margins(clf, images, **options, executor=client, progress=lambda done, total: seen.append(done))
    assert_same(actual, expected)
    assert seen[-1] == N and seen == sorted(seen)

    # The workers keep the classifier between runs, but see the user's in-place edit of its weights.
    net = copy.deepcopy(clf.net)
    mine = bw.Classifier(net, input_shape=clf.input_shape, bounds=clf.bounds)
    assert_same(band_margins(mine, images, **options, executor=client), expected)
    with torch.no_grad():
        next(net.parameters()).mul_(0.5)
    edited = band_margins(mine, images, **options)
    assert not np.allclose(edited.margins, expected.margins)
    assert_same(band_margins(mine, images, **options, executor=client), edited, "after an in-place edit")


def _in_process_by_shard(function, clf, shard_size, batches, *args, **options):
    """The in-process function run on the cluster's shards and merged: the same batches, so the same float sums.

    Convolutions pick their kernels, and so their summation order, by batch size: on some CPUs a batch of 9
    and a batch of 64 differ in the last bits, and the iterative methods (DeepFool, finite-difference
    curvature, bisection) amplify those bits to 1e-5 .. 1e-3. The cluster must equal the in-process function
    on the same batches to float precision, on any CPU.
    """
    n = len(batches[0])
    parts = [
        function(clf, *(b[i : i + shard_size] for b in batches), *args, **options) for i in range(0, n, shard_size)
    ]
    return merge_results(parts)


def test_curvature_deepfool_borderline_and_paths_equal_in_process(client, digits):
    clf, data = digits
    images = _test_images(data)
    assert_same(
        curvature_score(clf, images, n_directions=8, executor=Sharding(client, shard_size=7)),
        _in_process_by_shard(curvature_score, clf, 7, [images], n_directions=8),
        "curvature_score",
    )
    assert_same(
        bw.deepfool(clf, images, max_iter=20, executor=Sharding(client, shard_size=9)),
        _in_process_by_shard(bw.deepfool, clf, 9, [images], max_iter=20),
        "deepfool",
    )
    few = images[:4]  # the dense spectrum costs d = 64 Hessian-vector products per image, one image at a time
    spectra = curvature_spectra(clf, few, k=3, executor=Sharding(client, shard_size=3))
    assert_same(spectra, [curvature_spectrum(clf, x, k=3) for x in few], "curvature_spectra")

    # Borderline samples for one pair, over 64 digits predicted as the source class.
    predicted = clf.predict(data.images)
    threes = data.images[predicted == 3][:N]
    actual = borderline_samples(clf, threes, 3, 8, executor=Sharding(client, shard_size=7))
    assert actual.success.sum() > 10 and actual.iterations.max() > 5
    assert_same(actual, _in_process_by_shard(borderline_samples, clf, 7, [threes], 3, 8), "borderline_samples")

    # Connected paths over 64 digit pairs of one class, and over 64 pairs of the moons model whose straight
    # lines leave the class, so that anchors are pulled back by DeepFool batched across pairs.
    twos = data.images[predicted == 2]
    pairs = (twos[:N], twos.flip(0)[:N])
    options = {"max_depth": 3, "samples_per_segment": 8}
    assert_same(
        bw.find_paths(clf, *pairs, **options, executor=Sharding(client, shard_size=7)),
        _in_process_by_shard(bw.find_paths, clf, 7, pairs, **options),
        "find_paths digits",
    )
    moons, points = bw.zoo.load("moons-mlp", device="cpu")
    zeros = points.images[moons.predict(points.images) == 0]
    options = {"max_depth": 4, "samples_per_segment": 16}
    actual = bw.find_paths(moons, zeros[:N], zeros.flip(0)[:N], **options, executor=Sharding(client, shard_size=5))
    assert sum(path.n_anchors for path in actual) > 10
    assert_same(
        actual,
        _in_process_by_shard(bw.find_paths, moons, 5, (zeros[:N], zeros.flip(0)[:N]), **options),
        "find_paths moons",
    )


def _digits_classifier(device):
    return bw.zoo.load("digits-cnn", device=device)[0]


def test_all_pairs_of_a_class_list_and_a_classifier_factory(client, digits):
    clf, data = digits
    images = _test_images(data)
    expected = borderline_pairs(clf, images, [3, 5, 8])
    assert sorted(expected) == [(3, 5), (3, 8), (5, 3), (5, 8), (8, 3), (8, 5)]
    predicted = clf.predict(images)
    assert_same(expected[5, 8], borderline_samples(clf, images[predicted == 5], 5, 8))
    # One shard per pair: the same batches as in-process, so exact (see the borderline note above).
    actual = borderline_pairs(clf, images, [3, 5, 8], executor=Sharding(client, shard_size=N))
    assert sorted(actual) == sorted(expected)
    for pair in expected:
        assert_same(actual[pair], expected[pair], f"pair {pair}")

    # A factory builds the classifier on each worker instead of sending it; this test module is not importable
    # on the workers, so its function travels by value (as a notebook's does).
    cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        options = {"bands": _cheap_bands(clf), "max_iter": 30}
        actual = band_margins(
            clf, images, **options, executor=Sharding(client, shard_size=16, clf_factory=_digits_classifier)
        )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert_same(actual, band_margins(clf, images, **options), "band_margins with clf_factory")

    # At scale: a random-weight 1000-class conv net at 3×64×64 with BatchNorm and mean/std normalisation.
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, stride=2, padding=2),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(128, 1000),
    )
    large = bw.Classifier(net, input_shape=(3, 64, 64), mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    pictures = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    options = {"bands": dct.bands(large.input_shape)[:1], "max_iter": 5}
    expected = band_margins(large, pictures, **options)
    assert expected.converged.any()
    assert_same(
        band_margins(large, pictures, **options, executor=Sharding(client, shard_size=2)), expected, "1000 classes"
    )


def test_a_worker_killed_mid_run_costs_only_a_retry(client, digits):
    clf, data = digits
    images = _test_images(data)
    options = {"bands": _cheap_bands(clf), "max_iter": 30}
    expected = band_margins(clf, images, **options)
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker(done, total):
        if killed:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            busy = [address for address, keys in client.processing().items() if keys and address in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
                return
            time.sleep(0.01)

    actual = band_margins(clf, images, **options, executor=Sharding(client, shard_size=2), progress=kill_a_busy_worker)
    assert killed, "no worker was busy to be killed"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == "zombie"
    assert_same(actual, expected, "band_margins after a worker died")


def test_resume_computes_only_the_missing_shards(client, digits, tmp_path):
    clf, data = digits
    images = _test_images(data)
    options = {"bands": _cheap_bands(clf), "max_iter": 30}
    expected = band_margins(clf, images, **options)
    store = tmp_path / "margins"
    stop = threading.Event()

    def interrupt(done, total):
        if done >= 24:
            stop.set()

    with pytest.raises(bw.Cancelled):
        band_margins(
            clf,
            images,
            **options,
            executor=Sharding(client, shard_size=8, store=store),
            progress=interrupt,
            cancel=stop,
        )
    finished = sorted(store.glob("shard-*.npz"))
    assert 3 <= len(finished) < 8
    # The files are plain NumPy archives: no kit, no pickle needed to read them.
    with np.load(finished[0], allow_pickle=False) as shard:
        start, end = (int(part) for part in finished[0].stem.split("-")[1:])
        np.testing.assert_array_equal(shard["labels"], expected.labels[start:end])
        np.testing.assert_allclose(shard["margins"], expected.margins[start:end], rtol=1e-5)

    # Shards already running when the run was cancelled finish on their worker (unwritten): wait for them.
    deadline = time.monotonic() + 30
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    with distributed.get_task_stream(client) as stream:
        actual = band_margins(clf, images, **options, executor=Sharding(client, store=store))
    computed = [task for task in stream.data if task["key"].startswith("band_margins-")]
    assert len({task["key"].split("-")[1] for task in computed}) == 1, "tasks of one run only"
    assert len(computed) == 8 - len(finished)
    assert_same(actual, expected, "resumed band_margins")
    assert_same(read_store(store), expected, "read_store")
    assert_same(read_shard(finished[0]), band_margins(clf, images[start:end], **options), "read_shard")

    with pytest.raises(ValueError, match=r"`store`.*another run"):
        band_margins(clf, images, bands=_cheap_bands(clf), max_iter=31, executor=Sharding(client, store=store))
    with pytest.raises(ValueError, match="`shard_size` must be 8"):
        band_margins(clf, images, **options, executor=Sharding(client, shard_size=4, store=store))


class _Poisoned(torch.nn.Module):
    """The digits network, raising on any batch that holds an image whose first pixel is exactly 0.125."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        if bool((x.flatten(1)[:, 0] == 0.125).any()):
            raise RuntimeError("a poisoned image")
        return self.net(x)


def test_an_image_that_raises_is_named_and_the_other_results_kept(client, digits, tmp_path):
    clf, data = digits
    images = _test_images(data, 24).clone()
    images[13, 0, 0, 0] = 0.125
    poisoned = bw.Classifier(_Poisoned(clf.net), input_shape=clf.input_shape)
    options = {"bands": _cheap_bands(clf), "max_iter": 30}
    store = tmp_path / "margins"
    cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the model's class travels by value
    try:
        with pytest.raises(ShardError, match="1 of 24 images failed") as caught:
            band_margins(poisoned, images, **options, executor=Sharding(client, shard_size=8, store=store))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    error = caught.value
    [failure] = error.failures
    assert (failure.index, type(failure.error), str(failure.error)) == (13, RuntimeError, "a poisoned image")
    assert error.__cause__ is failure.error and "in forward" in failure.traceback  # where it raised, on the worker
    keep = np.delete(np.arange(24), 13)
    np.testing.assert_array_equal(error.indices, keep)
    assert_same(error.partial, band_margins(clf, images[keep], **options), "partial")
    assert sorted(path.name for path in store.glob("shard-*.npz")) == [
        "shard-00000000-00000008.npz",
        "shard-00000016-00000024.npz",
    ]


def test_the_store_round_trips_every_result_without_pickle(digits, tmp_path):
    from boundary_widgets.core.distributed.store import RunKey, write_shard

    clf, data = digits
    images = _test_images(data, 6)
    moons, points = bw.zoo.load("moons-mlp", device="cpu")
    zeros = points.images[moons.predict(points.images) == 0]
    results = {
        "band_margins": band_margins(clf, images, bands=_cheap_bands(clf), max_iter=10),
        "deepfool": bw.deepfool(clf, images, max_iter=10),
        "curvature_score": curvature_score(clf, images, n_directions=4),
        "curvature_spectra": curvature_spectra(clf, images[:2], k=2, dense_limit=8),  # NaN flat_share
        "borderline": borderline_samples(clf, images, 3, 8),  # failures named by strings
        "paths": bw.find_paths(moons, zeros[:6], zeros.flip(0)[:6], max_depth=1),  # reasons None or text
    }
    assert any(path.reason for path in results["paths"]) and any(path.reason is None for path in results["paths"])
    for name, result in results.items():
        path = tmp_path / f"{name}.npz"
        rows = len(result) if isinstance(result, list) else 6
        write_shard(path, result, RunKey(name, "options", "model", "inputs"), "inputs", 0, rows)
        with np.load(path, allow_pickle=False) as archive:
            assert {"__result__", "__meta__"} <= set(archive.files)
        assert_same(read_shard(path), result, name)


def test_bad_arguments_are_refused_before_any_work(digits):
    clf, data = digits
    images = _test_images(data, 4)
    with pytest.raises(TypeError, match=r"`executor` must be a distributed\.Client"):
        band_margins(clf, images, executor="tcp://127.0.0.1:8786")

    def refuse(*args, **kwargs):
        raise AssertionError("work was sent to the cluster")

    fake = type("FakeClient", (), {"submit": refuse, "scatter": refuse, "scheduler_info": lambda self: {}})()
    with pytest.raises(ValueError, match="`max_iter` must be >= 1"):
        band_margins(clf, images, max_iter=0, executor=fake)  # checked in the client: nothing submitted
    with pytest.raises(ValueError, match="`shard_size` must be >= 1"):
        Sharding(fake, shard_size=0)
    with pytest.raises(ValueError, match="`dense_limit` must be >= 1"):
        curvature_spectra(clf, images, dense_limit=0, executor=fake)
    with pytest.raises(ValueError, match=r"`images` must have shape \(N, \*\(1, 8, 8\)\)"):
        band_margins(clf, images[0, 0], executor=fake)
    # The same errors as in-process, from the function's own check: a pair of two classes, a bad option.
    predicted = clf.predict(data.images)
    twos, threes = data.images[predicted == 2][:4], data.images[predicted == 3][:4]
    for executor in (None, fake):
        with pytest.raises(ValueError, match=r"must be classified as the same class \(pair 0\)"):
            bw.find_paths(clf, twos, threes, executor=executor)
        with pytest.raises(ValueError, match="`max_depth` must be >= 0"):
            bw.find_paths(clf, twos, twos, max_depth=-1, executor=executor)


def test_the_core_imports_and_runs_without_dask():
    code = (
        "import sys\n"
        "sys.modules['dask'] = sys.modules['distributed'] = None\n"
        "import boundary_widgets as bw\n"
        "from boundary_widgets.core.analysis import band_margins\n"
        "clf, data = bw.zoo.load('digits-cnn', device='cpu')\n"
        "print(band_margins(clf, data.images[:2], max_iter=5).margins.shape)\n"
        "assert 'dask' not in [name.split('.')[0] for name, m in sys.modules.items() if m is not None]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(2, 4)"
