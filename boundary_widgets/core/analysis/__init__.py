"""Boundary analyses from the papers: band margins, curvature spectrum and detection, borderline samples, hulls."""

from .borderline import (
    BorderlineSamples,
    EmbeddingLinearity,
    TrajectoryComplexity,
    borderline_pairs,
    borderline_samples,
    embedding_linearity,
    trajectory_label_changes,
)
from .curvature import CurvatureScores, CurvatureSpectrum, curvature_score, curvature_spectra, curvature_spectrum
from .detection import ClassCurvatures, Detection, DetectionReport, class_curvatures, detect, evaluate_detector
from .feature_space import ClassHulls, FeatureSpace, class_hulls
from .hull import HullMembership, hull_membership
from .margins import BandMargins, band_direction, band_margins

__all__ = [
    "BandMargins",
    "BorderlineSamples",
    "ClassCurvatures",
    "ClassHulls",
    "CurvatureScores",
    "CurvatureSpectrum",
    "Detection",
    "DetectionReport",
    "EmbeddingLinearity",
    "FeatureSpace",
    "HullMembership",
    "TrajectoryComplexity",
    "band_direction",
    "band_margins",
    "borderline_pairs",
    "borderline_samples",
    "class_curvatures",
    "class_hulls",
    "curvature_score",
    "curvature_spectra",
    "curvature_spectrum",
    "detect",
    "embedding_linearity",
    "evaluate_detector",
    "hull_membership",
    "trajectory_label_changes",
]
