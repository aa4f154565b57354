"""Classification of a plane through an input: the label map and its margins.

- :mod:`.options`: :class:`SliceOptions`, the one checked options object, and the size limits;
- :mod:`.points`: point evaluation in chunks sized to a memory budget and chosen by speed, autocast,
  channels_last;
- :mod:`.frames`: the dense and the adaptive (coarse-to-fine lattice) computations;
- :mod:`.certified`: the certified computation (proven cells, by :mod:`boundary_widgets.core.bounds`);
- :mod:`.cache`: the process-wide cache of finished slices;
- :mod:`.api`: :func:`compute_slice` and :func:`iter_slice`.
"""

from .api import check_slice_arguments, compute_slice, iter_slice
from .cache import DEFAULT_CACHE_BYTES, clear_slice_cache
from .certified import PathCertificate, certify_path
from .frames import SLICE_METHODS
from .options import (
    DEFAULT_METHOD,
    DEFAULT_SAFETY_MARGIN,
    MAX_RESOLUTION,
    MAX_RESULT_BYTES,
    PRECISIONS,
    RESULT_BYTES_PER_CELL,
    Extent,
    ProofOptions,
    Resolution,
    SliceOptions,
    grid_axes,
    normalize_extent,
    normalize_resolution,
)
from .points import (
    CPU_CHUNK_BYTES,
    CPU_CONV_CHUNK_BYTES,
    DEFAULT_MEMORY_BUDGET,
    PointEvaluation,
    chunk_budget,
    chunk_candidates,
    chunk_size,
    default_resolution,
    evaluate_plane_points,
    input_memory_format,
)
from .request import ModelChangedError
from .result import Certificate, PlaneSlice

__all__ = [
    "CPU_CHUNK_BYTES",
    "CPU_CONV_CHUNK_BYTES",
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_METHOD",
    "DEFAULT_SAFETY_MARGIN",
    "MAX_RESOLUTION",
    "MAX_RESULT_BYTES",
    "PRECISIONS",
    "RESULT_BYTES_PER_CELL",
    "SLICE_METHODS",
    "Certificate",
    "Extent",
    "ModelChangedError",
    "PathCertificate",
    "PlaneSlice",
    "PointEvaluation",
    "ProofOptions",
    "Resolution",
    "SliceOptions",
    "certify_path",
    "check_slice_arguments",
    "chunk_budget",
    "chunk_candidates",
    "chunk_size",
    "clear_slice_cache",
    "compute_slice",
    "default_resolution",
    "evaluate_plane_points",
    "grid_axes",
    "input_memory_format",
    "iter_slice",
    "normalize_extent",
    "normalize_resolution",
]
