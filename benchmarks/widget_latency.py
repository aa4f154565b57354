"""Explorer latency, all three explorers, digits-cnn and a 3×32×32 ResNet-18 (random weights), side by side.

For each model and explorer, on threaded explorers used as a student would:

- click → preview: from a map click (the kernel thread) to the preview and top-k panel updated,
  with the worker idle, and while the SliceExplorer's worker computes a 512² dense slice;
- change → first frame and → final map: a new direction (SliceExplorer: the v seed, so no cache
  can answer), a new path setting (PathExplorer: samples per segment), a new dot (MarginExplorer:
  another image and band); the map mark's picture is watched (each frame is a new picture).

Medians of ``--repeats`` runs, interleaved across explorers. Targets (issue 11, CPU, digits):
click → preview <= 50 ms, also while a 512² dense slice computes; first frame <= 50 ms.

    python benchmarks/widget_latency.py [--repeats 5] [--models digits-cnn resnet18-32]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

import boundary_widgets as bw
from boundary_widgets.widgets import MarginExplorer, PathExplorer, SliceExplorer


def resnet_build():
    """``build`` of benchmarks/realscale.py (the same ResNet-18 built without torchvision)."""
    spec = importlib.util.spec_from_file_location("realscale", Path(__file__).with_name("realscale.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


def load(name: str) -> tuple[bw.Classifier, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The classifier, an image, and a second image of the same predicted class (for paths), and 4 images."""
    if name == "digits-cnn":
        clf, data = bw.zoo.load("digits-cnn", device="cpu")
        images, _ = data.split("test")
    else:
        clf, _net, images = resnet_build()(32, 10, "cpu")
    predicted = clf.predict(images)
    first = int(predicted[0])
    same = torch.nonzero(predicted == first).flatten().tolist()
    partner = images[same[1]] if len(same) > 1 else images[0].clamp(0.05, 0.95)
    return clf, images[0], partner, images[:4]


def timed_click(explorer, alpha: float, beta: float) -> float:
    started = time.perf_counter()
    explorer.select(alpha, beta)  # returns once the preview picture and the top-k bars are set
    return time.perf_counter() - started


def timed_change(explorer, change) -> tuple[float, float]:
    """Seconds from ``change()`` to the first and the last new map picture."""
    pictures: list[float] = []

    def record(_change: dict) -> None:
        pictures.append(time.perf_counter())

    explorer.map_view.image.observe(record, names="image")
    started = time.perf_counter()
    change()
    explorer.wait()
    explorer.map_view.image.unobserve(record, names="image")
    if explorer.error is not None:
        raise RuntimeError(explorer.error)
    return pictures[0] - started, pictures[-1] - started


def clicks_during_dense(explorer: SliceExplorer, clicks: int) -> list[float]:
    """Clicks while the worker computes a 512² dense slice; the slice is then cancelled."""
    times = []
    with explorer.hold_trait_notifications():
        explorer.method, explorer.resolution = "dense", 512
    time.sleep(0.2)  # the worker is inside the slice now
    for k in range(clicks):
        if not explorer.worker.busy:
            break
        times.append(timed_click(explorer, 0.1 * (k + 1), -0.05 * k))
        time.sleep(0.05)
    with explorer.hold_trait_notifications():
        explorer.method, explorer.resolution = "adaptive", 128  # cancels the dense slice
    explorer.wait()
    return times


def run_model(name: str, repeats: int) -> dict[str, dict[str, float]]:
    clf, x, partner, few = load(name)
    slicer = SliceExplorer(clf, x, resolution=128, threaded=True)
    pather = PathExplorer(clf, x, partner, resolution=96, threaded=True)
    result = bw.analysis.band_margins(clf, few)
    margins = MarginExplorer(clf, few, result=result, resolution=96, threaded=True)
    for explorer in (slicer, pather, margins):
        explorer.wait()
    margins.show_slice(0, 0)
    margins.wait()
    rows = {"SliceExplorer": {}, "PathExplorer": {}, "MarginExplorer": {}}
    samples: dict[str, dict[str, list[float]]] = {key: {} for key in rows}

    def add(explorer: str, column: str, value: float) -> None:
        samples[explorer].setdefault(column, []).append(value)

    seed = 100
    for k in range(repeats):
        for explorer, name_ in ((slicer, "SliceExplorer"), (pather, "PathExplorer"), (margins, "MarginExplorer")):
            add(name_, "click → preview", timed_click(explorer, 0.2 + 0.01 * k, 0.1))
        seed += 2
        first, final = timed_change(slicer, lambda s=seed: slicer.v_picker.controls["seed"].__setattr__("value", s))
        add("SliceExplorer", "change → first frame", first)
        add("SliceExplorer", "change → final map", final)
        first, final = timed_change(pather, lambda k=k: setattr(pather, "samples_per_segment", 24 + 2 * (k % 2)))
        add("PathExplorer", "change → first frame", first)
        add("PathExplorer", "change → final map", final)
        band = (k + 1) % len(result.bands)
        first, final = timed_change(margins, lambda b=band, k=k: margins.show_slice((k + 1) % few.shape[0], b))
        add("MarginExplorer", "change → first frame", first)
        add("MarginExplorer", "change → final map", final)
    busy = clicks_during_dense(slicer, clicks=max(repeats, 5))
    if busy:
        samples["SliceExplorer"]["click → preview, 512² dense running"] = busy
    for explorer in (slicer, pather, margins):
        explorer.close()
    for key, columns in samples.items():
        rows[key] = {column: statistics.median(values) for column, values in columns.items()}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["digits-cnn", "resnet18-32"])
    args = parser.parse_args()
    columns = [
        "click → preview",
        "click → preview, 512² dense running",
        "change → first frame",
        "change → final map",
    ]
    print(f"CPU, torch threads {torch.get_num_threads()}, median of {args.repeats} runs; milliseconds")
    print(f"{'model':<13} {'explorer':<15} " + " ".join(f"{c:>36}" for c in columns))
    for model in args.models:
        for explorer, values in run_model(model, args.repeats).items():
            cells = [f"{1000 * values[c]:>36.1f}" if c in values else f"{'—':>36}" for c in columns]
            print(f"{model:<13} {explorer:<15} " + " ".join(cells))


if __name__ == "__main__":
    main()
