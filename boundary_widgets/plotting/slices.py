"""Matplotlib view of a PlaneSlice."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from ..core.slices import PlaneSlice
from ..core.validation import check_choice
from .palette import boundary_lines, rgb_table


def slice_rgb(sl: PlaneSlice, *, shading: str = "labels") -> np.ndarray:
    """``(Rb, Ra, 3)`` uint8 picture of the slice, row 0 at beta_min; the widgets draw the same pixels.

    ``shading="confidence"`` fades each class colour toward white as the top-1 probability drops
    to chance.
    """
    check_choice(shading, "shading", ("labels", "confidence"))
    table = rgb_table(len(sl.class_names))
    rgb = table[sl.labels].astype(np.float32)
    if shading == "confidence":
        chance = 1.0 / len(sl.class_names)
        strength = np.clip((sl.confidence - chance) / (1.0 - chance), 0.0, 1.0)[..., None]
        rgb = 255.0 - strength * (255.0 - rgb)
    return rgb.round().astype(np.uint8)


class SliceDisplay:
    """A slice drawn on matplotlib axes; ``ax_``, ``figure_``, ``image_``, ``lines_`` and ``legend_`` after :meth:`plot`."""

    def __init__(self, sl: PlaneSlice) -> None:
        if not isinstance(sl, PlaneSlice):
            raise TypeError(f"`sl` must be a PlaneSlice; got {type(sl).__name__}.")
        self.slice = sl

    def plot(
        self,
        ax: Axes | None = None,
        *,
        shading: str = "labels",
        boundaries: bool = True,
        legend: bool = True,
        markers: Mapping[str, tuple[float, float]] | None = None,
        title: str | None = None,
    ) -> SliceDisplay:
        import matplotlib.pyplot as plt

        sl = self.slice
        if ax is None:
            _, ax = plt.subplots(figsize=(4.2, 4.0))
        (a0, a1), (b0, b1) = (sl.alphas[0], sl.alphas[-1]), (sl.betas[0], sl.betas[-1])
        self.image_ = ax.imshow(
            slice_rgb(sl, shading=shading),
            origin="lower",
            extent=(a0, a1, b0, b1),
            aspect="auto",
            interpolation="nearest",
        )
        self.lines_ = None
        if boundaries:
            lines = boundary_lines(sl)
            if lines.size:
                (self.lines_,) = ax.plot(lines[:, 0], lines[:, 1], color="black", linewidth=0.8)
        all_markers = {"origin": (0.0, 0.0), **(markers or {})}
        for (name, (alpha, beta)), style in zip(all_markers.items(), ("o", "X", "s", "^", "D", "P", "v"), strict=False):
            ax.plot([alpha], [beta], style, color="white", markeredgecolor="black", markersize=7, label=name)
        colours = rgb_table(len(sl.class_names)) / 255.0
        self.legend_ = None
        if legend:
            handles = [
                Patch(facecolor=colours[k], edgecolor="black", label=sl.class_names[k]) for k in sl.classes_present
            ]
            self.legend_ = ax.legend(
                handles=handles,
                title="class",
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                fontsize="small",
                frameon=False,
            )
        ax.set_xlabel("α along u (L2)")
        ax.set_ylabel("β along v (L2)")
        if title is not None:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def plot_slice(sl: PlaneSlice, ax: Axes | None = None, **kwargs: object) -> SliceDisplay:
    """Draw ``sl`` on ``ax`` (a new figure when None); returns the display, never calls ``plt.show()``."""
    return SliceDisplay(sl).plot(ax, **kwargs)
