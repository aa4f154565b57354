"""SliceExplorer latency on digits-cnn (CPU): from a direction change to the map's image updated.

A change of the v direction's seed (a new plane, so no cache can answer) is made as a user
would make it, on a threaded explorer; the map mark's picture is watched. "first" is the first
picture shown, "final" the finished map. The adaptive method (the default) and dense
evaluation run interleaved in the same process, so the ratio column is robust to the load of
a shared machine. Targets: first frame <= 0.3 s, final 128² frame <= 1 s.

    python benchmarks/widget_latency.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import boundary_widgets as bw
from boundary_widgets.widgets import SliceExplorer


def measure(explorer: SliceExplorer, seed: int) -> tuple[float, float]:
    updates: list[float] = []

    def record(_change: dict) -> None:
        updates.append(time.perf_counter())

    # Each new picture is a new widget given to the Image mark (see widgets.views.show_png).
    explorer.map_view.image.observe(record, names="image")
    started = time.perf_counter()
    explorer.v_picker.controls["seed"].value = seed
    explorer.wait()
    explorer.map_view.image.unobserve(record, names="image")
    if explorer.error is not None:
        raise RuntimeError(explorer.error)
    return updates[0] - started, updates[-1] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    clf, data = bw.zoo.load("digits-cnn", device="cpu")
    x = data.images[0]
    explorers = {
        (resolution, method): SliceExplorer(clf, x, resolution=resolution, method=method, threaded=True)
        for resolution in (128, 256)
        for method in ("adaptive", "dense")
    }
    for explorer in explorers.values():
        explorer.wait()
    times: dict[tuple[int, str], list[tuple[float, float]]] = {key: [] for key in explorers}
    seed = 100
    for _ in range(args.repeats):
        for key, explorer in explorers.items():  # interleaved: the same load for every row
            seed += 1
            times[key].append(measure(explorer, seed))

    print(f"digits-cnn, CPU, torch threads {torch.get_num_threads()}, median of {args.repeats} seed changes")
    print(f"{'resolution':>10} {'method':>9} {'first (s)':>10} {'final (s)':>10} {'final vs dense':>15}")
    for resolution in (128, 256):
        dense_final = statistics.median(t[1] for t in times[(resolution, "dense")])
        for method in ("adaptive", "dense"):
            first = statistics.median(t[0] for t in times[(resolution, method)])
            final = statistics.median(t[1] for t in times[(resolution, method)])
            print(f"{resolution:>10} {method:>9} {first:>10.3f} {final:>10.3f} {final / dense_final:>14.2f}x")


if __name__ == "__main__":
    main()
