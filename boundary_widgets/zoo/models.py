"""Architectures of the embedded models (small enough to train on a CPU in seconds)."""

from __future__ import annotations

from torch import nn


class DigitsCNN(nn.Module):
    """Two 3×3 convolutions, a pool, one hidden layer (the features) and a linear head, on 1×8×8 digits."""

    def __init__(self, activation: type[nn.Module] = nn.ReLU, hidden: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            activation(),
            nn.Conv2d(16, 32, 3, padding=1),
            activation(),
            nn.MaxPool2d(2),
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
