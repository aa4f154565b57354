"""PathExplorer: a path between two same-class inputs, its class profile and its plane."""

from __future__ import annotations

import html
import time
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from ..core import Classifier, Plane, PlaneSlice, compute_slice
from ..core.directions import Choice, Float, Int
from ..core.paths import ConnectingPath, LineProfile, find_path, line_profile
from ..core.slices import SLICE_METHODS
from ..render import rgb_table, shorten
from .base import Explorer, PointSelection
from .settings import Resolution, bind, setting, weakly
from .slice_explorer import default_method
from .views import SliceMapView, encode_png, show_png
from .worker import Job

_STRIP_SAMPLES = 256
_MAP_MARGIN = 0.3  # share of the path's bounding box added on each side of the map
_STRIPS = {"path": (1.12, 1.2), "straight line": (1.03, 1.11)}  # where the class strips sit above p = 1


def path_labels_on_grid(path: ConnectingPath, fractions: np.ndarray) -> np.ndarray:
    """Labels of the checked point nearest to each fraction of the path's length (its class strip)."""
    where = fractions * path.length
    index = np.clip(np.searchsorted(path.positions, where), 1, len(path.positions) - 1)
    nearer_left = where - path.positions[index - 1] < path.positions[index] - where
    return path.labels[np.where(nearer_left, index - 1, index)]


def path_extent(coordinates: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square-ish box around the path's (alpha, beta) anchors with a margin on each side."""
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    span = max(float((high - low).max()), 1e-3)
    pad = _MAP_MARGIN * span
    centre = (low + high) / 2
    half = span / 2 + pad
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


class PathExplorer(Explorer):
    """Join ``x_a`` and ``x_b`` by a path inside their class and compare it with the straight line.

    Shows the class strips of the path and of the straight line (labelled, above the probability
    of the class of ``x_a`` along each), a scrubber along the path with the image there and its
    top-k probabilities, and the path (its anchors) and the straight segment on the plane through
    ``x_a``, ``x_b`` and the anchor farthest from the line, over that plane's classification
    regions. Work runs in a worker thread (``threaded=False``: inline); :meth:`wait` blocks until
    it is done. ``PathExplorer.from_state(clf, (x_a, x_b), share)`` rebuilds a shared view.

    Attributes: ``path`` (:class:`ConnectingPath` or None), ``line`` (:class:`LineProfile`),
    ``slice`` (:class:`PlaneSlice` of the path's plane), ``selection``, ``error``.
    """

    max_depth = setting(Int, 8, "how many times a segment may be split to stay in the class", maximum=16)
    samples_per_segment = setting(Int, 32, "points checked on each segment", minimum=2, maximum=1024)
    resolution = setting(Resolution, 96, "cells per axis of the map of the path's plane")
    method = setting(Choice, default_method(), "how the plane is classified", choices=tuple(SLICE_METHODS))
    position = setting(Float, 0.5, "the scrubber: a fraction of the path's length", minimum=0.0, maximum=1.0)

    _COMPUTE = ("max_depth", "samples_per_segment", "resolution", "method")

    def __init__(
        self,
        clf: Classifier,
        x_a: object,
        x_b: object,
        *,
        max_depth: int = 8,
        samples_per_segment: int = 32,
        resolution: int = 96,
        method: str | None = None,
        position: float = 0.5,
        threaded: bool = True,
    ) -> None:
        super().__init__(clf, threaded=threaded)
        self._set_settings(
            max_depth=max_depth,
            samples_per_segment=samples_per_segment,
            resolution=resolution,
            method=default_method() if method is None else method,
            position=position,
        )
        self.path: ConnectingPath | None = None
        self.line: LineProfile | None = None
        self._slice: PlaneSlice | None = None
        self._plane: Plane | None = None
        settings = self.settings()
        style = {"description_width": "initial"}
        depth, samples = settings["max_depth"].spec, settings["samples_per_segment"].spec
        self.depth_input = widgets.BoundedIntText(
            min=depth.minimum,
            max=depth.maximum,
            description="max depth",
            style=style,
            continuous_update=False,
            layout={"width": "150px"},
        )
        self.samples_input = widgets.BoundedIntText(
            min=samples.minimum,
            max=samples.maximum,
            description="samples per segment",
            style=style,
            continuous_update=False,
            layout={"width": "210px"},
        )
        self.resolution_dropdown = widgets.Dropdown(
            options=[32, 64, 96, 128, 256], description="map resolution", style=style, layout={"width": "180px"}
        )
        position = settings["position"].spec
        self.scrubber = widgets.FloatSlider(
            min=position.minimum,
            max=position.maximum,
            step=0.005,
            description="along path",
            readout_format=".1%",
            continuous_update=False,
            layout={"width": "320px"},
        )
        for name, control in (
            ("max_depth", self.depth_input),
            ("samples_per_segment", self.samples_input),
            ("position", self.scrubber),
            ("resolution", self.resolution_dropdown),
        ):
            bind(self, name, control)

        self._build_profile()
        self.map_view = SliceMapView(
            clf.class_names,
            on_click=weakly(self, lambda explorer, alpha, beta: explorer.select_plane_point(alpha, beta)),
            overlays=[self._segment_mark, self._path_mark],
            size=260,
        )
        self.map_view.figure.add_class("bw-path-map")
        self.observe(self._request, names=list(self._COMPUTE))
        self.observe(lambda change: self.scrub(change["new"]), names=["position"])

        controls = widgets.HBox([self.depth_input, self.samples_input, self.resolution_dropdown])
        controls.layout.flex_flow = "row wrap"
        profile = widgets.VBox(
            [self.profile_figure, self.scrubber, self.profile_caption, controls], layout={"width": "330px"}
        )
        main = widgets.HBox([profile, self.map_view.ui], layout=widgets.Layout(flex_flow="row wrap"))
        self._build_ui(None, main, "bw-path-explorer")
        self.set_endpoints(x_a, x_b)

    def _build_profile(self) -> None:
        """Class strips (path, straight line; labelled) above the probability of the class of x_a along both."""
        self.t_scale = bq.LinearScale(min=0.0, max=1.0)
        self.p_scale = bq.LinearScale(min=0.0, max=1.22)
        scales = {"x": self.t_scale, "y": self.p_scale}
        (p0, p1), (l0, l1) = _STRIPS["path"], _STRIPS["straight line"]
        self.path_strip = bq.Image(image=widgets.Image(format="png"), scales=scales, x=[0.0, 1.0], y=[p0, p1])
        self.line_strip = bq.Image(image=widgets.Image(format="png"), scales=scales, x=[0.0, 1.0], y=[l0, l1])
        self.strip_labels = bq.Label(
            x=[0.01, 0.01],
            y=[(p0 + p1) / 2, (l0 + l1) / 2],
            text=["path", "straight line"],
            scales=scales,
            default_size=11,
            colors=["black"],
            align="start",
            y_offset=4,
        )
        # Two marks: the path's checked points and the line's samples do not share abscissas.
        self.path_probability = bq.Lines(x=[], y=[], scales=scales, colors=["black"], stroke_width=2)
        self.line_probability = bq.Lines(x=[], y=[], scales=scales, colors=["#888888"], line_style="dashed")
        self.position_line = bq.Lines(x=[0.5, 0.5], y=[0.0, 1.2], scales=scales, colors=["#b00020"])
        self.profile_figure = bq.Figure(
            marks=[
                self.path_strip,
                self.line_strip,
                self.strip_labels,
                self.path_probability,
                self.line_probability,
                self.position_line,
            ],
            axes=[
                bq.Axis(
                    scale=self.t_scale,
                    label="fraction of the way from x_a to x_b",
                    tick_format=".0%",
                    tick_values=[0.0, 0.25, 0.5, 0.75, 1.0],  # d3's ten ticks run together at 320 px
                ),
                bq.Axis(
                    scale=self.p_scale,
                    side="left",
                    label="p(class of x_a)",
                    tick_format=".1f",
                    tick_values=[0.0, 0.25, 0.5, 0.75, 1.0],
                    label_offset="40px",
                ),
            ],
            animation_duration=0,
            display_toolbar=False,
            fig_margin={"top": 10, "bottom": 45, "left": 55, "right": 10},
            layout=widgets.Layout(width="320px", height="240px"),
        )
        self.profile_figure.add_class("bw-path-profile")
        self.profile_caption = widgets.HTML()

    @staticmethod
    def _path_mark(scales: dict) -> bq.Lines:
        return bq.Lines(x=[], y=[], scales=scales, colors=["white"], stroke_width=2.5, marker="circle", marker_size=24)

    @staticmethod
    def _segment_mark(scales: dict) -> bq.Lines:
        return bq.Lines(x=[], y=[], scales=scales, colors=["black"], stroke_width=1.5, line_style="dashed")

    @property
    def segment_mark(self) -> bq.Lines:
        """The straight segment from x_a to x_b on the map."""
        return self.map_view.overlays[0]

    @property
    def path_mark(self) -> bq.Lines:
        """The path (its anchors) on the map."""
        return self.map_view.overlays[1]

    def __repr__(self) -> str:
        return f"PathExplorer(path={self.path!r})"

    @property
    def slice(self) -> PlaneSlice | None:
        return self._slice

    @property
    def plane(self) -> Plane | None:
        return self._plane

    @classmethod
    def _from_checked_state(cls, clf: Classifier, x: object, settings: dict[str, Any], options: dict) -> Explorer:
        if not (isinstance(x, tuple | list) and len(x) == 2):
            raise TypeError("`x` must be the pair (x_a, x_b) for a PathExplorer.")
        return cls(clf, x[0], x[1], **settings, **options)

    def set_endpoints(self, x_a: object, x_b: object) -> Job:
        """New endpoints: recompute the line profile, the path and its plane."""
        self.x_a = self.clf.check_inputs(x_a, "x_a", batched=False, in_bounds=True)[0].cpu()
        self.x_b = self.clf.check_inputs(x_b, "x_b", batched=False, in_bounds=True)[0].cpu()
        return self.refresh()

    def refresh(self) -> Job:
        """Recompute the line profile, the path and its plane (cancelling work under way)."""
        self._requested = self._work_settings()
        settings = {**self.state, "x_a": self.x_a, "x_b": self.x_b}
        return self._submit(lambda job: self._work(job, settings))

    # --- the work ------------------------------------------------------------------------------
    def _work(self, job: Job, settings: dict[str, Any]) -> None:
        started = self._start("classifying the straight line…")
        line = line_profile(self.clf, settings["x_a"], settings["x_b"])
        job.check()
        self.line, self.path = line, None
        self._draw_profile()
        self.progress.value = 0.2
        self._show_status("finding a path inside the class…")
        path = find_path(
            self.clf,
            settings["x_a"],
            settings["x_b"],
            max_depth=settings["max_depth"],
            samples_per_segment=settings["samples_per_segment"],
        )
        job.check()
        self.path = path
        self._draw_profile()
        self.progress.value = 0.5
        self._show_status("classifying the path's plane…")
        plane = path.plane()
        coordinates = path.plane_coordinates(plane)
        extent = path_extent(coordinates)

        def show_frame(sl: PlaneSlice) -> None:
            job.check()
            self._slice, self._plane = sl, plane
            anchors = {"x_a": tuple(coordinates[0]), "x_b": tuple(coordinates[-1])}
            self.map_view.show(
                sl,
                shading="labels",
                boundaries=True,
                anchors=anchors,
                title="the path's plane",
                bounds=self.clf.bounds,
                plane=plane,
            )
            with self.path_mark.hold_sync(), self.segment_mark.hold_sync():
                self.path_mark.x, self.path_mark.y = coordinates[:, 0], coordinates[:, 1]
                self.segment_mark.x = [coordinates[0, 0], coordinates[-1, 0]]
                self.segment_mark.y = [coordinates[0, 1], coordinates[-1, 1]]
            self.progress.value = min(0.95, self.progress.value + 0.15)
            self.scrub(self.position)

        compute_slice(
            self.clf,
            plane,
            extent=extent,
            resolution=settings["resolution"],
            method=settings["method"],
            on_frame=show_frame,
            cancel=job.cancel,
        )
        self.timings = {"total": time.perf_counter() - started}
        verdict = "path found" if path.valid else f"no path inside the class ({path.reason})"
        self._succeed(
            f"{verdict}: {path.n_anchors} anchor(s), length {path.length:.3f} (straight line {line.length:.3f}), "
            f"stays in class {shorten(path.class_name)}; {path.n_evaluated} model evaluations, "
            f"{self.timings['total']:.2f} s"
        )

    def _show_error(self, message: str) -> None:
        self.map_view.show_error(message)

    def _draw_profile(self) -> None:
        line, path = self.line, self.path
        table = rgb_table(len(self.clf.class_names))
        label = int(line.labels[0])
        fractions = np.linspace(0.0, 1.0, _STRIP_SAMPLES)
        line_strip = line.labels[np.round(fractions * (line.t.size - 1)).astype(int)]
        show_png(self.line_strip, encode_png(table[line_strip][None]))
        if path is None:
            show_png(self.path_strip, encode_png(np.full((1, _STRIP_SAMPLES, 3), 255, np.uint8)))
            path_x, path_y = np.empty(0), np.empty(0)
        else:
            show_png(self.path_strip, encode_png(table[path_labels_on_grid(path, fractions)][None]))
            path_x, path_y = path.positions / max(path.length, 1e-12), path.confidences
        with self.path_probability.hold_sync(), self.line_probability.hold_sync():
            self.path_probability.x, self.path_probability.y = path_x, np.asarray(path_y, dtype=float)
            self.line_probability.x, self.line_probability.y = line.t, line.probabilities[:, label].astype(float)
        names = self.clf.class_names
        crossed = " → ".join(html.escape(shorten(names[k])) for k in line.classes_crossed)
        text = (
            "solid: path, dashed: straight line<br>"
            f"straight line: {crossed}, {line.n_changes} class change(s), length {line.length:.3f}"
        )
        if path is not None:
            verdict = "stays in" if path.valid else f"does not stay in ({html.escape(path.reason or '')})"
            text += (
                f"<br>path: {verdict} class {html.escape(shorten(path.class_name))}, "
                f"{path.n_anchors} anchor(s), length {path.length:.3f}"
            )
        self.profile_caption.value = text

    # --- inspection ------------------------------------------------------------------------------
    def scrub(self, fraction: float) -> PointSelection | None:
        """Show the path's point at ``fraction`` of its length: picture, probabilities, map marker."""
        self.position_line.x = [float(fraction)] * 2
        if self.path is None:
            return None
        image = self.path.points_at([fraction * self.path.length])[0]
        alpha, beta = self._plane.coordinates(image) if self._plane is not None else (np.nan, np.nan)
        if self._plane is not None:
            self.map_view.mark_click((alpha, beta))
        return self.inspect(image, alpha, beta, f"{fraction:.1%} along the path ({fraction * self.path.length:.3f} L2)")

    def select_plane_point(self, alpha: float, beta: float) -> PointSelection | None:
        """Inspect the point (alpha, beta) of the path's plane (a click on the map)."""
        if self._plane is None:
            return None
        self.map_view.mark_click((alpha, beta))
        return self.inspect(
            self._plane.point(alpha, beta), alpha, beta, f"α = {alpha:.3f}, β = {beta:.3f} on the plane"
        )

    def select(self, alpha: float, beta: float) -> PointSelection | None:
        """The same as :meth:`select_plane_point` (every explorer's map click)."""
        return self.select_plane_point(alpha, beta)


__all__ = [
    "PathExplorer",
    "path_extent",
    "path_labels_on_grid",
]
