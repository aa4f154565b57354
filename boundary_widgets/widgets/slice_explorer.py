"""SliceExplorer: the classification regions of a plane through an image, in JupyterLab."""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass
from os import PathLike
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch

from ..core import Classifier, Plane, PlaneSlice, compute_slice, directions
from ..core.directions import Direction
from ..core.slices import SLICE_METHODS, normalize_extent, normalize_resolution
from ..zoo import Dataset
from .controls import DirectionPicker
from .views import PointView, SliceMapView
from .worker import Job, Worker

_RESOLUTIONS = (32, 64, 128, 256, 512)
_PREVIEW_RESOLUTION = 32  # the first, coarse frame of a progressive computation
_SHADINGS = ("labels", "confidence")
STATE_KEYS = ("u", "v", "sample", "extent", "resolution", "method", "shading", "boundaries", "clip", "click")


@dataclass(frozen=True, eq=False)
class PointSelection:
    """The point the user clicked: its plane coordinates, the input there and the classifier's answer."""

    alpha: float
    beta: float
    image: torch.Tensor  # input_shape, float32: plane.point(alpha, beta) (clipped to the bounds when clip=True)
    probabilities: np.ndarray  # (classes,) float64
    label: int


def default_extent(clf: Classifier) -> float:
    """A quarter of the input box's diagonal-per-dimension scale: sqrt(d) · (high - low) / 4, in L2 units."""
    low, high = clf.bounds
    return round(0.25 * (high - low) * math.sqrt(clf.input_dim), 2)


def default_method() -> str:
    return "adaptive" if "adaptive" in SLICE_METHODS else "dense"


class SliceExplorer:
    """Pick two directions through an image and explore the classification regions of their plane.

    ``SliceExplorer(clf, x)`` displays itself in a notebook. Directions come from
    ``boundary_widgets.directions``' registry; every kind's parameters get a control. The map is
    recomputed off the UI thread (``threaded=True``), progressively, and a new change cancels
    stale work; :meth:`wait` blocks until the map is up to date. ``threaded=False`` computes
    inline (tests, scripts).

    Attributes after construction: ``slice`` (the current :class:`PlaneSlice`), ``state`` (every
    setting as a plain dict, see :meth:`from_state`), ``selection`` (the clicked point or None),
    ``error`` (the message shown for the last failed update, or None).
    """

    def __init__(
        self,
        clf: Classifier,
        x: object = None,
        *,
        dataset: Dataset | None = None,
        u: str = "adversarial",
        v: str = "random",
        u_params: dict[str, Any] | None = None,
        v_params: dict[str, Any] | None = None,
        sample: int | None = None,
        extent: float | None = None,
        resolution: int = 128,
        method: str | None = None,
        shading: str = "labels",
        boundaries: bool = True,
        clip: bool = False,
        click: tuple[float, float] | None = None,
        threaded: bool = True,
    ) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
        if dataset is not None and not isinstance(dataset, Dataset):
            raise TypeError(f"`dataset` must be a boundary_widgets.zoo.Dataset or None; got {type(dataset).__name__}.")
        if x is None and dataset is None:
            raise ValueError("`x` must be an image when no `dataset` is given; got None.")
        if sample is not None and dataset is None:
            raise ValueError(f"`sample` needs a `dataset`; got sample={sample} and dataset=None.")
        if x is None and sample is None:
            sample = 0
        self.clf = clf
        self.dataset = dataset
        self.x = None if x is None else clf.check_inputs(x, "x", batched=False, in_bounds=True)[0].cpu()
        method = default_method() if method is None else method
        for name, value, choices in (("method", method, tuple(SLICE_METHODS)), ("shading", shading, _SHADINGS)):
            if value not in choices:
                raise ValueError(f"`{name}` must be one of {list(choices)}; got {value!r}.")
        extent = default_extent(clf) if extent is None else extent
        normalize_extent(extent)
        resolution = normalize_resolution(resolution)[0]
        images = None if dataset is None else dataset.images

        self.worker = Worker(threaded=threaded)
        self._slice: PlaneSlice | None = None
        self._plane: Plane | None = None
        self._anchors: dict[str, tuple[float, float]] = {}
        self._directions: dict[str, tuple[tuple, Direction]] = {}
        self._click: tuple[float, float] | None = None
        self.selection: PointSelection | None = None
        self.error: str | None = None
        self.timings: dict[str, float] = {}

        self.u_picker = DirectionPicker(
            "u", kind=u, class_names=clf.class_names, images=images, on_change=self.refresh, css_class="bw-u-kind"
        )
        self.v_picker = DirectionPicker(
            "v",
            kind=v,
            class_names=clf.class_names,
            images=images,
            on_change=self.refresh,
            css_class="bw-v-kind",
            seed_offset=1,
        )
        self.u_picker.set_value({"kind": u, "params": u_params or {}}, notify=False)
        self.v_picker.set_value({"kind": v, "params": v_params or {}}, notify=False)
        self.swap_button = widgets.Button(description="swap u ↔ v", icon="exchange", layout={"width": "130px"})
        self.swap_button.on_click(lambda _: self.swap())
        self.sample_slider = widgets.IntSlider(
            value=0 if sample is None else int(sample),
            min=0,
            max=max(len(dataset) - 1, 0) if dataset is not None else 0,
            description="sample",
            continuous_update=False,
            disabled=dataset is None,
            layout={"display": "flex" if dataset is not None else "none"},
        )
        self._sample = sample
        self.extent_slider = widgets.FloatLogSlider(
            value=float(extent) if not isinstance(extent, tuple) else float(extent[0][1]),
            base=10,
            min=-2,
            max=3,
            step=0.01,
            description="extent",
            readout_format=".3g",
            continuous_update=False,
        )
        self.resolution_dropdown = widgets.Dropdown(
            options=sorted({*_RESOLUTIONS, resolution}), value=resolution, description="resolution"
        )
        self.method_dropdown = widgets.Dropdown(options=list(SLICE_METHODS), value=method, description="method")
        self.shading_toggle = widgets.ToggleButtons(options=list(_SHADINGS), value=shading, description="shading")
        self.boundaries_checkbox = widgets.Checkbox(value=bool(boundaries), description="boundary lines", indent=False)
        self.clip_checkbox = widgets.Checkbox(value=bool(clip), description="clip to input bounds", indent=False)
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="", layout={"width": "300px"})
        self.status = widgets.HTML()
        self.status.add_class("bw-status")

        self.map_view = SliceMapView(clf.class_names, on_click=self.select)
        self.point_view = PointView(clf.class_names)

        for control in (
            self.extent_slider,
            self.resolution_dropdown,
            self.method_dropdown,
            self.clip_checkbox,
        ):
            control.observe(lambda _change: self.refresh(), names="value")
        self.sample_slider.observe(self._sample_changed, names="value")
        for control in (self.shading_toggle, self.boundaries_checkbox):
            control.observe(lambda _change: self._redraw(), names="value")

        controls = widgets.VBox(
            [
                self.sample_slider,
                self.u_picker.ui,
                self.v_picker.ui,
                self.swap_button,
                self.extent_slider,
                self.resolution_dropdown,
                self.method_dropdown,
                self.shading_toggle,
                self.boundaries_checkbox,
                self.clip_checkbox,
            ],
            layout={"width": "330px"},
        )
        self.ui = widgets.VBox(
            [
                widgets.HBox(
                    [controls, self.map_view.ui, self.point_view.ui], layout=widgets.Layout(flex_flow="row wrap")
                ),
                widgets.HBox([self.progress, self.status]),
            ]
        )
        self.ui.add_class("bw-slice-explorer")
        self._pending_click = None if click is None else (float(click[0]), float(click[1]))
        self.refresh()

    # --- display -----------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.ui._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"SliceExplorer(u={self.u_picker.kind!r}, v={self.v_picker.kind!r}, resolution={self.resolution_dropdown.value})"

    # --- state ---------------------------------------------------------------------------------
    @property
    def slice(self) -> PlaneSlice | None:
        """The slice on display (None until the first computation finishes)."""
        return self._slice

    @property
    def plane(self) -> Plane | None:
        return self._plane

    @property
    def origin(self) -> torch.Tensor:
        if self._sample is not None:
            return self.dataset.images[self._sample]
        return self.x

    @property
    def state(self) -> dict[str, Any]:
        """Every setting as plain Python values; ``SliceExplorer.from_state(clf, x, state)`` rebuilds the view."""
        return {
            "u": self.u_picker.value,
            "v": self.v_picker.value,
            "sample": self._sample,
            "extent": float(self.extent_slider.value),
            "resolution": int(self.resolution_dropdown.value),
            "method": self.method_dropdown.value,
            "shading": self.shading_toggle.value,
            "boundaries": bool(self.boundaries_checkbox.value),
            "clip": bool(self.clip_checkbox.value),
            "click": None if self._click is None else list(self._click),
        }

    @classmethod
    def from_state(
        cls,
        clf: Classifier,
        x: object,
        state: dict[str, Any],
        *,
        dataset: Dataset | None = None,
        threaded: bool = True,
    ) -> SliceExplorer:
        """The explorer that ``state`` (from :attr:`state`) describes, on ``clf`` and ``x``."""
        if not isinstance(state, dict):
            raise TypeError(f"`state` must be a dict from `SliceExplorer.state`; got {type(state).__name__}.")
        unknown = sorted(set(state) - set(STATE_KEYS))
        missing = sorted(set(STATE_KEYS) - set(state))
        if unknown or missing:
            raise ValueError(
                f"`state` must have exactly the keys {list(STATE_KEYS)}; unknown {unknown}, missing {missing}."
            )
        return cls(
            clf,
            x,
            dataset=dataset,
            u=state["u"]["kind"],
            v=state["v"]["kind"],
            u_params=state["u"]["params"],
            v_params=state["v"]["params"],
            sample=state["sample"],
            extent=state["extent"],
            resolution=state["resolution"],
            method=state["method"],
            shading=state["shading"],
            boundaries=state["boundaries"],
            clip=state["clip"],
            click=None if state["click"] is None else tuple(state["click"]),
            threaded=threaded,
        )

    # --- actions ---------------------------------------------------------------------------------
    def swap(self) -> None:
        """Exchange the two directions (the map mirrors across the diagonal)."""
        u_value, v_value = self.u_picker.value, self.v_picker.value
        self.u_picker.set_value(v_value, notify=False)
        self.v_picker.set_value(u_value, notify=False)
        self.refresh()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the map reflects the latest settings; False if ``timeout`` seconds passed first."""
        return self.worker.wait(timeout)

    def refresh(self) -> Job:
        """Recompute the map for the current settings (cancelling work under way)."""
        settings = self.state
        settings["u_make"] = self.u_picker.make_params()
        settings["v_make"] = self.v_picker.make_params()
        settings["u_images"] = self.u_picker.image_parameters()
        settings["v_images"] = self.v_picker.image_parameters()
        settings["origin"] = self.origin
        return self.worker.submit(lambda job: self._update(job, settings))

    def _sample_changed(self, change: dict) -> None:
        self._sample = int(change["new"])
        self.refresh()

    def select(self, alpha: float, beta: float) -> PointSelection | None:
        """Inspect the point (alpha, beta) of the current plane: picture, probabilities, coordinates."""
        self._click = (float(alpha), float(beta))
        self.map_view.mark_click(self._click)
        if self._plane is None:
            return None
        image = self._plane.point(alpha, beta)
        if self.clip_checkbox.value:
            image = self.clf.clip(image)
        probabilities = self.clf.probabilities(image).double().cpu().numpy()
        label = int(probabilities.argmax())
        self.selection = PointSelection(float(alpha), float(beta), image, probabilities, label)
        name = html.escape(self.clf.class_names[label])
        caption = (
            f"α = {alpha:.3f}, β = {beta:.3f} (L2 distance {math.hypot(alpha, beta):.3f})<br>"
            f"predicted <b>{name}</b> ({probabilities[label]:.1%})"
        )
        self.point_view.show(image, probabilities, self.clf.bounds, caption)
        return self.selection

    def save_png(self, path: str | PathLike, *, dpi: int = 150) -> None:
        """Save the current view through the matplotlib twin (``plot_slice``) as a PNG file."""
        from matplotlib.figure import Figure

        from ..plotting.slices import SliceDisplay

        if self._slice is None:
            raise ValueError("`save_png` needs a computed slice; call `wait()` first or fix the error shown.")
        figure = Figure(figsize=(5.4, 4.2))
        ax = figure.add_subplot()
        markers = {name: point for name, point in self._anchors.items() if name != "origin"}
        if self._click is not None:
            markers["clicked"] = self._click
        SliceDisplay(self._slice).plot(
            ax, shading=self.shading_toggle.value, boundaries=self.boundaries_checkbox.value, markers=markers
        )
        figure.savefig(path, dpi=dpi, bbox_inches="tight")

    # --- the work ------------------------------------------------------------------------------
    def _show_status(self, message: str, *, error: bool = False) -> None:
        colour = "#b00020" if error else "#333"
        css = "bw-error" if error else "bw-info"
        self.status.value = f'<span class="{css}" style="color:{colour}">{html.escape(message)}</span>'

    def _direction(self, which: str, settings: dict[str, Any], origin_key: tuple) -> Direction:
        value = settings[which]
        key = (origin_key, value["kind"], repr(sorted(value["params"].items())))
        cached = self._directions.get(which)
        if cached is not None and cached[0] == key:
            return cached[1]
        direction = directions.make(value["kind"], self.clf, settings["origin"], **settings[f"{which}_make"])
        self._directions[which] = (key, direction)
        return direction

    def _anchor_points(self, plane: Plane, settings: dict[str, Any], found: dict[str, Direction]) -> dict:
        """Origin, the boundary point a direction found (``info["distance"]`` along it), other images used."""
        anchors = {"origin": (0.0, 0.0)}
        for which, direction in found.items():
            distance = direction.info.get("distance")
            if isinstance(distance, int | float) and math.isfinite(distance) and direction.kind == "adversarial":
                point = plane.origin + float(distance) * direction.vector
                anchors[f"boundary ({which})"] = plane.coordinates(point)
            for name, index in settings[f"{which}_images"].items():
                anchors[f"{name} #{index}"] = plane.coordinates(self.dataset.images[index])
        return anchors

    def _update(self, job: Job, settings: dict[str, Any]) -> None:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        frames: list[PlaneSlice] = []

        def show_frame(sl: PlaneSlice) -> None:
            job.check()
            frames.append(sl)
            self._publish(sl, plane, anchors, settings)
            timings.setdefault("first_frame", time.perf_counter() - started)
            self.timings = timings
            self.progress.value = 1.0 - 0.7 * 0.5 ** len(frames)

        try:
            self.progress.value = 0.0
            self.progress.bar_style = "info"
            origin = settings["origin"]
            origin_key = (settings["sample"], id(origin))
            found = {}
            for step, which in enumerate(("u", "v")):
                self._show_status(f"computing direction {which} ({settings[which]['kind']})…")
                found[which] = self._direction(which, settings, origin_key)
                job.check()
                self.progress.value = 0.1 * (step + 1)
            plane = Plane.through(origin, found["u"], found["v"])
            anchors = self._anchor_points(plane, settings, found)
            self._show_status("classifying the plane…")
            options = {"extent": settings["extent"], "clip": settings["clip"], "cancel": job.cancel}
            if settings["method"] == "dense" and settings["resolution"] > 2 * _PREVIEW_RESOLUTION:
                # Dense work gives one frame only: show a coarse one while it runs.
                show_frame(compute_slice(self.clf, plane, resolution=_PREVIEW_RESOLUTION, method="dense", **options))
            compute_slice(
                self.clf,
                plane,
                resolution=settings["resolution"],
                method=settings["method"],
                on_frame=show_frame,
                **options,
            )
        except Exception as error:
            if job.stale:
                return
            self.error = f"{type(error).__name__}: {error}"
            self.progress.bar_style = "danger"
            self._show_status(f"Could not update the map — {self.error}", error=True)
            return
        timings["final_frame"] = time.perf_counter() - started
        self.error = None
        self.progress.value = 1.0
        self.progress.bar_style = "success"
        sl = self._slice
        self._show_status(
            f"{sl.resolution[0]}×{sl.resolution[1]} {sl.method} slice, {sl.n_evaluated} model evaluations, "
            f"{timings['final_frame']:.2f} s"
        )

    def _publish(self, sl: PlaneSlice, plane: Plane, anchors: dict, settings: dict[str, Any]) -> None:
        self._slice = sl
        self._plane = plane
        self._anchors = anchors
        self.map_view.show(sl, shading=settings["shading"], boundaries=settings["boundaries"], anchors=anchors)
        click = self._pending_click if self._pending_click is not None else self._click
        self._pending_click = None
        if click is not None:
            self.select(*click)

    def _redraw(self) -> None:
        if self._slice is not None:
            self.map_view.show(
                self._slice,
                shading=self.shading_toggle.value,
                boundaries=self.boundaries_checkbox.value,
                anchors=self._anchors,
            )
