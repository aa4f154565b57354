"""SliceExplorer without a browser: controls, marks, clicks, errors, state and cancellation."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import boundary_widgets as bw
from boundary_widgets.render import boundary_lines, rgb_table, slice_rgb
from boundary_widgets.widgets import SliceExplorer
from boundary_widgets.widgets.controls import DirectionPicker
from boundary_widgets.widgets.worker import Job, StaleJob, Worker

RESOLUTION = 24


def decode(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture
def explorer(digits):
    clf, data = digits
    return SliceExplorer(clf, data.images[0], dataset=data, resolution=RESOLUTION, threaded=False)


def click(explorer: SliceExplorer, alpha: float, beta: float) -> None:
    message = {"event": "element_click", "data": {"click_x": alpha, "click_y": beta}}
    explorer.map_view.image._handle_custom_msg(message, [])


def test_lazy_export():
    from boundary_widgets.widgets import slice_explorer

    assert bw.SliceExplorer is slice_explorer.SliceExplorer


def test_map_marks_draw_the_slice(explorer, digits):
    clf, data = digits
    sl = explorer.slice
    assert explorer.error is None
    assert sl.resolution == (RESOLUTION, RESOLUTION)
    assert torch.equal(sl.plane.origin, data.images[0])
    view = explorer.map_view
    # The map is the matplotlib twin's pixels with beta growing upward.
    np.testing.assert_array_equal(decode(view.png.value), slice_rgb(sl)[::-1])
    np.testing.assert_allclose(view.image.x, [sl.alphas[0], sl.alphas[-1]])
    np.testing.assert_allclose(view.image.y, [sl.betas[0], sl.betas[-1]])
    lines = boundary_lines(sl)
    np.testing.assert_array_equal(view.boundaries.x, lines[:, 0])
    np.testing.assert_array_equal(view.boundaries.y, lines[:, 1])
    for k in range(clf.num_classes):
        swatch = f"{clf.class_names[k]}</span>"
        assert (swatch in view.legend.value) == (k in sl.classes_present)
    # u is the DeepFool direction: its boundary point lies at alpha = distance, beta = 0.
    names = list(view.anchors.names)
    assert names[:2] == ["origin", "boundary (u)"]
    distance = explorer._directions["u"][1].info["distance"]
    np.testing.assert_allclose([view.anchors.x[1], view.anchors.y[1]], [distance, 0.0], atol=1e-4)
    assert sl.label_at(0, 0) == int(clf.predict(data.images[0]))
    assert explorer.progress.value == 1.0


def test_each_setting_changes_the_slice(explorer, digits):
    _clf, data = digits
    before = explorer.slice
    explorer.extent_slider.value = 5.0
    assert explorer.slice.extent == ((-5.0, 5.0), (-5.0, 5.0))
    np.testing.assert_allclose(explorer.map_view.image.x, [-5.0, 5.0])
    explorer.resolution_dropdown.value = 32
    assert explorer.slice.resolution == (32, 32)
    for method in ("dense", "adaptive"):
        explorer.method_dropdown.value = method
        assert explorer.slice.method == method
    explorer.clip_checkbox.value = True
    assert explorer.slice.clip
    explorer.sample_slider.value = 7
    assert torch.equal(explorer.slice.plane.origin, data.images[7])
    assert explorer.state["sample"] == 7
    assert explorer.slice is not before


def test_direction_controls_change_the_plane(explorer):
    old = explorer.slice
    old_picture = explorer.map_view.image.image
    explorer.v_picker.controls["seed"].value = 5
    # bqplot's Image mark redraws in the browser only when its `image` widget is replaced.
    assert explorer.map_view.image.image is not old_picture
    assert not torch.allclose(explorer.slice.plane.v, old.plane.v)
    assert not np.array_equal(explorer.slice.margin, old.margin)
    np.testing.assert_array_equal(decode(explorer.map_view.png.value), slice_rgb(explorer.slice)[::-1])
    seed = explorer.v_picker.controls["seed"].value
    explorer.v_picker.redraw_button.click()
    assert explorer.v_picker.controls["seed"].value != seed
    expected_v = bw.directions.make("random", explorer.clf, explorer.origin, seed=explorer.state["v"]["params"]["seed"])
    u_vector = explorer.slice.plane.u.clone()
    explorer.u_picker.controls["method"].value = "gradient"
    assert explorer.state["u"]["params"]["method"] == "gradient"
    assert not torch.allclose(explorer.slice.plane.u, u_vector)
    # Switching the kind rebuilds the parameter controls from the registry.
    explorer.u_picker.kind_dropdown.value = "random"
    assert list(explorer.u_picker.controls) == ["seed"]
    assert torch.allclose(explorer.slice.plane.u, bw.directions.make("random", explorer.clf, explorer.origin).vector)
    explorer.u_picker.controls["seed"].value = 1
    explorer.swap()
    assert explorer.state["u"]["params"]["seed"] == expected_v.params["seed"]
    assert torch.allclose(explorer.slice.plane.u, expected_v.vector)


def test_display_settings_redraw_without_recomputing(explorer):
    sl = explorer.slice
    explorer.shading_toggle.value = "confidence"
    assert explorer.slice is sl
    np.testing.assert_array_equal(decode(explorer.map_view.png.value), slice_rgb(sl, shading="confidence")[::-1])
    explorer.boundaries_checkbox.value = False
    assert len(explorer.map_view.boundaries.x) == 0
    explorer.boundaries_checkbox.value = True
    assert len(explorer.map_view.boundaries.x) == len(boundary_lines(sl))


def test_pickers_offer_every_registered_kind_and_its_parameters(digits):
    clf, data = digits
    for name, kind in bw.directions.kinds().items():
        picker = DirectionPicker("u", kind=name, class_names=clf.class_names, images=data.images)
        assert picker.kind_dropdown.options == tuple(bw.directions.available())
        expected = [p.name for p in kind.parameters if p.type != "basis"]
        assert list(picker.controls) == expected
        assert picker.value["params"] == {
            p.name: p.default for p in kind.parameters if p.type not in ("basis", "image")
        } | {p.name: 0 for p in kind.parameters if p.type == "image"}
        for p in kind.parameters:
            if p.type == "int" and p.default is None:  # optional: empty text means None
                picker.controls[p.name].value = "4"
                assert picker.value["params"][p.name] == 4
                picker.set_value({"kind": name, "params": {p.name: None}}, notify=False)
                assert picker.controls[p.name].value == "" and picker.value["params"][p.name] is None


def test_click_shows_the_point_and_its_probabilities(explorer):
    alpha, beta = 0.7, -0.4
    click(explorer, alpha, beta)
    selection = explorer.selection
    point = explorer.slice.plane.point(alpha, beta)
    assert torch.equal(selection.image, point)
    expected = explorer.clf.probabilities(point).double().numpy()
    np.testing.assert_allclose(selection.probabilities, expected, rtol=1e-6)
    np.testing.assert_allclose(explorer.point_view.bars.y, expected, rtol=1e-6)
    assert selection.label == int(expected.argmax())
    assert list(explorer.map_view.click_marker.x) == [alpha]
    assert list(explorer.map_view.click_marker.y) == [beta]
    picture = decode(explorer.point_view.picture.value)
    assert picture.shape[0] >= 64  # 8×8 digit enlarged
    assert "α = 0.700, β = -0.400" in explorer.point_view.caption.value
    assert explorer.state["click"] == [alpha, beta]


def test_error_in_a_direction_shows_and_the_widget_recovers(explorer):
    predicted = int(explorer.clf.predict(explorer.origin))
    explorer.u_picker.controls["method"].value = "gradient"
    sl = explorer.slice
    explorer.u_picker.controls["target"].value = predicted  # the gradient method refuses its own class
    assert explorer.error is not None and "`target` must differ" in explorer.error
    assert "bw-error" in explorer.status.value and "target" in explorer.status.value
    assert explorer.progress.bar_style == "danger"
    assert explorer.slice is sl  # the last good map stays on display
    explorer.u_picker.controls["target"].value = (predicted + 1) % 10
    assert explorer.error is None
    assert "bw-error" not in explorer.status.value
    assert explorer._directions["u"][1].info["target"] == (predicted + 1) % 10


def test_from_state_reproduces_the_view(explorer, digits, tmp_path):
    clf, data = digits
    explorer.v_picker.controls["seed"].value = 11
    explorer.extent_slider.value = 3.0
    explorer.shading_toggle.value = "confidence"
    click(explorer, 0.3, 0.2)
    state = explorer.state
    copy = SliceExplorer.from_state(clf, data.images[0], state, dataset=data, threaded=False)
    assert copy.state == state
    np.testing.assert_array_equal(copy.slice.labels, explorer.slice.labels)
    assert copy.slice.plane.fingerprint() == explorer.slice.plane.fingerprint()
    assert copy.map_view.png.value == explorer.map_view.png.value
    np.testing.assert_array_equal(copy.selection.probabilities, explorer.selection.probabilities)
    with pytest.raises(ValueError, match="`state`"):
        SliceExplorer.from_state(clf, data.images[0], {**state, "zoom": 2}, threaded=False)
    path = tmp_path / "view.png"
    explorer.save_png(path)
    assert PILImage.open(path).format == "PNG"


def test_bad_arguments_name_the_argument(digits):
    clf, data = digits
    with pytest.raises(ValueError, match="`method`"):
        SliceExplorer(clf, data.images[0], method="nope", threaded=False)
    with pytest.raises(ValueError, match="`resolution`"):
        SliceExplorer(clf, data.images[0], resolution=1, threaded=False)
    with pytest.raises(TypeError, match="`clf`"):
        SliceExplorer(object(), data.images[0])
    with pytest.raises(ValueError, match="`sample`"):
        SliceExplorer(clf, data.images[0], sample=3)


def test_worker_cancels_stale_jobs():
    worker = Worker(threaded=True)
    started, release = threading.Event(), threading.Event()
    finished: list[int] = []

    def slow(job: Job) -> None:
        started.set()
        release.wait(5)
        job.check()
        finished.append(job.generation)

    first = worker.submit(slow)
    started.wait(5)
    second = worker.submit(lambda job: finished.append(job.generation))
    third = worker.submit(lambda job: finished.append(job.generation))
    assert first.stale and second.stale and not third.stale
    release.set()
    assert worker.wait(5)
    assert finished == [third.generation]  # the first stopped at its check, the second never ran
    with pytest.raises(StaleJob):
        first.check()


def test_threaded_explorer_cancels_stale_work(digits):
    clf, data = digits
    explorer = SliceExplorer(clf, data.images[0], resolution=RESOLUTION, threaded=True)
    jobs = [explorer.refresh()]
    for seed in (1, 2, 3):
        explorer.v_picker.controls["seed"].value = seed
    jobs.append(explorer.refresh())
    assert explorer.wait(60)
    assert all(job.stale for job in jobs[:-1]) and not jobs[-1].stale
    assert explorer.error is None
    expected = bw.directions.make("random", clf, data.images[0], seed=3).vector
    u = explorer.slice.plane.u
    v_expected = expected - (expected * u).sum() * u
    assert torch.allclose(explorer.slice.plane.v, v_expected / v_expected.norm(), atol=1e-5)


@pytest.fixture(scope="module")
def same_class_pair(digits):
    clf, data = digits
    images, _ = data.split("test")
    predicted = clf.predict(images)
    first, second = torch.nonzero(predicted == 3).flatten()[:2].tolist()
    return images[first], images[second]


@pytest.fixture
def path_explorer(digits, same_class_pair):
    clf, _ = digits
    return bw.PathExplorer(clf, *same_class_pair, resolution=RESOLUTION, threaded=False)


def test_path_explorer_draws_path_profile_and_plane(path_explorer):
    explorer = path_explorer
    path, line = explorer.path, explorer.line
    assert explorer.error is None and path.valid
    label = int(line.labels[0])
    np.testing.assert_allclose(explorer.line_probability.x, line.t)
    np.testing.assert_allclose(explorer.line_probability.y, line.probabilities[:, label], rtol=1e-6)
    np.testing.assert_allclose(explorer.path_probability.x, path.positions / path.length)
    np.testing.assert_allclose(explorer.path_probability.y, path.confidences, rtol=1e-6)
    strip = decode(explorer.line_strip.image.value)
    np.testing.assert_array_equal(strip[0], np.repeat(rgb_table(10)[[label]], strip.shape[1], axis=0))
    assert explorer.slice.plane.fingerprint() == path.plane().fingerprint()
    np.testing.assert_allclose(explorer.map_view.overlays[0].x, path.plane_coordinates()[:, 0], atol=1e-6)
    np.testing.assert_allclose(explorer.map_view.overlays[0].y, path.plane_coordinates()[:, 1], atol=1e-6)
    np.testing.assert_array_equal(decode(explorer.map_view.png.value), slice_rgb(explorer.slice)[::-1])
    assert f"class {path.class_name}" in explorer.profile_caption.value


def test_path_scrubber_and_click_show_the_point(path_explorer):
    explorer = path_explorer
    explorer.scrubber.value = 0.25
    expected = explorer.path.points_at([0.25 * explorer.path.length])[0]
    assert torch.equal(explorer.selection.image, expected)
    np.testing.assert_allclose(explorer.selection.probabilities, explorer.clf.probabilities(expected).double().numpy())
    assert list(explorer.position_line.x) == [0.25, 0.25]
    alpha, beta = explorer.plane.coordinates(expected)
    np.testing.assert_allclose(
        [explorer.map_view.click_marker.x[0], explorer.map_view.click_marker.y[0]], [alpha, beta]
    )
    click(explorer, 0.4, 0.3)
    assert torch.equal(explorer.selection.image, explorer.plane.point(0.4, 0.3))


def test_path_controls_recompute(path_explorer):
    explorer = path_explorer
    spacing = explorer.path.max_spacing
    explorer.samples_input.value = 8
    assert explorer.path.max_spacing > spacing
    explorer.resolution_dropdown.value = 32
    assert explorer.slice.resolution == (32, 32)
    path = explorer.path
    explorer.depth_input.value = 2
    assert explorer.path is not path and explorer.state["max_depth"] == 2


def test_path_error_shows_and_recovers(digits, same_class_pair):
    clf, data = digits
    images, _ = data.split("test")
    predicted = clf.predict(images)
    other = images[int(torch.nonzero(predicted == 5).flatten()[0])]
    explorer = bw.PathExplorer(clf, same_class_pair[0], other, resolution=RESOLUTION, threaded=False)
    assert explorer.error is not None and "bw-error" in explorer.status.value
    assert explorer.path is None and explorer.line.classes_crossed[0] == 3  # the straight line is still shown
    assert "→" in explorer.profile_caption.value
    explorer.set_endpoints(*same_class_pair)
    assert explorer.error is None and explorer.path.valid


def test_u_and_v_of_one_kind_start_on_different_directions(digits):
    clf, data = digits
    explorer = SliceExplorer(clf, data.images[0], u="random", v="random", resolution=16, threaded=False)
    assert explorer.error is None
    assert explorer.state["u"]["params"]["seed"] != explorer.state["v"]["params"]["seed"]
    explorer.u_picker.kind_dropdown.value = "dct"
    explorer.v_picker.kind_dropdown.value = "dct"
    explorer.u_picker.controls["method"].value = "random"
    explorer.v_picker.controls["method"].value = "random"
    assert explorer.error is None
