"""SliceExplorer: the classification regions of a plane through an image, in JupyterLab."""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import math
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, ClassVar

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import torch
import traitlets

from ..core import Classifier, Plane, PlaneSlice, compute_slice, directions, presets
from ..core.dataset import Dataset
from ..core.directions import Direction
from ..core.extent import data_square, default_extent, extent_from_distance, first_crossing
from ..core.slices import SLICE_METHODS, normalize_extent, normalize_resolution
from ..core.validation import check_bool
from ..render import shorten
from .base import (
    MAX_RESOLUTION,
    Check,
    Explorer,
    PointSelection,
    bool_field,
    choice_field,
    float_field,
    int_field,
    link_dropdown,
    point_field,
)
from .controls import DirectionPairTraits, DirectionPicker, piecewise_linear
from .views import SliceMapView, data_points_mark
from .worker import Job

__all__ = ["PointSelection", "SliceExplorer", "default_method"]

_RESOLUTIONS = (32, 64, 128, 256, 512)
_PREVIEW_RESOLUTION = 32  # the first, coarse frame of a progressive computation
_SHADINGS = ("labels", "confidence")
_DIRECTION_CACHE = 8
_DATA_POINTS = 400  # data points drawn over a 2-D model's map
_CUSTOM = "custom"


def default_method() -> str:
    return "adaptive" if "adaptive" in SLICE_METHODS else "dense"


def direction_field(name: str, value: Any) -> dict[str, Any]:
    """``{"kind": registered kind, "params": {parameter: value}}``, each value checked by its parameter's type."""
    return directions.direction_from_json(value, where=f"`state[{name!r}]`")


def preset_field(name: str, value: Any) -> str | None:
    if value is None or value == _CUSTOM:
        return None
    if not isinstance(value, str) or value not in presets.available():
        raise ValueError(f"`state[{name!r}]` must be null or one of {list(presets.available())}; got {value!r:.60}.")
    return value


def _fingerprint(x: torch.Tensor) -> str:
    return hashlib.blake2b(np.ascontiguousarray(x.detach().cpu().numpy()).tobytes(), digest_size=16).hexdigest()


def _model_key(clf: Classifier) -> tuple:
    checksum = getattr(clf, "state_checksum", None)
    return tuple(checksum()) if callable(checksum) else ()


class SliceExplorer(Explorer, DirectionPairTraits):
    """Pick two directions through an image and explore the classification regions of their plane.

    ``SliceExplorer(clf, x)`` displays itself in a notebook. Directions come from
    ``boundary_widgets.directions``' registry (or a preset plane of ``boundary_widgets.presets``);
    every kind's parameters get a control. The map is recomputed off the UI thread
    (``threaded=True``), progressively, and a new change cancels stale work; :meth:`wait` blocks
    until the map is up to date. ``threaded=False`` computes inline (tests, scripts).

    The settings are traits (``explorer.extent = 2.0``, ``explorer.observe(...)``); ``state`` and
    ``share`` hold them all, and ``SliceExplorer.from_state(clf, x, share)`` rebuilds the view.
    ``extent=None`` (the default) is chosen from the geometry: three times the DeepFool distance
    from ``x`` to its nearest boundary (see :func:`boundary_widgets.core.extent.default_extent`).
    A model with 2-D inputs is drawn in its own coordinates (x₁, x₂) with the data points.

    Attributes: ``slice`` (the current :class:`PlaneSlice`), ``plane``, ``selection`` (the
    inspected point or None), ``error`` (the message shown for the last failed update, or None).
    """

    STATE_FIELDS: ClassVar[dict[str, Check]] = {
        "preset": preset_field,
        "u": direction_field,
        "v": direction_field,
        "sample": int_field(0, 2**31 - 1, optional=True),
        "extent": float_field(0.0, 1e9, optional=True, positive=True),
        "resolution": int_field(2, MAX_RESOLUTION),
        "method": choice_field(tuple(SLICE_METHODS)),
        "shading": choice_field(_SHADINGS),
        "boundaries": bool_field,
        "clip": bool_field,
        "click": point_field,
    }

    preset = traitlets.Unicode(None, allow_none=True, help="the preset plane in use, or None").tag(state=True)
    sample = traitlets.Int(None, allow_none=True, help="data set index of the origin (None: the x given)").tag(
        state=True
    )
    extent = traitlets.Float(None, allow_none=True, help="half-width of the map in L2 units (None: automatic)").tag(
        state=True
    )
    resolution = traitlets.Int(128).tag(state=True)
    method = traitlets.Unicode("adaptive").tag(state=True)
    shading = traitlets.Unicode("labels").tag(state=True)
    boundaries = traitlets.Bool(True).tag(state=True)
    clip = traitlets.Bool(False).tag(state=True)
    click = traitlets.Any(None, allow_none=True, help="[alpha, beta] of the inspected point, or None").tag(state=True)

    _COMPUTE = ("u", "v", "sample", "extent", "resolution", "method", "clip")

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
        if sample is not None and dataset is None:
            raise ValueError(f"`sample` needs a `dataset`; got sample={sample} and dataset=None.")
        if sample is not None and not (isinstance(sample, int) and 0 <= sample < len(dataset)):
            raise ValueError(f"`sample` must be an index of the data set, in [0, {len(dataset) - 1}]; got {sample!r}.")
        method = default_method() if method is None else method
        for name, value, choices in (("method", method, tuple(SLICE_METHODS)), ("shading", shading, _SHADINGS)):
            if value not in choices:
                raise ValueError(f"`{name}` must be one of {list(choices)}; got {value!r}.")
        if extent is not None:
            normalize_extent(extent)
        for name, kind, params in (("u", u, u_params), ("v", v, v_params)):
            if kind not in directions.available():
                raise ValueError(f"`{name}` must be a direction kind, one of {directions.available()}; got {kind!r}.")
            directions.check_parameters(kind, clf, params or {})
        check_bool(boundaries, "boundaries")
        check_bool(clip, "clip")
        resolution = normalize_resolution(resolution)[0]
        if resolution > MAX_RESOLUTION:
            raise ValueError(f"`resolution` must be <= {MAX_RESOLUTION}; got {resolution}.")
        self.dataset = dataset
        self.x = None if x is None else clf.check_inputs(x, "x", batched=False, in_bounds=True)[0].cpu()
        if sample is None and dataset is not None:
            sample = self._find_in_dataset(self.x) if self.x is not None else int(dataset.test_indices[0])
        self.planar = clf.input_shape == (2,)
        images = None if dataset is None else dataset.images
        self._building = True
        self._dirty = False
        self._batch_depth = 0
        self._applying_preset = False
        self._direction_cache: OrderedDict[tuple, Direction] = OrderedDict()
        self._crossings: dict[tuple, float | None] = {}
        self.direction_computations = 0
        self._slice: PlaneSlice | None = None
        self._plane: Plane | None = None
        self._anchors: dict[str, tuple[float, float]] = {}
        self._title = ""
        self._pending_click = None if click is None else [float(click[0]), float(click[1])]

        relu = piecewise_linear(clf)
        common = {"class_names": clf.class_names, "images": images, "bounds": clf.bounds, "piecewise_linear": relu}
        self.u_picker = DirectionPicker(
            "u", kind=u, on_change=lambda: self._picker_changed("u"), css_class="bw-u-kind", **common
        )
        self.v_picker = DirectionPicker(
            "v", kind=v, on_change=lambda: self._picker_changed("v"), css_class="bw-v-kind", seed_offset=1, **common
        )
        self.u_picker.set_value({"kind": u, "params": u_params or {}}, notify=False)
        self.v_picker.set_value({"kind": v, "params": v_params or {}}, notify=False)
        self.u, self.v = self.u_picker.value, self.v_picker.value
        self.sample, self.extent, self.resolution, self.method = sample, extent, resolution, method
        self.shading, self.boundaries, self.clip = shading, bool(boundaries), bool(clip)
        self._build_controls()
        self.observe(self._sync_pickers, names=["u", "v"])  # first: the computation reads the pickers
        self.observe(self._compute_changed, names=list(self._COMPUTE))
        self.observe(lambda _change: self._redraw(), names=["shading", "boundaries"])
        self.observe(self._preset_changed, names=["preset"])
        self._building = False
        if preset is not None:
            self.preset = preset_field("preset", preset)
        else:
            self.refresh()

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
        self.preset_dropdown.observe(
            lambda change: setattr(self, "preset", None if change["new"] == _CUSTOM else change["new"]), names="value"
        )
        self.swap_button = widgets.Button(description="swap u ↔ v", icon="exchange", layout={"width": "130px"})
        self.swap_button.on_click(lambda _: self.swap())
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
        self.split_toggle.observe(self._split_changed, names="value")
        self.index_slider.observe(self._index_changed, names="value")
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
        self.extent_slider.observe(self._extent_slid, names="value")
        self.observe(self._extent_set, names=["extent"])
        self.resolution_dropdown = widgets.Dropdown(
            options=sorted({*_RESOLUTIONS, self.resolution}), value=self.resolution, description="resolution"
        )
        self.method_dropdown = widgets.Dropdown(
            options=list(SLICE_METHODS), value=self.method, description="evaluation", tooltip="adaptive or dense grid"
        )
        self.shading_toggle = widgets.ToggleButtons(options=list(_SHADINGS), value=self.shading, description="shading")
        self.shading_toggle.style.button_width = "80px"
        self.boundaries_checkbox = widgets.Checkbox(value=self.boundaries, description="boundary lines", indent=False)
        self.clip_checkbox = widgets.Checkbox(value=self.clip, description="clip to input bounds", indent=False)
        link_dropdown(self, "resolution", self.resolution_dropdown)
        for name, control in (
            ("method", self.method_dropdown),
            ("shading", self.shading_toggle),
            ("boundaries", self.boundaries_checkbox),
            ("clip", self.clip_checkbox),
        ):
            widgets.link((self, name), (control, "value"))
        self._show_sample(self.sample)

        overlays = [self._data_points] if self.planar else []
        labels = ("x₁", "x₂") if self.planar else ("α along u (L2)", "β along v (L2)")
        self.map_view = SliceMapView(
            clf.class_names, on_click=self.select, overlays=overlays, x_label=labels[0], y_label=labels[1], size=320
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

    # --- trait wiring -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _one_refresh(self) -> Iterator[None]:
        """Changes made inside the block start one computation at its end."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._dirty:
                self._dirty = False
                self.refresh()

    def _compute_changed(self, _change: dict) -> None:
        if self._building:
            return
        if self._batch_depth:
            self._dirty = True
        else:
            self.refresh()

    def _picker_changed(self, which: str) -> None:
        picker = self.u_picker if which == "u" else self.v_picker
        with self._one_refresh():
            if not self._applying_preset:
                self.preset = None
            setattr(self, which, picker.value)

    def _apply_settings(self, settings: dict[str, Any]) -> None:
        with self._one_refresh():
            super()._apply_settings(settings)

    def _preset_changed(self, change: dict) -> None:
        name = change["new"]
        self.preset_dropdown.value = _CUSTOM if name is None else name
        if name is None or self._building:
            return
        chosen = presets.get(name)
        u, v = chosen.u.as_dict(), chosen.v.as_dict()
        taken: list[int] = []
        for choice in (u, v):
            for p in directions.get(choice["kind"]).parameters:
                if isinstance(p, directions.Image) and p.name not in choice["params"]:
                    choice["params"][p.name] = self._other_image(taken)
        self._applying_preset = True
        try:
            with self._one_refresh():
                self.u_picker.set_value(u, notify=False)
                self.v_picker.set_value(v, notify=False)
                self.u, self.v = self.u_picker.value, self.v_picker.value
                self._dirty = True
        except ValueError as error:
            self._fail(f"preset {name!r} cannot be used here: {error}")
        finally:
            self._applying_preset = False

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

    def _extent_slid(self, change: dict) -> None:
        if not self._building and self.extent != change["new"]:
            self.extent = float(change["new"])

    def _extent_set(self, change: dict) -> None:
        if change["new"] is not None and self.extent_slider.value != change["new"]:
            self.extent_slider.value = change["new"]

    def _split_changed(self, change: dict) -> None:
        indices = self._split_indices(change["new"])
        self.index_slider.max = max(len(indices) - 1, 0)
        if not self._building and self._showing_sample is False:
            self.sample = int(indices[self.index_slider.value])

    def _index_changed(self, change: dict) -> None:
        if self._showing_sample or self.dataset is None:
            return
        self.sample = int(self._split_indices(self.split_toggle.value)[change["new"]])

    def _split_indices(self, split: str) -> np.ndarray:
        return self.dataset.test_indices if split == "test" else self.dataset.train_indices

    _showing_sample = False

    def _show_sample(self, sample: int | None) -> None:
        """Point the split toggle and index slider at ``sample`` without moving the origin."""
        if self.dataset is None:
            return
        self._showing_sample = True
        try:
            if sample is not None:
                split = "test" if sample in set(self.dataset.test_indices.tolist()) else "train"
                indices = self._split_indices(split)
                self.split_toggle.value = split
                self.index_slider.max = max(len(indices) - 1, 0)
                self.index_slider.value = int(np.flatnonzero(indices == sample)[0])
            else:
                self.index_slider.max = max(len(self.dataset.test_indices) - 1, 0)
        finally:
            self._showing_sample = False

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

    # --- actions ---------------------------------------------------------------------------------
    def swap(self) -> None:
        """Exchange the two directions (the map mirrors across the diagonal)."""
        with self._one_refresh():
            self.preset = None
            self.u, self.v = dict(self.v), dict(self.u)

    def refresh(self) -> Job:
        """Recompute the map for the current settings (cancelling work under way)."""
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
            "u_make": self.u_picker.make_params(),
            "v_make": self.v_picker.make_params(),
            "u_images": self.u_picker.image_parameters(),
            "v_images": self.v_picker.image_parameters(),
        }
        return self._submit(lambda job: self._work(job, settings))

    def select(self, alpha: float, beta: float) -> PointSelection | None:
        """Inspect the point (alpha, beta) of the current plane: picture, top-k probabilities, coordinates."""
        self.click = [float(alpha), float(beta)]
        self.map_view.mark_click((float(alpha), float(beta)))
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
    def _direction(
        self, job: Job, which: str, settings: dict[str, Any], step: int, content: tuple
    ) -> tuple[Direction, tuple]:
        """The direction ``which``, from a cache keyed on content: origin and model state (``content``), kind, parameters."""
        value = settings[which]
        key = (*content, value["kind"], json.dumps(value["params"], sort_keys=True))
        cached = self._direction_cache.get(key)
        if cached is not None:
            self._direction_cache.move_to_end(key)
            return cached, key
        self._show_status(f"computing direction {which} ({value['kind']})…")
        progress = self._progress_callback(job, 0.1 * step, 0.1 * (step + 1), f"direction {which}")
        direction = directions.make(
            value["kind"],
            self.clf,
            settings["origin"],
            **settings[f"{which}_make"],
            progress=progress,
            cancel=job.cancel,
        )
        self.direction_computations += 1
        self._direction_cache[key] = direction
        while len(self._direction_cache) > _DIRECTION_CACHE:
            self._direction_cache.popitem(last=False)
        return direction, key

    def _check_other_images(self, settings: dict[str, Any]) -> None:
        for which in ("u", "v"):
            for name, index in settings[f"{which}_images"].items():
                if settings["sample"] is not None and index == settings["sample"]:
                    raise ValueError(
                        f"`{name}` of {which} is the origin itself (data set #{index}): pick another image."
                    )

    def _crossing(self, key: tuple, origin: torch.Tensor, vector: torch.Tensor, distance: float) -> float | None:
        if key not in self._crossings:
            self._crossings[key] = first_crossing(self.clf, origin, vector, 1.5 * distance, samples=8, rounds=4)
        return self._crossings[key]

    def _anchor_points(
        self, plane: Plane, settings: dict, found: dict[str, tuple[Direction, tuple]], box: tuple
    ) -> dict:
        """Origin, where the label first changes along u (and v), the other images used."""
        anchors = {"origin": (0.0, 0.0)}
        for which, (direction, key) in found.items():
            distance = direction.info.get("distance")
            axis = plane.u if which == "u" else plane.v
            aligned = float((direction.vector * axis).sum()) > 0.999
            if isinstance(distance, int | float) and math.isfinite(distance) and distance > 0 and aligned:
                t = self._crossing(key, settings["origin"], axis, float(distance))
                if t is not None:
                    anchors[f"boundary ({which})"] = (t, 0.0) if which == "u" else (0.0, t)
            for name, index in settings[f"{which}_images"].items():
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

    def _resolve_extent(self, job: Job, settings: dict[str, Any], found: dict) -> float:
        if settings["extent"] is not None:
            return settings["extent"]
        self._show_status("choosing the extent from the distance to the nearest boundary…")
        u = found.get("u", (None,))[0]
        defaults = directions.get("adversarial").defaults()
        if self.planar:
            extent = self._planar_extent()
        elif (
            u is not None
            and u.kind == "adversarial"
            and all(u.params.get(k) == defaults[k] for k in ("method", "target", "candidates", "max_iter"))
            and u.info.get("converged")
        ):
            extent = extent_from_distance(float(u.info["distance"]))  # the very DeepFool default_extent runs
        else:
            images = None if self.dataset is None else self.dataset.images[self.dataset.test_indices]
            extent = default_extent(self.clf, settings["origin"], images=images, cancel=job.cancel)
        job.check()
        self._building = True  # recorded, not recomputed: this job is drawing it
        try:
            self.extent = extent
        finally:
            self._building = False
        return extent

    def _work(self, job: Job, settings: dict[str, Any]) -> None:
        started = self._start("preparing…")
        timings: dict[str, float] = {}
        self.origin_caption.value = self.describe_origin()
        origin = settings["origin"]
        found: dict[str, tuple[Direction, tuple]] = {}
        if not self.planar:
            self._check_other_images(settings)
            content = (_fingerprint(origin), _model_key(self.clf))  # once per update: a checksum reads every weight
            for step, which in enumerate(("u", "v")):
                found[which] = self._direction(job, which, settings, step, content)
                job.check()
                self.progress.value = 0.1 * (step + 1)
        extent = self._resolve_extent(job, settings, found)
        if self.planar:
            plane = Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
            box = self._planar_box(extent)
            anchors = {"sample": tuple(origin.tolist())}
            title = "the input plane (x₁, x₂)"
        else:
            plane = Plane.through(origin, found["u"][0], found["v"][0])
            box = normalize_extent(extent)
            anchors = self._anchor_points(plane, settings, found, box)
            title = f"u: {self._describe(settings['u'])} · v: {self._describe(settings['v'])}"
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
        click = self._pending_click if self._pending_click is not None else self.click
        self._pending_click = None
        if click is not None:
            self.select(*click)

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
        dataset = options.get("dataset")
        for which in ("u", "v"):
            value = settings.get(which)
            if value is None:
                continue
            for p in directions.get(value["kind"]).parameters:
                setting = value["params"].get(p.name)
                if isinstance(p, directions.ClassIndex):
                    p.check(setting, num_classes=clf.num_classes, where=f"`state[{which!r}]['params'][{p.name!r}]`")
                if (
                    isinstance(p, directions.Image)
                    and setting is not None
                    and (dataset is None or setting >= len(dataset))
                ):
                    size = 0 if dataset is None else len(dataset)
                    raise ValueError(
                        f"`state[{which!r}]['params'][{p.name!r}]` must index the data set ({size} images); got {setting}."
                    )
        sample = settings.get("sample")
        if sample is not None and (dataset is None or sample >= len(dataset)):
            raise ValueError(
                f"`state['sample']` must index the data set ({0 if dataset is None else len(dataset)} images); got {sample}."
            )
        kwargs = cls.constructor_arguments(settings)
        preset = kwargs.pop("preset", None)
        explorer = cls(clf, x, **kwargs, **options)
        if preset is not None:  # recorded only: the plane itself comes from u and v
            explorer._building = True
            explorer.preset = preset
            explorer._building = False
        return explorer
