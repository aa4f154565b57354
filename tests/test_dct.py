"""DCT bands (Hold me tight): orthonormal atoms from scipy, diagonal blocks, subspace DeepFool."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import fft
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core import dct


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8), (8, 8), (2, 6, 10)])
def test_band_bases_are_orthonormal(shape):
    for band in dct.bands(shape, block=2, stride=1):
        basis = band.basis.double()
        assert basis.shape[0] == np.prod(shape)
        torch.testing.assert_close(basis.T @ basis, torch.eye(basis.shape[1], dtype=torch.float64), atol=1e-6, rtol=0)


def test_each_atom_is_idctn_of_a_unit_coefficient():
    shape = (3, 8, 8)
    band = dct.band(shape, ((1, 3), (2, 5)))
    columns = band.basis.double().numpy().T.reshape(-1, *shape)
    expected = []
    for channel in range(3):
        for r, c in itertools.product(range(1, 3), range(2, 5)):
            unit = np.zeros((8, 8))
            unit[r, c] = 1.0
            atom = np.zeros(shape)
            atom[channel] = fft.idctn(unit, norm="ortho")
            expected.append(atom)
    np.testing.assert_allclose(columns, np.stack(expected), atol=1e-6)
    np.testing.assert_allclose(dct.dct_atom(shape, 2, 4, channel=1), expected[3 * 2 + 5], atol=1e-12)


def test_basis_transpose_gives_the_dct_coefficients():
    image = np.random.default_rng(0).random((1, 8, 8))
    band = dct.band(image.shape, (2, 5))
    coefficients = band.basis.double().numpy().T @ image.ravel()
    np.testing.assert_allclose(coefficients, fft.dctn(image[0], norm="ortho")[2:5, 2:5].ravel(), atol=1e-6)


def test_default_bands_are_disjoint_and_named():
    bands = dct.bands((1, 8, 8))
    assert [b.rows for b in bands] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert [b.name for b in bands] == ["low", "band 1", "mid", "high"]
    for first, second in itertools.combinations(bands, 2):
        assert not set(range(*first.rows)) & set(range(*second.rows))
        torch.testing.assert_close(first.basis.T @ second.basis, torch.zeros(4, 4), atol=1e-6, rtol=0)


def test_overlapping_bands_share_exactly_their_common_coefficients():
    first, second = dct.bands((1, 8, 8), block=4, stride=2)[:2]  # rows 0:4 and 2:6 share 2:4 × 2:4
    singular = torch.linalg.svdvals(first.basis.double().T @ second.basis.double())
    assert int((singular > 0.5).sum()) == 4
    assert float(singular[4:].max()) < 1e-6


def test_default_block_follows_the_image_size():
    assert dct.default_block((1, 8, 8)) == (2, 2)
    assert dct.default_block((3, 32, 32)) == (8, 8)
    assert dct.default_block((3, 224, 224)) == (16, 16)
    assert len(dct.bands((3, 224, 224))) == 14  # the paper's ImageNet split
    assert len(dct.bands((1, 28, 28), block=8, stride=1)) == 21  # the paper's MNIST split


def test_colour_bands_put_the_same_block_on_each_channel():
    band = dct.band((3, 8, 8), "low")
    columns = band.basis.numpy().T.reshape(12, 3, 64)
    per_channel = np.abs(columns).sum(axis=2) > 0
    assert (per_channel.sum(axis=1) == 1).all()
    np.testing.assert_allclose(columns[:4, 0], columns[4:8, 1], atol=0)


def test_band_selection_by_name_index_and_range():
    shape = (1, 8, 8)
    assert dct.band(shape, "high").rows == (6, 8)
    assert dct.band(shape, "mid").index == 2
    assert dct.band(shape, 1).rows == (2, 4)
    assert dct.band(shape, -1).rows == (6, 8)
    explicit = dct.band(shape, ((0, 1), (3, 8)))
    assert (explicit.rows, explicit.cols, explicit.dim, explicit.index) == ((0, 1), (3, 8), 5, None)


@pytest.mark.parametrize(
    ("shape", "which", "kwargs", "match"),
    [
        ((64,), "low", {}, "`shape` must be an image shape"),
        ((1, 8, 8), "top", {}, "`band` must be one of"),
        ((1, 8, 8), 4, {}, "`band` index must be in"),
        ((1, 8, 8), (3, 9), {}, "`band` must be one of"),
        ((1, 8, 8), "low", {"block": 9}, "`block` must be <="),
        ((1, 8, 8), "low", {"stride": 0}, "`stride` must be >= 1"),
    ],
)
def test_bad_band_arguments(shape, which, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dct.band(shape, which, **kwargs)


def test_linear_subspace_deepfool_is_the_exact_projected_distance():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    clf = bw.Classifier(net, input_shape=(1, 4, 4), bounds=(-10.0, 10.0))
    basis = dct.band((1, 4, 4), (0, 2)).basis
    x = torch.rand(6, 1, 4, 4)
    restricted = bw.deepfool(clf, x, subspace=basis, overshoot=0.0)
    free = bw.deepfool(clf, x, overshoot=0.0)
    w = (net[1].weight[1] - net[1].weight[0]).detach().double()
    gap = (clf.logits(x)[:, 1] - clf.logits(x)[:, 0]).double().abs()
    projected = (basis.double() @ (basis.double().T @ w)).norm()
    torch.testing.assert_close(restricted.distances.double(), (gap + 1e-4) / projected, rtol=1e-4, atol=1e-6)
    assert (restricted.distances >= free.distances - 1e-6).all()


def test_subspace_deepfool_stays_in_band_and_is_never_closer(digits):
    clf, data = digits
    images = data.split("test")[0][:12]
    free = bw.deepfool(clf, images)
    for band in dct.bands(clf.input_shape):
        result = bw.deepfool(clf, images, subspace=band.basis)
        flat = result.perturbations.flatten(1).double()
        inside = flat @ band.basis.double() @ band.basis.double().T
        torch.testing.assert_close(inside, flat, atol=1e-5, rtol=1e-5)
        both = result.converged & free.converged
        assert both.sum() >= 8
        assert (result.distances[both] >= free.distances[both] * 0.98).all(), band
