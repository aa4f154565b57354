"""Trust at the edges: the models people really run, one model state per map, numbers that lie, and
resources. A second catalogue beside ``test_bad_inputs.py``, table-driven so that a case is one line.

Each case asserts its outcome: the call works and gives the right answer, or it is refused with a
``TypeError``/``ValueError`` naming the argument; either way the user's module (parameter and buffer
bytes, training flags, hooks) and input are bit-identical afterwards.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from conftest import model_state
from torch import nn

import boundary_widgets as bw

SHAPE = (1, 8, 8)
CLASSES = 10


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


def snapshot(net: nn.Module) -> tuple:
    """Parameter and buffer bytes, training and grad flags, and the hooks of every module."""
    hooks = tuple(
        (tuple(m._forward_hooks), tuple(m._forward_pre_hooks), tuple(m._backward_hooks)) for m in net.modules()
    )
    if any(not isinstance(t, torch.Tensor) for t in net.state_dict().values()):  # quantized: packed parameters
        return (tuple(m.training for m in net.modules()), repr(net.state_dict()), hooks)
    return (model_state(net), hooks)


# --- models people really run ------------------------------------------------------------------------


def _mlp(seed: int = 0) -> nn.Sequential:
    """BatchNorm and Dropout: a model left in train mode would be written and random."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, CLASSES)
    )


def _cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout2d(0.3),
        nn.Flatten(),
        nn.Linear(256, CLASSES),
    )


def _warmed(net: nn.Module) -> nn.Module:
    """Running statistics away from their defaults, so writing them would show."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(_images(16, seed=7) * 2)
    return net


def _reference(net: nn.Module) -> nn.Module:
    return copy.deepcopy(net).eval()


class InPlaceInput(nn.Module):
    """Edits its input in place, as some forwards do (``relu_`` on the input)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.sub_(0.5).relu_()
        return self.linear(x.flatten(1))


class DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _mlp()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.body(x), "aux": x.mean()}


class Flagged(nn.Module):
    """Its output depends on a plain attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _mlp()
        self.negate = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return -out if self.negate else out


def _compiled(net: nn.Module) -> nn.Module:
    return torch.compile(net, backend="eager")


def _script(net: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(net)


def _trace(net: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(net, _images(4, seed=3), check_trace=False)


def _bound_forward(net: nn.Module) -> nn.Module:
    net.forward = net.forward  # a bound method on the instance
    return net


def _accelerate_style(net: nn.Module) -> nn.Module:
    """accelerate's ``add_hook_to_module``: ``_old_forward`` and a partial of a new forward."""

    def new_forward(module: nn.Module, *args: Any) -> torch.Tensor:
        return module._old_forward(*args) * 2.0

    net._old_forward = net.forward
    net.forward = functools.update_wrapper(functools.partial(new_forward, net), net._old_forward)
    return net


def _doubled(net: nn.Module) -> nn.Module:
    return nn.Sequential(net, _Scale(2.0))


class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def _lambda_forward(net: nn.Module) -> nn.Module:
    forward = net.forward
    net.forward = lambda x: forward(x)  # opaque: runs the user's module itself
    return net


def _submodule(wrap: Callable[[nn.Module], nn.Module]) -> Callable[[nn.Module], nn.Module]:
    """The wrapping applied to the middle of a model rather than to all of it."""

    def build(net: nn.Module) -> nn.Module:
        body = nn.Sequential(net[1], net[2])
        return nn.Sequential(net[0], wrap(body), *list(net)[3:])

    return build


def _with_hook(net: nn.Module) -> nn.Module:
    net[-1].register_forward_hook(lambda _m, _i, out: out * 3.0)
    return net


def _with_pre_hook(net: nn.Module) -> nn.Module:
    net[1].register_forward_pre_hook(lambda _m, args: (args[0] * 0.5,))
    return net


def _frozen(net: nn.Module) -> nn.Module:
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@dataclass(frozen=True)
class Works:
    """The user passes ``wrap(base)``; the right logits are those of ``reference(base)`` in eval mode."""

    name: str
    base: Callable[[], nn.Module]
    wrap: Callable[[nn.Module], nn.Module]
    reference: Callable[[nn.Module], nn.Module] = _reference
    options: dict = field(default_factory=dict)


def _ident(net: nn.Module) -> nn.Module:
    return net


WORKS = [
    Works("train-mode-mlp", lambda: _warmed(_mlp()), _ident),
    Works("train-mode-cnn", lambda: _warmed(_cnn()), _ident),
    Works("compiled-train-mode", lambda: _warmed(_mlp()), _compiled),
    Works("compiled-eval-mode", lambda: _warmed(_mlp()).eval(), _compiled),
    Works("compiled-cnn-train-mode", lambda: _warmed(_cnn()), _compiled),
    Works(
        "compiled-accelerate-style",
        lambda: _warmed(_mlp()),
        lambda n: _compiled(_accelerate_style(n)),
        lambda n: _doubled(_reference(n)),
    ),
    Works("compiled-submodule", lambda: _warmed(_mlp()), _submodule(_compiled)),
    Works("scripted-eval-mode", lambda: _warmed(_mlp()).eval(), _script),
    Works("traced-eval-mode", lambda: _warmed(_mlp()).eval(), _trace),
    Works("traced-cnn-eval-mode", lambda: _warmed(_cnn()).eval(), _trace),
    Works("scripted-submodule-eval-in-train-model", lambda: _warmed(_mlp()), lambda n: _script_middle(n)),
    Works("bound-forward-train-mode", lambda: _warmed(_mlp()), _bound_forward),
    Works("accelerate-style-train-mode", lambda: _warmed(_mlp()), _accelerate_style, lambda n: _doubled(_reference(n))),
    Works("bound-forward-submodule", lambda: _warmed(_mlp()), _submodule(_bound_forward)),
    Works("lambda-forward-eval-mode", lambda: _warmed(_mlp()).eval(), _lambda_forward),
    Works("forward-hook", lambda: _warmed(_mlp()), _with_hook, lambda n: _with_hook(_reference(n))),
    Works("forward-pre-hook", lambda: _warmed(_mlp()), _with_pre_hook, lambda n: _with_pre_hook(_reference(n))),
    Works("frozen-parameters", lambda: _warmed(_mlp()), _frozen),
    Works("in-place-input", InPlaceInput, _ident),
    Works("in-place-input-normalised", InPlaceInput, _ident, options={"mean": 0.5, "std": 0.25}),
    Works("dict-output", DictOutput, _ident, lambda n: _reference(n.body), {"output": "logits"}),
]


def _script_middle(net: nn.Module) -> nn.Module:
    middle = _script(nn.Sequential(net[1], net[2]).eval())
    return nn.Sequential(net[0], middle, *list(net)[3:])


@pytest.mark.parametrize("case", WORKS, ids=[c.name for c in WORKS])
def test_models_people_run_are_run_in_eval_mode_without_being_written(case):
    base = case.base()
    reference = case.reference(base)
    net = case.wrap(base)
    before, base_before = snapshot(net), snapshot(base)
    x = _images()
    x_before = x.clone()
    with torch.no_grad():
        expected = reference(case_input(x, case.options))
    clf = bw.Classifier(net, input_shape=SHAPE, **case.options)
    first = clf.logits(x)
    assert torch.equal(first, clf.logits(x)), "two identical calls differ"
    torch.testing.assert_close(first, expected, rtol=1e-5, atol=1e-5)
    assert clf.bytes_per_sample() > 4 * 64
    assert int(clf.predict(x[0])) == int(first[0].argmax())
    adversarial = bw.deepfool(clf, x[:2], max_iter=5)
    assert adversarial.perturbations.shape == (2, *SHAPE)
    plane = bw.Plane.through(x[0], torch.randn(SHAPE), torch.randn(SHAPE))
    sl = bw.compute_slice(clf, plane, extent=1.0, resolution=6, method="dense", cache=False)
    assert sl.labels.shape == (6, 6)
    assert torch.equal(x, x_before), "the caller's input was written"
    assert snapshot(net) == before and snapshot(base) == base_before, "the user's module was written"


def case_input(x: torch.Tensor, options: dict) -> torch.Tensor:
    z = x.clone()
    if "mean" in options:
        z = (z - options["mean"]) / options["std"]
    return z


@dataclass(frozen=True)
class Refused:
    """The user passes ``build()``; the classifier refuses it at construction, before any forward."""

    name: str
    build: Callable[[], nn.Module]
    match: str
    error: type[Exception] = ValueError


class IntLogits(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.linear(x.flatten(1)) * 100).long()


class BoolLogits(IntLogits):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) > 0


class Squeezed(IntLogits):
    """A batch of one loses its batch axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).squeeze()


class NeedsPairs(IntLogits):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] < 2:
            raise RuntimeError("Expected more than 1 value per channel when training")
        return self.linear(x.flatten(1))


class Detached(IntLogits):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1).detach()).detach()


class ThroughNumpy(IntLogits):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.linear(x.flatten(1))
        return torch.from_numpy(out.numpy().copy())


class OneDimensional(IntLogits):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).sum(dim=1)


class ThreeDimensional(IntLogits):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))[:, None, :]


def _quantized() -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(_mlp().eval(), {nn.Linear}, dtype=torch.qint8)


def _double() -> nn.Module:
    return _mlp().double().eval()


REFUSED = [
    Refused("scripted-train-mode", lambda: _script(_warmed(_mlp())), "`net`.*TorchScript.*training.*net.eval()"),
    Refused("traced-train-mode", lambda: _trace(_warmed(_mlp())), "`net`.*TorchScript.*training"),
    Refused("traced-in-train-then-eval", lambda: _trace(_warmed(_mlp())).eval(), "`net`.*trace recorded.*training"),
    Refused("traced-cnn-train-mode", lambda: _trace(_warmed(_cnn())).eval(), "`net`.*trace recorded"),
    Refused("scripted-submodule-train-mode", lambda: _script_middle_train(), "`net`.*TorchScript module \\(net.1\\)"),
    Refused("traced-dropout-train-mode", lambda: _trace(_dropout_only()).eval(), "`net`.*dropout\\(train=True\\)"),
    Refused(
        "lambda-forward-train-mode", lambda: _lambda_forward(_warmed(_mlp())), "`net`.*`forward` set on the instance"
    ),
    Refused("int64-logits", IntLogits, "`net` must return floating-point logits"),
    Refused("bool-logits", BoolLogits, "`net` must return floating-point logits"),
    Refused("batch-of-one-squeezed", Squeezed, "`net` must classify a batch of one"),
    Refused("needs-batch-of-two", NeedsPairs, "`net` could not be run.*batch of 2 but not of 1"),
    Refused("dynamically-quantized", _quantized, "`net` holds a quantized module"),
    Refused("detached-logits", Detached, "`net` must be differentiable"),
    Refused("logits-through-numpy", ThroughNumpy, "`net` must be differentiable"),
    Refused("one-dimensional-output", OneDimensional, "`net` must return logits of shape"),
    Refused("three-dimensional-output", ThreeDimensional, "`net` must return logits of shape"),
    Refused("float64-model", _double, "`net` could not be run"),
]


def _dropout_only() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.5), nn.Linear(16, CLASSES)).train()


def _script_middle_train() -> nn.Module:
    net = _warmed(_mlp())
    middle = _script(nn.Sequential(net[1], net[2]))  # scripted in train mode
    return nn.Sequential(net[0], middle, *list(net)[3:])


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_models_that_cannot_be_run_unwritten_are_refused_at_construction(case):
    net = case.build()
    before = snapshot(net)
    with pytest.raises(case.error, match=case.match):
        bw.Classifier(net, input_shape=SHAPE)
    assert snapshot(net) == before


def test_a_scripted_model_switched_to_train_mode_later_is_refused_before_its_forward():
    net = _script(_warmed(_mlp()).eval())
    clf = bw.Classifier(net, input_shape=SHAPE)
    x = _images()
    expected = clf.logits(x)
    net.train()
    before = snapshot(net)
    with pytest.raises(ValueError, match=r"`net`.*training"):
        clf.logits(x)
    assert snapshot(net) == before
    net.eval()
    assert torch.equal(clf.logits(x), expected)


def test_a_scripted_model_takes_no_feature_space_with_a_clear_error():
    clf = bw.Classifier(_script(_mlp().eval()), input_shape=SHAPE)
    with pytest.raises(ValueError, match="`clf` runs a TorchScript module"):
        bw.FeatureSpace(clf, images=_images())


# --- the view follows the module ---------------------------------------------------------------------


def _set_flag(net: Flagged) -> None:
    net.negate = True


def _add_hook(net: Flagged) -> None:
    net.body[-1].register_forward_hook(lambda _m, _i, out: -out)


def _add_pre_hook(net: Flagged) -> None:
    net.register_forward_pre_hook(lambda _m, args: (args[0] * 0.0,))


def _ablate_unit(net: Flagged) -> None:
    def ablate(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[:, 0] = 0.0
        return out

    net.body[3].register_forward_hook(ablate)


def _swap_submodule(net: Flagged) -> None:
    torch.manual_seed(5)
    net.body[5] = nn.Linear(32, CLASSES)


def _swap_buffer(net: Flagged) -> None:
    net.body[2].running_mean = torch.full((32,), 0.3)


def _toggle_mode(net: Flagged) -> None:
    net.train()  # the eval view is unaffected


CHANGES: dict[str, Callable[[Flagged], None]] = {
    "attribute-set": _set_flag,
    "forward-hook-added": _add_hook,
    "pre-hook-added": _add_pre_hook,
    "ablation-hook-added": _ablate_unit,
    "submodule-swapped": _swap_submodule,
    "buffer-swapped": _swap_buffer,
    "mode-switched": _toggle_mode,
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_the_eval_view_follows_changes_made_after_the_classifier_was_built(change):
    net = Flagged().eval()
    clf = bw.Classifier(net, input_shape=SHAPE)
    x = _images()
    clf.logits(x)  # the view is built
    CHANGES[change](net)
    training = [m.training for m in net.modules()]
    net.eval()
    with torch.no_grad():
        expected = net(x)
    for module, mode in zip(net.modules(), training, strict=True):
        module.training = mode
    before = snapshot(net)
    torch.testing.assert_close(clf.logits(x), expected)
    assert snapshot(net) == before


def test_a_removed_hook_no_longer_runs_inside_the_classifier():
    net = Flagged().eval()
    handle = net.body[-1].register_forward_hook(lambda _m, _i, out: out * 2.0)
    clf = bw.Classifier(net, input_shape=SHAPE)
    x = _images()
    doubled = clf.logits(x)
    handle.remove()
    torch.testing.assert_close(clf.logits(x), doubled / 2.0)


# --- one map, one model state ------------------------------------------------------------------------


def _bias_in_place(net: nn.Sequential) -> None:
    with torch.no_grad():
        net[-1].bias.add_(0.7)


def _data_assignment(net: nn.Sequential) -> None:
    net[-1].weight.data = net[-1].weight.data.flip(0).clone()


def _load_state(net: nn.Sequential) -> None:
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["5.bias"] = state["5.bias"] - 0.9
    net.load_state_dict(state)


EDITS: dict[str, Callable[[nn.Sequential], None]] = {
    "bias-in-place": _bias_in_place,
    "data-assignment": _data_assignment,
    "load-state-dict": _load_state,
}
STATE_CASES = [
    (edit, method, when)
    for edit in EDITS
    for method in ("dense", "adaptive", "certified")
    for when in ("once", "always")
]


def _slice(clf: bw.Classifier, plane: bw.Plane, method: str, **options: Any) -> bw.PlaneSlice:
    budget = 40 * clf.bytes_per_sample()  # several chunks, so that an edit can fall between two of them
    return bw.compute_slice(clf, plane, extent=3.0, resolution=33, method=method, memory_budget=budget, **options)


@pytest.mark.parametrize(("edit", "method", "when"), STATE_CASES, ids=["-".join(c) for c in STATE_CASES])
def test_a_map_is_of_one_model_state_and_a_mixed_one_is_never_cached(edit, method, when):
    from boundary_widgets.core.slices import ModelChangedError
    from boundary_widgets.core.slices.cache import CACHE

    net = _warmed(_mlp(seed=3)).eval()
    clf = bw.Classifier(net, input_shape=SHAPE)
    x = _images(1, seed=4)[0]
    plane = bw.Plane.through(x, torch.randn(SHAPE, generator=torch.Generator().manual_seed(1)), x - 0.5)
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    old = _slice(clf, plane, method, cache=False)
    calls = [0]

    def meddle(_module: nn.Module, _inputs: Any, _output: Any) -> None:
        calls[0] += 1
        if calls[0] == 2 or when == "always":  # another thread editing the model mid-computation
            EDITS[edit](net)

    handle = net.register_forward_hook(meddle)
    cached_before = len(CACHE)
    if when == "always":
        with pytest.raises(ModelChangedError, match="one model state"):
            _slice(clf, plane, method)
        handle.remove()
        assert len(CACHE) == cached_before, "a mixed map was cached"
    else:
        result = _slice(clf, plane, method)
        handle.remove()
        fresh = _slice(clf, plane, method, cache=False)  # the model as it is now, computed alone
        assert (result.labels == fresh.labels).all()
        assert (result.margin == fresh.margin).all()
    net.load_state_dict(saved)
    again = _slice(clf, plane, method)  # from the cache if one is held for this state: it must be the old map
    assert (again.labels == old.labels).all()
    assert (again.margin == old.margin).all()


def test_iter_slice_keys_its_cache_when_the_work_starts_not_when_it_was_called():
    net = _mlp(seed=3).eval()
    clf = bw.Classifier(net, input_shape=SHAPE)
    x = _images(1, seed=4)[0]
    plane = bw.Plane.through(x, torch.randn(SHAPE, generator=torch.Generator().manual_seed(1)), x - 0.5)
    frames = bw.iter_slice(clf, plane, extent=3.0, resolution=17, method="dense")
    _bias_in_place(net)
    (late,) = list(frames)
    fresh = bw.compute_slice(clf, plane, extent=3.0, resolution=17, method="dense", cache=False)
    assert (late.labels == fresh.labels).all() and (late.margin == fresh.margin).all()
    assert bw.compute_slice(clf, plane, extent=3.0, resolution=17, method="dense") is late


# --- numbers that lie --------------------------------------------------------------------------------


class PartlyUndefined(nn.Module):
    """Finite logits except where pixel 0 exceeds 0.7: NaN there (``"nan"``) or one logit +inf (``"inf"``)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(64, CLASSES)
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x.flatten(1))
        broken = x.flatten(1)[:, :1] > 0.7
        if self.kind == "nan":
            return torch.where(broken, torch.full_like(out, float("nan")), out)
        return torch.where(broken & (torch.arange(CLASSES) == 3), torch.full_like(out, float("inf")), out)


UNDEFINED_CASES = [(kind, method) for kind in ("nan", "inf") for method in ("dense", "adaptive")]


@pytest.mark.parametrize(("kind", "method"), UNDEFINED_CASES, ids=["-".join(c) for c in UNDEFINED_CASES])
def test_cells_with_nan_logits_are_undefined_counted_and_drawn_hatched(kind, method):
    from boundary_widgets.plotting import plot_slice
    from boundary_widgets.render import boundary_lines, legend_entries, rgb_table, slice_rgb, undefined_entry

    clf = bw.Classifier(PartlyUndefined(kind), input_shape=SHAPE)
    x = torch.full(SHAPE, 0.5)
    u = torch.zeros(SHAPE)
    u[0, 0, 0] = 1.0
    plane = bw.Plane.through(x, u, torch.randn(SHAPE, generator=torch.Generator().manual_seed(2)))
    sl = bw.compute_slice(clf, plane, extent=0.5, resolution=65, method=method, cache=False)
    exact = (0.5 + sl.alphas[None, :] > 0.7) & (sl.betas[:, None] == sl.betas[:, None])  # pixel 0 is 0.5 + alpha
    assert (sl.undefined == exact).all()
    assert sl.n_undefined == int(exact.sum()) > 0
    assert set(sl.classes_present) == set(sl.labels[~exact].ravel().tolist())
    pixels = slice_rgb(sl)
    colours = {tuple(c) for c in rgb_table(CLASSES).tolist()}
    assert all(tuple(p) not in colours for p in pixels[exact].tolist()), "an undefined cell drawn as a class"
    assert all(tuple(p) in colours for p in pixels[~exact].tolist())
    assert sum(share for _, _, share, _ in legend_entries(sl)) == pytest.approx(1 - exact.mean())
    assert undefined_entry(sl)[1] == pytest.approx(exact.mean())
    lines = boundary_lines(sl)
    drawn = lines[~np.isnan(lines[:, 0])]
    assert (drawn[:, 0] <= 0.2 + 2 * (sl.alphas[1] - sl.alphas[0])).all(), "no boundary drawn inside the undefined part"
    figure = plot_slice(sl)
    assert "undefined" in " ".join(t.get_text() for t in figure.legend_.get_texts())


def test_an_explorer_legend_names_the_undefined_cells():
    views = pytest.importorskip("boundary_widgets.widgets.views")
    clf = bw.Classifier(PartlyUndefined("nan"), input_shape=SHAPE)
    u = torch.zeros(SHAPE)
    u[0, 0, 0] = 1.0
    plane = bw.Plane.through(torch.full(SHAPE, 0.5), u, torch.randn(SHAPE))
    sl = bw.compute_slice(clf, plane, extent=0.5, resolution=16, method="dense", cache=False)
    assert "undefined (NaN logits)" in views.legend_html(sl)


def test_the_default_extent_has_a_floor_when_the_image_lies_on_a_boundary():
    from boundary_widgets.core.extent import EXTENT_FLOOR_SHARE, default_extent

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    clf = bw.Classifier(net, input_shape=SHAPE)
    x = _images(1)[0]
    w = (net[1].weight[0] - net[1].weight[1]).detach().reshape(SHAPE)
    gap = float(clf.logits(x)[0] - clf.logits(x)[1])
    on_boundary = x - (gap - 1e-4) * w / w.norm() ** 2  # logit gap 1e-4: a DeepFool distance of ~1e-5
    assert torch.equal(on_boundary, on_boundary.clamp(0, 1))
    assert default_extent(clf, on_boundary) == pytest.approx(EXTENT_FLOOR_SHARE * 1.0)


def test_live_training_that_diverges_says_so_and_undoes_the_epoch():
    from boundary_widgets.core.training import LiveTraining, TrainingDiverged

    clf, data = bw.zoo.load("moons-mlp", device="cpu")
    images, labels = data.split("train")
    training = LiveTraining(clf.with_module(bw.core.training.build_network((2,), 2, width=64, depth=4)), images, labels)
    training.learning_rate = 10.0
    start = model_state(training.net)[3]
    with pytest.raises(TrainingDiverged, match=r"diverged.*lower `learning_rate`"):
        for _ in range(5):
            training.train_epoch()
    assert all(bool(p.isfinite().all()) for p in training.net.parameters())
    assert training.epoch < 5
    if training.epoch == 0:
        assert model_state(training.net)[3] == start


def test_the_training_explorer_shows_an_error_when_training_diverges():
    widgets = pytest.importorskip("boundary_widgets.widgets")
    clf, data = bw.zoo.load("moons-mlp", device="cpu")
    explorer = widgets.TrainingExplorer(clf, data, learning_rate=10.0, width=256, depth=6, threaded=False)
    explorer.step(5)
    assert explorer.error is not None and "diverged" in explorer.error
    assert all(bool(p.isfinite().all()) for p in explorer.training.net.parameters())


# --- resources and lifetimes -------------------------------------------------------------------------


def test_the_result_cap_counts_every_result_array():
    from boundary_widgets.core.slices import options as slice_options

    sl = bw.compute_slice(
        bw.Classifier(_mlp().eval(), input_shape=SHAPE),
        bw.Plane.through(_images(1)[0], torch.randn(SHAPE), torch.randn(SHAPE)),
        extent=1.0,
        resolution=(7, 5),
        method="dense",
        cache=False,
    )
    per_cell = sum(getattr(sl, k).nbytes for k in ("labels", "confidence", "margin", "evaluated", "undefined")) / 35
    assert per_cell == slice_options.RESULT_BYTES_PER_CELL
    side = int((slice_options.MAX_RESULT_BYTES / per_cell) ** 0.5)
    assert slice_options.normalize_resolution(side) == (side, side)
    with pytest.raises(ValueError, match=r"`resolution`.*MiB"):
        slice_options.normalize_resolution(side + 1)


def test_a_dense_slice_computed_in_many_blocks_equals_one_in_a_single_block(monkeypatch):
    from boundary_widgets.core.slices import frames

    clf = bw.Classifier(_mlp().eval(), input_shape=SHAPE)
    plane = bw.Plane.through(_images(1)[0], torch.randn(SHAPE), torch.randn(SHAPE))
    options = {"extent": 2.0, "resolution": (37, 23), "method": "dense", "cache": False}
    whole = bw.compute_slice(clf, plane, **options)
    monkeypatch.setattr(frames, "DENSE_BLOCK_CHUNKS", 1)
    calls = []
    blocks = bw.compute_slice(
        clf, plane, memory_budget=10 * clf.bytes_per_sample(), progress=lambda *c: calls.append(c), **options
    )
    assert (blocks.labels == whole.labels).all()
    np.testing.assert_allclose(blocks.margin, whole.margin, rtol=1e-5, atol=1e-5)
    assert calls[-1][0] == calls[-1][1] == -(-37 * 23 // 10), "progress counts chunks across blocks"


def _nudged_reference(rgb: np.ndarray) -> np.ndarray:
    """The palette's rule spelled out step by step: blue ± step, then green + step // 256, until new."""
    seen: set[tuple[int, int, int]] = set()
    out = rgb.copy()
    for k, (r, g, b) in enumerate(rgb.tolist()):
        colour, step = (r, g, b), 0
        while colour in seen:
            step += 1
            colour = (r, (g + step // 256) % 256, (b + (step if b < 128 else -step)) % 256)
        seen.add(colour)
        out[k] = colour
    return out


def test_the_palette_nudges_repeated_colours_like_the_step_by_step_rule():
    from boundary_widgets.render import palette

    generator = np.random.default_rng(0)
    rgb = generator.integers(100, 110, size=(3000, 3))  # 1000 colours for 3000 rows: long nudges
    np.testing.assert_array_equal(palette._unique_rows(rgb), _nudged_reference(rgb))


def test_twenty_thousand_classes_have_distinct_stable_colours():
    from boundary_widgets.render import rgb_table

    table = rgb_table(20_000)
    assert len({tuple(row) for row in table.tolist()}) == 20_000
    np.testing.assert_array_equal(rgb_table(1500), table[:1500])


def _no_training(name: str, **_: Any) -> Any:
    raise AssertionError(f"{name} was trained before its output was checked")


@pytest.mark.parametrize(
    ("args", "blamed"),
    [
        (["no-such-model"], "unknown model 'no-such-model'"),
        (["moons-mlp", "digits-typo"], "unknown model 'digits-typo'"),
        (["moons-mlp", "--output", "{file}"], "cannot write"),
        (["moons-mlp", "--output", "{file}/inside"], "cannot write"),
        (["moons-mlp", "--output", "{folder}"], "it is a folder"),
    ],
    ids=["unknown", "one-unknown", "output-is-a-file", "output-under-a-file", "weights-path-is-a-folder"],
)
def test_zoo_training_checks_names_and_output_before_training(args, blamed, tmp_path, monkeypatch, capsys):
    from boundary_widgets.zoo import train

    (tmp_path / "file").write_text("")
    (tmp_path / "weights" / "moons-mlp.pt").mkdir(parents=True)
    monkeypatch.setattr(train, "train", _no_training)
    args = [a.format(file=tmp_path / "file", folder=tmp_path / "weights") for a in args]
    with pytest.raises(SystemExit) as stop:
        train.main(args)
    assert stop.value.code == 2
    assert blamed in capsys.readouterr().err


CLI_RESOURCE_CASES = {
    "seed-of-minus-signs": "random:seed=" + "-" * 100_000,
    "seed-of-900-digits": "random:seed=" + "9" * 900,
    "seed-nested-brackets": "random:seed=" + "[" * 150 + "1" + "]" * 150,
    "seed-float-overflow": "random:seed=1e400",
    "many-parameters": "random:" + ",".join(["seed=1"] * 50_000),
    "max-iter-above-cap": "adversarial:max_iter=2147483647",
    "max-rounds-above-cap": "sparse:max_rounds=99999999",
    "band-of-600-characters": "dct:band=" + "1:" * 300,
}


@pytest.mark.parametrize("direction", list(CLI_RESOURCE_CASES.values()), ids=list(CLI_RESOURCE_CASES))
def test_cli_direction_text_is_bounded_before_it_is_read(direction, capsys, tmp_path, monkeypatch):
    from boundary_widgets import cli

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        cli.main(["render", "--u", direction, "--resolution", "8"])
    out, err = capsys.readouterr()
    assert stop.value.code == 2
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "--u" in err and len(err) < 400
    assert list(tmp_path.iterdir()) == []
