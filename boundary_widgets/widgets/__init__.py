"""Interactive views (ipywidgets + bqplot, no custom JavaScript) of the core results."""

from .path_explorer import PathExplorer
from .slice_explorer import PointSelection, SliceExplorer

__all__ = ["PathExplorer", "PointSelection", "SliceExplorer"]
