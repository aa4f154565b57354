"""What every view of a result draws, with numpy and contourpy only: class colours, slice pictures,
boundary lines, legends and top-k lists. ``plotting`` (matplotlib) and ``widgets`` (bqplot) both
draw from here, so the two views cannot drift apart."""

from .labels import LEGEND_ENTRIES, NAME_WIDTH, TOP_K, legend_entries, shorten, top_k, undefined_entry
from .palette import class_colors, rgb_table
from .pictures import boundary_boxes, boundary_lines, input_picture, slice_rgb, unproven_rgba

__all__ = [
    "LEGEND_ENTRIES",
    "NAME_WIDTH",
    "TOP_K",
    "boundary_boxes",
    "boundary_lines",
    "class_colors",
    "input_picture",
    "legend_entries",
    "rgb_table",
    "shorten",
    "slice_rgb",
    "top_k",
    "undefined_entry",
    "unproven_rgba",
]
