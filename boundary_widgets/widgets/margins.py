"""MarginExplorer: band margins of many images, and on a click the slice through one image along its band."""

from __future__ import annotations

import html
from collections.abc import Sequence

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import traitlets

from ..core import directions
from ..core.analysis import BandMargins, band_direction, band_margins
from ..core.classifier import Classifier
from ..core.dct import Band
from ..core.extent import first_crossing
from ..core.plane import Plane
from ..core.slices import PlaneSlice, compute_slice
from .base import Explorer, PointSelection
from .settings import IndexPair, Point, Resolution, SettingError, bind, setting, weakly
from .views import SliceMapView
from .worker import Job


class MarginExplorer(Explorer):
    """Margins along DCT bands (one dot per image and band, the median as a line); a click on a dot shows
    the slice through that image spanned by its band-constrained DeepFool direction and a random
    direction of the same band, the boundary crossing marked; a click on that map inspects the point.

    ``result`` reuses a :func:`band_margins` table of these ``images``; otherwise it is computed in the
    worker thread with a progress bar. ``threaded=False`` runs everything inline (tests, scripts).
    ``MarginExplorer.from_state(clf, images, share, result=...)`` rebuilds a shared view.
    """

    resolution = setting(Resolution, 96, "cells per axis of the slice's map")
    selected = setting(IndexPair, None, "(image, band) of the slice on display, or None")
    click = setting(Point, None, "(alpha, beta) of the inspected point, or None")

    def __init__(
        self,
        clf: Classifier,
        images: object,
        *,
        bands: Sequence[Band] | None = None,
        result: BandMargins | None = None,
        resolution: int = 96,
        selected: tuple[int, int] | None = None,
        click: tuple[float, float] | None = None,
        threaded: bool = True,
    ) -> None:
        super().__init__(clf, threaded=threaded)
        self.images = clf.check_inputs(images, "images", batched=True, in_bounds=True).cpu()
        if self.images.shape[0] == 0:
            raise ValueError("`images` must hold at least one image; got an empty batch.")
        if result is not None and (
            not isinstance(result, BandMargins) or result.margins.shape[0] != self.images.shape[0]
        ):
            raise ValueError("`result` must be the BandMargins of these `images` (one row per image).")
        self.result: BandMargins | None = None
        self._set_settings(resolution=resolution, selected=selected, click=click)
        self._slice: PlaneSlice | None = None
        self._plane: Plane | None = None
        self._points = np.empty((0, 2), dtype=np.int64)  # (P, 2) rows (image, band) of the dots

        self.x_scale = bq.LinearScale(min=-0.5, max=0.5)
        self.y_scale = bq.LogScale()
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.dots = bq.Scatter(x=[], y=[], scales=scales, colors=["steelblue"], default_size=24, opacities=[0.6])
        self.chosen = bq.Scatter(
            x=[],
            y=[],
            scales=scales,
            colors=["#b00020"],
            opacities=[0.35],
            stroke="#b00020",
            stroke_width=3,
            default_size=160,
        )
        self.medians = bq.Lines(x=[], y=[], scales=scales, colors=["crimson"], stroke_width=2, marker="circle")
        self.band_axis = bq.Axis(scale=self.x_scale, label="DCT band (low → high)", tick_values=[], label_offset="32px")
        self.chart = bq.Figure(
            marks=[self.dots, self.medians, self.chosen],
            axes=[
                self.band_axis,
                bq.Axis(scale=self.y_scale, side="left", label="margin (L2)", label_offset="50px"),
            ],
            animation_duration=0,
            display_toolbar=False,  # its hover toolbar covered the top-right dots
            fig_margin={"top": 15, "bottom": 50, "left": 65, "right": 15},
            layout=widgets.Layout(width="295px", height="300px"),
        )
        self.chart.add_class("bw-margins-chart")
        self.dots.on_element_click(weakly(self, MarginExplorer._dot_clicked))
        self.chosen.on_element_click(lambda _mark, _event: None)
        self.map_view = SliceMapView(
            clf.class_names, on_click=weakly(self, lambda explorer, alpha, beta: explorer.select(alpha, beta)), size=260
        )
        self.map_view.figure.layout.visibility = "hidden"  # no empty -1…1 map before a dot is chosen
        self.map_hint = widgets.HTML("<i>click a dot to see the slice through that image along its band</i>")
        self.resolution_dropdown = widgets.Dropdown(
            options=[48, 96, 128, 256], description="map resolution", style={"description_width": "initial"}
        )
        bind(self, "resolution", self.resolution_dropdown)
        self.observe(lambda _change: self._reslice(), names=["resolution"])
        self.map_hint.layout.width = "264px"
        chart = widgets.VBox([self.chart, self.resolution_dropdown], layout={"width": "300px"})
        main = widgets.HBox(
            [chart, widgets.VBox([self.map_hint, self.map_view.ui], layout={"width": "264px"})],
            layout={"flex_flow": "row wrap"},
        )
        self._build_ui(None, main, "bw-margin-explorer")
        self._pending = (self.selected, self.click)

        if result is not None:
            self._show_margins(result)
            self._after_margins()
        else:
            self._submit(lambda job: self._compute(job, bands))

    def __repr__(self) -> str:
        return f"MarginExplorer(images={self.images.shape[0]}, result={self.result!r})"

    @traitlets.validate("selected")
    def _check_selected(self, proposal: dict) -> tuple[int, int] | None:
        selected = proposal["value"]
        if selected is not None and selected[0] >= self.images.shape[0]:
            raise SettingError(f"`selected` image must be in [0, {self.images.shape[0]}); got {selected[0]}.")
        return selected

    def _compute(self, job: Job, bands: Sequence[Band] | None) -> None:
        self._start("band margins…")
        progress = self._progress_callback(job, 0.0, 1.0, "band margins (bands × images)")
        self._show_margins(band_margins(self.clf, self.images, bands=bands, progress=progress, cancel=job.cancel))
        self._succeed(f"band margins of {self.images.shape[0]} image(s) along {len(self.result.bands)} band(s)")
        self._after_margins(job)

    def _after_margins(self, job: Job | None = None) -> None:
        selected, click = self._pending
        self._pending = (None, None)
        if selected is not None:
            image, band = selected
            self._check_selection(image, band)
            self.selected = (image, band)
            self._pending_click = click
            if job is None:
                self._submit(lambda j: self._draw_slice(j, image, band))
            else:
                self._draw_slice(job, image, band)

    def _show_margins(self, result: BandMargins) -> None:
        self.result = result
        n, count = result.margins.shape
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, n)
        rows, cols = np.nonzero(result.converged)
        self._points = np.stack([rows, cols], axis=1)
        self._jitter = jitter
        finite = np.isfinite(result.medians)
        with self.dots.hold_sync(), self.medians.hold_sync():
            self.x_scale.min, self.x_scale.max = -0.5, count - 0.5
            self.dots.x = cols + jitter[rows]
            self.dots.y = result.margins[rows, cols]
            self.medians.x = np.arange(count)[finite]
            self.medians.y = result.medians[finite]
            self.band_axis.tick_values = np.arange(count)
            self.band_axis.tick_format = ""
        names = result.band_names
        self.band_axis.label = f"DCT band (0 = {names[0]} … {len(names) - 1} = {names[-1]})"
        self.progress.value = 1.0

    def _dot_clicked(self, _mark: bq.Scatter, event: dict) -> None:
        index = int(event.get("data", {}).get("index", -1))
        if 0 <= index < len(self._points):
            image, band = (int(v) for v in self._points[index])
            self.show_slice(image, band)

    def _check_selection(self, image: int, band: int) -> None:
        if self.result is None:
            raise ValueError("the band margins are not computed yet.")
        if not (0 <= image < self.images.shape[0] and 0 <= band < len(self.result.bands)):
            raise ValueError(
                f"`image` and `band` must index the table {self.result.margins.shape}; got {(image, band)}."
            )

    def show_slice(self, image: int, band: int) -> Job:
        """Draw the slice through ``images[image]`` along band ``band`` (in the worker thread)."""
        self._check_selection(image, band)
        self.selected = (image, band)
        self.click = None
        with self.chosen.hold_sync():
            self.chosen.x = [band + self._jitter[image]]
            self.chosen.y = [float(self.result.margins[image, band])]
        self.map_hint.value = (
            f"<i>computing the slice of image {image} along {html.escape(self.result.band_names[band])}…</i>"
        )
        return self._submit(lambda job: self._draw_slice(job, image, band))

    def _reslice(self) -> None:
        if self.selected is not None and self.result is not None:
            self.show_slice(*self.selected)

    _pending_click: tuple[float, float] | None = None

    @property
    def slice(self) -> PlaneSlice | None:
        """The slice on display (None before a dot is chosen)."""
        return self._slice

    @property
    def plane(self) -> Plane | None:
        return self._plane

    def _draw_slice(self, job: Job, image: int, band: int) -> None:
        self._start(f"slice of image {image} along band {self.result.band_names[band]}…")
        with self.chosen.hold_sync():
            self.chosen.x = [band + self._jitter[image]]
            self.chosen.y = [float(self.result.margins[image, band])]
        x = self.images[image]
        chosen = self.result.bands[band]
        toward = band_direction(self.clf, self.result, x, band)
        job.check()
        across = directions.make("random", self.clf, x, seed=image, subspace=chosen)
        plane = Plane.through(x, toward, across)
        margin = float(self.result.margins[image, band])
        sl = compute_slice(
            self.clf, plane, extent=max(1.5 * margin, 1e-3), resolution=self.resolution, cancel=job.cancel
        )
        job.check()
        crossing = first_crossing(self.clf, x, plane.u, 1.5 * max(margin, 1e-3), samples=8, rounds=4)
        anchors = {"origin": (0.0, 0.0)}
        if crossing is not None:
            anchors["boundary (u)"] = (crossing, 0.0)
        self._slice, self._plane = sl, plane
        self.map_view.figure.layout.visibility = "visible"
        self.map_view.show(
            sl,
            shading="labels",
            boundaries=True,
            anchors=anchors,
            title=f"image {image}, band {self.result.band_names[band]}",
            bounds=self.clf.bounds,
            plane=plane,
        )
        self.map_hint.value = (
            f"image {image}, band {html.escape(self.result.band_names[band])}: margin {margin:.3g}; "
            "u = band DeepFool direction, v = random direction in the band"
        )
        self._succeed(f"slice of image {image} along band {self.result.band_names[band]}: margin {margin:.3g}")
        if self._pending_click is not None:
            click, self._pending_click = self._pending_click, None
            self.select(*click)

    def select(self, alpha: float, beta: float) -> PointSelection | None:
        """Inspect the point (alpha, beta) of the slice on display: picture and top-k probabilities."""
        if self._plane is None:
            return None
        self.click = (alpha, beta)
        alpha, beta = self.click
        self.map_view.mark_click((alpha, beta))
        return self.inspect(self._plane.point(alpha, beta), alpha, beta, f"α = {alpha:.3f}, β = {beta:.3f}")

    def _show_error(self, message: str) -> None:
        self.map_view.show_error(message)


__all__ = [
    "MarginExplorer",
]
