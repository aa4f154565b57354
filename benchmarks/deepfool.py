"""Batched DeepFool against foolbox 3's L2DeepFoolAttack on 256 digits test images, same settings.

Run: ``python benchmarks/deepfool.py`` (needs the ``bench`` extra: ``pip install foolbox==3.3.4``).
Both clip to the bounds (foolbox always does), 10 candidate classes, overshoot 0.02, 50 steps,
logit differences. Timings are interleaved (ours, foolbox, ours, …) so a shared machine's load
hits both alike; the table reports medians and the ratio.
"""

from __future__ import annotations

import statistics
import time

import torch

import boundary_widgets as bw

ROUNDS = 5
N_IMAGES = 256


def main() -> None:
    try:
        import foolbox
    except ImportError as error:
        raise SystemExit(f"foolbox is needed for this benchmark (pip install foolbox==3.3.4): {error}") from error

    clf, data = bw.zoo.load("digits-cnn", device="cpu")
    images = data.split("test")[0][:N_IMAGES].contiguous()
    labels = clf.predict(images)  # both attacks start from the predicted class
    net = clf.net.eval()
    model = foolbox.PyTorchModel(net, bounds=clf.bounds)
    attack = foolbox.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02, loss="logits")

    def ours() -> tuple[torch.Tensor, torch.Tensor]:
        result = bw.deepfool(clf, images, candidates=10, overshoot=0.02, max_iter=50, clip=True)
        return result.distances, result.converged

    def theirs() -> tuple[torch.Tensor, torch.Tensor]:
        adversarial = attack.run(model, images, foolbox.criteria.Misclassification(labels))
        distances = (adversarial - images).flatten(1).norm(dim=1)
        return distances, clf.predict(adversarial) != labels

    ours()
    theirs()  # warm-up: first calls pay for allocation and lazy imports
    times: dict[str, list[float]] = {"ours": [], "foolbox": []}
    outputs = {}
    for _ in range(ROUNDS):
        for name, run in (("ours", ours), ("foolbox", theirs)):
            start = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - start)

    rows = []
    for name in ("ours", "foolbox"):
        distances, converged = outputs[name]
        rows.append(
            (
                name,
                statistics.median(times[name]),
                distances[converged].median().item(),
                int(converged.sum()),
            )
        )
    print(
        f"DeepFool on {N_IMAGES} digits-cnn test images, median of {ROUNDS} interleaved runs (torch {torch.__version__},"
    )
    print(f"foolbox {foolbox.__version__}, {torch.get_num_threads()} threads)")
    print(f"{'':10}{'time (s)':>10}{'median L2':>12}{'fooled':>10}")
    for name, seconds, median, fooled in rows:
        print(f"{name:10}{seconds:>10.3f}{median:>12.4f}{fooled:>7}/{N_IMAGES}")
    (_, ours_time, ours_median, _), (_, fb_time, fb_median, _) = rows
    print(f"speed-up (foolbox / ours): {fb_time / ours_time:.2f}x   (target >= 2x)")
    print(f"median distance, ours vs foolbox: {100 * (ours_median / fb_median - 1):+.2f} %   (target within 5 %)")


if __name__ == "__main__":
    main()
