"""Interactive views (ipywidgets + bqplot, no custom JavaScript) of the core results."""

from .slice_explorer import PointSelection, SliceExplorer

__all__ = ["PointSelection", "SliceExplorer"]
