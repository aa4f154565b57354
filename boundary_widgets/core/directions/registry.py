"""One interface for every direction generator, and the registry the widgets list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..classifier import Classifier
from ..progress import CancelEvent, Progress, check_protocol, track
from ..validation import as_float_tensor, check_finite
from .params import Parameter


@dataclass(frozen=True, eq=False)
class Direction:
    """A unit L2 vector of the classifier's input shape, with how it was made and what was found."""

    vector: torch.Tensor  # input_shape, float32, CPU, unit L2 norm
    kind: str
    params: dict[str, Any]  # the parameters used, defaults filled in
    info: dict[str, Any]  # what was found on the way (target class, distance, eigenvalue, ...)

    def __repr__(self) -> str:
        return f"Direction(kind={self.kind!r}, params={self.params}, info_keys={sorted(self.info)})"


@dataclass(frozen=True)
class DirectionKind:
    """``factory(clf, x, **params) -> (vector, info)`` for one image ``x`` of the input shape.

    ``takes_protocol``: the factory (and the batch factory) take ``progress=``/``cancel=`` (long work).
    """

    name: str
    factory: Callable[..., tuple[torch.Tensor, dict[str, Any]]]
    description: str
    parameters: tuple[Parameter, ...] = field(default=())
    batch_factory: Callable[..., list[tuple[torch.Tensor, dict[str, Any]]]] | None = None
    takes_protocol: bool = False

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def __repr__(self) -> str:
        return f"DirectionKind({self.name!r}, parameters={[p.name for p in self.parameters]})"


_REGISTRY: dict[str, DirectionKind] = {}


def register(kind: DirectionKind | str, factory: Callable | None = None, **spec: Any) -> DirectionKind:
    """Add a direction kind: ``register(DirectionKind(...))`` or ``register(name, factory, description=..., parameters=...)``."""
    if isinstance(kind, str):
        if not callable(factory):
            raise TypeError(f"`factory` must be callable; got {type(factory).__name__}.")
        spec.setdefault("description", (factory.__doc__ or kind).strip().splitlines()[0])
        kind = DirectionKind(name=kind, factory=factory, **spec)
    if not isinstance(kind, DirectionKind):
        raise TypeError(f"`kind` must be a name or a DirectionKind; got {type(kind).__name__}.")
    _REGISTRY[kind.name] = kind
    return kind


def available() -> list[str]:
    """The names of the registered kinds, in registration order (like ``bw.zoo.available()``)."""
    return list(_REGISTRY)


def kinds() -> dict[str, DirectionKind]:
    """The registered kinds by name, in registration order; each lists its parameters and a description."""
    return dict(_REGISTRY)


def get(kind: str) -> DirectionKind:
    if kind not in _REGISTRY:
        raise ValueError(f"`kind` must be one of {list(_REGISTRY)}; got {kind!r}.")
    return _REGISTRY[kind]


def check_parameters(kind: str, clf: Classifier, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` for ``kind`` checked as :func:`make` checks them (names, types, limits), defaults filled in.

    For callers that take a direction's parameters now and compute it later (a widget's settings).
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    if not isinstance(params, dict):
        raise TypeError(f"`params` must be a dict of direction parameters; got {type(params).__name__}.")
    return _resolve(kind, params, clf)[1]


def _resolve(kind: str, params: dict[str, Any], clf: Classifier) -> tuple[DirectionKind, dict[str, Any]]:
    if not isinstance(kind, str):
        raise TypeError(f"`kind` must be the name of a direction kind (a str); got {type(kind).__name__}.")
    spec = get(kind)
    unknown = sorted(set(params) - set(spec.defaults()))
    if unknown:
        named = ", ".join(f"`{name}`" for name in unknown)
        raise ValueError(f"unknown parameter(s) {named} for direction kind {kind!r}; it takes {list(spec.defaults())}.")
    checked = {
        p.name: p.check(params[p.name], num_classes=clf.num_classes) for p in spec.parameters if p.name in params
    }
    return spec, {**spec.defaults(), **checked}


def direction_from_json(data: object, *, where: str = "`direction`") -> dict[str, Any]:
    """``{"kind": name, "params": {...}}`` as a state holds it, checked: a registered kind, parameters a state
    can hold, each checked by its type (:meth:`Parameter.from_json`); raises TypeError/ValueError naming
    ``where``. Defaults are not filled in."""
    if not isinstance(data, dict) or not set(data) <= {"kind", "params"} or "kind" not in data:
        raise TypeError(f"{where} must be {{'kind': ..., 'params': {{...}}}}; got {data!r:.80}.")
    kind, params = data["kind"], data.get("params", {})
    if not isinstance(kind, str) or kind not in _REGISTRY:
        raise ValueError(f"{where[:-1]}['kind']` must be one of {list(_REGISTRY)}; got {kind!r:.60}.")
    if not isinstance(params, dict):
        raise TypeError(f"{where[:-1]}['params']` must be a dict; got {type(params).__name__}.")
    spec = {p.name: p for p in _REGISTRY[kind].parameters if p.in_state}
    unknown = sorted(str(name) for name in set(params) - set(spec))
    if unknown:
        raise ValueError(
            f"{where[:-1]}['params']` has unknown parameter(s) {unknown!r:.80} for kind {kind!r}; it takes {list(spec)}."
        )
    checked = {
        name: spec[name].from_json(value, where=f"{where[:-1]}['params'][{name!r}]`") for name, value in params.items()
    }
    return {"kind": kind, "params": checked}


def direction_to_json(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The state form of a direction: the parameters a state can hold, as JSON values."""
    spec = {p.name: p for p in get(kind).parameters if p.in_state}
    return {"kind": kind, "params": {name: spec[name].to_json(value) for name, value in params.items() if name in spec}}


def _finish(
    spec: DirectionKind, params: dict[str, Any], vector: torch.Tensor, info: dict[str, Any], shape: tuple[int, ...]
) -> Direction:
    vector = as_float_tensor(vector, "vector").detach().cpu().reshape(shape)
    check_finite(vector, f"the {spec.name!r} direction")
    norm = vector.double().norm()
    if norm == 0:
        raise ValueError(f"the {spec.name!r} direction is zero for this input; try other parameters.")
    return Direction(vector=(vector.double() / norm).float(), kind=spec.name, params=params, info=info)


def make(
    kind: str,
    clf: Classifier,
    x: object,
    *,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
    **params: Any,
) -> Direction:
    """A direction of ``kind`` for the image ``x`` (one sample of the classifier's input shape).

    ``progress``/``cancel`` (see :mod:`~..progress`) go to the kind's factory when it takes them
    (DeepFool, SparseFool, curvature, DCT band); a quick kind counts one unit and honours ``cancel``
    before and after.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    check_protocol(progress, cancel)
    spec, params = _resolve(kind, params, clf)
    sample = clf.check_inputs(x, "x", batched=False, in_bounds=True)[0]
    if spec.takes_protocol:
        vector, info = spec.factory(clf, sample, **params, progress=progress, cancel=cancel)
    else:
        with track(progress, cancel, total=1, desc=f"{spec.name} direction") as tracker:
            vector, info = spec.factory(clf, sample, **params)
            tracker.advance()
    return _finish(spec, params, vector, info, clf.input_shape)


def make_batch(
    kind: str,
    clf: Classifier,
    images: object,
    *,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
    **params: Any,
) -> list[Direction]:
    """One direction per image of ``images (N, *input_shape)``; batched where the kind allows.

    ``progress``/``cancel`` go to a batch factory that takes them; otherwise one unit per image
    (a per-image factory that takes ``cancel`` receives it too).
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    check_protocol(progress, cancel)
    spec, params = _resolve(kind, params, clf)
    batch = clf.check_inputs(images, "images", batched=True, in_bounds=True)
    if spec.batch_factory is not None and spec.takes_protocol:
        results = spec.batch_factory(clf, batch, **params, progress=progress, cancel=cancel)
    elif spec.batch_factory is not None:
        with track(progress, cancel, total=1, desc=f"{spec.name} directions") as tracker:
            results = spec.batch_factory(clf, batch, **params)
            tracker.advance()
    else:
        nested = {"cancel": cancel} if spec.takes_protocol else {}
        with track(progress, cancel, total=batch.shape[0], desc=f"{spec.name} directions") as tracker:
            results = []
            for sample in batch:
                results.append(spec.factory(clf, sample, **params, **nested))
                tracker.advance()
    return [_finish(spec, params, vector, info, clf.input_shape) for vector, info in results]


__all__ = [
    "Direction",
    "DirectionKind",
    "available",
    "check_parameters",
    "direction_from_json",
    "direction_to_json",
    "get",
    "kinds",
    "make",
    "make_batch",
    "register",
]
