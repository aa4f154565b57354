"""The one base of every explorer: layout and display, the worker, status, errors, point inspection, state.

An explorer is a ``traitlets.HasTraits``: its settings are traits tagged ``state=True``, so
they can be observed and linked (``explorer.observe(f, "extent")``,
``ipywidgets.link((explorer, "resolution"), (slider, "value"))``), and :attr:`Explorer.state`
is exactly those traits. :attr:`Explorer.share` is the same state as a compact string that
:meth:`Explorer.from_state` turns back into an explorer, checking every field first.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

import ipywidgets as widgets
import numpy as np
import torch
import traitlets

from ..core import Classifier
from ..core.extent import pixels_outside
from ..core.progress import Cancelled
from .views import PointView, SliceMapView
from .worker import Job, StaleJob, Worker

SHARE_PREFIX = "bw1."
MAX_STATE_CHARS = 8192  # a share string or JSON text longer than this is refused, never truncated
MAX_RESOLUTION = 1024  # a state asking for more is refused (a shared link must not freeze a kernel)


@dataclass(frozen=True, eq=False)
class PointSelection:
    """The point the user inspected: its plane coordinates, the input there and the classifier's answer."""

    alpha: float
    beta: float
    image: torch.Tensor  # input_shape, float32: the input the model saw
    probabilities: np.ndarray  # (classes,) float64
    label: int
    pixels_outside: int  # values of `image` outside the classifier's bounds (its picture clips them)

    def __repr__(self) -> str:
        return (
            f"PointSelection(alpha={self.alpha:.4g}, beta={self.beta:.4g}, label={self.label}, "
            f"pixels_outside={self.pixels_outside})"
        )


# --- state fields: each checks one value of a state and names it in its error ---------------------
Check = Callable[[str, Any], Any]


def _where(name: str) -> str:
    return f"`state[{name!r}]`"


def check_argument(check: Check, name: str, value: Any) -> Any:
    """A constructor argument checked by its state field, the error naming the argument (not a state entry)."""
    try:
        return check(name, value)
    except (TypeError, ValueError) as error:
        raise type(error)(str(error).replace(_where(name), f"`{name}`")) from None


def int_field(minimum: int, maximum: int, *, optional: bool = False) -> Check:
    def check(name: str, value: Any) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{_where(name)} must be an integer; got {value!r:.60}.")
        if not minimum <= value <= maximum:
            raise ValueError(f"{_where(name)} must be in [{minimum}, {maximum}]; got {value}.")
        return int(value)

    return check


def float_field(minimum: float, maximum: float, *, optional: bool = False, positive: bool = False) -> Check:
    def check(name: str, value: Any) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise TypeError(f"{_where(name)} must be a finite number; got {value!r:.60}.")
        if not minimum <= value <= maximum or (positive and value <= 0):
            raise ValueError(
                f"{_where(name)} must be in [{minimum}, {maximum}]{' and > 0' if positive else ''}; got {value}."
            )
        return float(value)

    return check


def bool_field(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{_where(name)} must be true or false; got {value!r:.60}.")
    return value


def choice_field(choices: tuple[Any, ...], *, optional: bool = False) -> Check:
    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        if value not in choices:
            raise ValueError(f"{_where(name)} must be one of {list(choices)}; got {value!r:.60}.")
        return value

    return check


def point_field(name: str, value: Any) -> list[float] | None:
    """None or two finite numbers (a point of the plane)."""
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise TypeError(f"{_where(name)} must be null or two finite numbers [alpha, beta]; got {value!r:.60}.")
    if max(abs(v) for v in value) > 1e9:
        raise ValueError(f"{_where(name)} must lie within 1e9 of the origin; got {value!r:.60}.")
    return [float(v) for v in value]


def _plain(value: Any) -> Any:
    """Trait values as JSON-ready Python values (tuples become lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_share(state: Mapping[str, Any]) -> str:
    """``state`` as ``bw1.<base64url of deflated compact JSON>``."""
    text = json.dumps(state, separators=(",", ":"), sort_keys=True)
    return SHARE_PREFIX + base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")


def parse_state(state: object) -> dict[str, Any]:
    """A state dict from a dict, its JSON text or a share string; malformed or oversized input raises ValueError/TypeError."""
    if isinstance(state, Mapping):
        try:
            text = json.dumps(state, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(f"`state` must hold only JSON values (numbers, strings, lists, dicts); {error}.") from None
        if len(text) > MAX_STATE_CHARS:
            raise ValueError(f"`state` is too large: {len(text)} characters of JSON, at most {MAX_STATE_CHARS}.")
        return json.loads(text)
    if not isinstance(state, str):
        raise TypeError(f"`state` must be a dict, its JSON text or a share string; got {type(state).__name__}.")
    text = state.strip()
    if len(text) > MAX_STATE_CHARS:
        raise ValueError(f"`state` is too long: {len(text)} characters, at most {MAX_STATE_CHARS}.")
    if text.startswith(SHARE_PREFIX):
        body = text[len(SHARE_PREFIX) :]
        try:
            packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            inflater = zlib.decompressobj()
            raw = inflater.decompress(packed, MAX_STATE_CHARS + 1)
        except (ValueError, zlib.error) as error:
            raise ValueError(f"`state` is not a valid share string (it must be copied whole): {error}.") from None
        if len(raw) > MAX_STATE_CHARS or inflater.unconsumed_tail:
            raise ValueError(f"`state` unpacks to more than {MAX_STATE_CHARS} characters; refused.")
        text = raw.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise ValueError(f"`state` must be a share string ({SHARE_PREFIX}…) or JSON; {error}.") from None
    if not isinstance(parsed, dict):
        raise TypeError(f"`state` must describe an object with named settings; got {type(parsed).__name__}.")
    return parsed


def link_dropdown(owner: traitlets.HasTraits, name: str, dropdown: widgets.Dropdown) -> None:
    """Keep ``owner.name`` and ``dropdown.value`` equal; a value the dropdown lacks is added to its options."""

    def to_dropdown(change: dict) -> None:
        value = change["new"]
        if value not in dropdown.options:
            dropdown.options = sorted({*dropdown.options, value})
        dropdown.value = value

    def to_owner(change: dict) -> None:
        if getattr(owner, name) != change["new"]:
            setattr(owner, name, change["new"])

    to_dropdown({"new": getattr(owner, name)})
    owner.observe(to_dropdown, names=name)
    dropdown.observe(to_owner, names="value")


class Explorer(traitlets.HasTraits):
    """What every explorer shares: layout and display, a worker thread, progress, status and errors,
    point inspection with its preview, ``close()``, and a state that is shared as a string.

    Subclasses declare their settings as traits tagged ``state=True`` and a ``STATE_FIELDS``
    check per setting, build their views, and implement ``_work(job, settings)``.
    """

    STATE_FIELDS: ClassVar[dict[str, Check]] = {}
    _EXPLORERS: ClassVar[dict[str, type[Explorer]]] = {}

    error = traitlets.Unicode(None, allow_none=True, help="the message shown for the last failed update, or None")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Explorer._EXPLORERS[cls.__name__] = cls

    def __init__(self, clf: Classifier, *, threaded: bool = True) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
        if not isinstance(threaded, bool):
            raise TypeError(f"`threaded` must be True or False; got {threaded!r}.")
        super().__init__()
        self.clf = clf
        self.worker = Worker(threaded=threaded)
        self.selection: PointSelection | None = None
        self.timings: dict[str, float] = {}
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout={"width": "160px"})
        self.status = widgets.HTML()
        self.status.add_class("bw-status")
        self.point_view = PointView(clf.class_names)
        self.share_text = widgets.Text(
            description="share", style={"description_width": "initial"}, layout={"width": "560px"}
        )
        self.share_text.add_class("bw-share")
        self.share_button = widgets.Button(description="apply", tooltip="apply a pasted share string to this explorer")
        self.share_button.on_click(lambda _: self.set_state(self.share_text.value))
        self.save_button = widgets.Button(
            description="save PNG",
            icon="download",
            tooltip="save the map(s) with their legends in the notebook's folder",
        )
        self.save_button.on_click(lambda _: self._save_from_button())
        self.ui: widgets.Box = widgets.VBox()

    # --- layout and display -------------------------------------------------------------------
    def _build_ui(
        self, controls: widgets.Widget | None, main: widgets.Widget, css_class: str, *, preview: bool = True
    ) -> None:
        """Status on top (always in view), then controls, the main view and the preview side by side.

        The three fit in about 845 px (JupyterLab's output column at 1280 px with the file browser
        open) and wrap below that. ``preview=False``: ``main`` places :attr:`point_view` itself.
        """
        header = widgets.HBox([self.progress, self.status], layout=widgets.Layout(align_items="center"))
        panels = [main, self.point_view.ui] if preview else [main]
        if controls is not None:
            panels.insert(0, controls)
        body = widgets.HBox(panels, layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
        share = widgets.HBox([self.share_text, self.share_button, self.save_button])
        self.ui = widgets.VBox([header, body, share])
        self.ui.add_class("bw-explorer")
        self.ui.add_class(css_class)
        self.observe(lambda _change: self._update_share(), names=list(self.STATE_FIELDS))
        self._update_share()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.ui._repr_mimebundle_(**kwargs)

    def _update_share(self) -> None:
        self.share_text.value = self.share

    # --- export ---------------------------------------------------------------------------------
    def _map_views(self) -> list[SliceMapView]:
        """The maps :meth:`save_png` exports, left to right."""
        return [self.map_view]

    def save_png(self, path: str | PathLike, *, dpi: int = 150) -> None:
        """Save the map(s) as shown now, redrawn with matplotlib, with the legends of classes and markers."""
        from matplotlib.figure import Figure

        views = [view for view in self._map_views() if view.drawn]
        if not views:
            raise ValueError("`save_png` needs a drawn map; call `wait()` first or fix the error shown.")
        figure = Figure(figsize=(5.8 * len(views), 4.4), layout="constrained")
        for ax, view in zip(figure.subplots(1, len(views), squeeze=False)[0], views, strict=True):
            view.draw(ax)
        figure.savefig(path, dpi=dpi, bbox_inches="tight")

    def _save_from_button(self) -> None:
        path = Path(f"boundary-widgets-{type(self).__name__}-{time.strftime('%Y%m%d-%H%M%S')}.png")
        try:
            self.save_png(path)
        except (OSError, ValueError) as error:
            self._show_status(f"not saved: {error}", error=True)
            return
        self._show_status(f"saved {path.resolve()}")

    # --- state ----------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """Every setting as plain JSON values, and which explorer they belong to."""
        return {"explorer": type(self).__name__, **{name: _plain(getattr(self, name)) for name in self.STATE_FIELDS}}

    @property
    def share(self) -> str:
        """:attr:`state` as a compact string for ``Explorer.from_state(clf, x, "...")``."""
        return encode_share(self.state)

    @classmethod
    def check_state(cls, state: object) -> tuple[type[Explorer], dict[str, Any]]:
        """The explorer class and checked settings of ``state``; raises ValueError/TypeError naming the field."""
        data = parse_state(state)
        name = data.pop("explorer", cls.__name__ if cls is not Explorer else None)
        target = cls
        if cls is Explorer:
            if name not in Explorer._EXPLORERS:
                raise ValueError(f"`state['explorer']` must be one of {sorted(Explorer._EXPLORERS)}; got {name!r:.60}.")
            target = Explorer._EXPLORERS[name]
        elif name != cls.__name__:
            raise ValueError(f"`state` belongs to a {name!r:.60}, not a {cls.__name__}.")
        unknown = sorted(set(data) - set(target.STATE_FIELDS))
        if unknown:
            raise ValueError(
                f"`state` has unknown setting(s) {unknown}; a {target.__name__} has {list(target.STATE_FIELDS)}."
            )
        return target, {key: target.STATE_FIELDS[key](key, value) for key, value in data.items()}

    @classmethod
    def from_state(cls, clf: Classifier, x: object, state: object, **options: Any) -> Explorer:
        """The explorer that ``state`` describes (a :attr:`state` dict, its JSON or a :attr:`share` string).

        ``x`` is what the explorer looks at: an image (SliceExplorer), a pair ``(x_a, x_b)``
        (PathExplorer) or a batch of images (MarginExplorer). ``options`` are the constructor's
        other keyword arguments (``dataset=``, ``threaded=``). Every field is checked before
        anything is built.
        """
        target, settings = cls.check_state(state)
        return target._from_checked_state(clf, x, settings, options)

    @classmethod
    def _from_checked_state(cls, clf: Classifier, x: object, settings: dict[str, Any], options: dict) -> Explorer:
        return cls(clf, x, **settings, **options)

    def set_state(self, state: object) -> None:
        """Apply ``state`` (dict, JSON or share string) to this explorer; nothing changes when it is invalid."""
        try:
            target, settings = type(self).check_state(state)
            if target is not type(self):
                raise ValueError(f"`state` belongs to a {target.__name__}, not a {type(self).__name__}.")
        except (TypeError, ValueError) as error:
            self._fail(str(error))
            return
        self._apply_settings(settings)

    def _apply_settings(self, settings: dict[str, Any]) -> None:
        with self.hold_trait_notifications():
            for key, value in settings.items():
                setattr(self, key, value)

    # --- the worker -------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the views reflect the latest settings; False if ``timeout`` seconds passed first."""
        return self.worker.wait(timeout)

    def close(self) -> None:
        """Cancel work under way and stop the worker thread (also done at interpreter exit)."""
        self.worker.close()

    def _submit(self, work: Callable[[Job], None]) -> Job:
        def guarded(job: Job) -> None:
            try:
                work(job)
            except (StaleJob, Cancelled):
                if not job.stale:
                    self._fail("the computation was cancelled.")
            except Exception as error:  # shown in the widget: JupyterLab drops callback output
                if not job.stale:
                    self._fail(f"{type(error).__name__}: {error}")

        return self.worker.submit(guarded)

    def _progress_callback(self, job: Job, start: float, stop: float, label: str) -> Callable[[int, int | None], None]:
        """A ``progress(done, total)`` for core functions that moves the bar from ``start`` to ``stop``."""

        def report(done: int, total: int | None) -> None:
            job.check()
            if total:
                self.progress.value = start + (stop - start) * min(done / total, 1.0)
                self._show_status(f"{label}: {done}/{total}…")

        return report

    # --- status and errors --------------------------------------------------------------------
    def _show_status(self, message: str, *, error: bool = False) -> None:
        colour, css = ("#b00020", "bw-error") if error else ("#333", "bw-info")
        self.status.value = f'<span class="{css}" style="color:{colour}">{html.escape(message)}</span>'

    def _start(self, message: str) -> float:
        self.progress.value = 0.0
        self.progress.bar_style = "info"
        self._show_status(message)
        return time.perf_counter()

    def _succeed(self, message: str) -> None:
        self.error = None
        self.progress.value = 1.0
        self.progress.bar_style = "success"
        self._show_status(message)

    def _fail(self, message: str) -> None:
        self.error = message
        self.progress.bar_style = "danger"
        self._show_status(f"Could not update — {message}", error=True)
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        """Mark the main view stale (subclasses grey out their map)."""

    # --- point inspection ---------------------------------------------------------------------
    def inspect(self, x: torch.Tensor, alpha: float, beta: float, caption: str) -> PointSelection:
        """Classify ``x`` and show it in the preview with its top-k probabilities and ``caption`` (HTML)."""
        probabilities = self.clf.probabilities(x).double().cpu().numpy()
        label = int(probabilities.argmax())
        outside = pixels_outside(x, self.clf.bounds)
        self.selection = PointSelection(float(alpha), float(beta), x, probabilities, label, outside)
        name = html.escape(self.clf.class_names[label])
        text = f"{caption}<br>predicted <b>{name}</b> ({probabilities[label]:.1%})"
        if outside:
            text += (
                f'<br><span class="bw-clipped" style="color:#a05000">picture clipped: {outside} of {x.numel()} '
                f"values lie outside {self.clf.bounds}; the model sees them unclipped</span>"
            )
        self.point_view.show(x, probabilities, self.clf.bounds, text)
        return self.selection


__all__ = [
    "MAX_RESOLUTION",
    "MAX_STATE_CHARS",
    "SHARE_PREFIX",
    "Check",
    "Explorer",
    "PointSelection",
    "bool_field",
    "check_argument",
    "choice_field",
    "encode_share",
    "float_field",
    "int_field",
    "link_dropdown",
    "parse_state",
    "point_field",
]
