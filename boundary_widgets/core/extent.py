"""Where things are on a plane: the default extent, the part inside the input box, the first class change.

These are the geometric questions an explorer asks before and after classifying a plane:

- :func:`default_extent`: how far to look around an image, from the distance to its nearest
  decision boundary (not from the input dimension);
- :func:`box_intervals` / :func:`outside_box`: which points ``origin + a·u + b·v`` of a grid leave
  the classifier's input box (the model sees them unclipped; a picture of them is clipped);
- :func:`first_crossing`: where the label first changes along a line from the origin.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .classifier import Classifier
from .deepfool import deepfool
from .plane import Plane
from .progress import CancelEvent, Progress, track

_CHUNK_ELEMENTS = 2**21  # rows × pixels per chunk: about 16 MB per float64 temporary, whatever the image size


EXTENT_MULTIPLE = 3.0
# The smallest default half-width, as a share of the input range (high - low): an image lying on a
# boundary (DeepFool distance ~0) would otherwise give a map that is a point.
EXTENT_FLOOR_SHARE = 0.05


def _round_2_significant(value: float) -> float:
    exponent = math.floor(math.log10(value))
    return round(value, 1 - exponent)


def extent_from_distance(distance: float, multiple: float = EXTENT_MULTIPLE) -> float:
    """``multiple`` × a distance to the nearest boundary, rounded to two significant figures."""
    return _round_2_significant(multiple * distance)


def default_extent(
    clf: Classifier,
    x: object,
    *,
    images: object = None,
    multiple: float = EXTENT_MULTIPLE,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> float:
    """The half-width (L2 units) of the square of a plane to show around ``x``.

    How it is chosen, from the geometry of this sample and this model:

    1. ``multiple`` × the DeepFool distance from ``x`` to its nearest decision boundary (the
       default 3 puts that boundary a third of the way from the centre to the edge, with room
       for the regions beyond it);
    2. when DeepFool does not converge (no boundary found): ``multiple`` / 2 × the distance
       from ``x`` to the nearest other image of ``images`` (``(N, *input_shape)``, e.g. the
       data set), a scale at which the map shows other samples' regions;
    3. otherwise the width of the input range, ``high - low`` (one pixel's full swing).

    Never below ``EXTENT_FLOOR_SHARE`` × ``high - low`` (the data's scale: one pixel's full swing
    is ``high - low``), so that an image lying on a boundary still gets a map around it. Rounded to
    two significant figures, so that a slider shows a plain number.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    if not (isinstance(multiple, int | float) and not isinstance(multiple, bool) and math.isfinite(multiple)):
        raise TypeError(f"`multiple` must be a finite number; got {multiple!r}.")
    if multiple <= 0:
        raise ValueError(f"`multiple` must be > 0; got {multiple}.")
    sample = clf.check_inputs(x, "x", batched=False, in_bounds=True)
    others = None if images is None else clf.check_inputs(images, "images", batched=True).cpu()
    with track(progress, cancel, total=2, desc="default extent") as tracker:
        found = deepfool(clf, sample, candidates=min(10, clf.num_classes))
        tracker.advance()
        distance = float(found.distances[0])
        low, high = clf.bounds
        floor = _round_2_significant(EXTENT_FLOOR_SHARE * (high - low))
        if bool(found.converged[0]) and math.isfinite(distance) and distance > 0:
            return max(extent_from_distance(distance, multiple), floor)
        if others is not None and others.shape[0] > 0:
            gaps = (others.flatten(1) - sample.cpu().flatten(1)).norm(dim=1)
            gaps = gaps[gaps > 0]
            tracker.advance()
            if gaps.numel():
                return max(_round_2_significant(multiple / 2 * float(gaps.min())), floor)
        return _round_2_significant(high - low)


def data_square(points: torch.Tensor) -> tuple[tuple[float, float], float]:
    """Centre and half-width of the square that shows 2-D data points with a margin.

    The centre of their bounding box, and 0.55 × its larger side (5 % room on each side),
    rounded to two decimals so that a slider shows a plain number.
    """
    flat = points.reshape(-1, 2)
    low, high = flat.min(dim=0).values, flat.max(dim=0).values
    centre = ((high + low) / 2).tolist()
    return (centre[0], centre[1]), round(0.55 * float((high - low).max()), 2)


def box_intervals(plane: Plane, betas: object, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """For each ``beta``, the interval ``[lo, hi]`` of alphas whose point stays inside ``bounds``.

    ``origin + a·u + b·v`` is inside the box when every pixel ``i`` satisfies
    ``low <= o_i + b·v_i + a·u_i <= high``: an interval of ``a`` per pixel, so the row's interval is
    the max of the lower ends and the min of the upper ends (exact; O(d) per row, vectorised over
    chunks of rows). An empty row has ``lo > hi``. Returns ``(lo (Rb,), hi (Rb,))`` float64.
    """
    low, high = (float(b) for b in bounds)
    o = plane.origin.double().reshape(-1)
    u = plane.u.double().reshape(-1)
    v = plane.v.double().reshape(-1)
    b_all = torch.as_tensor(np.asarray(betas, dtype=np.float64)).reshape(-1)
    moving = u != 0
    u_moving = u[moving]
    still = ~moving
    lo_out = np.empty(b_all.numel())
    hi_out = np.empty(b_all.numel())
    rows = max(1, _CHUNK_ELEMENTS // max(o.numel(), 1))
    for start in range(0, b_all.numel(), rows):
        b = b_all[start : start + rows, None]  # (rows, 1)
        base = o[None, moving] + b * v[None, moving]  # (rows, d_moving)
        ends_low = (low - base) / u_moving
        ends_high = (high - base) / u_moving
        lo = torch.minimum(ends_low, ends_high).amax(dim=1) if u_moving.numel() else torch.full((b.shape[0],), -np.inf)
        hi = torch.maximum(ends_low, ends_high).amin(dim=1) if u_moving.numel() else torch.full((b.shape[0],), np.inf)
        if bool(still.any()):
            fixed = o[None, still] + b * v[None, still]
            broken = ((fixed < low) | (fixed > high)).any(dim=1)
            lo = torch.where(broken, torch.full_like(lo, np.inf), lo)
            hi = torch.where(broken, torch.full_like(hi, -np.inf), hi)
        lo_out[start : start + b.shape[0]] = lo.numpy()
        hi_out[start : start + b.shape[0]] = hi.numpy()
    return lo_out, hi_out


def outside_box(plane: Plane, alphas: object, betas: object, bounds: tuple[float, float]) -> np.ndarray:
    """``(Rb, Ra)`` bool: True where ``origin + alphas[j]·u + betas[i]·v`` has a pixel outside ``bounds``."""
    a = np.asarray(alphas, dtype=np.float64).reshape(-1)
    lo, hi = box_intervals(plane, betas, bounds)
    return (a[None, :] < lo[:, None]) | (a[None, :] > hi[:, None])


def pixels_outside(x: torch.Tensor, bounds: tuple[float, float]) -> int:
    """How many values of ``x`` lie outside ``bounds`` (what a picture of ``x`` clips)."""
    low, high = bounds
    return int(((x < low) | (x > high)).sum())


def first_crossing(
    clf: Classifier,
    origin: torch.Tensor,
    direction: torch.Tensor,
    t_max: float,
    *,
    samples: int = 64,
    rounds: int = 4,
) -> float | None:
    """The smallest ``t`` in ``(0, t_max]`` where the label of ``origin + t·direction/|direction|`` changes.

    ``samples`` evenly spaced points bracket the first change; each of ``rounds`` refinements
    evaluates ``samples`` points inside the bracket in one batch (a bisection with ``samples``
    branches), so the answer is within ``t_max / samples**(rounds + 1)``. None when no sample
    differs from the origin's label.
    """
    unit = (direction / direction.norm()).double()
    start = origin.double()
    start_label = int(clf.predict(start.float()))
    inside, outside = 0.0, float(t_max)
    found = False
    for _ in range(rounds + 1):
        ts = torch.linspace(inside, outside, samples + 1, dtype=torch.float64)[1:]
        points = start[None] + ts.reshape(-1, *([1] * start.dim())) * unit[None]
        changed = torch.nonzero(clf.predict(points.float()) != start_label).flatten()
        if changed.numel() == 0:
            if not found:
                return None
            inside = float(ts[-1])
            continue
        found = True
        k = int(changed[0])
        inside, outside = (inside if k == 0 else float(ts[k - 1])), float(ts[k])
    return 0.5 * (inside + outside)


__all__ = [
    "EXTENT_FLOOR_SHARE",
    "EXTENT_MULTIPLE",
    "box_intervals",
    "data_square",
    "default_extent",
    "extent_from_distance",
    "first_crossing",
    "outside_box",
    "pixels_outside",
]
