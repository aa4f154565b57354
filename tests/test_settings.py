"""Explorer settings declared once, as validating traits: one table of bad settings walked through the four doors
(trait, constructor, set_state, from_state) of every explorer; one plane pipeline; properties; warnings."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
import traitlets

import boundary_widgets as bw
from boundary_widgets.core import directions
from boundary_widgets.core.extent import default_extent
from boundary_widgets.core.pipeline import DirectionCache, resolve_plane
from boundary_widgets.core.slices import MAX_RESOLUTION
from boundary_widgets.widgets import CompareExplorer, MarginExplorer, PathExplorer, SliceExplorer, TrainingExplorer
from boundary_widgets.widgets.settings import MAX_MAP_RESOLUTION, Setting

V, T = ValueError, TypeError
EXPLORERS = (SliceExplorer, CompareExplorer, PathExplorer, TrainingExplorer, MarginExplorer)


@pytest.fixture(scope="module")
def moons():
    return bw.zoo.load("moons-mlp", device="cpu")


@pytest.fixture(scope="module")
def margins_result(digits):
    clf, data = digits
    return bw.analysis.band_margins(clf, data.images[:2])


@pytest.fixture(scope="module")
def build(digits, moons, margins_result):
    """``build(name, **settings)``: an explorer of each kind, small and inline, plus its from_state arguments."""
    clf, data = digits
    test_images = data.split("test")[0]
    a, b = torch.nonzero(clf.predict(test_images) == 3).flatten()[:2].tolist()
    pair = (test_images[a], test_images[b])

    def make(name: str, **settings):
        small = {"resolution": 8, "threaded": False}
        if name == "slice":
            return SliceExplorer(clf, data.images[0], **{"dataset": data, **small, **settings})
        if name == "compare":
            return CompareExplorer(clf, clf, data.images[0], **{"extent": 2.0, **small, **settings})
        if name == "path":
            return PathExplorer(clf, *pair, **{"max_depth": 1, **small, **settings})
        if name == "training":
            return TrainingExplorer(moons[0], moons[1], **{"width": 4, "depth": 1, **small, **settings})
        return MarginExplorer(clf, data.images[:2], **{"result": margins_result, **small, **settings})

    def rebuild(name: str, state):
        options = {"threaded": False}
        if name == "slice":
            return SliceExplorer.from_state(clf, data.images[0], state, dataset=data, **options)
        if name == "compare":
            return CompareExplorer.from_state(clf, data.images[0], state, clf_b=clf, **options)
        if name == "path":
            return PathExplorer.from_state(clf, pair, state, **options)
        if name == "training":
            return TrainingExplorer.from_state(moons[0], moons[1], state, **options)
        return MarginExplorer.from_state(clf, data.images[:2], state, result=margins_result, **options)

    explorers = {}

    def get(name: str):
        if name not in explorers:
            explorers[name] = make(name)
        return explorers[name]

    return make, rebuild, get


# One table of bad settings: (explorer, setting, bad value (JSON), error type). Every door must refuse it with that
# type, naming the setting, and change nothing.
BAD_SETTINGS = [
    ("slice", "resolution", 2000, V),
    ("slice", "resolution", [16, 40], T),
    ("slice", "resolution", 1, V),
    ("slice", "resolution", True, T),
    ("slice", "method", "bogus", V),
    ("slice", "shading", None, V),
    ("slice", "extent", -1.0, V),
    ("slice", "extent", 10**401, V),
    ("slice", "boundaries", "yes", T),
    ("slice", "clip", 1, T),
    ("slice", "click", [1.0], T),
    ("slice", "click", [1.0, 10**401], V),
    ("slice", "sample", 10**6, V),
    ("slice", "sample", -1, V),
    ("slice", "preset", "my plane", V),
    ("slice", "u", {"kind": "warp", "params": {}}, V),
    ("slice", "u", {"kind": "adversarial", "params": {"max_iter": 2**31 - 1}}, V),
    ("slice", "u", {"kind": "adversarial", "params": {"target": 10}}, V),
    ("slice", "v", {"kind": "sparse", "params": {"max_rounds": 2**31 - 1}}, V),
    ("slice", "v", {"kind": "random", "params": {"seed": "one"}}, T),
    ("compare", "directions_from", "c", V),
    ("compare", "resolution", 4, V),
    ("compare", "resolution", 600, V),
    ("compare", "extent", 0, V),
    ("compare", "click", "x", T),
    ("compare", "u", {"kind": "dct", "params": {"band": "top"}}, V),
    ("path", "max_depth", 17, V),
    ("path", "samples_per_segment", 1, V),
    ("path", "position", 2.0, V),
    ("path", "position", 10**401, V),
    ("path", "method", "fast", V),
    ("training", "width", 0, V),
    ("training", "depth", 7, V),
    ("training", "learning_rate", 10**401, V),
    ("training", "learning_rate", "fast", T),
    ("training", "seed", -1, V),
    ("training", "adversarial", "fgsm", V),
    ("training", "epsilon", 0, V),
    ("margins", "resolution", 2000, V),
    ("margins", "selected", [1], T),
    ("margins", "selected", [99, 0], V),
]


def constructor_arguments(name: str, value):
    """The constructor keywords of one setting (a direction is a kind and its ``*_params``)."""
    if name in ("u", "v") and isinstance(value, dict):
        return {name: value["kind"], f"{name}_params": value["params"]}
    return {name: tuple(value) if isinstance(value, list) else value}


@pytest.mark.parametrize(
    ("explorer", "name", "value", "error"), BAD_SETTINGS, ids=[f"{e}-{n}-{str(v)[:20]}" for e, n, v, _ in BAD_SETTINGS]
)
def test_a_bad_setting_is_refused_alike_by_every_door(build, explorer, name, value, error):
    make, rebuild, get = build
    e = get(explorer)
    before, generation = e.state, e.worker.generation
    python_value = tuple(value) if isinstance(value, list) else value

    with pytest.raises(traitlets.TraitError) as raised:  # door 1: the trait
        setattr(e, name, python_value)
    assert isinstance(raised.value, error) and f"`{name}" in str(raised.value)
    assert e.state == before and e.worker.generation == generation

    with pytest.raises(error) as raised:  # door 2: the constructor
        make(explorer, **constructor_arguments(name, value))
    assert type(raised.value) in (ValueError, TypeError) and f"`{name}" in str(raised.value)

    e.set_state({name: value})  # door 3: set_state (the share box's apply button)
    assert e.state == before and e.worker.generation == generation
    assert f"`state[{name!r}]" in e.error

    with pytest.raises(error) as raised:  # door 4: from_state
        rebuild(explorer, {name: value})
    assert type(raised.value) in (ValueError, TypeError) and f"`state[{name!r}]" in str(raised.value)


@pytest.mark.parametrize("cls", EXPLORERS, ids=lambda c: c.__name__)
def test_each_setting_is_one_trait_and_the_constructor_keywords_match_it(cls):
    settings = cls.settings()
    assert settings and all(isinstance(trait, Setting) for trait in settings.values())
    assert set(settings) == set(cls.class_trait_names(state=True))
    signature = inspect.signature(cls.__init__).parameters
    for name, trait in settings.items():
        if name in ("u", "v"):
            continue  # given as a kind and its *_params
        default = signature[name].default
        if name == "method" and default is None:
            continue  # None: the default method
        expected = tuple(trait.default_value) if isinstance(trait.default_value, list) else trait.default_value
        assert default == expected, (cls.__name__, name)


@pytest.mark.parametrize("cls", EXPLORERS, ids=lambda c: c.__name__)
def test_slice_and_plane_are_properties_of_every_explorer(cls):
    for name in ("slice", "plane"):
        assert isinstance(inspect.getattr_static(cls, name), property), (cls.__name__, name)


def test_resolution_caps_are_one_constant_below_the_cores():
    assert MAX_MAP_RESOLUTION <= MAX_RESOLUTION
    for cls in EXPLORERS:
        assert cls.settings()["resolution"].spec.maximum <= MAX_MAP_RESOLUTION


def test_a_pair_resolution_is_refused_not_squashed(digits):
    clf, data = digits
    with pytest.raises(TypeError, match="square"):
        SliceExplorer(clf, data.images[0], resolution=(16, 40), threaded=False)


def test_a_refused_method_leaves_the_dropdown_and_the_share_string_usable(build):
    _make, rebuild, get = build
    e = get("slice")
    with pytest.raises(ValueError, match="`method`"):
        e.method = "bogus"
    assert e.method_dropdown.value == e.method == "adaptive"
    assert rebuild("slice", e.share).state == e.state


def test_a_control_value_the_trait_refuses_is_put_back_and_explained(build):
    _make, _rebuild, get = build
    e = get("slice")
    e.u_picker.controls["max_iter"].max = 10**6  # a control that lets through what the trait refuses
    e.u_picker.controls["max_iter"].value = 5000
    assert e.u["params"]["max_iter"] == 50 and "`u['params']['max_iter']` must be <= 1000" in e.error
    e.u_picker.controls["max_iter"].value = 50


def test_set_state_with_several_settings_computes_one_map(build):
    _make, _rebuild, get = build
    e = get("slice")
    generation = e.worker.generation
    e.set_state({"resolution": 10, "method": "dense", "clip": True, "v": {"kind": "random", "params": {"seed": 5}}})
    assert e.error is None and e.worker.generation == generation + 1
    assert e.slice.resolution == (10, 10) and e.slice.method == "dense"
    e.set_state({"resolution": 8, "method": "adaptive", "clip": False})


def test_a_direction_band_takes_every_form_the_core_takes(digits):
    clf, data = digits
    e = SliceExplorer(
        clf, data.images[0], u="dct", u_params={"band": (1, 4), "method": "random"}, resolution=8, threaded=False
    )
    assert e.error is None and e.u["params"]["band"] == [1, 4] and e.u_picker.controls["band"].value == "1:4"
    copy = SliceExplorer.from_state(clf, data.images[0], e.share, threaded=False)
    assert copy.slice.plane.fingerprint() == e.slice.plane.fingerprint()
    band = bw.core.dct.bands(clf.input_shape)[2]
    e.u = {"kind": "dct", "params": {"band": band, "method": "random"}}
    assert e.error is None and e.u["params"]["band"] == [list(band.rows), list(band.cols)]


# --- one plane pipeline -----------------------------------------------------------------------
def test_resolve_plane_spans_the_directions_and_reads_the_extent_off_deepfool(digits):
    clf, data = digits
    x = data.images[0]
    resolved = resolve_plane(clf, x, ("adversarial", {}), ("random", {"seed": 1}))
    assert resolved.extent == default_extent(clf, x) and resolved.extent_source == "DeepFool distance of u"
    u = directions.make("adversarial", clf, x)
    torch.testing.assert_close(resolved.plane.u, u.vector.flatten().reshape(resolved.plane.u.shape))
    given = resolve_plane(clf, x, u, ("random", {"seed": 1}), extent=0.7)
    assert given.extent == 0.7 and given.extent_source == "given"
    assert given.plane.fingerprint() == resolved.plane.fingerprint()
    with pytest.raises(ValueError, match="`max_iter`"):
        resolve_plane(clf, x, ("adversarial", {"max_iter": 10**6}), ("random", {}))


def test_the_direction_cache_keys_on_content(digits):
    clf, data = digits
    cache = DirectionCache(2)
    first = cache.get(clf, data.images[0], "random", {"seed": 3})
    assert cache.get(clf, data.images[0], "random", {"seed": 3}) is first and cache.computed == 1
    cache.get(clf, data.images[1], "random", {"seed": 3})
    cache.get(clf, data.images[0], "image", {"other": data.images[5]})
    assert cache.computed == 3 and len(cache) == 2  # the oldest went
    cache.get(clf, data.images[0], "image", {"other": data.images[6]})
    assert cache.computed == 4


def test_slice_and_compare_explorers_draw_the_plane_of_the_pipeline(digits):
    clf, data = digits
    x = data.images[0]
    expected = resolve_plane(clf, x, ("adversarial", {}), ("random", {"seed": 1}))
    one = SliceExplorer(clf, x, resolution=8, threaded=False)
    two = CompareExplorer(clf, clf, x, resolution=8, threaded=False)
    assert one.plane.fingerprint() == two.plane.fingerprint() == expected.plane.fingerprint()
    assert one.extent == expected.extent and two.slice.extent == ((-expected.extent, expected.extent),) * 2


# --- warnings our code used to cause -----------------------------------------------------------
def test_explorers_cause_no_deprecated_calls(build):
    make, _rebuild, _get = build
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("slice", "compare", "path", "training", "margins"):
            make(name)
    ours = [
        str(w.message) for w in caught if "unrecognized arguments" in str(w.message) or "use @observe" in str(w.message)
    ]
    assert ours == []
