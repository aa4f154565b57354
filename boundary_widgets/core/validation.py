"""Public argument checks: one message form, naming the argument. Used by every layer of the kit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def as_float_tensor(value: object, name: str) -> torch.Tensor:
    """Convert array-likes to a float32 tensor; refuse anything else with a TypeError."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32)
    if isinstance(value, np.ndarray | np.number | Sequence) and not isinstance(value, str):
        try:
            return torch.as_tensor(np.asarray(value, dtype=np.float32))
        except (TypeError, ValueError) as error:
            raise TypeError(f"`{name}` must be a tensor or an array of numbers; got {value!r:.80}.") from error
    raise TypeError(f"`{name}` must be a torch.Tensor or numpy array; got {type(value).__name__}.")


def check_finite(tensor: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"`{name}` must be finite; it contains NaN or Inf.")


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    return int(value)


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}; got {value!r}.")
    return str(value)


def check_class_index(value: object, name: str, num_classes: int, *, optional: bool = False) -> int | None:
    """A class index in ``[0, num_classes)``: a Python or NumPy int, or a 0-d integer tensor; never a bool.

    ``optional=True`` lets ``None`` through. A negative index is refused (no wrap-around to the last class).
    """
    if value is None and optional:
        return None
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point() and not value.is_complex():
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        kind = "an int" + (" or None" if optional else "")
        raise TypeError(f"`{name}` must be a class index ({kind}); got {type(value).__name__} {value!r:.40}.")
    if not 0 <= value < num_classes:
        raise ValueError(f"`{name}` must be a class index in [0, {num_classes}); got {value}.")
    return int(value)


def check_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
    finite: bool = True,
) -> float:
    """A real number (Python, NumPy or a 0-d tensor; never a bool) within ``[minimum, maximum]``.

    ``exclusive=True`` makes both limits strict. NaN is always refused, infinity unless ``finite=False``.
    """
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"`{name}` must be a number; got {type(value).__name__} {value!r:.40}.")
    number = float(value)
    if np.isnan(number) or (finite and np.isinf(number)):
        raise ValueError(f"`{name}` must be a finite number; got {value!r}.")
    low_fails = minimum is not None and (number <= minimum if exclusive else number < minimum)
    high_fails = maximum is not None and (number >= maximum if exclusive else number > maximum)
    if low_fails or high_fails:
        if maximum is None:
            span = f"{'>' if exclusive else '>='} {minimum:g}"
        elif minimum is None:
            span = f"{'<' if exclusive else '<='} {maximum:g}"
        else:
            span = f"in ({minimum:g}, {maximum:g})" if exclusive else f"in [{minimum:g}, {maximum:g}]"
        raise ValueError(f"`{name}` must be {span}; got {value!r}.")
    return number


def check_bool(value: object, name: str) -> bool:
    """``True`` or ``False`` (also NumPy's); a 1, "yes" or None is refused rather than read as a truth value."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be True or False; got {type(value).__name__} {value!r:.40}.")
    return bool(value)


__all__ = [
    "as_float_tensor",
    "check_bool",
    "check_choice",
    "check_class_index",
    "check_finite",
    "check_number",
    "check_positive_int",
]
