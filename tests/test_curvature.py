"""Principal curvature of the boundary against a closed form, on ReLU and smooth models."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core import curvature

DIM = 12


class QuadraticGap(nn.Module):
    """Logits ``[F(x), 0]`` with ``F(x) = ½ xᵀAx + bᵀx + c``: a quadric boundary with Hessian A."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
        spectrum = np.linspace(-1.5, 1.2, DIM)  # distinct: well-defined eigenvectors
        self.register_buffer("a", torch.tensor(q @ np.diag(spectrum) @ q.T, dtype=torch.float32))
        self.register_buffer("b", torch.tensor(rng.standard_normal(DIM), dtype=torch.float32))

    def forward(self, x):
        x = x.flatten(1)
        gap = 0.5 * ((x @ self.a) * x).sum(1) + x @ self.b + 0.8
        return torch.stack([gap, torch.zeros_like(gap)], dim=1)


@pytest.fixture
def quadratic():
    net = QuadraticGap()
    return net, bw.Classifier(net, input_shape=(DIM,), bounds=(-10.0, 10.0))


def closed_form(net: QuadraticGap, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of P A P / ‖Az + b‖ at z, by |value| descending."""
    a = net.a.double().numpy()
    gradient = a @ z.double().numpy() + net.b.double().numpy()
    normal = gradient / np.linalg.norm(gradient)
    projector = np.eye(DIM) - np.outer(normal, normal)
    values, vectors = np.linalg.eigh(projector @ a @ projector / np.linalg.norm(gradient))
    order = np.argsort(-np.abs(values))
    return values[order], vectors[:, order]


@pytest.mark.parametrize(("mode", "tolerance"), [("exact", 1e-5), ("finite_difference", 1e-3)])
def test_quadratic_matches_closed_form(quadratic, mode, tolerance):
    """Exact mode to 1e-5 relative; central differences are exact on a quadratic up to float32 rounding
    of gradients divided by 2h, stated as 1e-3 relative."""
    net, clf = quadratic
    x = torch.zeros(DIM)
    result = curvature.principal_curvatures(clf, x, k=4, mode=mode, tol=1e-10)
    assert result.converged and (result.original, result.reached) == (0, 1)
    assert abs(float(clf.logits(result.boundary_point)[0])) < 0.05, "z must lie just past the boundary F = 0"
    values, vectors = closed_form(net, result.boundary_point)
    np.testing.assert_allclose(result.values, values[:4], rtol=tolerance, atol=tolerance * 1e-2)
    directions = result.directions.double().numpy()
    cosines = np.abs(np.sum(directions * vectors[:, :4].T, axis=1))
    np.testing.assert_allclose(cosines, 1.0, atol=10 * tolerance)


def test_quadratic_which_selects_the_ends_of_the_spectrum(quadratic):
    net, clf = quadratic
    x = torch.zeros(DIM)
    values, _ = closed_form(net, curvature.principal_curvatures(clf, x, k=1, mode="exact").boundary_point)
    positive = curvature.principal_curvatures(clf, x, k=3, which="positive", mode="exact", tol=1e-10).values
    negative = curvature.principal_curvatures(clf, x, k=3, which="negative", mode="exact", tol=1e-10).values
    np.testing.assert_allclose(positive, np.sort(values)[::-1][:3], rtol=1e-5)
    np.testing.assert_allclose(negative, np.sort(values)[:3], rtol=1e-5)


def test_directions_are_unit_and_tangent(digits):
    clf, data = digits
    result = curvature.principal_curvatures(clf, data.split("test")[0][0], k=4)
    flat = result.directions.flatten(1).double()
    torch.testing.assert_close(flat @ flat.T, torch.eye(4, dtype=torch.float64), atol=1e-5, rtol=0)
    assert float((flat @ result.normal.flatten().double()).abs().max()) < 1e-5
    assert result.directions.shape == (4, *clf.input_shape)
    assert result.step == pytest.approx(np.sqrt(64) / 512 * 10)


def test_relu_finite_difference_curvature_is_nonzero_and_exact_mode_refuses(digits):
    clf, data = digits
    x = data.split("test")[0][0]
    result = curvature.principal_curvatures(clf, x, k=3)
    assert np.abs(result.values).max() > 0.05
    with pytest.raises(ValueError, match="finite_difference"):
        curvature.principal_curvatures(clf, x, k=3, mode="exact")


def test_small_step_finite_difference_approaches_exact_on_a_smooth_model():
    """A softplus MLP (smooth everywhere, unlike the zoo's max-pooled digits-smooth): central
    differences with h = 1e-2 agree with double backward to O(h²)."""
    torch.manual_seed(2)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Softplus(), nn.Linear(32, 3))
    clf = bw.Classifier(net, input_shape=(1, 4, 4), bounds=(0.0, 1.0))
    x = torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(0))
    exact = curvature.principal_curvatures(clf, x, k=3, mode="exact", tol=1e-8)
    close = curvature.principal_curvatures(clf, x, k=3, step=1e-2, tol=1e-8)
    np.testing.assert_allclose(close.values, exact.values, rtol=1e-3)
    assert np.abs(exact.values).max() > 1e-3


def test_hvp_count_is_the_number_of_products(digits, monkeypatch):
    """Each finite-difference product is two points (z ± h v) of a forward pass; products share batches."""
    clf, data = digits
    batches, inside = [], []
    forward, products = clf.forward, curvature.BoundaryHessian._products

    def counting_products(self, block):
        inside.append(True)
        try:
            return products(self, block)
        finally:
            inside.pop()

    monkeypatch.setattr(clf, "forward", lambda x: (batches.append(x.shape[0]) if inside else None) or forward(x))
    monkeypatch.setattr(curvature.BoundaryHessian, "_products", counting_products)
    result = curvature.principal_curvatures(clf, data.split("test")[0][1], k=3)
    assert result.n_hvp >= 3
    assert sum(batches) == 2 * result.n_hvp
    assert 2 * 3 in batches, "the residual check applies the operator to the k directions in one batch"


def test_reproducible_by_seed(digits):
    clf, data = digits
    x = data.split("test")[0][2]
    first = curvature.principal_curvatures(clf, x, k=3, seed=4)
    again = curvature.principal_curvatures(clf, x, k=3, seed=4)
    np.testing.assert_array_equal(first.values, again.values)
    torch.testing.assert_close(first.directions, again.directions, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 64}, ValueError, "`k` must be < the input dimension 64"),
        ({"k": 0}, ValueError, "`k` must be >= 1"),
        ({"k": 2.5}, TypeError, "`k` must be an int"),
        ({"which": "largest"}, ValueError, "`which` must be one of"),
        ({"mode": "dense"}, ValueError, "`mode` must be one of"),
        ({"step": 0}, ValueError, "`step` must be a number > 0"),
        ({"tol": -1}, ValueError, "`tol` must be"),
    ],
)
def test_bad_parameters(digits, kwargs, error, match):
    clf, data = digits
    with pytest.raises(error, match=match):
        curvature.principal_curvatures(clf, data.split("test")[0][0], **kwargs)


def test_residuals_are_reported_and_small_on_a_quadratic(quadratic):
    net, clf = quadratic
    result = curvature.principal_curvatures(clf, torch.zeros(DIM), k=3, mode="exact", tol=1e-10)
    assert result.lanczos_converged
    assert result.residuals.shape == (3,)
    assert result.residuals.max() < 1e-5 * np.abs(result.values).max()
    # The residual is ‖A v − λ v‖: a wrong pair has a large one.
    a = net.a.double().numpy()
    z = result.boundary_point.double().numpy()
    gradient = a @ z + net.b.double().numpy()
    normal = gradient / np.linalg.norm(gradient)
    projector = np.eye(DIM) - np.outer(normal, normal)
    operator = projector @ a @ projector / np.linalg.norm(gradient)
    v = result.directions.double().numpy()
    np.testing.assert_allclose(
        np.linalg.norm(v @ operator - v * result.values[:, None], axis=1), result.residuals, atol=1e-6
    )


def test_relu_finite_difference_residuals_say_the_operator_is_only_nearly_linear(digits):
    clf, data = digits
    result = curvature.principal_curvatures(clf, data.split("test")[0][0], k=3)
    assert np.all(np.isfinite(result.residuals)) and result.residuals.max() > 0


def test_progress_counts_hessian_vector_products(digits):
    clf, data = digits
    calls = []
    result = curvature.principal_curvatures(
        clf, data.split("test")[0][1], k=3, progress=lambda done, total: calls.append((done, total))
    )
    assert calls[-1][0] == result.n_hvp
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})  # increasing, one call per batch
    assert all(total is not None and total >= done for done, total in calls)
    assert len(calls) >= result.n_hvp - 3  # one call per product; the k residual products share one


def test_cancel_from_progress_stops_between_products(digits):
    clf, data = digits
    cancel = threading.Event()
    seen = []

    def stop_after_five(done, total):
        seen.append(done)
        if done >= 5:
            cancel.set()

    with pytest.raises(bw.Cancelled):
        curvature.principal_curvatures(clf, data.split("test")[0][1], k=3, progress=stop_after_five, cancel=cancel)
    assert seen[-1] == 5


def test_spectrum_is_one_pipeline_one_deepfool(digits, monkeypatch):
    """curvature_spectrum runs DeepFool once and no extra Lanczos: its products are only the spectrum's."""
    import importlib

    module = importlib.import_module("boundary_widgets.core.curvature")
    clf, data = digits
    runs = []
    original = module.deepfool
    monkeypatch.setattr(module, "deepfool", lambda *a, **k: runs.append(1) or original(*a, **k))
    calls = []
    spectrum = bw.analysis.curvature_spectrum(
        clf, data.split("test")[0][1], k=2, progress=lambda done, total: calls.append((done, total))
    )
    assert len(runs) == 1
    assert spectrum.complete and spectrum.n_hvp == clf.input_dim == calls[-1][0] == calls[-1][1]
    assert spectrum.residuals.shape == spectrum.values.shape and spectrum.lanczos_converged
    cancel = threading.Event()
    reports = []

    def stop_at_ten(done, total):
        reports.append(done)
        if done >= 10:
            cancel.set()

    with pytest.raises(bw.Cancelled):
        bw.analysis.curvature_spectrum(clf, data.split("test")[0][1], progress=stop_at_ten, cancel=cancel)
    assert reports[-1] < 64, "stopped between batches of products, long before the 64 of the dense spectrum"


def test_lanczos_spectrum_takes_both_ends_in_one_run(quadratic):
    _, clf = quadratic
    dense = bw.analysis.curvature_spectrum(clf, torch.zeros(DIM), k=2, mode="exact")
    lanczos = bw.analysis.curvature_spectrum(clf, torch.zeros(DIM), k=2, mode="exact", dense_limit=4, tol=1e-10)
    assert not lanczos.complete and lanczos.lanczos_converged
    np.testing.assert_allclose(lanczos.largest, dense.largest, rtol=1e-5)
    np.testing.assert_allclose(lanczos.smallest, dense.smallest, rtol=1e-5)
    assert lanczos.residuals.max() < 1e-5
    assert lanczos.n_hvp < DIM * 10


def test_spectrum_averaged_over_bases_is_the_closed_form_on_a_quadratic_whatever_the_dense_limit(quadratic):
    """A whole tangent basis has UUᵀ = P, so on a quadratic (finite differences exact up to float32
    rounding, 1e-3 relative) the averaged matrix is P A P / ‖∇F‖: its whole spectrum, even above `dense_limit`."""
    net, clf = quadratic
    spectrum = bw.analysis.curvature_spectrum(clf, torch.zeros(DIM), k=2, n_bases=2, dense_limit=4)
    values, _ = closed_form(net, spectrum.boundary_point)
    tangent = np.sort(np.delete(values, np.argmin(np.abs(values))))[::-1]  # the normal's 0 dropped
    assert spectrum.complete and spectrum.n_bases == 2 and spectrum.n_hvp >= 2 * (DIM - 1)
    np.testing.assert_allclose(spectrum.values, tangent, rtol=1e-3, atol=1e-4)
    assert np.isfinite(spectrum.flat_share)


def test_spectrum_averaged_over_bases_moves_less_with_the_seed_than_one_basis_on_relu(digits):
    """digits-cnn is piecewise linear: the products along one random basis depend on the basis (seed);
    averaged over 8 bases, the ends of the spectrum move less between seeds."""
    clf, data = digits
    x = data.split("test")[0][0]

    def ends(n_bases: int, seed: int) -> np.ndarray:
        spectrum = bw.analysis.curvature_spectrum(clf, x, k=3, n_bases=n_bases, seed=seed)
        return np.concatenate([spectrum.largest, spectrum.smallest])

    one = np.abs(ends(1, 0) - ends(1, 1)).max()
    eight = np.abs(ends(8, 0) - ends(8, 1)).max()
    assert eight < one


def test_spectrum_bases_are_refused_in_exact_mode_and_past_the_size_limit(quadratic):
    _, clf = quadratic
    with pytest.raises(ValueError, match="`n_bases` averages finite differences"):
        bw.analysis.curvature_spectrum(clf, torch.zeros(DIM), mode="exact", n_bases=2)
    big = bw.Classifier(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64 * 64, 4)), input_shape=(3, 64, 64)
    )
    with pytest.raises(ValueError, match=r"d = 12288"):
        bw.analysis.curvature_spectra(big, torch.rand(2, 3, 64, 64), n_bases=1)


def test_curvature_score_reports_blocks_and_stops_on_cancel(digits):
    clf, data = digits
    images = data.split("test")[0][:10]
    calls = []
    # 2 · 20 shifted points per image and batches of 100: two images per block, five blocks.
    scores = bw.analysis.curvature_score(
        clf, images, n_directions=20, batch_size=100, progress=lambda *r: calls.append(r)
    )
    assert calls == [(i, 5) for i in range(1, 6)]
    np.testing.assert_allclose(
        scores.scores, bw.analysis.curvature_score(clf, images, n_directions=20).scores, rtol=1e-5
    )
    cancel = threading.Event()
    with pytest.raises(bw.Cancelled):
        bw.analysis.curvature_score(
            clf, images, n_directions=20, batch_size=100, progress=lambda *r: cancel.set(), cancel=cancel
        )


def test_one_image_gives_one_spectrum_and_a_batch_a_list_of_the_same(quadratic):
    """`curvature_spectrum` takes one image and returns one spectrum, whatever its keywords; a batch goes to
    `curvature_spectra`, which returns each image's spectrum as `curvature_spectrum` gives it."""
    _, clf = quadratic
    images = torch.stack([torch.zeros(DIM), torch.full((DIM,), 0.1), torch.full((DIM,), -0.1)])
    with pytest.raises(TypeError, match="executor"):
        bw.analysis.curvature_spectrum(clf, images[0], executor=None)
    with pytest.raises(ValueError, match=r"`x` must have shape \(12,\)"):
        bw.analysis.curvature_spectrum(clf, images, k=2, mode="exact")
    seen = []
    spectra = bw.analysis.curvature_spectra(clf, images, k=2, mode="exact", progress=lambda d, t: seen.append((d, t)))
    assert isinstance(spectra, list) and len(spectra) == 3 and seen[-1] == (3, 3)
    for x, spectrum in zip(images, spectra, strict=True):
        alone = bw.analysis.curvature_spectrum(clf, x, k=2, mode="exact")
        assert isinstance(spectrum, bw.analysis.CurvatureSpectrum)
        np.testing.assert_array_equal(spectrum.values, alone.values)
        torch.testing.assert_close(spectrum.boundary_point, alone.boundary_point, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"`images` must have shape \(N, \*\(12,\)\)"):
        bw.analysis.curvature_spectra(clf, images[0])
    with pytest.raises(ValueError, match="`k` must be >= 1"):
        bw.analysis.curvature_spectra(clf, images, k=0)


def test_lanczos_returns_frozen_eigenpairs_of_a_known_operator():
    from scipy.sparse.linalg import aslinearoperator

    diagonal = np.linspace(-3.0, 2.0, 30)
    pairs = curvature.lanczos(aslinearoperator(np.diag(diagonal)), 2, which="BE", tol=1e-10, seed=0)
    assert isinstance(pairs, curvature.Eigenpairs) and pairs.converged
    np.testing.assert_allclose(np.sort(pairs.values), [-3.0, 2.0], atol=1e-8)
    assert pairs.vectors.shape == (30, 2)
    np.testing.assert_allclose(np.abs(pairs.vectors[[0, -1]]).max(0), [1.0, 1.0], atol=1e-6)
    with pytest.raises(AttributeError):
        pairs.converged = False


class SphereGap(nn.Module):
    """Logits ``[(r² − |x − c|²) / 2r, 0]``: class 0 inside the sphere of radius r, whose principal
    curvatures are all 1/r; ``|∇F| = 1`` on it."""

    def __init__(self, centre: torch.Tensor, radius: float) -> None:
        super().__init__()
        self.register_buffer("centre", centre)
        self.radius = radius

    def forward(self, x):
        gap = (self.radius**2 - ((x.flatten(1) - self.centre) ** 2).sum(1)) / (2 * self.radius)
        return torch.stack([gap, torch.zeros_like(gap)], dim=1)


@pytest.mark.parametrize("mode", ["exact", "finite_difference"])
@pytest.mark.parametrize("radius", [0.5, 2.0, 5.0])
@pytest.mark.parametrize("start", [0.3, 0.9, 1.5])
def test_sphere_curvatures_are_one_over_the_radius(mode, radius, start):
    """From 0.3 r one DeepFool step lands at 1.82 r; bisection brings z back onto the sphere. Inside,
    the original region is convex: every curvature is −1/r; outside it is +1/r (the kit's sign). An
    error δ in |z − c| gives 1/(r + δ): bisection's tolerance (1e-6 of the distance) and float32
    gradients (~1e-6 relative, over the step h ≈ 0.8 in finite differences) stay well inside 1e-4."""
    centre = torch.linspace(-1.0, 1.0, 8)
    direction = torch.randn(8, generator=torch.Generator().manual_seed(1))
    x = centre + start * radius * direction / direction.norm()
    clf = bw.Classifier(SphereGap(centre, radius), input_shape=(8,), bounds=(-10.0, 10.0))
    result = curvature.principal_curvatures(clf, x, k=3, mode=mode, tol=1e-10)
    sign = -1.0 if start < 1 else 1.0
    assert result.converged and result.original == (0 if start < 1 else 1)
    assert float((result.boundary_point - centre).norm()) == pytest.approx(radius, rel=1e-5)
    assert result.distance == pytest.approx(abs(1 - start) * radius, rel=1e-5)
    assert abs(result.gap) / result.gradient_norm < 1e-5 * radius
    np.testing.assert_allclose(result.values, sign / radius, rtol=1e-4)


def test_spread_over_lanczos_starts_is_tiny_on_a_quadratic_and_reported_on_relu(quadratic, digits):
    """On a quadratic (a linear operator) Lanczos from other starts finds the same values (spread at the
    level of ``tol``); on a ReLU network the finite-difference product is not linear and the spread says
    so. One start: NaN (not measured), and no extra products."""
    _, clf = quadratic
    exact = curvature.principal_curvatures(clf, torch.zeros(DIM), k=3, mode="exact", tol=1e-10, lanczos_runs=3)
    assert exact.lanczos_runs == 3 and exact.spread.shape == (3,) and exact.spread.max() < 1e-6
    relu, data = digits
    x = data.split("test")[0][0]
    one = curvature.principal_curvatures(relu, x, k=3)
    two = curvature.principal_curvatures(relu, x, k=3, lanczos_runs=2)
    assert np.isnan(one.spread).all() and np.isfinite(two.spread).all() and two.spread.max() > 0
    np.testing.assert_array_equal(one.values, two.values)
    assert two.n_hvp > one.n_hvp


def test_averaged_directions_match_the_closed_form_on_a_quadratic(quadratic):
    """Finite differences are exact on a quadratic, and a whole tangent basis has UUᵀ = P, so averaging
    three bases is P A P / ‖∇F‖ to float32 rounding of the products (1e-3 relative, as for Lanczos on
    the products)."""
    net, clf = quadratic
    result = curvature.principal_curvatures(clf, torch.zeros(DIM), k=4, n_bases=3, tol=1e-10)
    values, vectors = closed_form(net, result.boundary_point)
    np.testing.assert_allclose(result.values, values[:4], rtol=1e-3, atol=1e-5)
    cosines = np.abs(np.sum(result.directions.double().numpy() * vectors[:, :4].T, axis=1))
    np.testing.assert_allclose(cosines, 1.0, atol=1e-2)
    assert result.n_bases == 3 and result.n_hvp == 3 * (DIM - 1)


def test_averaged_directions_are_a_linear_operator_steadier_across_seeds_than_lanczos_on_relu(digits):
    """On a ReLU network the averaged operator is linear (residuals at Lanczos' `tol`, no products for
    them): its spread between seeds is sampling error, below that of Lanczos on the products on each digit."""
    clf, data = digits
    for x in data.split("test")[0][:3]:
        lanczos = curvature.principal_curvatures(clf, x, k=5, lanczos_runs=2)
        averaged = curvature.principal_curvatures(clf, x, k=5, lanczos_runs=2, n_bases=8)
        assert averaged.residuals.max() < 1e-5 * np.abs(averaged.values).max() < lanczos.residuals.max()
        assert averaged.spread.max() < lanczos.spread.max()
        assert averaged.n_hvp == 2 * 8 * (clf.input_dim - 1)


def test_averaged_directions_count_progress_reproduce_by_seed_and_cancel(digits):
    clf, data = digits
    x = data.split("test")[0][1]
    calls = []
    first = curvature.principal_curvatures(
        clf, x, k=3, n_bases=2, lanczos_runs=2, progress=lambda done, total: calls.append((done, total))
    )
    products = 2 * 2 * (clf.input_dim - 1)
    assert calls[-1] == (products, products) and first.n_hvp == products
    np.testing.assert_array_equal(first.values, curvature.principal_curvatures(clf, x, k=3, n_bases=2).values)
    cancel = threading.Event()
    with pytest.raises(bw.Cancelled):
        curvature.principal_curvatures(clf, x, k=3, n_bases=2, progress=lambda done, total: cancel.set(), cancel=cancel)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_bases": 0}, ValueError, "`n_bases` must be >= 1"),
        ({"n_bases": 2.0}, TypeError, "`n_bases` must be an int"),
        ({"n_bases": 2, "mode": "exact"}, ValueError, "`n_bases` averages finite differences"),
    ],
)
def test_bad_n_bases(quadratic, kwargs, error, match):
    _, clf = quadratic
    with pytest.raises(error, match=match):
        curvature.principal_curvatures(clf, torch.zeros(DIM), k=3, **kwargs)


def test_a_start_vector_the_products_map_to_zero_is_explained_and_averaging_still_answers():
    """On the digits MLP, every point z ± h·v along Lanczos' start vector for seed 0 at test digit 1 lies in
    one linear region (the product is exactly zero there, though not along every direction): a ValueError
    that names the way out, and n_bases, averaging over tangent bases, finds curved ones."""
    clf, data = bw.zoo.load("digits-mlp", device="cpu")
    x = data.split("test")[0][1]
    with pytest.raises(ValueError, match=r"start vector .* `n_bases`"):
        curvature.principal_curvatures(clf, x, k=3)
    averaged = curvature.principal_curvatures(clf, x, k=3, n_bases=2)
    assert np.abs(averaged.values).min() > 0


def test_averaging_bases_is_refused_before_any_work_where_the_d_by_d_average_would_not_fit():
    """3×64×64 has d = 12,288: three d × d float64 matrices are 3.4 GiB, over the limit (d <= 6,688)."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64 * 64, 4))
    clf = bw.Classifier(net, input_shape=(3, 64, 64), bounds=(0.0, 1.0))
    calls = []
    with pytest.raises(
        ValueError, match=r"`n_bases` .* \(d = 12288\) need 3\.4 GiB, over the 1 GiB limit \(expected d <= 6688\)"
    ):
        curvature.principal_curvatures(clf, torch.rand(3, 64, 64), k=3, n_bases=1, progress=lambda *r: calls.append(r))
    assert calls == []
