"""Connecting paths on digits-cnn: how often the straight line leaves the class, and whether a path is found.

    python benchmarks/paths.py                                  # 100 natural, 30 perturbed pairs
    python benchmarks/paths.py --pairs 20 --perturbed-pairs 5   # a smoke run

Two sets of same-class pairs, drawn with a fixed seed from the test split:
- "natural": two test images predicted as the same class (the issue's set);
- "perturbed": two test images of two different classes, each moved by a targeted DeepFool
  (overshoot 0.02) into a third class they share; both ends lie just inside that class, where
  the straight line between them most often leaves it.
"Leaves" is judged by `line_profile` with 256 points, independently of find_path's own checks.
One by one (`find_path`) and batched (`find_paths`) run on the same pairs, interleaved. The last
column runs the perturbed pairs again with `push=0`: anchors left where DeepFool puts them, on the
boundary (the behaviour before anchors were pushed into the class), for a side-by-side comparison.
Target (issue 5): path success >= 95 % on the natural set.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import boundary_widgets as bw


def natural_pairs(clf: bw.Classifier, images: torch.Tensor, n: int, rng: np.random.Generator) -> tuple:
    predicted = clf.predict(images).numpy()
    first, second = [], []
    while len(first) < n:
        i, j = rng.choice(len(images), 2, replace=False)
        if predicted[i] == predicted[j]:
            first.append(images[i])
            second.append(images[j])
    return torch.stack(first), torch.stack(second)


def perturbed_pairs(clf: bw.Classifier, images: torch.Tensor, n: int, rng: np.random.Generator) -> tuple:
    predicted = clf.predict(images).numpy()
    first, second = [], []
    while len(first) < n:
        i, j = rng.choice(len(images), 2, replace=False)
        target = int(rng.integers(clf.num_classes))
        if len({int(predicted[i]), int(predicted[j]), target}) < 3:
            continue
        result = bw.deepfool(clf, images[[i, j]], target=target, clip=True, overshoot=0.02)
        moved = images[[i, j]] + result.perturbations
        # Ends barely across a boundary can flip with batch numerics: keep pairs whose class holds either way.
        stable = all(int(clf.predict(m)) == target for m in moved) and bool((clf.predict(moved) == target).all())
        if bool(result.converged.all()) and stable:
            first.append(moved[0])
            second.append(moved[1])
    A, B = torch.stack(first), torch.stack(second)
    keep = (clf.predict(A) == clf.predict(B)).numpy()
    return A[keep], B[keep]


def measure(clf: bw.Classifier, A: torch.Tensor, B: torch.Tensor, **options: float) -> dict:
    leaves = np.array([bw.line_profile(clf, a, b, n=256).n_changes > 0 for a, b in zip(A, B, strict=True)])
    single_paths, single_s, batched_s = [], 0.0, 0.0
    # Interleave: half the pairs one by one first, then the batch, then the other half.
    half = len(A) // 2
    for part in (slice(0, half), slice(half, len(A))):
        start = time.perf_counter()
        single_paths += [bw.find_path(clf, a, b, **options) for a, b in zip(A[part], B[part], strict=True)]
        single_s += time.perf_counter() - start
        start = time.perf_counter()
        batched = bw.find_paths(clf, A[part], B[part], **options)
        batched_s += time.perf_counter() - start
        assert [p.valid for p in batched] == [p.valid for p in single_paths[part]]
    valid = np.array([p.valid for p in single_paths])
    anchors = np.array([p.n_anchors for p in single_paths])
    ratio = np.array([p.length / p.straight_length for p in single_paths])
    return {
        "pairs": len(A),
        "leaves": leaves.mean(),
        "success": valid.mean(),
        "success | leaves": valid[leaves].mean() if leaves.any() else float("nan"),
        "anchors": np.median(anchors),
        "anchors | leaves": np.median(anchors[leaves]) if leaves.any() else float("nan"),
        "length ratio": np.median(ratio),
        "length ratio | leaves": np.median(ratio[leaves & valid]) if (leaves & valid).any() else float("nan"),
        "ms / path": 1e3 * single_s / len(A),
        "ms / path batched": 1e3 * batched_s / len(A),
        "batched speed-up": single_s / batched_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="natural pairs")
    parser.add_argument("--perturbed-pairs", type=int, default=30, help="perturbed pairs (their failures are slow)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    clf, data = bw.zoo.load("digits-cnn", device="cpu")
    images, _ = data.split("test")
    rng = np.random.default_rng(args.seed)
    sets = {
        "natural": natural_pairs(clf, images, args.pairs, rng),
        "perturbed": perturbed_pairs(clf, images, args.perturbed_pairs, rng),
    }
    results = {name: measure(clf, *pairs) for name, pairs in sets.items()}
    results["perturbed push=0"] = measure(clf, *sets["perturbed"], push=0.0)
    print(f"digits-cnn, find_path defaults (last column: push=0), seed {args.seed}")
    print(f"{'':24}" + "".join(f"{name:>18}" for name in results))
    for key in next(iter(results.values())):
        cells = []
        for row in results.values():
            value = row[key]
            share = key.startswith(("leaves", "success"))
            if np.isnan(value):
                cells.append(f"{'-':>18}")
            else:
                cells.append(f"{value:>17.0%} " if share else f"{value:>18.3g}")
        print(f"{key:24}" + "".join(cells))
    print(
        f"target: success >= 95 % on natural pairs -> {'met' if results['natural']['success'] >= 0.95 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
