"""Interactive views (ipywidgets + bqplot, no custom JavaScript) of the core results, on one Explorer base."""

from .base import Explorer, PointSelection
from .compare_explorer import CompareExplorer
from .margins import MarginExplorer
from .path_explorer import PathExplorer
from .slice_explorer import SliceExplorer
from .training_explorer import TrainingExplorer

__all__ = [
    "CompareExplorer",
    "Explorer",
    "MarginExplorer",
    "PathExplorer",
    "PointSelection",
    "SliceExplorer",
    "TrainingExplorer",
]
