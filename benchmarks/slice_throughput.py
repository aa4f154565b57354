"""Dense ``compute_slice`` against the raw forward pass (the limit) and a DataLoader baseline, in one run.

    python benchmarks/slice_throughput.py                 # digits-cnn, 256², 3 interleaved rounds
    python benchmarks/slice_throughput.py --resolution 128 --rounds 5

- limit: the model's forward pass over inputs built beforehand, in the chunks ``compute_slice`` uses
  (and at batch 256, the baseline's); no image building, no summary of the logits.
- compute_slice: ``method="dense"``, cache off (images built chunk by chunk on the device, labels,
  confidence and margin out).
- baseline: the way published plotting code does it: a ``torch.utils.data.Dataset`` whose
  ``__getitem__`` makes one grid image on the CPU, a ``DataLoader`` with batch 256, softmax and argmax.
The three alternate within each round; the table gives medians. Targets (issue 2): compute_slice
>= 0.85× the limit's points/s and >= 3× the baseline's.

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
from torch.utils.data import DataLoader, Dataset

import boundary_widgets as bw

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


def setup(resolution: int) -> tuple[bw.Classifier, bw.Plane]:
    clf, data = bw.zoo.load(MODEL, device="cpu")
    x = data.split("test")[0][0]
    generator = torch.Generator().manual_seed(0)
    plane = bw.Plane.through(x, torch.randn(x.shape, generator=generator), torch.randn(x.shape, generator=generator))
    return clf, plane


def run_limit(clf: bw.Classifier, inputs: torch.Tensor, chunk: int) -> None:
    with clf.evaluating(), torch.inference_mode():
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


def throughput(resolution: int, rounds: int) -> None:
    clf, plane = setup(resolution)
    alphas = np.linspace(-EXTENT, EXTENT, resolution)
    grid_a, grid_b = np.meshgrid(alphas, alphas)
    inputs = plane.points(grid_a.ravel(), grid_b.ravel())
    chunk = bw.core.slices.chunk_size(clf)  # the chunks compute_slice uses on this device
    loader = DataLoader(GridImages(plane, alphas, alphas), batch_size=256, shuffle=False)
    points = resolution**2

    # Same labels from every route, or the comparison means nothing.
    dense = run_dense(clf, plane, resolution)
    baseline_labels = run_baseline(clf, loader).reshape(resolution, resolution)
    agreement = float((baseline_labels == dense.labels).mean())

    runs = {"limit (raw forward)": lambda: run_limit(clf, inputs, chunk)}
    runs["limit at batch 256"] = lambda: run_limit(clf, inputs, 256)
    runs["compute_slice dense"] = lambda: run_dense(clf, plane, resolution)
    runs["baseline (Dataset+DataLoader)"] = lambda: run_baseline(clf, loader)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    ours = median["compute_slice dense"]
    print(f"{MODEL}, {resolution}² = {points} points, chunk {chunk}, torch threads {torch.get_num_threads()}, ", end="")
    print(f"{rounds} interleaved rounds (medians); labels equal to the baseline's on {agreement:.4%} of cells\n")
    print(f"{'':<32}{'seconds':>9}{'points/s':>12}{'compute_slice ×':>17}")
    for name, seconds in median.items():
        print(f"{name:<32}{seconds:>9.3f}{points / seconds:>12.0f}{seconds / ours:>16.2f}×")
    ratio_limit = min(median["limit (raw forward)"], median["limit at batch 256"]) / ours
    ratio_baseline = median["baseline (Dataset+DataLoader)"] / ours
    print(f"\ncompute_slice / faster limit (points/s): {ratio_limit:.2f}  (target >= 0.85)")
    print(f"compute_slice / baseline (points/s):     {ratio_baseline:.2f}  (target >= 3)")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--memory", type=int, default=None, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory is not None:
        print(json.dumps(peak_memory(args.resolution, args.memory)))
        return
    throughput(args.resolution, args.rounds)
    memory_table(args.resolution, args.threads)


if __name__ == "__main__":
    main()
