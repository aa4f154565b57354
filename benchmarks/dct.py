"""DCT bands at 3×224×224 with 1000 classes: before (dense bases) against now (fast transforms).

``python benchmarks/dct.py [--bands 3] [--threads 1] [--repeats 3]``

Three versions side by side, each in its own process on the same model and image:

- ``before``: the package at commit ``BEFORE`` (dense band bases built through a float64 Kronecker
  product, checked by a Gram matrix, cached on the band and kept in ``BandMargins``), extracted with
  ``git archive``;
- ``dense``: today's DeepFool fed the dense ``Band.basis`` (what the previous direction and band
  margins did, the bases not kept): isolates the projection from other changes to DeepFool;
- ``fast``: today's ``directions.make("dct")`` and ``analysis.band_margins`` (the band's rows of the
  DCT-II matrices, O(d·K) per projection, no basis).

For each: the fastest of ``--repeats`` interleaved timings (one for ``before``, which takes tens of seconds),
and the peak traced allocation of one more call: torch's CPU allocator as the profiler reports it
(``total_allocated`` of every allocation event) plus tracemalloc (numpy, scipy, Python), as in
tests/test_dct_scale.py. The model is a narrow ResNet-style network (BatchNorm, mean/std
normalisation, random weights) so that a CPU run takes minutes; one unconstrained ``bw.deepfool``
on the same image is the reference the issue's target refers to (dct ≤ 2× of it). The last row
is the projection of one DeepFool step alone (9 candidate gradients onto the low band; the dense
basis prebuilt and not counted).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

BEFORE = "c0f6c9a"  # the parent of the commit that replaced dense band bases by fast transforms
REPO = Path(__file__).resolve().parents[1]
SHAPE = (3, 224, 224)


def build_classifier(bw, torch):
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
            self.skip = (
                nn.Identity()
                if stride == 1 and cin == cout
                else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            )

        def forward(self, x):
            return torch.relu(self.body(x) + self.skip(x))

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 7, 2, 3, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        Block(16, 16, 1),
        Block(16, 32, 2),
        Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 1000),
    ).eval()
    return bw.Classifier(net, input_shape=SHAPE, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def peak_traced_bytes(torch, fn) -> int:
    from torch._C._profiler import _EventType

    def walk(nodes):
        for node in nodes:
            yield node
            yield from walk(node.children)

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profiler:
        tracemalloc.start()
        fn()
        python_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    events = sorted(
        (e for e in walk(profiler.profiler.kineto_results.experimental_event_tree()) if e.tag == _EventType.Allocation),
        key=lambda e: e.start_time_ns,
    )
    if not events:
        return python_peak
    before = events[0].extra_fields.total_allocated - events[0].extra_fields.alloc_size
    return max(e.extra_fields.total_allocated for e in events) - before + python_peak


def worker(mode: str, bands_count: int, threads: int, repeats: int) -> None:
    import torch

    import boundary_widgets as bw
    from boundary_widgets.core import dct

    torch.set_num_threads(threads)
    clf = build_classifier(bw, torch)
    x = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))

    def pick() -> list:
        """Fresh band objects on each call: the old bands cached their basis on first use."""
        every = dct.bands(SHAPE)
        return [every[round(i * (len(every) - 1) / max(1, bands_count - 1))] for i in range(bands_count)]

    low = dct.bands(SHAPE)[0]

    if mode == "dense":

        def direction():
            return bw.deepfool(clf, x, subspace=low.basis, max_iter=100, candidates=10).distances

        def noise():
            generator = torch.Generator().manual_seed(0)
            return low.basis @ torch.randn(low.dim, generator=generator)

        def margins():
            return [bw.deepfool(clf, x, subspace=b.basis, max_iter=100, overshoot=0.02).distances for b in pick()]
    else:

        def direction():
            return bw.directions.make("dct", clf, x, band="low")

        def noise():
            return bw.directions.make("dct", clf, x, band="low", method="random")

        def margins():
            return bw.analysis.band_margins(clf, x[None], bands=pick())

    gradients = torch.randn(9, *SHAPE, generator=torch.Generator().manual_seed(1))
    if mode == "fast":

        def projection():
            return low.project(gradients)
    else:
        basis = low.basis  # built once, outside the timing: the per-step cost alone

        def projection():
            return (gradients.reshape(9, -1) @ basis) @ basis.T

    cases = {
        "deepfool (unconstrained, reference)": lambda: bw.deepfool(clf, x),
        "dct direction, band low (DeepFool)": direction,
        "dct direction, band low (random)": noise,
        f"band margins, 1 image × {bands_count} bands": margins,
        "one step's projection of 9 gradients": projection,
    }
    out = {"package": bw.__file__, "iterations": int(bw.deepfool(clf, x).iterations[0])}
    reference = "deepfool (unconstrained, reference)"
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm-up
    for round_ in range(repeats):  # interleaved, so that a busy moment of the machine hits every case alike
        for name, fn in cases.items():
            if mode == "before" and name != reference and round_ > 0:
                continue  # tens of seconds each: one timing
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    for name, fn in cases.items():
        out[name] = {"seconds": min(timings[name]), "peak_bytes": peak_traced_bytes(torch, fn)}
    print(json.dumps(out))


def run(mode: str, root: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", mode, "--bands", str(args.bands)]
    command += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
    env = {"PYTHONPATH": str(root), "OMP_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bands", type=int, default=3, help="bands in the one-image band margins (14: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=["before", "dense", "fast"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.bands, args.threads, args.repeats)
        return
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE, "boundary_widgets"], capture_output=True)
        subprocess.run(["tar", "-x", "-C", old], input=archive.stdout, check=True)
        results = {"before": run("before", Path(old), args)}
    results["dense"] = run("dense", REPO, args)
    results["fast"] = run("fast", REPO, args)
    for mode, result in results.items():
        assert result["package"].startswith(str(Path(old) if mode == "before" else REPO)), result["package"]

    print(f"3×224×224, 1000 classes, narrow ResNet-style net, random weights; torch threads {args.threads}")
    print(f"unconstrained DeepFool takes {results['fast']['iterations']} step(s) on this image")
    header = f"{'case':40s}" + "".join(f"{m + ' s':>10s}{m + ' MB':>11s}" for m in results)
    print(header + f"{'before/fast s':>14s}{'before/fast MB':>15s}{'dense/fast s':>13s}")
    for name in [key for key in results["fast"] if isinstance(results["fast"][key], dict)]:
        row = [results[m][name] for m in results]
        cells = "".join(f"{r['seconds']:10.3f}{r['peak_bytes'] / 2**20:11.1f}" for r in row)
        before, dense, fast = row
        print(
            f"{name:40s}{cells}{before['seconds'] / fast['seconds']:13.1f}x"
            f"{before['peak_bytes'] / max(fast['peak_bytes'], 1):14.1f}x{dense['seconds'] / fast['seconds']:12.1f}x"
        )
    for mode, result in results.items():
        reference = result["deepfool (unconstrained, reference)"]["seconds"]
        ratio = result["dct direction, band low (DeepFool)"]["seconds"] / reference
        print(f"{mode}: dct direction / one unconstrained DeepFool = {ratio:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
