"""A store that was damaged, copied over, shared by two runs or cannot be written: shards that do not verify are
computed again, every problem is one clear error naming the file, and computed results are never lost."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import shutil
import threading

import numpy as np
import pytest
import torch

import boundary_widgets as bw
from boundary_widgets.core.analysis import curvature_score
from boundary_widgets.core.distributed import (
    PER_IMAGE,
    Sharding,
    StoreError,
    merge_results,
    read_shard,
    read_store,
)
from boundary_widgets.core.distributed import store as store_module
from boundary_widgets.core.distributed.merge import count_rows

distributed = pytest.importorskip("distributed")

OPTIONS = {"n_directions": 4}
SHARDS = ["shard-00000000-00000004.npz", "shard-00000004-00000008.npz", "shard-00000008-00000012.npz"]


@pytest.fixture(scope="module")
def client():
    """An in-process cluster (threads): the store lives in the client, whatever runs the shards."""
    client = distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0", silence_logs=logging.CRITICAL
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def digits():
    clf, data = bw.zoo.load("digits-cnn", device="cpu")
    return clf, data.images[torch.as_tensor(data.test_indices[:24])]


def expected_of(clf, images):
    """The in-process result, shard by shard (the same batches as on the cluster)."""
    return merge_results([curvature_score(clf, images[i : i + 4], **OPTIONS) for i in range(0, len(images), 4)])


def run(client, clf, images, store, **options):
    """The sharded run into ``store``: its result and the starts of the shards it computed (not read)."""
    with distributed.get_task_stream(client) as stream:
        result = curvature_score(
            clf, images, **{**OPTIONS, **options}, executor=Sharding(client, shard_size=4, store=store)
        )
    computed = sorted(int(t["key"].split("-")[-2]) for t in stream.data if t["key"].startswith("curvature_score-"))
    return result, computed


def assert_equal(actual, expected):
    assert type(actual) is type(expected)
    np.testing.assert_allclose(actual.scores, expected.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(actual.predicted, expected.predicted)
    np.testing.assert_array_equal(actual.runner_up, expected.runner_up)


@pytest.fixture
def filled(client, digits, tmp_path):
    """A complete store of 12 images in 3 shards, and the expected result."""
    clf, images = digits
    store = tmp_path / "scores"
    result, computed = run(client, clf, images[:12], store)
    assert computed == [0, 4, 8]
    expected = expected_of(clf, images[:12])
    assert_equal(result, expected)
    return store, expected


def _rewrite(path, change):
    """Rewrite a shard file's arrays, ``change(arrays)`` in place, keeping its metadata."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    change(arrays)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def test_a_complete_store_is_read_not_computed(client, digits, filled):
    clf, images = digits
    store, expected = filled
    result, computed = run(client, clf, images[:12], store)
    assert computed == []
    assert_equal(result, expected)
    assert_equal(read_store(store), expected)


def test_a_tampered_shard_is_computed_again(client, digits, filled):
    clf, images = digits
    store, expected = filled
    _rewrite(store / SHARDS[1], lambda arrays: arrays.update(scores=arrays["scores"] * 100))
    with pytest.raises(StoreError, match=f"{SHARDS[1]}.*does not match its checksum") as caught:
        read_shard(store / SHARDS[1])
    assert caught.value.path == str(store / SHARDS[1])
    result, computed = run(client, clf, images[:12], store)
    assert computed == [4]
    assert_equal(result, expected)
    assert_equal(read_shard(store / SHARDS[1]), curvature_score(clf, images[4:8], **OPTIONS))  # rewritten


def test_a_shard_copied_over_another_is_computed_again(client, digits, filled):
    clf, images = digits
    store, expected = filled
    shutil.copyfile(store / SHARDS[0], store / SHARDS[2])
    with pytest.raises(StoreError, match=f"{SHARDS[2]}.*images \\[0, 4\\)"):
        read_store(store)
    result, computed = run(client, clf, images[:12], store)
    assert computed == [8]
    assert_equal(result, expected)


def test_a_shard_with_too_few_rows_is_computed_again(client, digits, filled):
    clf, images = digits
    store, expected = filled
    key = store_module.RunKey("f", "o", "m", "i")
    two_rows = curvature_score(clf, images[4:6], **OPTIONS)
    store_module.write_shard(store / SHARDS[1], two_rows, key, "i", 4, 8)  # its checksum matches its content
    with pytest.raises(StoreError, match=f"{SHARDS[1]}.*2 rows for images \\[4, 8\\)"):
        read_shard(store / SHARDS[1])
    result, computed = run(client, clf, images[:12], store)
    assert computed == [4] and len(result.scores) == 12
    assert_equal(result, expected)


def test_without_its_manifest_a_store_never_gives_other_images_old_shards(client, digits, filled):
    clf, images = digits
    store, _ = filled
    (store / "manifest.json").unlink()
    result, computed = run(client, clf, images[12:24], store)
    assert computed == [0, 4, 8]
    assert_equal(result, expected_of(clf, images[12:24]))


def test_without_its_manifest_other_options_or_weights_are_computed_again(client, digits, filled):
    clf, images = digits
    store, _ = filled
    (store / "manifest.json").unlink()
    result, computed = run(client, clf, images[:12], store, n_directions=5)
    assert computed == [0, 4, 8]
    np.testing.assert_allclose(result.scores, curvature_score(clf, images[:12], n_directions=5).scores, rtol=1e-5)
    (store / "manifest.json").unlink()
    edited = bw.Classifier(clf.net.__class__(), input_shape=clf.input_shape)
    edited.net.load_state_dict(clf.net.state_dict())
    with torch.no_grad():
        next(edited.net.parameters()).mul_(0.5)
    result, computed = run(client, edited, images[:12], store, n_directions=5)
    assert computed == [0, 4, 8]
    assert_equal(result, merge_results([curvature_score(edited, images[i : i + 4], n_directions=5) for i in (0, 4, 8)]))


def test_a_truncated_shard_is_computed_again(client, digits, filled):
    clf, images = digits
    store, expected = filled
    path = store / SHARDS[0]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StoreError, match=f"{SHARDS[0]}.*not a readable .npz archive"):
        read_store(store)
    result, computed = run(client, clf, images[:12], store)
    assert computed == [0]
    assert_equal(result, expected)


def test_another_functions_shard_is_computed_again(client, digits, filled, tmp_path):
    clf, images = digits
    store, expected = filled
    other = tmp_path / "deepfool"
    bw.deepfool(clf, images[:12], max_iter=5, executor=Sharding(client, shard_size=4, store=other))
    shutil.copyfile(other / SHARDS[1], store / SHARDS[1])
    with pytest.raises(StoreError, match=f"{SHARDS[1]}.*deepfool"):
        read_store(store)
    result, computed = run(client, clf, images[:12], store)
    assert computed == [4]
    assert_equal(result, expected)


@pytest.mark.parametrize(
    "manifest",
    ['{"format": "boundary_widgets.shards/2", "n_images": 12, "shard_size": 0, "fingerprint": "x"}', "{not json", ""],
)
def test_an_unreadable_manifest_is_replaced_and_the_shards_that_verify_kept(client, digits, filled, manifest):
    clf, images = digits
    store, expected = filled
    (store / "manifest.json").write_text(manifest)
    with pytest.raises(StoreError, match=r"manifest\.json"):
        read_store(store)
    result, computed = run(client, clf, images[:12], store)
    assert computed == []
    assert_equal(result, expected)
    assert json.loads((store / "manifest.json").read_text())["shard_size"] == 4


def test_a_store_that_is_a_file_or_under_one_fails_before_any_work(client, digits, tmp_path):
    clf, images = digits
    (tmp_path / "file").write_text("not a folder")
    for store in (tmp_path / "file", tmp_path / "file" / "scores"):
        with distributed.get_task_stream(client) as stream:
            with pytest.raises(StoreError, match=str(store)) as caught:
                curvature_score(clf, images[:12], **OPTIONS, executor=Sharding(client, store=store))
        assert caught.value.path == str(store) and caught.value.result is None
        assert not stream.data  # nothing computed, so nothing lost


def test_an_unwritable_shard_keeps_the_whole_result_in_the_error(client, digits, filled):
    clf, images = digits
    store, expected = filled
    (store / SHARDS[1]).unlink()
    (store / SHARDS[1]).mkdir()  # something the shard cannot replace
    with pytest.raises(StoreError, match=f"cannot write the store file .*{SHARDS[1]}.*`.result`") as caught:
        run(client, clf, images[:12], store)
    assert caught.value.path == str(store / SHARDS[1])
    assert_equal(caught.value.result, expected)
    assert not list(store.glob(".*.tmp"))  # no temporary file left behind


def test_a_full_disk_or_a_read_only_store_keeps_the_whole_result_in_the_error(client, digits, filled, monkeypatch):
    clf, images = digits
    store, expected = filled
    for shard in SHARDS:
        (store / shard).unlink()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", disk_full)
        with pytest.raises(StoreError, match="No space left on device") as caught:
            run(client, clf, images[:12], store)
    assert_equal(caught.value.result, expected)
    assert not list(store.glob("*.npz")) and not list(store.glob(".*.tmp"))

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(store_module, "open", read_only, raising=False)
        with pytest.raises(StoreError, match="Read-only file system") as caught:
            run(client, clf, images[:12], store)
        assert_equal(caught.value.result, expected)
    run(client, clf, images[:12], store)  # writable again: the shards are written
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "open", read_only, raising=False)
        result, computed = run(client, clf, images[:12], store)  # a complete read-only store is only read
    assert computed == []
    assert_equal(result, expected)


def test_two_identical_runs_into_one_new_store_at_once_both_succeed(client, digits, tmp_path):
    clf, images = digits
    expected = expected_of(clf, images[:12])
    for attempt in range(3):
        store = tmp_path / f"shared-{attempt}"
        results, errors = [], []

        def one_run(store=store, results=results, errors=errors):
            try:
                results.append(
                    curvature_score(clf, images[:12], **OPTIONS, executor=Sharding(client, shard_size=4, store=store))
                )
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=one_run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert len(results) == 2
        for result in (*results, read_store(store)):
            assert_equal(result, expected)
        assert sorted(path.name for path in store.iterdir()) == ["manifest.json", *SHARDS]


@dataclasses.dataclass(frozen=True)
class _Toy:
    rows: np.ndarray = dataclasses.field(metadata=PER_IMAGE)  # (N, 2)
    names: tuple[str, ...] = dataclasses.field(metadata=PER_IMAGE)  # (N,)
    scale: float = 1.0  # the same for every shard
    grid: np.ndarray = dataclasses.field(default_factory=lambda: np.arange(3))  # (3,) the same for every shard


def test_shards_merge_by_the_per_image_fields_their_result_declares():
    a = _Toy(np.zeros((2, 2)), ("a", "b"))
    b = _Toy(np.ones((1, 2)), ("c",))
    merged = merge_results([a, b])
    np.testing.assert_array_equal(merged.rows, [[0, 0], [0, 0], [1, 1]])
    assert merged.names == ("a", "b", "c") and merged.scale == 1.0
    np.testing.assert_array_equal(merged.grid, np.arange(3))
    assert count_rows(merged) == 3
    with pytest.raises(TypeError, match=r"_Toy\.grid: it differs between shards and is not declared per image"):
        merge_results([a, dataclasses.replace(b, grid=np.arange(4))])
    with pytest.raises(ValueError, match="differ in length"):
        count_rows(_Toy(np.zeros((2, 2)), ("a",)))

    @dataclasses.dataclass(frozen=True)
    class Shared:
        value: np.ndarray

    with pytest.raises(TypeError, match="declares no per-image fields"):
        merge_results([Shared(np.zeros(1)), Shared(np.zeros(1))])
