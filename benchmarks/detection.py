"""Fawzi et al.'s curvature detector on clean against DeepFool digits: AUC, detection and label recovery.

``.venv/bin/python benchmarks/detection.py [--images 200] [--directions 50]``: for each digits model,
the first N correctly classified test digits, and their DeepFool perturbations (clipped to the
pixel range, overshoot 0.02) that changed the label. Recovery is compared side by side with the
baseline that guesses the perturbed image's runner-up class. Each model runs at the authors'
finite-difference step (``default``: ``sqrt(d)/512·10`` of the pixel range) and at the larger
``--steps``: on the piecewise-linear models a longer step straddles more kinks.
"""

from __future__ import annotations

import argparse
import time

import boundary_widgets as bw
from boundary_widgets.core.analysis.detection import evaluate_detector

MODELS = ("digits-cnn", "digits-cnn-robust", "digits-mlp", "digits-smooth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--directions", type=int, default=50)
    parser.add_argument("--false-positive-rate", type=float, default=0.05)
    parser.add_argument("--steps", type=float, nargs="*", default=[1.0], help="steps besides the default one")
    args = parser.parse_args()
    print(
        f"{'model':<18} {'step':>7} {'pairs':>5} {'AUC':>6} {'TPR@FPR':>8} {'recovery':>9} {'runner-up':>9} {'time s':>7}"
        f"   (FPR {args.false_positive_rate:.2f}, {args.directions} directions)"
    )
    for name in MODELS:
        clf, data = bw.zoo.load(name, device="cpu")
        images, labels = data.split("test")
        correct = clf.predict(images) == labels
        clean, truth = images[correct][: args.images], labels[correct][: args.images]
        attack = bw.deepfool(clf, clean, clip=True)
        crossed = attack.converged & (clf.predict(clean + attack.perturbations) != truth)
        clean, truth, perturbed = clean[crossed], truth[crossed], (clean + attack.perturbations)[crossed]
        for step in (None, *args.steps):
            start = time.perf_counter()
            report = evaluate_detector(
                clf,
                clean,
                perturbed,
                truth,
                false_positive_rate=args.false_positive_rate,
                n_directions=args.directions,
                step=step,
            )
            seconds = time.perf_counter() - start
            shown = "default" if step is None else f"{step:g}"
            print(
                f"{name:<18} {shown:>7} {len(clean):>5} {report.auc:>6.3f} {report.detection_rate:>8.3f} "
                f"{report.recovery_accuracy:>9.3f} {report.runner_up_accuracy:>9.3f} {seconds:>7.1f}"
            )


if __name__ == "__main__":
    main()
