"""The embedded models: shipped weights, deterministic retraining, the robust and the smooth model."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw
from boundary_widgets.zoo import ENTRIES, weights_path
from boundary_widgets.zoo import data as zoo_data
from boundary_widgets.zoo import train as zoo_train

REPO = Path(__file__).resolve().parents[1]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", list(ENTRIES))
def test_shipped_weights_load_weights_only_and_reach_their_accuracy(name: str) -> None:
    state = torch.load(weights_path(name), weights_only=True)
    assert all(torch.is_tensor(value) for value in state.values())
    clf, data = bw.zoo.load(name, device="cpu")
    images, labels = data.split("test")
    accuracy = (clf.predict(images) == labels).float().mean().item()
    assert accuracy >= ENTRIES[name].min_test_accuracy, (name, accuracy)


def test_retraining_writes_to_the_output_folder_and_reproduces_the_shipped_weights(tmp_path, monkeypatch) -> None:
    shipped = weights_path("moons-mlp")
    before = _digest(shipped)
    monkeypatch.chdir(tmp_path)
    zoo_train.main(["moons-mlp"])  # no --output: the current folder, never the package
    assert _digest(shipped) == before
    retrained = torch.load(tmp_path / "moons-mlp.pt", weights_only=True)
    for key, value in torch.load(shipped, weights_only=True).items():
        # Same seed, same data order: bitwise equal on the machine that trained them. Another CPU's kernels
        # round differently and training amplifies it: 1.1 % (relative L2) at most with ATen's scalar kernels
        # and oneDNN held to SSE4.1 (ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41); another seed: ~100 %.
        assert (retrained[key] - value).norm() <= 0.05 * value.norm(), key
    clf, data = bw.zoo.load("moons-mlp", device="cpu")
    entry = ENTRIES["moons-mlp"]
    net = entry.build()
    net.load_state_dict(retrained)
    again = bw.Classifier(net.eval(), input_shape=entry.input_shape, bounds=entry.bounds)
    agree = (again.predict(data.images) == clf.predict(data.images)).float().mean().item()
    assert agree >= 0.99, agree


def test_train_refuses_an_unknown_name_before_training(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        zoo_train.main(["moons-mlp", "no-such-model", "--output", str(tmp_path)])
    assert stop.value.code == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_robust_model_has_larger_margins_than_the_standard_one() -> None:
    medians = {}
    for name in ("digits-cnn", "digits-cnn-robust"):
        clf, data = bw.zoo.load(name, device="cpu")
        images = data.split("test")[0][:100]
        medians[name] = float(bw.deepfool(clf, images).distances.median())
    assert medians["digits-cnn-robust"] > 1.3 * medians["digits-cnn"], medians


def test_piecewise_linear_flags_match_the_layers() -> None:
    smooth_layers = (nn.Softplus, nn.AvgPool2d)
    kinked_layers = (nn.ReLU, nn.MaxPool2d)
    for name, entry in ENTRIES.items():
        layers = list(entry.build().modules())
        kinked = any(isinstance(layer, kinked_layers) for layer in layers)
        assert kinked == entry.piecewise_linear, name
        if not entry.piecewise_linear:
            assert any(isinstance(layer, smooth_layers) for layer in layers), name


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_smooth_model_finite_difference_curvatures_agree_with_exact(index: int) -> None:
    """No max-pooling and no ReLU: the default finite-difference step sees the same Hessian as double backward."""
    clf, data = bw.zoo.load("digits-smooth", device="cpu")
    x = data.split("test")[0][index]
    exact = bw.principal_curvatures(clf, x, k=5, mode="exact")
    finite = bw.principal_curvatures(clf, x, k=5, mode="finite_difference")
    np.testing.assert_allclose(finite.values, exact.values, rtol=0.05)
    cosines = (finite.directions.flatten(1) * exact.directions.flatten(1)).sum(1).abs()
    assert cosines.min() >= 0.95, cosines


def test_shipped_data_sets_equal_what_scikit_learn_generates() -> None:
    """The arrays in zoo/datasets/ are scripts/make_zoo_data.py's output: same values, order, dtype and split."""
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("make_zoo_data", REPO / "scripts" / "make_zoo_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    expected = script.arrays()
    for name, arrays in expected.items():
        with zoo_data.path(name).open("rb") as handle, np.load(handle) as shipped:
            assert sorted(shipped.files) == sorted(arrays), name
            for key, value in arrays.items():
                assert shipped[key].dtype == value.dtype and shipped[key].shape == value.shape, (name, key)
                np.testing.assert_array_equal(
                    shipped[key], value, err_msg=f"{name}/{key}: run scripts/make_zoo_data.py"
                )
    digits = zoo_data.digits()
    assert torch.equal(digits.images, torch.from_numpy(expected["digits"]["inputs"]))
    assert digits.images.shape == (1797, 1, 8, 8) and digits.labels.dtype == torch.int64
    dct_band = zoo_data.dct_band()
    assert np.array_equal(dct_band.train_indices, expected["dct_band"]["train"])
