"""Direction generators behind one interface: ``make(kind, clf, x, **params) -> Direction``."""

from . import basic, structured  # noqa: F401  (registers the built-in kinds)
from .registry import (
    Direction,
    DirectionKind,
    Parameter,
    available,
    check_parameters,
    get,
    kinds,
    make,
    make_batch,
    register,
)

__all__ = [
    "Direction",
    "DirectionKind",
    "Parameter",
    "available",
    "check_parameters",
    "get",
    "kinds",
    "make",
    "make_batch",
    "register",
]
