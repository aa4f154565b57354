"""Computation only: torch, numpy and scipy. Never imports a plotting or widget library."""

from . import curvature, dct, directions
from .classifier import Classifier
from .curvature import CurvatureResult, principal_curvatures
from .deepfool import DeepFoolResult, deepfool
from .plane import Plane
from .slices import PlaneSlice, compute_slice

__all__ = [
    "Classifier",
    "CurvatureResult",
    "DeepFoolResult",
    "Plane",
    "PlaneSlice",
    "compute_slice",
    "curvature",
    "dct",
    "deepfool",
    "directions",
    "principal_curvatures",
]
