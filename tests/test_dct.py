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
    torch.testing.assert_close(restricted.distances.double(), gap / projected + 1e-4, rtol=1e-4, atol=1e-6)
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


# Fast transforms (no dense basis) against the dense basis, which is built from scipy's idctn.

FAST_SHAPES = [(8, 8), (1, 28, 28), (3, 32, 32)]


def every_band(shape):
    """The default disjoint bands, overlapping ones, and an explicit rectangle."""
    return [*dct.bands(shape), *dct.bands(shape, block=4, stride=3), dct.band(shape, ((0, 1), (3, 7)))]


@pytest.mark.parametrize("shape", FAST_SHAPES)
def test_fast_projection_equals_the_dense_basis_projection_for_every_band(shape):
    v = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    flat = v.reshape(4, -1)
    for band in every_band(shape):
        basis = band.basis.double()
        dense = (flat @ basis @ basis.T).reshape(v.shape)
        torch.testing.assert_close(band.project(v), dense, atol=1e-6, rtol=0)
        torch.testing.assert_close(band.project(v.float()), dense.float(), atol=1e-5, rtol=0)
        coefficients = band.coefficients(v)
        block = (band.rows[1] - band.rows[0], band.cols[1] - band.cols[0])
        assert coefficients.shape == (4, 1 if len(shape) == 2 else shape[0], *block)
        torch.testing.assert_close(coefficients.reshape(4, -1), flat @ basis, atol=1e-6, rtol=0)
        torch.testing.assert_close(band.synthesize(coefficients), dense, atol=1e-6, rtol=0)


def test_projection_keeps_leading_dimensions_device_and_dtype():
    band = dct.band((3, 8, 8), "mid")
    v = torch.randn(2, 5, 3, 8, 8)
    projected = band.project(v)
    assert projected.shape == v.shape and projected.dtype == v.dtype and projected.device == v.device
    torch.testing.assert_close(projected[1, 3], band.project(v[1, 3]))
    torch.testing.assert_close(band.project(projected), projected, atol=1e-6, rtol=0)  # idempotent
    with pytest.raises(ValueError, match=r"`v` must have shape \(\.\.\., 3, 8, 8\)"):
        band.project(torch.randn(2, 3, 8, 9))


@pytest.mark.parametrize("shape", FAST_SHAPES)
def test_band_limited_noise_lies_in_its_band_and_is_orthogonal_to_the_others(shape):
    disjoint = dct.bands(shape)
    for band in disjoint:
        noise = band.random(seed=3)
        assert noise.shape == tuple(shape)
        torch.testing.assert_close(band.project(noise), noise, atol=1e-5, rtol=0)
        for other in disjoint:
            if other is not band:
                assert float(other.project(noise).norm()) < 1e-5 * float(noise.norm())
        # The same vector as drawing coefficients for the dense basis (seeds unchanged from before).
        coefficients = torch.randn(band.dim, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(noise.reshape(-1), band.basis @ coefficients, atol=1e-5, rtol=0)
        torch.testing.assert_close(band.random(seed=3, count=2)[0], noise)


def test_bands_never_store_a_basis_and_results_hold_descriptions(digits):
    import pickle

    band = dct.band((3, 32, 32), "low")
    _ = band.basis
    assert not any(isinstance(value, torch.Tensor) for value in vars(band).values())
    assert len(pickle.dumps(band)) < 1000
    clf, data = digits
    images = data.split("test")[0][:3]
    result = bw.analysis.band_margins(clf, images, max_iter=5)
    one_basis_bytes = 4 * clf.input_dim * result.bands[0].dim
    assert len(pickle.dumps(result)) < one_basis_bytes
    direction = bw.directions.make("dct", clf, images[0], band="high")
    assert direction.info["band"] == "high" and direction.info["band_dim"] == 4
    assert not any(isinstance(value, torch.Tensor | np.ndarray) for value in direction.info.values())


def test_band_objects_are_accepted_where_a_band_is_chosen():
    shape = (3, 8, 8)
    chosen = dct.bands(shape, block=4, stride=2)[1]
    assert dct.band(shape, chosen) is chosen
    with pytest.raises(ValueError, match="`band` is a band of images"):
        dct.band((3, 16, 16), chosen)


def test_deepfool_in_a_band_equals_the_dense_basis_path(digits):
    clf, data = digits
    images = data.split("test")[0][:12]
    for band in dct.bands(clf.input_shape):
        fast = bw.deepfool(clf, images, subspace=band)
        dense = bw.deepfool(clf, images, subspace=band.basis)
        assert torch.equal(fast.reached, dense.reached) and torch.equal(fast.iterations, dense.iterations)
        # Each step projects a float32 gradient: the fast transform and the dense basis differ by about
        # eps·sqrt(dim) of its norm, in an order of sums that depends on the CPU. The iterations add those
        # errors, each scaled by the step's conditioning (|f| / |Pw|², under 10 on these digits).
        rtol = 10 * int(fast.iterations.max()) * torch.finfo(torch.float32).eps * band.dim**0.5
        torch.testing.assert_close(fast.distances, dense.distances, rtol=rtol, atol=0)
        error = (fast.perturbations - dense.perturbations).flatten(1).norm(dim=1)
        assert (error <= rtol * dense.perturbations.flatten(1).norm(dim=1)).all(), band


def test_deepfool_takes_any_projector_and_checks_its_shape(digits):
    clf, data = digits
    images = data.split("test")[0][:4]
    band = dct.band(clf.input_shape, "mid")
    wrapped = dct.BasisProjector(band.basis, clf.input_shape)
    assert isinstance(wrapped, dct.Projector) and isinstance(band, dct.Projector) and wrapped.dim == band.dim
    torch.testing.assert_close(
        bw.deepfool(clf, images, subspace=wrapped).distances, bw.deepfool(clf, images, subspace=band).distances
    )
    noise = bw.directions.make("random", clf, images[0], subspace=wrapped, seed=1).vector
    torch.testing.assert_close(band.project(noise), noise, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="`subspace` is a band of images"):
        bw.deepfool(clf, images, subspace=dct.band((3, 8, 8), "mid"))
    with pytest.raises(ValueError, match="`subspace` must have orthonormal columns"):
        bw.deepfool(clf, images, subspace=2 * band.basis)


def test_band_margins_equal_the_dense_path_and_one_by_one(digits):
    clf, data = digits
    images = data.split("test")[0][:10]
    result = bw.analysis.band_margins(clf, images)
    for j, band in enumerate(result.bands):  # the previous implementation: DeepFool with the dense basis
        dense = bw.deepfool(clf, images, subspace=band.basis, max_iter=100, overshoot=0.02)
        np.testing.assert_allclose(result.margins[:, j], dense.distances.double().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(result.converged[:, j], dense.converged.numpy())
    single = [bw.analysis.band_margins(clf, images[i : i + 1]) for i in range(len(images))]
    np.testing.assert_allclose(result.margins, np.concatenate([s.margins for s in single]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.labels, np.concatenate([s.labels for s in single]))


class SetAfter:
    """A cancel event that reads as set from look ``looks + 1`` on."""

    def __init__(self, looks: int) -> None:
        self.looks, self.seen = looks, 0

    def is_set(self) -> bool:
        self.seen += 1
        return self.seen > self.looks


def test_band_margins_report_bands_times_images_and_stop_on_cancel(digits, monkeypatch):
    import threading

    from boundary_widgets.core.analysis import margins as margins_module

    clf, data = digits
    images = data.split("test")[0][:7]
    whole = bw.analysis.band_margins(clf, images, max_iter=20)
    monkeypatch.setattr(margins_module, "_CHUNK_ELEMENTS", 3 * clf.input_dim)  # chunks of 3 images
    reports = []
    chunked = bw.analysis.band_margins(
        clf, images, max_iter=20, progress=lambda done, total: reports.append((done, total))
    )
    np.testing.assert_allclose(chunked.margins, whole.margins, rtol=1e-5, atol=1e-6)
    assert reports == [(done, 28) for done in (3, 6, 7, 10, 13, 14, 17, 20, 21, 24, 27, 28)]

    stop = threading.Event()
    stop.set()
    with pytest.raises(bw.Cancelled):
        bw.analysis.band_margins(clf, images, cancel=stop)
    stop.clear()
    seen = []

    def cancel_after_first(done, total):
        seen.append(done)
        stop.set()

    with pytest.raises(bw.Cancelled):
        bw.analysis.band_margins(clf, images, progress=cancel_after_first, cancel=stop)
    assert seen == [3]

    seen.clear()
    with pytest.raises(bw.Cancelled):  # from the fourth look on: inside the first band's DeepFool
        bw.analysis.band_margins(clf, images, progress=lambda done, total: seen.append(done), cancel=SetAfter(3))
    assert seen == []
    with pytest.raises(TypeError, match="`progress`"):
        bw.analysis.band_margins(clf, images, progress="yes")
    with pytest.raises(ValueError, match="`bands` must be bands of the input shape"):
        bw.analysis.band_margins(clf, images, bands=dct.bands((3, 8, 8)))
    with pytest.raises(ValueError, match="`bands` must be bands of the input shape"):  # same size, other shape
        bw.analysis.band_margins(clf, images, bands=dct.bands((2, 4, 8)))


def test_dct_direction_equals_the_dense_path(digits):
    clf, data = digits
    x = data.split("test")[0][3]
    for which in ("low", "high", ((0, 3), (5, 8))):
        band = dct.band(clf.input_shape, which)
        fast = bw.directions.make("dct", clf, x, band=which)
        dense = bw.deepfool(clf, x, subspace=band.basis, max_iter=100).perturbations[0]
        torch.testing.assert_close(fast.vector, dense / dense.norm(), atol=1e-5, rtol=0)
        assert fast.info["distance"] == pytest.approx(float(dense.norm()), rel=1e-5)
        noise = bw.directions.make("dct", clf, x, band=which, method="random", seed=4)
        before = bw.directions.make("random", clf, x, subspace=band.basis, seed=4)
        torch.testing.assert_close(noise.vector, before.vector, atol=1e-6, rtol=0)
        via_band = bw.directions.make("random", clf, x, subspace=band, seed=4)
        torch.testing.assert_close(via_band.vector, before.vector, atol=1e-6, rtol=0)


def test_dct_direction_reports_images_and_stops_inside_deepfool(digits):
    clf, data = digits
    images = data.split("test")[0][:3]
    reports = []
    bw.directions.make("dct", clf, images[0], band="low", progress=lambda done, total: reports.append((done, total)))
    assert reports == [(1, 1)]
    reports.clear()
    bw.directions.make_batch("dct", clf, images, band="low", progress=lambda done, total: reports.append((done, total)))
    assert reports == [(3, 3)]
    with pytest.raises(bw.Cancelled):  # the two looks before any work pass; DeepFool's first step sees it
        bw.directions.make("dct", clf, images[0], band="low", cancel=SetAfter(2))


@pytest.mark.parametrize(
    ("shape", "block", "stride", "count"),
    [((1, 28, 28), 8, 1, 21), ((3, 32, 32), 8, 2, 13), ((3, 224, 224), 16, 16, 14), ((1, 8, 8), 2, 1, 7)],
)
def test_hold_me_tight_grids_are_the_papers_for_its_image_sizes(shape, block, stride, count):
    """MNIST 8×8 blocks stride 1 (21 bands), CIFAR-10 stride 2 (13), ImageNet 16×16 stride 16 (14); 8×8
    digits scale MNIST's grid down to 2×2 blocks of stride 1 (7 overlapping bands)."""
    assert dct.hold_me_tight_block(shape) == (block, stride)
    chosen = dct.bands(shape, grid="hold-me-tight")
    assert len(chosen) == count
    assert [b.rows for b in chosen] == [(i * stride, i * stride + block) for i in range(count)]
    assert all(b.rows == b.cols and b.dim == shape[0] * block * block for b in chosen)
    assert dct.band(shape, "high", grid="hold-me-tight").rows == chosen[-1].rows
    with pytest.raises(ValueError, match="`grid`"):
        dct.bands(shape, grid="paper")


def test_band_margins_report_both_linearisations_and_both_ways_of_counting(digits):
    """``linearise`` reaches DeepFool (the same margins as calling it per band); with too few steps
    some images do not converge: ``medians`` counts them +inf, ``reference_medians`` their last norm."""
    clf, data = digits
    images = data.split("test")[0][:8]
    chosen = dct.bands(clf.input_shape, grid="hold-me-tight")[::3]
    result = bw.analysis.band_margins(clf, images, bands=chosen, linearise="iterate", max_iter=3)
    assert result.linearise == "iterate"
    for j, band in enumerate(chosen):
        found = bw.deepfool(clf, images, subspace=band, max_iter=3, linearise="iterate")
        np.testing.assert_allclose(result.margins[:, j], found.distances.double().numpy(), rtol=1e-5, atol=1e-6)
    assert not result.converged.all()
    np.testing.assert_array_equal(result.reference_medians, np.median(result.margins, axis=0))
    assert (result.reference_medians <= result.medians).all()
