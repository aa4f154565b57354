"""The explorers without a browser: controls, marks, clicks, errors, state, cancellation, and each defect
of issue 11 (numbered D1-D12 below), each test failing on the code before its fix."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import boundary_widgets as bw
from boundary_widgets.core.extent import outside_box
from boundary_widgets.render import boundary_lines, legend_entries, rgb_table, slice_rgb, top_k
from boundary_widgets.widgets import SliceExplorer
from boundary_widgets.widgets.controls import DirectionPicker
from boundary_widgets.widgets.views import _HATCH_PERIOD
from boundary_widgets.widgets.worker import Job, StaleJob, Worker

RESOLUTION = 24


def decode(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture
def explorer(digits):
    clf, data = digits
    return SliceExplorer(clf, data.images[0], dataset=data, resolution=RESOLUTION, threaded=False)


def test_lazy_export():
    from boundary_widgets.widgets import slice_explorer

    assert bw.SliceExplorer is slice_explorer.SliceExplorer
    assert issubclass(bw.SliceExplorer, bw.widgets.Explorer)
    assert issubclass(bw.PathExplorer, bw.widgets.Explorer) and issubclass(bw.MarginExplorer, bw.widgets.Explorer)


def legend_classes(explorer) -> list[int]:
    return [int(k) for k in re.findall(r'data-class="(\d+)"', explorer.map_view.legend.value)]


def test_map_marks_draw_the_slice(explorer, digits):
    clf, data = digits
    sl = explorer.slice
    assert explorer.error is None
    assert sl.resolution == (RESOLUTION, RESOLUTION)
    assert torch.equal(sl.plane.origin, data.images[0])
    view = explorer.map_view
    # The map is the matplotlib twin's pixels (RGB, any number of classes) with beta growing upward.
    assert PILImage.open(io.BytesIO(view.png.value)).mode == "RGB"
    np.testing.assert_array_equal(decode(view.png.value), slice_rgb(sl)[::-1])
    np.testing.assert_allclose(view.image.x, [sl.alphas[0], sl.alphas[-1]])
    np.testing.assert_allclose(view.image.y, [sl.betas[0], sl.betas[-1]])
    lines = boundary_lines(sl)
    np.testing.assert_array_equal(view.boundaries.x, lines[:, 0])
    np.testing.assert_array_equal(view.boundaries.y, lines[:, 1])
    assert legend_classes(explorer) == [k for k, *_ in legend_entries(sl)]  # largest area first
    assert sl.label_at(0, 0) == int(clf.predict(data.images[0]))
    assert explorer.progress.value == 1.0


def test_boundary_marker_sits_on_the_first_class_change_along_u(explorer):
    clf, view = explorer.clf, explorer.map_view
    names = view.anchor_names
    assert names[:2] == ["origin", "boundary (u)"]
    assert view.anchors.names[1] == "boundary (u): first class change along u (bisection on the line from the origin)"
    t, beta = view.anchors.x[1], view.anchors.y[1]
    assert beta == 0.0
    plane, start = explorer.plane, int(clf.predict(explorer.origin))
    step = 1e-3 * t
    assert int(clf.predict(plane.point(t - step, 0.0))) == start
    assert int(clf.predict(plane.point(t + step, 0.0))) != start
    along = torch.linspace(0, t - step, 50)
    assert bool((clf.predict(plane.points(along, torch.zeros(50))) == start).all())  # the first change
    distance = next(iter(explorer.direction_cache)).info["distance"]
    assert t < distance  # DeepFool's end point lies past the boundary (overshoot)
    # The hover text and the marker legend say what the marker is; names are not drawn on the map.
    assert "name" in view.anchors.tooltip.fields and not view.anchors.display_names
    assert "first class change along u" in view.markers_legend.value


def test_each_setting_changes_the_slice(explorer, digits):
    _clf, data = digits
    before = explorer.slice
    explorer.extent_slider.value = 5.0
    assert explorer.extent == 5.0 and explorer.slice.extent == ((-5.0, 5.0), (-5.0, 5.0))
    np.testing.assert_allclose(explorer.map_view.image.x, [-5.0, 5.0])
    explorer.resolution_dropdown.value = 32
    assert explorer.slice.resolution == (32, 32) and explorer.resolution == 32
    for method in ("dense", "adaptive"):
        explorer.method_dropdown.value = method
        assert explorer.slice.method == method
    explorer.clip_checkbox.value = True
    assert explorer.slice.clip
    explorer.split_toggle.value = "test"
    explorer.index_slider.value = 7
    assert explorer.sample == int(data.test_indices[7])
    assert torch.equal(explorer.slice.plane.origin, data.images[data.test_indices[7]])
    assert explorer.slice is not before
    # Settings are traits: observable, linkable, and setting one recomputes.
    seen = []
    explorer.observe(lambda change: seen.append(change["new"]), names="extent")
    explorer.extent = 2.5
    assert seen == [2.5] and explorer.extent_slider.value == 2.5 and explorer.slice.extent[0] == (-2.5, 2.5)


def test_direction_controls_change_the_plane(explorer):
    old = explorer.slice
    old_picture = explorer.map_view.image.image
    explorer.v_picker.controls["seed"].value = 5
    # bqplot's Image mark redraws in the browser only when its `image` widget is replaced.
    assert explorer.map_view.image.image is not old_picture
    assert not torch.allclose(explorer.slice.plane.v, old.plane.v)
    assert not np.array_equal(explorer.slice.margin, old.margin)
    np.testing.assert_array_equal(decode(explorer.map_view.png.value), slice_rgb(explorer.slice)[::-1])
    explorer.v_picker.redraw_button.click()
    assert explorer.v_picker.controls["seed"].value == 7  # D10: the next seed, not 560584748
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
    assert "bw-colorbar" in explorer.map_view.colorbar.value  # D10: a key for the shading
    explorer.boundaries_checkbox.value = False
    assert len(explorer.map_view.boundaries.x) == 0
    explorer.boundaries_checkbox.value = True
    assert len(explorer.map_view.boundaries.x) == len(boundary_lines(sl))
    explorer.shading = "labels"
    assert explorer.map_view.colorbar.value == ""


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
        assert picker.complete({"kind": name}) == picker.value
        for p in kind.parameters:
            if p.type == "int" and p.default is None:  # optional: empty text means None
                picker.controls[p.name].value = "4"
                assert picker.value["params"][p.name] == 4
                picker.set_value({"kind": name, "params": {p.name: None}}, notify=False)
                assert picker.controls[p.name].value == "" and picker.value["params"][p.name] is None


def click(explorer, alpha: float, beta: float) -> None:
    message = {"event": "element_click", "data": {"click_x": alpha, "click_y": beta}}
    explorer.map_view.image._handle_custom_msg(message, [])


def click_marker(mark, index: int) -> None:
    mark._handle_custom_msg({"event": "element_click", "data": {"index": index}}, [])


def test_click_shows_the_point_and_its_top_k_probabilities(explorer):
    alpha, beta = 0.7, -0.4
    click(explorer, alpha, beta)
    selection = explorer.selection
    point = explorer.slice.plane.point(alpha, beta)
    assert torch.equal(selection.image, point)
    expected = explorer.clf.probabilities(point).double().numpy()
    np.testing.assert_allclose(selection.probabilities, expected, rtol=1e-6)
    top = top_k(expected, explorer.clf.class_names, 10)
    np.testing.assert_allclose(explorer.point_view.bars.y, [p for *_, p in top], rtol=1e-6)
    assert list(explorer.point_view.bars.x) == [name for _, name, _ in top]
    assert selection.label == int(expected.argmax())
    assert list(explorer.map_view.click_marker.x) == [alpha]
    assert list(explorer.map_view.click_marker.y) == [beta]
    picture = decode(explorer.point_view.picture.value)
    assert picture.shape[0] >= 64  # 8×8 digit enlarged
    assert "α = 0.700, β = -0.400" in explorer.point_view.caption.value
    assert explorer.state["click"] == [alpha, beta]


def test_clicks_on_markers_are_not_swallowed(explorer, digits):
    view = explorer.map_view
    click_marker(view.anchors, 0)  # the origin: the most natural first click
    assert explorer.selection is not None and (explorer.selection.alpha, explorer.selection.beta) == (0.0, 0.0)
    assert torch.equal(explorer.selection.image, explorer.origin)
    click_marker(view.anchors, 1)  # the boundary marker
    assert explorer.selection.alpha == pytest.approx(float(view.anchors.x[1]))
    click(explorer, 0.5, 0.5)
    click_marker(view.click_marker, 0)  # on the previous click's cross
    assert (explorer.selection.alpha, explorer.selection.beta) == (0.5, 0.5)
    view.hatch._handle_custom_msg({"event": "element_click", "data": {"click_x": 0.25, "click_y": 0.1}}, [])
    assert (explorer.selection.alpha, explorer.selection.beta) == (0.25, 0.1)  # the hatch overlay passes clicks on
    assert not view.figure.display_toolbar  # its hover toolbar covered the top-right corner
    clf, data = digits
    margins = bw.MarginExplorer(clf, data.images[:2], result=_tiny_margins(clf, data), threaded=False)
    assert not margins.chart.display_toolbar


def _tiny_margins(clf, data):
    return bw.analysis.band_margins(clf, data.images[:2])


def test_the_origin_says_which_image_it_is(digits):
    clf, data = digits
    first_test = int(data.test_indices[0])
    explorer = SliceExplorer(clf, data.images[first_test], dataset=data, resolution=16, threaded=False)
    assert explorer.sample == first_test  # the x given is found in the data set
    assert (explorer.split_toggle.value, explorer.index_slider.value) == ("test", 0)
    caption = explorer.origin_caption.value
    true, predicted = int(data.labels[first_test]), int(clf.predict(data.images[first_test]))
    assert f"test image 0 (data set #{first_test})" in caption
    assert f"true <b>{true}</b>" in caption and f"predicted <b>{predicted}</b>" in caption
    default = SliceExplorer(clf, dataset=data, resolution=16, threaded=False)
    assert default.sample == first_test  # the test split by default
    outside = SliceExplorer(clf, data.images[0] * 0.5, dataset=data, resolution=16, threaded=False)
    assert outside.sample is None and "passed in" in outside.origin_caption.value
    outside.index_slider.value = 3
    assert outside.sample == int(data.test_indices[3]) and "test image 3" in outside.origin_caption.value


def _px(layout_width: str | None) -> int:
    return int(str(layout_width).removesuffix("px"))


def test_status_on_top_and_panels_fit_a_jupyterlab_column(explorer):
    header = explorer.ui.children[0]
    assert explorer.status in header.children and explorer.progress in header.children
    body = explorer.ui.children[1]
    controls, main, preview = body.children
    assert main is explorer.map_view.ui and preview is explorer.point_view.ui
    width = _px(controls.layout.width) + _px(main.layout.width) + _px(preview.layout.width)
    # JupyterLab at 1280 px with the file browser open leaves an output area of about 845 px.
    assert width <= 840
    assert body.layout.flex_flow == "row wrap"


def test_path_and_margin_explorers_fit_the_column_too(path_explorer, digits):
    clf, data = digits
    margins = bw.MarginExplorer(clf, data.images[:2], result=_tiny_margins(clf, data), threaded=False)
    for explorer in (path_explorer, margins):
        header, body = explorer.ui.children[:2]
        assert explorer.status in header.children
        main, preview = body.children
        columns = [_px(child.layout.width) for child in main.children]
        assert sum(columns) + _px(preview.layout.width) <= 840, columns


def is_grey(png: bytes) -> bool:
    rgb = decode(png).astype(int)
    return bool((np.abs(rgb - rgb.mean(axis=2, keepdims=True)) <= 1).all())


def test_an_error_greys_the_map_and_the_widget_recovers(explorer):
    predicted = int(explorer.clf.predict(explorer.origin))
    explorer.u_picker.controls["method"].value = "gradient"
    sl = explorer.slice
    assert not is_grey(explorer.map_view.png.value)
    explorer.u_picker.controls["target"].value = predicted  # the gradient method refuses its own class
    assert explorer.error is not None and "`target` must differ" in explorer.error
    assert "bw-error" in explorer.status.value and "target" in explorer.status.value
    assert explorer.progress.bar_style == "danger"
    assert explorer.slice is sl
    assert is_grey(explorer.map_view.png.value) and "map out of date" in explorer.map_view.notice.value
    explorer.u_picker.controls["target"].value = (predicted + 1) % 10
    assert explorer.error is None and "bw-error" not in explorer.status.value
    assert not is_grey(explorer.map_view.png.value) and explorer.map_view.notice.value == ""
    explorer.u = {"kind": "adversarial"}
    explorer.v = {"kind": "adversarial"}
    assert "parallel" in explorer.error and is_grey(explorer.map_view.png.value)


def test_options_that_cannot_work_are_not_offered(digits):
    clf, data = digits
    alone = SliceExplorer(clf, data.images[0], resolution=16, threaded=False)
    assert "image" not in alone.u_picker.kind_dropdown.options and "data set" in alone.u_picker.unavailable["image"]
    with pytest.raises(ValueError, match="needs a data set"):
        SliceExplorer(clf, data.images[0], u="image", resolution=16, threaded=False)
    assert bw.widgets.controls.piecewise_linear(clf)
    alone.v_picker.kind_dropdown.value = "curvature"
    assert "exact" not in alone.v_picker.controls["mode"].options and "ReLU" in alone.v_picker.note.value
    smooth, _ = bw.zoo.load("digits-smooth", device="cpu")
    picker = DirectionPicker(
        "v",
        kind="curvature",
        class_names=smooth.class_names,
        piecewise_linear=bw.widgets.controls.piecewise_linear(smooth),
    )
    assert "exact" in picker.controls["mode"].options
    explorer = SliceExplorer(
        clf, data.images[5], dataset=data, u="image", u_params={"other": 5}, resolution=16, threaded=False
    )
    assert "origin itself" in explorer.error


def test_a_curvature_direction_shows_its_values_with_their_spread_across_seeds(digits):
    """Under the picker: the principal curvature the direction follows and its spread over two Lanczos
    seeds, the very numbers principal_curvatures gives; one run says the spread is not measured."""
    clf, data = digits
    explorer = SliceExplorer(clf, data.images[0], dataset=data, u="curvature", resolution=16, threaded=False)
    result = bw.principal_curvatures(clf, data.images[0], k=5, lanczos_runs=2)
    found = explorer.u_picker.found.value
    first = f"{result.values[0]:.3g}".replace("-", "−")
    assert f"κ₁ = {first} ± {100 * result.spread[0]:.1f} % (across 2 Lanczos seeds)" in found
    assert result.spread.max() > 0.05 and explorer.v_picker.found.value == ""
    explorer.u_picker.controls["index"].value = 1
    second = f"{result.values[1]:.3g}".replace("-", "−")
    assert f"κ₂ = {second} ± {100 * result.spread[1]:.1f} %" in explorer.u_picker.found.value
    explorer.u_picker.controls["lanczos_runs"].value = 1
    assert "spread across seeds is not measured" in explorer.u_picker.found.value


def test_the_outside_of_the_input_box_is_hatched_and_the_preview_says_clipped(explorer):
    explorer.extent = 3.0
    view, plane = explorer.map_view, explorer.plane
    rgba = np.asarray(PILImage.open(io.BytesIO(view.hatch.image.value)))
    size = rgba.shape[0]
    grid = np.linspace(-3.0, 3.0, size)
    expected = outside_box(plane, grid, grid, explorer.clf.bounds)[::-1]
    stripes = (np.add.outer(np.arange(size), np.arange(size)) % _HATCH_PERIOD) == 0
    np.testing.assert_array_equal(rgba[..., 3] > 0, expected & stripes)
    # Readable regions: however much of the plane is outside, at most one pixel in 10 is striped, half-transparent.
    assert (rgba[..., 3] > 0).mean() <= 0.1 and rgba[..., 3].max() <= 128
    assert not (rgba[..., 3][~expected] > 0).any() and (rgba[..., 3][expected & stripes] > 0).all()
    # Spot checks against the definition: some pixel of the point leaves [low, high].
    low, high = explorer.clf.bounds
    for i, j in ((0, 0), (size // 2, size // 2), (size - 1, 3), (10, size - 5)):
        point = plane.point(grid[j], grid[::-1][i])
        assert bool(((point < low) | (point > high)).any()) == expected[i, j]
    assert "outside the input box" in view.markers_legend.value
    click(explorer, 0.0, 0.0)
    assert explorer.selection.pixels_outside == 0 and "clipped" not in explorer.point_view.caption.value
    click(explorer, 2.5, 2.5)
    assert explorer.selection.pixels_outside > 0 and "picture clipped" in explorer.point_view.caption.value


def test_a_2d_model_is_drawn_in_its_own_coordinates_with_the_data(digits):
    clf, data = bw.zoo.load("moons-mlp", device="cpu")
    explorer = SliceExplorer(clf, dataset=data, resolution=24, threaded=False)
    assert explorer.error is None and explorer.planar
    np.testing.assert_array_equal(explorer.plane.origin.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(explorer.plane.u.numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(explorer.plane.v.numpy(), [0.0, 1.0])
    points = explorer.map_view.overlays[0]
    assert len(points.x) > 100 and set(np.unique(points.color)) == {0, 1}
    assert [axis.label for axis in explorer.map_view.figure.axes] == ["x₁", "x₂"]
    sample = data.images[explorer.sample]
    np.testing.assert_allclose([explorer.map_view.anchors.x[0], explorer.map_view.anchors.y[0]], sample.numpy())
    (a0, a1), (b0, b1) = explorer.slice.extent
    low, high = data.images.min(dim=0).values, data.images.max(dim=0).values
    assert a0 < low[0] and a1 > high[0] and b0 < low[1] and b1 > high[1]  # every data point on the map
    click(explorer, 0.5, 0.25)
    assert torch.allclose(explorer.selection.image, torch.tensor([0.5, 0.25]))
    assert "x₁ = 0.500, x₂ = 0.250" in explorer.point_view.caption.value
    assert explorer.point_view.picture.layout.display == "none"  # no broken image for a 2-D input


def test_titles_labels_markers_and_the_other_image(digits):
    clf, data = digits
    explorer = SliceExplorer(
        clf,
        data.images[0],
        dataset=data,
        preset="plane through three images",
        resolution=16,
        extent=0.5,
        threaded=False,
    )
    assert explorer.error is None
    assert explorer.map_view.figure.title.startswith("u: image")
    assert explorer.method_dropdown.description == "evaluation"
    explorer.u_picker.kind_dropdown.value = "adversarial"
    assert explorer.u_picker.controls["method"].description == "u method"
    names = explorer.map_view.anchor_names
    outside = [name for name in names if "outside the map" in name]
    assert outside, names  # the other image is marked at the edge, with its coordinates
    (a0, a1), _ = explorer.slice.extent
    index = names.index(outside[0])
    assert a0 <= explorer.map_view.anchors.x[index] <= a1
    assert decode(explorer.v_picker.thumbnails["other"].value).shape[0] == 40  # a thumbnail of `other`
    fresh = SliceExplorer(clf, data.images[0], resolution=16, threaded=False)
    assert PILImage.open(io.BytesIO(fresh.point_view.picture.value)).format == "PNG"  # not a broken image


def test_margin_explorer_has_the_base_features(digits):
    clf, data = digits
    explorer = bw.MarginExplorer(
        clf, data.images[:3], result=bw.analysis.band_margins(clf, data.images[:3]), resolution=16, threaded=False
    )
    assert explorer.map_view.figure.layout.visibility == "hidden"  # no empty -1…1 map first
    assert explorer.wait(1) and explorer.error is None
    image, band = 1, 0
    explorer._dot_clicked(
        explorer.dots,
        {
            "data": {
                "index": int(np.flatnonzero((explorer._points[:, 0] == image) & (explorer._points[:, 1] == band))[0])
            }
        },
    )
    assert explorer.selected == (image, band) and explorer.map_view.figure.layout.visibility == "visible"
    assert list(explorer.chosen.y) == [pytest.approx(explorer.result.margins[image, band])]  # highlighted
    click(explorer, 0.1, -0.1)
    assert torch.equal(explorer.selection.image, explorer.plane.point(0.1, -0.1))
    axis_offsets = [axis.label_offset for axis in explorer.chart.axes]
    assert all(axis_offsets)
    with pytest.raises(ValueError, match="`image` and `band`"):
        explorer.show_slice(99, 0)


def test_directions_are_cached_on_content(digits):
    clf, data = bw.zoo.load("digits-cnn", device="cpu")  # its own copy: this test changes the weights
    explorer = SliceExplorer(clf, data.images[0], dataset=data, u="curvature", resolution=16, threaded=False)
    assert explorer.error is None and explorer.direction_computations == 2
    for extent in (0.5, 1.0, 1.5, 2.0, 2.5):
        explorer.extent = extent
    explorer.resolution = 32
    explorer.shading = "confidence"
    assert explorer.direction_computations == 2
    explorer.v_picker.controls["seed"].value = 9
    assert explorer.direction_computations == 3
    if hasattr(clf, "state_checksum"):
        with torch.no_grad():
            next(clf.net.parameters()).mul_(1.5)  # new weights: the directions are stale
        explorer.extent = 3.0
        assert explorer.direction_computations == 5


def test_from_state_reproduces_the_view(explorer, digits, tmp_path):
    clf, data = digits
    explorer.v_picker.controls["seed"].value = 11
    explorer.extent_slider.value = 3.0
    explorer.shading_toggle.value = "confidence"
    click(explorer, 0.3, 0.2)
    state = explorer.state
    for given in (state, explorer.share):
        copy = SliceExplorer.from_state(clf, data.images[0], given, dataset=data, threaded=False)
        assert copy.state == state
        np.testing.assert_array_equal(copy.slice.labels, explorer.slice.labels)
        assert copy.slice.plane.fingerprint() == explorer.slice.plane.fingerprint()
        assert copy.map_view.png.value == explorer.map_view.png.value
        np.testing.assert_array_equal(copy.selection.probabilities, explorer.selection.probabilities)
    assert explorer.share_text.value == explorer.share  # the visible share control
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
    with pytest.raises(ValueError, match="`resolution`"):
        SliceExplorer(clf, data.images[0], resolution=5000, threaded=False)
    with pytest.raises(TypeError, match="`clf`"):
        SliceExplorer(object(), data.images[0])
    with pytest.raises(ValueError, match="`sample`"):
        SliceExplorer(clf, data.images[0], sample=3)
    with pytest.raises(ValueError, match="`sample`"):
        SliceExplorer(clf, dataset=data, sample=len(data))


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


def test_close_cancels_and_joins_the_worker(digits):
    clf, data = digits
    explorer = SliceExplorer(clf, data.images[0], resolution=512, method="dense", threaded=True)
    job = explorer.refresh()
    explorer.close()
    assert job.stale and not explorer.worker._thread.is_alive()
    assert explorer.refresh().stale  # a closed explorer starts nothing


@pytest.mark.parametrize("last_line", ["bw.SliceExplorer(clf, x)", "bw.PathExplorer(clf, x, x2)"])
def test_a_script_ending_with_an_explorer_exits_cleanly(last_line):
    script = textwrap.dedent(
        f"""
        import boundary_widgets as bw
        clf, data = bw.zoo.load("digits-cnn", device="cpu")
        x, x2 = data.images[0], data.images[10]
        {last_line}
        """
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "terminate called" not in done.stderr


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
    explorer.close()


def test_a_click_is_answered_while_a_slice_computes(digits):
    clf, data = digits
    explorer = SliceExplorer(clf, data.images[0], resolution=32, threaded=True)
    assert explorer.wait(60)
    explorer.resolution = 512
    explorer.method = "dense"
    click(explorer, 0.2, 0.1)  # from the kernel thread, while the worker classifies 512²
    assert explorer.worker.busy
    assert explorer.selection is not None and explorer.selection.alpha == 0.2
    explorer.close()


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
    coordinates = path.plane_coordinates()
    np.testing.assert_allclose(explorer.path_mark.x, coordinates[:, 0], atol=1e-6)
    np.testing.assert_allclose(explorer.path_mark.y, coordinates[:, 1], atol=1e-6)
    np.testing.assert_array_equal(decode(explorer.map_view.png.value), slice_rgb(explorer.slice)[::-1])
    assert f"class {path.class_name}" in explorer.profile_caption.value


def test_path_explorer_segment_axes_labels_and_status(path_explorer):
    explorer = path_explorer
    coordinates = explorer.path.plane_coordinates()
    np.testing.assert_allclose(explorer.segment_mark.x, coordinates[[0, -1], 0], atol=1e-6)  # the straight segment
    np.testing.assert_allclose(explorer.segment_mark.y, coordinates[[0, -1], 1], atol=1e-6)
    assert explorer.p_scale.min == 0.0  # no probability axis running to -0.55
    assert list(explorer.strip_labels.text) == ["path", "straight line"]
    assert not explorer.path_probability.display_legend and "dashed: straight line" in explorer.profile_caption.value
    assert "ConnectingPath(" not in explorer.status.value and "path found" in explorer.status.value
    assert explorer.samples_input.style.description_width == "initial"


def test_path_scrubber_and_click_show_the_point(path_explorer):
    explorer = path_explorer
    explorer.scrubber.value = 0.25
    expected = explorer.path.points_at([0.25 * explorer.path.length])[0]
    assert torch.equal(explorer.selection.image, expected)
    np.testing.assert_allclose(explorer.selection.probabilities, explorer.clf.probabilities(expected).double().numpy())
    assert list(explorer.position_line.x) == [0.25, 0.25] and explorer.position == 0.25
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


def test_presets_set_both_directions(digits):
    clf, data = digits
    explorer = SliceExplorer(clf, data.images[0], dataset=data, resolution=16, threaded=False)
    assert list(explorer.preset_dropdown.options)[1:] == list(bw.presets.available())
    for name in bw.presets.available():
        preset = bw.presets.get(name)
        if preset.v.kind == "curvature" or "sparse" in (preset.u.kind, preset.v.kind):
            continue  # seconds each on a CPU; the mechanics are the same
        explorer.preset_dropdown.value = name
        assert explorer.preset == name and explorer.error is None, explorer.error
        assert explorer.u["kind"] == preset.u.kind and explorer.v["kind"] == preset.v.kind
        for key, value in preset.u.params.items():
            assert explorer.u["params"][key] == value
    explorer.u_picker.kind_dropdown.value = "random"
    assert explorer.preset is None and explorer.preset_dropdown.value == "custom"  # a hand-made plane


def test_a_long_direction_shows_progress_and_a_newer_request_cancels_it(digits):
    clf, data = digits
    explorer = SliceExplorer(clf, data.images[0], resolution=16, threaded=True)
    assert explorer.wait(60)
    statuses: list[str] = []
    explorer.status.observe(lambda change: statuses.append(change["new"]), names="value")
    explorer.u = {"kind": "curvature", "params": {"k": 30}}
    deadline = time.monotonic() + 60
    while not any("direction u: " in status for status in statuses):  # "direction u: done/total…"
        assert time.monotonic() < deadline and explorer.worker.busy, "no progress reported"
        time.sleep(0.01)
    computed = explorer.direction_computations
    explorer.u = {"kind": "adversarial"}  # a newer request while the curvature runs
    assert explorer.wait(60) and explorer.error is None
    assert explorer.slice.plane.u.shape == explorer.origin.shape
    assert not any(d.kind == "curvature" for d in explorer.direction_cache)  # stopped, never finished
    assert explorer.direction_computations == computed  # the adversarial direction was cached
    explorer.close()
