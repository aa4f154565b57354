"""Architectures of the embedded models (small enough to train on a CPU in seconds)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class DigitsCNN(nn.Module):
    """Two 3×3 convolutions, a 2×2 pool, one hidden layer (the features) and a linear head, on 1×8×8 digits.

    ``pool="max"`` with ReLU is piecewise linear; ``pool="avg"`` with a smooth ``activation``
    (softplus) makes the whole network smooth, so its Hessian exists everywhere.
    """

    def __init__(
        self, activation: Callable[[], nn.Module] = nn.ReLU, hidden: int = 64, classes: int = 10, *, pool: str = "max"
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"`pool` must be one of {list(POOLS)}; got {pool!r}.")
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            activation(),
            nn.Conv2d(16, 32, 3, padding=1),
            activation(),
            POOLS[pool](2),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, hidden),
            activation(),
        )
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.head(self.features(x))


class MLP(nn.Module):
    """Fully connected ReLU network on flattened inputs; ``features`` ends at the last hidden layer."""

    def __init__(self, inputs: int, hidden: tuple[int, ...], classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = inputs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.features(x))


__all__ = [
    "MLP",
    "POOLS",
    "DigitsCNN",
]
