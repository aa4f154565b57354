"""Shard results -> one result: per-image fields are declared on the result dataclasses, not listed here.

A result dataclass marks each field that holds one row per image (first axis) with
``field(metadata=PER_IMAGE)``; every other field must be the same in all shards. A list result (one
item per image, as ``find_paths`` returns) is concatenated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

# Metadata of a result dataclass field with one row per image: ``field(metadata=PER_IMAGE)``.
PER_IMAGE = {"per_image": True}


def per_image_fields(result: object) -> tuple[str, ...]:
    """The names of the fields of a result dataclass that hold one row per image."""
    if not dataclasses.is_dataclass(result):
        return ()
    return tuple(field.name for field in dataclasses.fields(result) if field.metadata.get("per_image", False))


def count_rows(result: object) -> int:
    """How many images a result holds; ``TypeError`` for a result that cannot be sharded, ``ValueError`` when its
    per-image fields disagree."""
    if isinstance(result, list):
        return len(result)
    names = per_image_fields(result)
    if not names:
        raise TypeError(f"a result of type {type(result).__name__} has no per-image fields; it cannot be sharded.")
    counts = {name: len(getattr(result, name)) for name in names}
    if len(set(counts.values())) != 1:
        raise ValueError(f"the per-image fields of a {type(result).__name__} differ in length: {counts}.")
    return next(iter(counts.values()))


def _concat_values(values: list[object], where: str) -> object:
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(values)
    if isinstance(first, np.ndarray):
        return np.concatenate(values)
    if isinstance(first, tuple | list):
        return type(first)(item for value in values for item in value)
    raise TypeError(f"cannot concatenate the per-image field {where} of type {type(first).__name__}.")


def _same(values: list[object]) -> bool:
    arrays = [np.asarray(value) for value in values if isinstance(value, np.ndarray | torch.Tensor)]
    return all(
        array.shape == arrays[0].shape and np.array_equal(array, arrays[0], equal_nan=array.dtype.kind == "f")
        for array in arrays
    )


def merge_results(parts: Sequence[object]) -> object:
    """Shard results (in input order) -> one result, as if computed on all their images at once."""
    if not parts:
        raise ValueError("`parts` must hold at least one shard result.")
    first = parts[0]
    if isinstance(first, list):
        return [item for part in parts for item in part]
    name = type(first).__name__
    per_image = per_image_fields(first)
    if not per_image:
        raise TypeError(f"cannot merge shard results of type {name}: it declares no per-image fields.")
    if any(type(part) is not type(first) for part in parts):
        raise TypeError(f"cannot merge shard results of different types: {sorted({type(p).__name__ for p in parts})}.")
    if len(parts) == 1:
        return first
    fields = {}
    for field in dataclasses.fields(first):
        values = [getattr(part, field.name) for part in parts]
        if field.name in per_image:
            fields[field.name] = _concat_values(values, f"{name}.{field.name}")
        elif _same(values):
            fields[field.name] = values[0]
        else:
            # Merging it as shared would silently keep the first shard's rows.
            raise TypeError(
                f"cannot merge {name}.{field.name}: it differs between shards and is not declared per image."
            )
    return type(first)(**fields)


def on_cpu(value: object) -> object:
    """The result with its tensors on the CPU: a GPU worker's result must unpickle on a client without one."""
    if isinstance(value, list):
        return [on_cpu(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        moved = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if isinstance(item, torch.Tensor) and item.device.type != "cpu":
                moved[field.name] = item.cpu()
        return dataclasses.replace(value, **moved) if moved else value
    return value


__all__ = ["PER_IMAGE", "count_rows", "merge_results", "on_cpu", "per_image_fields"]
