"""Computation only: torch, numpy and scipy. Never imports a plotting or widget library."""

from . import directions
from .classifier import Classifier
from .deepfool import DeepFoolResult, deepfool
from .plane import Plane
from .slices import PlaneSlice, compute_slice

__all__ = ["Classifier", "DeepFoolResult", "Plane", "PlaneSlice", "compute_slice", "deepfool", "directions"]
