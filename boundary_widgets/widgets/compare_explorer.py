"""CompareExplorer: one plane through an image, classified by two models side by side, and where they differ."""

from __future__ import annotations

import html
import time
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from ..core import Classifier, Plane, PlaneSlice, compute_slice, directions
from ..core.dataset import Dataset
from ..core.directions import Bool, Choice, Float
from ..core.pipeline import DirectionCache, resolve_plane
from ..core.slices import SLICE_METHODS, normalize_extent
from .base import Explorer
from .controls import DirectionPairTraits, DirectionPicker, piecewise_linear
from .settings import Point, Resolution, bind, setting, weakly
from .slice_explorer import default_method
from .views import PointView, SliceMapView, encode_png, show_png
from .worker import Job

__all__ = ["CompareExplorer", "difference_mask", "proven_difference_mask"]

_MODELS = ("a", "b")
_SAME = np.array([235, 235, 235], dtype=np.uint8)
_MAP_PIXELS = 270  # two maps beside the controls' 265 px fill JupyterLab's 845-px output column
_DIFFERENCE_PIXELS = 210
_COMPACT_TOP_K = 5
_DIFFERENT = np.array([176, 0, 32], dtype=np.uint8)
_PROVEN_DIFFERENT = np.array([90, 0, 16], dtype=np.uint8)  # certified maps: both models proven, labels differ


def _compact(view: PointView) -> None:
    """Lay ``view`` out as the picture and the bars side by side over the caption (about 210 px tall)."""
    view.picture.layout.width = "72px"
    view.chart.layout.width = "195px"
    view.ui = widgets.VBox(
        [widgets.HBox([view.picture, view.chart], layout={"align_items": "flex-start"}), view.caption],
        layout={"width": f"{_MAP_PIXELS}px"},
    )


def difference_mask(slice_a: PlaneSlice, slice_b: PlaneSlice) -> np.ndarray:
    """``(Rb, Ra)`` bool: the cells where the two slices' labels differ (same plane, extent and resolution)."""
    if slice_a.labels.shape != slice_b.labels.shape or slice_a.extent != slice_b.extent:
        raise ValueError("`slice_b` must cover the same grid as `slice_a` (extent and resolution).")
    if slice_a.plane.fingerprint() != slice_b.plane.fingerprint():
        raise ValueError("`slice_b` must lie on the same plane as `slice_a`.")
    return slice_a.labels != slice_b.labels


def proven_difference_mask(slice_a: PlaneSlice, slice_b: PlaneSlice) -> np.ndarray:
    """``(Rb, Ra)`` bool: the cells where the two models *provably* differ, two certified slices of one grid.

    A cell counts when each certificate proves the whole cell single-label and the two proven labels
    differ; a cell where either model is not proven on all of it is left out, so the mask is a
    subset of :func:`difference_mask`.
    """
    differ = difference_mask(slice_a, slice_b)
    if slice_a.certificate is None or slice_b.certificate is None:
        raise ValueError("`slice_a` and `slice_b` must be certified slices (compute_slice(..., method='certified')).")
    a, b = slice_a.certificate, slice_b.certificate
    whole = (a.proven >= 1.0) & (b.proven >= 1.0) & (a.proven_label >= 0) & (b.proven_label >= 0)
    return differ & whole & (a.proven_label != b.proven_label)


class CompareExplorer(Explorer, DirectionPairTraits):
    """Two classifiers on the same plane through ``x``: two maps, a difference map and linked clicks.

    ``CompareExplorer(clf_a, clf_b, x)`` (e.g. a standard and an adversarially trained model)
    builds the plane from directions computed on model ``directions_from`` (``"a"`` by default),
    classifies it with both models, and shows where their labels differ. A click on any map
    inspects that point under both models. The models must share the input space (shape and
    bounds) and the number of classes.

    ``extent=None`` (the default) takes :func:`~boundary_widgets.core.extent.default_extent` of
    the model the directions come from. Attributes: ``slices`` (``{"a": PlaneSlice, "b": PlaneSlice}``),
    ``difference`` (the mask of :func:`difference_mask`), ``plane``, ``selection`` (model a's
    answer at the inspected point) and ``selection_b``.
    """

    directions_from = setting(Choice, "a", "the model whose directions span the plane", choices=_MODELS)
    extent = setting(Float, None, "half-width of the maps in L2 units (None: automatic)", minimum=1e-6, maximum=1e9)
    resolution = setting(Resolution, 96, "cells per axis of each map", minimum=8, maximum=512)
    method = setting(
        Choice, default_method(), "how each map is classified (certified: with a proof)", choices=tuple(SLICE_METHODS)
    )
    boundaries = setting(Bool, True, "draw the decision boundaries")
    click = setting(Point, None, "(alpha, beta) of the inspected point, or None")

    _COMPUTE = ("u", "v", "directions_from", "extent", "resolution", "method")

    def __init__(
        self,
        clf_a: Classifier,
        clf_b: Classifier,
        x: object,
        *,
        dataset: Dataset | None = None,
        u: str = "adversarial",
        v: str = "random",
        u_params: dict[str, Any] | None = None,
        v_params: dict[str, Any] | None = None,
        directions_from: str = "a",
        extent: float | None = None,
        resolution: int = 96,
        method: str | None = None,
        boundaries: bool = True,
        click: tuple[float, float] | None = None,
        names: tuple[str, str] = ("model a", "model b"),
        threaded: bool = True,
    ) -> None:
        super().__init__(clf_a, threaded=threaded)
        if not isinstance(clf_b, Classifier):
            raise TypeError(f"`clf_b` must be a boundary_widgets.Classifier; got {type(clf_b).__name__}.")
        if (clf_b.input_shape, clf_b.bounds, clf_b.num_classes) != (clf_a.input_shape, clf_a.bounds, clf_a.num_classes):
            raise ValueError(
                "`clf_b` must share `clf_a`'s input shape, bounds and number of classes; got "
                f"{clf_b.input_shape}, {clf_b.bounds}, {clf_b.num_classes} against "
                f"{clf_a.input_shape}, {clf_a.bounds}, {clf_a.num_classes}."
            )
        if dataset is not None and not isinstance(dataset, Dataset):
            raise TypeError(f"`dataset` must be a boundary_widgets.Dataset or None; got {type(dataset).__name__}.")
        if not (isinstance(names, tuple | list) and len(names) == 2 and all(isinstance(n, str) for n in names)):
            raise TypeError(f"`names` must be two strings; got {names!r:.60}.")
        kinds = directions.available()
        for name, kind in (("u", u), ("v", v)):
            if kind not in kinds:
                raise ValueError(f"`{name}` must be a direction kind, one of {kinds}; got {kind!r:.60}.")
        self.models = {"a": clf_a, "b": clf_b}
        self.names = dict(zip(_MODELS, names, strict=True))
        self.dataset = dataset
        self.x = clf_a.check_inputs(x, "x", batched=False, in_bounds=True)[0].cpu()
        self.slices: dict[str, PlaneSlice] = {}
        self.difference: np.ndarray | None = None
        self.proven_difference: np.ndarray | None = None
        self._plane: Plane | None = None
        self.selection_b = None
        self.direction_cache = DirectionCache()
        images = None if dataset is None else dataset.images
        common = {
            "class_names": clf_a.class_names,
            "images": images,
            "bounds": clf_a.bounds,
            "piecewise_linear": piecewise_linear(clf_a) or piecewise_linear(clf_b),
        }
        self.u_picker = DirectionPicker("u", kind=u, on_change=weakly(self, lambda e: e._picked("u")), **common)
        self.v_picker = DirectionPicker(
            "v", kind=v, on_change=weakly(self, lambda e: e._picked("v")), seed_offset=1, **common
        )
        self._set_settings(
            u=self._direction_argument("u", u, u_params),
            v=self._direction_argument("v", v, v_params),
            directions_from=directions_from,
            extent=extent,
            resolution=resolution,
            method=default_method() if method is None else method,
            boundaries=boundaries,
            click=click,
        )
        self._sync_picker("u")
        self._sync_picker("v")
        self._build_controls()
        self.observe(self._settings_changed, names=list(self._COMPUTE))
        self.observe(lambda _change: self._draw(), names=["boundaries"])
        self.refresh()

    # --- controls -----------------------------------------------------------------------------
    def _build_controls(self) -> None:
        """Controls in tabs beside both maps; below them the difference map and both previews.

        The two rows fit JupyterLab's 845-px output column at 1280×800, so a click on a map
        updates previews that are in view.
        """
        self.point_view = PointView(self.models["a"].class_names, k=_COMPACT_TOP_K)
        self.point_view_b = PointView(self.models["b"].class_names, k=_COMPACT_TOP_K)
        for view in (self.point_view, self.point_view_b):
            _compact(view)
        self.from_dropdown = widgets.Dropdown(
            options=[(self.names[m], m) for m in _MODELS],
            value=self.directions_from,
            description="directions of",
            style={"description_width": "initial"},
            layout={"width": "226px"},
        )
        bind(self, "directions_from", self.from_dropdown)
        extent = self.settings()["extent"].spec
        self.extent_text = widgets.BoundedFloatText(
            value=0.0,
            min=0.0,
            max=extent.maximum,
            description="extent (0 = auto)",
            style={"description_width": "initial"},
            layout={"width": "226px"},
        )
        bind(
            self,
            "extent",
            self.extent_text,
            to_control=lambda value: 0.0 if value is None else value,
            to_owner=lambda value: value if value > 0 else None,
        )
        resolution = self.settings()["resolution"].spec
        self.resolution_dropdown = widgets.Dropdown(
            options=[r for r in (32, 64, 96, 128, 256) if resolution.minimum <= r <= resolution.maximum],
            description="resolution",
        )
        bind(self, "resolution", self.resolution_dropdown)
        self.method_dropdown = widgets.Dropdown(
            options=list(self.settings()["method"].spec.choices),
            description="evaluation",
            tooltip="adaptive or dense grid, or certified (with a proof)",
        )
        bind(self, "method", self.method_dropdown)
        self.boundaries_checkbox = widgets.Checkbox(description="boundary lines", indent=False)
        bind(self, "boundaries", self.boundaries_checkbox)
        tabs = widgets.Tab(
            children=[
                widgets.VBox([self.u_picker.ui, self.v_picker.ui, self.from_dropdown]),
                widgets.VBox(
                    [self.extent_text, self.resolution_dropdown, self.method_dropdown, self.boundaries_checkbox]
                ),
            ],
            layout={"width": "265px"},
        )
        tabs.set_title(0, "plane")
        tabs.set_title(1, "view")
        self.controls_tabs = tabs
        select = weakly(self, lambda explorer, alpha, beta: explorer.select(alpha, beta))
        self.map_views = {
            m: SliceMapView(self.models[m].class_names, on_click=select, size=_MAP_PIXELS) for m in _MODELS
        }
        self.diff_x = bq.LinearScale(min=-1.0, max=1.0)
        self.diff_y = bq.LinearScale(min=-1.0, max=1.0)
        self.diff_image = bq.Image(
            image=widgets.Image(format="png"), scales={"x": self.diff_x, "y": self.diff_y}, x=[-1, 1], y=[-1, 1]
        )
        self.diff_image.on_element_click(
            lambda _mark, event: select(float(event["data"]["click_x"]), float(event["data"]["click_y"]))
        )
        self.diff_cross = bq.Scatter(
            x=[], y=[], scales={"x": self.diff_x, "y": self.diff_y}, marker="cross", colors=["black"], default_size=90
        )
        self.diff_figure = bq.Figure(
            marks=[self.diff_image, self.diff_cross],
            axes=[
                bq.Axis(scale=self.diff_x, label="α along u (L2)", num_ticks=5, tick_format=".1f"),
                bq.Axis(scale=self.diff_y, side="left", label="β along v (L2)", num_ticks=5, tick_format=".1f"),
            ],
            title="where the labels differ",
            animation_duration=0,
            display_toolbar=False,
            fig_margin={"top": 30, "bottom": 42, "left": 52, "right": 8},
            title_style={"font-size": "12px"},
            layout=widgets.Layout(width=f"{_DIFFERENCE_PIXELS}px", height=f"{_DIFFERENCE_PIXELS}px", flex="0 0 auto"),
        )
        self.diff_figure.add_class("bw-difference-map")
        self.diff_text = widgets.HTML(layout={"width": "255px"})
        self.diff_text.add_class("bw-difference")
        column = widgets.Layout(width=f"{_MAP_PIXELS + 4}px")
        maps = widgets.HBox([self.map_views["a"].ui, self.map_views["b"].ui])
        below = widgets.HBox(
            [
                widgets.VBox([self.diff_figure, self.diff_text], layout={"width": "265px"}),
                widgets.VBox([self.point_view.ui], layout=column),
                widgets.VBox([self.point_view_b.ui], layout=column),
            ]
        )
        main = widgets.VBox([widgets.HBox([tabs, maps], layout={"align_items": "flex-start"}), below])
        self._build_ui(None, main, "bw-compare", preview=False)

    def _map_views(self) -> list[SliceMapView]:
        return [self.map_views[m] for m in _MODELS]

    def _picked(self, which: str) -> None:
        picker = self.u_picker if which == "u" else self.v_picker
        try:
            setattr(self, which, picker.value)
        except (TypeError, ValueError) as error:
            self._refuse(str(error))

    def _settings_changed(self, change: dict) -> None:
        if change["name"] in ("u", "v"):
            self._sync_picker(change["name"])
        self._request()

    @property
    def plane(self) -> Plane | None:
        """The plane both maps show (None until the first computation finishes)."""
        return self._plane

    @property
    def slice(self) -> PlaneSlice | None:
        """Model a's slice (``slices`` holds both)."""
        return self.slices.get("a")

    # --- work -----------------------------------------------------------------------------------
    def refresh(self) -> Job:
        """Recompute the plane and both maps with the current settings (cancels stale work)."""
        self._requested = self._work_settings()
        images = None if self.dataset is None else self.dataset.images
        settings = {which: (value["kind"], self._make_params(value)) for which, value in (("u", self.u), ("v", self.v))}
        settings |= {"from": self.models[self.directions_from], "extent": self.extent, "resolution": self.resolution}
        settings["method"] = self.method
        settings["images"] = None if images is None else images[self.dataset.test_indices]
        return self._submit(lambda job: self._work(job, settings))

    def _work(self, job: Job, settings: dict[str, Any]) -> None:
        started = self._start("computing the directions…")
        resolved = resolve_plane(
            settings["from"],
            self.x,
            settings["u"],
            settings["v"],
            extent=settings["extent"],
            images=settings["images"],
            cache=self.direction_cache,
            progress=self._progress_callback(job, 0.0, 0.2, "plane"),
            cancel=job.cancel,
        )
        plane, box = resolved.plane, normalize_extent(resolved.extent)
        self.u_picker.show_found(resolved.u)
        self.v_picker.show_found(resolved.v)
        slices = {}
        for step, model in enumerate(_MODELS):
            self._show_status(f"classifying the plane with {self.names[model]}…")
            slices[model] = compute_slice(
                self.models[model],
                plane,
                extent=box,
                resolution=settings["resolution"],
                method=settings["method"],
                progress=self._progress_callback(job, 0.2 + 0.4 * step, 0.6 + 0.4 * step, self.names[model]),
                cancel=job.cancel,
            )
        job.check()
        self._plane, self.slices = plane, slices
        self.difference = difference_mask(slices["a"], slices["b"])
        certified = all(sl.certificate is not None for sl in slices.values())
        self.proven_difference = proven_difference_mask(slices["a"], slices["b"]) if certified else None
        self._draw()
        if self.click is not None:
            self.select(*self.click)
        elapsed = time.perf_counter() - started
        self._succeed(f"two {settings['resolution']}² {settings['method']} slices in {elapsed:.2f} s")

    def _draw(self) -> None:
        if not self.slices:
            return
        for model in _MODELS:
            self.map_views[model].show(
                self.slices[model],
                shading="labels",
                boundaries=self.boundaries,
                anchors={"origin": (0.0, 0.0)},
                title=self.names[model],
                bounds=self.models[model].bounds,
                plane=self.plane,
            )
        sl = self.slices["a"]
        pixels = np.where(self.difference[..., None], _DIFFERENT, _SAME)
        if self.proven_difference is not None:
            pixels[self.proven_difference] = _PROVEN_DIFFERENT
        pixels = pixels[::-1]
        (a0, a1), (b0, b1) = sl.extent
        with self.diff_image.hold_sync():
            show_png(self.diff_image, encode_png(np.ascontiguousarray(pixels)))
            self.diff_image.x, self.diff_image.y = [a0, a1], [b0, b1]
            self.diff_x.min, self.diff_x.max = float(a0), float(a1)
            self.diff_y.min, self.diff_y.max = float(b0), float(b1)
        share = float(self.difference.mean())
        proof = ""
        if self.proven_difference is not None:
            areas = " and ".join(f"{self.slices[m].certificate.proven_area:.0%}" for m in _MODELS)
            proof = (
                f"; <b>{float(self.proven_difference.mean()):.1%}</b> provably (dark red: both models proven on the whole cell; "
                f"proofs cover {areas} of the two maps)"
            )
        self.diff_text.value = (
            f'<div style="line-height:1.3">labels differ on <b>{share:.1%}</b> of the map (red){proof}; the origin '
            f"is {self._name(sl.label_at(0, 0))} for {html.escape(self.names['a'])} and "
            f"{self._name(self.slices['b'].label_at(0, 0))} for {html.escape(self.names['b'])}</div>"
        )

    def _name(self, label: int) -> str:
        return f"<b>{html.escape(self.models['a'].class_names[label])}</b>"

    # --- inspection -------------------------------------------------------------------------------
    def select(self, alpha: float, beta: float) -> None:
        """Inspect the point ``(alpha, beta)`` under both models; every map marks it."""
        if self._plane is None:
            return
        self.click = (alpha, beta)
        alpha, beta = self.click
        image = self._plane.point(alpha, beta)
        for view in self.map_views.values():
            view.mark_click((alpha, beta))
        with self.diff_cross.hold_sync():
            self.diff_cross.x, self.diff_cross.y = [alpha], [beta]
        caption = f"({alpha:.3f}, {beta:.3f}) · {html.escape(self.names['a'])}"
        self.inspect(image, alpha, beta, caption)
        clf_b = self.models["b"]
        probabilities = clf_b.probabilities(image).double().cpu().numpy()
        label = int(probabilities.argmax())
        self.selection_b = (label, probabilities)
        name = html.escape(clf_b.class_names[label])
        self.point_view_b.show(
            image,
            probabilities,
            clf_b.bounds,
            f"{html.escape(self.names['b'])}: <b>{name}</b> ({probabilities[label]:.1%})",
        )

    def _show_error(self, message: str) -> None:
        for view in self.map_views.values():
            view.show_error(message)

    @classmethod
    def from_state(cls, clf: Classifier, x: object, state: object, **options: Any) -> Explorer:
        """As :meth:`Explorer.from_state`, with model b given as ``clf_b=`` among the options."""
        if "clf_b" not in options:
            raise TypeError("`clf_b` must be given to rebuild a CompareExplorer (the second model).")
        return super().from_state(clf, x, state, **options)

    @classmethod
    def _from_checked_state(cls, clf: Classifier, x: object, settings: dict[str, Any], options: dict) -> Explorer:
        options = dict(options)
        clf_b = options.pop("clf_b")
        return cls(clf, clf_b, x, **cls.constructor_arguments(settings), **options)
