"""Live training of a copy of a classifier, one epoch at a time, to watch its regions form.

The user's model is never trained: :class:`LiveTraining` deep-copies the module once and every
step writes only that copy. Its :attr:`LiveTraining.classifier` wraps the copy with the same
input shape, bounds, normalisation and class names, so slices and directions of the model in
training use the ordinary API (the slice cache keys on the copy's changing values).

Adversarial training (Madry et al.; *Hold me tight!* trains on small perturbations) replaces each
batch by perturbed images: ``"pgd"`` is L2 projected gradient ascent on the loss within
``epsilon``, ``"deepfool"`` moves each image along its DeepFool perturbation, capped at
``epsilon``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from .classifier import Classifier
from .deepfool import deepfool
from .progress import CancelEvent, Progress, track
from .validation import check_choice, check_positive_int

ADVERSARIAL_METHODS = ("none", "pgd", "deepfool")


def _check_positive_float(value: object, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"`{name}` must be a number; got {type(value).__name__}.")
    value = float(value)
    if not (value >= 0 if allow_zero else value > 0) or value == float("inf"):
        raise ValueError(f"`{name}` must be finite and {'>= 0' if allow_zero else '> 0'}; got {value}.")
    return value


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


def pgd_examples(
    clf: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float,
    steps: int = 7,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L2 PGD: ``images + δ`` maximising the cross-entropy, ``‖δ‖ <= epsilon``, within the bounds.

    A random start inside the ball, ``steps`` normalised gradient steps of ``2.5·epsilon/steps``
    (Madry et al.), each projected on the ball and the input box. Gradients are taken through the
    classifier's eval view with respect to the inputs only.
    """
    low, high = clf.bounds
    noise = torch.randn(images.shape, generator=generator).to(images.device)
    radius = torch.rand(images.shape[0], generator=generator).to(images.device) * epsilon
    delta = noise * _per_sample(radius / noise.flatten(1).norm(dim=1).clamp_min(1e-12), images)
    step = 2.5 * epsilon / steps
    loss_fn = nn.CrossEntropyLoss()
    with clf.evaluating(), torch.enable_grad():
        for _ in range(steps):
            delta = delta.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(loss_fn(clf.forward(images + delta), labels), delta)
            with torch.no_grad():
                delta = delta + step * gradient / _per_sample(gradient.flatten(1).norm(dim=1).clamp_min(1e-12), images)
                delta = delta * _per_sample(epsilon / delta.flatten(1).norm(dim=1).clamp_min(epsilon), images)
                delta = (images + delta).clamp(low, high) - images
    return (images + delta).detach()


def deepfool_examples(clf: Classifier, images: torch.Tensor, *, epsilon: float) -> torch.Tensor:
    """Each image moved along its DeepFool perturbation, at most ``epsilon`` (L2), within the bounds."""
    result = deepfool(clf, images, max_iter=10)
    scale = (epsilon / result.distances.clamp_min(1e-12)).clamp(max=1.0)
    return clf.clip(images + result.perturbations * _per_sample(scale, images))


class TrainingDiverged(RuntimeError):
    """The loss or the weights stopped being finite: the epoch is undone and the message says what to change."""


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of :class:`LiveTraining` did."""

    epoch: int  # epochs done so far, this one included
    loss: float  # mean training loss over the epoch's batches (on the images trained on)
    accuracy: float  # accuracy on the training images after the epoch (clean images)


class LiveTraining:
    """Train a copy of ``clf``'s module on ``(images, labels)``, one epoch per :meth:`train_epoch` call.

    ``learning_rate``, ``weight_decay``, ``adversarial`` and ``epsilon`` may be changed between
    epochs (the optimiser, SGD with momentum 0.9, picks them up). Batches are drawn from a
    generator seeded with ``seed``, so two runs with the same settings train the same weights.
    """

    def __init__(
        self,
        clf: Classifier,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        learning_rate: float = 0.05,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        adversarial: str = "none",
        epsilon: float = 0.3,
        seed: int = 0,
    ) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
        images = clf.check_inputs(images, "images", batched=True, in_bounds=True)
        labels = torch.as_tensor(labels, device=clf.device)
        if labels.dtype in (torch.bool,) or labels.is_floating_point() or labels.shape != (images.shape[0],):
            raise ValueError(
                f"`labels` must be integers of shape ({images.shape[0]},); got {labels.dtype} {tuple(labels.shape)}."
            )
        if bool((labels < 0).any() or (labels >= clf.num_classes).any()):
            raise ValueError(f"`labels` must lie in [0, {clf.num_classes}); got values outside.")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.images = images
        self.labels = labels.long()
        self.net = copy.deepcopy(clf.net)
        self.classifier = clf.with_module(self.net)
        self.optimiser = torch.optim.SGD(self.net.parameters(), lr=0.05, momentum=0.9)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.history: list[EpochRecord] = []
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.adversarial = adversarial
        self.epsilon = epsilon

    def __repr__(self) -> str:
        return (
            f"LiveTraining({type(self.net).__name__}, epochs={len(self.history)}, learning_rate={self.learning_rate}, "
            f"weight_decay={self.weight_decay}, adversarial={self.adversarial!r}, epsilon={self.epsilon})"
        )

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _check_positive_float(value, "learning_rate")
        for group in self.optimiser.param_groups:
            group["lr"] = self._learning_rate

    @property
    def weight_decay(self) -> float:
        return self._weight_decay

    @weight_decay.setter
    def weight_decay(self, value: float) -> None:
        self._weight_decay = _check_positive_float(value, "weight_decay", allow_zero=True)
        for group in self.optimiser.param_groups:
            group["weight_decay"] = self._weight_decay

    @property
    def adversarial(self) -> str:
        return self._adversarial

    @adversarial.setter
    def adversarial(self, value: str) -> None:
        self._adversarial = check_choice(value, "adversarial", ADVERSARIAL_METHODS)

    @property
    def epsilon(self) -> float:
        return self._epsilon

    @epsilon.setter
    def epsilon(self, value: float) -> None:
        self._epsilon = _check_positive_float(value, "epsilon")

    @property
    def epoch(self) -> int:
        return len(self.history)

    def _training_batch(self, batch: torch.Tensor) -> torch.Tensor:
        images = self.images[batch]
        if self.adversarial == "pgd":
            return pgd_examples(
                self.classifier, images, self.labels[batch], epsilon=self.epsilon, generator=self.generator
            )
        if self.adversarial == "deepfool":
            return deepfool_examples(self.classifier, images, epsilon=self.epsilon)
        return images

    def train_epoch(self, *, progress: Progress = None, cancel: CancelEvent | None = None) -> EpochRecord:
        """One pass over the training images in a seeded random order; the copy's weights change.

        ``progress``/``cancel`` follow the one protocol (units: batches); a cancelled epoch keeps
        the batches already trained and records nothing. When the loss or a weight stops being
        finite (a learning rate too large for the model), the epoch is undone (weights and
        optimiser state as they were before it) and :class:`TrainingDiverged` is raised.
        """
        order = torch.randperm(self.labels.numel(), generator=self.generator).to(self.labels.device)
        batches = order.split(self.batch_size)
        loss_fn = nn.CrossEntropyLoss()
        losses = []
        weights, optimiser_state = copy.deepcopy(self.net.state_dict()), copy.deepcopy(self.optimiser.state_dict())
        with track(progress, cancel, total=len(batches), desc="epoch") as tracker:
            for number, batch in enumerate(batches, start=1):
                inputs = self._training_batch(batch)
                self.net.train()
                self.optimiser.zero_grad()
                logits = self.classifier.select_logits(self.net(self.classifier.normalise(inputs)))
                loss = loss_fn(logits, self.labels[batch])
                loss.backward()
                self.optimiser.step()
                losses.append(float(loss.detach()))
                if not (math.isfinite(losses[-1]) and all(bool(p.isfinite().all()) for p in self.net.parameters())):
                    self.net.load_state_dict(weights)
                    self.optimiser.load_state_dict(optimiser_state)
                    self.net.eval()
                    raise TrainingDiverged(
                        f"training diverged in epoch {self.epoch + 1} (batch {number}): the loss or the weights "
                        f"are no longer finite at learning rate {self.learning_rate:g}. The epoch was undone; "
                        "lower `learning_rate` (or reset the model) and train again."
                    )
                tracker.advance()
        self.net.eval()
        accuracy = float((self.classifier.predict(self.images) == self.labels).float().mean())
        record = EpochRecord(epoch=self.epoch + 1, loss=sum(losses) / len(losses), accuracy=accuracy)
        self.history.append(record)
        return record


def build_network(input_shape: tuple[int, ...], classes: int, *, width: int = 16, depth: int = 2) -> nn.Module:
    """A fresh small network for live training: an MLP on flat inputs, a CNN on images.

    Flat inputs ``(d,)``: ``depth`` hidden ReLU layers of ``width`` units. Images ``(C, H, W)``:
    ``depth`` 3×3 ReLU convolutions of ``width`` channels, average pooling to 4×4, a linear head.
    """
    width = check_positive_int(width, "width")
    depth = check_positive_int(depth, "depth")
    if len(input_shape) == 1:
        layers: list[nn.Module] = []
        size = input_shape[0]
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        return nn.Sequential(*layers, nn.Linear(size, classes))
    if len(input_shape) == 3:
        layers = []
        channels = input_shape[0]
        for _ in range(depth):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(width * 16, classes))
    raise ValueError(f"`input_shape` must be (d,) or (C, H, W) for a fresh network; got {tuple(input_shape)}.")


__all__ = [
    "ADVERSARIAL_METHODS",
    "EpochRecord",
    "LiveTraining",
    "TrainingDiverged",
    "build_network",
    "deepfool_examples",
    "pgd_examples",
]
