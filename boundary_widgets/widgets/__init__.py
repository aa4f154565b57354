"""Interactive views (ipywidgets + bqplot, no custom JavaScript) of the core results, on one Explorer base."""

from .base import Explorer, PointSelection
from .margins import MarginExplorer
from .path_explorer import PathExplorer
from .slice_explorer import SliceExplorer
from .training_explorer import TrainingExplorer

__all__ = ["Explorer", "MarginExplorer", "PathExplorer", "PointSelection", "SliceExplorer", "TrainingExplorer"]
