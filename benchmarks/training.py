"""TrainingExplorer frame rate on this CPU: epochs trained and drawn per second, threaded as in a notebook.

One frame is one epoch of training on the train split plus a dense slice of the fixed plane at
the explorer's resolution, drawn into the map. The explorer plays on its worker thread for a
fixed time and the epochs done are counted; the model's bare training epoch (no slice, no
drawing) is timed in the same run, so the overhead of drawing is the ratio of the two.
Target: >= 5 frames per second on moons.

    python benchmarks/training.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import time

import torch

import boundary_widgets as bw
from boundary_widgets.core.training import LiveTraining, build_network
from boundary_widgets.widgets import TrainingExplorer


def frames_per_second(explorer: TrainingExplorer, seconds: float) -> float:
    explorer.step()  # warm-up: the first epoch pays for one-off allocations
    explorer.wait()
    start_epoch = explorer.training.epoch
    started = time.perf_counter()
    explorer.play()
    time.sleep(seconds)
    explorer.pause()
    explorer.wait()
    return (explorer.training.epoch - start_epoch) / (time.perf_counter() - started)


def bare_epochs_per_second(clf: bw.Classifier, data: bw.Dataset, settings: dict, seconds: float) -> float:
    torch.manual_seed(0)
    net = build_network(clf.input_shape, clf.num_classes, width=settings["width"], depth=settings["depth"])
    images, labels = data.split("train")
    run = LiveTraining(clf.with_module(net), images, labels, adversarial=settings["adversarial"])
    run.train_epoch()  # warm-up, as the explorer's first frame is
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        run.train_epoch()
    return (run.epoch - 1) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    # Models this small gain nothing from intra-op threads, and on a loaded 2-core machine the
    # second thread's spin-waits make a 3 ms epoch take up to 0.9 s.
    torch.set_num_threads(1)
    cases = [
        ("moons-mlp", {"width": 16, "depth": 2, "adversarial": "none", "resolution": 64}),
        ("moons-mlp", {"width": 16, "depth": 2, "adversarial": "pgd", "resolution": 64}),
        ("digits-cnn", {"width": 16, "depth": 2, "adversarial": "none", "resolution": 48}),
        ("digits-cnn", {"width": 16, "depth": 2, "adversarial": "pgd", "resolution": 48}),
    ]
    print(f"{'model':<11} {'adversarial':<11} {'res':>4} {'frames/s':>9} {'bare epochs/s':>14} {'drawn/bare':>11}")
    for name, settings in cases:
        clf, data = bw.zoo.load(name, device="cpu")
        explorer = TrainingExplorer(clf, data, **settings)
        try:
            fps = frames_per_second(explorer, args.seconds)
        finally:
            explorer.close()
        bare = bare_epochs_per_second(clf, data, settings, args.seconds)
        print(
            f"{name:<11} {settings['adversarial']:<11} {settings['resolution']:>4} {fps:>9.1f} {bare:>14.1f} "
            f"{fps / bare:>11.2f}"
        )


if __name__ == "__main__":
    main()
