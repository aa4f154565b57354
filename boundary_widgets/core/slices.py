"""Classification of a plane through an input: the label map and its margins."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ._checks import check_choice, check_positive_int
from .classifier import Classifier
from .plane import Plane

Extent = float | tuple[tuple[float, float], tuple[float, float]]
Resolution = int | tuple[int, int]
PRECISIONS = ("float32", "bfloat16", "float16")
DEFAULT_MEMORY_BUDGET = 256 * 2**20


@dataclass(frozen=True, eq=False)
class PlaneSlice:
    """The classification of a grid on a plane. Row ``i`` of each map is ``betas[i]``, column ``j`` is ``alphas[j]``."""

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

    @property
    def classes_present(self) -> list[int]:
        return [int(k) for k in np.unique(self.labels)]

    def label_at(self, alpha: float, beta: float) -> int:
        """The label of the grid cell nearest to (alpha, beta)."""
        i = int(np.abs(self.betas - beta).argmin())
        j = int(np.abs(self.alphas - alpha).argmin())
        return int(self.labels[i, j])


def normalize_extent(extent: object) -> tuple[tuple[float, float], tuple[float, float]]:
    """One half-width ``e`` -> ``((-e, e), (-e, e))``; ``((a0, a1), (b0, b1))`` is checked as it is."""
    if isinstance(extent, int | float | np.number) and not isinstance(extent, bool):
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
    """An int ``R`` -> ``(R, R)``; a pair ``(Ra, Rb)`` as it is; each >= 2."""
    if isinstance(resolution, tuple | list):
        if len(resolution) != 2:
            raise ValueError(f"`resolution` must be an int or a pair (Ra, Rb); got {resolution!r}.")
        return (
            check_positive_int(resolution[0], "resolution", minimum=2),
            check_positive_int(resolution[1], "resolution", minimum=2),
        )
    r = check_positive_int(resolution, "resolution", minimum=2)
    return r, r


def grid_axes(extent: object, resolution: object) -> tuple[np.ndarray, np.ndarray]:
    (a0, a1), (b0, b1) = normalize_extent(extent)
    ra, rb = normalize_resolution(resolution)
    return np.linspace(a0, a1, ra), np.linspace(b0, b1, rb)


@dataclass(frozen=True)
class PointEvaluation:
    labels: np.ndarray  # (N,) int64
    confidence: np.ndarray  # (N,) float32
    margin: np.ndarray  # (N,) float32
    n_clipped: int


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, precision))


def _summarise(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    logits = logits.float()
    top2 = logits.topk(2, dim=1)
    confidence = torch.softmax(logits, dim=1).gather(1, top2.indices[:, :1])[:, 0]
    return top2.indices[:, 0], confidence, top2.values[:, 0] - top2.values[:, 1]


def evaluate_plane_points(
    clf: Classifier,
    plane: Plane,
    alphas: np.ndarray,
    betas: np.ndarray,
    *,
    clip: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    precision: str = "float32",
    recheck_margin: float = 0.1,
) -> PointEvaluation:
    """Classify the plane's points ``(alphas[n], betas[n])``; images are built chunk by chunk on the device.

    Under half precision, points whose margin is below ``recheck_margin`` are evaluated again in
    float32, so that near-ties take their float32 label.
    """
    check_choice(precision, "precision", PRECISIONS)
    budget = check_positive_int(memory_budget, "memory_budget")
    chunk = max(1, budget // clf.bytes_per_sample())
    device = clf.device
    origin, u, v = (t.reshape(1, -1) for t in plane.to(device))
    a_all = torch.as_tensor(np.asarray(alphas, dtype=np.float32), device=device)
    b_all = torch.as_tensor(np.asarray(betas, dtype=np.float32), device=device)
    labels, confidence, margin = [], [], []
    n_clipped = 0
    with clf.evaluating(), torch.inference_mode():
        for start in range(0, a_all.numel(), chunk):
            a = a_all[start : start + chunk, None]
            b = b_all[start : start + chunk, None]
            x = torch.addcmul(torch.addcmul(origin, a, u), b, v)
            if clip:
                clipped = x.clamp(*clf.bounds)
                n_clipped += int((clipped != x).any(dim=1).sum())
                x = clipped
            x = x.reshape(-1, *clf.input_shape)
            with _autocast(device, precision):
                lab, conf, marg = _summarise(clf.forward(x))
            if precision != "float32":
                near_tie = marg < recheck_margin
                if bool(near_tie.any()):
                    lab[near_tie], conf[near_tie], marg[near_tie] = _summarise(clf.forward(x[near_tie]))
            labels.append(lab)
            confidence.append(conf)
            margin.append(marg)
    cat = lambda parts, dtype: torch.cat(parts).cpu().numpy().astype(dtype)  # noqa: E731
    return PointEvaluation(cat(labels, np.int64), cat(confidence, np.float32), cat(margin, np.float32), n_clipped)


def check_slice_arguments(clf: object, plane: object) -> None:
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    if not isinstance(plane, Plane):
        raise TypeError(f"`plane` must be a boundary_widgets.Plane; got {type(plane).__name__}.")
    if plane.shape != clf.input_shape:
        raise ValueError(f"`plane` must live in the classifier's input shape {clf.input_shape}; got {plane.shape}.")


def _dense_slice(
    clf: Classifier,
    plane: Plane,
    *,
    extent: Extent,
    resolution: Resolution,
    clip: bool,
    memory_budget: int,
    precision: str,
) -> PlaneSlice:
    alphas, betas = grid_axes(extent, resolution)
    grid_a, grid_b = np.meshgrid(alphas, betas)
    result = evaluate_plane_points(
        clf, plane, grid_a.ravel(), grid_b.ravel(), clip=clip, memory_budget=memory_budget, precision=precision
    )
    shape = (betas.size, alphas.size)
    return PlaneSlice(
        alphas=alphas,
        betas=betas,
        labels=result.labels.reshape(shape),
        confidence=result.confidence.reshape(shape),
        margin=result.margin.reshape(shape),
        evaluated=np.ones(shape, dtype=bool),
        n_evaluated=grid_a.size,
        plane=plane,
        class_names=clf.class_names,
        extent=normalize_extent(extent),
        resolution=(alphas.size, betas.size),
        method="dense",
        clip=bool(clip),
        clipped_fraction=result.n_clipped / grid_a.size,
        precision=precision,
    )


def compute_slice(
    clf: Classifier,
    plane: Plane,
    *,
    extent: Extent,
    resolution: Resolution = 128,
    method: Literal["dense"] = "dense",
    clip: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    precision: str = "float32",
) -> PlaneSlice:
    """Classify an ``Ra × Rb`` grid on ``plane`` spanning ``extent`` (L2 units around the origin).

    ``method="dense"`` evaluates every cell. Images are built on the classifier's device one
    chunk at a time, the chunk sized so that one forward pass fits in ``memory_budget`` bytes.
    ``precision`` ``"bfloat16"``/``"float16"`` runs the model under autocast and re-checks
    near-ties in float32. ``clip=True`` clips every point to the classifier's bounds and
    reports the share of points it moved.
    """
    check_slice_arguments(clf, plane)
    check_choice(method, "method", tuple(SLICE_METHODS))
    normalize_extent(extent)
    normalize_resolution(resolution)
    return SLICE_METHODS[method](
        clf, plane, extent=extent, resolution=resolution, clip=clip, memory_budget=memory_budget, precision=precision
    )


SLICE_METHODS = {"dense": _dense_slice}
