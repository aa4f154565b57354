"""Controls built from the direction registry: one picker per direction of the plane."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..core import directions

# Parameters a widget cannot offer (a basis is data, not a setting).
_UNSUPPORTED_TYPES = frozenset({"basis"})
_SEED_RANGE = 2**31 - 1
_AUTO_CLASS = -1


def _parameter_control(parameter: directions.Parameter, class_names: Sequence[str], n_images: int) -> widgets.Widget:
    """An ipywidgets control for one registry parameter, never recomputing on each keystroke or tick."""
    style = {"description_width": "initial"}
    common = {"description": parameter.name, "tooltip": parameter.description, "style": style}
    kind = parameter.type
    if kind in ("int", "float") and parameter.default is None:
        # An optional number ("None: automatic"): empty text stands for None.
        return widgets.Text(value="", placeholder="auto", continuous_update=False, **common)
    if kind == "int":
        low = -(2**31) if parameter.minimum is None else int(parameter.minimum)
        high = 2**31 - 1 if parameter.maximum is None else int(parameter.maximum)
        value = int(parameter.default) if parameter.default is not None else low
        return widgets.BoundedIntText(value=value, min=low, max=high, continuous_update=False, **common)
    if kind == "float":
        low = -1e12 if parameter.minimum is None else float(parameter.minimum)
        high = 1e12 if parameter.maximum is None else float(parameter.maximum)
        value = float(parameter.default) if parameter.default is not None else max(low, 0.0)
        return widgets.BoundedFloatText(value=value, min=low, max=high, continuous_update=False, **common)
    if kind == "bool":
        return widgets.Checkbox(value=bool(parameter.default), indent=False, **common)
    if kind == "choice":
        return widgets.Dropdown(options=list(parameter.choices), value=parameter.default, **common)
    if kind == "class":
        # A Dropdown value of None means "nothing selected", so "auto" (None) travels as -1.
        options = [("auto", _AUTO_CLASS), *((f"{k}: {name}", k) for k, name in enumerate(class_names))]
        value = _AUTO_CLASS if parameter.default is None else int(parameter.default)
        return widgets.Dropdown(options=options, value=value, **common)
    if kind == "image":
        # The value is an index into the explorer's data set; the picker turns it into the image.
        return widgets.BoundedIntText(value=0, min=0, max=max(n_images - 1, 0), continuous_update=False, **common)
    return widgets.Text(
        value="" if parameter.default is None else str(parameter.default), continuous_update=False, **common
    )


def _plain_value(kind: str, setting: Any) -> Any:
    """A control's value as the direction factory takes it (and as ``state`` stores it)."""
    if kind == "class":
        return None if setting == _AUTO_CLASS else setting
    if kind in ("int", "float") and isinstance(setting, str):
        text = setting.strip()
        if not text:
            return None
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            return text  # the factory's own check reports it in the widget
    return setting


def _control_value(control: widgets.Widget, kind: str, setting: Any) -> Any:
    if kind == "class" and setting is None:
        return _AUTO_CLASS
    if isinstance(control, widgets.Text) and kind in ("int", "float"):
        return "" if setting is None else str(setting)
    return setting


class DirectionPicker:
    """A kind dropdown and the controls of that kind's parameters, rebuilt when the kind changes.

    ``value`` is ``{"kind": name, "params": {...}}`` with plain values ("image" parameters hold
    a data set index); :meth:`make_params` turns it into the keyword arguments of
    ``directions.make``.
    """

    def __init__(
        self,
        label: str,
        *,
        kind: str,
        class_names: Sequence[str],
        images: Any = None,
        on_change: Callable[[], None] | None = None,
        css_class: str | None = None,
        seed_offset: int = 0,
    ) -> None:
        self.label = label
        # Added to every default seed, so that two pickers of one kind start on different directions.
        self.seed_offset = seed_offset
        self.class_names = tuple(class_names)
        self.images = images
        self._on_change = on_change
        self._muted = False
        self.kind_dropdown = widgets.Dropdown(
            options=list(directions.available()), value=kind, description=label, layout={"width": "190px"}
        )
        if css_class:
            self.kind_dropdown.add_class(css_class)
        self.redraw_button = widgets.Button(
            description="new seed", icon="refresh", tooltip="re-draw the seed", layout={"width": "100px"}
        )
        self.redraw_button.on_click(lambda _: self.redraw_seed())
        self.params_box = widgets.VBox()
        self.controls: dict[str, widgets.Widget] = {}
        self.ui = widgets.VBox([widgets.HBox([self.kind_dropdown, self.redraw_button]), self.params_box])
        self._build_controls()
        self.kind_dropdown.observe(self._kind_changed, names="value")

    @property
    def n_images(self) -> int:
        return 0 if self.images is None else len(self.images)

    def _build_controls(self) -> None:
        spec = directions.get(self.kind_dropdown.value)
        self.controls = {
            p.name: _parameter_control(p, self.class_names, self.n_images)
            for p in spec.parameters
            if p.type not in _UNSUPPORTED_TYPES and not (p.type == "image" and self.images is None)
        }
        if "seed" in self.controls:
            self.controls["seed"].value += self.seed_offset
        for control in self.controls.values():
            control.observe(self._param_changed, names="value")
        self.params_box.children = list(self.controls.values())
        self.redraw_button.disabled = "seed" not in self.controls
        self.kind_dropdown.tooltip = spec.description

    def _notify(self) -> None:
        if self._on_change is not None and not self._muted:
            self._on_change()

    def _kind_changed(self, _change: dict) -> None:
        self._build_controls()
        self._notify()

    def _param_changed(self, _change: dict) -> None:
        self._notify()

    @property
    def kind(self) -> str:
        return self.kind_dropdown.value

    def _types(self) -> dict[str, str]:
        return {p.name: p.type for p in directions.get(self.kind).parameters}

    @property
    def value(self) -> dict[str, Any]:
        types = self._types()
        params = {}
        for name, control in self.controls.items():
            params[name] = _plain_value(types[name], control.value)
        return {"kind": self.kind, "params": params}

    def set_value(self, value: dict[str, Any], *, notify: bool = True) -> None:
        """Select ``value["kind"]`` and set its parameters (others keep their defaults)."""
        kind = value["kind"]
        directions.get(kind)
        self._muted = True
        try:
            self.kind_dropdown.value = kind
            for name, setting in value.get("params", {}).items():
                if name not in self.controls:
                    raise ValueError(f"`state` sets unknown parameter {name!r} for direction kind {kind!r}.")
                self.controls[name].value = _control_value(self.controls[name], self._types()[name], setting)
        finally:
            self._muted = False
        if notify:
            self._notify()

    def redraw_seed(self) -> None:
        """A new random seed, drawn from the current one so that a sequence of re-draws is reproducible."""
        control = self.controls.get("seed")
        if control is not None:
            control.value = int(np.random.default_rng(control.value).integers(0, min(_SEED_RANGE, control.max) + 1))

    def make_params(self) -> dict[str, Any]:
        """Keyword arguments for ``directions.make``: "image" indices become the data set's images."""
        types = self._types()
        params = {}
        for name, setting in self.value["params"].items():
            params[name] = self.images[int(setting)] if types[name] == "image" else setting
        return params

    def image_parameters(self) -> dict[str, int]:
        """The data set index of each "image" parameter (the other images this direction uses)."""
        types = self._types()
        return {name: int(c.value) for name, c in self.controls.items() if types[name] == "image"}
