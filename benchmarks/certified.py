"""Certified slices against dense ones, side by side on the same planes: share proven, and cost.

    python benchmarks/certified.py            # zoo planes at 128² and 256², ResNet-style net, island nets
    python benchmarks/certified.py --full     # adds 512² (slow on a CPU)
    python benchmarks/certified.py --quick    # one plane per model at 128², for a smoke run
    python benchmarks/certified.py --parts islands resnet   # some parts only

For each plane (through a digits test image; directions adversarial × random, random × random,
DCT low × high band) and resolution, run back to back with the cache off:

- ``dense``: ``compute_slice(method="dense")``, the baseline;
- ``grid``: the proof at the grid's cells only (``ProofOptions(min_cell=1, coarse=False)``): every cell
  bounded once; the share of cells proven (at 128² for the zoo, 64² for the ResNet-style net);
- ``b&b``: the default certified slice (coarse to fine, branch and bound to 1/8 of a cell): the share
  of the *area* proven (and of cells wholly proven).

Costs are wall-clock ratios to the dense slice of the same plane and resolution, one torch thread.
The ResNet-style net (3 BasicBlocks, random weights, 3×32×32) has its head's bias set so that every
logit ties at the plane's origin (random weights otherwise favour one class over the whole plane).
The island nets (``islands``): a ReLU net on a 2-D input whose class 1 forms many small islands
(L1 "tents" built from ReLUs) at random places or on a lattice; how many islands the adaptive map
shows (connected components of class 1) and how many the certified slice proves (a cell proven of
class 1 inside the island) or flags (not proven of class 0 anywhere in it: by soundness, all).
Targets (issue 21): >= 99.8 % of the area proven after branch and bound on the zoo planes at 256²;
grid level <= 10× dense; coarse to fine <= 3× dense; every island flagged; ResNet-style 32² net
>= 99 % of the area proven at 512².
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import ndimage
from torch import nn

import boundary_widgets as bw

EXTENT = 3.0
MODELS = ("digits-cnn", "digits-mlp", "digits-smooth", "digits-cnn-robust")
PLANE_KINDS = {
    "adv×rand": (("adversarial", {}), ("random", {})),
    "rand×rand": (("random", {}), ("random", {"offset": 1})),
    "dct low×high": (("dct", {"band": "low"}), ("dct", {"band": "high"})),
}
GRID = bw.ProofOptions(min_cell=1.0, coarse=False)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def make_plane(clf, x, kind: str, seed: int) -> bw.Plane:
    directions = []
    for direction_kind, params in PLANE_KINDS[kind]:
        params = dict(params)
        if direction_kind == "random":
            params["seed"] = seed + params.pop("offset", 0)
        directions.append(bw.directions.make(direction_kind, clf, x, **params))
    return bw.Plane.through(x, *directions)


def compare(clf, plane, resolution: int, extent: float, *, grid: bool) -> dict:
    kwargs = {"extent": extent, "resolution": resolution, "cache": False}
    dense, dense_s = timed(lambda: bw.compute_slice(clf, plane, method="dense", **kwargs))
    proven, proof_s = timed(lambda: bw.compute_slice(clf, plane, method="certified", **kwargs))
    row = {
        "dense_s": dense_s,
        "bb_area": proven.certificate.proven_area,
        "bb_cells": float((proven.certificate.proven == 1).mean()),
        "bb_ratio": proof_s / dense_s,
        "agree": float((proven.labels == dense.labels).mean()),
        "exhausted": proven.certificate.exhausted,
    }
    if grid:
        cells, grid_s = timed(lambda: bw.compute_slice(clf, plane, method="certified", proof=GRID, **kwargs))
        row |= {"grid_cells": float((cells.certificate.proven == 1).mean()), "grid_ratio": grid_s / dense_s}
    return row


def print_row(name: str, resolution: int, row: dict) -> None:
    grid = f"{row['grid_cells']:8.2%} {row['grid_ratio']:6.1f}×" if "grid_cells" in row else f"{'-':>8} {'-':>7}"
    print(
        f"{name:34s} {resolution:4d}² {row['dense_s']:7.2f}s {grid} {row['bb_area']:9.3%} {row['bb_cells']:8.2%} "
        f"{row['bb_ratio']:6.1f}× {row['agree']:7.2%}{'  budget ended' if row['exhausted'] else ''}"
    )


# ---------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet_style(classes: int = 10, widths: tuple[int, ...] = (16, 32, 64)) -> nn.Module:
    """A ResNet-style network on 3×32×32 (random weights): a stem, one BasicBlock per width, a pooled head."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    for inputs, outputs in zip((widths[0], *widths[:-1]), widths, strict=True):
        layers.append(BasicBlock(inputs, outputs, 1 if inputs == outputs else 2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], classes)]
    return nn.Sequential(*layers).eval()


class Islands(nn.Module):
    """Class 1 on the islands ``|x - c_k|_1 < r / 2`` (L1 tents of ReLUs summed), class 0 elsewhere."""

    def __init__(self, centres: torch.Tensor, radius: float) -> None:
        super().__init__()
        k = len(centres)
        self.shift = nn.Linear(2, 4 * k)  # ±(x1 - c1), ±(x2 - c2)
        self.norm = nn.Linear(4 * k, k)  # |x - c|_1
        self.tent = nn.Linear(k, k)  # 1 - |x - c|_1 / r
        self.head = nn.Linear(k, 2)
        with torch.no_grad():
            signs = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
            self.shift.weight.copy_(signs.repeat(k, 1))
            self.shift.bias.copy_(-(signs[None] * centres[:, None]).sum(-1).reshape(-1))
            self.norm.weight.copy_(torch.kron(torch.eye(k), torch.ones(1, 4)))
            self.norm.bias.zero_()
            self.tent.weight.copy_(-torch.eye(k) / radius)
            self.tent.bias.fill_(1.0)
            self.head.weight.copy_(torch.stack([torch.zeros(k), torch.ones(k)]))
            self.head.bias.copy_(torch.tensor([0.5, 0.0]))

    def forward(self, x):
        return self.head(torch.relu(self.tent(torch.relu(self.norm(torch.relu(self.shift(x)))))))


def island_case(name: str, centres: torch.Tensor, radius: float, extent: float, resolution: int) -> None:
    clf = bw.Classifier(Islands(centres, radius), input_shape=(2,), bounds=(-extent - 1, extent + 1))
    plane = bw.Plane.through(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    kwargs = {"extent": extent, "resolution": resolution, "cache": False}
    dense, dense_s = timed(lambda: bw.compute_slice(clf, plane, method="dense", **kwargs))
    adaptive = bw.compute_slice(clf, plane, method="adaptive", **kwargs)
    proven, proof_s = timed(lambda: bw.compute_slice(clf, plane, method="certified", **kwargs))
    certificate = proven.certificate
    shown = ndimage.label(adaptive.labels == 1)[1]
    in_dense = ndimage.label(dense.labels == 1)[1]
    grid_a, grid_b = np.meshgrid(proven.alphas, proven.betas)
    step = proven.alphas[1] - proven.alphas[0]
    proven_islands = flagged = 0
    for c in centres.numpy():
        near = np.abs(grid_a - c[0]) + np.abs(grid_b - c[1]) < radius / 2 + step  # the cells touching the island
        proven_islands += bool(((certificate.proven == 1) & (certificate.proven_label == 1) & near).any())
        flagged += bool((~((certificate.proven == 1) & (certificate.proven_label == 0)) & near).any())
    print(
        f"{name:28s} {len(centres):4d} islands  dense shows {in_dense:4d}  adaptive shows {shown:4d} "
        f"({adaptive.n_evaluated / resolution**2:5.1%} evaluated)  certified proves {proven_islands:4d}, "
        f"flags {flagged:4d}  area proven {certificate.proven_area:8.3%}  cost {proof_s / dense_s:5.1f}× dense"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true", help="add 512²")
    parser.add_argument("--planes", type=int, default=3, help="planes per model (one image each)")
    parser.add_argument(
        "--parts", nargs="+", default=["zoo", "resnet", "islands"], choices=["zoo", "resnet", "islands"]
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    resolutions = (128,) if args.quick else (128, 256, 512) if args.full else (128, 256)
    planes = 1 if args.quick else args.planes
    kinds = [k for k in PLANE_KINDS if all(kind in bw.directions.available() for kind, _ in PLANE_KINDS[k])]
    print(f"torch {torch.__version__}, 1 thread, CPU; cost = time / dense time on the same plane")
    print(
        f"{'model / plane':34s} {'res':>5s} {'dense':>8s} {'grid':>8s} {'cost':>7s} {'b&b area':>9s} "
        f"{'cells':>8s} {'cost':>7s} {'labels=dense':>7s}"
    )
    for model in MODELS if "zoo" in args.parts else ():
        clf, data = bw.zoo.load(model, device="cpu")
        for index in range(planes):
            kind = kinds[index % len(kinds)]
            plane = make_plane(clf, data.split("test")[0][index], kind, seed=index)
            for resolution in resolutions:
                row = compare(clf, plane, resolution, EXTENT, grid=resolution == 128)
                print_row(f"{model} {kind}", resolution, row)
    if "resnet" in args.parts:
        resnet_rows(args)
    if "islands" in args.parts:
        generator = torch.Generator().manual_seed(0)
        scattered = (torch.rand(40, 2, generator=generator) * 2 - 1) * 2.7
        lattice = torch.stack(torch.meshgrid(*(torch.linspace(-2.75, 2.75, 16),) * 2, indexing="ij"), -1)
        resolution = 128 if args.quick else 256
        island_case("islands, scattered", scattered, 0.12, EXTENT, resolution)
        island_case("islands, periodic", lattice.reshape(-1, 2)[:176], 0.12, EXTENT, resolution)


def resnet_rows(args: argparse.Namespace) -> None:
    net = resnet_style()
    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # random weights favour one class everywhere: make every logit tie at x instead
        net[-1].bias.copy_(-net[-1].weight @ net[:-1](x[None])[0])
    resnet = bw.Classifier(net, input_shape=(3, 32, 32), bounds=(0.0, 1.0))
    plane = make_plane(resnet, x, "rand×rand", seed=0)
    for resolution in (32,) if args.quick else (64, 128, 512) if args.full else (64,):
        row = compare(resnet, plane, resolution, 1.0, grid=resolution == 64)
        print_row("resnet-style 3×32×32 rand×rand", resolution, row)


if __name__ == "__main__":
    main()
