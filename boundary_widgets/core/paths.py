"""Paths that stay inside one class (Fawzi et al.) and class changes along straight lines.

A :class:`ConnectingPath` joins two same-class inputs by a polyline built by recursive
bisection: every segment is checked by classifying points sampled densely along it; a segment
that leaves the class is split at its midpoint, a midpoint outside the class is pulled back in by
a targeted DeepFool step, and the new anchor is then pushed deeper into the class along the
gradient of its class margin. :func:`line_profile` shows what the straight line does instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .classifier import Classifier
from .deepfool import deepfool
from .distributed import Executor, shardable
from .plane import Plane
from .progress import CancelEvent, Progress, Tracker, track
from .validation import check_number, check_positive_int

_BISECTION_STEPS = 30  # refines a class change on the straight line to 2**-30 of its length
_PUSH_STEPS = 16  # points tried along the margin's gradient when an anchor is pushed into the class


@dataclass(frozen=True, eq=False)
class LineProfile:
    """The classification of ``n`` evenly spaced points on the straight line from ``x_a`` to ``x_b``."""

    t: np.ndarray  # (n,) float64 in [0, 1]: point = x_a + t * (x_b - x_a)
    labels: np.ndarray  # (n,) int64 predicted class
    probabilities: np.ndarray  # (n, C) float32 softmax
    margins: np.ndarray  # (n,) float32 top-1 minus top-2 logit (>= 0)
    change_t: np.ndarray  # (n_changes,) float64 where the label changes, refined by bisection
    n_changes: int  # number of class changes between consecutive samples ("class skips")
    length: float  # L2 distance from x_a to x_b
    class_names: tuple[str, ...]

    @property
    def classes_crossed(self) -> list[int]:
        """The classes met along the line, in order, without repeats in a row."""
        keep = np.r_[True, self.labels[1:] != self.labels[:-1]]
        return [int(k) for k in self.labels[keep]]

    def __repr__(self) -> str:
        return f"LineProfile(n={self.t.size}, n_changes={self.n_changes}, classes={self.classes_crossed})"


@dataclass(frozen=True, eq=False)
class ConnectingPath:
    """A polyline from ``anchors[0]`` (``x_a``) to ``anchors[-1]`` (``x_b``) meant to stay in class ``label``.

    ``valid`` is True only when every point sampled along every segment was classified as
    ``label``; the check is as fine as ``max_spacing`` (the largest L2 gap between two checked
    points). A failed path keeps its anchors and samples, and ``reason`` says why it failed.
    """

    anchors: torch.Tensor  # (K, *input_shape) float32, CPU; K = n_anchors + 2
    positions: np.ndarray  # (M,) float64 arc length of each checked point from x_a (L2)
    anchor_positions: np.ndarray  # (K,) float64 arc length of each anchor from x_a (L2)
    labels: np.ndarray  # (M,) int64 predicted class of each checked point
    confidences: np.ndarray  # (M,) float32 probability of class `label` at each checked point
    probabilities: np.ndarray  # (M, C) float32 softmax at each checked point
    label: int  # the class of x_a and x_b
    valid: bool
    n_anchors: int  # intermediate anchors added (K - 2); 0 when the straight line stays in the class
    length: float  # L2 length of the polyline
    straight_length: float  # L2 distance from x_a to x_b
    max_spacing: float  # largest L2 distance between consecutive checked points
    depth: int  # bisection levels used
    n_evaluated: int  # classifier evaluations spent (checks and DeepFool steps)
    reason: str | None  # why the path failed; None when valid
    line: LineProfile  # the straight line's profile, from the first check
    class_names: tuple[str, ...]
    bounds: tuple[float, float]

    @property
    def class_name(self) -> str:
        return self.class_names[self.label]

    @property
    def straight(self) -> bool:
        """The straight line itself stays in the class (no anchor was needed)."""
        return self.valid and self.n_anchors == 0

    def __repr__(self) -> str:
        status = "valid" if self.valid else f"invalid: {self.reason}"
        return (
            f"ConnectingPath(class={self.class_name!r}, n_anchors={self.n_anchors}, "
            f"length={self.length:.4g}, straight_length={self.straight_length:.4g}, {status})"
        )

    def points_at(self, positions: object) -> torch.Tensor:
        """Points ``(n, *input_shape)`` on the polyline at the given arc lengths (clamped to [0, length])."""
        try:
            requested = np.asarray(positions, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as error:
            raise TypeError(f"`positions` must be numbers (arc lengths); got {positions!r:.60}.") from error
        if not np.isfinite(requested).all():
            raise ValueError("`positions` must be finite arc lengths; got NaN or Inf.")
        where = np.clip(requested, 0.0, self.length)
        flat = self.anchors.reshape(self.anchors.shape[0], -1).double()
        segment = np.clip(np.searchsorted(self.anchor_positions, where, side="right") - 1, 0, len(flat) - 2)
        span = np.diff(self.anchor_positions)[segment]
        fraction = np.where(span > 0, (where - self.anchor_positions[segment]) / np.where(span > 0, span, 1.0), 0.0)
        index = torch.as_tensor(segment)
        weight = torch.as_tensor(fraction)[:, None]
        points = flat[index] + weight * (flat[index + 1] - flat[index])
        return points.float().reshape(-1, *self.anchors.shape[1:])

    def plane(self, *, seed: int = 0) -> Plane:
        """The plane through ``x_a``, ``x_b`` and the anchor farthest from the straight line.

        Origin ``x_a``, ``u`` toward ``x_b``. When the path is straight (no anchor off the line)
        ``v`` is a random direction drawn with ``seed``.
        """
        check_positive_int(seed, "seed", minimum=0)
        flat = self.anchors.reshape(self.anchors.shape[0], -1).double()
        chord = flat[-1] - flat[0]
        if chord.norm() == 0:
            raise ValueError("`x_a` and `x_b` must differ for a path's plane; they are the same point.")
        unit = chord / chord.norm()
        offsets = flat - flat[0]
        off_line = offsets - (offsets @ unit)[:, None] * unit
        distances = off_line.norm(dim=1)
        farthest = int(distances.argmax())
        if distances[farthest] > 1e-6 * chord.norm():
            v = off_line[farthest]
        else:
            v = torch.randn(flat.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        shape = self.anchors.shape[1:]
        return Plane.through(self.anchors[0], chord.float().reshape(shape), v.float().reshape(shape))

    def plane_coordinates(self, plane: Plane | None = None) -> np.ndarray:
        """``(K, 2)`` (alpha, beta) of the anchors projected on ``plane`` (default :meth:`plane`)."""
        if plane is not None and not isinstance(plane, Plane):
            raise TypeError(f"`plane` must be a Plane; got {type(plane).__name__}.")
        plane = self.plane() if plane is None else plane
        return np.array([plane.coordinates(anchor) for anchor in self.anchors], dtype=np.float64)


@dataclass
class _Segment:
    """One segment of a path under construction (flat tensors on the classifier's device)."""

    start: torch.Tensor  # (d,)
    end: torch.Tensor  # (d,)
    logits: torch.Tensor | None = None  # (S + 1, C) once checked
    inside: bool = False


def _profile_from_logits(t: np.ndarray, logits: torch.Tensor, length: float, names: tuple[str, ...]) -> LineProfile:
    probabilities = torch.softmax(logits, dim=1)
    top2 = logits.topk(2, dim=1).values
    labels = logits.argmax(1).cpu().numpy().astype(np.int64)
    changes = np.flatnonzero(labels[1:] != labels[:-1])
    return LineProfile(
        t=t,
        labels=labels,
        probabilities=probabilities.cpu().numpy().astype(np.float32),
        margins=(top2[:, 0] - top2[:, 1]).cpu().numpy().astype(np.float32),
        change_t=(t[changes] + t[changes + 1]) / 2,
        n_changes=int(changes.size),
        length=length,
        class_names=names,
    )


def _check_pairs(clf: Classifier, x_a: object, x_b: object, batched: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    names = ("images_a", "images_b") if batched else ("x_a", "x_b")
    a = clf.check_inputs(x_a, names[0], batched=batched, in_bounds=True)
    b = clf.check_inputs(x_b, names[1], batched=batched, in_bounds=True)
    if a.shape[0] == 0:
        raise ValueError(f"`{names[0]}` must hold at least one image; got an empty batch.")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"`{names[0]}` and `{names[1]}` must hold as many inputs; got {a.shape[0]} and {b.shape[0]}.")
    return a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)


def line_profile(clf: Classifier, x_a: object, x_b: object, *, n: int = 101) -> LineProfile:
    """Labels, probabilities and margins at ``n`` points of the straight line from ``x_a`` to ``x_b``.

    Works for any two inputs. Each class change between consecutive samples is located by
    bisection; ``n_changes`` counts them (changes closer together than the spacing are missed).
    """
    a, b = _check_pairs(clf, x_a, x_b, batched=False)
    check_positive_int(n, "n", minimum=2)
    t = np.linspace(0.0, 1.0, n)
    t_device = torch.as_tensor(t, dtype=torch.float32, device=clf.device)[:, None]
    logits = clf.logits((a + t_device * (b - a)).reshape(-1, *clf.input_shape))
    profile = _profile_from_logits(t, logits, float((b - a).norm()), clf.class_names)
    if profile.n_changes:
        changes = np.flatnonzero(profile.labels[1:] != profile.labels[:-1])
        low, high = t[changes].copy(), t[changes + 1].copy()
        left = torch.as_tensor(profile.labels[changes], device=clf.device)
        for _ in range(_BISECTION_STEPS):
            middle = (low + high) / 2
            m = torch.as_tensor(middle, dtype=torch.float32, device=clf.device)[:, None]
            same = (clf.predict((a + m * (b - a)).reshape(-1, *clf.input_shape)) == left).cpu().numpy()
            low, high = np.where(same, middle, low), np.where(same, high, middle)
        profile = LineProfile(**{**profile.__dict__, "change_t": (low + high) / 2})
    return profile


def _check_options(samples_per_segment: int, max_depth: int, overshoot: float, max_iter: int, push: float) -> None:
    check_positive_int(samples_per_segment, "samples_per_segment", minimum=2)
    check_positive_int(max_depth, "max_depth", minimum=0)
    check_positive_int(max_iter, "max_iter")
    check_number(overshoot, "overshoot", minimum=0)
    check_number(push, "push", minimum=0)


def _check_same_class(clf: Classifier, a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> list[int]:
    """The class of each pair ``(a[i], b[i])`` (flat inputs); ``ValueError`` naming the first pair of two classes."""
    n_pairs = a.shape[0]
    start_labels = clf.predict(torch.cat([a, b]).reshape(-1, *clf.input_shape)).cpu()
    for i in range(n_pairs):
        la, lb = int(start_labels[i]), int(start_labels[n_pairs + i])
        if la != lb:
            where = f" (pair {i})" if names[0] == "images_a" else ""
            raise ValueError(
                f"`{names[0]}` and `{names[1]}` must be classified as the same class{where}; got "
                f"{clf.class_names[la]!r} and {clf.class_names[lb]!r}. A connecting path joins two inputs "
                f"of one class; use `line_profile` to see how the class changes between them."
            )
    return [int(k) for k in start_labels[:n_pairs]]


def _find_paths_arguments(
    clf: Classifier,
    images_a: object,
    images_b: object,
    *,
    max_depth: int,
    samples_per_segment: int,
    overshoot: float,
    max_iter: int,
    push: float,
) -> None:
    """:func:`find_paths`' arguments checked before any work (on a cluster: before sending any)."""
    _check_options(samples_per_segment, max_depth, overshoot, max_iter, push)
    a, b = _check_pairs(clf, images_a, images_b, batched=True)
    _check_same_class(clf, a, b, ("images_a", "images_b"))


def _class_margins(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``(..., )`` logit of ``classes`` minus the largest other logit: > 0 exactly where the point is in the class."""
    own = logits.gather(-1, classes[..., None])
    others = logits.scatter(-1, classes[..., None], float("-inf"))
    return own[..., 0] - others.amax(-1)


def _push_into_class(clf: Classifier, points: torch.Tensor, classes: torch.Tensor, reach: torch.Tensor) -> torch.Tensor:
    """Each of ``points`` ``(n, d)`` moved up to ``reach[i]`` (L2) along the gradient of its class margin, to the
    point of largest margin among ``_PUSH_STEPS + 1`` evenly spaced ones (clipped to the bounds).

    DeepFool stops just past the boundary, so its anchors sit where the class probability is about
    one half and the segments through them keep leaving the class; an anchor deep in the class lets
    them verify at shallow depth. The unmoved point is a candidate, so a point in the class stays in it.
    """
    shape = clf.input_shape
    with clf.evaluating(), torch.enable_grad():
        moving = points.detach().clone().requires_grad_(True)
        margins = _class_margins(clf.forward(moving.reshape(-1, *shape)), classes)
        (gradients,) = torch.autograd.grad(margins.sum(), moving)
    directions = gradients / gradients.norm(dim=1, keepdim=True).clamp_min(1e-12)
    steps = torch.linspace(0.0, 1.0, _PUSH_STEPS + 1, device=points.device)[None, :, None]
    candidates = (points[:, None] + steps * reach[:, None, None] * directions[:, None]).clamp(*clf.bounds)
    logits = clf.logits(candidates.reshape(-1, *shape)).reshape(len(points), _PUSH_STEPS + 1, -1)
    best = _class_margins(logits, classes[:, None].expand(-1, _PUSH_STEPS + 1)).argmax(1)
    return candidates[torch.arange(len(points), device=points.device), best]


def _find_paths(
    clf: Classifier,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    max_depth: int,
    samples_per_segment: int,
    overshoot: float,
    max_iter: int,
    push: float,
    names: tuple[str, str],
    tracker: Tracker,
) -> list[ConnectingPath]:
    n_pairs = a.shape[0]
    shape = clf.input_shape
    classes = _check_same_class(clf, a, b, names)
    t = torch.linspace(0.0, 1.0, samples_per_segment + 1, device=clf.device)[:, None]
    segments: list[list[_Segment]] = [[_Segment(a[i], b[i])] for i in range(n_pairs)]
    reasons: list[str | None] = [None] * n_pairs
    depths = [0] * n_pairs
    evaluated = [0] * n_pairs
    lines: list[LineProfile | None] = [None] * n_pairs

    for depth in range(max_depth + 1):
        pending = [(i, s) for i in range(n_pairs) if reasons[i] is None for s in segments[i] if s.logits is None]
        if not pending:
            break
        if depth:
            tracker.advance()
        # Every segment of this level, of every pair, checked in one batch.
        points = torch.cat([s.start + t * (s.end - s.start) for _, s in pending])
        logits = clf.logits(points.reshape(-1, *shape)).reshape(len(pending), t.shape[0], -1)
        for (i, s), seg_logits in zip(pending, logits, strict=True):
            s.logits = seg_logits
            s.inside = bool((seg_logits.argmax(1) == classes[i]).all())
            evaluated[i] += t.shape[0]
            depths[i] = depth
            if depth == 0:
                lines[i] = _profile_from_logits(
                    t[:, 0].double().cpu().numpy(), seg_logits, float((s.end - s.start).norm()), clf.class_names
                )
        failing = [(i, s) for i, s in pending if not s.inside]
        if depth == max_depth:
            for i, _ in failing:
                reasons[i] = reasons[i] or f"a segment still leaves the class after `max_depth`={max_depth} bisections"
            break
        pulled: dict[int, torch.Tensor] = {}
        for k in sorted({classes[i] for i, _ in failing}):
            group = [(i, s) for i, s in failing if classes[i] == k]
            middles = torch.stack([(s.start + s.end) / 2 for _, s in group])
            result = deepfool(
                clf,
                middles.reshape(-1, *shape),
                target=k,
                clip=True,
                overshoot=overshoot,
                max_iter=max_iter,
                cancel=tracker.cancel,
            )
            moved = middles + result.perturbations.reshape(len(group), -1).to(clf.device)
            if push > 0:
                reach = push * torch.stack([(s.end - s.start).norm() for _, s in group])
                moved = _push_into_class(clf, moved, torch.full((len(group),), k, device=clf.device), reach)
            for (i, s), point, ok, steps in zip(group, moved, result.converged, result.iterations, strict=True):
                evaluated[i] += int(steps) + 2 + (_PUSH_STEPS + 2 if push > 0 else 0)
                if bool(ok):
                    pulled[id(s)] = point
                elif reasons[i] is None:
                    reasons[i] = (
                        f"a midpoint at bisection level {depth + 1} could not be brought back into the class "
                        f"by DeepFool within `max_iter`={max_iter} steps"
                    )
        for i in {i for i, _ in failing}:
            if reasons[i] is None:
                split: list[_Segment] = []
                for s in segments[i]:
                    if s.inside or id(s) not in pulled:
                        split.append(s)
                    else:
                        split += [_Segment(s.start, pulled[id(s)]), _Segment(pulled[id(s)], s.end)]
                segments[i] = split

    return [
        _assemble(
            segments[i], classes[i], reasons[i], depths[i], evaluated[i], lines[i], clf, float((b[i] - a[i]).norm())
        )
        for i in range(n_pairs)
    ]


def _assemble(
    segments: list[_Segment],
    label: int,
    reason: str | None,
    depth: int,
    evaluated: int,
    line: LineProfile,
    clf: Classifier,
    straight_length: float,
) -> ConnectingPath:
    anchors = torch.stack([s.start for s in segments] + [segments[-1].end])
    lengths = np.array([float((s.end - s.start).norm()) for s in segments], dtype=np.float64)
    anchor_positions = np.r_[0.0, np.cumsum(lengths)]
    steps = segments[0].logits.shape[0] - 1
    fractions = np.linspace(0.0, 1.0, steps + 1)
    # Consecutive segments share an anchor: keep each checked point once.
    positions = np.concatenate(
        [anchor_positions[j] + lengths[j] * fractions[: steps + (j == len(segments) - 1)] for j in range(len(segments))]
    )
    logits = torch.cat([s.logits[: steps + (j == len(segments) - 1)] for j, s in enumerate(segments)])
    probabilities = torch.softmax(logits, dim=1).cpu().numpy().astype(np.float32)
    labels = logits.argmax(1).cpu().numpy().astype(np.int64)
    valid = reason is None and bool((labels == label).all())
    if reason is None and not valid:
        reason = "a checked point along the path is outside the class"
    return ConnectingPath(
        anchors=anchors.reshape(-1, *clf.input_shape).cpu(),
        positions=positions,
        anchor_positions=anchor_positions,
        labels=labels,
        confidences=probabilities[:, label].copy(),
        probabilities=probabilities,
        label=label,
        valid=valid,
        n_anchors=len(segments) - 1,
        length=float(lengths.sum()),
        straight_length=straight_length,
        max_spacing=float(lengths.max() / steps) if lengths.size else 0.0,
        depth=depth,
        n_evaluated=evaluated,
        reason=reason,
        line=line,
        class_names=clf.class_names,
        bounds=clf.bounds,
    )


def find_path(
    clf: Classifier,
    x_a: object,
    x_b: object,
    *,
    max_depth: int = 8,
    samples_per_segment: int = 32,
    overshoot: float = 0.1,
    max_iter: int = 50,
    push: float = 0.1,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> ConnectingPath:
    """A polyline from ``x_a`` to ``x_b`` that stays in their class, by recursive bisection.

    Each level classifies ``samples_per_segment + 1`` evenly spaced points on every segment not
    yet known to stay in the class (one batch per level). A failing segment is split at its
    midpoint; a midpoint outside the class is moved back into it by a targeted DeepFool
    (``overshoot``, ``max_iter``; clipped to the classifier's bounds, so the whole path stays in
    them), then pushed deeper into the class: along the gradient of its class margin (its class
    logit minus the largest other), up to ``push`` times the failing segment's length, to the
    point of largest margin on that stretch (``push=0`` keeps DeepFool's point, which sits on the
    boundary). After ``max_depth`` levels, or when a midpoint cannot be brought back, the path is
    returned with ``valid=False`` and a ``reason``. ``x_a`` and ``x_b`` must have the same
    predicted class; for inputs of different classes see :func:`line_profile`.
    ``progress``/``cancel``: one unit per bisection level (at most ``max_depth``); see :mod:`~.progress`.
    """
    _check_options(samples_per_segment, max_depth, overshoot, max_iter, push)
    a, b = _check_pairs(clf, x_a, x_b, batched=False)
    with track(progress, cancel, total=max_depth, desc="find_path") as tracker:
        return _find_paths(
            clf,
            a,
            b,
            max_depth=max_depth,
            samples_per_segment=samples_per_segment,
            overshoot=overshoot,
            max_iter=max_iter,
            push=push,
            names=("x_a", "x_b"),
            tracker=tracker,
        )[0]


@shardable(inputs=("images_a", "images_b"), check=_find_paths_arguments)
def find_paths(
    clf: Classifier,
    images_a: object,
    images_b: object,
    *,
    max_depth: int = 8,
    samples_per_segment: int = 32,
    overshoot: float = 0.1,
    max_iter: int = 50,
    push: float = 0.1,
    executor: Executor = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> list[ConnectingPath]:
    """:func:`find_path` for each pair ``(images_a[i], images_b[i])``, batched: each level checks the segments
    of all pairs in one batch and runs one DeepFool per class. ``images_a`` and ``images_b`` are
    ``(N, *input_shape)``. ``executor``: a ``distributed.Client`` runs the pairs in shards on its cluster
    (see :mod:`boundary_widgets.core.distributed`). ``progress``/``cancel``: one unit per bisection level."""
    _check_options(samples_per_segment, max_depth, overshoot, max_iter, push)
    a, b = _check_pairs(clf, images_a, images_b, batched=True)
    with track(progress, cancel, total=max_depth, desc="find_paths") as tracker:
        return _find_paths(
            clf,
            a,
            b,
            max_depth=max_depth,
            samples_per_segment=samples_per_segment,
            overshoot=overshoot,
            max_iter=max_iter,
            push=push,
            names=("images_a", "images_b"),
            tracker=tracker,
        )


__all__: Sequence[str] = ["ConnectingPath", "LineProfile", "find_path", "find_paths", "line_profile"]
