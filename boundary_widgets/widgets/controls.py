"""Controls built from the direction registry: one picker per direction of the plane."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import traitlets
from torch import nn

from ..core import directions
from ..render import shorten
from .views import input_picture, picture_png

# Parameters a widget cannot offer (a basis is data, not a setting).
_UNSUPPORTED_TYPES = frozenset({"basis"})
_AUTO_CLASS = -1
_DROPDOWN_CLASSES = 20  # more classes than this: a searchable Combobox instead of a Dropdown


def class_label(index: int, name: str) -> str:
    """How a class is listed in a picker: its index and (shortened) name."""
    return f"{index}: {shorten(name, 40)}"


def class_from_text(text: str, class_names: Sequence[str]) -> int | str | None:
    """The class a picker's text names: "auto"/"" -> None, "k: name", "k" or an exact name -> k; else the text."""
    text = text.strip()
    if text in ("", "auto"):
        return None
    head = text.split(":", 1)[0].strip()
    if head.isdigit() and int(head) < len(class_names):
        return int(head)
    lowered = [name.lower() for name in class_names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    return text


def piecewise_linear(clf: Any) -> bool:
    """Whether the network has ReLU-like activations (a zero input-Hessian almost everywhere)."""
    kinds = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
    return any(isinstance(module, kinds) for module in clf.net.modules())


def _parameter_control(parameter: directions.Parameter, class_names: Sequence[str], n_images: int) -> widgets.Widget:
    """An ipywidgets control for one registry parameter, never recomputing on each keystroke or tick."""
    style = {"description_width": "initial"}
    common = {
        "description": parameter.name,
        "tooltip": parameter.description,
        "style": style,
        "layout": {"width": "230px"},
    }
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
        if len(class_names) > _DROPDOWN_CLASSES:
            # Searchable by name: typing filters the list; a 1000-entry dropdown is unusable.
            labels = [class_label(k, name) for k, name in enumerate(class_names)]
            value = "auto" if parameter.default is None else labels[int(parameter.default)]
            return widgets.Combobox(
                options=["auto", *labels],
                value=value,
                ensure_option=False,
                placeholder="type a class name",
                continuous_update=False,
                **common,
            )
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


def _plain_value(kind: str, setting: Any, class_names: Sequence[str] = ()) -> Any:
    """A control's value as the direction factory takes it (and as ``state`` stores it)."""
    if kind == "class" and isinstance(setting, str):
        return class_from_text(setting, class_names)
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


def _control_value(control: widgets.Widget, kind: str, setting: Any, class_names: Sequence[str] = ()) -> Any:
    if kind == "class" and isinstance(control, widgets.Combobox):
        if setting is None:
            return "auto"
        if isinstance(setting, int) and 0 <= setting < len(class_names):
            return class_label(setting, class_names[setting])
        return str(setting)
    if kind == "class" and setting is None:
        return _AUTO_CLASS
    if isinstance(control, widgets.Text) and kind in ("int", "float"):
        return "" if setting is None else str(setting)
    return setting


class DirectionPicker:
    """A kind dropdown and the controls of that kind's parameters, rebuilt when the kind changes.

    ``value`` is ``{"kind": name, "params": {...}}`` with plain values ("image" parameters hold
    a data set index); :meth:`make_params` turns it into the keyword arguments of
    ``directions.make``. Kinds and choices that cannot work here are not offered, and
    ``unavailable`` says why: "image" without a data set, exact curvature on a ReLU network.
    """

    def __init__(
        self,
        label: str,
        *,
        kind: str,
        class_names: Sequence[str],
        images: Any = None,
        bounds: tuple[float, float] = (0.0, 1.0),
        on_change: Callable[[], None] | None = None,
        css_class: str | None = None,
        seed_offset: int = 0,
        piecewise_linear: bool = False,
    ) -> None:
        self.label = label
        # Added to every default seed, so that two pickers of one kind start on different directions.
        self.seed_offset = seed_offset
        self.class_names = tuple(class_names)
        self.images = images
        self.bounds = bounds
        self._on_change = on_change
        self._muted = False
        self.unavailable: dict[str, str] = {}
        if images is None:
            self.unavailable["image"] = "needs a data set (pass dataset=...)"
        if piecewise_linear:
            self.unavailable["curvature/exact"] = (
                "exact Hessians are zero almost everywhere on a ReLU network; finite differences are used"
            )
        offered = [name for name in directions.available() if name not in self.unavailable]
        directions.get(kind)
        if kind not in offered:
            raise ValueError(f"direction kind {kind!r} cannot be used here: {self.unavailable[kind]}.")
        self.kind_dropdown = widgets.Dropdown(
            options=offered,
            value=kind,
            description=label,
            layout={"width": "165px"},
            style={"description_width": "initial"},
        )
        if css_class:
            self.kind_dropdown.add_class(css_class)
        self.redraw_button = widgets.Button(
            description="next", icon="refresh", tooltip="the next random seed", layout={"width": "62px"}
        )
        self.redraw_button.on_click(lambda _: self.redraw_seed())
        self.note = widgets.HTML()
        self.params_box = widgets.VBox()
        self.controls: dict[str, widgets.Widget] = {}
        self.thumbnails: dict[str, widgets.Image] = {}
        self.ui = widgets.VBox([widgets.HBox([self.kind_dropdown, self.redraw_button]), self.params_box, self.note])
        self._build_controls()
        self.kind_dropdown.observe(self._kind_changed, names="value")

    @property
    def n_images(self) -> int:
        return 0 if self.images is None else len(self.images)

    def _build_controls(self) -> None:
        spec = directions.get(self.kind_dropdown.value)
        controls = {}
        for p in spec.parameters:
            if p.type in _UNSUPPORTED_TYPES or (p.type == "image" and self.images is None):
                continue
            control = _parameter_control(p, self.class_names, self.n_images)
            if isinstance(control, widgets.Dropdown) and p.type == "choice":
                blocked = [c for c in p.choices if f"{spec.name}/{c}" in self.unavailable]
                if blocked and len(blocked) < len(p.choices):
                    control.options = [c for c in p.choices if c not in blocked]
            if p.type in ("int", "float", "choice") and p.name in ("method",):
                control.description = f"{self.label} {p.name}"  # not to be confused with the slice's method
            controls[p.name] = control
        self.controls = controls
        if "seed" in self.controls:
            self.controls["seed"].value += self.seed_offset
        self.thumbnails = {}
        children = []
        for name, control in self.controls.items():
            control.observe(self._param_changed, names="value")
            if spec.parameters and any(p.name == name and p.type == "image" for p in spec.parameters):
                thumbnail = widgets.Image(format="png", layout={"width": "40px", "height": "40px"})
                self.thumbnails[name] = thumbnail
                self._show_thumbnail(name)
                children.append(widgets.HBox([control, thumbnail]))
            else:
                children.append(control)
        self.params_box.children = children
        self.redraw_button.disabled = "seed" not in self.controls
        self.kind_dropdown.tooltip = spec.description
        notes = [
            f"{key.split('/')[1]!r} is not offered: {why}"
            for key, why in self.unavailable.items()
            if key.startswith(f"{spec.name}/")
        ]
        self.note.value = "".join(f'<div style="font-size:11px;color:#666">{note}</div>' for note in notes)

    def _show_thumbnail(self, name: str) -> None:
        index = int(self.controls[name].value)
        if 0 <= index < self.n_images:
            pixels = input_picture(self.images[index], self.bounds)
            if pixels is not None:
                self.thumbnails[name].value = picture_png(pixels, size=40)

    def _notify(self) -> None:
        if self._on_change is not None and not self._muted:
            self._on_change()

    def _kind_changed(self, _change: dict) -> None:
        self._build_controls()
        self._notify()

    def _param_changed(self, change: dict) -> None:
        for name, control in self.controls.items():
            if control is change["owner"] and name in self.thumbnails:
                self._show_thumbnail(name)
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
            params[name] = _plain_value(types[name], control.value, self.class_names)
        return {"kind": self.kind, "params": params}

    def set_value(self, value: dict[str, Any], *, notify: bool = True) -> None:
        """Select ``value["kind"]`` with its defaults, then set the parameters ``value["params"]`` names."""
        kind = value["kind"]
        directions.get(kind)
        if kind in self.unavailable:
            raise ValueError(f"direction kind {kind!r} cannot be used here: {self.unavailable[kind]}.")
        self._muted = True
        try:
            if self.kind_dropdown.value == kind:
                self._build_controls()  # back to the defaults
            else:
                self.kind_dropdown.value = kind
            types = self._types()
            for name, setting in value.get("params", {}).items():
                if name not in self.controls:
                    raise ValueError(f"`state` sets unknown parameter {name!r} for direction kind {kind!r}.")
                self.controls[name].value = _control_value(self.controls[name], types[name], setting, self.class_names)
        finally:
            self._muted = False
        if notify:
            self._notify()

    def complete(self, value: dict[str, Any]) -> dict[str, Any]:
        """``value`` with every parameter this picker shows, defaults filled in (nothing is changed here)."""
        if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
            raise ValueError(f"a direction must be {{'kind': ..., 'params': {{...}}}}; got {value!r:.80}.")
        kind = value["kind"]
        spec = directions.get(kind)
        if kind in self.unavailable:
            raise ValueError(f"direction kind {kind!r} cannot be used here: {self.unavailable[kind]}.")
        params = {}
        for p in spec.parameters:
            if p.type in _UNSUPPORTED_TYPES or (p.type == "image" and self.images is None):
                continue
            default = 0 if p.type == "image" else p.default
            params[p.name] = default + self.seed_offset if p.name == "seed" else default
        given = dict(value.get("params", {}))
        unknown = sorted(set(given) - set(params))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for direction kind {kind!r}; it takes {list(params)}.")
        return {"kind": kind, "params": {**params, **given}}

    def redraw_seed(self) -> None:
        """The next seed of this picker's sequence (steps of 2, so that u's and v's seeds never meet)."""
        control = self.controls.get("seed")
        if control is not None:
            control.value = control.value + 2 if control.value + 2 <= control.max else self.seed_offset

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


class DirectionPairTraits(traitlets.HasTraits):
    """The ``u`` and ``v`` settings of an explorer that picks its plane with two :class:`DirectionPicker`.

    The explorer sets ``u_picker`` and ``v_picker`` and observes ``u``/``v`` with
    :meth:`_sync_pickers`; the traits always hold complete values (every parameter the picker
    shows, defaults filled in), so that ``state`` is complete.
    """

    u = traitlets.Dict(help="{'kind': ..., 'params': {...}} of the first direction").tag(state=True)
    v = traitlets.Dict(help="{'kind': ..., 'params': {...}} of the second direction").tag(state=True)

    @traitlets.validate("u", "v")
    def _complete_direction(self, proposal: dict) -> dict:
        picker = getattr(self, f"{proposal['trait'].name}_picker", None)
        return proposal["value"] if picker is None else picker.complete(proposal["value"])

    def _sync_pickers(self, change: dict) -> None:
        picker = self.u_picker if change["name"] == "u" else self.v_picker
        if picker.value != change["new"]:
            picker.set_value(change["new"], notify=False)

    @staticmethod
    def constructor_arguments(settings: dict[str, Any]) -> dict[str, Any]:
        """Checked state settings as constructor keywords: ``u``/``v`` split into kind and ``*_params``."""
        arguments = dict(settings)
        for which in ("u", "v"):
            if which in arguments:
                value = arguments.pop(which)
                arguments[which], arguments[f"{which}_params"] = value["kind"], value["params"]
        if arguments.get("click") is not None:
            arguments["click"] = tuple(arguments["click"])
        return arguments
