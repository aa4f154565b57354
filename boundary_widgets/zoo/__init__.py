"""Embedded default models and data, usable offline: the weights ship inside the package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources

import torch
from torch import nn

from ..core.classifier import Classifier
from ..core.dataset import Dataset
from . import data
from .models import MLP, DigitsCNN


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    build: Callable[[], nn.Module]
    dataset: Callable[[], Dataset]
    input_shape: tuple[int, ...]
    bounds: tuple[float, float]
    min_test_accuracy: float  # what the shipped weights are checked to reach
    epochs: int
    learning_rate: float
    # Adversarial training (Madry et al.): each batch is replaced by its L2 PGD perturbations of
    # norm <= adversarial_epsilon (0: standard training), found in adversarial_steps steps.
    adversarial_epsilon: float = 0.0
    adversarial_steps: int = 0
    piecewise_linear: bool = True  # ReLU and max-pooling only: curvature lives in the kinks (see docs/design.md)

    def __repr__(self) -> str:
        return f"ZooEntry({self.name!r}, input_shape={self.input_shape}, bounds={self.bounds})"


ENTRIES: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry(
            "digits-cnn",
            "small ReLU CNN on scikit-learn's 8×8 digits",
            DigitsCNN,
            data.digits,
            (1, 8, 8),
            (0.0, 1.0),
            0.97,
            40,
            2e-3,
        ),
        ZooEntry(
            "digits-mlp",
            "ReLU MLP 64-128-64-10 on the 8×8 digits",
            lambda: MLP(64, (128, 64), 10),
            data.digits,
            (1, 8, 8),
            (0.0, 1.0),
            0.95,
            40,
            2e-3,
        ),
        ZooEntry(
            "digits-cnn-robust",
            "the digits CNN adversarially trained on L2 PGD perturbations of norm 0.5 (Hold me tight!'s robust model)",
            DigitsCNN,
            data.digits,
            (1, 8, 8),
            (0.0, 1.0),
            0.97,
            40,
            2e-3,
            adversarial_epsilon=0.5,
            adversarial_steps=5,
        ),
        ZooEntry(
            "digits-smooth",
            "the digits CNN with softplus (β = 0.5) and average pooling: smooth everywhere, exact curvature",
            lambda: DigitsCNN(activation=partial(nn.Softplus, beta=0.5), pool="avg"),
            data.digits,
            (1, 8, 8),
            (0.0, 1.0),
            0.93,
            40,
            2e-3,
            piecewise_linear=False,
        ),
        ZooEntry(
            "moons-mlp",
            "ReLU MLP on 2-D half-moons: the slice is the whole input space",
            lambda: MLP(2, (32, 32), 2),
            data.moons,
            (2,),
            (-3.0, 3.0),
            0.95,
            200,
            1e-2,
        ),
        ZooEntry(
            "dct-band-cnn",
            "the digits CNN on synthetic 8×8 images whose only signal sits in the highest DCT band",
            lambda: DigitsCNN(classes=2),
            data.dct_band,
            (1, 8, 8),
            (0.0, 1.0),
            0.97,
            30,
            2e-3,
        ),
    )
}


def available() -> list[str]:
    return list(ENTRIES)


def get(name: str) -> ZooEntry:
    if name not in ENTRIES:
        raise ValueError(f"`name` must be one of {list(ENTRIES)}; got {name!r}.")
    return ENTRIES[name]


def weights_path(name: str):
    return resources.files(__package__).joinpath("weights", f"{get(name).name}.pt")


def load(name: str = "digits-cnn", *, device: str | torch.device | None = None) -> tuple[Classifier, Dataset]:
    """The embedded model ``name`` with its shipped weights, wrapped, and its data set.

    ``device=None`` takes CUDA when present, else the CPU.
    """
    entry = get(name)
    net = entry.build()
    with weights_path(name).open("rb") as handle:
        net.load_state_dict(torch.load(handle, weights_only=True, map_location="cpu"))
    net.eval()
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    dataset = entry.dataset()
    clf = Classifier(
        net.to(device), input_shape=entry.input_shape, bounds=entry.bounds, class_names=dataset.class_names
    )
    return clf, dataset


__all__ = ["ZooEntry", "available", "get", "load"]
