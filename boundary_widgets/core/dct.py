"""DCT-II subspaces of images, as in *Hold me tight!* (Ortiz-Jimenez et al.).

A band is a K×K block of 2-D DCT coefficients taken along the diagonal of the DCT plane (the
block starting at ``(i, i)`` for ``i = 0, s, 2s, …`` while it fits), the same block on every
colour channel. Its basis holds the orthonormal DCT atoms of those coefficients as columns:
``scipy.fft.idctn`` of a unit coefficient with ``norm="ortho"``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import fft

from .validation import check_positive_int

BAND_NAMES = ("low", "mid", "high")


@dataclass(frozen=True, eq=False)
class Band:
    """One DCT subspace: coefficients ``rows × cols`` of the DCT plane on every channel."""

    index: int | None  # position along the diagonal; None for an explicit coefficient range
    name: str  # "low", "mid", "high", "band i" or "rows a:b, cols c:d"
    rows: tuple[int, int]  # [start, stop) of the vertical frequency
    cols: tuple[int, int]  # [start, stop) of the horizontal frequency
    shape: tuple[int, ...]  # the image shape, (H, W) or (C, H, W)

    @property
    def dim(self) -> int:
        channels = _image_shape(self.shape)[0]
        return channels * (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0])

    @functools.cached_property
    def basis(self) -> torch.Tensor:
        """``(d, m)`` float32 with orthonormal columns, d = prod(shape), m = :attr:`dim`; built on first use."""
        return _band_basis(self.shape, self.rows, self.cols)

    def __repr__(self) -> str:
        return f"Band({self.name!r}, rows={self.rows}, cols={self.cols}, dim={self.dim})"


def _image_shape(shape: object) -> tuple[int, int, int]:
    """``(channels, height, width)`` from an image shape ``(H, W)`` or ``(C, H, W)``."""
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, Sequence) or len(shape) not in (2, 3):
        raise ValueError(f"`shape` must be an image shape (H, W) or (C, H, W); got {shape!r}.")
    sizes = tuple(check_positive_int(n, "shape") for n in shape)
    return (1, *sizes) if len(sizes) == 2 else sizes


def default_block(shape: object) -> tuple[int, int]:
    """K and stride for an image shape: K = side // 4 within [2, 16], stride = K (disjoint bands).

    Gives K = 2 on 8×8 digits (4 bands), 8 on 32×32, 16 on 224×224 (the paper's ImageNet choice).
    The paper's overlapping MNIST/CIFAR sweeps are ``block=8, stride=1`` and ``block=8, stride=2``.
    """
    _, height, width = _image_shape(shape)
    block = min(16, max(2, min(height, width) // 4))
    return block, block


def dct_atom(shape: object, row: int, col: int, *, channel: int = 0) -> np.ndarray:
    """The orthonormal DCT-II basis image of coefficient ``(row, col)`` on ``channel``; shape ``shape``."""
    channels, height, width = _image_shape(shape)
    if not (0 <= row < height and 0 <= col < width and 0 <= channel < channels):
        raise ValueError(
            f"`row`, `col`, `channel` must index a coefficient of {(channels, height, width)}; got {(row, col, channel)}."
        )
    atom = np.zeros((channels, height, width))
    unit = np.zeros((height, width))
    unit[row, col] = 1.0
    atom[channel] = fft.idctn(unit, norm="ortho")
    return atom.reshape(tuple(shape))


def _band_basis(shape: object, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    channels, height, width = _image_shape(shape)
    # One idctn over a stack of unit coefficients: axis 0 enumerates the block's coefficients.
    coefficients = [(r, c) for r in range(*rows) for c in range(*cols)]
    units = np.zeros((len(coefficients), height, width))
    for i, (r, c) in enumerate(coefficients):
        units[i, r, c] = 1.0
    atoms = torch.from_numpy(fft.idctn(units, axes=(1, 2), norm="ortho").reshape(len(coefficients), -1).T.copy())
    # Kronecker with the identity on channels: the same block on each channel, channel-major columns.
    return torch.kron(torch.eye(channels, dtype=torch.float64), atoms).float()


def _name(index: int, count: int) -> str:
    named = {0: "low", count // 2: "mid", count - 1: "high"} if count >= 3 else {0: "low", count - 1: "high"}
    return named.get(index, f"band {index}")


def bands(shape: object, *, block: int | None = None, stride: int | None = None) -> list[Band]:
    """The diagonal DCT bands of an image shape ``(H, W)`` or ``(C, H, W)``, lowest frequency first.

    ``block`` (K) and ``stride`` default to :func:`default_block`. The first band is named
    ``"low"``, the middle one (index ``count // 2``) ``"mid"``, the last ``"high"``.
    """
    _, height, width = _image_shape(shape)
    default_k, default_s = default_block(shape)
    block = default_k if block is None else check_positive_int(block, "block")
    stride = default_s if stride is None else check_positive_int(stride, "stride")
    side = min(height, width)
    if block > side:
        raise ValueError(f"`block` must be <= the image side {side}; got {block}.")
    starts = range(0, side - block + 1, stride)
    return [
        Band(
            index=i,
            name=_name(i, len(starts)),
            rows=(start, start + block),
            cols=(start, start + block),
            shape=tuple(shape),
        )
        for i, start in enumerate(starts)
    ]


def band(shape: object, which: object, *, block: int | None = None, stride: int | None = None) -> Band:
    """One band: a name (``"low"``, ``"mid"``, ``"high"``), an index into :func:`bands`, or an
    explicit coefficient range ``(start, stop)`` (a square block) or ``((r0, r1), (c0, c1))``."""
    if isinstance(which, str) or (isinstance(which, int | np.integer) and not isinstance(which, bool)):
        diagonal = bands(shape, block=block, stride=stride)
        if isinstance(which, str):
            count = len(diagonal)
            positions = {"low": 0, "mid": count // 2, "high": count - 1}
            if which not in positions:
                raise ValueError(f"`band` must be one of {list(BAND_NAMES)}, an index or a range; got {which!r}.")
            return diagonal[positions[which]]
        if not -len(diagonal) <= which < len(diagonal):
            raise ValueError(f"`band` index must be in [0, {len(diagonal)}) for shape {tuple(shape)}; got {which}.")
        return diagonal[int(which)]
    rows, cols = _coefficient_range(which, shape)
    return Band(
        index=None,
        name=f"rows {rows[0]}:{rows[1]}, cols {cols[0]}:{cols[1]}",
        rows=rows,
        cols=cols,
        shape=tuple(shape),
    )


def _coefficient_range(which: object, shape: object) -> tuple[tuple[int, int], tuple[int, int]]:
    _, height, width = _image_shape(shape)
    message = (
        f"`band` must be one of {list(BAND_NAMES)}, an index, (start, stop) or ((r0, r1), (c0, c1)) "
        f"within the DCT plane {height}×{width}; got {which!r}."
    )
    if not isinstance(which, Sequence) or len(which) != 2:
        raise ValueError(message)
    pair = tuple(which) if isinstance(which[0], Sequence) else (tuple(which), tuple(which))
    try:
        (r0, r1), (c0, c1) = ((int(a), int(b)) for a, b in pair)
    except (TypeError, ValueError) as error:
        raise ValueError(message) from error
    if not (0 <= r0 < r1 <= height and 0 <= c0 < c1 <= width):
        raise ValueError(message)
    return (r0, r1), (c0, c1)
