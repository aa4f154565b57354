"""Every explorer saves what it shows as a PNG: its map(s) redrawn with matplotlib, with a legend
of the classes and one of the markers (the origin, the boundary found, the inspected point)."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image as PILImage

import boundary_widgets as bw

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def digits():
    return bw.zoo.load("digits-cnn", device="cpu")


def _legends(view) -> tuple[list[str], list[str]]:
    """The class legend's and the marker legend's texts of ``view`` drawn on fresh axes."""
    ax = Figure().add_subplot()
    view.draw(ax)
    legends = [child for child in ax.get_children() if isinstance(child, matplotlib.legend.Legend)]
    texts = {legend.get_title().get_text(): [t.get_text() for t in legend.get_texts()] for legend in legends}
    return texts["class"], texts["marker"]


def _explorers(digits):
    clf, data = digits
    images, _ = data.split("test")
    a, b = torch.nonzero(clf.predict(images) == 3).flatten()[:2].tolist()
    robust, _ = bw.zoo.load("digits-cnn-robust", device="cpu")
    moons_clf, moons = bw.zoo.load("moons-mlp", device="cpu")
    margins = bw.analysis.band_margins(clf, images[:2])
    margin_explorer = bw.MarginExplorer(clf, images[:2], result=margins, resolution=16, threaded=False)
    margin_explorer.show_slice(0, 0)
    return {
        "SliceExplorer": bw.SliceExplorer(clf, images[0], dataset=data, resolution=16, threaded=False),
        "PathExplorer": bw.PathExplorer(clf, images[a], images[b], resolution=16, threaded=False),
        "CompareExplorer": bw.CompareExplorer(clf, robust, images[0], resolution=16, threaded=False),
        "TrainingExplorer": bw.TrainingExplorer(moons_clf, moons, resolution=16, threaded=False),
        "MarginExplorer": margin_explorer,
    }


def test_every_explorer_saves_its_maps_with_class_and_marker_legends(digits, tmp_path):
    for name, explorer in _explorers(digits).items():
        explorer.select(0.1, 0.05)
        path = tmp_path / f"{name}.png"
        explorer.save_png(path)
        width, height = PILImage.open(path).size
        views = explorer._map_views()
        assert width > height * len(views) * 0.9, f"{name}: one panel per map, side by side ({width}×{height})"
        for view in views:
            classes, markers = _legends(view)
            shown = [explorer.clf.class_names[k] for k in view._slice.classes_present]
            assert set(classes) <= set(shown) and classes, f"{name}: the class legend {classes} against {shown}"
            assert "+ inspected" in markers, f"{name}: the inspected point is not in the marker legend {markers}"
            assert markers[0] == "origin" or name == "PathExplorer", markers
        explorer.close()


def test_the_slice_explorer_legend_names_the_boundary_marker(digits, tmp_path):
    clf, data = digits
    explorer = bw.SliceExplorer(clf, data.split("test")[0][0], resolution=16, threaded=False)
    _, markers = _legends(explorer.map_view)
    assert markers[:2] == ["origin", "boundary (u)"]


def test_saving_before_a_map_is_drawn_says_so(digits, tmp_path):
    clf, data = digits
    explorer = bw.MarginExplorer(clf, data.split("test")[0][:2], result=None, resolution=16, threaded=False)
    with pytest.raises(ValueError, match="`save_png` needs a drawn map"):
        explorer.save_png(tmp_path / "nothing.png")
    assert not (tmp_path / "nothing.png").exists()
