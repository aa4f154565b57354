"""Retrain embedded models deterministically: ``python -m boundary_widgets.zoo.train [NAME ...] [--output DIR]``.

The weights go to ``DIR/NAME.pt`` (default: the current directory); only ``--in-package``
overwrites the weights shipped inside the installed package.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from . import ENTRIES, get, weights_path


def pgd_l2(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float,
    steps: int,
    bounds: tuple[float, float],
    generator: torch.Generator,
) -> torch.Tensor:
    """L2 projected gradient ascent on the loss from a random start: ``images + δ``, ``‖δ‖ <= epsilon``, in bounds.

    Madry et al.'s attack for adversarial training, in the L2 norm the kit measures margins in;
    the step is ``2.5 · epsilon / steps``. ``net`` keeps its training flags; its gradients are untouched.
    """
    low, high = bounds
    flat_shape = (images.shape[0], *([1] * (images.dim() - 1)))
    step = 2.5 * epsilon / steps
    delta = torch.randn(images.shape, generator=generator)
    delta = (
        delta / delta.flatten(1).norm(dim=1).view(flat_shape) * epsilon * torch.rand(flat_shape, generator=generator)
    )
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        delta.requires_grad_(True)
        (gradient,) = torch.autograd.grad(loss_fn(net(images + delta), labels), delta)
        with torch.no_grad():
            delta = delta + step * gradient / gradient.flatten(1).norm(dim=1).clamp_min(1e-12).view(flat_shape)
            delta = delta * (epsilon / delta.flatten(1).norm(dim=1).clamp_min(epsilon)).view(flat_shape)
            delta = (images + delta).clamp(low, high) - images
    return (images + delta).detach()


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
            inputs = images[batch]
            if entry.adversarial_epsilon > 0:
                inputs = pgd_l2(
                    net,
                    inputs,
                    labels[batch],
                    epsilon=entry.adversarial_epsilon,
                    steps=entry.adversarial_steps,
                    bounds=entry.bounds,
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
    for name in args.names:
        get(name)  # an unknown name fails before any training
    for name in args.names:
        start = time.perf_counter()
        state, accuracy = train(name)
        path = Path(str(weights_path(name))) if args.in_package else args.output / f"{name}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        print(f"{name}: test accuracy {accuracy:.4f} in {time.perf_counter() - start:.1f} s -> {path}")


if __name__ == "__main__":
    main()
