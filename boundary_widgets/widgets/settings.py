"""Explorer settings as validating traits: each setting is declared once, as one :class:`Setting`.

A setting's value type and bounds are a typed parameter (``Int``, ``Float``, ``Choice``, ... of
:mod:`boundary_widgets.core.directions.params`, the same classes that type direction
parameters). From that one declaration follow: the check of a trait assignment (a bad value
raises :class:`SettingError`/:class:`SettingTypeError`, both a ``TraitError`` and a
``ValueError``/``TypeError``, naming the setting, and nothing changes), the constructor's checks
(it assigns the traits), ``state``/``share``/``from_state`` (its JSON conversion) and the
controls' bounds. Context checks (an index into the explorer's data set) are the explorer's
``@validate`` methods.

Widget callbacks hold their explorer weakly (:func:`weakly`, :func:`bind`): an explorer nobody
references is collected with its worker thread, even while its controls live on in the
ipywidgets registry.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import ipywidgets as widgets
import traitlets

from ..core.directions import Choice, Float, Int, Parameter, direction_from_json, direction_to_json
from ..core.directions.params import MAX_INDEX
from ..core.slices import MAX_RESOLUTION

__all__ = [
    "MAX_MAP_RESOLUTION",
    "DirectionValue",
    "DynamicChoice",
    "IndexPair",
    "Point",
    "Resolution",
    "Setting",
    "SettingError",
    "SettingTypeError",
    "bind",
    "setting",
    "weakly",
]

# The explorers' cap on a map's cells per axis: below core's MAX_RESOLUTION (what compute_slice
# accepts) so that a setting or a shared link cannot start a map that holds a kernel for minutes.
MAX_MAP_RESOLUTION = min(1024, MAX_RESOLUTION)
MAX_COORDINATE = 1e9  # a clicked point lies within this distance of the origin


class SettingError(traitlets.TraitError, ValueError):
    """A setting was given a value outside its bounds or choices (nothing was changed)."""


class SettingTypeError(traitlets.TraitError, TypeError):
    """A setting was given a value of the wrong type (nothing was changed)."""


class Setting(traitlets.TraitType):
    """One explorer setting: a trait typed and bounded by a parameter ``spec``, tagged ``state=True``."""

    def __init__(self, spec: Parameter) -> None:
        super().__init__(spec.default, allow_none=spec.optional, help=spec.description)
        self.spec = spec
        self.tag(state=True)

    def class_init(self, cls: type[Any], name: str | None) -> None:
        super().class_init(cls, name)
        if name is not None:
            self.spec = dataclasses.replace(self.spec, name=name)

    def validate(self, obj: Any, value: Any) -> Any:
        try:
            return self.spec.check(value, where=f"`{self.name}`")
        except TypeError as error:
            raise SettingTypeError(str(error)) from None
        except ValueError as error:
            raise SettingError(str(error)) from None

    def from_json(self, data: Any, *, where: str) -> Any:
        """A state's value, checked as an assignment is (context checks happen when it is applied)."""
        if data is None and self.allow_none:
            return None
        return self.spec.from_json(data, where=where)

    def to_json(self, value: Any) -> Any:
        return None if value is None else self.spec.to_json(value)


def setting(spec_type: type[Parameter], default: Any, description: str, **bounds: Any) -> Setting:
    """``Setting(spec_type(<name>, default, description, **bounds))``; the name is the trait's."""
    return Setting(spec_type("", default, description, **bounds))


# --- the value types explorer settings need beyond the direction parameters -----------------------
@dataclass(frozen=True)
class Resolution(Int):
    """Cells per axis of a square map: one int (a pair is refused: the explorers draw square maps)."""

    minimum: int = 2
    maximum: int = MAX_MAP_RESOLUTION

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> int | None:
        if isinstance(value, tuple | list):
            raise TypeError(
                f"{where or '`resolution`'} must be one int R (an R×R map: explorers draw square maps); "
                f"got {value!r:.40}."
            )
        return super().check(value, where=where)


@dataclass(frozen=True)
class Point(Parameter):
    """Two finite numbers ``(alpha, beta)`` within ``MAX_COORDINATE`` of the origin (a state holds a list)."""

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> tuple | None:
        where = where or f"`{self.name}`"
        if value is None:
            return None
        coordinate = Float(self.name, 0.0, "", minimum=-MAX_COORDINATE, maximum=MAX_COORDINATE)
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise TypeError(f"{where} must be None or two finite numbers (alpha, beta); got {value!r:.60}.")
        return tuple(coordinate.check(v, where=where) for v in value)

    def to_json(self, value: Any) -> Any:
        return list(value)


@dataclass(frozen=True)
class IndexPair(Parameter):
    """Two indices ``(i, j)`` >= 0 (a state holds a list); the explorer checks them against its table."""

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> tuple | None:
        where = where or f"`{self.name}`"
        if value is None:
            return None
        index = Int(self.name, 0, "", maximum=MAX_INDEX)
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise TypeError(f"{where} must be None or two indices (image, band); got {value!r:.60}.")
        return tuple(index.check(v, where=where) for v in value)

    def to_json(self, value: Any) -> Any:
        return list(value)


@dataclass(frozen=True)
class DirectionValue(Parameter):
    """``{"kind": ..., "params": {...}}`` of a registered kind, held as a state holds it (JSON values);
    the explorer completes it (defaults, its data set and classes) in a ``@validate``."""

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> dict[str, Any]:
        checked = direction_from_json(value, where=where or f"`{self.name}`")
        return direction_to_json(checked["kind"], checked["params"])


@dataclass(frozen=True)
class DynamicChoice(Choice):
    """One of the names ``options()`` lists now (a registry that grows), or None."""

    options: Callable[[], list[str]] = list
    type: ClassVar[str] = "choice"

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> str | None:
        if value is None:
            return None
        names = self.options()
        if not isinstance(value, str) or value not in names:
            raise ValueError(f"{where or f'`{self.name}`'} must be None or one of {names}; got {value!r:.60}.")
        return value


# --- weak wiring: a widget's callback never keeps its explorer alive ----------------------------
def weakly(owner: object, function: Callable[..., Any]) -> Callable[..., Any]:
    """``lambda *args: function(owner, *args)`` holding ``owner`` weakly (a no-op once it is collected)."""
    ref = weakref.ref(owner)

    def call(*args: Any, **kwargs: Any) -> Any:
        target = ref()
        return None if target is None else function(target, *args, **kwargs)

    return call


def bind(
    owner: traitlets.HasTraits,
    name: str,
    control: widgets.ValueWidget,
    *,
    to_control: Callable[[Any], Any] = lambda value: value,
    to_owner: Callable[[Any], Any] = lambda value: value,
) -> None:
    """Keep ``owner.name`` and ``control.value`` equal, the control holding ``owner`` weakly.

    A value the owner refuses puts the control back and is reported through ``owner._refuse``;
    a dropdown lacking the owner's value gets it as an option; None (automatic) leaves the control.
    """

    showing = [False]  # a control moved to show the owner's value (or clamping it) never writes it back

    def show(value: Any) -> None:
        value = to_control(value)
        if value is None:
            return
        showing[0] = True
        try:
            if isinstance(control, widgets.Dropdown) and value not in control.options:
                options = [*control.options, value]
                control.options = sorted(options) if all(isinstance(o, int | float) for o in options) else options
            if control.value != value:
                control.value = value
        finally:
            showing[0] = False

    def take(target: traitlets.HasTraits, change: dict) -> None:
        if showing[0]:
            return
        value = to_owner(change["new"])
        if getattr(target, name) == value:
            return
        try:
            setattr(target, name, value)
        except (traitlets.TraitError, TypeError, ValueError) as error:
            show(getattr(target, name))
            refuse = getattr(target, "_refuse", None)
            if refuse is not None:
                refuse(str(error))

    show(getattr(owner, name))
    owner.observe(lambda change: show(change["new"]), names=name)
    control.observe(weakly(owner, take), names="value")
