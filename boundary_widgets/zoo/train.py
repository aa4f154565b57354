"""Retrain an embedded model deterministically: ``python -m boundary_widgets.zoo.train NAME``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from . import ENTRIES, get, weights_path


def train(name: str, *, seed: int = 0) -> tuple[dict[str, torch.Tensor], float]:
    """Train ``name`` from seed on its data set's train split; return the state dict and test accuracy."""
    entry = get(name)
    torch.manual_seed(seed)
    dataset = entry.dataset()
    images, labels = dataset.split("train")
    net = entry.build()
    optimiser = torch.optim.Adam(net.parameters(), lr=entry.learning_rate, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, entry.epochs)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(entry.epochs):
        order = torch.randperm(labels.numel(), generator=generator)
        for batch in order.split(64):
            optimiser.zero_grad()
            loss_fn(net(images[batch]), labels[batch]).backward()
            optimiser.step()
        scheduler.step()
    net.eval()
    test_images, test_labels = dataset.split("test")
    with torch.no_grad():
        accuracy = (net(test_images).argmax(1) == test_labels).float().mean().item()
    return net.state_dict(), accuracy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=list(ENTRIES), help="models to retrain (default: all)")
    parser.add_argument("--output-dir", type=Path, default=None, help="where to write NAME.pt (default: the package)")
    args = parser.parse_args(argv)
    for name in args.names:
        start = time.perf_counter()
        state, accuracy = train(name)
        path = args.output_dir / f"{name}.pt" if args.output_dir else Path(str(weights_path(name)))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        print(f"{name}: test accuracy {accuracy:.4f} in {time.perf_counter() - start:.1f} s -> {path}")


if __name__ == "__main__":
    main()
