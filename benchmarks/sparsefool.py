"""SparseFool's boundary normal: DeepFool's last step (before) against the logit-difference gradient at
the boundary point (after, as LTS4/SparseFool does), on the first 100 digits test images.

Run: ``python benchmarks/sparsefool.py``. Both use the same (vectorised) linear solver; "before"
swaps the normal back to the direction of DeepFool's last step. Prints the changed-pixel counts.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

import torch

import boundary_widgets as bw

module = importlib.import_module("boundary_widgets.core.sparsefool")

N_IMAGES = 100


@contextlib.contextmanager
def last_step_normals() -> Iterator[None]:
    """Within the block, each round's normal is DeepFool's last step (the kit before this change)."""
    original_deepfool, original_normals = module.deepfool, module.boundary_normals
    last = {}

    def recording_deepfool(*args, **kwargs):
        last["found"] = original_deepfool(*args, **kwargs)
        return last["found"]

    def step_normals(clf, points, original, reached):
        return last["found"].normals.reshape(points.shape[0], -1).to(points.device)

    module.deepfool, module.boundary_normals = recording_deepfool, step_normals
    try:
        yield
    finally:
        module.deepfool, module.boundary_normals = original_deepfool, original_normals


def main() -> None:
    for name in ("digits-cnn", "digits-mlp"):
        clf, data = bw.zoo.load(name, device="cpu")
        images = data.split("test")[0][:N_IMAGES]
        rows = {}
        with last_step_normals():
            rows["before (last DeepFool step)"] = module.sparsefool(clf, images)
        rows["after (gradient at boundary point)"] = module.sparsefool(clf, images)
        print(f"SparseFool on {N_IMAGES} {name} test images (lam=3, torch {torch.__version__})")
        print(f"{'normal':36}{'mean px':>9}{'median px':>11}{'fooled':>8}{'median L2':>11}")
        for label, found in rows.items():
            counts = found.nonzero.float()
            print(
                f"{label:36}{counts.mean().item():>9.2f}{counts.median().item():>11.0f}"
                f"{int(found.converged.sum()):>5}/{N_IMAGES}{found.distances.median().item():>11.3f}"
            )
        before, after = rows.values()
        change = 100 * (after.nonzero.float().mean() / before.nonzero.float().mean() - 1)
        print(f"changed pixels, after vs before: {change.item():+.1f} % (mean)\n")


if __name__ == "__main__":
    main()
