"""CompareExplorer: two models on one plane, the difference map against a closed form, linked clicks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import model_state
from torch import nn

import boundary_widgets as bw
from boundary_widgets.widgets.compare_explorer import CompareExplorer, difference_mask, proven_difference_mask


def _linear(weight: list[float], bias: float) -> bw.Classifier:
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    with torch.no_grad():
        w = torch.tensor(weight)
        net[1].weight.copy_(torch.stack([-w, w]) / 2)
        net[1].bias.copy_(torch.tensor([-bias, bias]) / 2)
    return bw.Classifier(net, input_shape=(2, 3), bounds=(-5.0, 5.0))


def test_difference_map_matches_the_two_half_spaces():
    clf_a = _linear([1.0, 0.5, 0.0, 0.0, -0.3, 0.2], 0.1)
    clf_b = _linear([0.2, -1.0, 0.4, 0.0, 0.3, 0.0], -0.2)
    x = torch.zeros(2, 3)
    explorer = CompareExplorer(clf_a, clf_b, x, u="random", v="random", extent=2.0, resolution=33, threaded=False)
    assert explorer.error is None
    sl = explorer.slices["a"]
    alphas, betas = np.meshgrid(sl.alphas, sl.betas)
    points = explorer.plane.points(alphas.ravel(), betas.ravel()).reshape(-1, 6).double()
    side_a = points @ torch.tensor([1.0, 0.5, 0.0, 0.0, -0.3, 0.2], dtype=torch.float64) + 0.1 > 0
    side_b = points @ torch.tensor([0.2, -1.0, 0.4, 0.0, 0.3, 0.0], dtype=torch.float64) - 0.2 > 0
    expected = (side_a != side_b).numpy().reshape(alphas.shape)
    # Grid cells within float rounding of either boundary may go either way.
    agree = explorer.difference == expected
    assert agree.mean() > 0.99 and 0.05 < expected.mean() < 0.95
    np.testing.assert_array_equal(explorer.difference, difference_mask(explorer.slices["a"], explorer.slices["b"]))


def test_certified_maps_prove_a_difference_only_where_both_half_spaces_disagree_on_the_whole_cell():
    """Two linear models: a cell is provably different exactly when its box lies wholly on opposite sides
    of the two boundary lines (checked at the four corners, since each side is a half-plane)."""
    w_a, w_b = [1.0, 0.5, 0.0, 0.0, -0.3, 0.2], [0.2, -1.0, 0.4, 0.0, 0.3, 0.0]
    clf_a, clf_b = _linear(w_a, 0.1), _linear(w_b, -0.2)
    x = torch.zeros(2, 3)
    explorer = CompareExplorer(
        clf_a, clf_b, x, u="random", v="random", extent=2.0, resolution=17, method="certified", threaded=False
    )
    assert explorer.error is None and explorer.state["method"] == "certified"
    sl = explorer.slices["a"]
    proven = explorer.proven_difference
    np.testing.assert_array_equal(proven, proven_difference_mask(explorer.slices["a"], explorer.slices["b"]))
    assert not (proven & ~explorer.difference).any()
    half_a, half_b = (sl.alphas[1] - sl.alphas[0]) / 2, (sl.betas[1] - sl.betas[0]) / 2
    corners = [(da, db) for da in (-half_a, half_a) for db in (-half_b, half_b)]
    alphas, betas = np.meshgrid(sl.alphas, sl.betas)

    def sides(weight: list[float], bias: float) -> np.ndarray:
        """(4, Rb, Ra): the sign of the logit gap at each cell's four corners."""
        w = torch.tensor(weight, dtype=torch.float64)
        return np.stack(
            [
                (explorer.plane.points((alphas + da).ravel(), (betas + db).ravel()).reshape(-1, 6).double() @ w + bias)
                .numpy()
                .reshape(alphas.shape)
                > 0
                for da, db in corners
            ]
        )

    side_a, side_b = sides(w_a, 0.1), sides(w_b, -0.2)
    wholly_opposite = (side_a.all(0) & ~side_b.any(0)) | (~side_a.any(0) & side_b.all(0))
    assert not (proven & ~wholly_opposite).any()  # sound: nothing proven that is not true
    assert proven.sum() >= 0.9 * wholly_opposite.sum() > 0  # and tight on linear models
    assert "provably" in explorer.diff_text.value
    with pytest.raises(ValueError, match="must be certified slices"):
        proven_difference_mask(
            bw.compute_slice(clf_a, explorer.plane, extent=sl.extent, resolution=17),
            bw.compute_slice(clf_b, explorer.plane, extent=sl.extent, resolution=17),
        )


def test_a_model_against_itself_differs_nowhere_and_clicks_are_linked(digits):
    clf, data = digits
    x = data.split("test")[0][0]
    before = model_state(clf.net)
    explorer = CompareExplorer(clf, clf, x, resolution=32, threaded=False)
    assert not explorer.difference.any()
    explorer.select(0.2, -0.1)
    assert explorer.selection.label == explorer.selection_b[0]
    np.testing.assert_allclose(explorer.selection.probabilities, explorer.selection_b[1])
    for view in explorer.map_views.values():
        assert list(view.click_marker.x) == [0.2]
    assert list(explorer.diff_cross.x) == [0.2]
    assert model_state(clf.net) == before


def test_standard_against_robust_digits(digits):
    clf, data = digits
    robust, _ = bw.zoo.load("digits-cnn-robust", device="cpu")
    x = data.split("test")[0][3]
    explorer = CompareExplorer(clf, robust, x, dataset=data, resolution=48, threaded=False)
    assert explorer.error is None
    assert 0 < explorer.difference.mean() < 1
    again = CompareExplorer.from_state(clf, x, explorer.share, clf_b=robust, dataset=data, threaded=False)
    assert again.state == explorer.state
    np.testing.assert_array_equal(again.difference, explorer.difference)


def test_a_curvature_direction_shows_its_spread_across_seeds(digits):
    clf, data = digits
    robust, _ = bw.zoo.load("digits-cnn-robust", device="cpu")
    x = data.split("test")[0][3]
    explorer = CompareExplorer(clf, robust, x, u="curvature", resolution=16, threaded=False)
    result = bw.principal_curvatures(clf, x, k=5, lanczos_runs=2)
    assert f"± {100 * result.spread[0]:.1f} % (across 2 Lanczos seeds)" in explorer.u_picker.found.value
    assert explorer.v_picker.found.value == ""


def test_bad_arguments_are_refused(digits):
    clf, data = digits
    x = data.split("test")[0][0]
    other = _linear([1.0] * 6, 0.0)
    with pytest.raises(ValueError, match="`clf_b`"):
        CompareExplorer(clf, other, x, threaded=False)
    with pytest.raises(TypeError, match="`clf_b`"):
        CompareExplorer(clf, "model", x, threaded=False)
    with pytest.raises(TypeError, match="`clf_b`"):
        CompareExplorer.from_state(clf, x, {}, threaded=False)
    with pytest.raises(ValueError, match="resolution"):
        CompareExplorer(clf, clf, x, resolution=100000, threaded=False)
    with pytest.raises(ValueError, match="`x`"):
        CompareExplorer(clf, clf, x * 255, threaded=False)
