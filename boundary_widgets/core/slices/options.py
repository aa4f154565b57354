"""The one checked options object of a slice computation, and the limits on its size."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..validation import check_choice, check_number, check_positive_int

Extent = float | tuple[tuple[float, float], tuple[float, float]]
Resolution = int | tuple[int, int]
PRECISIONS = ("float32", "bfloat16", "float16")
SLICE_METHOD_NAMES = ("adaptive", "dense", "certified")
DEFAULT_METHOD = "adaptive"
# The result grows with the number of cells: labels (int64), confidence and margin (float32), evaluated and
# undefined (bool) take 18 bytes a cell. A computation's peak resident memory stays within
# PEAK_RESULT_MULTIPLE times its result arrays (measured: benchmarks/slice_peak_memory.py).
RESULT_BYTES_PER_CELL = 18
PEAK_RESULT_MULTIPLE = 3
MAX_RESOLUTION = 4096  # cells per axis
MAX_RESULT_BYTES = 256 * 2**20  # about 3861² cells


def normalize_extent(extent: object) -> tuple[tuple[float, float], tuple[float, float]]:
    """One half-width ``e`` -> ``((-e, e), (-e, e))``; ``((a0, a1), (b0, b1))`` is checked as it is."""
    if isinstance(extent, int | float | np.number) and not isinstance(extent, bool | np.bool_):
        if not np.isfinite(extent) or extent <= 0:
            raise ValueError(f"`extent` must be a finite half-width > 0; got {extent}.")
        e = float(extent)
        return (-e, e), (-e, e)
    try:
        (a0, a1), (b0, b1) = ((float(lo), float(hi)) for lo, hi in extent)  # type: ignore[union-attr]
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`extent` must be a half-width or ((alpha_min, alpha_max), (beta_min, beta_max)); got {extent!r}."
        ) from error
    for name, lo, hi in (("alpha", a0, a1), ("beta", b0, b1)):
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"`extent` {name} range must be finite and increasing (min < max); got ({lo}, {hi}).")
    return (a0, a1), (b0, b1)


def normalize_resolution(resolution: object) -> tuple[int, int]:
    """An int ``R`` -> ``(R, R)``; a pair ``(Ra, Rb)`` as it is; each in ``[2, MAX_RESOLUTION]`` and the result
    arrays within ``MAX_RESULT_BYTES``."""
    if isinstance(resolution, tuple | list):
        if len(resolution) != 2:
            raise ValueError(f"`resolution` must be an int or a pair (Ra, Rb); got {resolution!r}.")
        ra, rb = (check_positive_int(r, "resolution", minimum=2) for r in resolution)
    else:
        ra = rb = check_positive_int(resolution, "resolution", minimum=2)
    if max(ra, rb) > MAX_RESOLUTION:
        raise ValueError(f"`resolution` must be at most {MAX_RESOLUTION} cells per axis; got {(ra, rb)}.")
    result_bytes = ra * rb * RESULT_BYTES_PER_CELL
    if result_bytes > MAX_RESULT_BYTES:
        side = int((MAX_RESULT_BYTES / RESULT_BYTES_PER_CELL) ** 0.5)
        raise ValueError(
            f"`resolution` {(ra, rb)} would need {result_bytes / 2**20:.0f} MiB of result arrays "
            f"({RESULT_BYTES_PER_CELL} bytes a cell), above the {MAX_RESULT_BYTES // 2**20} MiB cap: use at most "
            f"about {side}² cells (or slice a smaller extent)."
        )
    return ra, rb


def grid_axes(extent: object, resolution: object) -> tuple[np.ndarray, np.ndarray]:
    (a0, a1), (b0, b1) = normalize_extent(extent)
    ra, rb = normalize_resolution(resolution)
    return np.linspace(a0, a1, ra), np.linspace(b0, b1, rb)


# Certified slices. Float32 bounds without directed rounding were measured within 4e-7 of the largest |logit|
# of the exact margin on boxes of zero width (digits models); the default safety margin is 250 times that.
DEFAULT_SAFETY_MARGIN = 1e-4
DEFAULT_MIN_CELL = 1 / 8
DEFAULT_BUDGET_PER_CELL = 4
MIN_DEFAULT_BUDGET = 65536  # small grids: enough boxes to reach min_cell along their boundaries


@dataclass(frozen=True)
class ProofOptions:
    """How ``method="certified"`` proves the cells of a slice.

    - ``min_cell``: the side of the smallest box, as a fraction of a grid cell: a power of 1/2 in ``(0, 1]``
      (``1``: cells are not split);
    - ``budget``: the most boxes bounded in all (each costs a few forward passes); ``None``:
      ``DEFAULT_BUDGET_PER_CELL`` (4) times the grid's cells, at least ``MIN_DEFAULT_BUDGET``. When it ends, the boxes not yet proven are reported
      unproven, whatever their size;
    - ``safety_margin``: a box is proven only when its lower bound on the margin exceeds
      ``safety_margin × max(1, largest |logit| at its centre)``: the bounds are computed in float32 without
      directed rounding;
    - ``coarse``: start from blocks of cells (coarse to fine: a block proven at once proves every cell in it),
      or from the grid's cells themselves.
    """

    min_cell: float = DEFAULT_MIN_CELL
    budget: int | None = None
    safety_margin: float = DEFAULT_SAFETY_MARGIN
    coarse: bool = True

    def __post_init__(self) -> None:
        min_cell = check_number(self.min_cell, "min_cell", minimum=0, maximum=1, exclusive=False)
        if min_cell <= 0 or 2.0 ** round(np.log2(min_cell)) != min_cell:
            raise ValueError(f"`min_cell` must be a power of 1/2 in (0, 1] (1, 1/2, 1/4, ...); got {self.min_cell!r}.")
        if min_cell < 2.0**-10:
            raise ValueError(f"`min_cell` must be >= 1/1024 of a grid cell; got {self.min_cell!r}.")
        object.__setattr__(self, "min_cell", min_cell)
        if self.budget is not None:
            object.__setattr__(self, "budget", check_positive_int(self.budget, "budget"))
        object.__setattr__(self, "safety_margin", check_number(self.safety_margin, "safety_margin", minimum=0))
        if not isinstance(self.coarse, bool | np.bool_):
            raise TypeError(f"`coarse` must be a bool; got {type(self.coarse).__name__}.")
        object.__setattr__(self, "coarse", bool(self.coarse))

    def boxes_allowed(self, resolution: tuple[int, int]) -> int:
        if self.budget is not None:
            return self.budget
        return max(DEFAULT_BUDGET_PER_CELL * resolution[0] * resolution[1], MIN_DEFAULT_BUDGET)


@dataclass(frozen=True)
class SliceOptions:
    """The checked settings of one slice: everything its result depends on, and its memory budget.

    Built from the keyword arguments of :func:`compute_slice` / :func:`iter_slice`; every field is
    checked and normalised on construction (``extent`` to ``((a0, a1), (b0, b1))``, ``resolution``
    to ``(Ra, Rb)``), raising an error that names the argument.
    """

    extent: tuple[tuple[float, float], tuple[float, float]]
    resolution: tuple[int, int]  # (Ra, Rb)
    method: str = DEFAULT_METHOD
    clip: bool = False
    precision: str = "float32"
    memory_budget: int | None = None  # bytes of activations per forward chunk; None: the device's default
    proof: ProofOptions | None = None  # method="certified" only; None there: ProofOptions()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extent", normalize_extent(self.extent))
        object.__setattr__(self, "resolution", normalize_resolution(self.resolution))
        check_choice(self.method, "method", SLICE_METHOD_NAMES)
        if not isinstance(self.clip, bool | np.bool_):
            raise TypeError(f"`clip` must be a bool; got {type(self.clip).__name__}.")
        object.__setattr__(self, "clip", bool(self.clip))
        check_choice(self.precision, "precision", PRECISIONS)
        if self.memory_budget is not None:
            object.__setattr__(self, "memory_budget", check_positive_int(self.memory_budget, "memory_budget"))
        if self.proof is not None and not isinstance(self.proof, ProofOptions):
            raise TypeError(f"`proof` must be a ProofOptions or None; got {type(self.proof).__name__}.")
        if self.proof is not None and self.method != "certified":
            raise ValueError(f"`proof` applies to method='certified' only; got method={self.method!r}.")
        if self.method == "certified" and self.proof is None:
            object.__setattr__(self, "proof", ProofOptions())

    @functools.cached_property
    def alphas(self) -> np.ndarray:
        """``(Ra,)`` grid coordinates along ``u``."""
        (a0, a1), _ = self.extent
        return np.linspace(a0, a1, self.resolution[0])

    @functools.cached_property
    def betas(self) -> np.ndarray:
        """``(Rb,)`` grid coordinates along ``v``."""
        _, (b0, b1) = self.extent
        return np.linspace(b0, b1, self.resolution[1])

    def key(self) -> tuple:
        """What a cached result must agree on (the memory budget changes only how the work is chunked)."""
        return (self.extent, self.resolution, self.method, self.clip, self.precision, self.proof)


__all__ = [
    "DEFAULT_BUDGET_PER_CELL",
    "DEFAULT_METHOD",
    "DEFAULT_MIN_CELL",
    "DEFAULT_SAFETY_MARGIN",
    "MAX_RESOLUTION",
    "MAX_RESULT_BYTES",
    "MIN_DEFAULT_BUDGET",
    "PEAK_RESULT_MULTIPLE",
    "PRECISIONS",
    "RESULT_BYTES_PER_CELL",
    "SLICE_METHOD_NAMES",
    "Extent",
    "ProofOptions",
    "Resolution",
    "SliceOptions",
    "grid_axes",
    "normalize_extent",
    "normalize_resolution",
]
