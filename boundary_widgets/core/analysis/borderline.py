"""Borderline samples between two classes and their characteristics (Karimi et al., DeepDIG)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch

from ..classifier import Classifier
from ..deepfool import candidate_gradients, deepfool
from ..distributed import PER_IMAGE, Executor, ShardError, Sharding, shardable
from ..distributed.sharding import prepare, run_jobs, unwritten
from ..progress import CancelEvent, Progress, Tracker, check_protocol, track
from ..validation import check_choice, check_class_index, check_number, check_positive_int
from .feature_space import FeatureSpace

FAILURES = (
    "",
    "not source",
    "adversarial step did not reach target",
    "third class",
    "iteration cap",
    "projection did not reach the source/target boundary",
)
# How each image's pair of ends is made (see borderline_samples).
Pairs = Literal["boundary-projection", "image-adversarial"]
PAIRS: tuple[str, ...] = get_args(Pairs)


def _nonempty(batch: torch.Tensor, name: str) -> torch.Tensor:
    if batch.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one image; got an empty batch.")
    return batch


@dataclass(frozen=True, eq=False)
class BorderlineSamples:
    """Per source image: the bisection of its pair (a source-side and a target-side end) down to the boundary."""

    samples: torch.Tensor = field(metadata=PER_IMAGE)  # (N, *input_shape) s + t (e - s) where bisection stopped
    source_points: torch.Tensor = field(metadata=PER_IMAGE)  # (N, *input_shape) the pair's source-side end s
    target_points: torch.Tensor = field(metadata=PER_IMAGE)  # (N, *input_shape) the pair's target-side end e
    fraction: np.ndarray = field(metadata=PER_IMAGE)  # (N,) float64, t in [0, 1] along the pair
    p_source: np.ndarray = field(metadata=PER_IMAGE)  # (N,) float64, softmax probability of `source` at the sample
    p_target: np.ndarray = field(metadata=PER_IMAGE)  # (N,) float64
    distances: np.ndarray = field(metadata=PER_IMAGE)  # (N,) float64, L2 distance from each image to its sample
    iterations: np.ndarray = field(metadata=PER_IMAGE)  # (N,) int64, bisection steps taken
    success: np.ndarray = field(metadata=PER_IMAGE)  # (N,) bool, |p_source - p_target| < threshold, both the top two
    # "" on success, else one of FAILURES[1:] (a third class names it: "third class 7"):
    failure: tuple[str, ...] = field(metadata=PER_IMAGE)  # (N,)
    source: int
    target: int
    threshold: float
    pairs: str  # one of PAIRS: how the ends were made

    def __repr__(self) -> str:
        return (
            f"BorderlineSamples({self.source}->{self.target}, pairs={self.pairs!r}, "
            f"success={int(self.success.sum())}/{self.success.size})"
        )


# Third classes whose linearised constraints each projection step considers (the highest at the point).
_THIRD_CLASSES = 8
# The projection keeps every third class this far below so that p_source + p_target >= _PAIR_SHARE at z
# (DeepDIG's borderline samples have 0.97-0.99 there: the two classes, not a third, share the probability).
_PAIR_SHARE = 0.95


def _boundary_pairs(
    clf: Classifier,
    batch: torch.Tensor,
    source: int,
    target: int,
    max_iter: int,
    overshoot: float,
    tracker: Tracker,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Ends ``z ∓ ε u`` either side of the source/target boundary near each image, and which reached it.

    Each step is the least-norm ``r`` with ``(w_t − w_s)·r = −(f_t − f_s)`` and, for each third class
    ``k`` whose linearised gap would end above ``−m_k``, ``(w_k − w_s)·r = −(f_k − f_s) − m_k`` (an
    active set grown until no constraint is broken). ``m_k`` is the larger of ``2ε‖w_k − w_s‖`` (the
    third class at least ``2ε`` away in input units) and ``ln((C − 2) q / 2(1 − q))``, which makes
    ``p_s + p_t ≥ q = _PAIR_SHARE`` where ``f_s = f_t``. Steps stop when ``|f_t − f_s| / ‖w_t − w_s‖ < ε / 10`` with no third class above ``−m_k / 2``.
    """
    n, shape = batch.shape[0], clf.input_shape
    flat = batch.reshape(n, -1).to(clf.device)
    z = flat.clone()
    done = np.zeros(n, dtype=bool)
    normal = torch.zeros_like(flat)
    others = torch.tensor([k for k in range(clf.num_classes) if k not in (source, target)], device=clf.device)
    width = min(_THIRD_CLASSES, others.numel())
    share_margin = math.log(max(1, others.numel()) * _PAIR_SHARE / (2 * (1 - _PAIR_SHARE)))
    with clf.evaluating(), torch.enable_grad():
        for _ in range(max_iter + 1):
            tracker.check()
            rows = np.flatnonzero(~done)
            if rows.size == 0:
                break
            index = torch.as_tensor(rows, device=clf.device)
            with torch.no_grad():
                logits = clf.forward(z[index].reshape(-1, *shape))
            third = others[logits[:, others].topk(width, dim=1).indices] if width else others.new_zeros((rows.size, 0))
            pair = torch.tensor([source, target], device=clf.device).expand(rows.size, 2)
            logits, grads = candidate_gradients(clf, z[index].reshape(-1, *shape), torch.cat([pair, third], dim=1))
            values = (
                logits.gather(1, torch.cat([pair[:, 1:], third], dim=1)) - logits[:, source : source + 1]
            ).double()
            w = (grads[:, 1:] - grads[:, :1]).double()  # (a, 1 + width, d): target, then third classes, minus source
            norms = w.norm(dim=2)
            epsilon = (overshoot * (z[index] - flat[index]).double().norm(dim=1)).clamp_min(1e-4)
            margins = (2 * epsilon[:, None] * norms[:, 1:]).clamp_min(share_margin)
            at_boundary = values[:, 0].abs() < epsilon / 10 * norms[:, 0]
            clear = (values[:, 1:] < -margins / 2).all(1)
            finished = (at_boundary & clear).cpu().numpy()
            normal[index] = (w[:, 0] / norms[:, :1].clamp_min(1e-300)).float()
            done[rows[finished]] = True
            if _ == max_iter or finished.all():
                break
            goal = -torch.cat([values[:, :1], values[:, 1:] + margins], dim=1)  # (a, 1 + width)
            gram = w @ w.transpose(1, 2)
            step = torch.zeros_like(flat[index], dtype=torch.float64)
            for i in np.flatnonzero(~finished):
                active = [0]
                while True:
                    solution = torch.linalg.lstsq(gram[i][active][:, active], goal[i][active, None]).solution
                    predicted = gram[i][:, active] @ solution
                    broken = [
                        j for j in range(1, 1 + width) if j not in active and predicted[j, 0] > goal[i, j] + 1e-12
                    ]
                    if not broken:
                        break
                    active += broken
                step[i] = (w[i][active].T @ solution)[:, 0]
            z[index] = (z[index].double() + step).float().clamp(*clf.bounds)
    z = z.cpu()
    normal = normal.cpu()
    epsilon = (overshoot * (z - flat.cpu()).double().norm(dim=1)).clamp_min(1e-4).float()[:, None]
    starts, ends = (z - epsilon * normal).clamp(*clf.bounds), (z + epsilon * normal).clamp(*clf.bounds)
    labels = clf.predict(torch.cat([starts, ends]).reshape(-1, *shape)).cpu().numpy()
    reached = done & (labels[:n] == source) & (labels[n:] == target)
    return starts.reshape(n, *shape), ends.reshape(n, *shape), reached


def _check_options(
    *, pairs: str = PAIRS[0], threshold: float, bisection_steps: int, max_iter: int, overshoot: float = 0.02
) -> None:
    check_choice(pairs, "pairs", PAIRS)
    check_number(threshold, "threshold", minimum=0, maximum=1, exclusive=True)
    check_positive_int(bisection_steps, "bisection_steps")
    check_positive_int(max_iter, "max_iter")
    check_number(overshoot, "overshoot", minimum=0)


def _borderline_arguments(
    clf: Classifier,
    images: object,
    source: int,
    target: int,
    *,
    pairs: str,
    threshold: float,
    bisection_steps: int,
    max_iter: int,
    overshoot: float,
) -> tuple[torch.Tensor, int, int]:
    """:func:`borderline_samples`' arguments checked (before any work): the batch (on the CPU), source, target."""
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    batch = _nonempty(clf.check_inputs(images, "images", batched=True, in_bounds=True), "images").cpu()
    source = check_class_index(source, "source", clf.num_classes)
    target = check_class_index(target, "target", clf.num_classes)
    if source == target:
        raise ValueError(f"`target` must differ from `source`; got {target} for both.")
    _check_options(
        pairs=pairs, threshold=threshold, bisection_steps=bisection_steps, max_iter=max_iter, overshoot=overshoot
    )
    return batch, source, target


@shardable(inputs=("images",), check=_borderline_arguments)
def borderline_samples(
    clf: Classifier,
    images: object,
    source: int,
    target: int,
    *,
    pairs: Pairs = "boundary-projection",
    threshold: float = 1e-4,
    bisection_steps: int = 60,
    max_iter: int = 50,
    overshoot: float = 0.02,
    executor: Executor = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> BorderlineSamples:
    """Borderline samples between ``source`` and ``target``, the paper's bisection of adversarial pairs.

    Each image (predicted ``source``) gives a pair of ends, one of each class, whose segment is
    bisected (keeping one end of each class) until ``|p_source − p_target| < threshold`` or
    ``bisection_steps`` steps. ``pairs``:

    - ``"boundary-projection"`` (default): both ends lie just either side of the source/target
      boundary where no third class wins. From the image, linearised least-norm steps (DeepFool's,
      with several constraints at once) move to ``f_source = f_target`` while every other class stays
      below them by a margin (its linearised constraint enters the step when it would be broken); from
      that point ``z`` the ends are ``z ∓ ε u`` (``u`` the unit normal of ``f_target − f_source``,
      ``ε = overshoot · ‖z − x‖``). This plays the part of the paper's generator (an autoencoder
      trained for adversarials, then adversarials of those) with its aim made explicit: the paper
      bisects between two points near the source/target boundary. Two chained targeted DeepFools do
      not do that on digits-cnn: the adversarial lands where ``target`` meets a third class and the
      segment back crosses it (3→8: 55/137 successes, 4→9: 52/136).
    - ``"image-adversarial"``: the image itself and its targeted DeepFool adversarial (clipped). The
      long segment often crosses a third class (digits-cnn 3→8: 75/137 successes, 4→9: 52/136).

    ``max_iter`` and ``overshoot`` are DeepFool's. A midpoint of a third class ends that pair as a
    failure; failures stay in the result, named. ``distances`` are from each image to its sample.
    ``executor``: a ``distributed.Client`` runs the images in shards on its cluster (see :mod:`~.core.distributed`).
    ``progress``/``cancel``: one unit for the pairs, then one per bisection step; see :mod:`~.core.progress`.
    """
    batch, source, target = _borderline_arguments(
        clf,
        images,
        source,
        target,
        pairs=pairs,
        threshold=threshold,
        bisection_steps=bisection_steps,
        max_iter=max_iter,
        overshoot=overshoot,
    )
    projection = pairs == PAIRS[0]
    with track(progress, cancel, total=bisection_steps + 1, desc="borderline samples") as tracker:
        n = batch.shape[0]
        failure = np.full(n, "", dtype=object)
        failure[clf.predict(batch).cpu().numpy() != source] = FAILURES[1]
        if projection:
            starts, ends, reached = _boundary_pairs(clf, batch, source, target, max_iter, overshoot, tracker)
            failure[(failure == "") & ~reached] = FAILURES[5]
        else:
            adversarial = deepfool(
                clf, batch, target=target, clip=True, max_iter=max_iter, overshoot=overshoot, cancel=tracker.cancel
            )
            starts, ends = batch, batch + adversarial.perturbations
            failure[(failure == "") & ~adversarial.converged.numpy()] = FAILURES[2]
        tracker.advance()

        low, high = np.zeros(n), np.ones(n)  # fractions of source-side and target-side ends
        fraction, p_s, p_t = np.ones(n), np.zeros(n), np.zeros(n)
        iterations = np.zeros(n, dtype=np.int64)
        active = failure == ""
        delta = (ends - starts).double()
        for _ in range(bisection_steps):
            if not active.any():
                break
            tracker.advance()
            rows = np.flatnonzero(active)
            middle = (low[rows] + high[rows]) / 2
            points = starts[rows].double() + torch.from_numpy(middle).reshape(-1, *[1] * (batch.ndim - 1)) * delta[rows]
            probabilities = clf.probabilities(points.float()).double().cpu().numpy()
            label = probabilities.argmax(1)
            fraction[rows], p_s[rows], p_t[rows] = middle, probabilities[:, source], probabilities[:, target]
            iterations[rows] += 1
            third = (label != source) & (label != target)
            for row, k in zip(rows[third], label[third], strict=True):
                failure[row] = f"{FAILURES[3]} {k}"
            reached = ~third & (np.abs(p_s[rows] - p_t[rows]) < threshold)
            low[rows] = np.where(label == source, middle, low[rows])
            high[rows] = np.where(label == target, middle, high[rows])
            active[rows[third | reached]] = False
        failure[active] = FAILURES[4]
        untouched = iterations == 0
        fraction[untouched] = 0.0
        samples = (starts.double() + torch.from_numpy(fraction).reshape(-1, *[1] * (batch.ndim - 1)) * delta).float()
        return BorderlineSamples(
            samples=samples,
            source_points=starts,
            target_points=ends,
            fraction=fraction,
            p_source=p_s,
            p_target=p_t,
            distances=(samples - batch).flatten(1).double().norm(dim=1).numpy(),
            iterations=iterations,
            success=failure == "",
            failure=tuple(str(f) for f in failure),
            source=source,
            target=target,
            threshold=float(threshold),
            pairs=pairs,
        )


def borderline_pairs(
    clf: Classifier,
    images: object,
    classes: Sequence[int],
    *,
    threshold: float = 1e-4,
    bisection_steps: int = 60,
    max_iter: int = 50,
    executor: Executor = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> dict[tuple[int, int], BorderlineSamples]:
    """:func:`borderline_samples` for every ordered pair of ``classes``.

    For the pair ``(source, target)`` the images are those of ``images`` predicted ``source``; a
    class no image is predicted as has no pairs in the result. ``threshold``, ``bisection_steps`` and
    ``max_iter`` (DeepFool steps) go to each call. With ``executor`` every pair's shards go to the cluster at once
    (with a ``Sharding`` store, each pair in its own subfolder ``source-target``); ``progress``
    counts pairs in-process and images on a cluster.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    batch = clf.check_inputs(images, "images", batched=True, in_bounds=True).cpu()
    chosen = [check_class_index(k, "classes", clf.num_classes) for k in classes]
    if len(set(chosen)) != len(chosen) or len(chosen) < 2:
        raise ValueError(f"`classes` must hold at least two different class indices; got {list(classes)!r}.")
    options = {"threshold": threshold, "bisection_steps": bisection_steps, "max_iter": max_iter}
    _check_options(**options)
    predicted = clf.predict(batch).cpu()
    groups = {k: batch[predicted == k] for k in chosen if bool((predicted == k).any())}
    pairs = [(s, t) for s in groups for t in chosen if s != t]
    if executor is None:
        results = {}
        with track(progress, cancel, total=len(pairs), desc="borderline pairs") as tracker:
            for s, t in pairs:
                results[s, t] = borderline_samples(clf, groups[s], s, t, **options, cancel=tracker.cancel)
                tracker.advance()
        return results
    sharding = Sharding.of(executor)
    spec = borderline_samples.shard_spec
    jobs = [
        prepare(spec, spec.bind(clf, groups[s], s, t, **options), sharding.in_subfolder(f"{s}-{t}")) for s, t in pairs
    ]
    run_jobs(jobs, sharding, progress, cancel, "borderline pairs")
    results: dict[tuple[int, int], Any] = {}
    failures, indices = [], {}
    for pair, job in zip(pairs, jobs, strict=True):
        results[pair], failed, indices[pair] = job.merged()
        failures += [dataclasses.replace(f, where=f"pair {pair[0]}->{pair[1]}") for f in failed]
    if failures:
        raise ShardError(failures, results, indices, sum(job.size for job in jobs)) from failures[0].error
    unwritable = next((job.store_error for job in jobs if job.store_error is not None), None)
    if unwritable is not None:
        raise unwritten(unwritable, results)
    return results


@dataclass(frozen=True, eq=False)
class TrajectoryComplexity:
    """Label changes along straight lines from each image to randomly drawn partners (DeepDIG).

    ``np.asarray(result)`` gives ``changes``, as the bare array this function once returned.
    """

    changes: np.ndarray  # (N, n_partners) int64, label changes from one point of the segment to the next
    partners: np.ndarray  # (N, n_partners) int64, index into `partner_images` of each segment's end
    n_points: int  # points checked on each segment, ends included

    @property
    def mean_changes(self) -> float:
        return float(self.changes.mean())

    def __array__(self, dtype: object = None, copy: bool | None = None) -> np.ndarray:
        return self.changes if dtype is None else self.changes.astype(dtype)

    def __repr__(self) -> str:
        n, k = self.changes.shape
        return f"TrajectoryComplexity(images={n}, partners={k}, n_points={self.n_points}, mean_changes={self.mean_changes:.3g})"


def trajectory_label_changes(
    clf: Classifier,
    images: object,
    partner_images: object,
    *,
    n_partners: int = 50,
    n_points: int = 50,
    seed: int = 0,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> TrajectoryComplexity:
    """The paper's input-space complexity: label changes along straight lines to random partners.

    For each of ``images``, ``n_partners`` partners drawn from ``partner_images`` and ``n_points``
    points on each segment; ``changes`` ``(N, n_partners)`` counts label changes from one point to the next.
    ``progress``/``cancel``: one unit per image of ``images``; see :mod:`~.core.progress`.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    start_batch = _nonempty(clf.check_inputs(images, "images", batched=True, in_bounds=True), "images").cpu()
    partner_batch = clf.check_inputs(partner_images, "partner_images", batched=True, in_bounds=True).cpu()
    _nonempty(partner_batch, "partner_images")
    check_positive_int(n_partners, "n_partners")
    check_positive_int(n_points, "n_points", minimum=2)
    check_positive_int(seed, "seed", minimum=0)
    check_protocol(progress, cancel)
    rng = np.random.default_rng(seed)
    n = start_batch.shape[0]
    chosen = rng.integers(0, partner_batch.shape[0], size=(n, n_partners))
    t = torch.linspace(0, 1, n_points).reshape(1, n_points, *[1] * (start_batch.ndim - 1))
    changes = np.zeros((n, n_partners), dtype=np.int64)
    with track(progress, cancel, total=n, desc="trajectories") as tracker:
        for i in range(n):  # one image's lines at a time: n_partners * n_points inputs in memory
            a = start_batch[i][None, None]
            b = partner_batch[torch.as_tensor(chosen[i])][:, None]
            labels = clf.predict((a + t * (b - a)).reshape(-1, *clf.input_shape)).cpu().numpy()
            changes[i] = (np.diff(labels.reshape(n_partners, n_points), axis=1) != 0).sum(axis=1)
            tracker.advance()
    return TrajectoryComplexity(changes=changes, partners=chosen.astype(np.int64), n_points=int(n_points))


@dataclass(frozen=True, eq=False)
class EmbeddingLinearity:
    """A linear SVM on the features of two classes, and where borderline samples fall against it."""

    accuracy: float  # training accuracy of LinearSVC(C=1) separating source from target features
    borderline_distance: np.ndarray  # (M,) |SVM decision| / |w| of each borderline sample's features
    class_distance_median: float  # median of the same for the class features, for scale
    borderline_side: np.ndarray  # (M,) int64, the SVM's side of each borderline sample (0 source, 1 target)

    def __repr__(self) -> str:
        return (
            f"EmbeddingLinearity(accuracy={self.accuracy:.3f}, borderline={self.borderline_distance.size}, "
            f"median_borderline_distance={float(np.median(self.borderline_distance)):.4g}, "
            f"class_distance_median={self.class_distance_median:.4g})"
        )


def embedding_linearity(
    space: FeatureSpace,
    source_images: object,
    target_images: object,
    borderline_images: object,
    *,
    C: float = 1.0,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> EmbeddingLinearity:
    """The paper's embedding-space linearity: ``LinearSVC(C=1)`` on features of ``source`` and ``target`` images.

    ``borderline_images`` may also be a :class:`BorderlineSamples` (its successful samples are used).
    ``progress``/``cancel``: one unit per batch of features and one for the SVM; see :mod:`~.core.progress`.
    """
    if not isinstance(space, FeatureSpace):
        raise TypeError(f"`space` must be a FeatureSpace; got {type(space).__name__}.")
    if isinstance(borderline_images, BorderlineSamples):
        borderline_images = borderline_images.samples[torch.as_tensor(borderline_images.success)]
    check_number(C, "C", minimum=0, exclusive=True)
    clf = space.clf
    batches = {}
    for name, value in (
        ("source_images", source_images),
        ("target_images", target_images),
        ("borderline_images", borderline_images),
    ):
        batches[name] = _nonempty(clf.check_inputs(value, name, batched=True, in_bounds=True), name)
    check_protocol(progress, cancel)
    # scikit-learn is imported here only: the core's import-time dependencies stay torch/numpy/scipy.
    from sklearn.svm import LinearSVC

    with track(progress, cancel, total=4, desc="embedding linearity") as tracker:
        features_of = {}
        for name, batch in batches.items():
            features_of[name] = space.features(batch).flatten(1).cpu().numpy()
            tracker.advance()
        source, target, border = features_of.values()
        features = np.vstack([source, target])
        labels = np.r_[np.zeros(len(source)), np.ones(len(target))]
        svm = LinearSVC(C=C, max_iter=20000).fit(features, labels)
        tracker.advance()
    norm = np.linalg.norm(svm.coef_)
    return EmbeddingLinearity(
        accuracy=float(svm.score(features, labels)),
        borderline_distance=np.abs(svm.decision_function(border)) / norm,
        class_distance_median=float(np.median(np.abs(svm.decision_function(features)) / norm)),
        borderline_side=svm.predict(border).astype(np.int64),
    )


__all__ = [
    "FAILURES",
    "BorderlineSamples",
    "EmbeddingLinearity",
    "TrajectoryComplexity",
    "borderline_pairs",
    "borderline_samples",
    "embedding_linearity",
    "trajectory_label_changes",
]
