"""PathExplorer: a path between two same-class inputs, its class profile and its plane."""

from __future__ import annotations

import html
import time
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import torch

from ..core import Classifier, Plane, PlaneSlice, compute_slice
from ..core.paths import ConnectingPath, LineProfile, find_path, line_profile
from ..core.slices import SLICE_METHODS
from ..render import rgb_table
from .slice_explorer import PointSelection, default_method
from .views import PointView, SliceMapView, encode_png, show_png
from .worker import Job, Worker

_STRIP_SAMPLES = 256
_MAP_MARGIN = 0.3  # share of the path's bounding box added on each side of the map


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


class PathExplorer:
    """Join ``x_a`` and ``x_b`` by a path inside their class and compare it with the straight line.

    Shows the class strips of the straight line and of the path (with the probability of the
    class of ``x_a`` along each), a scrubber along the path with the image there and its
    probabilities, and the path (its anchors projected) on the plane through ``x_a``, ``x_b`` and
    the anchor farthest from the line, over that plane's classification regions. Work runs in a
    worker thread (``threaded=False``: inline); :meth:`wait` blocks until it is done.

    Attributes: ``path`` (:class:`ConnectingPath` or None), ``line`` (:class:`LineProfile`),
    ``slice`` (:class:`PlaneSlice` of the path's plane), ``selection``, ``error``.
    """

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
        if not isinstance(clf, Classifier):
            raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
        method = default_method() if method is None else method
        if method not in SLICE_METHODS:
            raise ValueError(f"`method` must be one of {list(SLICE_METHODS)}; got {method!r}.")
        if not 0.0 <= float(position) <= 1.0:
            raise ValueError(f"`position` must be in [0, 1] (a fraction of the path's length); got {position}.")
        self.clf = clf
        self.method = method
        self.worker = Worker(threaded=threaded)
        self.path: ConnectingPath | None = None
        self.line: LineProfile | None = None
        self._slice: PlaneSlice | None = None
        self._plane: Plane | None = None
        self.selection: PointSelection | None = None
        self.error: str | None = None
        self.timings: dict[str, float] = {}

        self.depth_input = widgets.BoundedIntText(
            value=max_depth, min=0, max=16, description="max depth", continuous_update=False
        )
        self.samples_input = widgets.BoundedIntText(
            value=samples_per_segment, min=2, max=1024, description="samples / segment", continuous_update=False
        )
        self.resolution_dropdown = widgets.Dropdown(
            options=sorted({32, 64, 96, 128, 256, resolution}), value=resolution, description="map resolution"
        )
        self.scrubber = widgets.FloatSlider(
            value=float(position),
            min=0.0,
            max=1.0,
            step=0.005,
            description="along path",
            readout_format=".1%",
            continuous_update=False,
            layout={"width": "440px"},
        )
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout={"width": "300px"})
        self.status = widgets.HTML()
        self.status.add_class("bw-status")

        self._build_profile()
        self.map_view = SliceMapView(clf.class_names, on_click=self.select_plane_point, overlays=[self._path_mark])
        self.map_view.figure.add_class("bw-path-map")
        self.point_view = PointView(clf.class_names)
        for control in (self.depth_input, self.samples_input, self.resolution_dropdown):
            control.observe(lambda _change: self.refresh(), names="value")
        self.scrubber.observe(lambda change: self.scrub(change["new"]), names="value")

        controls = widgets.VBox([self.depth_input, self.samples_input, self.resolution_dropdown])
        self.ui = widgets.VBox(
            [
                widgets.HBox([controls, widgets.VBox([self.profile_figure, self.scrubber, self.profile_caption])]),
                widgets.HBox([self.map_view.ui, self.point_view.ui]),
                widgets.HBox([self.progress, self.status]),
            ]
        )
        self.ui.add_class("bw-path-explorer")
        self.set_endpoints(x_a, x_b)

    def _build_profile(self) -> None:
        """Class strips (path above, straight line below) and the probability of the class of x_a along both."""
        self.t_scale = bq.LinearScale(min=0.0, max=1.0)
        self.p_scale = bq.LinearScale(min=-0.55, max=1.02)
        scales = {"x": self.t_scale, "y": self.p_scale}
        self.path_strip = bq.Image(image=widgets.Image(format="png"), scales=scales, x=[0.0, 1.0], y=[-0.25, -0.05])
        self.line_strip = bq.Image(image=widgets.Image(format="png"), scales=scales, x=[0.0, 1.0], y=[-0.5, -0.3])
        # Two marks: the path's checked points and the line's samples do not share abscissas.
        self.path_probability = bq.Lines(
            x=[], y=[], scales=scales, colors=["black"], labels=["path"], display_legend=True
        )
        self.line_probability = bq.Lines(
            x=[], y=[], scales=scales, colors=["#888888"], labels=["straight line"], display_legend=True
        )
        self.position_line = bq.Lines(x=[0.5, 0.5], y=[-0.55, 1.02], scales=scales, colors=["#b00020"])
        self.profile_figure = bq.Figure(
            marks=[self.path_strip, self.line_strip, self.path_probability, self.line_probability, self.position_line],
            axes=[
                bq.Axis(scale=self.t_scale, label="fraction of the way from x_a to x_b"),
                bq.Axis(scale=self.p_scale, orientation="vertical", label="p(class of x_a)", tick_format=".1f"),
            ],
            animation_duration=0,
            legend_location="top-right",
            fig_margin={"top": 10, "bottom": 45, "left": 55, "right": 10},
            layout=widgets.Layout(width="440px", height="260px"),
        )
        self.profile_figure.add_class("bw-path-profile")
        self.profile_caption = widgets.HTML()

    @staticmethod
    def _path_mark(scales: dict) -> bq.Lines:
        return bq.Lines(x=[], y=[], scales=scales, colors=["white"], stroke_width=2.5, marker="circle", marker_size=24)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.ui._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"PathExplorer(path={self.path!r})"

    @property
    def slice(self) -> PlaneSlice | None:
        return self._slice

    @property
    def plane(self) -> Plane | None:
        return self._plane

    @property
    def state(self) -> dict[str, Any]:
        """Every setting as plain values (the endpoints are the caller's)."""
        return {
            "max_depth": int(self.depth_input.value),
            "samples_per_segment": int(self.samples_input.value),
            "resolution": int(self.resolution_dropdown.value),
            "method": self.method,
            "position": float(self.scrubber.value),
        }

    def set_endpoints(self, x_a: object, x_b: object) -> Job:
        """New endpoints: recompute the line profile, the path and its plane."""
        self.x_a = self.clf.check_inputs(x_a, "x_a", batched=False, in_bounds=True)[0].cpu()
        self.x_b = self.clf.check_inputs(x_b, "x_b", batched=False, in_bounds=True)[0].cpu()
        return self.refresh()

    def wait(self, timeout: float | None = None) -> bool:
        return self.worker.wait(timeout)

    def refresh(self) -> Job:
        settings = {**self.state, "x_a": self.x_a, "x_b": self.x_b}
        return self.worker.submit(lambda job: self._update(job, settings))

    # --- the work ------------------------------------------------------------------------------
    def _show_status(self, message: str, *, error: bool = False) -> None:
        colour, css = ("#b00020", "bw-error") if error else ("#333", "bw-info")
        self.status.value = f'<span class="{css}" style="color:{colour}">{html.escape(message)}</span>'

    def _update(self, job: Job, settings: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            self.progress.value = 0.0
            self.progress.bar_style = "info"
            self._show_status("classifying the straight line…")
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
            self.scrub(self.scrubber.value)
            self.progress.value = 0.5
            self._show_status("classifying the path's plane…")
            plane = path.plane()
            coordinates = path.plane_coordinates(plane)
            extent = path_extent(coordinates)

            def show_frame(sl: PlaneSlice) -> None:
                job.check()
                self._slice, self._plane = sl, plane
                anchors = {"x_a": tuple(coordinates[0]), "x_b": tuple(coordinates[-1])}
                self.map_view.show(sl, shading="labels", boundaries=True, anchors=anchors)
                with self.map_view.overlays[0].hold_sync():
                    self.map_view.overlays[0].x = coordinates[:, 0]
                    self.map_view.overlays[0].y = coordinates[:, 1]
                self.progress.value = min(0.95, self.progress.value + 0.15)
                self.scrub(self.scrubber.value)

            compute_slice(
                self.clf,
                plane,
                extent=extent,
                resolution=settings["resolution"],
                method=settings["method"],
                on_frame=show_frame,
                cancel=job.cancel,
            )
        except Exception as error:
            if job.stale:
                return
            self.error = f"{type(error).__name__}: {error}"
            self.progress.bar_style = "danger"
            self._show_status(f"Could not compute the path — {self.error}", error=True)
            return
        self.timings = {"total": time.perf_counter() - started}
        self.error = None
        self.progress.value = 1.0
        self.progress.bar_style = "success"
        self._show_status(f"{path!r}; {path.n_evaluated} evaluations, {self.timings['total']:.2f} s")

    def _draw_profile(self) -> None:
        line, path = self.line, self.path
        table = rgb_table(len(self.clf.class_names))
        label = int(line.labels[0])
        fractions = np.linspace(0.0, 1.0, _STRIP_SAMPLES)
        line_strip = line.labels[np.round(fractions * (line.t.size - 1)).astype(int)]
        show_png(self.line_strip, encode_png(line_strip[None, :], palette=table))
        if path is None:
            show_png(
                self.path_strip, encode_png(np.full((1, _STRIP_SAMPLES), 0, np.uint8), palette=np.full((1, 3), 255))
            )
            path_x, path_y = np.empty(0), np.empty(0)
        else:
            show_png(self.path_strip, encode_png(path_labels_on_grid(path, fractions)[None, :], palette=table))
            path_x, path_y = path.positions / max(path.length, 1e-12), path.confidences
        with self.path_probability.hold_sync(), self.line_probability.hold_sync():
            self.path_probability.x, self.path_probability.y = path_x, np.asarray(path_y, dtype=float)
            self.line_probability.x, self.line_probability.y = line.t, line.probabilities[:, label].astype(float)
        names = self.clf.class_names
        crossed = " → ".join(html.escape(names[k]) for k in line.classes_crossed)
        text = f"straight line (lower strip): {crossed}, {line.n_changes} class change(s), length {line.length:.3f}"
        if path is not None:
            verdict = "stays in" if path.valid else f"does not stay in ({html.escape(path.reason or '')})"
            text += (
                f"<br>path (upper strip): {verdict} class {html.escape(path.class_name)}, "
                f"{path.n_anchors} anchor(s), length {path.length:.3f}"
            )
        self.profile_caption.value = text

    # --- inspection ------------------------------------------------------------------------------
    def _inspect(self, image: torch.Tensor, alpha: float, beta: float, caption: str) -> PointSelection:
        probabilities = self.clf.probabilities(image).double().cpu().numpy()
        label = int(probabilities.argmax())
        self.selection = PointSelection(float(alpha), float(beta), image, probabilities, label)
        name = html.escape(self.clf.class_names[label])
        self.point_view.show(
            image, probabilities, self.clf.bounds, f"{caption}<br>predicted <b>{name}</b> ({probabilities[label]:.1%})"
        )
        return self.selection

    def scrub(self, fraction: float) -> PointSelection | None:
        """Show the path's point at ``fraction`` of its length: picture, probabilities, map marker."""
        self.position_line.x = [float(fraction)] * 2
        if self.path is None:
            return None
        image = self.path.points_at([fraction * self.path.length])[0]
        alpha, beta = self._plane.coordinates(image) if self._plane is not None else (np.nan, np.nan)
        if self._plane is not None:
            self.map_view.mark_click((alpha, beta))
        return self._inspect(
            image, alpha, beta, f"{fraction:.1%} along the path ({fraction * self.path.length:.3f} L2)"
        )

    def select_plane_point(self, alpha: float, beta: float) -> PointSelection | None:
        """Inspect the point (alpha, beta) of the path's plane (a click on the map)."""
        if self._plane is None:
            return None
        self.map_view.mark_click((alpha, beta))
        return self._inspect(
            self._plane.point(alpha, beta), alpha, beta, f"α = {alpha:.3f}, β = {beta:.3f} on the plane"
        )
