"""Bound propagation for certified slices: plain torch, forward affine bounds in the plane's two coordinates.

- :mod:`.affine`: :class:`Bounds` (affine lower/upper bounds over boxes) and the relaxations of activations;
- :mod:`.graph`: the model traced with ``torch.fx``, every operator checked to have a bound before any work;
- :mod:`.engine`: :func:`bound_cells`, lower bounds of the margin over boxes, with TF32 and autocast off.
"""

from .affine import Bounds
from .engine import CellBounder, CellMargins, bound_cells, exact_float32
from .graph import FUNCTION_BOUNDS, METHOD_BOUNDS, MODULE_BOUNDS, UnsupportedModelError

__all__ = [
    "FUNCTION_BOUNDS",
    "METHOD_BOUNDS",
    "MODULE_BOUNDS",
    "Bounds",
    "CellBounder",
    "CellMargins",
    "UnsupportedModelError",
    "bound_cells",
    "exact_float32",
]
