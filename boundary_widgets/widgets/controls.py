"""Controls built from the direction registry: one picker per direction of the plane."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import traitlets
from torch import nn

from ..core import directions
from ..core.dct import BAND_NAMES
from ..core.directions import Parameter
from ..render import input_picture, shorten
from .settings import DirectionValue, SettingError, setting
from .views import picture_png

_AUTO_CLASS = -1
_STYLE = {"description_width": "initial"}
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


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def curvature_note(direction: directions.Direction) -> str:
    """What a curvature direction found, in words: its principal curvature and how far it moves with the seed.

    Each value comes with its ``spread`` (see :func:`~boundary_widgets.core.curvature.principal_curvatures`:
    the largest relative distance to the nearest value of the runs from other seeds), e.g. "κ₁ = 0.412
    ± 17.3 % across 2 Lanczos seeds"; one run says that the spread is not measured. "" for other kinds.
    """
    if direction.kind != "curvature":
        return ""
    info, params = direction.info, direction.params
    index, runs, n_bases = params["index"], params["lanczos_runs"], params["n_bases"]

    def value(j: int) -> str:
        shown = f"{info['curvatures'][j]:.3g}".replace("-", "−")
        return shown if runs == 1 else f"{shown} ± {100 * info['spread'][j]:.1f} %"

    name = f"κ{str(index + 1).translate(_SUBSCRIPTS)}"
    if runs == 1:
        where = "one run, so its spread across seeds is not measured (lanczos_runs ≥ 2 measures it)"
    elif n_bases is None:
        where = f"across {runs} Lanczos seeds"
    else:
        where = f"across {runs} seeds of {n_bases} averaged tangent bases"
    listed = ", ".join(value(j) for j in range(len(info["curvatures"])))
    return f"{name} = {value(index)} ({where}); all {len(info['curvatures'])}, in 1/L2: {listed}"


def piecewise_linear(clf: Any) -> bool:
    """Whether the network has ReLU-like activations (a zero input-Hessian almost everywhere)."""
    kinds = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
    return any(isinstance(module, kinds) for module in clf.net.modules())


def _number_control(p: Parameter, picker: DirectionPicker, common: dict) -> widgets.Widget:
    if p.optional:  # an optional number ("None: automatic"): empty text stands for None
        return widgets.Text(value="", placeholder="auto", continuous_update=False, **common)
    if isinstance(p, directions.Int):
        return widgets.BoundedIntText(value=p.default, min=p.minimum, max=p.maximum, continuous_update=False, **common)
    return widgets.BoundedFloatText(value=p.default, min=p.minimum, max=p.maximum, continuous_update=False, **common)


def _class_control(p: Parameter, picker: DirectionPicker, common: dict) -> widgets.Widget:
    names = picker.class_names
    if len(names) > _DROPDOWN_CLASSES:
        # Searchable by name: typing filters the list; a 1000-entry dropdown is unusable.
        labels = [class_label(k, name) for k, name in enumerate(names)]
        return widgets.Combobox(
            options=["auto", *labels],
            value="auto",
            ensure_option=False,
            placeholder="type a class name",
            continuous_update=False,
            **common,
        )
    # A Dropdown value of None means "nothing selected", so "auto" (None) travels as -1.
    options = [("auto", _AUTO_CLASS), *((f"{k}: {name}", k) for k, name in enumerate(names))]
    return widgets.Dropdown(options=options, value=_AUTO_CLASS, **common)


def _read_class(p: Parameter, control: widgets.Widget, picker: DirectionPicker) -> Any:
    if isinstance(control, widgets.Combobox):
        return class_from_text(control.value, picker.class_names)
    return None if control.value == _AUTO_CLASS else control.value


def _write_class(p: Parameter, control: widgets.Widget, value: Any, picker: DirectionPicker) -> None:
    names = picker.class_names
    if isinstance(control, widgets.Combobox):
        known = isinstance(value, int) and 0 <= value < len(names)
        control.value = "auto" if value is None else class_label(value, names[value]) if known else str(value)
    else:
        control.value = _AUTO_CLASS if value is None else value


def _read_text(p: Parameter, control: widgets.Widget, picker: DirectionPicker) -> Any:
    try:
        return p.to_json(p.from_text(control.value))
    except (TypeError, ValueError):
        return control.value  # the explorer refuses it, naming the parameter


def _read_value(p: Parameter, control: widgets.Widget, picker: DirectionPicker) -> Any:
    return _read_text(p, control, picker) if isinstance(control, widgets.Text) else control.value


def _write_value(p: Parameter, control: widgets.Widget, value: Any, picker: DirectionPicker) -> None:
    if isinstance(control, widgets.Text):
        control.value = "" if value is None else p.to_text(value)
    else:
        control.value = value


@dataclass(frozen=True)
class _ControlType:
    """How one parameter type is shown: ``build`` a control, ``read`` its value (state form), ``write`` one."""

    build: Callable[[Parameter, DirectionPicker, dict], widgets.Widget]
    read: Callable[[Parameter, widgets.Widget, DirectionPicker], Any] = _read_value
    write: Callable[[Parameter, widgets.Widget, Any, DirectionPicker], None] = _write_value


def _band_control(p: Parameter, picker: DirectionPicker, common: dict) -> widgets.Widget:
    return widgets.Combobox(
        options=list(BAND_NAMES), value=p.to_text(p.default), ensure_option=False, continuous_update=False, **common
    )


# The one dispatch from a parameter's type to its control; a Basis (data, not a setting) has none.
_CONTROL_TYPES: dict[type[Parameter], _ControlType] = {
    directions.Int: _ControlType(_number_control),
    directions.Float: _ControlType(_number_control),
    directions.Bool: _ControlType(lambda p, picker, common: widgets.Checkbox(value=p.default, indent=False, **common)),
    directions.Choice: _ControlType(
        lambda p, picker, common: widgets.Dropdown(options=list(p.choices), value=p.default, **common)
    ),
    directions.ClassIndex: _ControlType(_class_control, _read_class, _write_class),
    # The value is an index into the explorer's data set; the picker turns it into the image.
    directions.Image: _ControlType(
        lambda p, picker, common: widgets.BoundedIntText(
            value=0, min=0, max=max(picker.n_images - 1, 0), continuous_update=False, **common
        )
    ),
    directions.BandSpec: _ControlType(_band_control),
}


def _control_type(p: Parameter) -> _ControlType:
    return _CONTROL_TYPES[type(p)]


class DirectionPicker:
    """A kind dropdown and the controls of that kind's parameters, rebuilt when the kind changes.

    ``value`` is ``{"kind": name, "params": {...}}`` as a state holds it ("image" parameters hold
    a data set index). Kinds and choices that cannot work here are not offered, and
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
            layout={"width": "150px"},
            style={"description_width": "initial"},
        )
        if css_class:
            self.kind_dropdown.add_class(css_class)
        self.redraw_button = widgets.Button(
            description="next", icon="refresh", tooltip="the next random seed", layout={"width": "76px"}
        )
        self.redraw_button.on_click(lambda _: self.redraw_seed())
        self.note = widgets.HTML()
        self.found = widgets.HTML()  # what the last computed direction found (curvature_note)
        self.found.add_class("bw-direction-found")
        self.params_box = widgets.VBox()
        self.controls: dict[str, widgets.Widget] = {}
        self.thumbnails: dict[str, widgets.Image] = {}
        self.ui = widgets.VBox(
            [widgets.HBox([self.kind_dropdown, self.redraw_button]), self.params_box, self.note, self.found]
        )
        self._build_controls()
        self.kind_dropdown.observe(self._kind_changed, names="value")

    @property
    def n_images(self) -> int:
        return 0 if self.images is None else len(self.images)

    def _shown(self, kind: str) -> dict[str, Parameter]:
        """The parameters of ``kind`` this picker offers: a basis is data, an image needs a data set."""
        return {
            p.name: p
            for p in directions.get(kind).parameters
            if p.in_state and not (isinstance(p, directions.Image) and self.images is None)
        }

    def show_found(self, direction: directions.Direction) -> None:
        """Say what ``direction`` (this picker's, just computed) found: :func:`curvature_note`, else nothing."""
        note = curvature_note(direction)
        self.found.value = f'<div style="font-size:11px">{html.escape(note)}</div>' if note else ""

    def _build_controls(self) -> None:
        self.found.value = ""
        spec = directions.get(self.kind_dropdown.value)
        self.parameters = self._shown(spec.name)
        controls = {}
        for name, p in self.parameters.items():
            common = {"description": name, "tooltip": p.description, "style": _STYLE, "layout": {"width": "230px"}}
            if name == "method":
                common["description"] = f"{self.label} {name}"  # not to be confused with the slice's method
            control = _control_type(p).build(p, self, common)
            if isinstance(p, directions.Choice):
                blocked = [c for c in p.choices if f"{spec.name}/{c}" in self.unavailable]
                if blocked and len(blocked) < len(p.choices):
                    control.options = [c for c in p.choices if c not in blocked]
            controls[name] = control
        self.controls = controls
        if "seed" in self.controls:
            self.controls["seed"].value += self.seed_offset
        self.thumbnails = {}
        children = []
        for name, control in self.controls.items():
            control.observe(self._param_changed, names="value")
            if isinstance(self.parameters[name], directions.Image):
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
        self.found.value = ""
        for name, control in self.controls.items():
            if control is change["owner"] and name in self.thumbnails:
                self._show_thumbnail(name)
        self._notify()

    @property
    def kind(self) -> str:
        return self.kind_dropdown.value

    @property
    def value(self) -> dict[str, Any]:
        """``{"kind": ..., "params": {...}}`` as a state holds it (an image is a data set index)."""
        params = {name: _control_type(p).read(p, self.controls[name], self) for name, p in self.parameters.items()}
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
            for name, setting in value.get("params", {}).items():
                if name not in self.controls:
                    raise ValueError(f"`state` sets unknown parameter {name!r} for direction kind {kind!r}.")
                p, control = self.parameters[name], self.controls[name]
                _control_type(p).write(p, control, setting, self)
        finally:
            self._muted = False
        if notify:
            self._notify()

    def complete(self, value: dict[str, Any], *, num_classes: int | None = None) -> dict[str, Any]:
        """``value`` (state form) with every parameter this picker shows, defaults filled in, each checked
        against what this picker has (classes, data set images); nothing is changed here."""
        if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
            raise ValueError(f"a direction must be {{'kind': ..., 'params': {{...}}}}; got {value!r:.80}.")
        kind = value["kind"]
        if kind in self.unavailable:
            raise ValueError(f"direction kind {kind!r} cannot be used here: {self.unavailable[kind]}.")
        shown = self._shown(kind)
        params = {name: 0 if isinstance(p, directions.Image) else p.to_json(p.default) for name, p in shown.items()}
        if "seed" in params:
            params["seed"] += self.seed_offset
        given = dict(value.get("params", {}))
        unknown = sorted(set(given) - set(params))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for direction kind {kind!r}; it takes {list(params)}.")
        for name, given_value in given.items():
            where = f"`{self.label}['params'][{name!r}]`"
            if isinstance(shown[name], directions.ClassIndex):
                shown[name].check(given_value, num_classes=len(self.class_names), where=where)
            if isinstance(shown[name], directions.Image) and not 0 <= given_value < self.n_images:
                raise ValueError(f"{where} must index the data set ({self.n_images} images); got {given_value}.")
        return {"kind": kind, "params": {**params, **given}}

    def redraw_seed(self) -> None:
        """The next seed of this picker's sequence (steps of 2, so that u's and v's seeds never meet)."""
        control = self.controls.get("seed")
        if control is not None:
            control.value = control.value + 2 if control.value + 2 <= control.max else self.seed_offset


class DirectionPairTraits(traitlets.HasTraits):
    """The ``u`` and ``v`` settings of an explorer that picks its plane with two :class:`DirectionPicker`.

    The explorer sets ``u_picker`` and ``v_picker`` before it assigns ``u``/``v``; the traits
    always hold complete values (every parameter the picker shows, defaults filled in, each
    checked against the picker's classes and images), so that ``state`` is complete.
    """

    u = setting(DirectionValue, {"kind": "adversarial", "params": {}}, "{'kind': ..., 'params': {...}} of direction u")
    v = setting(DirectionValue, {"kind": "random", "params": {}}, "{'kind': ..., 'params': {...}} of direction v")

    @traitlets.validate("u", "v")
    def _complete_direction(self, proposal: dict) -> dict:
        return self._completed(proposal["trait"].name, proposal["value"])

    def _completed(self, name: str, value: dict) -> dict:
        """``value`` with every parameter its picker shows (defaults filled in), checked against the picker's
        classes and images; the constructor completes its arguments with it (a default is never validated)."""
        try:
            return getattr(self, f"{name}_picker").complete(value)
        except (TypeError, ValueError) as error:
            message = str(error)
            raise SettingError(message if message.startswith(f"`{name}") else f"`{name}`: {message}") from None

    def _direction_argument(self, which: str, kind: object, params: object) -> dict:
        """The constructor's ``u=kind, u_params={...}`` checked and completed; errors name ``u``/``u_params``."""
        try:
            value = self.class_traits()[which].spec.check({"kind": kind, "params": params or {}}, where=f"`{which}`")
            return self._completed(which, value)
        except (TypeError, ValueError) as error:
            message = str(error).replace(f"`{which}['kind']`", f"`{which}`")
            message = message.replace(f"`{which}['params']", f"`{which}_params")
            raise (ValueError if isinstance(error, ValueError) else TypeError)(message) from None

    def _sync_picker(self, which: str) -> None:
        picker = self.u_picker if which == "u" else self.v_picker
        value = getattr(self, which)
        if picker.value != value:
            picker.set_value(value, notify=False)

    def _make_params(self, value: dict[str, Any]) -> dict[str, Any]:
        """A direction's state parameters as ``directions.make`` takes them: image indices become images."""
        kinds = {p.name: p for p in directions.get(value["kind"]).parameters}
        return {
            name: self.dataset.images[item] if isinstance(kinds[name], directions.Image) else item
            for name, item in value["params"].items()
        }

    def _image_parameters(self, value: dict[str, Any]) -> dict[str, int]:
        kinds = {p.name: p for p in directions.get(value["kind"]).parameters}
        return {name: index for name, index in value["params"].items() if isinstance(kinds[name], directions.Image)}

    @staticmethod
    def constructor_arguments(settings: dict[str, Any]) -> dict[str, Any]:
        """Checked state settings as constructor keywords: ``u``/``v`` split into kind and ``*_params``."""
        arguments = dict(settings)
        for which in ("u", "v"):
            if which in arguments:
                value = arguments.pop(which)
                arguments[which], arguments[f"{which}_params"] = value["kind"], value["params"]
        return arguments


__all__ = [
    "DirectionPairTraits",
    "DirectionPicker",
    "class_from_text",
    "class_label",
    "curvature_note",
    "piecewise_linear",
]
