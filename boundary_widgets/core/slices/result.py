"""The result of a slice computation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..plane import Plane


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

    def __post_init__(self) -> None:
        for name in ("alphas", "betas", "labels", "confidence", "margin", "evaluated"):
            view = np.asarray(getattr(self, name)).view()  # the caller's array keeps its own flags
            view.flags.writeable = False
            object.__setattr__(self, name, view)

    def __setstate__(self, state: dict) -> None:
        # Unpickled arrays (e.g. a slice sent back by a Dask worker) are writeable again: freeze them.
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __repr__(self) -> str:
        return (
            f"PlaneSlice(resolution={self.resolution}, extent={self.extent}, method={self.method!r}, "
            f"classes_present={len(self.classes_present)}, n_evaluated={self.n_evaluated}, is_final={self.is_final})"
        )

    @property
    def classes_present(self) -> list[int]:
        return [int(k) for k in np.unique(self.labels)]

    def label_at(self, alpha: float, beta: float) -> int:
        """The label of the grid cell nearest to (alpha, beta)."""
        i = int(np.abs(self.betas - beta).argmin())
        j = int(np.abs(self.alphas - alpha).argmin())
        return int(self.labels[i, j])

    @property
    def nbytes(self) -> int:
        """Bytes of the slice's arrays and of its plane's tensors."""
        arrays = (self.labels, self.confidence, self.margin, self.evaluated, self.alphas, self.betas)
        planes = (self.plane.origin, self.plane.u, self.plane.v)
        return sum(a.nbytes for a in arrays) + sum(t.numel() * t.element_size() for t in planes)


__all__ = [
    "PlaneSlice",
]
