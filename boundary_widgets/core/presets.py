"""Named planes from the papers: a pair of direction kinds and their parameters.

A preset says which two directions span a plane through an image, nothing about how it is
drawn; an explorer offers :func:`available` as a choice, and ``register`` adds a user's own::

    bw.presets.register("two bands", u=("dct", {"band": "low"}), v=("dct", {"band": "mid"}),
                        description="low against mid frequencies")

Parameters of type "image" (another input) are left to the explorer, which fills them with
images of its data set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import directions


@dataclass(frozen=True)
class DirectionChoice:
    """One direction of a preset: a registered kind and the parameters that differ from its defaults."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params)}

    def __repr__(self) -> str:
        # An image parameter would print whole: show its shape instead.
        shown = {
            k: f"<{type(v).__name__} {tuple(v.shape)}>" if hasattr(v, "shape") else v for k, v in self.params.items()
        }
        return f"DirectionChoice({self.kind!r}, params={shown})"


@dataclass(frozen=True)
class Preset:
    """A named plane: ``u`` and ``v`` directions, what it shows and where it comes from."""

    name: str
    u: DirectionChoice
    v: DirectionChoice
    description: str
    reference: str = ""

    def __repr__(self) -> str:
        return f"Preset({self.name!r}, u={self.u!r}, v={self.v!r})"


_PRESETS: dict[str, Preset] = {}
MAX_NAME = 400  # characters: a share string naming the preset stays well within an explorer state's size cap


def _choice(value: object, name: str) -> DirectionChoice:
    if isinstance(value, DirectionChoice):
        choice = value
    elif isinstance(value, str):
        choice = DirectionChoice(value)
    elif isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[1], Mapping):
        choice = DirectionChoice(str(value[0]), dict(value[1]))
    else:
        raise TypeError(f"`{name}` must be a kind name, a (kind, params) pair or a DirectionChoice; got {value!r:.80}.")
    if choice.kind not in directions.available():
        raise ValueError(
            f"`{name}` must name a registered direction kind {list(directions.available())}; got {choice.kind!r}."
        )
    known = {p.name for p in directions.get(choice.kind).parameters}
    unknown = sorted(set(choice.params) - known)
    if unknown:
        raise ValueError(
            f"`{name}` sets unknown parameter(s) {unknown} of kind {choice.kind!r}; it takes {sorted(known)}."
        )
    return choice


def register(name: str, *, u: object, v: object, description: str = "", reference: str = "") -> Preset:
    """Add (or replace) the preset ``name``: ``u`` and ``v`` are kind names or ``(kind, params)`` pairs."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"`name` must be a non-empty string; got {name!r}.")
    if len(name) > MAX_NAME:
        raise ValueError(f"`name` must be at most {MAX_NAME} characters (a share string holds it); got {len(name)}.")
    if not isinstance(description, str) or not isinstance(reference, str):
        raise TypeError("`description` and `reference` must be strings.")
    preset = Preset(name, _choice(u, "u"), _choice(v, "v"), description or name, reference)
    _PRESETS[name] = preset
    return preset


def available() -> list[str]:
    """The names of the presets, in registration order (like ``directions.available()``); see :func:`get`."""
    return list(_PRESETS)


def get(name: str) -> Preset:
    if name not in _PRESETS:
        raise ValueError(f"`preset` must be one of {list(_PRESETS)}; got {name!r}.")
    return _PRESETS[name]


register(
    "nearest boundary × random",
    u="adversarial",
    v=("random", {"seed": 1}),
    description="Toward the nearest boundary and a random direction: boundaries look flat (Fawzi et al.).",
    reference="Fawzi, Moosavi-Dezfooli, Frossard, Soatto, arXiv 1705.09552",
)
register(
    "boundary normal × top curvature",
    u="adversarial",
    v=("curvature", {"index": 0}),
    description="The boundary's normal and its most curved direction: the boundary bends (Fawzi et al.).",
    reference="Fawzi, Moosavi-Dezfooli, Frossard, Soatto, arXiv 1705.09552",
)
register(
    "low × high DCT band",
    u=("dct", {"band": "low"}),
    v=("dct", {"band": "high"}),
    description="DeepFool inside the low and the high DCT band: margins differ by frequency (Hold me tight!).",
    reference="Ortiz-Jimenez, Modas, Moosavi-Dezfooli, Frossard, arXiv 2002.06349",
)
register(
    "plane through three images",
    u="image",
    v="image",
    description="The plane through the image and two others of the data set (dbViz).",
    reference="Somepalli et al., Can neural nets learn the same model twice? (dbViz), arXiv 2203.08124",
)
register(
    "sparse × adversarial",
    u="sparse",
    v="adversarial",
    description="A SparseFool perturbation (few pixels) against the DeepFool direction (Modas et al.).",
    reference="Modas, Moosavi-Dezfooli, Frossard, SparseFool, arXiv 1811.02248",
)


__all__ = [
    "DirectionChoice",
    "Preset",
    "available",
    "get",
    "register",
]
