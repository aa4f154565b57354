"""Matplotlib views of the boundary analyses (band margins, curvature spectrum, borderline samples, hulls)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from matplotlib.axes import Axes

from ..core.analysis import BandMargins, BorderlineSamples, ClassHulls, CurvatureSpectrum

MAX_TICK_LABELS = 30  # beyond this many classes, one tick label per bar is unreadable


class AnalysisDisplay:
    """A figure of one analysis result; ``ax_`` and ``figure_`` after drawing (the scikit-learn display form)."""

    def __init__(self, result: object, ax: Axes) -> None:
        self.result = result
        self.ax_ = ax
        self.figure_ = ax.figure


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


def _check(result: object, kind: type, name: str) -> None:
    if not isinstance(result, kind):
        raise TypeError(f"`{name}` must be a {kind.__name__}; got {type(result).__name__}.")


def plot_band_margins(result: BandMargins, ax: Axes | None = None, *, log: bool = True) -> AnalysisDisplay:
    """Per band: the spread of margins (box, 5–95 %) and the median (dot), lowest frequency on the left.

    Images whose band-constrained DeepFool did not converge are left out of the boxes and counted in the labels.
    """
    _check(result, BandMargins, "result")
    ax = _axes(ax, (1.0 + 0.6 * len(result.band_names), 3.2))
    per_band = [result.margins[result.converged[:, j], j] for j in range(len(result.band_names))]
    positions = np.arange(len(per_band))
    ax.boxplot(
        [values if values.size else [np.nan] for values in per_band],
        positions=positions,
        whis=(5, 95),
        showfliers=False,
        widths=0.5,
    )
    finite = np.isfinite(result.medians)
    ax.plot(positions[finite], result.medians[finite], "o-", color="tab:red", label="median")
    labels = [
        f"{name}\n({int((~result.converged[:, j]).sum())} n.c.)" if not result.converged[:, j].all() else name
        for j, name in enumerate(result.band_names)
    ]
    ax.set_xticks(positions, labels)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("DCT band (low → high frequency)")
    ax.set_ylabel("margin along the band (L2)")
    ax.legend(frameon=False, fontsize="small")
    return AnalysisDisplay(result, ax)


def plot_curvature_spectrum(result: CurvatureSpectrum, ax: Axes | None = None) -> AnalysisDisplay:
    """The principal curvatures in descending order, the flat band shaded (±``flat_tolerance``)."""
    _check(result, CurvatureSpectrum, "result")
    ax = _axes(ax, (4.5, 3.2))
    ax.axhspan(-result.flat_tolerance, result.flat_tolerance, color="0.9", label="near flat")
    ax.plot(np.arange(result.values.size), result.values, ".", color="tab:blue")
    ax.axhline(0.0, color="black", linewidth=0.6)
    share = "" if np.isnan(result.flat_share) else f", {100 * result.flat_share:.0f}% flat"
    averaged = "" if result.n_bases is None else f"\naveraged over {result.n_bases} tangent bases"
    ax.set_title(f"boundary {result.original}→{result.reached}{share}{averaged}", fontsize="medium")
    ax.set_xlabel("principal direction (sorted)")
    ax.set_ylabel("curvature (1 / L2)")
    ax.legend(frameon=False, fontsize="small")
    return AnalysisDisplay(result, ax)


def plot_borderline_summary(result: BorderlineSamples, ax: Axes | None = None) -> AnalysisDisplay:
    """How the bisections ended: successes and each kind of failure, as bars."""
    _check(result, BorderlineSamples, "result")
    ax = _axes(ax, (4.5, 3.0))
    counts = Counter("borderline" if not f else f for f in result.failure)
    names = sorted(counts, key=lambda name: (name != "borderline", name))
    ax.barh(
        names, [counts[name] for name in names], color=["tab:green" if n == "borderline" else "tab:gray" for n in names]
    )
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.set_title(f"{result.source}→{result.target}, |p_s − p_t| < {result.threshold:g}", fontsize="medium")
    return AnalysisDisplay(result, ax)


def plot_class_hulls(result: ClassHulls, ax: Axes | None = None) -> AnalysisDisplay:
    """Per class: the share of its hull labelled as it, and the share of its test features outside the hull.

    With more than ``MAX_TICK_LABELS`` classes the axis is numbered by matplotlib instead of one label a bar.
    """
    _check(result, ClassHulls, "result")
    ax = _axes(ax, (5.0, 3.0))
    x = np.arange(result.classes.size)
    ax.bar(x - 0.2, result.hull_accuracy, width=0.4, label="hull labelled as the class")
    ax.bar(x + 0.2, result.test_outside, width=0.4, label="test features outside the hull")
    if x.size <= MAX_TICK_LABELS:
        ax.set_xticks(x, [str(c) for c in result.classes])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("class")
    ax.set_ylabel("share")
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    return AnalysisDisplay(result, ax)


__all__ = [
    "MAX_TICK_LABELS",
    "AnalysisDisplay",
    "plot_band_margins",
    "plot_borderline_summary",
    "plot_class_hulls",
    "plot_curvature_spectrum",
]
