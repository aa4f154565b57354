"""The explorers at ImageNet scale (1000 classes, 3×64×64, random weights) and the geometry behind their defaults."""

from __future__ import annotations

import io
import re

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core.extent import box_intervals, default_extent, first_crossing, outside_box
from boundary_widgets.render import legend_entries, rgb_table, shorten, slice_rgb, top_k
from boundary_widgets.widgets import MarginExplorer, PathExplorer, SliceExplorer
from boundary_widgets.widgets.controls import DirectionPicker

matplotlib.use("Agg")

IMAGENET_LIKE = (
    "tench, Tinca tinca",
    "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias",
    "cock",
    "American Staffordshire terrier, Staffordshire terrier, American pit bull terrier, pit bull terrier",
    "Granny Smith",
    "crossword puzzle, crossword",
)
NAMES = [f"{IMAGENET_LIKE[k % len(IMAGENET_LIKE)]} {k}" for k in range(1000)]


def decode(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("RGB"))


def click(explorer, alpha: float, beta: float) -> None:
    explorer.map_view.image._handle_custom_msg(
        {"event": "element_click", "data": {"click_x": alpha, "click_y": beta}}, []
    )


@pytest.fixture(scope="module")
def clf_1000():
    """A random-weight 1000-class conv net at 3×64×64 (a flat head: a wide plane crosses many classes)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=4, padding=2),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(512, 1000),
    )
    return bw.Classifier(net, input_shape=(3, 64, 64), class_names=NAMES)


@pytest.fixture(scope="module")
def images():
    return torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def check_map_legend_and_top_k(explorer, clf) -> None:
    sl, view = explorer.slice, explorer.map_view
    assert explorer.error is None, explorer.error
    assert PILImage.open(io.BytesIO(view.png.value)).mode == "RGB"
    np.testing.assert_array_equal(decode(view.png.value), slice_rgb(sl)[::-1])
    shown = [int(k) for k in re.findall(r'data-class="(\d+)"', view.legend.value)]
    assert shown == [k for k, *_ in legend_entries(sl, max_entries=12)]
    for k in shown:
        assert shorten(clf.class_names[k]) in view.legend.value  # by (shortened) name
    more = len(sl.classes_present) - len(shown)
    assert (f"and {more} more" in view.legend.value) == (more > 0)
    explorer.select(0.3 * sl.alphas[-1], 0.2 * sl.betas[-1])
    top = top_k(explorer.selection.probabilities, clf.class_names, 10)
    bars = explorer.point_view.bars
    assert len(bars.y) == 10
    np.testing.assert_allclose(bars.y, [p for *_, p in top])
    assert [label.split(" (")[0] for label in bars.x] == [shorten(name, 18) for _, name, _ in top]
    assert all(len(label) <= 26 for label in bars.x)  # long names shortened in the view only
    assert explorer.clf.class_names[top[0][0]] == NAMES[top[0][0]]


def test_slice_explorer_at_1000_classes(clf_1000, images):
    explorer = SliceExplorer(
        clf_1000, images[0], u="random", v="random", extent=200.0, resolution=48, method="dense", threaded=False
    )
    assert len(explorer.slice.classes_present) > 12  # a legend that must be cut
    check_map_legend_and_top_k(explorer, clf_1000)
    # Class choices are searchable by name, not a 1000-entry dropdown.
    explorer.u_picker.kind_dropdown.value = "adversarial"
    target = explorer.u_picker.controls["target"]
    assert target.__class__.__name__ == "Combobox" and len(target.options) == 1001
    target.value = "granny smith 4"
    assert explorer.u["params"]["target"] == 4
    assert explorer.error is None


def test_the_widget_map_and_the_matplotlib_twin_share_class_colours(clf_1000, images):
    from boundary_widgets.plotting import SliceDisplay

    maps = []
    for seed in (0, 5):
        explorer = SliceExplorer(
            clf_1000,
            images[0],
            u="random",
            v="random",
            u_params={"seed": seed},
            v_params={"seed": seed + 1},
            extent=200.0,
            resolution=32,
            method="dense",
            threaded=False,
        )
        display = SliceDisplay(explorer.slice).plot()
        np.testing.assert_array_equal(np.asarray(display.image_.get_array()), decode(explorer.map_view.png.value)[::-1])
        maps.append((explorer.slice.labels, decode(explorer.map_view.png.value)[::-1]))
    (labels_a, pixels_a), (labels_b, pixels_b) = maps
    shared = sorted(set(np.unique(labels_a)) & set(np.unique(labels_b)))
    assert shared
    table = rgb_table(1000)
    for k in shared:  # one class, one colour, on two different planes
        np.testing.assert_array_equal(pixels_a[labels_a == k][0], table[k])
        np.testing.assert_array_equal(pixels_b[labels_b == k][0], table[k])


def test_default_extent_comes_from_the_nearest_boundary(clf_1000, images):
    explorer = SliceExplorer(clf_1000, images[0], v="random", resolution=16, threaded=False)
    found = bw.deepfool(clf_1000, images[0], candidates=10)
    assert explorer.extent == pytest.approx(3 * float(found.distances[0]), rel=0.05)
    # From u's own DeepFool when u is the default adversarial direction, else computed: the same value.
    assert explorer.extent == default_extent(clf_1000, images[0])
    other = SliceExplorer(clf_1000, images[0], u="random", v="random", resolution=16, threaded=False)
    assert other.extent == explorer.extent
    assert explorer.extent < 0.1 * np.sqrt(3 * 64 * 64)  # not the old sqrt(d)·(high-low)/4 = 27.7
    assert explorer.error is None


def test_path_explorer_at_1000_classes(clf_1000, images):
    labels = clf_1000.predict(images)
    first = int(labels[0])
    same = torch.nonzero(labels == first).flatten().tolist()
    x_b = images[same[1]] if len(same) > 1 else (images[0] * 0.9 + 0.05)
    explorer = PathExplorer(clf_1000, images[0], x_b, resolution=24, threaded=False)
    assert explorer.path is not None
    check_map_legend_and_top_k(explorer, clf_1000)


def test_margin_explorer_at_1000_classes(clf_1000, images):
    bands = [bw.dct.band((3, 64, 64), "low"), bw.dct.band((3, 64, 64), "high")]
    explorer = MarginExplorer(clf_1000, images[:2], bands=bands, resolution=24, threaded=False)
    assert explorer.result is not None and explorer.error is None
    explorer.show_slice(0, 1)
    check_map_legend_and_top_k(explorer, clf_1000)


def test_class_picker_resolves_names_and_indices():
    picker = DirectionPicker("u", kind="adversarial", class_names=NAMES)
    control = picker.controls["target"]
    for text, expected in (("auto", None), ("", None), ("7: cock 7", 7), ("12", 12), ("Cock 2", 2)):
        control.value = text
        assert picker.value["params"]["target"] == expected
    picker.set_value({"kind": "adversarial", "params": {"target": 999}}, notify=False)
    control = picker.controls["target"]  # rebuilt with the kind's defaults, then set
    assert control.value.startswith("999: ") and picker.value["params"]["target"] == 999


# --- the geometry behind the defaults, on models with closed-form answers --------------------------
def linear_two_class(weight: torch.Tensor, bias: float) -> bw.Classifier:
    net = nn.Sequential(nn.Flatten(), nn.Linear(weight.numel(), 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.stack([weight.flatten(), -weight.flatten()]) / 2)
        net[1].bias.copy_(torch.tensor([bias / 2, -bias / 2]))
    return bw.Classifier(net, input_shape=tuple(weight.shape), bounds=(-10.0, 10.0))


def test_default_extent_is_three_distances_to_a_linear_boundary():
    weight = torch.tensor([[3.0, 4.0]])  # logit gap w·x + b: the boundary is 1/5 of |w·x + b| away
    clf = linear_two_class(weight, bias=-1.0)
    x = torch.tensor([[1.0, 1.0]])  # gap 6: distance 1.2
    assert default_extent(clf, x) == pytest.approx(3 * 1.2 * 1.02, rel=0.02)  # DeepFool's overshoot included
    assert default_extent(clf, x, multiple=1.0) == pytest.approx(1.2 * 1.02, rel=0.02)
    with pytest.raises(ValueError, match="`multiple`"):
        default_extent(clf, x, multiple=0)


def test_first_crossing_finds_a_linear_boundary():
    clf = linear_two_class(torch.tensor([[3.0, 4.0]]), bias=-1.0)
    x = torch.tensor([[1.0, 1.0]])
    direction = -torch.tensor([[3.0, 4.0]])
    assert first_crossing(clf, x, direction, 3.0) == pytest.approx(1.2, abs=1e-4)
    assert first_crossing(clf, x, -direction, 3.0) is None  # away from the boundary


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 5)])
def test_box_intervals_are_exact(shape):
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(shape, generator=generator)
    x[..., 0, 0] = 0.0  # pixels on the bounds, as in real images
    plane = bw.Plane.through(x, torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))
    alphas = np.linspace(-2, 2, 41)
    betas = np.linspace(-2, 2, 37)
    mask = outside_box(plane, alphas, betas, (0.0, 1.0))
    points = plane.points(np.repeat(alphas[None], betas.size, 0).ravel(), np.repeat(betas, alphas.size))
    brute = ((points < 0) | (points > 1)).flatten(1).any(dim=1).numpy().reshape(betas.size, alphas.size)
    np.testing.assert_array_equal(mask, brute)
    lo, hi = box_intervals(plane, [0.0], (0.0, 1.0))
    assert lo[0] <= 0.0 <= hi[0]  # the origin is inside
