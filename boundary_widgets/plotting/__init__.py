"""Matplotlib views of core results."""

from .analysis import (
    AnalysisDisplay,
    plot_band_margins,
    plot_borderline_summary,
    plot_class_hulls,
    plot_curvature_spectrum,
)
from .paths import PathDisplay, plot_path
from .slices import SliceDisplay, plot_slice, plot_top_k

__all__ = [
    "AnalysisDisplay",
    "PathDisplay",
    "SliceDisplay",
    "plot_band_margins",
    "plot_borderline_summary",
    "plot_class_hulls",
    "plot_curvature_spectrum",
    "plot_path",
    "plot_slice",
    "plot_top_k",
]
