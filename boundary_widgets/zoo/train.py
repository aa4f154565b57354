"""Retrain embedded models deterministically: ``python -m boundary_widgets.zoo.train [NAME ...] [--output DIR]``.

The weights go to ``DIR/NAME.pt`` (default: the current directory); only ``--in-package``
overwrites the weights shipped inside the installed package.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from ..core.classifier import Classifier
from ..core.training import pgd_examples
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
    # PGD runs through the classifier's eval view of the network being trained (same weights).
    attacked = Classifier(net, input_shape=entry.input_shape, bounds=entry.bounds)
    net.train()
    for _ in range(entry.epochs):
        order = torch.randperm(labels.numel(), generator=generator)
        for batch in order.split(64):
            inputs = images[batch]
            if entry.adversarial_epsilon > 0:
                inputs = pgd_examples(
                    attacked,
                    inputs,
                    labels[batch],
                    epsilon=entry.adversarial_epsilon,
                    steps=entry.adversarial_steps,
                    generator=generator,
                )
            optimiser.zero_grad()
            loss_fn(net(inputs), labels[batch]).backward()
            optimiser.step()
        scheduler.step()
    net.eval()
    test_images, test_labels = dataset.split("test")
    with torch.no_grad():
        accuracy = (net(test_images).argmax(1) == test_labels).float().mean().item()
    return net.state_dict(), accuracy


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written (its folder is created if missing), or None."""
    if path.is_dir():
        return "it is a folder"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(ENTRIES), help="models to retrain (default: all)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--output", "--output-dir", type=Path, default=Path(), help="folder for NAME.pt (default: the current one)"
    )
    where.add_argument(
        "--in-package", action="store_true", help="overwrite the weights shipped in the installed package"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in ENTRIES]
    if unknown:  # before any training
        parser.error(f"unknown model {unknown[0]!r}; choose from {list(ENTRIES)}")
    paths = {
        name: Path(str(weights_path(name))) if args.in_package else args.output / f"{name}.pt" for name in args.names
    }
    for path in paths.values():  # a folder that cannot take the weights fails before any training
        problem = _unwritable(path)
        if problem is not None:
            parser.error(f"cannot write {path}: {problem}")
    for name, path in paths.items():
        start = time.perf_counter()
        state, accuracy = train(name)
        torch.save(state, path)
        print(f"{name}: test accuracy {accuracy:.4f} in {time.perf_counter() - start:.1f} s -> {path}")


if __name__ == "__main__":
    main()


__all__ = [
    "main",
    "train",
]
