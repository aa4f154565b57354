"""SliceExplorer: the classification regions of a plane through an image, in JupyterLab.

Over 500 lines on purpose: the explorer's panels (map, previews, pickers, markers, proof) share one
state; their drawing lives in views.py and controls.py, what remains is their wiring.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import torch
import traitlets

from ..core import Classifier, Plane, PlaneSlice, compute_slice, directions, presets
from ..core.dataset import Dataset
from ..core.directions import Bool, Choice, Float, Int
from ..core.directions.params import MAX_INDEX
from ..core.extent import data_square, first_crossing
from ..core.pipeline import DirectionCache, resolve_plane
from ..core.slices import SLICE_METHODS, normalize_extent
from ..render import shorten
from .base import Explorer, PointSelection
from .controls import DirectionPairTraits, DirectionPicker, piecewise_linear
from .settings import DynamicChoice, Point, Resolution, SettingError, bind, setting, weakly
from .views import SliceMapView, data_points_mark
from .worker import Job

__all__ = ["PointSelection", "SliceExplorer", "default_method"]

_RESOLUTIONS = (32, 64, 128, 256, 512)
_PREVIEW_RESOLUTION = 32  # the first, coarse frame of a progressive computation
_DIRECTION_CACHE = 8
_CROSSINGS = 32  # first boundary crossings remembered (one bisection each)
_DATA_POINTS = 400  # data points drawn over a 2-D model's map
_CUSTOM = "custom"


def default_method() -> str:
    return "adaptive" if "adaptive" in SLICE_METHODS else "dense"


class SliceExplorer(Explorer, DirectionPairTraits):
    """Pick two directions through an image and explore the classification regions of their plane.

    ``SliceExplorer(clf, x)`` displays itself in a notebook. Directions come from
    ``boundary_widgets.directions``' registry (or a preset plane of ``boundary_widgets.presets``);
    every kind's parameters get a control. The map is recomputed off the UI thread
    (``threaded=True``), progressively, and a new change cancels stale work; :meth:`wait` blocks
    until the map is up to date. ``threaded=False`` computes inline (tests, scripts).

    The settings are validating traits (``explorer.extent = 2.0``, ``explorer.observe(...)``; a
    bad value raises naming the setting and changes nothing); ``state`` and ``share`` hold them
    all, and ``SliceExplorer.from_state(clf, x, share)`` rebuilds the view. ``extent=None`` (the
    default) is chosen from the geometry: three times the DeepFool distance from ``x`` to its
    nearest boundary (see :func:`boundary_widgets.core.extent.default_extent`). A model with 2-D
    inputs is drawn in its own coordinates (x₁, x₂) with the data points.

    Attributes: ``slice`` (the current :class:`PlaneSlice`), ``plane``, ``selection`` (the
    inspected point or None), ``error`` (the message shown for the last failed update, or None).
    """

    preset = setting(DynamicChoice, None, "the preset plane in use, or None", options=presets.available)
    sample = setting(Int, None, "data set index of the origin (None: the x given)", maximum=MAX_INDEX)
    extent = setting(Float, None, "half-width of the map in L2 units (None: automatic)", minimum=1e-6, maximum=1e9)
    resolution = setting(Resolution, 128, "cells per axis of the (square) map")
    method = setting(Choice, default_method(), "how the plane is classified", choices=tuple(SLICE_METHODS))
    shading = setting(Choice, "labels", "class colours, or faded by confidence", choices=("labels", "confidence"))
    boundaries = setting(Bool, True, "draw the decision boundaries")
    clip = setting(Bool, False, "clip each point of the plane to the input bounds")
    click = setting(Point, None, "(alpha, beta) of the inspected point, or None")

    _COMPUTE = ("u", "v", "sample", "extent", "resolution", "method", "clip")  # the settings that need a new map

    def __init__(
        self,
        clf: Classifier,
        x: object = None,
        *,
        dataset: Dataset | None = None,
        preset: str | None = None,
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
        super().__init__(clf, threaded=threaded)
        if dataset is not None and not isinstance(dataset, Dataset):
            raise TypeError(f"`dataset` must be a boundary_widgets.Dataset or None; got {type(dataset).__name__}.")
        if x is None and dataset is None:
            raise ValueError("`x` must be an image when no `dataset` is given; got None.")
        self.dataset = dataset
        self.x = None if x is None else clf.check_inputs(x, "x", batched=False, in_bounds=True)[0].cpu()
        if sample is None and dataset is not None:
            sample = self._find_in_dataset(self.x) if self.x is not None else int(dataset.test_indices[0])
        self.planar = clf.input_shape == (2,)
        kinds = directions.available()
        for name, kind in (("u", u), ("v", v)):
            if kind not in kinds:
                raise ValueError(f"`{name}` must be a direction kind, one of {kinds}; got {kind!r:.60}.")
        self.direction_cache = DirectionCache(_DIRECTION_CACHE)
        self._crossings: dict[tuple, float | None] = {}
        self._slice: PlaneSlice | None = None
        self._plane: Plane | None = None
        self._anchors: dict[str, tuple[float, float]] = {}
        self._title = ""

        images = None if dataset is None else dataset.images
        common = {
            "class_names": clf.class_names,
            "images": images,
            "bounds": clf.bounds,
            "piecewise_linear": piecewise_linear(clf),
        }
        self.u_picker = DirectionPicker(
            "u",
            kind=u,
            on_change=weakly(self, lambda e: e._picker_changed("u")),
            css_class="bw-u-kind",
            **common,
        )
        self.v_picker = DirectionPicker(
            "v",
            kind=v,
            on_change=weakly(self, lambda e: e._picker_changed("v")),
            css_class="bw-v-kind",
            seed_offset=1,
            **common,
        )
        self._set_settings(
            u=self._direction_argument("u", u, u_params),
            v=self._direction_argument("v", v, v_params),
            sample=sample,
            extent=extent,
            resolution=resolution,
            method=default_method() if method is None else method,
            shading=shading,
            boundaries=boundaries,
            clip=clip,
            click=click,
            preset=preset,
        )
        self._sync_picker("u")
        self._sync_picker("v")
        self._build_controls()
        self.observe(self._settings_changed, names=list(self._COMPUTE))
        self.observe(lambda _change: self._redraw(), names=["shading", "boundaries"])
        self.observe(self._apply_preset, names=["preset"])
        if preset is not None:
            self._apply_preset({"new": preset})
        self._request()

    # --- construction ----------------------------------------------------------------------------
    def _find_in_dataset(self, x: torch.Tensor) -> int | None:
        matches = torch.nonzero((self.dataset.images.flatten(1) == x.flatten()[None]).all(dim=1)).flatten()
        return int(matches[0]) if matches.numel() else None

    def _build_controls(self) -> None:
        clf, dataset = self.clf, self.dataset
        self.preset_dropdown = widgets.Dropdown(
            options=[_CUSTOM, *presets.available()],
            value=_CUSTOM,
            description="preset",
            layout={"width": "230px"},
            style={"description_width": "initial"},
        )
        self.preset_dropdown.add_class("bw-preset")
        bind(
            self,
            "preset",
            self.preset_dropdown,
            to_control=lambda name: _CUSTOM if name is None else name,
            to_owner=lambda name: None if name == _CUSTOM else name,
        )
        self.swap_button = widgets.Button(description="swap u ↔ v", icon="exchange", layout={"width": "130px"})
        self.swap_button.on_click(weakly(self, lambda explorer, _button: explorer.swap()))
        self.split_toggle = widgets.ToggleButtons(
            options=["test", "train"], value="test", description="origin from", style={"button_width": "60px"}
        )
        self.index_slider = widgets.IntSlider(
            value=0, min=0, max=0, description="index", continuous_update=False, layout={"width": "230px"}
        )
        self.origin_caption = widgets.HTML()
        self.origin_caption.add_class("bw-origin")
        has_data = dataset is not None
        for control in (self.split_toggle, self.index_slider):
            control.layout.display = None if has_data else "none"
        self.split_toggle.observe(weakly(self, SliceExplorer._split_changed), names="value")
        self.index_slider.observe(weakly(self, SliceExplorer._index_changed), names="value")
        self.extent_slider = widgets.FloatLogSlider(
            value=1.0 if self.extent is None else self.extent,
            base=10,
            min=-3,
            max=3,
            step=0.01,
            description="extent",
            readout_format=".3g",
            continuous_update=False,
            layout={"width": "230px"},
        )
        bind(self, "extent", self.extent_slider)  # None (automatic) leaves the slider; the extent found is recorded
        settings = self.settings()
        resolutions = [r for r in _RESOLUTIONS if r <= settings["resolution"].spec.maximum]
        self.resolution_dropdown = widgets.Dropdown(options=resolutions, description="resolution")
        self.method_dropdown = widgets.Dropdown(
            options=list(settings["method"].spec.choices), description="evaluation", tooltip="adaptive or dense grid"
        )
        self.shading_toggle = widgets.ToggleButtons(
            options=list(settings["shading"].spec.choices), description="shading"
        )
        self.shading_toggle.style.button_width = "80px"
        self.boundaries_checkbox = widgets.Checkbox(description="boundary lines", indent=False)
        self.clip_checkbox = widgets.Checkbox(description="clip to input bounds", indent=False)
        for name, control in (
            ("resolution", self.resolution_dropdown),
            ("method", self.method_dropdown),
            ("shading", self.shading_toggle),
            ("boundaries", self.boundaries_checkbox),
            ("clip", self.clip_checkbox),
        ):
            bind(self, name, control)
        self._show_sample(self.sample)

        overlays = [self._data_points()] if self.planar else []
        labels = ("x₁", "x₂") if self.planar else ("α along u (L2)", "β along v (L2)")
        self.map_view = SliceMapView(
            clf.class_names,
            on_click=weakly(self, lambda explorer, alpha, beta: explorer.select(alpha, beta)),
            overlays=overlays,
            x_label=labels[0],
            y_label=labels[1],
            size=320,
        )
        plane_box = widgets.VBox(
            [self.preset_dropdown, self.u_picker.ui, self.v_picker.ui, self.swap_button],
            layout={"display": "none" if self.planar else None},
        )
        origin_box = widgets.VBox([self.origin_caption, self.split_toggle, self.index_slider, self.extent_slider])
        view_box = widgets.VBox(
            [
                self.resolution_dropdown,
                self.method_dropdown,
                self.shading_toggle,
                self.boundaries_checkbox,
                self.clip_checkbox,
            ]
        )
        tabs = widgets.Tab(children=[widgets.VBox([origin_box, plane_box]), view_box], layout={"width": "265px"})
        tabs.set_title(0, "plane")
        tabs.set_title(1, "view")
        self.controls_tabs = tabs
        self._build_ui(tabs, self.map_view.ui, "bw-slice-explorer")

    def _data_points(self, scales: dict) -> bq.Scatter:
        """The data set's test points over a 2-D model's map, coloured by their true class."""
        if self.dataset is None:
            return data_points_mark(scales, self.clf.num_classes)
        indices = self.dataset.test_indices[:_DATA_POINTS]
        points = self.dataset.images[indices].reshape(-1, 2).numpy()
        return data_points_mark(scales, self.clf.num_classes, points, self.dataset.labels[indices].numpy())

    def _data_points(self) -> Callable[[dict], bq.Scatter]:
        """A builder of the data set's test points over a 2-D model's map, coloured by their true class."""
        num_classes = self.clf.num_classes
        if self.dataset is None:
            return lambda scales: data_points_mark(scales, num_classes)
        indices = self.dataset.test_indices[:_DATA_POINTS]
        points = self.dataset.images[indices].reshape(-1, 2).numpy()
        labels = self.dataset.labels[indices].numpy()
        return lambda scales: data_points_mark(scales, num_classes, points, labels)

    # --- checks that need the explorer's data ------------------------------------------------------
    @traitlets.validate("sample")
    def _check_sample(self, proposal: dict) -> int | None:
        sample = proposal["value"]
        size = 0 if self.dataset is None else len(self.dataset)
        if sample is not None and sample >= size:
            raise SettingError(f"`sample` must index the data set ({size} images); got {sample}.")
        return sample

    @traitlets.validate("preset")
    def _check_preset(self, proposal: dict) -> str | None:
        if proposal["value"] is not None:
            try:
                self._preset_directions(proposal["value"])
            except ValueError as error:
                raise SettingError(f"`preset` {proposal['value']!r} cannot be used here: {error}") from None
        return proposal["value"]

    # --- trait wiring: one observer asks for a new map --------------------------------------------
    def _settings_changed(self, change: dict) -> None:
        if change["name"] in ("u", "v"):
            self._sync_picker(change["name"])
        self._request()

    def _picker_changed(self, which: str) -> None:
        picker = self.u_picker if which == "u" else self.v_picker
        try:
            with self.hold_trait_notifications():  # one new map for both changes
                self.preset = None
                setattr(self, which, picker.value)
        except (TypeError, ValueError) as error:
            self._refuse(str(error))

    def _preset_directions(self, name: str) -> tuple[dict, dict]:
        chosen = presets.get(name)
        u, v = chosen.u.as_dict(), chosen.v.as_dict()
        taken: list[int] = []
        for choice in (u, v):
            for p in directions.get(choice["kind"]).parameters:
                if isinstance(p, directions.Image) and p.name not in choice["params"]:
                    choice["params"][p.name] = self._other_image(taken)
        return u, v

    def _apply_preset(self, change: dict) -> None:
        """A preset sets both directions (a state that records its preset has them already: nothing changes)."""
        if change["new"] is not None:
            u, v = self._preset_directions(change["new"])
            with self.hold_trait_notifications():
                self.u, self.v = u, v

    def _other_image(self, taken: list[int]) -> int:
        """A test image of a class other than the origin's and those already ``taken`` (for image presets)."""
        if self.dataset is None:
            raise ValueError("it needs other images: pass `dataset=`")
        labels = self.dataset.labels
        avoid = {int(labels[i]) for i in taken}
        if self.sample is not None:
            avoid.add(int(labels[self.sample]))
        else:
            avoid.add(int(self.clf.predict(self.x)))
        for index in self.dataset.test_indices:
            if int(labels[index]) not in avoid and int(index) != self.sample:
                taken.append(int(index))
                return int(index)
        raise ValueError("the data set has no image of another class")

    def _split_changed(self, change: dict) -> None:
        indices = self._split_indices(change["new"])
        self.index_slider.max = max(len(indices) - 1, 0)
        self.sample = int(indices[min(self.index_slider.value, len(indices) - 1)])

    def _index_changed(self, change: dict) -> None:
        if self.dataset is not None:
            self.sample = int(self._split_indices(self.split_toggle.value)[change["new"]])

    def _split_indices(self, split: str) -> np.ndarray:
        return self.dataset.test_indices if split == "test" else self.dataset.train_indices

    def _show_sample(self, sample: int | None) -> None:
        """Point the split toggle and index slider at ``sample``; the moves in between are held back."""
        if self.dataset is None:
            return
        with self.hold_trait_notifications():
            if sample is not None:
                split = "test" if sample in set(self.dataset.test_indices.tolist()) else "train"
                indices = self._split_indices(split)
                self.split_toggle.value = split
                self.index_slider.max = max(len(indices) - 1, 0)
                self.index_slider.value = int(np.flatnonzero(indices == sample)[0])
                self.sample = sample
            else:
                self.index_slider.max = max(len(self.dataset.test_indices) - 1, 0)

    # --- display -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"SliceExplorer(u={self.u.get('kind')!r}, v={self.v.get('kind')!r}, resolution={self.resolution})"

    @property
    def slice(self) -> PlaneSlice | None:
        """The slice on display (None until the first computation finishes)."""
        return self._slice

    @property
    def plane(self) -> Plane | None:
        return self._plane

    @property
    def origin(self) -> torch.Tensor:
        """The image the plane goes through: the data set's ``sample``, else ``x``."""
        if self.sample is not None:
            return self.dataset.images[self.sample]
        return self.x

    def describe_origin(self) -> str:
        """Which image the origin is: data set index, split, true and predicted label."""
        names = self.clf.class_names
        predicted = names[int(self.clf.predict(self.origin))]
        if self.sample is None:
            return f"origin: the image <code>x</code> passed in, predicted <b>{html.escape(predicted)}</b>"
        split = "test" if self.split_toggle.value == "test" else "train"
        true = names[int(self.dataset.labels[self.sample])]
        return (
            f"origin: {split} image {self.index_slider.value} (data set #{self.sample}), true "
            f"<b>{html.escape(shorten(true))}</b>, predicted <b>{html.escape(shorten(predicted))}</b>"
        )

    @property
    def direction_computations(self) -> int:
        """How many directions were computed (not served from the cache)."""
        return self.direction_cache.computed

    # --- actions ---------------------------------------------------------------------------------
    def swap(self) -> None:
        """Exchange the two directions (the map mirrors across the diagonal)."""
        with self.hold_trait_notifications():
            self.preset = None
            self.u, self.v = dict(self.v), dict(self.u)

    def refresh(self) -> Job:
        """Recompute the map for the current settings (cancelling work under way)."""
        self._requested = self._work_settings()
        self._show_sample(self.sample)
        settings = {
            "u": dict(self.u),
            "v": dict(self.v),
            "sample": self.sample,
            "extent": self.extent,
            "resolution": self.resolution,
            "method": self.method,
            "clip": self.clip,
            "shading": self.shading,
            "boundaries": self.boundaries,
            "origin": self.origin,
        }
        return self._submit(lambda job: self._work(job, settings))

    def select(self, alpha: float, beta: float) -> PointSelection | None:
        """Inspect the point (alpha, beta) of the current plane: picture, top-k probabilities, coordinates."""
        self.click = (alpha, beta)
        alpha, beta = self.click
        self.map_view.mark_click((alpha, beta))
        if self._plane is None:
            return None
        image = self._plane.point(alpha, beta)
        if self.clip:
            image = self.clf.clip(image)
        if self.planar:
            caption = f"x₁ = {alpha:.3f}, x₂ = {beta:.3f}"
        else:
            caption = f"α = {alpha:.3f}, β = {beta:.3f} (L2 distance {math.hypot(alpha, beta):.3f})"
        return self.inspect(image, alpha, beta, caption)

    # --- the work ------------------------------------------------------------------------------
    def _check_other_images(self, settings: dict[str, Any]) -> None:
        for which in ("u", "v"):
            for name, index in self._image_parameters(settings[which]).items():
                if settings["sample"] is not None and index == settings["sample"]:
                    raise ValueError(
                        f"`{name}` of {which} is the origin itself (data set #{index}): pick another image."
                    )

    def _crossing(self, key: tuple, origin: torch.Tensor, vector: torch.Tensor, distance: float) -> float | None:
        if key not in self._crossings:
            if len(self._crossings) >= _CROSSINGS:
                self._crossings.pop(next(iter(self._crossings)))
            self._crossings[key] = first_crossing(self.clf, origin, vector, 1.5 * distance, samples=8, rounds=4)
        return self._crossings[key]

    def _anchor_points(self, plane: Plane, settings: dict, made: dict[str, directions.Direction], box: tuple) -> dict:
        """Origin, where the label first changes along u (and v), the other images used."""
        anchors = {"origin": (0.0, 0.0)}
        for which, direction in made.items():
            distance = direction.info.get("distance")
            axis = plane.u if which == "u" else plane.v
            aligned = float((direction.vector * axis).sum()) > 0.999
            if isinstance(distance, int | float) and math.isfinite(distance) and distance > 0 and aligned:
                t = self._crossing((plane.fingerprint(), which), settings["origin"], axis, float(distance))
                if t is not None:
                    anchors[f"boundary ({which})"] = (t, 0.0) if which == "u" else (0.0, t)
            for name, index in self._image_parameters(settings[which]).items():
                a, b = plane.coordinates(self.dataset.images[index])
                (a0, a1), (b0, b1) = box
                if a0 <= a <= a1 and b0 <= b <= b1:
                    anchors[f"{name} #{index}"] = (a, b)
                else:
                    anchors[f"{name} #{index} (outside the map, at α={a:.2f}, β={b:.2f})"] = (
                        min(max(a, a0), a1),
                        min(max(b, b0), b1),
                    )
        return anchors

    def _planar_extent(self) -> float:
        if self.dataset is not None:
            return data_square(self.dataset.images)[1]
        low, high = self.clf.bounds
        return (high - low) / 2

    def _planar_box(self, extent: float) -> tuple:
        centre = data_square(self.dataset.images)[0] if self.dataset is not None else [sum(self.clf.bounds) / 2] * 2
        return (centre[0] - extent, centre[0] + extent), (centre[1] - extent, centre[1] + extent)

    def _record_extent(self, job: Job, extent: float) -> None:
        """The extent chosen automatically, recorded in the trait without asking for another map."""
        job.check()
        with self.hold_trait_notifications():
            self.extent = extent
            self._requested = self._work_settings()

    def _work(self, job: Job, settings: dict[str, Any]) -> None:
        started = self._start("preparing…")
        timings: dict[str, float] = {}
        self.origin_caption.value = self.describe_origin()
        origin = settings["origin"]
        if self.planar:
            extent = settings["extent"] if settings["extent"] is not None else self._planar_extent()
            plane = Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
            box = self._planar_box(extent)
            anchors = {"sample": tuple(origin.tolist())}
            title = "the input plane (x₁, x₂)"
        else:
            self._check_other_images(settings)
            made: dict[str, directions.Direction] = {}
            content = None  # the origin's and the model's key, once per update: a checksum reads every weight
            for step, which in enumerate(("u", "v")):
                value = settings[which]
                self._show_status(f"computing direction {which} ({value['kind']})…")
                made[which] = self.direction_cache.get(
                    self.clf,
                    origin,
                    value["kind"],
                    self._make_params(value),
                    content=content,
                    progress=self._progress_callback(job, 0.1 * step, 0.1 * (step + 1), f"direction {which}"),
                    cancel=job.cancel,
                )
                job.check()
                (self.u_picker if which == "u" else self.v_picker).show_found(made[which])
                self.progress.value = 0.1 * (step + 1)
            if settings["extent"] is None:
                self._show_status("choosing the extent from the distance to the nearest boundary…")
            images = None if self.dataset is None else self.dataset.images[self.dataset.test_indices]
            resolved = resolve_plane(
                self.clf, origin, made["u"], made["v"], extent=settings["extent"], images=images, cancel=job.cancel
            )
            plane, extent = resolved.plane, resolved.extent
            box = normalize_extent(extent)
            anchors = self._anchor_points(plane, settings, made, box)
            title = f"u: {self._describe(settings['u'])} · v: {self._describe(settings['v'])}"
        if settings["extent"] is None:
            self._record_extent(job, extent)
        self._title = title
        frames: list[PlaneSlice] = []

        def show_frame(sl: PlaneSlice) -> None:
            job.check()
            frames.append(sl)
            self._publish(sl, plane, anchors, settings)
            timings.setdefault("first_frame", time.perf_counter() - started)
            self.timings = timings
            self.progress.value = 1.0 - 0.7 * 0.5 ** len(frames)

        self._show_status("classifying the plane…")
        options = {"extent": box, "clip": settings["clip"], "cancel": job.cancel}
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
        timings["final_frame"] = time.perf_counter() - started
        sl = self._slice
        proven = "" if sl.certificate is None else f", {sl.certificate.proven_area:.2%} of the area proven"
        self._succeed(
            f"{sl.resolution[0]}×{sl.resolution[1]} {sl.method} slice, {sl.n_evaluated} model evaluations"
            f"{proven}, {timings['final_frame']:.2f} s"
        )

    def _describe(self, value: dict[str, Any]) -> str:
        """A direction for the map's title: its kind and the parameters that differ from the defaults."""
        defaults = directions.get(value["kind"]).defaults()
        shown = {k: v for k, v in value["params"].items() if k != "seed" and v != defaults.get(k)}
        if "seed" in value["params"]:
            shown["seed"] = value["params"]["seed"]
        return value["kind"] + (" (" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")" if shown else "")

    def _publish(self, sl: PlaneSlice, plane: Plane, anchors: dict, settings: dict[str, Any]) -> None:
        self._slice = sl
        self._plane = plane
        self._anchors = anchors
        self._draw(sl, settings["shading"], settings["boundaries"])
        if self.click is not None:
            self.select(*self.click)

    def _draw(self, sl: PlaneSlice, shading: str, boundaries: bool) -> None:
        self.map_view.show(
            sl,
            shading=shading,
            boundaries=boundaries,
            anchors=self._anchors,
            title=self._title,
            bounds=self.clf.bounds,
            plane=self._plane,
        )

    def _redraw(self) -> None:
        if self._slice is not None:
            self._draw(self._slice, self.shading, self.boundaries)

    def _show_error(self, message: str) -> None:
        self.map_view.show_error(message)

    @classmethod
    def _from_checked_state(cls, clf: Classifier, x: object, settings: dict[str, Any], options: dict) -> Explorer:
        return cls(clf, x, **cls.constructor_arguments(settings), **options)
