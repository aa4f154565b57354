"""Small bqplot/ipywidgets views of core results, composed by the explorers."""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image as PILImage

from ..core.extent import outside_box
from ..core.plane import Plane
from ..core.slices import Certificate, PlaneSlice
from ..render import (
    LEGEND_ENTRIES,
    NAME_WIDTH,
    TOP_K,
    boundary_boxes,
    boundary_lines,
    class_colors,
    input_picture,
    legend_entries,
    shorten,
    slice_rgb,
    top_k,
    undefined_entry,
    unproven_rgba,
)

_PREVIEW_PIXELS = 128
_HATCH_PIXELS = 192  # the outside-the-box overlay is drawn at this resolution whatever the map's
_HATCH_PERIOD = 12  # hatch pixels between two stripes: about 8 % of the outside region is striped
# Markers: name -> (what it is, for the hover text and the marker legend).
MARKER_HELP = {
    "origin": "the image the plane goes through (α = β = 0)",
    "boundary (u)": "first class change along u (bisection on the line from the origin)",
    "boundary (v)": "first class change along v (bisection on the line from the origin)",
    "sample": "the data point the explorer was given, at its own coordinates",
    "x_a": "the path's start",
    "x_b": "the path's end",
}


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of ``pixels`` ((H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA); any number of colours, light compression."""
    picture = PILImage.fromarray(np.ascontiguousarray(pixels.astype(np.uint8)))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def show_png(mark: bq.Image, png: bytes) -> None:
    """Give ``mark`` a new PNG picture.

    bqplot 0.13's ``Image`` mark redraws only when its ``image`` trait is replaced, never when the
    ``ipywidgets.Image`` it holds changes value (seen in JupyterLab and Voila), so each picture is a
    new widget and the old one is closed.
    """
    previous = mark.image
    mark.image = widgets.Image(format="png", value=png)
    previous.close()


def slice_png(sl: PlaneSlice, *, shading: str, greyed: bool = False) -> bytes:
    """The pixels of :func:`slice_rgb` as an RGB PNG (not a palette: any number of classes), beta growing upward.

    ``greyed``: faded to grey, the look of a map that no longer matches the settings.
    """
    rgb = slice_rgb(sl, shading=shading)[::-1]
    if greyed:
        grey = rgb.astype(np.float32).mean(axis=2, keepdims=True)
        rgb = (0.35 * grey + 0.65 * 225.0).repeat(3, axis=2).round().astype(np.uint8)
    return encode_png(rgb)


def hatch_pixels(outside: np.ndarray) -> np.ndarray:
    """RGBA ``(H, W, 4)`` overlay: thin dark diagonal stripes where ``outside`` (row 0 at the top), clear elsewhere.

    Sparse, half-transparent stripes (one pixel in ``_HATCH_PERIOD`` along each row) leave the
    regions readable: on images with pixels at the bounds (digits' black background) almost all
    of a plane lies outside the box.
    """
    height, width = outside.shape
    rows, cols = np.indices((height, width))
    stripe = (rows + cols) % _HATCH_PERIOD == 0
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = 30
    rgba[..., 3] = np.where(outside & stripe, 110, 0)
    return rgba


def picture_png(pixels: np.ndarray, *, size: int = _PREVIEW_PIXELS) -> bytes:
    """PNG of an input picture enlarged with nearest-neighbour so that small images stay crisp."""
    height, width = pixels.shape[:2]
    scale = max(1, size // max(height, width))
    enlarged = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    return encode_png(enlarged)


def placeholder_png(size: int = _PREVIEW_PIXELS) -> bytes:
    """A plain light square: the preview before anything is inspected (never a broken-image icon)."""
    return encode_png(np.full((size, size), 238, dtype=np.uint8))


def legend_html(sl: PlaneSlice, *, max_entries: int = LEGEND_ENTRIES, width: int = 360) -> str:
    """The classes present, largest area first, by (shortened) name with their share of the map."""
    entries = legend_entries(sl, max_entries=max_entries)
    items = "".join(
        f'<span class="bw-legend-entry" data-class="{k}" title="{html.escape(name)}" '
        f'style="display:inline-block;margin:0 8px 2px 0;white-space:nowrap">'
        f'<span style="display:inline-block;width:12px;height:12px;background:{colour};'
        f'border:1px solid #333;vertical-align:middle"></span> {html.escape(shorten(name, NAME_WIDTH))} '
        f'<span style="color:#666">{share:.0%}</span></span>'
        for k, name, share, colour in entries
    )
    more = len(sl.classes_present) - len(entries)
    tail = f' <span class="bw-legend-more" style="color:#666">and {more} more</span>' if more > 0 else ""
    undefined = undefined_entry(sl)
    if undefined is not None:
        name, share, colour = undefined
        tail += (
            f' <span class="bw-legend-undefined" style="white-space:nowrap"><span style="display:inline-block;'
            f"width:12px;height:12px;border:1px solid #333;vertical-align:middle;background:repeating-linear-gradient("
            f'45deg,{colour} 0 3px,#eeeeee 3px 6px)"></span> {name} <span style="color:#666">{share:.0%}</span></span>'
        )
    return f'<div class="bw-legend" style="max-width:{width}px;line-height:1.3"><b>classes:</b> {items}{tail}</div>'


_CONFIDENCE_BAR = (
    '<div class="bw-colorbar" style="font-size:11px;color:#444">confidence: '
    '<span style="display:inline-block;width:120px;height:10px;vertical-align:middle;border:1px solid #999;'
    'background:linear-gradient(to right,#ffffff,#888888)"></span> chance → certain '
    "(each class colour fades to white as its top-1 probability drops to chance)</div>"
)


def data_points_mark(
    scales: dict, classes: int, points: np.ndarray | None = None, labels: np.ndarray | None = None
) -> bq.Scatter:
    """A 2-D data set's points, ``(n, 2)``, coloured by their class ``labels`` ``(n,)``, over a map's ``scales``."""
    colour_scale = bq.ColorScale(colors=class_colors(classes), min=0, max=max(classes - 1, 1))
    empty = points is None
    return bq.Scatter(
        x=[] if empty else points[:, 0],
        y=[] if empty else points[:, 1],
        color=[] if empty else labels,
        scales={**scales, "color": colour_scale},
        stroke="black",
        default_size=14,
    )


class SliceMapView:
    """The label map (an RGB ``Image`` mark), the outside-the-box hatch, boundary lines, markers and a click cross.

    Every mark that lies over the map answers a click (an overlay would otherwise swallow it): a
    click on a marker inspects that marker's point.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        *,
        on_click: Callable[[float, float], None],
        overlays: Sequence[Callable[[dict], bq.Mark]] = (),
        x_label: str = "α along u (L2)",
        y_label: str = "β along v (L2)",
        size: int = 360,
    ) -> None:
        """``overlays``: builders of extra marks drawn above the boundaries, given the map's scales."""
        self.class_names = tuple(class_names)
        self.size = size
        self._on_click = on_click
        self.x_scale = bq.LinearScale(min=-1.0, max=1.0)
        self.y_scale = bq.LinearScale(min=-1.0, max=1.0)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.scales = scales
        self.image = bq.Image(image=widgets.Image(format="png"), scales=scales, x=[-1.0, 1.0], y=[-1.0, 1.0])
        self.hatch = bq.Image(image=widgets.Image(format="png"), scales=scales, x=[-1.0, 1.0], y=[-1.0, 1.0])
        self.boundaries = bq.Lines(x=[], y=[], scales=scales, colors=["black"], stroke_width=1.2)
        # A certified slice: its unproven area shaded, its unproven leaves (boundary boxes) outlined.
        self.unproven = bq.Image(image=widgets.Image(format="png"), scales=scales, x=[-1.0, 1.0], y=[-1.0, 1.0])
        self.proof_boxes = bq.Lines(x=[], y=[], scales=scales, colors=["red"], stroke_width=0.6)
        tooltip = bq.Tooltip(fields=["name", "x", "y"], labels=["", "α", "β"], formats=["", ".3f", ".3f"])
        self.anchors = bq.Scatter(
            x=[0.0],
            y=[0.0],
            names=["origin"],
            display_names=False,
            scales=scales,
            colors=["white"],
            stroke="black",
            default_size=70,
            tooltip=tooltip,
        )
        self.click_marker = bq.Scatter(
            x=[], y=[], scales=scales, marker="cross", colors=["black"], stroke="white", default_size=90
        )
        axes = [
            bq.Axis(scale=self.x_scale, label=x_label, label_offset="32px"),
            bq.Axis(scale=self.y_scale, label=y_label, side="left", label_offset="40px"),
        ]
        self.overlays = [build(scales) for build in overlays]
        self.figure = bq.Figure(
            marks=[
                self.image,
                self.hatch,
                self.unproven,
                self.proof_boxes,
                self.boundaries,
                *self.overlays,
                self.anchors,
                self.click_marker,
            ],
            axes=axes,
            animation_duration=0,
            display_toolbar=False,  # its hover toolbar covers the top-right corner of the map
            fig_margin={"top": 30, "bottom": 42, "left": 52, "right": 8},
            title_style={"font-size": "12px"},
            # Fixed size: a narrow notebook must wrap the panels, not squeeze the map under its neighbours.
            layout=widgets.Layout(width=f"{size}px", height=f"{size}px", min_width=f"{size}px", flex="0 0 auto"),
        )
        self.figure.add_class("bw-slice-map")
        self.notice = widgets.HTML()
        self.notice.add_class("bw-map-notice")
        self.legend = widgets.HTML()
        self.markers_legend = widgets.HTML()
        self.colorbar = widgets.HTML()
        self.image.on_element_click(self._clicked)
        self.hatch.on_element_click(self._clicked)
        self.unproven.on_element_click(self._clicked)
        self.anchors.on_element_click(self._marker_clicked)
        self.click_marker.on_element_click(self._marker_clicked)
        for overlay in self.overlays:
            if isinstance(overlay, bq.Scatter):
                overlay.on_element_click(self._marker_clicked)
        self.ui = widgets.VBox(
            [self.notice, self.figure, self.legend, self.markers_legend, self.colorbar],
            layout=widgets.Layout(width=f"{size + 4}px"),
        )
        self.greyed = False
        self.anchor_names: list[str] = ["origin"]  # the markers' short names, in the order of the mark's points
        self._slice: PlaneSlice | None = None
        self._shading = "labels"
        self._hatch_key: tuple | None = None

    def _clicked(self, _mark: bq.Image, event: dict) -> None:
        data = event.get("data", {})
        self._on_click(float(data["click_x"]), float(data["click_y"]))

    def _marker_clicked(self, mark: bq.Scatter, event: dict) -> None:
        index = int(event.get("data", {}).get("index", -1))
        if 0 <= index < len(mark.x):
            self._on_click(float(mark.x[index]), float(mark.y[index]))

    def show(
        self,
        sl: PlaneSlice,
        *,
        shading: str,
        boundaries: bool,
        anchors: Mapping[str, tuple[float, float]],
        title: str = "",
        bounds: tuple[float, float] | None = None,
        plane: Plane | None = None,
    ) -> None:
        """Draw ``sl``; every trait of the map changes in one message batch.

        ``bounds`` and ``plane``: hatch the part of the plane outside the input box.
        """
        self._slice, self._shading = sl, shading
        png = slice_png(sl, shading=shading)
        lines = boundary_lines(sl) if boundaries else np.empty((0, 2))
        (a0, a1), (b0, b1) = (sl.alphas[0], sl.alphas[-1]), (sl.betas[0], sl.betas[-1])
        names = list(anchors)
        points = np.array([anchors[name] for name in names], dtype=float).reshape(-1, 2)
        hatch = None
        if bounds is not None and plane is not None:
            key = (plane.fingerprint(), a0, a1, b0, b1, bounds)
            if key != self._hatch_key:
                alphas = np.linspace(a0, a1, _HATCH_PIXELS)
                betas = np.linspace(b0, b1, _HATCH_PIXELS)
                outside = outside_box(plane, alphas, betas, bounds)
                self.outside_share = float(outside.mean())
                hatch = encode_png(hatch_pixels(outside[::-1]))
                self._hatch_key = key
        certificate = sl.certificate
        boxes = boundary_boxes(sl) if certificate is not None else np.empty((0, 2))
        unproven = (
            encode_png(np.round(255 * unproven_rgba(sl)[::-1]).astype(np.uint8)) if certificate is not None else None
        )
        with (
            self.image.hold_sync(),
            self.hatch.hold_sync(),
            self.unproven.hold_sync(),
            self.proof_boxes.hold_sync(),
            self.boundaries.hold_sync(),
            self.anchors.hold_sync(),
        ):
            show_png(self.image, png)
            self.image.x = self.hatch.x = self.unproven.x = [a0, a1]
            self.image.y = self.hatch.y = self.unproven.y = [b0, b1]
            self.unproven.visible = unproven is not None
            if unproven is not None:
                show_png(self.unproven, unproven)
            self.proof_boxes.x = boxes[:, 0]
            self.proof_boxes.y = boxes[:, 1]
            if hatch is not None:
                show_png(self.hatch, hatch)
            self.x_scale.min, self.x_scale.max = float(a0), float(a1)
            self.y_scale.min, self.y_scale.max = float(b0), float(b1)
            self.boundaries.x = lines[:, 0]
            self.boundaries.y = lines[:, 1]
            self.anchors.x = points[:, 0]
            self.anchors.y = points[:, 1]
            # The hover text says what each marker is; names are not drawn (they collided on the map).
            self.anchors.names = [f"{name}: {MARKER_HELP[name]}" if name in MARKER_HELP else name for name in names]
        self.anchor_names = names
        self.figure.title = title
        self.legend.value = legend_html(sl, width=self.size)
        self.markers_legend.value = self._markers_html(
            names, hatched=self._hatch_key is not None, certificate=certificate
        )
        self.colorbar.value = _CONFIDENCE_BAR if shading == "confidence" else ""
        self.clear_error()

    def _markers_html(self, names: Sequence[str], *, hatched: bool, certificate: Certificate | None = None) -> str:
        items = [
            f"<b>{html.escape(name)}</b>: {html.escape(MARKER_HELP.get(name, 'an image this plane uses'))}"
            for name in names
        ]
        items.append("<b>+</b>: the point shown on the right")
        if hatched and getattr(self, "outside_share", 0.0) > 0:
            items.append("hatched: outside the input box (some pixel out of bounds)")
        if certificate is not None:
            items.append(
                f"grey: not proven single-label ({certificate.proven_area:.2%} of the area is proven); "
                "red boxes: unproven boundary cells"
            )
        return (
            '<div class="bw-marker-legend" style="font-size:11px;color:#444;line-height:1.3">'
            + "; ".join(items)
            + "</div>"
        )

    def show_error(self, message: str) -> None:
        """Grey out the map on display and say beside it why it is stale."""
        self.greyed = True
        if self._slice is not None:
            show_png(self.image, slice_png(self._slice, shading=self._shading, greyed=True))
        self.figure.add_class("bw-map-error")
        self.notice.value = (
            f'<div class="bw-map-error-text" style="color:#b00020;max-width:360px">map out of date: '
            f"{html.escape(message)}</div>"
        )

    def clear_error(self) -> None:
        if self.greyed:
            self.greyed = False
            self.figure.remove_class("bw-map-error")
        self.notice.value = ""

    @property
    def png(self) -> widgets.Image:
        """The picture the map shows now."""
        return self.image.image

    @property
    def drawn(self) -> bool:
        """Whether a slice has been drawn (a map to export)."""
        return self._slice is not None

    def draw(self, ax: Any) -> None:
        """The map as shown, on matplotlib axes: classes, boundaries, overlays and markers, with a legend of both."""
        from ..plotting.slices import SliceDisplay

        markers = {
            name: (float(alpha), float(beta))
            for name, alpha, beta in zip(self.anchor_names, self.anchors.x, self.anchors.y, strict=False)
            if name != "origin"
        }
        if len(self.click_marker.x):
            markers["+ inspected"] = (float(self.click_marker.x[0]), float(self.click_marker.y[0]))
        SliceDisplay(self._slice).plot(
            ax, shading=self._shading, boundaries=len(self.boundaries.x) > 0, markers=markers, title=self.figure.title
        )
        for overlay in self.overlays:
            if isinstance(overlay, bq.Lines) and len(overlay.x):
                ax.plot(overlay.x, overlay.y, color=overlay.colors[0], linewidth=1.5, marker="o", markersize=3)
            elif isinstance(overlay, bq.Scatter) and len(overlay.x):
                colours = class_colors(len(self.class_names))
                ax.scatter(overlay.x, overlay.y, c=[colours[int(k)] for k in overlay.color], s=8, edgecolors="black")
        ax.set_xlabel(self.figure.axes[0].label)
        ax.set_ylabel(self.figure.axes[1].label)

    def mark_click(self, point: tuple[float, float] | None) -> None:
        with self.click_marker.hold_sync():
            self.click_marker.x = [] if point is None else [point[0]]
            self.click_marker.y = [] if point is None else [point[1]]


def bar_labels(top: Sequence[tuple[int, str, float]], width: int = 18) -> list[str]:
    """Shortened names for the bars; the class index is added where two shortened names would coincide."""
    short = [shorten(name, width) for _, name, _ in top]
    return [
        f"{label} ({index})" if short.count(label) > 1 else label
        for label, (index, _, _) in zip(short, top, strict=True)
    ]


class PointView:
    """The input at one point: its picture, its top-k class probabilities by name, and its coordinates."""

    def __init__(self, class_names: Sequence[str], *, k: int = TOP_K) -> None:
        self.class_names = tuple(class_names)
        self.k = min(k, len(self.class_names))
        self.picture = widgets.Image(
            value=placeholder_png(), format="png", layout=widgets.Layout(width=f"{_PREVIEW_PIXELS}px")
        )
        self.picture.add_class("bw-preview")
        self.x_scale = bq.OrdinalScale(reverse=True)
        self.y_scale = bq.LinearScale(min=0.0, max=1.0)
        self.bars = bq.Bars(
            x=[],
            y=[],
            orientation="horizontal",
            scales={"x": self.x_scale, "y": self.y_scale},
            colors=["#cccccc"],
            stroke="black",
            tooltip=bq.Tooltip(fields=["x", "y"], labels=["class", "p"], formats=["", ".3f"]),
        )
        self.chart = bq.Figure(
            marks=[self.bars],
            axes=[
                bq.Axis(scale=self.x_scale, side="left"),
                bq.Axis(scale=self.y_scale, label="probability", tick_format=".1f", num_ticks=3),
            ],
            animation_duration=0,
            display_toolbar=False,
            fig_margin={"top": 5, "bottom": 35, "left": 115, "right": 12},
            layout=widgets.Layout(width="235px", height=f"{max(120, 22 * self.k + 45)}px"),
        )
        self.chart.add_class("bw-probabilities")
        self.caption = widgets.HTML("<i>click the map to inspect a point</i>")
        self.caption.add_class("bw-caption")
        self.top: list[tuple[int, str, float]] = []
        self.ui = widgets.VBox([self.picture, self.caption, self.chart], layout=widgets.Layout(width="240px"))

    def show(self, x: torch.Tensor, probabilities: np.ndarray, bounds: tuple[float, float], caption: str) -> None:
        pixels = input_picture(x, bounds)
        if pixels is None:
            values = ", ".join(f"{v:.3g}" for v in x.reshape(-1)[:16].tolist())
            caption = f"{caption}<br>x = ({values})"
            self.picture.layout.display = "none"
        else:
            self.picture.layout.display = None
            self.picture.value = picture_png(pixels)
        self.top = top_k(probabilities, self.class_names, self.k)
        colours = class_colors(len(self.class_names))
        with self.bars.hold_sync():
            self.bars.x = bar_labels(self.top)
            self.bars.y = np.array([p for _, _, p in self.top], dtype=float)
            self.bars.colors = [colours[index] for index, _, _ in self.top]
        self.caption.value = caption


__all__ = [
    "MARKER_HELP",
    "PointView",
    "SliceMapView",
    "bar_labels",
    "data_points_mark",
    "encode_png",
    "hatch_pixels",
    "legend_html",
    "picture_png",
    "placeholder_png",
    "show_png",
    "slice_png",
]
