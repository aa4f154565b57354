"""The result of a slice computation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..plane import Plane


def _freeze(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        view = np.asarray(getattr(obj, name)).view()  # the caller's array keeps its own flags
        view.flags.writeable = False
        object.__setattr__(obj, name, view)


@dataclass(frozen=True, eq=False)
class Certificate:
    """What a certified slice proved about its cells (``compute_slice(..., method="certified")``).

    A box of the plane is *proven* when a lower bound of ``logit_c - logit_j`` over the whole box, for its
    class ``c`` and every other class ``j``, exceeds ``safety_margin × max(1, largest |logit| at its centre)``.
    Cell ``(i, j)`` is the box ``alphas[j] ± du/2``, ``betas[i] ± dv/2`` (``du``, ``dv``: the grid's steps).
    A box proven at a coarse level proves every cell inside it; the others are split in four down to
    ``min_cell`` of a cell (or until ``budget`` boxes were bounded). The unproven leaves are ``boundary``.
    """

    proven: np.ndarray  # (Rb, Ra) float32, share of each cell's area proven single-label, 0..1
    proven_label: np.ndarray  # (Rb, Ra) int64, the class proven on the cell's proven part; -1: none, or parts differ
    proven_margin: np.ndarray  # (Rb, Ra) float32, lower bound of the margin over the proven part; NaN: none proven
    boundary: np.ndarray  # (K, 4) float64, unproven leaves: alpha, beta (centre), half-width along u, along v
    min_cell: float  # side of the smallest box, as a fraction of a grid cell's side
    safety_margin: float
    budget: int  # most boxes that could be bounded
    n_bounded: int  # boxes bounded
    exhausted: bool  # the budget ended first: leaves larger than min_cell are left unproven
    is_complete: bool = True  # False in the frames before the proof's last level (pending boxes are in `boundary`)

    def __post_init__(self) -> None:
        _freeze(self, ("proven", "proven_label", "proven_margin", "boundary"))

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    @property
    def proven_area(self) -> float:
        """Share of the slice's area proven single-label."""
        return float(self.proven.mean())

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.proven, self.proven_label, self.proven_margin, self.boundary))

    def __repr__(self) -> str:
        return (
            f"Certificate(proven_area={self.proven_area:.4%}, boundary_leaves={len(self.boundary)}, "
            f"n_bounded={self.n_bounded}, exhausted={self.exhausted}, is_complete={self.is_complete})"
        )


@dataclass(frozen=True, eq=False)
class PlaneSlice:
    """The classification of a grid on a plane. Row ``i`` of each map is ``betas[i]``, column ``j`` is ``alphas[j]``.

    Its arrays are read-only: a result may be shared (by the cache, by the frames of one computation).
    """

    alphas: np.ndarray  # (Ra,) float64, L2 units along plane.u
    betas: np.ndarray  # (Rb,) float64, L2 units along plane.v
    labels: np.ndarray  # (Rb, Ra) int64, predicted class
    confidence: np.ndarray  # (Rb, Ra) float32, top-1 probability
    margin: np.ndarray  # (Rb, Ra) float32, top-1 minus top-2 logit (>= 0)
    evaluated: np.ndarray  # (Rb, Ra) bool, cells the model was run on (all for "dense")
    undefined: np.ndarray  # (Rb, Ra) bool, cells whose logits were not finite (NaN): no class; label meaningless
    n_evaluated: int
    plane: Plane
    class_names: tuple[str, ...]
    extent: tuple[tuple[float, float], tuple[float, float]]
    resolution: tuple[int, int]  # (Ra, Rb)
    method: str
    clip: bool
    clipped_fraction: float  # share of evaluated points that clipping moved (0 when clip=False)
    precision: str
    is_final: bool = True  # False for the intermediate frames of a progressive computation
    certificate: Certificate | None = None  # what method="certified" proved; None for the other methods

    def __post_init__(self) -> None:
        _freeze(self, ("alphas", "betas", "labels", "confidence", "margin", "evaluated", "undefined"))

    def __setstate__(self, state: dict) -> None:
        # Unpickled arrays (e.g. a slice sent back by a Dask worker) are writeable again: freeze them.
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __repr__(self) -> str:
        return (
            f"PlaneSlice(resolution={self.resolution}, extent={self.extent}, method={self.method!r}, "
            f"classes_present={len(self.classes_present)}, n_evaluated={self.n_evaluated}, "
            f"n_undefined={self.n_undefined}, is_final={self.is_final})"
        )

    @property
    def classes_present(self) -> list[int]:
        """The classes of the defined cells."""
        return [int(k) for k in np.unique(self.labels[~self.undefined])]

    @property
    def n_undefined(self) -> int:
        """Cells whose logits were NaN (evaluated, or interpolated from such a cell): drawn hatched grey."""
        return int(self.undefined.sum())

    def label_at(self, alpha: float, beta: float) -> int:
        """The label of the grid cell nearest to (alpha, beta)."""
        i = int(np.abs(self.betas - beta).argmin())
        j = int(np.abs(self.alphas - alpha).argmin())
        return int(self.labels[i, j])

    @property
    def nbytes(self) -> int:
        """Bytes of the slice's arrays and of its plane's tensors."""
        arrays = (self.labels, self.confidence, self.margin, self.evaluated, self.undefined, self.alphas, self.betas)
        planes = (self.plane.origin, self.plane.u, self.plane.v)
        certified = 0 if self.certificate is None else self.certificate.nbytes
        return sum(a.nbytes for a in arrays) + sum(t.numel() * t.element_size() for t in planes) + certified


__all__ = [
    "Certificate",
    "PlaneSlice",
]
