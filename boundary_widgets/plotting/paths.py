"""Matplotlib view of a ConnectingPath: images along it and class probabilities, against the straight line."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..core.paths import ConnectingPath
from ..core.validation import check_positive_int
from ..render import class_colors, input_picture, shorten


class PathDisplay:
    """A path drawn on a matplotlib figure; ``figure_``, ``ax_`` (probabilities), ``image_axes_`` and ``lines_``
    (name -> Line2D) after :meth:`plot`."""

    def __init__(self, path: ConnectingPath) -> None:
        if not isinstance(path, ConnectingPath):
            raise TypeError(f"`path` must be a ConnectingPath; got {type(path).__name__}.")
        self.path = path

    def plot(
        self,
        figure: Figure | None = None,
        *,
        n_images: int = 8,
        top_k: int = 3,
        straight: bool = True,
        title: str | None = None,
    ) -> PathDisplay:
        """``n_images`` inputs evenly spaced along the path, above the probability of the path's class (and of
        the ``top_k - 1`` other classes that come closest) along it; ``straight`` adds the straight line's."""
        import matplotlib.pyplot as plt

        check_positive_int(n_images, "n_images", minimum=2)
        check_positive_int(top_k, "top_k")
        path = self.path
        if figure is None:
            figure = plt.figure(figsize=(max(6.0, 0.9 * n_images), 3.8))
        grid = figure.add_gridspec(2, n_images, height_ratios=(1.0, 2.2), hspace=0.45)
        fraction = path.positions / path.length if path.length > 0 else np.zeros_like(path.positions)

        # Images at evenly spaced arc lengths, titled with the class of the nearest checked point.
        at = np.linspace(0.0, path.length, n_images)
        images = path.points_at(at).numpy()
        nearest = np.abs(path.positions[None, :] - at[:, None]).argmin(1)
        low, high = path.bounds
        self.image_axes_ = []
        for k in range(n_images):
            ax = figure.add_subplot(grid[0, k])
            picture = input_picture(images[k], (low, high))
            if picture is None:  # a vector of features: one strip
                picture = input_picture(images[k].reshape(1, -1), (low, high))
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            label = int(path.labels[nearest[k]])
            ax.set_title(
                f"{shorten(path.class_names[label], 14)} {path.probabilities[nearest[k], label]:.2f}",
                fontsize="small",
                color="black" if label == path.label else "crimson",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            self.image_axes_.append(ax)

        ax = figure.add_subplot(grid[1, :])
        colours = class_colors(len(path.class_names))
        others = [k for k in np.argsort(-path.probabilities.max(0)) if k != path.label][: top_k - 1]
        self.lines_ = {}
        (self.lines_[path.class_name],) = ax.plot(
            fraction,
            path.confidences,
            color=colours[path.label],
            linewidth=2.0,
            label=f"path: {shorten(path.class_name)}",
        )
        for k in others:
            name = path.class_names[k]
            (self.lines_[name],) = ax.plot(
                fraction, path.probabilities[:, k], color=colours[k], linewidth=1.0, label=f"path: {shorten(name)}"
            )
        if straight:
            (self.lines_["straight"],) = ax.plot(
                path.line.t,
                path.line.probabilities[:, path.label],
                color="0.35",
                linestyle="--",
                linewidth=1.2,
                label=f"straight line: {shorten(path.class_name)}",
            )
        for position in path.anchor_positions[1:-1] / max(path.length, 1e-12):
            ax.axvline(position, color="0.8", linewidth=0.6, zorder=0)
        outside = path.labels != path.label
        if outside.any():
            ax.fill_between(fraction, 0, 1, where=outside, color="crimson", alpha=0.15, label="outside the class")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"position along the path (fraction of its length {path.length:.3g}; grey ticks: anchors)")
        ax.set_ylabel("probability")
        ax.legend(loc="lower left", fontsize="small", frameon=False)
        status = "valid" if path.valid else "not valid"
        figure.suptitle(
            title
            if title is not None
            else f"path in class {path.class_name!r}: {status}, {path.n_anchors} anchors, "
            f"length / straight = {path.length / max(path.straight_length, 1e-12):.3f}",
            fontsize="medium",
        )
        self.ax_ = ax
        self.figure_ = figure
        return self


def plot_path(path: ConnectingPath, figure: Figure | None = None, **kwargs: object) -> PathDisplay:
    """Draw ``path`` on ``figure`` (a new one when None); returns the display, never calls ``plt.show()``."""
    return PathDisplay(path).plot(figure, **kwargs)


__all__ = [
    "PathDisplay",
    "plot_path",
]
