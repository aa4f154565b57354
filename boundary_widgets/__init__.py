"""boundary_widgets: see and measure the decision boundaries of image classifiers.

The core (computation: torch, numpy, scipy) is imported eagerly; the zoo,
``plot_*`` (matplotlib) and the widgets (ipywidgets/bqplot) load on first use so that
``import boundary_widgets`` costs little more than ``import torch``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .core import (
    Cancelled,
    Certificate,
    Classifier,
    ConnectingPath,
    CurvatureResult,
    Dataset,
    DeepFoolResult,
    FeatureSpace,
    LineProfile,
    PathCertificate,
    Plane,
    PlaneSlice,
    ProofOptions,
    SparseFoolResult,
    analysis,
    certify_path,
    clear_slice_cache,
    compute_slice,
    curvature,
    dct,
    deepfool,
    directions,
    find_path,
    find_paths,
    iter_slice,
    line_profile,
    principal_curvatures,
    sparsefool,
)

__version__ = "0.1.0"

# Public names loaded on first use (the UI layers and the zoo): name -> module.
_LAZY = {
    "zoo": "boundary_widgets.zoo",
    "render": "boundary_widgets.render",
    "plot_slice": "boundary_widgets.plotting",
    "SliceDisplay": "boundary_widgets.plotting",
    "plot_path": "boundary_widgets.plotting",
    "PathDisplay": "boundary_widgets.plotting",
    "plotting": "boundary_widgets.plotting",
    "plot_band_margins": "boundary_widgets.plotting",
    "plot_curvature_spectrum": "boundary_widgets.plotting",
    "plot_borderline_summary": "boundary_widgets.plotting",
    "plot_class_hulls": "boundary_widgets.plotting",
    "plot_top_k": "boundary_widgets.plotting",
    "AnalysisDisplay": "boundary_widgets.plotting",
    "MarginExplorer": "boundary_widgets.widgets",
    "widgets": "boundary_widgets.widgets",
    "SliceExplorer": "boundary_widgets.widgets",
    "PathExplorer": "boundary_widgets.widgets",
    "Explorer": "boundary_widgets.widgets",
    "TrainingExplorer": "boundary_widgets.widgets",
    "CompareExplorer": "boundary_widgets.widgets",
    "presets": "boundary_widgets.core.presets",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'boundary_widgets' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    return module if module.__name__.endswith(name) else getattr(module, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ConnectingPath",
    "LineProfile",
    "find_path",
    "find_paths",
    "line_profile",
    "CurvatureResult",
    "curvature",
    "dct",
    "principal_curvatures",
    "FeatureSpace",
    "analysis",
    "Cancelled",
    "Classifier",
    "Dataset",
    "DeepFoolResult",
    "Plane",
    "PlaneSlice",
    "Certificate",
    "ProofOptions",
    "PathCertificate",
    "certify_path",
    "compute_slice",
    "clear_slice_cache",
    "iter_slice",
    "deepfool",
    "directions",
    "SparseFoolResult",
    "sparsefool",
    *_LAZY,
]
