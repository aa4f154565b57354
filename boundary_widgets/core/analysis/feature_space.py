"""The feature space of a layer (Yousefzadeh): a feature extractor and a head classifier over features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..classifier import Classifier
from ..progress import CancelEvent, Progress, check_protocol, track
from ..validation import check_number, check_positive_int
from .hull import hull_membership


def _split(net: nn.Module, layer: int | str | None, head: nn.Module | None) -> tuple[nn.Module, nn.Module, str]:
    """(module whose output is the features, head module mapping features to logits, a readable name)."""
    if head is not None:
        if not isinstance(head, nn.Module):
            raise TypeError(f"`head` must be a torch.nn.Module; got {type(head).__name__}.")
        if not isinstance(layer, str):
            raise TypeError(f"`layer` must name a submodule (a str) when `head` is given; got {layer!r}.")
        return _submodule(net, layer), head, layer
    if isinstance(net, nn.Sequential):
        children = list(net)
        if layer is None:
            linear = [i for i, child in enumerate(children) if isinstance(child, nn.Linear)]
            if not linear or linear[-1] == 0:
                raise ValueError(
                    "`layer` must be given: this nn.Sequential has no hidden layer before a last nn.Linear."
                )
            layer = linear[-1]
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 < layer < len(children):
            raise ValueError(
                f"`layer` must be a split index in [1, {len(children)}) for this nn.Sequential; got {layer!r}."
            )
        return children[layer - 1], nn.Sequential(*children[layer:]), f"[:{layer}]"
    if hasattr(net, "features") and hasattr(net, "head") and layer in (None, "features"):
        return net.features, net.head, "features"
    raise ValueError(
        f"`layer` {layer!r} cannot be split automatically for {type(net).__name__}: pass `layer` (a submodule name) "
        "and `head` (the module mapping its output to the logits)."
    )


def _check_bounds(bounds: object) -> None:
    try:
        low, high = (check_number(b, "bounds") for b in bounds)  # type: ignore[union-attr]
    except (TypeError, ValueError) as error:
        raise TypeError(f"`bounds` must be a pair of finite numbers (low, high); got {bounds!r:.80}.") from error
    if not low < high:
        raise ValueError(f"`bounds` must have low < high; got {bounds!r}.")


def _submodule(net: nn.Module, name: str) -> nn.Module:
    try:
        return net.get_submodule(name)
    except AttributeError as error:
        raise ValueError(f"`layer` must name a submodule of the model; got {name!r}.") from error


class FeatureSpace:
    """A model split at a layer: ``features(x)`` and a head :class:`Classifier` over the features.

    ``head`` is a ``bw.Classifier`` whose input space is the feature space, so slices, directions,
    DeepFool and paths work there with the same API. Its bounds are the range of the features of
    ``images`` widened by ``padding`` of the range on each side (or ``bounds`` when given). The
    default ``layer`` is the last hidden layer: ``net.features`` for models with ``features`` and
    ``head`` (the zoo), the input of the last ``nn.Linear`` for an ``nn.Sequential`` (an int splits
    a Sequential before that child). Other models: ``layer`` names the submodule and ``head`` maps
    its output to the logits; the split is checked to reproduce the model's logits.
    """

    def __init__(
        self,
        clf: Classifier,
        layer: int | str | None = None,
        *,
        head: nn.Module | None = None,
        images: object = None,
        bounds: tuple[float, float] | None = None,
        padding: float = 0.1,
    ) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
        if images is None and bounds is None:
            raise ValueError("`images` or `bounds` must be given: the head's bounds come from the observed features.")
        check_number(padding, "padding", minimum=0)
        if bounds is not None:
            _check_bounds(bounds)
        probe = None
        if images is not None:
            probe = clf.check_inputs(images, "images", batched=True, in_bounds=True)
            if probe.shape[0] == 0:
                raise ValueError("`images` must hold at least one image; got an empty batch.")
        self.clf = clf
        # The split is taken of the classifier's eval view, so hooks and modes never touch the user's module.
        self._network = clf.eval_view()
        if isinstance(self._network, torch.jit.ScriptModule):
            raise ValueError(
                "`clf` runs a TorchScript module, whose layers take no forward hooks: build the Classifier from the "
                "original (not scripted or traced) module to split it into a feature space."
            )
        self._feature_module, head_module, self.layer = _split(self._network, layer, head)
        if isinstance(self._feature_module, torch.jit.ScriptModule):
            raise ValueError(f"`layer` {layer!r} is inside a TorchScript module, whose layers take no forward hooks.")
        if probe is None:
            low, high = clf.bounds
            probe = torch.full((2, *clf.input_shape), (low + high) / 2, device=clf.device)
        features = self.features(probe)
        self.feature_shape = tuple(features.shape[1:])
        if bounds is None:
            low, high = float(features.min()), float(features.max())
            pad = padding * max(high - low, 1e-6)
            bounds = (low - pad, high + pad)
        self.head = Classifier(head_module, input_shape=self.feature_shape, bounds=bounds, class_names=clf.class_names)
        # A split that skips work done in the model's forward (or does it twice) would measure another model.
        expected = clf.logits(probe)
        if not torch.allclose(self.head.logits(features), expected, atol=1e-4 * (1 + float(expected.abs().max()))):
            raise ValueError(
                f"`layer` {layer!r}: the head applied to the features does not reproduce the model's logits."
            )

    def __repr__(self) -> str:
        return f"FeatureSpace(layer={self.layer!r}, feature_shape={self.feature_shape}, bounds={self.head.bounds})"

    def features(self, x: object, *, batch_size: int = 1024) -> torch.Tensor:
        """Features ``(N, *feature_shape)`` of a batch of inputs (pixel space), on the model's device."""
        batch = self.clf.check_inputs(x)
        check_positive_int(batch_size, "batch_size")
        captured: list[torch.Tensor] = []
        hook = self._feature_module.register_forward_hook(lambda _m, _i, output: captured.append(output.detach()))
        try:
            with torch.no_grad():
                for chunk in batch.split(batch_size):
                    self._network(self.clf.normalise(chunk))
        finally:
            hook.remove()
        return torch.cat(captured).float()


@dataclass(frozen=True, eq=False)
class ClassHulls:
    """Per class: is the hull of its training features classified as it, and how many test features leave it."""

    classes: np.ndarray  # (C,) int64
    hull_accuracy: np.ndarray  # (C,) share of sampled convex combinations the head labels as the class
    test_outside: np.ndarray  # (C,) share of the class's test features outside its training hull
    test_distance_median: np.ndarray  # (C,) median distance of those test features to the hull (feature units)
    n_train: np.ndarray  # (C,) correctly classified training points that span each hull
    n_test: np.ndarray  # (C,) test points checked per class

    def __repr__(self) -> str:
        return (
            f"ClassHulls(classes={self.classes.size}, min_hull_accuracy={self.hull_accuracy.min():.3f}, "
            f"test_outside={self.test_outside.mean():.3f})"
        )


def _check_labels(labels: object, name: str, count: int, num_classes: int) -> torch.Tensor:
    """Integer class labels ``(count,)`` in ``[0, num_classes)``, as a CPU int64 tensor."""
    if isinstance(labels, torch.Tensor):
        array = labels.detach().cpu().numpy()
    elif isinstance(labels, np.ndarray | list | tuple):
        array = np.asarray(labels)
    else:
        raise TypeError(f"`{name}` must be an array of class indices; got {type(labels).__name__}.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer class indices; got dtype {array.dtype}.")
    if array.shape != (count,):
        raise ValueError(f"`{name}` must have one label per image ({count},); got shape {array.shape}.")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"`{name}` must hold class indices in [0, {num_classes}); got values in [{array.min()}, {array.max()}]."
        )
    return torch.as_tensor(array.astype(np.int64))


def _convex_samples(points: torch.Tensor, count: int, rng: np.random.Generator) -> torch.Tensor:
    """Random convex combinations: half of three points (near the hull's faces), half of all (its interior)."""
    n = points.shape[0]
    weights = np.zeros((count, n))
    for row in weights[: count // 2]:
        chosen = rng.choice(n, size=min(n, 3), replace=False)
        row[chosen] = rng.dirichlet(np.ones(chosen.size))
    weights[count // 2 :] = rng.dirichlet(np.full(n, 0.3), size=count - count // 2)
    return torch.as_tensor(weights, dtype=torch.float32) @ points


def class_hulls(
    space: FeatureSpace,
    train_images: object,
    train_labels: object,
    test_images: object,
    test_labels: object,
    *,
    samples_per_class: int = 200,
    max_test_per_class: int = 20,
    seed: int = 0,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> ClassHulls:
    """The paper's two checks per class, with the hull of its correctly classified training features.

    ``hull_accuracy``: share of ``samples_per_class`` random convex combinations that the head
    labels as the class (1 for a linear head, by convexity of its regions). ``test_outside``: share
    of (at most ``max_test_per_class``) test features of the class outside the hull, by linear program.
    """
    if not isinstance(space, FeatureSpace):
        raise TypeError(f"`space` must be a FeatureSpace; got {type(space).__name__}.")
    check_positive_int(samples_per_class, "samples_per_class", minimum=2)
    check_positive_int(max_test_per_class, "max_test_per_class")
    check_positive_int(seed, "seed", minimum=0)
    check_protocol(progress, cancel)
    clf = space.clf
    train_batch = clf.check_inputs(train_images, "train_images", batched=True, in_bounds=True)
    test_batch = clf.check_inputs(test_images, "test_images", batched=True, in_bounds=True)
    train_y = _check_labels(train_labels, "train_labels", train_batch.shape[0], clf.num_classes)
    test_y = _check_labels(test_labels, "test_labels", test_batch.shape[0], clf.num_classes)
    if train_batch.shape[0] == 0:
        raise ValueError("`train_images` must hold at least one image; got an empty batch.")
    train = space.features(train_batch).cpu()
    test = space.features(test_batch).cpu() if test_batch.shape[0] else test_batch.new_zeros((0, *space.feature_shape))
    predicted = space.head.predict(train).cpu()
    rng = np.random.default_rng(seed)
    classes = np.unique(train_y.numpy())
    correct = {int(c): train[(train_y == c) & (predicted == c)].flatten(1) for c in classes}
    empty = [clf.class_names[c] for c, points in correct.items() if points.shape[0] == 0]
    if empty:
        raise ValueError(
            f"`train_images` must hold a correctly classified image of each class in `train_labels`; "
            f"none for {empty}, so their hulls are empty."
        )
    rows = []
    with track(progress, cancel, total=len(classes), desc="class hulls") as tracker:
        for c in classes:
            rows.append(
                _class_hull_row(
                    space, int(c), correct[int(c)], test[test_y == c], max_test_per_class, samples_per_class, rng
                )
            )
            tracker.advance()
    accuracy, outside, distance, n_train, n_test = (np.array(column) for column in zip(*rows, strict=True))
    return ClassHulls(classes.astype(np.int64), accuracy, outside, distance, n_train, n_test)


def _class_hull_row(
    space: FeatureSpace,
    c: int,
    points: torch.Tensor,
    test: torch.Tensor,
    max_test_per_class: int,
    samples_per_class: int,
    rng: np.random.Generator,
) -> tuple[float, float, float, int, int]:
    """(hull accuracy, share of test features outside, their median distance, n_train, n_test) of class ``c``."""
    samples = _convex_samples(points, samples_per_class, rng)
    accuracy = float((space.head.predict(samples.reshape(-1, *space.feature_shape)).cpu() == c).float().mean())
    queries = test.flatten(1)[:max_test_per_class]
    if queries.shape[0] == 0:  # no test image of this class: nothing to check
        return accuracy, float("nan"), float("nan"), points.shape[0], 0
    membership = hull_membership(points, queries)
    outside = ~membership.inside
    median = float(np.median(membership.distance[outside])) if outside.any() else 0.0
    return accuracy, float(outside.mean()), median, points.shape[0], queries.shape[0]


__all__ = [
    "ClassHulls",
    "FeatureSpace",
    "class_hulls",
]
