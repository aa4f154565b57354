"""The neutral rendering layer (colours, pictures, legends, top-k, short names) and the matplotlib twins,
at 1000 classes."""

from __future__ import annotations

import contourpy
import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

import boundary_widgets as bw
from boundary_widgets.render import (
    boundary_lines,
    class_colors,
    legend_entries,
    rgb_table,
    shorten,
    slice_rgb,
    top_k,
)

matplotlib.use("Agg")

IMAGENET_LIKE = (
    "tench, Tinca tinca",
    "goldfish, Carassius auratus",
    "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias",
    "tiger shark, Galeocerdo cuvieri",
    "cock",
    "Staffordshire bullterrier, Staffordshire bull terrier",
    "American Staffordshire terrier, Staffordshire terrier, American pit bull terrier, pit bull terrier",
    "Granny Smith",
    "ox",
    "crossword puzzle, crossword",
)


def imagenet_like_names(n: int) -> list[str]:
    """``n`` distinct names shaped like ImageNet's (short ones and some over 80 characters)."""
    return [f"{IMAGENET_LIKE[k % len(IMAGENET_LIKE)]} {k}" for k in range(n)]


@pytest.fixture(scope="module")
def clf_1000():
    """A random-weight 1000-class conv net at 3×64×64; a flat head so that a wide plane crosses many classes."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=4, padding=2),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(512, 1000),
    )
    return bw.Classifier(net, input_shape=(3, 64, 64), class_names=imagenet_like_names(1000))


@pytest.fixture(scope="module")
def two_slices(clf_1000):
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(3, 64, 64, generator=generator)
    planes = [
        bw.Plane.through(x, torch.randn(3, 64, 64, generator=generator), torch.randn(3, 64, 64, generator=generator))
        for _ in range(2)
    ]
    return [bw.compute_slice(clf_1000, plane, extent=200.0, resolution=48, method="dense") for plane in planes]


def test_colours_depend_only_on_the_class_index():
    big = rgb_table(2000)
    for n in (1, 2, 10, 11, 257, 1000, 1500):
        np.testing.assert_array_equal(rgb_table(n), big[:n])
        assert class_colors(n) == [f"#{r:02X}{g:02X}{b:02X}" for r, g, b in big[:n].tolist()]
    assert len({tuple(row) for row in big.tolist()}) == 2000, "every class has its own colour"
    step = np.linalg.norm(np.diff(big.astype(float), axis=0), axis=1)
    assert step.min() > 60, "neighbouring classes (often related ones) must look different"
    assert not big.flags.writeable


def test_a_class_has_one_colour_across_planes_and_views(two_slices):
    table = rgb_table(1000)
    shared = set(two_slices[0].classes_present) & set(two_slices[1].classes_present)
    assert shared, "the two planes through one image share its class"
    for sl in two_slices:
        pixels = slice_rgb(sl)
        for k in sl.classes_present:
            assert (pixels[sl.labels == k] == table[k]).all()
        display = bw.plot_slice(sl, legend=False)
        np.testing.assert_array_equal(np.asarray(display.image_.get_array()), pixels)
        display.figure_.clf()


def test_slice_rgb_confidence_fades_toward_white(two_slices):
    sl = two_slices[0]
    faded = slice_rgb(sl, shading="confidence").astype(int)
    solid = slice_rgb(sl).astype(int)
    assert (faded >= solid).all()
    chance = 1.0 / len(sl.class_names)
    strength = np.clip((sl.confidence - chance) / (1 - chance), 0, 1)[..., None]
    np.testing.assert_allclose(faded, 255 - strength * (255 - solid), atol=0.51)
    with pytest.raises(ValueError, match="`shading`"):
        slice_rgb(sl, shading="nope")


def test_boundary_lines_equal_the_whole_grid_contours(two_slices):
    """Contouring each class over its grown bounding box finds every vertex the whole-grid contour finds."""

    def whole_grid(sl):
        pieces = []
        for k in sl.classes_present:
            signed = np.where(sl.labels == k, sl.margin, -sl.margin).astype(np.float64)
            for line in contourpy.contour_generator(sl.alphas, sl.betas, signed).lines(0.0):
                pieces.append(line)
        return np.concatenate(pieces)

    vertices = lambda lines: sorted(map(tuple, np.round(lines[~np.isnan(lines[:, 0])], 9)))  # noqa: E731
    for sl in two_slices:
        expected = whole_grid(sl)
        assert expected.shape[0] > 100
        assert vertices(boundary_lines(sl)) == vertices(expected)


def test_legend_entries_by_area(two_slices):
    sl = two_slices[0]
    entries = legend_entries(sl)
    assert len(sl.classes_present) > 12, "the wide plane crosses many classes"
    counts = np.bincount(sl.labels.ravel(), minlength=1000)
    assert sorted(k for k, *_ in entries) == sl.classes_present
    shares = [share for _, _, share, _ in entries]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0)
    colours = class_colors(1000)
    for k, name, share, colour in entries:
        assert name == sl.class_names[k]
        assert share == pytest.approx(counts[k] / sl.labels.size)
        assert colour == colours[k]
    assert legend_entries(sl, max_entries=5) == entries[:5]
    with pytest.raises(ValueError, match="`max_entries`"):
        legend_entries(sl, max_entries=0)


def test_top_k():
    names = imagenet_like_names(1000)
    p = torch.softmax(torch.randn(1000, generator=torch.Generator().manual_seed(0)), 0)
    entries = top_k(p, names)
    order = torch.argsort(p, descending=True)[:10].tolist()
    assert [k for k, _, _ in entries] == order
    assert [name for _, name, _ in entries] == [names[k] for k in order]
    np.testing.assert_allclose([q for _, _, q in entries], p[order].numpy(), rtol=1e-6)
    assert top_k(np.array([0.25, 0.5, 0.25]), ["a", "b", "c"], k=5) == [(1, "b", 0.5), (0, "a", 0.25), (2, "c", 0.25)]
    with pytest.raises(ValueError, match="`class_names`"):
        top_k(p, names[:3])
    with pytest.raises(ValueError, match="`probabilities`"):
        top_k(p.reshape(10, 100), names)
    with pytest.raises(ValueError, match="`k`"):
        top_k(p, names, k=0)


def test_shorten_only_long_names():
    assert shorten("ox") == "ox"
    exact = "x" * 24
    assert shorten(exact) == exact
    long = IMAGENET_LIKE[2]
    short = shorten(long, 24)
    assert len(short) <= 24 and short.endswith("…") and long.startswith(short[:-1])
    assert shorten("great white shark, white shark", 19) == "great white shark…"
    with pytest.raises(ValueError, match="`width`"):
        shorten(long, 1)
    with pytest.raises(TypeError, match="`name`"):
        shorten(3)


def test_plot_slice_legend_names_the_largest_classes(two_slices):
    sl = two_slices[0]
    display = bw.plot_slice(sl)
    texts = [t.get_text() for t in display.legend_.get_texts()]
    entries = legend_entries(sl)
    assert texts[:12] == [shorten(name, 24) for _, name, _, _ in entries[:12]]
    assert texts[12:] == [f"and {len(entries) - 12} more"]
    swatches = display.legend_.legend_handles[:12]
    for patch, (_, _, _, colour) in zip(swatches, entries, strict=False):
        assert matplotlib.colors.to_hex(patch.get_facecolor()).upper() == colour
    display.figure_.clf()
    few = bw.plot_slice(sl, max_legend_entries=len(entries))
    assert [t.get_text() for t in few.legend_.get_texts()] == [shorten(name, 24) for _, name, _, _ in entries]
    few.figure_.clf()


def test_plot_top_k_bars(clf_1000):
    p = clf_1000.probabilities(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(3)))
    ax = bw.plotting.plot_top_k(p, clf_1000.class_names, k=7)
    entries = top_k(p, clf_1000.class_names, k=7)
    bars = sorted(ax.patches, key=lambda bar: -bar.get_y())  # most probable on top
    assert len(bars) == 7
    np.testing.assert_allclose([bar.get_width() for bar in bars], [q for _, _, q in entries], rtol=1e-6)
    colours = class_colors(1000)
    assert [matplotlib.colors.to_hex(bar.get_facecolor()).upper() for bar in bars] == [
        colours[k] for k, _, _ in entries
    ]
    labels = {t.get_text() for t in ax.get_yticklabels()}
    assert labels == {shorten(name, 24) for _, name, _ in entries}
    ax.figure.clf()


def test_boundary_lines_start_and_end_on_a_vertex(two_slices):
    """bqplot's Lines places its (hidden) curve label at the last vertex: a NaN there logs
    `translate(undefined,undefined)` errors in the browser console at every redraw."""
    for sl in two_slices:
        lines = boundary_lines(sl)
        assert np.isnan(lines[:, 0]).sum() >= 1, "several segments, split by NaN rows"
        assert np.isfinite(lines[0]).all() and np.isfinite(lines[-1]).all()
