"""Matplotlib views of a PlaneSlice and of a probability vector's top classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from ..core.slices import PlaneSlice
from ..core.validation import check_positive_int
from ..render import (
    LEGEND_ENTRIES,
    NAME_WIDTH,
    TOP_K,
    boundary_boxes,
    boundary_lines,
    class_colors,
    legend_entries,
    shorten,
    slice_rgb,
    top_k,
    undefined_entry,
    unproven_rgba,
)


class SliceDisplay:
    """A slice drawn on matplotlib axes; ``ax_``, ``figure_``, ``image_``, ``lines_``, ``legend_`` (the classes) and
    ``markers_legend_`` (what each marker is) after :meth:`plot`,
    and for a certified slice ``proof_image_`` (the unproven area shaded) and ``proof_boxes_`` (the boundary leaves)."""

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
        max_legend_entries: int = LEGEND_ENTRIES,
        markers: Mapping[str, tuple[float, float]] | None = None,
        title: str | None = None,
        proof: bool = True,
    ) -> SliceDisplay:
        """Draw the slice's classes (the pixels of :func:`~boundary_widgets.render.slice_rgb`) and boundaries.

        ``proof`` (a slice of ``method="certified"`` only): shade each cell by its unproven share
        (:func:`~boundary_widgets.render.unproven_rgba`) and outline the unproven leaves in red
        (:func:`~boundary_widgets.render.boundary_boxes`).

        The legend names the classes present (shortened), largest area first; beyond ``max_legend_entries`` one line says how many more there are.
        """
        import matplotlib.pyplot as plt

        max_legend_entries = check_positive_int(max_legend_entries, "max_legend_entries")
        sl = self.slice
        pixels = slice_rgb(sl, shading=shading)
        if ax is None:
            _, ax = plt.subplots(figsize=(4.2, 4.0))
        (a0, a1), (b0, b1) = (sl.alphas[0], sl.alphas[-1]), (sl.betas[0], sl.betas[-1])
        self.image_ = ax.imshow(
            pixels,
            origin="lower",
            extent=(a0, a1, b0, b1),
            aspect="auto",
            interpolation="nearest",
        )
        self.proof_image_ = self.proof_boxes_ = None
        if proof and sl.certificate is not None:
            self.proof_image_ = ax.imshow(
                unproven_rgba(sl), origin="lower", extent=(a0, a1, b0, b1), aspect="auto", interpolation="nearest"
            )
            boxes = boundary_boxes(sl)
            if boxes.size:
                (self.proof_boxes_,) = ax.plot(boxes[:, 0], boxes[:, 1], color="red", linewidth=0.5)
        self.lines_ = None
        if boundaries:
            lines = boundary_lines(sl)
            if lines.size:
                (self.lines_,) = ax.plot(lines[:, 0], lines[:, 1], color="black", linewidth=0.8)
        all_markers = {"origin": (0.0, 0.0), **(markers or {})}
        marker_handles = []
        for (name, (alpha, beta)), style in zip(all_markers.items(), ("o", "X", "s", "^", "D", "P", "v"), strict=False):
            marker_handles += ax.plot(
                [alpha], [beta], style, color="white", markeredgecolor="black", markersize=7, label=name
            )
        self.legend_ = self.markers_legend_ = None
        if legend:
            entries = legend_entries(sl, max_entries=max_legend_entries)
            handles = [
                Patch(facecolor=colour, edgecolor="black", label=shorten(name, NAME_WIDTH))
                for _, name, _, colour in entries
            ]
            more = len(sl.classes_present) - len(entries)
            if more > 0:
                handles.append(Patch(facecolor="none", edgecolor="none", label=f"and {more} more"))
            undefined = undefined_entry(sl)
            if undefined is not None:
                name, share, colour = undefined
                handles.append(Patch(facecolor=colour, edgecolor="black", hatch="//", label=f"{name} {share:.0%}"))
            self.legend_ = ax.legend(
                handles=handles,
                title="class",
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                fontsize="small",
                frameon=False,
            )
        if legend and markers is not None:
            ax.add_artist(self.legend_)  # a second legend replaces the axes' own: keep the classes' one drawn
            self.markers_legend_ = ax.legend(
                handles=marker_handles,
                title="marker",
                loc="lower left",
                bbox_to_anchor=(1.01, 0.0),
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


def plot_top_k(
    probabilities: object,
    class_names: Sequence[str],
    ax: Axes | None = None,
    *,
    k: int = TOP_K,
    title: str | None = None,
) -> Axes:
    """Horizontal bars of the ``k`` most probable classes (most probable on top), by shortened name,
    each in its class colour; the matplotlib twin of the widgets' probability panel. Returns ``ax``."""
    import matplotlib.pyplot as plt

    entries = top_k(probabilities, class_names, k=k)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.0, 0.3 * len(entries) + 0.8))
    colours = class_colors(len(class_names))
    positions = np.arange(len(entries))[::-1]
    ax.barh(
        positions,
        [p for _, _, p in entries],
        color=[colours[index] for index, _, _ in entries],
        edgecolor="black",
        linewidth=0.5,
    )
    ax.set_yticks(positions, [shorten(name, NAME_WIDTH) for _, name, _ in entries], fontsize="small")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("probability")
    if title is not None:
        ax.set_title(title)
    return ax


__all__ = [
    "SliceDisplay",
    "plot_slice",
    "plot_top_k",
]
