"""Crafted share strings and states: each is refused with a clear ValueError/TypeError before any work, the share
box says why in words and leaves the view as it was; explorers die with their last reference."""

from __future__ import annotations

import gc
import json
import threading
import weakref

import pytest
import torch

import boundary_widgets as bw
from boundary_widgets.widgets import (
    CompareExplorer,
    Explorer,
    MarginExplorer,
    PathExplorer,
    SliceExplorer,
    TrainingExplorer,
)
from boundary_widgets.widgets.base import encode_share

V, T = ValueError, TypeError


def deep_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_dict(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def u(params: dict, kind: str = "adversarial") -> dict:
    return {"u": {"kind": kind, "params": params}}


HUGE = 10**401
# (state: a dict, JSON text or share string; error type; words the message must hold)
ATTACKS = [
    ('{"extent": ' + deep_list(3000) + "}", V, "nested"),
    (encode_share({"extent": json.loads(deep_list(500))}), V, "nested"),
    ({"extent": deep_dict(3000)}, V, "nested"),
    ({"click": [[[[[[[1]]]]]], 2]}, V, "nested"),
    ({"extent": HUGE}, V, "`state['extent']` must be <="),
    ({"click": [HUGE, 0]}, V, "`state['click']`"),
    ({"click": [0.5, -HUGE]}, V, "`state['click']`"),
    ({"sample": HUGE}, V, "`state['sample']`"),
    ({"resolution": HUGE}, V, "`state['resolution']`"),
    ('{"resolution": 1' + "0" * 5000 + "}", V, "state"),
    (u({"seed": HUGE}, "random"), V, "`state['u']['params']['seed']`"),
    (u({"max_iter": 2**31 - 1}), V, "`state['u']['params']['max_iter']` must be <= 1000"),
    (u({"candidates": HUGE}), V, "`state['u']['params']['candidates']`"),
    (u({"max_rounds": 2**31 - 1}, "sparse"), V, "`state['u']['params']['max_rounds']` must be <= 200"),
    (u({"lam": HUGE}, "sparse"), V, "`state['u']['params']['lam']`"),
    (u({"k": 10**6}, "curvature"), V, "`state['u']['params']['k']`"),
    (u({"band": [[0, 1, 2], [0]]}, "dct"), T, "`state['u']['params']['band']`"),
    (u({"band": [0, 2**40]}, "dct"), V, "`state['u']['params']['band']`"),
    (u({"block": 0}, "dct"), V, "`state['u']['params']['block']`"),
    (u({"subspace": "low"}, "random"), V, "unknown parameter"),
    (u({"other": -1}, "image"), V, "`state['u']['params']['other']`"),
    ({"u": {"kind": ["adversarial"]}}, V, "`state['u']['kind']`"),
    ({"explorer": ["SliceExplorer"]}, V, "belongs to"),
    ({"explorer": "SliceExplorer"}, V, "belongs to"),
    ({"preset": "x" * 5000}, V, "`state['preset']`"),
    ({"method": {"$ne": 1}}, V, "`state['method']`"),
    ({"boundaries": "true"}, T, "`state['boundaries']`"),
    ("bw1." + "A" * 40, V, "damaged or incomplete"),
    ("bw1.eJzLSM3JyVcozy_KSQEAGgQEXQ==extra", V, "share string"),
    ("\x00" * 10, V, "JSON"),
]


@pytest.fixture(scope="module")
def explorer(digits):
    clf, data = digits
    return SliceExplorer(clf, data.images[0], dataset=data, resolution=8, threaded=False)


@pytest.mark.parametrize(("state", "error", "words"), ATTACKS, ids=[str(i) for i in range(len(ATTACKS))])
def test_a_crafted_state_is_refused_clearly_by_from_state_and_by_the_share_box(digits, explorer, state, error, words):
    clf, data = digits
    with pytest.raises(error) as raised:
        SliceExplorer.from_state(clf, data.images[0], state, dataset=data, threaded=False)
    assert words in str(raised.value) and type(raised.value) in (ValueError, TypeError)

    before, png, generation = explorer.state, explorer.map_view.png.value, explorer.worker.generation
    if isinstance(state, str):
        explorer.share_text.value = state
        explorer.share_button.click()
    else:
        explorer.set_state(state)
    assert explorer.state == before and explorer.worker.generation == generation
    assert explorer.map_view.png.value == png and not explorer.map_view.greyed  # the valid map stays as it was
    assert "Refused" in explorer.status.value and explorer.error and "Error -3" not in explorer.error


def test_a_share_string_with_a_long_preset_name_comes_back(digits):
    clf, data = digits
    name = "a plane named at length " + "x" * 200
    bw.presets.register(name, u="random", v=("random", {"seed": 4}))
    try:
        e = SliceExplorer(clf, data.images[0], preset=name, resolution=8, threaded=False)
        copy = SliceExplorer.from_state(clf, data.images[0], e.share, threaded=False)
        assert copy.preset == name and copy.state == e.state
    finally:
        bw.core.presets._PRESETS.pop(name)
    with pytest.raises(ValueError, match="`name`"):
        bw.presets.register("y" * 1000, u="random", v="random")


def test_a_later_class_of_the_same_name_never_takes_over_share_strings(digits):
    clf, data = digits
    e = SliceExplorer(clf, data.images[0], resolution=8, threaded=False)

    class SliceExplorer_(SliceExplorer):
        pass

    SliceExplorer_.__name__ = SliceExplorer_.__qualname__ = "SliceExplorer"
    assert type(Explorer.from_state(clf, data.images[0], e.share, threaded=False)) is SliceExplorer


# --- lifetimes -----------------------------------------------------------------------------------
def explorers(digits, moons):
    clf, data = digits
    images = data.split("test")[0]
    a, b = torch.nonzero(clf.predict(images) == 3).flatten()[:2].tolist()
    result = bw.analysis.band_margins(clf, data.images[:2])
    return [
        lambda: SliceExplorer(clf, data.images[0], dataset=data, resolution=8),
        lambda: CompareExplorer(clf, clf, data.images[0], resolution=8, extent=2.0),
        lambda: PathExplorer(clf, images[a], images[b], resolution=8, max_depth=1),
        lambda: TrainingExplorer(moons[0], moons[1], width=4, depth=1, resolution=8),
        lambda: MarginExplorer(clf, data.images[:2], result=result, resolution=8, selected=(0, 0)),
    ]


def test_an_explorer_and_its_worker_thread_go_with_its_last_reference(digits):
    moons = bw.zoo.load("moons-mlp", device="cpu")
    for build in explorers(digits, moons):
        e = build()
        assert e.wait(60)
        e.share_button.click()
        e.select(0.1, 0.1)
        thread = e.worker._thread
        assert thread is not None and thread.is_alive()
        ref = weakref.ref(e)
        del e
        gc.collect()
        assert ref() is None, f"{build} is kept alive by {[type(r).__name__ for r in gc.get_referrers(ref())]}"
        thread.join(5)
        assert not thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "boundary-widgets-worker" and t.is_alive()]
