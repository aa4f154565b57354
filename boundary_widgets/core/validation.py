"""Public argument checks: one message form, naming the argument. Used by every layer of the kit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def as_float_tensor(value: object, name: str) -> torch.Tensor:
    """Convert array-likes to a float32 tensor; refuse anything else with a TypeError."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32)
    if isinstance(value, np.ndarray | Sequence) and not isinstance(value, str):
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
