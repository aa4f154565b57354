"""Embedded data sets: scikit-learn's bundled digits and synthetic sets, with fixed splits."""

from __future__ import annotations

import numpy as np
import torch

from ..core import dct
from ..core.dataset import Dataset


def _split(labels: np.ndarray, test_size: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split  # scikit-learn loads only with a data set

    indices = np.arange(labels.size)
    train, test = train_test_split(indices, test_size=test_size, random_state=0, stratify=labels)
    return np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)


def digits() -> Dataset:
    """scikit-learn's 1,797 bundled 8×8 digits, pixels scaled to [0, 1], shape (1, 8, 8)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = bunch.target.astype(np.int64)
    train, test = _split(labels)
    return Dataset(images, torch.as_tensor(labels), tuple(str(k) for k in bunch.target_names), train, test)


def moons(n: int = 1000, noise: float = 0.15) -> Dataset:
    """scikit-learn's two interleaving half-moons in the plane (seeded), shape (2,)."""
    from sklearn.datasets import make_moons

    points, labels = make_moons(n_samples=n, noise=noise, random_state=0)
    train, test = _split(labels)
    return Dataset(
        torch.as_tensor(points, dtype=torch.float32),
        torch.as_tensor(labels.astype(np.int64)),
        ("upper moon", "lower moon"),
        train,
        test,
    )


def dct_band(n: int = 2000, *, band: int = 3, signal: float = 0.3, noise: float = 0.1) -> Dataset:
    """8×8 images whose only discriminative feature sits in one DCT band (the *Hold me tight!* control).

    Every image is ``0.5`` plus white Gaussian noise (std ``noise`` on every DCT coefficient) with its
    component along a fixed unit direction ``a`` of band ``band`` of :func:`dct.bands` replaced by
    ``±signal``: the class is the sign. A model trained on it should be invariant to every other
    band (it sees them vary) and have a margin of about ``signal`` along band ``band``.
    """
    generator = np.random.default_rng(0)
    basis = dct.bands((1, 8, 8))[band].basis.double().numpy()  # (64, m)
    direction = basis @ generator.standard_normal(basis.shape[1])
    direction /= np.linalg.norm(direction)
    labels = np.arange(n) % 2
    pixels = noise * generator.standard_normal((n, 64))
    pixels += np.outer((2 * labels - 1) * signal - pixels @ direction, direction)
    images = torch.as_tensor(np.clip(0.5 + pixels, 0.0, 1.0).reshape(n, 1, 8, 8), dtype=torch.float32)
    train, test = _split(labels)
    return Dataset(images, torch.as_tensor(labels.astype(np.int64)), ("minus", "plus"), train, test)


__all__ = [
    "dct_band",
    "digits",
    "moons",
]
