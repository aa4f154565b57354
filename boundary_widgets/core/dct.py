"""DCT-II subspaces of images, as in *Hold me tight!* (Ortiz-Jimenez et al.), without dense bases.

A band is a K×K block of 2-D DCT coefficients taken along the diagonal of the DCT plane (the
block starting at ``(i, i)`` for ``i = 0, s, 2s, …`` while it fits), the same block on every
colour channel. Its atoms are the orthonormal DCT-II basis images of those coefficients
(``scipy.fft.idctn`` of a unit coefficient with ``norm="ortho"``).

An atom ``(r, c)`` is the outer product of row ``r`` of the H×H DCT-II matrix and row ``c`` of the
W×W one, so a band's coefficients are ``Dr @ x @ Dc.T`` with ``Dr`` (K×H) and ``Dc`` (K×W) the
band's rows of those matrices: projecting onto a band costs O(d·K) time and O(d) memory per image,
on the tensor's device, batched, and is exact (no truncated transform). The dense ``(d, dim)``
basis (:attr:`Band.basis`) is built only on request, for small images and tests.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args, runtime_checkable

import numpy as np
import torch

from .validation import as_float_tensor, check_choice, check_positive_int

BAND_NAMES = ("low", "mid", "high")


@runtime_checkable
class Projector(Protocol):
    """The orthogonal projection onto a linear subspace of the input space (what ``subspace=`` takes).

    ``project(v)`` maps ``(..., *shape)`` to the same shape; ``dim`` is the subspace's dimension;
    ``shape`` the input shape it acts on.
    """

    @property
    def dim(self) -> int: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    def project(self, v: torch.Tensor) -> torch.Tensor: ...


def check_basis(subspace: object, dim: int) -> torch.Tensor:
    """A ``(d, m)`` basis with orthonormal columns, as float32."""
    basis = as_float_tensor(subspace, "subspace")
    if basis.ndim != 2 or basis.shape[0] != dim or basis.shape[1] < 1:
        raise ValueError(f"`subspace` must be a (d, m) basis with d = {dim}; got shape {tuple(basis.shape)}.")
    gram = basis.double().T @ basis.double()
    if not torch.allclose(gram, torch.eye(basis.shape[1], dtype=torch.float64), atol=1e-4):
        raise ValueError("`subspace` must have orthonormal columns (S.T @ S = I).")
    return basis


class BasisProjector:
    """Projection onto the span of a dense ``(d, m)`` basis with orthonormal columns (for small subspaces)."""

    def __init__(self, basis: torch.Tensor, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)
        self.basis = check_basis(basis, math.prod(self.shape))

    @property
    def dim(self) -> int:
        return self.basis.shape[1]

    def project(self, v: torch.Tensor) -> torch.Tensor:
        basis = self.basis.to(device=v.device, dtype=v.dtype)
        flat = v.reshape(-1, basis.shape[0])
        return ((flat @ basis) @ basis.T).reshape(v.shape)

    def __repr__(self) -> str:
        return f"BasisProjector(dim={self.dim}, shape={self.shape})"


def as_projector(subspace: object, shape: Sequence[int]) -> Projector:
    """``subspace`` (a :class:`Band`, another :class:`Projector`, or a dense ``(d, m)`` orthonormal basis)
    as a projector on inputs of ``shape``; checked before any work."""
    shape = tuple(shape)
    if isinstance(subspace, Band) and (len(shape) not in (2, 3) or _image_shape(subspace.shape) != _image_shape(shape)):
        raise ValueError(f"`subspace` is a band of images {subspace.shape}; the inputs have shape {shape}.")
    if isinstance(subspace, Projector):
        if math.prod(subspace.shape) != math.prod(shape):
            raise ValueError(f"`subspace` acts on inputs of shape {subspace.shape}; the inputs have shape {shape}.")
        return subspace
    return BasisProjector(subspace, shape)


@functools.lru_cache(maxsize=64)
def _dct_rows(size: int, start: int, stop: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Rows ``start:stop`` of the orthonormal ``size × size`` DCT-II matrix, ``(stop - start, size)``."""
    k = np.arange(start, stop)[:, None]
    n = np.arange(size)[None, :]
    rows = np.sqrt(2.0 / size) * np.cos(np.pi * (2 * n + 1) * k / (2 * size))
    rows[k[:, 0] == 0] /= np.sqrt(2.0)
    return torch.from_numpy(rows).to(device=device, dtype=dtype)


@dataclass(frozen=True, eq=False)
class Band:
    """One DCT subspace: coefficients ``rows × cols`` of the DCT plane on every channel.

    A :class:`Projector`: :meth:`project`, :meth:`coefficients`, :meth:`synthesize` and
    :meth:`random` use fast transforms on the tensor's device; nothing of size d × dim is stored.
    """

    index: int | None  # position along the diagonal; None for an explicit coefficient range
    name: str  # "low", "mid", "high", "band i" or "rows a:b, cols c:d"
    rows: tuple[int, int]  # [start, stop) of the vertical frequency
    cols: tuple[int, int]  # [start, stop) of the horizontal frequency
    shape: tuple[int, ...]  # the image shape, (H, W) or (C, H, W)

    @property
    def dim(self) -> int:
        channels = _image_shape(self.shape)[0]
        return channels * (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0])

    @property
    def basis(self) -> torch.Tensor:
        """``(d, dim)`` float32 with orthonormal columns, d = prod(shape); built on each request, never stored.

        Column ``(channel, r, c)`` (channel-major, then row, then column) is the atom of coefficient
        ``(r, c)`` on that channel. It takes ``4·d·dim`` bytes (462 MB for one 3×224×224 band of
        K = 16, about 1.6 GB while it is built): use :meth:`project`, :meth:`coefficients` and
        :meth:`synthesize` on large images. Built with scipy's ``idctn``, independently of those.
        """
        return _band_basis(self.shape, self.rows, self.cols)

    def _factors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, height, width = _image_shape(self.shape)
        return (
            _dct_rows(height, *self.rows, like.device, like.dtype),
            _dct_rows(width, *self.cols, like.device, like.dtype),
        )

    def _check_trailing(self, v: torch.Tensor, trailing: tuple[int, ...], name: str) -> None:
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            raise TypeError(f"`{name}` must be a floating-point torch.Tensor; got {type(v).__name__}.")
        if tuple(v.shape[v.ndim - len(trailing) :]) != trailing or v.ndim < len(trailing):
            raise ValueError(f"`{name}` must have shape (..., {', '.join(map(str, trailing))}); got {tuple(v.shape)}.")

    def coefficients(self, v: torch.Tensor) -> torch.Tensor:
        """The band's DCT coefficients of ``v`` ``(..., *shape)``: ``(..., C, K_rows, K_cols)``, in the basis' order."""
        self._check_trailing(v, self.shape, "v")
        channels, height, width = _image_shape(self.shape)
        lead = v.shape[: v.ndim - len(self.shape)]
        down, across = self._factors(v)
        images = v.reshape(*lead, channels, height, width)
        return down @ images @ across.T

    def synthesize(self, coefficients: torch.Tensor) -> torch.Tensor:
        """The image ``(..., *shape)`` with these band coefficients ``(..., C, K_rows, K_cols)`` and no others."""
        channels = _image_shape(self.shape)[0]
        block = (channels, self.rows[1] - self.rows[0], self.cols[1] - self.cols[0])
        self._check_trailing(coefficients, block, "coefficients")
        down, across = self._factors(coefficients)
        images = down.T @ coefficients @ across
        return images.reshape(*coefficients.shape[: coefficients.ndim - 3], *self.shape)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """The orthogonal projection of ``v`` ``(..., *shape)`` onto the band, same shape, device and dtype."""
        return self.synthesize(self.coefficients(v))

    def random(self, *, seed: int = 0, count: int | None = None) -> torch.Tensor:
        """Gaussian noise in the band: standard normal coefficients (float32, CPU) synthesised into an image.

        ``(*shape)``, or ``(count, *shape)`` when ``count`` is given; the first is the same vector as
        ``basis @ torch.randn(dim, generator=torch.Generator().manual_seed(seed))``.
        """
        channels = _image_shape(self.shape)[0]
        block = (channels, self.rows[1] - self.rows[0], self.cols[1] - self.cols[0])
        generator = torch.Generator().manual_seed(int(seed))
        many = 1 if count is None else check_positive_int(count, "count")
        # One draw of `dim` per image, so that the first of `count` is the vector of `count=None`.
        coefficients = torch.stack([torch.randn(self.dim, generator=generator) for _ in range(many)]).reshape(
            many, *block
        )
        images = self.synthesize(coefficients)
        return images[0] if count is None else images

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
    from scipy import fft  # scipy loads only when a basis is built

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
    from scipy import fft  # scipy loads only when a basis is built

    channels, height, width = _image_shape(shape)
    # One idctn over a stack of unit coefficients: axis 0 enumerates the block's coefficients.
    coefficients = [(r, c) for r in range(*rows) for c in range(*cols)]
    units = np.zeros((len(coefficients), height, width))
    for i, (r, c) in enumerate(coefficients):
        units[i, r, c] = 1.0
    atoms = torch.from_numpy(fft.idctn(units, axes=(1, 2), norm="ortho").reshape(len(coefficients), -1).T.copy())
    # Kronecker with the identity on channels: the same block on each channel, channel-major columns.
    return torch.kron(torch.eye(channels, dtype=torch.float64), atoms).float()


# The reference's grids (LTS4/hold-me-tight): image side -> (K, stride).
HOLD_ME_TIGHT_GRIDS = {28: (8, 1), 32: (8, 2), 224: (16, 16)}
Grid = Literal["kit", "hold-me-tight"]
GRIDS: tuple[str, ...] = get_args(Grid)


def hold_me_tight_block(shape: object) -> tuple[int, int]:
    """K and stride of *Hold me tight!*'s grid for an image shape: the paper's own on its three sizes.

    28×28 (MNIST): K = 8, stride 1 (21 bands of 64); 32×32 (CIFAR-10): K = 8, stride 2 (13 bands);
    224×224 (ImageNet): K = 16, stride 16 (14 bands). Another side takes the grid of the nearest of those
    sizes (by ratio) scaled to it, K at least 2 and stride at least 1: 8×8 digits get K = 2, stride 1
    (7 overlapping bands of 4 coefficients, a low → high sweep like MNIST's).
    """
    _, height, width = _image_shape(shape)
    side = min(height, width)
    reference = min(HOLD_ME_TIGHT_GRIDS, key=lambda size: abs(math.log(side / size)))
    block, stride = HOLD_ME_TIGHT_GRIDS[reference]
    if side == reference:
        return block, stride
    scale = side / reference
    return min(side, max(2, round(block * scale))), max(1, round(stride * scale))


def _name(index: int, count: int) -> str:
    named = {0: "low", count // 2: "mid", count - 1: "high"} if count >= 3 else {0: "low", count - 1: "high"}
    return named.get(index, f"band {index}")


def bands(shape: object, *, block: int | None = None, stride: int | None = None, grid: Grid = "kit") -> list[Band]:
    """The diagonal DCT bands of an image shape ``(H, W)`` or ``(C, H, W)``, lowest frequency first.

    ``block`` (K) and ``stride`` default to the ``grid``'s: ``"kit"`` (:func:`default_block`: a few
    disjoint bands, quick to sweep in a widget) or ``"hold-me-tight"`` (:func:`hold_me_tight_block`: the
    paper's overlapping grids, chosen from the input size). The first band is named ``"low"``, the
    middle one (index ``count // 2``) ``"mid"``, the last ``"high"``.
    """
    check_choice(grid, "grid", GRIDS)
    _, height, width = _image_shape(shape)
    default_k, default_s = default_block(shape) if grid == "kit" else hold_me_tight_block(shape)
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


def band(
    shape: object, which: object, *, block: int | None = None, stride: int | None = None, grid: Grid = "kit"
) -> Band:
    """One band: a name (``"low"``, ``"mid"``, ``"high"``), an index into :func:`bands` (of ``grid``), an
    explicit coefficient range ``(start, stop)`` (a square block) or ``((r0, r1), (c0, c1))``, or a
    :class:`Band` of this shape (returned as it is)."""
    check_choice(grid, "grid", GRIDS)
    if isinstance(which, Band):
        if _image_shape(which.shape) != _image_shape(shape):
            raise ValueError(f"`band` is a band of images {which.shape}; the images have shape {tuple(shape)}.")
        return which
    if isinstance(which, str) or (isinstance(which, int | np.integer) and not isinstance(which, bool)):
        diagonal = bands(shape, block=block, stride=stride, grid=grid)
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


__all__ = [
    "BAND_NAMES",
    "Band",
    "BasisProjector",
    "Projector",
    "as_projector",
    "band",
    "bands",
    "check_basis",
    "dct_atom",
    "default_block",
]
