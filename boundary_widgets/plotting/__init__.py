"""Matplotlib views of core results."""

from .analysis import (
    AnalysisDisplay,
    plot_band_margins,
    plot_borderline_summary,
    plot_class_hulls,
    plot_curvature_spectrum,
)
from .palette import boundary_lines, class_colors, rgb_table
from .paths import PathDisplay, plot_path
from .slices import SliceDisplay, plot_slice, slice_rgb

__all__ = [
    "AnalysisDisplay",
    "PathDisplay",
    "SliceDisplay",
    "boundary_lines",
    "class_colors",
    "plot_band_margins",
    "plot_borderline_summary",
    "plot_class_hulls",
    "plot_curvature_spectrum",
    "plot_path",
    "plot_slice",
    "rgb_table",
    "slice_rgb",
]
