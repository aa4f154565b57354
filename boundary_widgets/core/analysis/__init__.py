"""Boundary analyses from the papers: band margins, curvature spectrum and detection, borderline samples, hulls."""

from .borderline import (
    BorderlineSamples,
    EmbeddingLinearity,
    TrajectoryComplexity,
    borderline_samples,
    embedding_linearity,
    trajectory_label_changes,
)
from .curvature import CurvatureScores, CurvatureSpectrum, curvature_score, curvature_spectrum
from .feature_space import ClassHulls, FeatureSpace, class_hulls
from .hull import HullMembership, hull_membership
from .margins import BandMargins, band_direction, band_margins

__all__ = [
    "BandMargins",
    "BorderlineSamples",
    "ClassHulls",
    "CurvatureScores",
    "CurvatureSpectrum",
    "EmbeddingLinearity",
    "FeatureSpace",
    "HullMembership",
    "TrajectoryComplexity",
    "band_direction",
    "band_margins",
    "borderline_samples",
    "class_hulls",
    "curvature_score",
    "curvature_spectrum",
    "embedding_linearity",
    "hull_membership",
    "trajectory_label_changes",
]
