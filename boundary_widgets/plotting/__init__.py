"""Matplotlib views of core results."""

from .palette import boundary_lines, class_colors, rgb_table
from .slices import SliceDisplay, plot_slice, slice_rgb

__all__ = ["SliceDisplay", "boundary_lines", "class_colors", "plot_slice", "rgb_table", "slice_rgb"]
