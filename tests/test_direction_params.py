"""Typed direction parameters: one check per type, used alike by make, make_batch, states, the CLI and the pickers."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from torch import nn

import boundary_widgets as bw
from boundary_widgets.cli import parse_direction
from boundary_widgets.core import dct
from boundary_widgets.core.directions import (
    BandSpec,
    Basis,
    Bool,
    Choice,
    ClassIndex,
    Float,
    Image,
    Int,
    Parameter,
    direction_from_json,
    direction_to_json,
)
from boundary_widgets.widgets.controls import DirectionPicker


def every_parameter() -> list[tuple[str, Parameter]]:
    return [(kind, p) for kind, spec in bw.directions.kinds().items() for p in spec.parameters]


def test_every_number_a_state_can_hold_has_a_finite_cap():
    numbers = [(kind, p) for kind, p in every_parameter() if isinstance(p, Int | Float)]
    assert {p.name for _, p in numbers} >= {"max_iter", "max_rounds", "candidates", "seed", "k", "lam"}
    for kind, p in numbers:
        assert math.isfinite(p.maximum) and p.maximum <= 2**31 - 1, (kind, p)
        assert p.minimum <= (p.default if p.default is not None else p.minimum) <= p.maximum


class CountingNet(nn.Module):
    """A linear 10-class model that counts its forward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x.flatten(1))


@pytest.fixture()
def counting():
    torch.manual_seed(0)
    net = CountingNet()
    clf = bw.Classifier(net, input_shape=(1, 8, 8))
    net.calls = 0
    return clf, net, torch.rand(3, 1, 8, 8)


@pytest.mark.parametrize(
    ("kind", "params", "error", "words"),
    [
        ("adversarial", {"method": 3}, ValueError, "`method` must be one of"),
        ("adversarial", {"method": None}, ValueError, "`method` must be one of"),
        ("adversarial", {"max_iter": 2**31 - 1}, ValueError, "`max_iter` must be <= 1000"),
        ("adversarial", {"candidates": 10**400}, ValueError, "`candidates` must be <="),
        ("adversarial", {"target": 10}, ValueError, "`target` must be a class index in [0, 10)"),
        ("adversarial", {"target": True}, TypeError, "`target`"),
        ("adversarial", {"clip": 1}, TypeError, "`clip` must be True or False"),
        ("sparse", {"max_rounds": 2**31 - 1}, ValueError, "`max_rounds` must be <= 200"),
        ("sparse", {"lam": float("inf")}, ValueError, "`lam` must be a finite number"),
        ("sparse", {"lam": 10**401}, ValueError, "`lam` must be <="),
        ("dct", {"band": "top"}, ValueError, "`band` must be one of"),
        ("dct", {"band": (5, 2)}, ValueError, "`band` range must satisfy"),
        ("dct", {"band": [1.5, 3]}, TypeError, "`band` must be one of"),
        ("dct", {"block": 0}, ValueError, "`block` must be >= 1"),
        ("curvature", {"k": 10**6}, ValueError, "`k` must be <= 100"),
        ("random", {"seed": -1}, ValueError, "`seed` must be >= 0"),
        ("random", {"seed": "1"}, TypeError, "`seed` must be an int"),
    ],
)
@pytest.mark.parametrize("batched", [False, True], ids=["make", "make_batch"])
def test_make_and_make_batch_refuse_a_bad_parameter_alike_before_any_forward(
    counting, kind, params, error, words, batched
):
    clf, net, images = counting
    with pytest.raises(error) as raised:
        if batched:
            bw.directions.make_batch(kind, clf, images, **params)
        else:
            bw.directions.make(kind, clf, images[0], **params)
    assert words in str(raised.value)
    assert net.calls == 0


BANDS = ["low", "high", 2, (1, 4), ((0, 2), (3, 5)), [[0, 2], [3, 5]]]


@pytest.mark.parametrize("which", BANDS, ids=[repr(b) for b in BANDS])
def test_every_band_form_the_core_takes_works_in_make_state_cli_and_picker(digits, which):
    clf, data = digits
    x = data.images[0]
    made = bw.directions.make("dct", clf, x, band=which, method="random")
    core = dct.band(clf.input_shape, which if not isinstance(which, list) else tuple(map(tuple, which)))
    assert (made.info["rows"], made.info["cols"]) == (core.rows, core.cols)
    batch = bw.directions.make_batch("dct", clf, data.images[:2], band=which, method="random")
    torch.testing.assert_close(batch[0].vector, made.vector)

    state = direction_to_json("dct", {"band": BandSpec("band", "low", "").check(which)})
    back = direction_from_json(state)
    again = bw.directions.make("dct", clf, x, method="random", **back["params"])
    torch.testing.assert_close(again.vector, made.vector)

    text = BandSpec("band", "low", "").to_text(which)
    kind, params = parse_direction(f"dct:band={text},method=random")
    torch.testing.assert_close(bw.directions.make(kind, clf, x, **params).vector, made.vector)

    picker = DirectionPicker("u", kind="dct", class_names=clf.class_names)
    picker.set_value({"kind": "dct", "params": {"band": state["params"]["band"]}}, notify=False)
    assert picker.value["params"]["band"] == state["params"]["band"]
    torch.testing.assert_close(
        bw.directions.make("dct", clf, x, **{**picker.value["params"], "method": "random"}).vector, made.vector
    )


def test_a_band_object_is_taken_by_make_and_stored_by_its_rows_and_columns(digits):
    clf, data = digits
    chosen = dct.bands(clf.input_shape)[1]
    made = bw.directions.make("dct", clf, data.images[0], band=chosen, method="random")
    state = direction_to_json("dct", {"band": chosen})
    assert state["params"]["band"] == [list(chosen.rows), list(chosen.cols)]
    back = direction_from_json(state)
    torch.testing.assert_close(
        bw.directions.make("dct", clf, data.images[0], method="random", **back["params"]).vector, made.vector
    )


VALUES = [
    (Int("n", 3, "", minimum=1, maximum=9), 7, 7, "7"),
    (Int("n", None, "", minimum=1, maximum=9), None, None, "auto"),
    (Float("f", 1.0, "", minimum=0.5, maximum=2.0), 1.5, 1.5, "1.5"),
    (Bool("b", False, ""), True, True, "True"),
    (Choice("c", "a", "", choices=("a", "b")), "b", "b", "b"),
    (ClassIndex("t", None, ""), 4, 4, "4"),
    (BandSpec("band", "low", ""), (2, 6), [2, 6], "2:6"),
]


@pytest.mark.parametrize(("p", "value", "data", "text"), VALUES, ids=[type(v[0]).__name__ for v in VALUES])
def test_json_and_text_conversions_round_trip(p, value, data, text):
    assert p.to_json(p.check(value)) == data
    assert p.from_json(data) == p.check(value)
    assert p.to_text(value) == text
    assert p.from_text(text) == p.check(value)


@pytest.mark.parametrize(
    ("p", "text", "error"),
    [
        (Int("n", 3, "", minimum=1, maximum=9), "-" * 100_000 + "1", ValueError),
        (Int("n", 3, "", minimum=1, maximum=9), "3.5", TypeError),
        (Int("n", 3, "", minimum=1, maximum=9), "99", ValueError),
        (Float("f", 1.0, "", maximum=2.0), "nan", ValueError),
        (Bool("b", False, ""), "yes", TypeError),
        (BandSpec("band", "low", ""), "1:2:3", ValueError),
    ],
)
def test_text_values_are_refused_clearly(p, text, error):
    with pytest.raises(error, match=f"`{p.name}`"):
        p.from_text(text)


def test_data_parameters_are_not_settings():
    assert not Basis("subspace", None, "").in_state
    with pytest.raises(ValueError, match="not a setting"):
        Basis("subspace", None, "").from_json([1, 2])
    with pytest.raises(ValueError, match="unknown parameter"):
        direction_from_json({"kind": "random", "params": {"subspace": "low"}})
    assert Image("other", None, "").from_json(3) == 3
    with pytest.raises(TypeError, match="data set index"):
        Image("other", None, "").from_json([0.5])


def test_the_command_line_reads_values_by_their_type():
    assert parse_direction("adversarial:target=3,max_iter=20,clip=true") == (
        "adversarial",
        {"target": 3, "max_iter": 20, "clip": True},
    )
    assert parse_direction("dct:band=2:6,0:4,seed=3") == ("dct", {"band": ((2, 6), (0, 4)), "seed": 3})
    assert parse_direction("dct:block=none") == ("dct", {"block": None})
    for text, words in (
        ("adversarial:max_iter=2147483647", "`max_iter` must be <= 1000"),
        ("random:seed=" + "-" * 100_000 + "1", "at most"),
        ("adversarial:method=3", "`method` must be one of"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            parse_direction(text)
