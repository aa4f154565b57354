"""Explorer state: traits, the share string, from_state on every explorer, and every malformed state refused clearly."""

from __future__ import annotations

import base64
import json
import zlib

import ipywidgets as widgets
import numpy as np
import pytest
import torch

import boundary_widgets as bw
from boundary_widgets.widgets import Explorer, MarginExplorer, PathExplorer, SliceExplorer
from boundary_widgets.widgets.base import MAX_STATE_CHARS, SHARE_PREFIX, encode_share, parse_state


@pytest.fixture(scope="module")
def slice_explorer(digits):
    clf, data = digits
    explorer = SliceExplorer(clf, data.images[0], dataset=data, resolution=16, threaded=False)
    explorer.v_picker.controls["seed"].value = 7
    explorer.select(0.25, -0.5)
    return explorer


def test_settings_are_traits_that_observe_and_link(slice_explorer):
    explorer = slice_explorer
    assert set(explorer.trait_names(state=True)) == set(SliceExplorer.settings())
    slider = widgets.IntSlider(min=2, max=512)
    link = widgets.link((explorer, "resolution"), (slider, "value"))
    slider.value = 20
    assert explorer.resolution == 20 and explorer.slice.resolution == (20, 20)
    link.unlink()
    explorer.resolution = 16


def test_share_string_is_compact_and_round_trips_on_every_explorer(digits, slice_explorer):
    clf, data = digits
    share = slice_explorer.share
    assert share.startswith(SHARE_PREFIX) and len(share) < 400
    assert parse_state(share) == slice_explorer.state == json.loads(json.dumps(slice_explorer.state))
    copy = Explorer.from_state(clf, data.images[0], share, dataset=data, threaded=False)
    assert type(copy) is SliceExplorer and copy.state == slice_explorer.state
    assert copy.slice.plane.fingerprint() == slice_explorer.slice.plane.fingerprint()
    assert json.loads(json.dumps(copy.state)) == copy.state

    images, _ = data.split("test")
    predicted = clf.predict(images)
    a, b = torch.nonzero(predicted == 3).flatten()[:2].tolist()
    path = PathExplorer(clf, images[a], images[b], resolution=16, position=0.3, threaded=False)
    path_copy = Explorer.from_state(clf, (images[a], images[b]), path.share, threaded=False)
    assert type(path_copy) is PathExplorer and path_copy.state == path.state
    np.testing.assert_array_equal(path_copy.selection.probabilities, path.selection.probabilities)

    result = bw.analysis.band_margins(clf, data.images[:2])
    margins = MarginExplorer(clf, data.images[:2], result=result, resolution=16, threaded=False)
    margins.show_slice(1, 0)
    margins.select(0.1, 0.05)
    margins_copy = Explorer.from_state(clf, data.images[:2], margins.share, result=result, threaded=False)
    assert margins_copy.state == margins.state and margins_copy.selected == (1, 0)
    assert torch.equal(margins_copy.selection.image, margins.selection.image)


def test_set_state_applies_a_pasted_string_and_refuses_a_bad_one(digits, slice_explorer):
    clf, data = digits
    other = SliceExplorer(clf, data.images[0], dataset=data, resolution=16, threaded=False)
    other.share_text.value = slice_explorer.share
    other.share_button.click()
    assert other.state == slice_explorer.state and other.error is None
    before = other.state
    other.share_text.value = "bw1.garbage!!"
    other.share_button.click()
    assert other.state == before and "share string" in other.error


def _pack(text: str) -> str:
    return SHARE_PREFIX + base64.urlsafe_b64encode(zlib.compress(text.encode())).decode()


BAD_STATES = [
    # (state, error type, words the message must hold)
    (42, TypeError, "`state` must be a dict"),
    ("[1, 2]", TypeError, "named settings"),
    ("not json", ValueError, "share string"),
    ("bw1.%%%%", ValueError, "share string"),
    ("bw1." + "A" * 40, ValueError, "share string"),
    (_pack("x" * (MAX_STATE_CHARS * 4)), ValueError, "more than"),
    ("x" * (MAX_STATE_CHARS + 1), ValueError, "too long"),
    ({"explorer": "Nope"}, ValueError, "SliceExplorer"),
    ({"explorer": "PathExplorer"}, ValueError, "belongs to"),
    ({"zoom": 2}, ValueError, "unknown setting"),
    ({"resolution": 4096}, ValueError, "`state['resolution']` must be <= 1024"),
    ({"resolution": 1.5}, TypeError, "`state['resolution']`"),
    ({"resolution": True}, TypeError, "`state['resolution']`"),
    ({"extent": -1.0}, ValueError, "`state['extent']`"),
    ({"extent": "wide"}, TypeError, "`state['extent']`"),
    ({"method": "fast"}, ValueError, "`state['method']`"),
    ({"shading": None}, ValueError, "`state['shading']`"),
    ({"boundaries": "yes"}, TypeError, "`state['boundaries']`"),
    ({"click": [1.0]}, TypeError, "`state['click']`"),
    ({"click": [1.0, 1e300]}, ValueError, "`state['click']`"),
    ({"sample": -1}, ValueError, "`state['sample']`"),
    ({"sample": 10**6}, ValueError, "`state['sample']` must index the data set"),
    ({"preset": "my plane"}, ValueError, "`state['preset']`"),
    ({"u": "adversarial"}, TypeError, "`state['u']`"),
    ({"u": {"kind": "warp"}}, ValueError, "`state['u']['kind']`"),
    ({"u": {"kind": "random", "params": {"sed": 1}}}, ValueError, "unknown parameter"),
    ({"u": {"kind": "random", "params": {"seed": -3}}}, ValueError, "`state['u']['params']['seed']`"),
    ({"u": {"kind": "random", "params": {"seed": 2**40}}}, ValueError, "`state['u']['params']['seed']`"),
    ({"u": {"kind": "random", "params": {"seed": "one"}}}, TypeError, "`state['u']['params']['seed']`"),
    ({"u": {"kind": "random", "params": {"seed": [1]}}}, TypeError, "`state['u']['params']['seed']`"),
    ({"u": {"kind": "adversarial", "params": {"target": 10}}}, ValueError, "class index in [0, 10)"),
    ({"u": {"kind": "adversarial", "params": {"method": "magic"}}}, ValueError, "`state['u']['params']['method']`"),
    ({"u": {"kind": "adversarial", "params": {"clip": 1}}}, TypeError, "`state['u']['params']['clip']`"),
    ({"u": {"kind": "image", "params": {"other": 99999}}}, ValueError, "must index the data set"),
    ({"u": {"kind": "random"}, "extra": {"deep": [1, 2, 3]}}, ValueError, "unknown setting"),
    ({"extent": float("nan")}, TypeError, "JSON values"),
]


@pytest.mark.parametrize(("state", "error", "words"), BAD_STATES, ids=[str(i) for i in range(len(BAD_STATES))])
def test_malformed_states_are_refused_with_a_clear_error(digits, state, error, words):
    clf, data = digits
    with pytest.raises(error) as raised:
        SliceExplorer.from_state(clf, data.images[0], state, dataset=data, threaded=False)
    assert words in str(raised.value)
    assert type(raised.value) in (ValueError, TypeError)  # never KeyError or TraitError


def test_other_explorers_refuse_malformed_states(digits):
    clf, data = digits
    pair = (data.images[0], data.images[1])
    with pytest.raises(ValueError, match=r"`state\['max_depth'\]`"):
        PathExplorer.from_state(clf, pair, {"max_depth": 99})
    with pytest.raises(ValueError, match=r"`state\['position'\]`"):
        PathExplorer.from_state(clf, pair, {"position": 2.0})
    with pytest.raises(TypeError, match="pair"):
        PathExplorer.from_state(clf, data.images[0], {})
    with pytest.raises(TypeError, match=r"`state\['selected'\]`"):
        MarginExplorer.from_state(clf, data.images[:2], {"selected": [1]})
    with pytest.raises(ValueError, match=r"`state\['resolution'\]`"):
        MarginExplorer.from_state(clf, data.images[:2], {"resolution": 2048})


def test_encode_share_is_deterministic():
    state = {"b": 1, "a": [1.5, None]}
    assert encode_share(state) == encode_share(dict(reversed(state.items())))
    assert parse_state(encode_share(state)) == state


def test_presets_registry(digits):
    names = list(bw.presets.available())
    assert names[:5] == [
        "nearest boundary × random",
        "boundary normal × top curvature",
        "low × high DCT band",
        "plane through three images",
        "sparse × adversarial",
    ]
    added = bw.presets.register("two bands", u=("dct", {"band": "low"}), v=("dct", {"band": "mid"}))
    try:
        assert bw.presets.get("two bands") is added and added.u.as_dict() == {"kind": "dct", "params": {"band": "low"}}
        clf, data = digits
        explorer = SliceExplorer(clf, data.images[0], preset="two bands", resolution=16, threaded=False)
        assert explorer.error is None and explorer.v["params"]["band"] == "mid"
        assert "two bands" in explorer.preset_dropdown.options
    finally:
        bw.core.presets._PRESETS.pop("two bands")
    with pytest.raises(ValueError, match="`u`"):
        bw.presets.register("bad", u="warp", v="random")
    with pytest.raises(ValueError, match="unknown parameter"):
        bw.presets.register("bad", u=("random", {"sed": 1}), v="random")
    with pytest.raises(TypeError, match="`v`"):
        bw.presets.register("bad", u="random", v=3)
    with pytest.raises(ValueError, match="`preset`"):
        bw.presets.get("nope")
