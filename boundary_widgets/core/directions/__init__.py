"""Direction generators behind one interface: ``make(kind, clf, x, **params) -> Direction``."""

from . import basic, structured  # noqa: F401  (registers the built-in kinds)
from .params import BandSpec, Basis, Bool, Choice, ClassIndex, Float, Image, Int, Parameter
from .registry import (
    Direction,
    DirectionKind,
    available,
    check_parameters,
    direction_from_json,
    direction_to_json,
    get,
    kinds,
    make,
    make_batch,
    register,
)

__all__ = [
    "BandSpec",
    "Basis",
    "Bool",
    "Choice",
    "ClassIndex",
    "Direction",
    "DirectionKind",
    "Float",
    "Image",
    "Int",
    "Parameter",
    "available",
    "check_parameters",
    "direction_from_json",
    "direction_to_json",
    "get",
    "kinds",
    "make",
    "make_batch",
    "register",
]
