"""MarginExplorer: band margins of many images, and on a click the slice through one image along its band."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from ..core import directions
from ..core.analysis import BandMargins, band_direction, band_margins
from ..core.classifier import Classifier
from ..core.dct import Band
from ..core.plane import Plane
from ..core.slices import compute_slice
from .views import SliceMapView
from .worker import Job, StaleJob, Worker


class MarginExplorer:
    """Margins along DCT bands (one dot per image and band, the median as a line); a click on a dot shows
    the slice through that image spanned by its band-constrained DeepFool direction and a random
    direction of the same band, the boundary crossing marked.

    ``result`` reuses a :func:`band_margins` table of these ``images``; otherwise it is computed in the
    worker thread with a progress bar. ``threaded=False`` runs everything inline (tests, scripts).
    """

    def __init__(
        self,
        clf: Classifier,
        images: object,
        *,
        bands: Sequence[Band] | None = None,
        result: BandMargins | None = None,
        resolution: int = 96,
        threaded: bool = True,
    ) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
        self.clf = clf
        self.images = clf.check_inputs(images, "images", batched=True, in_bounds=True).cpu()
        if result is not None and (
            not isinstance(result, BandMargins) or result.margins.shape[0] != self.images.shape[0]
        ):
            raise ValueError("`result` must be the BandMargins of these `images` (one row per image).")
        self.resolution = resolution
        self.result: BandMargins | None = None
        self.slice = None
        self.worker = Worker(threaded=threaded)
        self._points = np.empty((0, 2), dtype=np.int64)  # (P, 2) rows (image, band) of the dots

        self.x_scale = bq.LinearScale(min=-0.5, max=0.5)
        self.y_scale = bq.LogScale()
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.dots = bq.Scatter(x=[], y=[], scales=scales, colors=["steelblue"], default_size=24, opacities=[0.6])
        self.medians = bq.Lines(x=[], y=[], scales=scales, colors=["crimson"], stroke_width=2, marker="circle")
        self.band_axis = bq.Axis(scale=self.x_scale, label="DCT band (low → high)", tick_values=[])
        self.chart = bq.Figure(
            marks=[self.dots, self.medians],
            axes=[self.band_axis, bq.Axis(scale=self.y_scale, orientation="vertical", label="margin (L2)")],
            animation_duration=0,
            fig_margin={"top": 10, "bottom": 45, "left": 60, "right": 10},
            layout=widgets.Layout(width="420px", height="380px"),
        )
        self.dots.on_element_click(self._dot_clicked)
        self.map = SliceMapView(clf.class_names, on_click=lambda _a, _b: None)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="bands")
        self.status = widgets.HTML("<i>click a dot to see the slice through that image along its band</i>")
        self.ui = widgets.VBox([widgets.HBox([self.chart, self.map.ui]), self.progress, self.status])

        if result is not None:
            self._show_margins(result)
        else:
            self.worker.submit(lambda job: self._compute(job, bands))

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.ui._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"MarginExplorer(images={self.images.shape[0]}, result={self.result!r})"

    def _compute(self, job: Job, bands: Sequence[Band] | None) -> None:
        def progress(done: int, total: int) -> None:
            job.check()
            self.progress.max, self.progress.value = total, done

        try:
            self._show_margins(band_margins(self.clf, self.images, bands=bands, progress=progress))
        except StaleJob:
            raise
        except Exception as error:  # shown in the widget: callback errors are lost in JupyterLab
            self.status.value = f"<b>error:</b> {html.escape(str(error))}"

    def _show_margins(self, result: BandMargins) -> None:
        self.result = result
        n, count = result.margins.shape
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, n)
        rows, cols = np.nonzero(result.converged)
        self._points = np.stack([rows, cols], axis=1)
        finite = np.isfinite(result.medians)
        with self.dots.hold_sync(), self.medians.hold_sync():
            self.x_scale.min, self.x_scale.max = -0.5, count - 0.5
            self.dots.x = cols + jitter[rows]
            self.dots.y = result.margins[rows, cols]
            self.medians.x = np.arange(count)[finite]
            self.medians.y = result.medians[finite]
            self.band_axis.tick_values = np.arange(count)
            self.band_axis.tick_format = ""
        self.band_axis.label = "DCT band: " + ", ".join(f"{j}={name}" for j, name in enumerate(result.band_names))
        self.progress.max, self.progress.value = count, count

    def _dot_clicked(self, _mark: bq.Scatter, event: dict) -> None:
        index = int(event.get("data", {}).get("index", -1))
        if 0 <= index < len(self._points):
            image, band = (int(v) for v in self._points[index])
            self.show_slice(image, band)

    def show_slice(self, image: int, band: int) -> None:
        """Draw the slice through ``images[image]`` along band ``band`` (in the worker thread)."""
        if self.result is None:
            raise ValueError("the band margins are not computed yet.")
        if not (0 <= image < self.images.shape[0] and 0 <= band < len(self.result.bands)):
            raise ValueError(
                f"`image` and `band` must index the table {self.result.margins.shape}; got {(image, band)}."
            )
        self.status.value = f"<i>computing the slice of image {image} along {self.result.band_names[band]}…</i>"
        self.worker.submit(lambda job: self._slice(job, image, band))

    def _slice(self, job: Job, image: int, band: int) -> None:
        try:
            x = self.images[image]
            chosen = self.result.bands[band]
            toward = band_direction(self.clf, self.result, x, band)
            job.check()
            across = directions.make("dct", self.clf, x, band=chosen, method="random", seed=image)
            plane = Plane.through(x, toward, across)
            margin = float(self.result.margins[image, band])
            sl = compute_slice(self.clf, plane, extent=max(1.5 * margin, 1e-3), resolution=self.resolution)
            job.check()
            self.slice = sl
            self.map.show(
                sl, shading="labels", boundaries=True, anchors={"image": (0.0, 0.0), "DeepFool": (margin, 0.0)}
            )
            self.status.value = (
                f"image {image}, band {html.escape(self.result.band_names[band])}: margin {margin:.3g}; "
                "u = band DeepFool direction, v = random direction in the band"
            )
        except StaleJob:
            raise
        except Exception as error:  # shown in the widget: callback errors are lost in JupyterLab
            self.status.value = f"<b>error:</b> {html.escape(str(error))}"
