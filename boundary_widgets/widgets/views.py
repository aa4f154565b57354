"""Small bqplot/ipywidgets views of core results, composed by the explorers."""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping, Sequence

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image as PILImage

from ..core.slices import PlaneSlice
from ..plotting.palette import boundary_lines, class_colors, rgb_table
from ..plotting.slices import slice_rgb

_PREVIEW_PIXELS = 128


def encode_png(pixels: np.ndarray, *, palette: np.ndarray | None = None) -> bytes:
    """PNG bytes of ``pixels`` ((H, W) grey or palette indices, or (H, W, 3) RGB); fast, light compression."""
    if palette is not None:
        picture = PILImage.fromarray(pixels.astype(np.uint8), mode="P")
        picture.putpalette(palette.astype(np.uint8).ravel().tolist())
    else:
        picture = PILImage.fromarray(pixels.astype(np.uint8))
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


def slice_png(sl: PlaneSlice, *, shading: str) -> bytes:
    """The pixels of :func:`slice_rgb` as a PNG with beta growing upward (PNG row 0 is the top).

    Hard regions go out as a palette PNG (class indices and the class table), confidence shading
    as RGB; both decode to exactly ``slice_rgb(sl, shading=shading)[::-1]``.
    """
    if shading == "labels":
        return encode_png(sl.labels[::-1], palette=rgb_table(len(sl.class_names)))
    return encode_png(slice_rgb(sl, shading=shading)[::-1])


def input_picture(x: torch.Tensor, bounds: tuple[float, float]) -> np.ndarray | None:
    """``x`` as uint8 pixels ((H, W) grey or (H, W, 3)), clipped to ``bounds``; None if it is not an image."""
    array = x.detach().cpu().numpy()
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    elif array.ndim != 2:
        return None
    low, high = bounds
    return np.round((np.clip(array, low, high) - low) / (high - low) * 255.0).astype(np.uint8)


def picture_png(pixels: np.ndarray, *, size: int = _PREVIEW_PIXELS) -> bytes:
    """PNG of an input picture enlarged with nearest-neighbour so that small images stay crisp."""
    height, width = pixels.shape[:2]
    scale = max(1, size // max(height, width))
    enlarged = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    return encode_png(enlarged)


def legend_html(class_names: Sequence[str], present: Sequence[int]) -> str:
    colours = class_colors(len(class_names))
    items = "".join(
        f'<span style="display:inline-block;margin:0 8px 2px 0;white-space:nowrap">'
        f'<span style="display:inline-block;width:12px;height:12px;background:{colours[k]};'
        f'border:1px solid #333;vertical-align:middle"></span> {html.escape(class_names[k])}</span>'
        for k in present
    )
    return f'<div class="bw-legend" style="max-width:380px"><b>classes:</b> {items}</div>'


class SliceMapView:
    """The label map as a bqplot ``Image`` mark, boundary lines, anchor markers and a click marker."""

    def __init__(
        self,
        class_names: Sequence[str],
        *,
        on_click: Callable[[float, float], None],
        overlays: Sequence[Callable[[dict], bq.Mark]] = (),
    ) -> None:
        """``overlays``: builders of extra marks drawn above the boundaries, given the map's scales."""
        self.class_names = tuple(class_names)
        self._on_click = on_click
        self.x_scale = bq.LinearScale(min=-1.0, max=1.0)
        self.y_scale = bq.LinearScale(min=-1.0, max=1.0)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.image = bq.Image(image=widgets.Image(format="png"), scales=scales, x=[-1.0, 1.0], y=[-1.0, 1.0])
        self.boundaries = bq.Lines(x=[], y=[], scales=scales, colors=["black"], stroke_width=1.2)
        self.anchors = bq.Scatter(
            x=[0.0],
            y=[0.0],
            names=["origin"],
            display_names=True,
            scales=scales,
            colors=["white"],
            stroke="black",
            default_size=70,
        )
        self.click_marker = bq.Scatter(
            x=[], y=[], scales=scales, marker="cross", colors=["black"], stroke="white", default_size=90
        )
        axes = [
            bq.Axis(scale=self.x_scale, label="α along u (L2)"),
            bq.Axis(scale=self.y_scale, label="β along v (L2)", orientation="vertical"),
        ]
        self.overlays = [build(scales) for build in overlays]
        self.figure = bq.Figure(
            marks=[self.image, self.boundaries, *self.overlays, self.anchors, self.click_marker],
            axes=axes,
            animation_duration=0,
            fig_margin={"top": 10, "bottom": 45, "left": 55, "right": 10},
            # Fixed size: a narrow notebook must wrap the panels, not squeeze the map under its neighbours.
            layout=widgets.Layout(width="380px", height="380px", min_width="380px", flex="0 0 auto"),
        )
        self.figure.add_class("bw-slice-map")
        self.legend = widgets.HTML()
        self.image.on_element_click(self._clicked)
        self.ui = widgets.VBox([self.figure, self.legend])

    def _clicked(self, _mark: bq.Image, event: dict) -> None:
        data = event.get("data", {})
        self._on_click(float(data["click_x"]), float(data["click_y"]))

    def show(
        self, sl: PlaneSlice, *, shading: str, boundaries: bool, anchors: Mapping[str, tuple[float, float]]
    ) -> None:
        """Draw ``sl``; every trait of the map changes in one message batch."""
        png = slice_png(sl, shading=shading)
        lines = boundary_lines(sl) if boundaries else np.empty((0, 2))
        (a0, a1), (b0, b1) = (sl.alphas[0], sl.alphas[-1]), (sl.betas[0], sl.betas[-1])
        names = list(anchors)
        points = np.array([anchors[name] for name in names], dtype=float).reshape(-1, 2)
        with self.image.hold_sync(), self.boundaries.hold_sync(), self.anchors.hold_sync():
            show_png(self.image, png)
            self.image.x = [a0, a1]
            self.image.y = [b0, b1]
            self.x_scale.min, self.x_scale.max = float(a0), float(a1)
            self.y_scale.min, self.y_scale.max = float(b0), float(b1)
            self.boundaries.x = lines[:, 0]
            self.boundaries.y = lines[:, 1]
            self.anchors.x = points[:, 0]
            self.anchors.y = points[:, 1]
            self.anchors.names = names
        self.legend.value = legend_html(self.class_names, sl.classes_present)

    @property
    def png(self) -> widgets.Image:
        """The picture the map shows now."""
        return self.image.image

    def mark_click(self, point: tuple[float, float] | None) -> None:
        with self.click_marker.hold_sync():
            self.click_marker.x = [] if point is None else [point[0]]
            self.click_marker.y = [] if point is None else [point[1]]


class PointView:
    """The input at one point: its picture, its class probabilities as bars, and its coordinates."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = tuple(class_names)
        n = len(self.class_names)
        self.picture = widgets.Image(format="png", layout=widgets.Layout(width=f"{_PREVIEW_PIXELS}px"))
        self.picture.add_class("bw-preview")
        self.x_scale = bq.OrdinalScale()
        self.y_scale = bq.LinearScale(min=0.0, max=1.0)
        self.colour_scale = bq.ColorScale(colors=class_colors(n), min=0, max=max(n - 1, 1))
        self.bars = bq.Bars(
            x=list(self.class_names),
            y=np.zeros(n),
            color=np.arange(n),
            scales={"x": self.x_scale, "y": self.y_scale, "color": self.colour_scale},
            stroke="black",
        )
        self.chart = bq.Figure(
            marks=[self.bars],
            axes=[
                bq.Axis(scale=self.x_scale, label="class"),
                bq.Axis(scale=self.y_scale, orientation="vertical", label="probability", tick_format=".1f"),
            ],
            animation_duration=0,
            fig_margin={"top": 10, "bottom": 45, "left": 50, "right": 10},
            layout=widgets.Layout(width="220px", height="200px"),
        )
        self.chart.add_class("bw-probabilities")
        self.caption = widgets.HTML("<i>click the map to inspect a point</i>")
        self.ui = widgets.VBox([self.picture, self.caption, self.chart], layout=widgets.Layout(width="230px"))

    def show(self, x: torch.Tensor, probabilities: np.ndarray, bounds: tuple[float, float], caption: str) -> None:
        pixels = input_picture(x, bounds)
        if pixels is None:
            values = ", ".join(f"{v:.3g}" for v in x.reshape(-1)[:16].tolist())
            caption = f"{caption}<br>x = [{values}]"
        else:
            self.picture.value = picture_png(pixels)
        with self.bars.hold_sync():
            self.bars.y = np.asarray(probabilities, dtype=float)
        self.caption.value = caption
