"""The one base of every explorer: layout and display, the worker, status, errors, point inspection, state.

An explorer is a ``traitlets.HasTraits``: each setting is one validating trait, a
:class:`~.settings.Setting` (type, bounds, default and help declared once), so it can be
observed and linked (``explorer.observe(f, "extent")``,
``ipywidgets.link((explorer, "resolution"), (slider, "value"))``) and a bad value raises a
``TraitError`` (also a ``ValueError``/``TypeError``) naming it, changing nothing.
:attr:`Explorer.state` is exactly those traits; :attr:`Explorer.share` is the same state as a
compact string that :meth:`Explorer.from_state` turns back into an explorer, checking every field
first. Widget callbacks hold the explorer weakly: ``del explorer`` frees it and its worker thread
(keep a reference while its view is on screen).
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Mapping
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
from .settings import Setting, weakly
from .views import PointView, SliceMapView
from .worker import Job, StaleJob, Worker

SHARE_PREFIX = "bw1."
MAX_STATE_CHARS = 8192  # a share string or JSON text longer than this is refused, never truncated
MAX_STATE_DEPTH = 6  # containers within containers: the deepest state (a band range in a direction) has 5


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


def encode_share(state: Mapping[str, Any]) -> str:
    """``state`` as ``bw1.<base64url of deflated compact JSON>``."""
    text = json.dumps(state, separators=(",", ":"), sort_keys=True)
    return SHARE_PREFIX + base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")


def _check_nesting(value: object) -> None:
    """Refuse containers nested deeper than ``MAX_STATE_DEPTH`` or holding more than ``MAX_STATE_CHARS`` items
    (walked without recursion: a 3000-deep dict is a clear ValueError, not a RecursionError)."""
    stack, seen = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_STATE_CHARS:
            raise ValueError(f"`state` holds more than {MAX_STATE_CHARS} values; refused.")
        if isinstance(item, Mapping | list | tuple):
            if depth > MAX_STATE_DEPTH:
                raise ValueError(f"`state` is nested more than {MAX_STATE_DEPTH} levels deep; refused.")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, Mapping) else item))


def parse_state(state: object) -> dict[str, Any]:
    """A state dict from a dict, its JSON text or a share string; malformed, oversized or too deeply
    nested input raises ValueError/TypeError saying why in words."""
    if isinstance(state, Mapping):
        _check_nesting(state)
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
        except (ValueError, zlib.error):
            raise ValueError(
                "`state` is not a valid share string: it is damaged or incomplete (copy it whole, from bw1. to its end)."
            ) from None
        if len(raw) > MAX_STATE_CHARS or inflater.unconsumed_tail:
            raise ValueError(f"`state` unpacks to more than {MAX_STATE_CHARS} characters; refused.")
        text = raw.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise ValueError(f"`state` is nested more than {MAX_STATE_DEPTH} levels deep; refused.") from None
    except ValueError as error:
        raise ValueError(f"`state` must be a share string ({SHARE_PREFIX}…) or JSON; {error}.") from None
    if not isinstance(parsed, dict):
        raise TypeError(f"`state` must describe an object with named settings; got {type(parsed).__name__}.")
    _check_nesting(parsed)
    return parsed


def explorer_name(cls: type) -> str:
    """How a state names its explorer class: module and qualified name (a user's subclass of the same
    bare name never takes over another class's share strings)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _as_state_error(error: Exception, names: Iterable[str]) -> Exception:
    """A constructor's error about setting ``name`` reworded to name ``state['name']`` (a plain ValueError/TypeError)."""
    message = str(error)
    for name in names:
        message = message.replace(f"`{name}_params", f"`state[{name!r}]['params']")  # a direction's parameters
        message = re.sub(rf"`{re.escape(name)}(?=[`\[])", f"`state[{name!r}]", message)
    return (ValueError if isinstance(error, ValueError) else TypeError)(message)


class Explorer(traitlets.HasTraits):
    """What every explorer shares: layout and display, a worker thread, progress, status and errors,
    point inspection with its preview, ``close()``, and a state that is shared as a string.

    Subclasses declare each setting once, as a :class:`~.settings.Setting` trait, build their
    views, and implement ``_work(job, settings)``.
    """

    _EXPLORERS: ClassVar[dict[str, type[Explorer]]] = {}
    _COMPUTE: ClassVar[tuple[str, ...]] = ()  # the settings that need new work (the others only redraw)

    error = traitlets.Unicode(None, allow_none=True, help="the message shown for the last failed update, or None")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Explorer._EXPLORERS[explorer_name(cls)] = cls

    def __init__(self, clf: Classifier, *, threaded: bool = True) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
        if not isinstance(threaded, bool):
            raise TypeError(f"`threaded` must be True or False; got {threaded!r}.")
        super().__init__()
        self.clf = clf
        self.worker = Worker(threaded=threaded)
        weakref.finalize(self, self.worker.close, 1.0)  # a collected explorer stops its thread
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
        self.share_button.on_click(
            weakly(self, lambda explorer, _button: explorer.set_state(explorer.share_text.value))
        )
        self.save_button = widgets.Button(
            description="save PNG",
            icon="download",
            tooltip="save the map(s) with their legends in the notebook's folder",
        )
        self.save_button.on_click(weakly(self, lambda explorer, _button: explorer._save_from_button()))
        self.ui: widgets.Box = widgets.VBox()
        self._requested: str | None = None  # the settings of the work last asked for

    @classmethod
    def settings(cls) -> dict[str, Setting]:
        """The explorer's settings: its :class:`~.settings.Setting` traits by name."""
        return {name: trait for name, trait in cls.class_traits(state=True).items() if isinstance(trait, Setting)}

    def _set_settings(self, **values: Any) -> None:
        """Assign settings together (the constructor's checks): a bad one raises naming it and none is kept."""
        try:
            with self.hold_trait_notifications():
                for name, value in values.items():
                    setattr(self, name, value)
        except (TypeError, ValueError) as error:  # an argument's error is a plain ValueError/TypeError
            raise (ValueError if isinstance(error, ValueError) else TypeError)(str(error)) from None

    # --- one request per change of the settings that need new work ------------------------------
    def _work_settings(self) -> str:
        settings = self.settings()
        return json.dumps([settings[name].to_json(getattr(self, name)) for name in self._COMPUTE], sort_keys=True)

    def _request(self, _change: dict | None = None) -> None:
        """Ask for new work (``refresh``) unless work for these very settings is asked for already: changes
        delivered together (``hold_trait_notifications``) start one computation."""
        if self._work_settings() != self._requested:
            self.refresh()

    def refresh(self) -> Job:
        """Start the work for the current settings (cancelling work under way)."""
        raise NotImplementedError

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
        self.observe(lambda _change: self._update_share(), names=list(self.settings()))
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
        values = {name: trait.to_json(getattr(self, name)) for name, trait in self.settings().items()}
        return {"explorer": explorer_name(type(self)), **values}

    @property
    def share(self) -> str:
        """:attr:`state` as a compact string for ``Explorer.from_state(clf, x, "...")``."""
        return encode_share(self.state)

    @classmethod
    def check_state(cls, state: object) -> tuple[type[Explorer], dict[str, Any]]:
        """The explorer class and checked settings of ``state``; raises ValueError/TypeError naming the field."""
        data = parse_state(state)
        name = data.pop("explorer", explorer_name(cls) if cls is not Explorer else None)
        target = cls
        if cls is Explorer:
            if not isinstance(name, str) or name not in Explorer._EXPLORERS:
                raise ValueError(f"`state['explorer']` must be one of {sorted(Explorer._EXPLORERS)}; got {name!r:.60}.")
            target = Explorer._EXPLORERS[name]
        elif name != explorer_name(cls):
            raise ValueError(f"`state` belongs to a {name!r:.80}, not a {explorer_name(cls)}.")
        settings = target.settings()
        unknown = sorted(str(key) for key in set(data) - set(settings))
        if unknown:
            raise ValueError(
                f"`state` has unknown setting(s) {unknown!r:.80}; a {target.__name__} has {sorted(settings)}."
            )
        return target, {key: settings[key].from_json(value, where=f"`state[{key!r}]`") for key, value in data.items()}

    @classmethod
    def from_state(cls, clf: Classifier, x: object, state: object, **options: Any) -> Explorer:
        """The explorer that ``state`` describes (a :attr:`state` dict, its JSON or a :attr:`share` string).

        ``x`` is what the explorer looks at: an image (SliceExplorer), a pair ``(x_a, x_b)``
        (PathExplorer) or a batch of images (MarginExplorer). ``options`` are the constructor's
        other keyword arguments (``dataset=``, ``threaded=``). Every field is checked before
        anything is built.
        """
        target, settings = cls.check_state(state)
        try:
            return target._from_checked_state(clf, x, settings, options)
        except (TypeError, ValueError) as error:  # a context check (e.g. an index into the data set)
            raise _as_state_error(error, settings) from None

    @classmethod
    def _from_checked_state(cls, clf: Classifier, x: object, settings: dict[str, Any], options: dict) -> Explorer:
        return cls(clf, x, **settings, **options)

    def set_state(self, state: object) -> None:
        """Apply ``state`` (dict, JSON or share string) to this explorer.

        A refused state changes nothing, keeps the view as it is and says why in the status
        line (and :attr:`error`).
        """
        try:
            target, settings = type(self).check_state(state)
            if target is not type(self):
                raise ValueError(f"`state` belongs to a {target.__name__}, not a {type(self).__name__}.")
            self._apply_settings(settings)
        except (TypeError, ValueError) as error:  # SettingError is both a TraitError and a ValueError
            self._refuse(str(_as_state_error(error, self.settings())))

    def _apply_settings(self, settings: dict[str, Any]) -> None:
        self._set_settings(**settings)

    def _refuse(self, message: str) -> None:
        """Say why a value or state was refused; the view keeps showing what it showed."""
        self.error = message
        self._show_status(f"Refused — {message}", error=True)

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
    "MAX_STATE_CHARS",
    "MAX_STATE_DEPTH",
    "SHARE_PREFIX",
    "Explorer",
    "PointSelection",
    "encode_share",
    "explorer_name",
    "parse_state",
]
