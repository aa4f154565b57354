"""Dense ``compute_slice`` against the raw forward pass (the limit) and a DataLoader baseline, in one run.

    python benchmarks/slice_throughput.py                 # digits-cnn, 256², 3 interleaved rounds
    python benchmarks/slice_throughput.py --resolution 128 --rounds 5

- limit: the model's forward pass over inputs built beforehand, in each chunk size a speed probe
  considers (``chunk_candidates`` of the memory budget's chunk) and at batch 256 (the baseline's),
  under ``torch.inference_mode``; no image building, no summary of the logits. "fastest raw" is
  the fastest of them in each round; "… under no_grad" the same in the mode ``compute_slice`` runs in.
- compute_slice: ``method="dense"``, cache off (images built chunk by chunk on the device, labels,
  confidence and margin out); its chunk is chosen by its speed probe (run once before the rounds).
- baseline: the way published plotting code does it: a ``torch.utils.data.Dataset`` whose
  ``__getitem__`` makes one grid image on the CPU, a ``DataLoader`` with batch 256, softmax and argmax.
All alternate within each round; the table gives the best of the rounds (the machine is shared:
the least disturbed run of each). Targets: compute_slice >= 0.95× the fastest raw forward's
points/s (issue 23) and >= 3× the baseline's (issue 2).

Layouts and precisions (``--layouts``, for a GPU: ``--layouts --device cuda``): a ResNet-style
network built here (random weights, BatchNorm, 1000 classes) at ``--image`` pixels, dense slices in
float32 and bfloat16, each with the default input layout and with ``channels_last`` (what
``compute_slice`` picks on CUDA), interleaved; labels compared with float32/default. Targets
(issue 14, GPU): bfloat16 >= 2x float32 with identical labels.

Memory: each budget is measured in a fresh subprocess: peak resident memory (VmHWM, reset through
/proc/self/clear_refs after loading the model and a warm-up slice) minus the resident memory before
the call. That counts everything the call touches (torch tensors, numpy results, allocator slack).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import boundary_widgets as bw
from boundary_widgets.core.slices import chunk_candidates, chunk_size
from boundary_widgets.core.slices.points import PointEvaluator

MODEL = "digits-cnn"
EXTENT = 3.0


class GridImages(Dataset):
    """One plane image per item, made on the CPU when asked for (the published-code style)."""

    def __init__(self, plane: bw.Plane, alphas: np.ndarray, betas: np.ndarray) -> None:
        self.plane = plane
        self.grid = [(float(a), float(b)) for b in betas for a in alphas]

    def __len__(self) -> int:
        return len(self.grid)

    def __getitem__(self, index: int) -> torch.Tensor:
        alpha, beta = self.grid[index]
        return self.plane.origin + alpha * self.plane.u + beta * self.plane.v


def setup(resolution: int, device: str = "cpu") -> tuple[bw.Classifier, bw.Plane]:
    clf, data = bw.zoo.load(MODEL, device=device)
    x = data.split("test")[0][0]
    generator = torch.Generator().manual_seed(0)
    plane = bw.Plane.through(x, torch.randn(x.shape, generator=generator), torch.randn(x.shape, generator=generator))
    return clf, plane


def run_limit(clf: bw.Classifier, inputs: torch.Tensor, chunk: int, mode: type = torch.inference_mode) -> None:
    with clf.evaluating(), mode():
        for batch in inputs.split(chunk):
            clf.forward(batch)


def run_dense(clf: bw.Classifier, plane: bw.Plane, resolution: int) -> bw.PlaneSlice:
    return bw.compute_slice(clf, plane, extent=EXTENT, resolution=resolution, method="dense", cache=False)


def run_baseline(clf: bw.Classifier, loader: DataLoader) -> np.ndarray:
    labels = []
    with clf.evaluating(), torch.inference_mode():
        for batch in loader:
            probabilities = torch.softmax(clf.forward(batch), dim=1)
            labels.append(probabilities.argmax(dim=1))
    return torch.cat(labels).numpy()


def throughput(resolution: int, rounds: int, device: str) -> None:
    clf, plane = setup(resolution, device)
    alphas = np.linspace(-EXTENT, EXTENT, resolution)
    grid_a, grid_b = np.meshgrid(alphas, alphas)
    inputs = plane.points(grid_a.ravel(), grid_b.ravel()).to(clf.device)
    loader = DataLoader(GridImages(plane, alphas, alphas), batch_size=256, shuffle=False)
    points = resolution**2

    # Same labels from every route, or the comparison means nothing; the first dense slice runs the probe.
    dense = run_dense(clf, plane, resolution)
    chosen = PointEvaluator(clf, plane).chunk
    baseline_labels = run_baseline(clf, loader).reshape(resolution, resolution)
    agreement = float((baseline_labels == dense.labels).mean())

    sizes = sorted({*chunk_candidates(chunk_size(clf)), 256}, reverse=True)
    runs = {f"raw forward, chunk {size}": lambda size=size: run_limit(clf, inputs, size) for size in sizes}
    runs |= {
        f"… under no_grad, chunk {size}": lambda size=size: run_limit(clf, inputs, size, torch.no_grad)
        for size in sizes
    }
    runs["compute_slice dense"] = lambda: run_dense(clf, plane, resolution)
    runs["baseline (Dataset+DataLoader)"] = lambda: run_baseline(clf, loader)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    ours = best["compute_slice dense"]
    print(f"{MODEL}, {resolution}² = {points} points, memory chunk {chunk_size(clf)}, probe's chunk {chosen}, ", end="")
    print(f"torch threads {torch.get_num_threads()}, {rounds} interleaved rounds (best of each); ", end="")
    print(f"labels equal to the baseline's on {agreement:.4%} of cells\n")
    print(f"{'':<34}{'seconds':>9}{'points/s':>12}{'compute_slice ×':>17}")
    for name, seconds in best.items():
        print(f"{name:<34}{seconds:>9.3f}{points / seconds:>12.0f}{seconds / ours:>16.2f}×")
    fastest_raw = min(seconds for name, seconds in best.items() if name.startswith("raw forward"))
    fastest_no_grad = min(seconds for name, seconds in best.items() if name.startswith("… under no_grad"))
    print(f"\ncompute_slice / fastest raw forward (points/s):   {fastest_raw / ours:.3f}  (target >= 0.95)")
    print(f"compute_slice / fastest raw under no_grad:        {fastest_no_grad / ours:.3f}")
    print(
        f"compute_slice / baseline (points/s):              {best['baseline (Dataset+DataLoader)'] / ours:.2f}  (target >= 3)"
    )


def peak_memory(resolution: int, budget: int) -> dict[str, float]:
    """Run in a fresh process: the resident-memory peak of one dense slice above where it started."""

    def status(field: str) -> int:
        text = open("/proc/self/status").read()
        return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) * 1024

    clf, plane = setup(resolution)
    bw.compute_slice(clf, plane, extent=EXTENT, resolution=8, method="dense", cache=False, memory_budget=budget)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current resident size
    before = status("VmRSS")
    bw.compute_slice(
        clf, plane, extent=EXTENT, resolution=resolution, method="dense", cache=False, memory_budget=budget
    )
    model = sum(t.numel() * t.element_size() for t in clf.net.state_dict().values())
    return {"peak": status("VmHWM") - before, "model": model, "grid": resolution**2 * clf.bytes_per_sample()}


def memory_table(resolution: int, threads: int) -> None:
    print(f"\npeak resident memory of one dense {resolution}² slice above the start (fresh process per budget)")
    print(f"{'memory_budget':>14}{'peak':>10}{'peak/budget':>13}{'model':>10}{'whole grid at once':>20}")
    for budget in (2**24, 2**26, 2**28):
        command = [sys.executable, __file__, "--memory", str(budget), "--resolution", str(resolution)]
        command += ["--threads", str(threads)]
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        mib = lambda n: f"{n / 2**20:.1f} MiB"  # noqa: E731
        print(
            f"{mib(budget):>14}{mib(result['peak']):>10}{result['peak'] / budget:>13.2f}"
            f"{mib(result['model']):>10}{mib(result['grid']):>20}"
        )


class Block(nn.Module):
    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        out = channels * stride
        self.body = nn.Sequential(
            nn.Conv2d(channels, out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(),
            nn.Conv2d(out, out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.skip = nn.Identity() if stride == 1 else nn.Sequential(nn.Conv2d(channels, out, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet_like(classes: int = 1000) -> nn.Module:
    """A ResNet-18-shaped network (one block per stage): stem, four stages, global pooling, linear head."""
    stages = [Block(64, 1), Block(64, 2), Block(128, 2), Block(256, 2)]
    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    return nn.Sequential(*stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))


def layouts(resolution: int, rounds: int, device: str, image: int) -> None:
    from boundary_widgets.core.slices import points

    torch.manual_seed(0)
    net = resnet_like().to(device).eval()
    clf = bw.Classifier(net, input_shape=(3, image, image), mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, image, image, generator=generator)
    plane = bw.Plane.through(x, torch.randn(x.shape, generator=generator), torch.randn(x.shape, generator=generator))
    chosen = points.input_memory_format

    def run(precision: str, layout: torch.memory_format) -> bw.PlaneSlice:
        points.input_memory_format = lambda _device, _shape: layout
        try:
            sl = bw.compute_slice(
                clf, plane, extent=50.0, resolution=resolution, method="dense", precision=precision, cache=False
            )
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return sl
        finally:
            points.input_memory_format = chosen

    cases = [(p, name, fmt) for p in ("float32", "bfloat16") for name, fmt in LAYOUTS.items()]
    reference = run("float32", torch.contiguous_format)
    times: dict[tuple[str, str], list[float]] = {(p, name): [] for p, name, _ in cases}
    agree: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for precision, name, fmt in cases:
            start = time.perf_counter()
            sl = run(precision, fmt)
            times[precision, name].append(time.perf_counter() - start)
            agree[precision, name] = float((sl.labels == reference.labels).mean())
    base = statistics.median(times["float32", "default"])
    print(f"ResNet-like, 3x{image}x{image}, 1000 classes, {resolution}² dense on {device}, chunk {chunk_size(clf)}, ")
    print(f"{rounds} interleaved rounds (medians); compute_slice picks {chosen(clf.device, clf.input_shape)}\n")
    print(f"{'precision':<10}{'layout':<15}{'seconds':>9}{'points/s':>12}{'speed-up':>10}{'labels = f32':>14}")
    for precision, name, _ in cases:
        seconds = statistics.median(times[precision, name])
        print(
            f"{precision:<10}{name:<15}{seconds:>9.3f}{resolution**2 / seconds:>12.0f}{base / seconds:>9.2f}x"
            f"{agree[precision, name]:>14.4%}"
        )


LAYOUTS = {"default": torch.contiguous_format, "channels_last": torch.channels_last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layouts", action="store_true", help="float32/bfloat16 x default/channels_last")
    parser.add_argument("--image", type=int, default=64, help="image side of the --layouts network")
    parser.add_argument("--memory", type=int, default=None, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory is not None:
        print(json.dumps(peak_memory(args.resolution, args.memory)))
        return
    if args.layouts:
        layouts(args.resolution, args.rounds, args.device, args.image)
        return
    throughput(args.resolution, args.rounds, args.device)
    if args.device == "cpu":
        memory_table(args.resolution, args.threads)


if __name__ == "__main__":
    main()
