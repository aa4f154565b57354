"""Write the analysis lessons (notebooks 5–8) from their cells: ``python scripts/make_analysis_notebooks.py``.

Every number the text quotes is computed in the notebook (a ``Markdown`` display of f-strings),
never typed here. Exercises follow ``scripts/make_student_notebooks.py``'s conventions: tagged
prompt, solution and check cells; the solution lists the names its check reads in ``answers``;
the check calls one of ``boundary_widgets.exercises``' checks, which shows ✓ or ✗ with a hint.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# Voila shows no code, so it cannot ask for any: it hides the exercises (cells tagged "exercise").
VOILA_HIDES_EXERCISES = "\n\n<style>.celltag_exercise { display: none; }</style>"
# Every lesson's first cell: kernels outlive their tabs, and a few of them fill a Binder pod.
SHUT_DOWN_KERNELS = (
    "\n\n> **One kernel per open lesson.** Each lesson runs in its own Python kernel, which keeps its memory "
    "after you close the tab. When you move on, shut it down: *Kernel → Shut Down Kernel* (or, in JupyterLab, "
    "the ■ *Running Terminals and Kernels* panel on the left; in Jupyter Notebook, *File → Close and Shut Down "
    "Notebook*). On Binder (about 2 GB) three or four lessons left running fill the memory."
)

SETUP = """import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown

import boundary_widgets as bw

_ = torch.manual_seed(0)"""


def exercise(number: int, prompt: str, solution: str, answers: list[str], check: str, wrong: list[dict]) -> list:
    """The three cells of one exercise: prompt, collapsed solution (the teacher's) and check.

    ``check``: the call of a ``boundary_widgets.exercises`` check, e.g. ``check_auc(auc, scores_clean=...)``.
    ``wrong``: plausible wrong answers, each ``{"answer": code, "hint": words its verdict must contain}``
    (tests/test_student_notebooks.py tries them).
    """
    style = VOILA_HIDES_EXERCISES if number == 1 else ""
    function = check.split("(", 1)[0]
    return [
        new_markdown_cell(f"### Exercise {number}\n{prompt}{style}", metadata={"tags": ["exercise"]}),
        new_code_cell(
            "# Solution (click the bar on the left to show it)\n" + solution,
            metadata={
                "tags": ["exercise", "solution"],
                "answers": answers,
                "wrong_answers": wrong,
                "jupyter": {"source_hidden": True},
            },
        ),
        new_code_cell(
            f"from boundary_widgets.exercises import {function}\n\n{check}", metadata={"tags": ["check", "exercise"]}
        ),
    ]


NOTEBOOKS = {
    "5_band_margins.ipynb": [
        new_markdown_cell(
            "# 5 · Margins along frequency bands (*Hold me tight!*)\n\n"
            "Ortiz-Jimenez et al. (arXiv 2002.06349) measure the distance to the boundary when the\n"
            "perturbation may only use one band of 2-D DCT frequencies (DeepFool with every step\n"
            "projected on the band). On MNIST and ImageNet the margin is small along low frequencies and\n"
            "large along high ones; a control set whose only signal sits in one band gets a small margin\n"
            "in that band and large ones elsewhere: the invariance comes from the data. Training on small\n"
            "adversarial perturbations moves the boundary too: the margins grow where the attack pushed.\n\n"
            "Here: `bw.analysis.band_margins` on the embedded 8×8 digits CNN, on `digits-cnn-robust` (the same\n"
            "network adversarially trained on small L2 perturbations) and on `dct-band-cnn`, a CNN trained\n"
            "on synthetic images whose class is the sign of one direction in the highest band."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            'clf, data = bw.zoo.load("digits-cnn", device="cpu")\n'
            'robust_clf, _ = bw.zoo.load("digits-cnn-robust", device="cpu")\n'
            'images, labels = data.split("test")\n'
            "wide = bw.dct.bands(clf.input_shape, block=4, stride=2)  # 3 overlapping 4×4 bands: low, mid, high\n"
            "digits = bw.analysis.band_margins(clf, images[:40], bands=wide)\n"
            "robust = bw.analysis.band_margins(robust_clf, images[:40], bands=wide)\n"
            'for name, result in (("standard", digits), ("robust", robust)):\n'
            '    print(f"{name:>8}: median margin per band", dict(zip(result.band_names, result.medians.round(3).tolist())))\n'
            "# The paper's finding on digits: the margin grows from low to high frequency.\n"
            "assert digits.medians[0] < digits.medians[1] < digits.medians[2]"
        ),
        new_code_cell(
            'control_clf, control = bw.zoo.load("dct-band-cnn", device="cpu")\n'
            'control_images = control.split("test")[0][:40]\n'
            "synthetic = bw.analysis.band_margins(control_clf, control_images)  # default: four 2×2 bands\n"
            'print("median margin per band:", dict(zip(synthetic.band_names, synthetic.medians.round(3).tolist())))\n'
            "# The signal sits in the highest band: its margin is the smallest, by a clear factor.\n"
            "assert synthetic.medians[-1] * 4 < synthetic.medians[:-1].min()"
        ),
        new_code_cell(
            "fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)\n"
            'bw.plot_band_margins(digits, ax=axes[0]).ax_.set_title("digits CNN")\n'
            'bw.plot_band_margins(robust, ax=axes[1]).ax_.set_title("digits CNN, adversarially trained")\n'
            'bw.plot_band_margins(synthetic, ax=axes[2]).ax_.set_title("control: signal in the high band")\n'
            "fig.tight_layout()"
        ),
        new_code_cell(
            "low, mid, high = digits.medians\n"
            "gains = robust.medians / digits.medians\n"
            "Markdown(\n"
            '    f"**Measured here** ({digits.margins.shape[0]} test digits, 4×4 bands): median margins low {low:.2f}, "\n'
            '    f"mid {mid:.2f}, "\n'
            '    f"high {high:.2f} for the standard model. Adversarial training (L2 PGD, ε = "\n'
            "    f\"{bw.zoo.get('digits-cnn-robust').adversarial_epsilon:g}) multiplies them by \"\n"
            '    f"{gains[0]:.2f}, {gains[1]:.2f} and {gains[2]:.2f}: the low band gains "\n'
            "    f\"{'most' if gains.argmax() == 0 else 'less than another band'}. The control model's margin is \"\n"
            '    f"{synthetic.medians[-1]:.2f} in the high band (the data put ±0.3 there) against "\n'
            '    f"{synthetic.medians[:-1].min():.1f}–{synthetic.medians[:-1].max():.1f} in the others."\n'
            ")"
        ),
        new_markdown_cell(
            "## The same plane, both models\n\n"
            "One plane through a test digit, along the standard model's DeepFool direction and a random one,\n"
            "drawn for each model: adversarial training pushed the boundary away along the direction the\n"
            "attack used."
        ),
        new_code_cell(
            "x = images[0]\n"
            'u = bw.directions.make("adversarial", clf, x)\n'
            'v = bw.directions.make("random", clf, x, seed=0)\n'
            "plane = bw.Plane.through(x, u, v)\n"
            "pair = {name: bw.compute_slice(model, plane, extent=3.0, resolution=128) for name, model in\n"
            '        (("standard", clf), ("adversarially trained", robust_clf))}\n'
            "fig, axes = plt.subplots(1, 2, figsize=(9, 4))\n"
            "for ax, (name, sl) in zip(axes, pair.items()):\n"
            "    bw.plot_slice(sl, ax=ax, title=name, legend=ax is axes[-1])\n"
            "fig.tight_layout()\n"
            "\n"
            "\n"
            "def first_change(sl):\n"
            '    """The smallest α > 0 on the row β = 0 where the label differs from the label at the centre (inf if none)."""\n'
            "    row = sl.labels[np.abs(sl.betas).argmin()]\n"
            "    changed = (sl.alphas > 0) & (row != row[np.abs(sl.alphas).argmin()])\n"
            '    return float(sl.alphas[changed].min()) if changed.any() else float("inf")\n'
            "\n"
            "\n"
            "Markdown(\n"
            "    f\"Along `u` the label first changes at α = {first_change(pair['standard']):.2f} for the standard model \"\n"
            "    f\"and at α = {first_change(pair['adversarially trained']):.2f} for the adversarially trained one.\"\n"
            ")"
        ),
        *exercise(
            1,
            "Along which band is the standard model's median margin smallest? Store the band's name (one of\n"
            "`digits.band_names`) in `closest_band`.",
            "closest_band = digits.band_names[int(np.argmin(digits.medians))]",
            ["closest_band"],
            "check_closest_band(closest_band, margins=digits)",
            [
                {"answer": 'closest_band = "high"', "hint": "*largest* median margin"},
                {"answer": "closest_band = int(np.argmin(digits.medians))", "hint": "not its index"},
                {"answer": 'closest_band = "lowest"', "hint": "pick one of"},
            ],
        ),
        *exercise(
            2,
            "By what factor does adversarial training raise the median margin in the **low** band? Store\n"
            "robust ÷ standard in `low_band_gain`.",
            "low_band_gain = robust.medians[0] / digits.medians[0]",
            ["low_band_gain"],
            "check_low_band_gain(low_band_gain, standard=digits, robust=robust)",
            [
                {"answer": "low_band_gain = digits.medians[0] / robust.medians[0]", "hint": "upside down"},
                {"answer": "low_band_gain = robust.medians[0] - digits.medians[0]", "hint": "a difference"},
                {"answer": "low_band_gain = 100 * robust.medians[0] / digits.medians[0]", "hint": "percentage"},
                {
                    "answer": "low_band_gain = robust.margins[:, 0].mean() / digits.margins[:, 0].mean()",
                    "hint": "the means",
                },
            ],
        ),
        new_markdown_cell("## Explore it\n\nClick a dot to see the slice through that image along its band."),
        new_code_cell("bw.MarginExplorer(clf, images[:40], bands=wide, result=digits)"),
        new_markdown_cell(
            "Both models on one plane, with the cells where they disagree: a click inspects the point in both.\n"
            "Try `dct` directions with each band."
        ),
        new_code_cell(
            'bw.CompareExplorer(clf, robust_clf, x, dataset=data, names=("standard", "adversarially trained"))'
        ),
        new_markdown_cell(
            "Next: `6_curvature.ipynb` measures how the boundary bends, and uses the bending to detect\n"
            "perturbed images."
        ),
    ],
    "6_curvature.ipynb": [
        new_markdown_cell(
            "# 6 · Curvature of the boundary (*Classification regions of deep neural networks*)\n\n"
            "Fawzi et al. (arXiv 1705.09552) find that at the boundary point nearest an image almost all\n"
            "principal curvatures are about zero (the boundary is flat along most directions) with a few\n"
            "strongly curved ones, and that the sign of the curvature along random directions differs\n"
            "between natural and adversarially perturbed images, which gives a detector; for a flagged image,\n"
            "the class whose boundary curves most recovers the original label.\n\n"
            "Curvature needs second derivatives. The ReLU models with max-pooling (`digits-cnn`,\n"
            "`digits-cnn-robust`, `digits-mlp`) are **piecewise linear**: their exact Hessian is zero almost\n"
            "everywhere, and curvature only shows up in finite differences that straddle kinks.\n"
            "`digits-smooth` (softplus, average pooling) is smooth, so exact and finite-difference curvatures agree."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            'clf, data = bw.zoo.load("digits-cnn", device="cpu")\n'
            'images, labels = data.split("test")\n'
            "spectrum = bw.analysis.curvature_spectrum(clf, images[0], k=5)\n"
            "print(spectrum)\n"
            "bw.plot_curvature_spectrum(spectrum);"
        ),
        new_code_cell(
            'smooth_clf, _ = bw.zoo.load("digits-smooth", device="cpu")\n'
            'exact = bw.principal_curvatures(smooth_clf, images[0], k=5, mode="exact")\n'
            'finite = bw.principal_curvatures(smooth_clf, images[0], k=5, mode="finite_difference")\n'
            'print("exact:            ", exact.values.round(4))\n'
            'print("finite difference:", finite.values.round(4))\n'
            "cosines = (exact.directions.flatten(1) * finite.directions.flatten(1)).sum(1).abs()\n"
            'print("|cos| between the directions:", cosines.numpy().round(3))'
        ),
        new_markdown_cell(
            "On the ReLU CNN, Lanczos on the finite-difference products is not on solid ground: the\n"
            "products are not linear in the direction (each probe may cross other kinks), so the answer\n"
            "depends on Lanczos' random start. `lanczos_runs=2` runs it from a second seed and reports in\n"
            "`spread` how far each value moved; `n_bases` averages the products over whole random bases of the\n"
            "tangent space into one linear operator, steadier across seeds at many more products."
        ),
        new_code_cell(
            "lanczos = bw.principal_curvatures(clf, images[0], k=5, lanczos_runs=2)\n"
            "averaged = bw.principal_curvatures(clf, images[0], k=5, lanczos_runs=2, n_bases=24)\n"
            'for name, result in (("Lanczos on the products", lanczos), ("averaged over 24 bases", averaged)):\n'
            '    print(f"{name:>24}: {result.values.round(3)}, spread across seeds {result.spread.round(3)}, "\n'
            '          f"{result.n_hvp} products")'
        ),
        new_code_cell(
            "def perturbed_set(model, n=100):\n"
            '    """The first n correctly classified test digits and their DeepFool perturbations that cross."""\n'
            "    correct = model.predict(images) == labels\n"
            "    clean, truth = images[correct][:n], labels[correct][:n]\n"
            "    attack = bw.deepfool(model, clean, clip=True)\n"
            "    crossed = attack.converged & (model.predict(clean + attack.perturbations) != truth)\n"
            "    return clean[crossed], (clean + attack.perturbations)[crossed], truth[crossed]\n"
            "\n"
            "\n"
            "reports = {}\n"
            'for name in ("digits-cnn", "digits-cnn-robust", "digits-smooth"):\n'
            '    model, _ = bw.zoo.load(name, device="cpu")\n'
            "    clean, perturbed, truth = perturbed_set(model)\n"
            "    reports[name] = bw.analysis.evaluate_detector(model, clean, perturbed, truth, false_positive_rate=0.05, n_directions=20)\n"
            '    print(f"{name:>18}: {reports[name]}")\n'
            'scores_clean = reports["digits-cnn"].clean.scores\n'
            'scores_perturbed = reports["digits-cnn"].perturbed.scores'
        ),
        new_code_cell(
            'standard, smooth = reports["digits-cnn"], reports["digits-smooth"]\n'
            "relative = np.abs(finite.values - exact.values) / np.abs(exact.values)\n"
            "Markdown(\n"
            '    f"**Measured here**: on the ReLU CNN, {spectrum.flat_share:.0%} of the {spectrum.values.size} tangent "\n'
            '    f"directions lie within 1% of the largest |curvature|; its ends are {spectrum.smallest[0]:.2f} and "\n'
            '    f"{spectrum.largest[0]:.2f}. Between two Lanczos seeds its top five move by up to "\n'
            '    f"{lanczos.spread.max():.0%}; averaged over 24 tangent bases, by up to {averaged.spread.max():.0%}. On the smooth model the finite-difference curvatures differ from the exact "\n'
            '    f"ones by at most {relative.max():.1%}, directions |cos| ≥ {float(cosines.min()):.3f}. The detector "\n'
            '    f"separates clean from DeepFool digits with ROC AUC {standard.auc:.2f} on the ReLU CNN, "\n'
            "    f\"{reports['digits-cnn-robust'].auc:.2f} on the robust one and {smooth.auc:.2f} on the smooth one; \"\n"
            '    f"of the flagged perturbed digits, curvature recovers the true label for {standard.recovery_accuracy:.0%} "\n'
            '    f"(ReLU CNN) and {smooth.recovery_accuracy:.0%} (smooth), where simply taking the runner-up class "\n'
            '    f"recovers {standard.runner_up_accuracy:.0%} and {smooth.runner_up_accuracy:.0%}: DeepFool stops just "\n'
            '    "across the boundary, so the runner-up is a strong baseline on these small models."\n'
            ")"
        ),
        *exercise(
            1,
            "How far apart are the smooth model's finite-difference and exact curvatures? Store the largest\n"
            "relative difference over the five values (|finite − exact| ÷ |exact|) in `largest_gap`.",
            "largest_gap = float(np.max(np.abs(finite.values - exact.values) / np.abs(exact.values)))",
            ["largest_gap"],
            "check_largest_gap(largest_gap, exact=exact, finite=finite)",
            [
                {"answer": "largest_gap = 0.0", "hint": "relative to `exact.values`"},
                {"answer": "largest_gap = float(np.max(np.abs(finite.values - exact.values)))", "hint": "absolute"},
                {
                    "answer": "largest_gap = float(np.mean(np.abs(finite.values - exact.values) / np.abs(exact.values)))",
                    "hint": "the mean",
                },
                {
                    "answer": "largest_gap = 100 * float(np.max(np.abs(finite.values - exact.values) / np.abs(exact.values)))",
                    "hint": "percentage",
                },
            ],
        ),
        *exercise(
            2,
            "Compute the detector's ROC AUC on the ReLU CNN yourself: the share of (clean, perturbed) pairs in\n"
            "which the perturbed image scores higher (ties count half). Use `scores_clean` and\n"
            "`scores_perturbed`; store it in `auc`.",
            "auc = float(np.mean(scores_perturbed[:, None] > scores_clean[None, :])\n"
            "            + 0.5 * np.mean(scores_perturbed[:, None] == scores_clean[None, :]))",
            ["auc"],
            "check_auc(auc, scores_clean=scores_clean, scores_perturbed=scores_perturbed)",
            [
                {
                    "answer": "auc = float(np.mean(scores_perturbed > np.median(scores_clean)))",
                    "hint": "every perturbed score with every clean score",
                },
                {
                    "answer": "auc = float(np.mean(scores_clean[:, None] > scores_perturbed[None, :])\n"
                    "            + 0.5 * np.mean(scores_clean[:, None] == scores_perturbed[None, :]))",
                    "hint": "the *clean* image scores higher",
                },
                {
                    "answer": "auc = 100 * float(np.mean(scores_perturbed[:, None] > scores_clean[None, :])\n"
                    "            + 0.5 * np.mean(scores_perturbed[:, None] == scores_clean[None, :]))",
                    "hint": "percentage",
                },
            ],
        ),
        new_markdown_cell(
            "Next: `7_borderline.ipynb` looks at points that sit exactly on the boundary between two classes."
        ),
    ],
    "7_borderline.ipynb": [
        new_markdown_cell(
            "# 7 · Borderline samples (DeepDIG)\n\n"
            "Karimi et al. (arXiv 1912.11460) bisect pairs of images across the boundary of two classes\n"
            "until both classes are equally likely, then look at those borderline samples: in input space\n"
            "straight lines from them to random images change label often (a complex boundary); in the\n"
            "penultimate layer a linear SVM separates the two classes (a near-linear boundary).\n\n"
            "Here: `bw.analysis.borderline_samples` for 3 → 8 on the digits CNN (each pair's ends lie just\n"
            'either side of the 3/8 boundary, where no third class wins; `pairs="image-adversarial"` bisects\n'
            "between the image and its targeted DeepFool adversarial instead, a long segment that often\n"
            "crosses a third class), `trajectory_label_changes` in input and feature space, `embedding_linearity`."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            'clf, data = bw.zoo.load("digits-cnn", device="cpu")\n'
            'images, labels = data.split("test")\n'
            'train, train_labels = data.split("train")\n'
            "border = bw.analysis.borderline_samples(clf, images[labels == 3][:20], 3, 8, threshold=1e-3)\n"
            "print(border)\n"
            "ok = border.success\n"
            "failures = {f: border.failure.count(f) for f in set(border.failure) if f}\n"
            'print("failures:", failures)\n'
            'long_pairs = bw.analysis.borderline_samples(clf, images[labels == 3][:20], 3, 8, threshold=1e-3, pairs="image-adversarial")\n'
            "print(long_pairs)\n"
            "bw.plotting.plot_borderline_summary(border);"
        ),
        new_code_cell(
            "space = bw.FeatureSpace(clf, images=train)\n"
            "pixels = bw.analysis.trajectory_label_changes(clf, border.samples[ok], images, n_partners=20)\n"
            "features = bw.analysis.trajectory_label_changes(\n"
            "    space.head, space.features(border.samples[ok]), space.features(images), n_partners=20\n"
            ")\n"
            "svm = bw.analysis.embedding_linearity(space, train[train_labels == 3], train[train_labels == 8], border.samples[ok])\n"
            "print(svm)"
        ),
        new_code_cell(
            'failure_text = ", ".join(f"{count} × {reason}" for reason, count in failures.items()) or "none"\n'
            "Markdown(\n"
            '    f"**Measured here**: {int(ok.sum())} of {ok.size} pairs reach |p₃ − p₈| < 10⁻³ (failures: {failure_text}; "\n'
            '    f"{int(long_pairs.success.sum())} with pairs of the image and its adversarial), at median distance "\n'
            '    f"{np.median(border.distances[ok]):.2f} from their image, where p₃ + p₈ is "\n'
            '    f"{np.median(border.p_source[ok] + border.p_target[ok]):.3f} (median). "\n'
            '    f"Lines from borderline samples to random test digits change label {pixels.mean_changes:.2f} times on average "\n'
            '    f"in input space and {features.mean_changes:.2f} times in feature space; a LinearSVC separates the penultimate "\n'
            '    f"features of 3s and 8s with accuracy {svm.accuracy:.3f}, and borderline samples lie at median distance "\n'
            '    f"{np.median(svm.borderline_distance):.2f} from its plane against {svm.class_distance_median:.2f} for the "\n'
            '    "class features."\n'
            ")"
        ),
        *exercise(
            1,
            "What share of the 20 pairs reached the boundary between 3 and 8 (`border.success`)? Store it in\n"
            "`success_share`.",
            "success_share = float(border.success.mean())",
            ["success_share"],
            "check_success_share(success_share, border=border)",
            [
                {"answer": "success_share = 100 * float(border.success.mean())", "hint": "percentage"},
                {"answer": "success_share = int(border.success.sum())", "hint": "not a count"},
                {"answer": "success_share = float((~border.success).mean())", "hint": "pairs that failed"},
                {"answer": "success_share = 0.5", "hint": "one bool per pair"},
            ],
        ),
        *exercise(
            2,
            "How many times more label changes does a line meet in input space than in feature space? Store\n"
            "the ratio of the mean changes (input ÷ feature) in `change_ratio`.",
            "change_ratio = pixels.mean_changes / features.mean_changes",
            ["change_ratio"],
            "check_change_ratio(change_ratio, pixels=pixels, features=features)",
            [
                {"answer": "change_ratio = features.mean_changes / pixels.mean_changes", "hint": "upside down"},
                {"answer": "change_ratio = pixels.mean_changes - features.mean_changes", "hint": "a difference"},
            ],
        ),
        new_markdown_cell(
            "Next: `8_feature_space.ipynb` looks at the feature space itself, where class regions are convex."
        ),
    ],
    "8_feature_space.ipynb": [
        new_markdown_cell(
            "# 8 · Feature space and convex hulls (Yousefzadeh)\n\n"
            "Yousefzadeh (arXiv 2202.04052): with a linear head, every class region in the feature space of\n"
            "the last hidden layer is convex, so the convex hull of a class's (correctly classified)\n"
            "training features is classified as that class everywhere; and test features often lie outside\n"
            "those hulls: the model extrapolates.\n\n"
            "Here: `bw.FeatureSpace` splits the digits CNN at its last hidden layer; its `head` is a\n"
            "`bw.Classifier` over features, so slices work there with the same API;\n"
            "`bw.analysis.class_hulls` checks both claims with `hull_membership` (a linear program)."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            'clf, data = bw.zoo.load("digits-cnn", device="cpu")\n'
            'train, train_labels = data.split("train")\n'
            'test, test_labels = data.split("test")\n'
            "space = bw.FeatureSpace(clf, images=train)\n"
            "print(space)\n"
            "# The first 150 test digits: 9 to 20 of each class.\n"
            "hulls = bw.analysis.class_hulls(space, train, train_labels, test[:150], test_labels[:150], samples_per_class=200, max_test_per_class=20)\n"
            "print(hulls)\n"
            "assert (hulls.hull_accuracy == 1).all()\n"
            "bw.plotting.plot_class_hulls(hulls);"
        ),
        new_code_cell(
            "features = space.features(test[:3])\n"
            "plane = bw.Plane.through(features[0], features[1] - features[0], features[2] - features[0])\n"
            "extent = 1.5 * float((features[1:] - features[0]).norm(dim=1).max())\n"
            "feature_slice = bw.compute_slice(space.head, plane, extent=extent, resolution=128)\n"
            "pixels = test[:3]\n"
            "pixel_plane = bw.Plane.through(pixels[0], pixels[1] - pixels[0], pixels[2] - pixels[0])\n"
            "pixel_extent = 1.5 * float((pixels[1:] - pixels[0]).flatten(1).norm(dim=1).max())\n"
            "pixel_slice = bw.compute_slice(clf, pixel_plane, extent=pixel_extent, resolution=128)\n"
            "fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))\n"
            'bw.plot_slice(pixel_slice, ax=axes[0], legend=False, title="pixel space: 3 test digits")\n'
            'bw.plot_slice(feature_slice, ax=axes[1], title="feature space: the same 3 digits")\n'
            "fig.tight_layout()"
        ),
        new_code_cell(
            "Markdown(\n"
            '    f"**Measured here**: at least {hulls.hull_accuracy.min():.0%} of the sampled convex combinations of each "\n'
            '    f"class\'s training features are labelled as the class (the head is linear), and "\n'
            '    f"{np.average(hulls.test_outside, weights=hulls.n_test):.0%} of the {int(hulls.n_test.sum())} test "\n'
            '    f"features checked lie outside their class\'s training hull, at median distances "\n'
            '    f"{hulls.test_distance_median.min():.1f}–{hulls.test_distance_median.max():.1f}: with about "\n'
            '    f"{int(np.median(hulls.n_train))} training points per class in {int(np.prod(space.feature_shape))} dimensions the hulls "\n'
            '    f"are thin and the model extrapolates. The plane through three test digits crosses "\n'
            '    f"{len(pixel_slice.classes_present)} classes in pixel space and {len(feature_slice.classes_present)} "\n'
            '    "in feature space, where its boundaries are straight."\n'
            ")"
        ),
        *exercise(
            1,
            "How many test features were checked in all, and how many of them lie outside their class's\n"
            "training hull? Store `n_checked` and `n_outside` (`hulls.test_outside` is a share per class;\n"
            "`hulls.n_test` counts the test features checked per class).",
            "n_checked = int(hulls.n_test.sum())\nn_outside = int(round(float((hulls.test_outside * hulls.n_test).sum())))",
            ["n_checked", "n_outside"],
            "check_outside_counts(n_checked, n_outside, hulls=hulls)",
            [
                {
                    "answer": "n_checked = len(hulls.n_test)\nn_outside = int(hulls.test_outside.sum())",
                    "hint": "counts the classes",
                },
                {
                    "answer": "n_checked = int(hulls.n_test.sum())\nn_outside = float(hulls.test_outside.sum())",
                    "hint": "adds up the classes' *shares*",
                },
                {
                    "answer": "n_checked = int(hulls.n_test.sum())\n"
                    "n_outside = float(np.average(hulls.test_outside, weights=hulls.n_test))",
                    "hint": "that is a share",
                },
            ],
        ),
        *exercise(
            2,
            "How many classes does each plane through the three test digits cross? Store the counts in\n"
            "`pixel_classes` and `feature_classes` (ints).",
            "pixel_classes = len(pixel_slice.classes_present)\nfeature_classes = len(feature_slice.classes_present)",
            ["pixel_classes", "feature_classes"],
            "check_class_counts(pixel_classes, feature_classes, pixel_slice=pixel_slice, feature_slice=feature_slice)",
            [
                {"answer": "pixel_classes = 10\nfeature_classes = 10", "hint": "classes_present` lists them"},
                {
                    "answer": "pixel_classes = pixel_slice.classes_present\nfeature_classes = feature_slice.classes_present",
                    "hint": "(`len`)",
                },
            ],
        ),
    ],
}


def next_lesson(folder: Path) -> list:
    """Notebook 8's "Next": the scale-out lesson where it exists, else back to the README's lesson path."""
    if (folder / "9_scale_out.ipynb").exists():
        return [new_markdown_cell("Next: `9_scale_out.ipynb` runs the same analyses on a cluster, at scale.")]
    return [new_markdown_cell("That was the last lesson; the README's lesson path lists them all.")]


def build(name: str, folder: Path) -> nbformat.NotebookNode:
    """Notebook ``name`` as this script writes it (stable cell ids: regenerating changes nothing)."""
    cells = NOTEBOOKS[name] + next_lesson(folder) if name.startswith("8_") else NOTEBOOKS[name]
    notebook = new_notebook(cells=[nbformat.from_dict(cell) for cell in cells])
    notebook.cells[0].source += SHUT_DOWN_KERNELS
    for index, cell in enumerate(notebook.cells):
        cell.id = f"{Path(name).stem.split('_', 1)[1]}-{index}"
    notebook.metadata["kernelspec"] = KERNELSPEC
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def main() -> None:
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    for name in NOTEBOOKS:
        nbformat.write(build(name, folder), folder / name)
        print("wrote", folder / name)


if __name__ == "__main__":
    main()
