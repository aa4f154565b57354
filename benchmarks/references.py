"""The papers' protocols beside the kit's earlier behaviour: DeepDIG's pairs, curvature stability, hold-me-tight's grids.

Run: ``python benchmarks/references.py`` (``--quick``: fewer images). Prints three tables:

1. DeepDIG borderline samples on digits-cnn training images (3→8, 4→9): success, p_s + p_t at the
   samples and distance to the image, for the default pairs (both ends straddle the source/target
   boundary) and the earlier ones (the image and its targeted DeepFool adversarial). The authors'
   pipeline (hamidkarimi/DeepDIG) found 137/137 and 136/136 with p_s + p_t 0.99 / 0.97.
2. Principal curvatures on digits-cnn test digits (finite differences, a ReLU network): the logit
   gap left at DeepFool's point (the earlier boundary point) and after bisection onto F = 0, both as
   |F| / |∇F| relative to the distance; the top-5 spread between seeds 0 and 1 (``lanczos_runs=2``)
   and the share of digits within 5 % (the target: ≥ 90 %), for Lanczos on the finite-difference
   products and for their average over 24 random tangent bases (``n_bases=24``, 1,512 products); the same
   on digits-smooth in exact mode, a true linear operator.
3. Hold me tight! margins on digits-cnn test digits: the kit's grid and the paper's (scaled to 8×8),
   linearised at the overshot point (the kit's) or before the overshoot (the reference's), medians
   counting a non-converged image as inf (the kit) or by its last norm (the reference).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import boundary_widgets as bw
from boundary_widgets.core import curvature, dct


def borderline_table(n: int | None) -> None:
    clf, data = bw.zoo.load("digits-cnn", device="cpu")
    images, labels = data.split("train")
    print("1. DeepDIG borderline samples, digits-cnn training images predicted as the source")
    print(f"{'pair':>5} {'pairs':>20} {'success':>9} {'p_s+p_t median':>15} {'distance median':>16} {'s':>6}  failures")
    for source, target in ((3, 8), (4, 9)):
        chosen = images[labels == source]
        chosen = chosen[clf.predict(chosen) == source][:n]
        for pairs in ("image-adversarial", "boundary-projection"):
            start = time.perf_counter()
            result = bw.analysis.borderline_samples(clf, chosen, source, target, pairs=pairs)
            seconds = time.perf_counter() - start
            ok = result.success
            share = np.median(result.p_source[ok] + result.p_target[ok]) if ok.any() else float("nan")
            distance = np.median(result.distances[ok]) if ok.any() else float("nan")
            failures = {f: result.failure.count(f) for f in set(result.failure) if f}
            top = ", ".join(f"{count} {f}" for f, count in sorted(failures.items(), key=lambda kv: -kv[1])[:3])
            print(
                f"{source}->{target:<2} {pairs:>20} {int(ok.sum()):>4}/{ok.size:<4} {share:>15.3f} {distance:>16.3f} "
                f"{seconds:>6.1f}  {top or '-'}"
            )


def _gap_share(clf: bw.Classifier, x: torch.Tensor, z: torch.Tensor, classes: tuple[int, int]) -> float:
    """|F(z)| / |∇F(z)| relative to |z − x|: how far off the boundary z is, to first order."""
    hessian = curvature.BoundaryHessian(clf, z, classes, mode="exact", step=None)
    gradient = float(hessian.gradient().norm())
    values = clf.logits(z.reshape(1, *clf.input_shape))[0]
    gap = float(values[classes[0]] - values[classes[1]])
    return abs(gap) / gradient / float((z - x).norm())


def curvature_table(n: int) -> None:
    print("\n2. Principal curvatures, top 5 by magnitude (finite differences on digits-cnn, exact on digits-smooth)")
    rows = (("digits-cnn", "finite_difference", None), ("digits-cnn", "finite_difference", 24))
    rows += (("digits-smooth", "exact", None),)
    for name, mode, n_bases in rows:
        clf, data = bw.zoo.load(name, device="cpu")
        images = data.split("test")[0][:n]
        before, after, spreads, residuals, products = [], [], [], [], []
        for x in images:
            if n_bases is None:
                found = bw.deepfool(clf, x, overshoot=0.0)
                if bool(found.converged[0]):
                    classes = (int(found.original[0]), int(found.reached[0]))
                    before.append(_gap_share(clf, x, x + found.perturbations[0], classes))
            result = curvature.principal_curvatures(clf, x, k=5, mode=mode, lanczos_runs=2, n_bases=n_bases)
            if result.converged and n_bases is None:
                after.append(_gap_share(clf, x, result.boundary_point, (result.original, result.reached)))
            spreads.append(float(result.spread.max()))
            residuals.append(float(result.residuals.max() / np.abs(result.values).max()))
            products.append(result.n_hvp / 2)
        spreads = np.array(spreads)
        estimator = "Lanczos on the products" if n_bases is None else f"averaged over {n_bases} tangent bases"
        print(f"{name:>14} {mode:>17}, {estimator}:")
        if n_bases is None:
            print(
                f"{'':>8} off-boundary |F|/|∇F|/distance median {np.median(before):.2e} (max {np.max(before):.2e}) "
                f"at DeepFool's point, {np.median(after):.2e} (max {np.max(after):.2e}) after bisection"
            )
        print(
            f"{'':>8} seed 0 vs 1, top 5: within 5 % on {np.mean(spreads <= 0.05):.0%} of {spreads.size} "
            f"(target ≥ 90 %); spread median {np.median(spreads):.3f}, max {spreads.max():.3f}; "
            f"products per run median {np.median(products):.0f}; residual/|λ| median {np.median(residuals):.2e}"
        )


def margins_table(n: int) -> None:
    clf, data = bw.zoo.load("digits-cnn", device="cpu")
    images = data.split("test")[0][:n]
    print(f"\n3. Hold me tight! margins along DCT bands, digits-cnn, {n} test digits (medians, L2)")
    for grid in ("kit", "hold-me-tight"):
        chosen = dct.bands(clf.input_shape, grid=grid)
        block, stride = (chosen[0].rows[1] - chosen[0].rows[0]), (chosen[1].rows[0] - chosen[0].rows[0])
        kit = bw.analysis.band_margins(clf, images, bands=chosen)
        reference = bw.analysis.band_margins(clf, images, bands=chosen, linearise="iterate")
        both = kit.converged & reference.converged
        ratios = reference.margins[both] / kit.margins[both]
        longer = ratios[ratios > 1.001]  # images where the linearisation point mattered (several steps)
        print(f"  grid {grid!r}: K={block}, stride {stride}, {len(chosen)} bands")
        print(
            f"    {'band':>8} {'overshot (kit)':>15} {'iterate (ref.)':>15} {'ref., last norm':>16} {'converged':>10}"
        )
        for j, band in enumerate(chosen):
            print(
                f"    {band.name:>8} {kit.medians[j]:>15.3f} {reference.medians[j]:>15.3f} "
                f"{reference.reference_medians[j]:>16.3f} {reference.converged_share[j]:>10.0%}"
            )
        print(
            f"    iterate / overshot: {longer.size} of {ratios.size} image-bands differ by > 0.1 %, "
            f"median ratio there {np.median(longer) if longer.size else float('nan'):.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images")
    args = parser.parse_args()
    borderline_table(30 if args.quick else None)
    curvature_table(10 if args.quick else 50)
    margins_table(20 if args.quick else 100)


if __name__ == "__main__":
    main()
