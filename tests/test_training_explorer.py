"""TrainingExplorer: live training of a copy, epoch frames, controls, state (kernel-less)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from conftest import model_state

import boundary_widgets as bw
from boundary_widgets.widgets.training_explorer import TrainingExplorer


@pytest.fixture(scope="module")
def moons():
    return bw.zoo.load("moons-mlp", device="cpu")


def test_epochs_redraw_the_map_and_the_history(moons):
    clf, data = moons
    explorer = TrainingExplorer(clf, data, threaded=False)
    assert explorer.training.epoch == 0 and explorer.slice is not None
    first_png = bytes(explorer.map_view.png.value)
    explorer.step(4)
    assert explorer.training.epoch == 4
    assert bytes(explorer.map_view.png.value) != first_png
    assert list(explorer.loss_line.x) == [1, 2, 3, 4]
    assert explorer.accuracy_line.y[-1] == pytest.approx(explorer.training.history[-1].accuracy)
    assert "epoch 4" in explorer.epoch_label.value
    # The whole input plane with the data points, in the model's own coordinates.
    (a0, a1), (b0, b1) = explorer.box
    points = data.images.numpy()
    assert a0 < points[:, 0].min() and points[:, 0].max() < a1 and b0 < points[:, 1].min() and points[:, 1].max() < b1
    assert len(explorer.map_view.overlays[0].x) > 0


def test_the_users_module_is_never_trained(digits):
    clf, data = digits
    before = model_state(clf.net)
    explorer = TrainingExplorer(clf, data, start="copy", adversarial="deepfool", epsilon=0.3, threaded=False)
    explorer.step(1)
    assert model_state(clf.net) == before
    assert explorer.training.net is not clf.net
    # The copy did change.
    changed = any(
        not torch.equal(a, b) for a, b in zip(explorer.training.net.parameters(), clf.net.parameters(), strict=True)
    )
    assert changed


def test_live_settings_reach_the_optimiser_and_new_model_settings_restart(moons):
    clf, data = moons
    explorer = TrainingExplorer(clf, data, threaded=False)
    explorer.step(2)
    explorer.learning_rate = 0.2
    explorer.weight_decay = 0.01
    explorer.adversarial = "pgd"
    group = explorer.training.optimiser.param_groups[0]
    assert (group["lr"], group["weight_decay"], explorer.training.adversarial) == (0.2, 0.01, "pgd")
    assert explorer.training.epoch == 2  # live settings keep the model
    explorer.width = 5
    assert explorer.training.epoch == 0
    assert explorer.training.net[0].out_features == 5
    explorer.depth = 3
    assert sum(isinstance(m, torch.nn.Linear) for m in explorer.training.net) == 4


def test_play_needs_a_bound_without_a_thread_and_stops_after_it(moons):
    clf, data = moons
    explorer = TrainingExplorer(clf, data, threaded=False)
    with pytest.raises(ValueError, match="`epochs`"):
        explorer.play()
    explorer.play(epochs=3)
    assert explorer.training.epoch == 3 and not explorer.playing
    with pytest.raises(ValueError, match="`epochs`"):
        explorer.step(0)


def test_threaded_play_and_pause(moons):
    clf, data = moons
    explorer = TrainingExplorer(clf, data)
    try:
        explorer.play()
        deadline = time.time() + 30
        while explorer.training.epoch < 3 and time.time() < deadline:
            time.sleep(0.02)
        explorer.pause()
        assert explorer.wait(30)
        stopped_at = explorer.training.epoch
        assert stopped_at >= 3
        time.sleep(0.2)
        assert explorer.training.epoch == stopped_at
        assert explorer.frames_per_second > 0
    finally:
        explorer.close()


def test_click_inspects_the_model_in_training(moons):
    clf, data = moons
    explorer = TrainingExplorer(clf, data, threaded=False, click=(0.5, 0.25))
    explorer.step(2)
    selection = explorer.selection
    point = torch.tensor([0.5, 0.25])
    expected = explorer.training.classifier.probabilities(point).double().numpy()
    np.testing.assert_allclose(selection.probabilities, expected, rtol=1e-6)


def test_image_model_plane_goes_through_three_test_images_of_different_classes(digits):
    clf, data = digits
    explorer = TrainingExplorer(clf, data, width=4, depth=1, threaded=False)
    assert len(explorer.anchors) == 3
    test_images, _ = data.split("test")
    for (alpha, beta), name in zip(explorer.anchors.values(), explorer.anchors, strict=True):
        index = int(name.split("#")[1].split(" ")[0])
        torch.testing.assert_close(explorer.plane.point(alpha, beta), test_images[index], atol=1e-5, rtol=0)


def test_state_round_trips_and_bad_states_are_refused(moons):
    clf, data = moons
    explorer = TrainingExplorer(clf, data, width=8, learning_rate=0.1, adversarial="pgd", threaded=False)
    again = TrainingExplorer.from_state(clf, data, explorer.share, threaded=False)
    assert again.state == explorer.state
    for state, error in [
        ({"width": 0}, ValueError),
        ({"adversarial": "fgsm"}, ValueError),
        ({"learning_rate": "fast"}, TypeError),
        ({"resolution": 100000}, ValueError),
        ({"epochs": 3}, ValueError),
    ]:
        with pytest.raises(error, match="state"):
            TrainingExplorer.from_state(clf, data, state, threaded=False)
    with pytest.raises(TypeError, match="`dataset`"):
        TrainingExplorer(clf, data.images, threaded=False)


def test_the_training_points_over_a_2d_map_are_coloured_by_their_class(moons):
    clf, data = moons
    explorer = bw.TrainingExplorer(clf, data, resolution=16, threaded=False)
    (points,) = explorer.map_view.overlays
    np.testing.assert_array_equal(points.color, explorer.labels.numpy()[: len(points.x)])
    np.testing.assert_allclose(np.column_stack([points.x, points.y]), explorer.images.reshape(-1, 2)[: len(points.x)])
