"""Embedded data sets: scikit-learn's bundled digits and half-moons, and the DCT-band control, with fixed splits.

The arrays ship in ``datasets/NAME.npz``, written once from scikit-learn by ``scripts/make_zoo_data.py``
(a test keeps them equal), so that loading a data set imports no scikit-learn.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..core import dct
from ..core.dataset import Dataset

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

_DCT_BAND_SIZE = 2000  # the shipped split is of this many images


def path(name: str) -> Traversable:
    """The shipped arrays of data set ``name`` (``"digits"``, ``"moons"`` or ``"dct_band"``)."""
    return resources.files(__package__).joinpath("datasets", f"{name}.npz")


def _load(name: str) -> dict[str, np.ndarray]:
    with path(name).open("rb") as handle, np.load(handle) as stored:
        return {key: stored[key] for key in stored.files}


def _dataset(name: str, class_names: tuple[str, ...]) -> Dataset:
    arrays = _load(name)
    return Dataset(
        torch.from_numpy(arrays["inputs"]),
        torch.from_numpy(arrays["labels"]),
        class_names,
        arrays["train"],
        arrays["test"],
    )


def digits() -> Dataset:
    """scikit-learn's 1,797 bundled 8×8 digits, pixels scaled to [0, 1], shape (1, 8, 8)."""
    return _dataset("digits", tuple(str(k) for k in range(10)))


def moons() -> Dataset:
    """scikit-learn's two interleaving half-moons in the plane: 1,000 points, noise 0.15, seed 0; shape (2,)."""
    return _dataset("moons", ("upper moon", "lower moon"))


def dct_band_labels() -> np.ndarray:
    """The labels of :func:`dct_band`, alternating classes, ``(2000,)`` int64."""
    return np.arange(_DCT_BAND_SIZE, dtype=np.int64) % 2


def dct_band(*, band: int = 3, signal: float = 0.3, noise: float = 0.1) -> Dataset:
    """2,000 8×8 images whose only discriminative feature sits in one DCT band (the *Hold me tight!* control).

    Every image is ``0.5`` plus white Gaussian noise (std ``noise`` on every DCT coefficient) with its
    component along a fixed unit direction ``a`` of band ``band`` of :func:`dct.bands` replaced by
    ``±signal``: the class is the sign. A model trained on it should be invariant to every other
    band (it sees them vary) and have a margin of about ``signal`` along band ``band``.
    """
    n = _DCT_BAND_SIZE
    generator = np.random.default_rng(0)
    basis = dct.bands((1, 8, 8))[band].basis.double().numpy()  # (64, m)
    direction = basis @ generator.standard_normal(basis.shape[1])
    direction /= np.linalg.norm(direction)
    labels = dct_band_labels()
    pixels = noise * generator.standard_normal((n, 64))
    pixels += np.outer((2 * labels - 1) * signal - pixels @ direction, direction)
    images = torch.as_tensor(np.clip(0.5 + pixels, 0.0, 1.0).reshape(n, 1, 8, 8), dtype=torch.float32)
    split = _load("dct_band")
    return Dataset(images, torch.as_tensor(labels), ("minus", "plus"), split["train"], split["test"])


__all__ = [
    "dct_band",
    "dct_band_labels",
    "digits",
    "moons",
    "path",
]
