"""Computation only: torch, numpy and scipy. Never imports a plotting or widget library."""

from . import analysis, curvature, dct, directions
from .analysis import FeatureSpace
from .classifier import Classifier
from .curvature import CurvatureResult, principal_curvatures
from .dataset import Dataset
from .deepfool import DeepFoolResult, deepfool
from .paths import ConnectingPath, LineProfile, find_path, find_paths, line_profile
from .plane import Plane
from .progress import Cancelled
from .slices import (
    Certificate,
    PathCertificate,
    PlaneSlice,
    ProofOptions,
    certify_path,
    clear_slice_cache,
    compute_slice,
    iter_slice,
)
from .sparsefool import SparseFoolResult, sparsefool

__all__ = [
    "Cancelled",
    "Certificate",
    "Classifier",
    "ConnectingPath",
    "CurvatureResult",
    "Dataset",
    "DeepFoolResult",
    "FeatureSpace",
    "LineProfile",
    "PathCertificate",
    "Plane",
    "PlaneSlice",
    "ProofOptions",
    "SparseFoolResult",
    "analysis",
    "certify_path",
    "clear_slice_cache",
    "compute_slice",
    "curvature",
    "dct",
    "deepfool",
    "directions",
    "find_path",
    "find_paths",
    "iter_slice",
    "line_profile",
    "principal_curvatures",
    "sparsefool",
]
