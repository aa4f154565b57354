"""DCT-band, principal-curvature, toward-an-image and sparse (SparseFool) directions."""

from __future__ import annotations

from typing import Any

import torch

from ..classifier import Classifier
from ..curvature import CURVATURE_MODES, CURVATURE_WHICH, principal_curvatures
from ..dct import Band, band
from ..deepfool import deepfool
from ..progress import CancelEvent, Progress, check_protocol, track
from ..sparsefool import sparsefool
from ..validation import check_choice, check_positive_int
from .basic import MAX_CANDIDATES, MAX_SEED, MAX_STEPS
from .params import BandSpec, Choice, Float, Image, Int
from .registry import DirectionKind, register

DCT_METHODS = ("deepfool", "random")
# Caps of the parameters (a share string or a command line can ask for no more): each bounds the work.
MAX_BLOCK = 1024  # DCT band size / stride, in coefficients
MAX_CURVATURES = 100  # Lanczos principal directions
MAX_RUNS = 8  # Lanczos runs from other seeds (each as many products again)
MAX_BASES = 64  # tangent bases averaged (d − 1 finite-difference products each)
MAX_ROUNDS = 200  # SparseFool rounds
MAX_LAM = 100.0
# Images per band-constrained DeepFool call (as in analysis.band_margins): bounded memory, `cancel` checked between.
_CHUNK_ELEMENTS = 2**22


def _band_info(selected: Band) -> dict[str, Any]:
    return {"band": selected.name, "rows": selected.rows, "cols": selected.cols, "band_dim": selected.dim}


def _dct_batch(
    clf: Classifier,
    images: torch.Tensor,
    *,
    band: object,
    method: str,
    block: int | None,
    stride: int | None,
    seed: int,
    max_iter: int,
    candidates: int,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> list[tuple[torch.Tensor, dict[str, Any]]]:
    check_choice(method, "method", DCT_METHODS)
    selected = _select_band(clf, band, block=block, stride=stride)
    if method == "random":
        check_protocol(progress, cancel)
        vector = selected.random(seed=seed)
        return [(vector, _band_info(selected))] * images.shape[0]
    per_chunk = max(1, _CHUNK_ELEMENTS // clf.input_dim)
    results = []
    with track(progress, cancel, total=images.shape[0], desc="DCT-band DeepFool") as tracker:
        for chunk in images.split(per_chunk):
            found = deepfool(
                clf, chunk, subspace=selected, max_iter=max_iter, candidates=candidates, cancel=tracker.cancel
            )
            results += [
                (
                    found.perturbations[i],
                    {
                        **_band_info(selected),
                        "original": int(found.original[i]),
                        "reached_class": int(found.reached[i]),
                        "distance": float(found.distances[i]),
                        "converged": bool(found.converged[i]),
                        "iterations": int(found.iterations[i]),
                    },
                )
                for i in range(chunk.shape[0])
            ]
            tracker.advance(chunk.shape[0])
    return results


def _select_band(clf: Classifier, which: object, *, block: int | None, stride: int | None) -> Band:
    if len(clf.input_shape) not in (2, 3):
        raise ValueError(f"the 'dct' direction needs image inputs (H, W) or (C, H, W); got {clf.input_shape}.")
    return band(clf.input_shape, which, block=block, stride=stride)


def dct_direction(clf: Classifier, x: torch.Tensor, **params: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """Within one DCT band (Hold me tight): DeepFool constrained to the band, or seeded noise in it.

    The band's fast transform projects each DeepFool step on the classifier's device; no dense basis is built.
    """
    return _dct_batch(clf, x[None], **params)[0]


def curvature_direction(
    clf: Classifier,
    x: torch.Tensor,
    *,
    index: int = 0,
    which: str = "magnitude",
    k: int = 5,
    mode: str = "finite_difference",
    seed: int = 0,
    lanczos_runs: int = 2,
    n_bases: int | None = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """A principal curvature direction of the boundary nearest ``x`` (Fawzi et al.), most curved first.

    ``lanczos_runs`` and ``n_bases`` are :func:`~boundary_widgets.core.curvature.principal_curvatures`'
    (two runs by default, so ``info["spread"]`` says how far the values move with the seed; the
    directions are the first run's). ``progress``: Hessian-vector products done / expected;
    ``cancel`` is honoured between them.
    """
    check_positive_int(index, "index", minimum=0)
    if index >= check_positive_int(k, "k"):
        raise ValueError(f"`index` must be < `k` ({k}); got {index}.")
    result = principal_curvatures(
        clf,
        x,
        k=k,
        which=which,
        mode=mode,
        seed=seed,
        lanczos_runs=lanczos_runs,
        n_bases=n_bases,
        progress=progress,
        cancel=cancel,
    )
    if index >= result.values.size:
        raise ValueError(
            f"Lanczos resolved only {result.values.size} of the k={k} directions here; `index` must be below that."
        )
    info = {
        "curvature": float(result.values[index]),
        "curvatures": result.values.tolist(),
        "normal": result.normal,
        "boundary_point": result.boundary_point,
        "original": result.original,
        "reached_class": result.reached,
        "distance": result.distance,
        "converged": result.converged,
        "n_hvp": result.n_hvp,
        "residual": float(result.residuals[index]),
        "lanczos_converged": result.lanczos_converged,
        "spread": result.spread.tolist(),  # per value, relative, across seeds (NaN: one run)
    }
    return result.directions[index], info


def _check_other(clf: Classifier, other: object) -> torch.Tensor:
    if other is None:
        raise ValueError("`other` is required: the image to move toward, of the classifier's input shape.")
    return clf.check_inputs(getattr(other, "vector", other), "other", batched=False, in_bounds=True)[0]


def _image_batch(clf: Classifier, images: torch.Tensor, *, other: object) -> list[tuple[torch.Tensor, dict]]:
    target = _check_other(clf, other)
    label = int(clf.predict(target))
    differences = target[None] - images
    distances = differences.flatten(1).norm(dim=1)
    return [(differences[i], {"distance": float(distances[i]), "other_class": label}) for i in range(len(images))]


def image_direction(clf: Classifier, x: torch.Tensor, *, other: object = None) -> tuple[torch.Tensor, dict]:
    """Toward another image ``other``; two of them give the plane through three images."""
    return _image_batch(clf, x[None], other=other)[0]


def _sparse_batch(
    clf: Classifier,
    images: torch.Tensor,
    *,
    lam: float,
    max_rounds: int,
    candidates: int,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> list[tuple[torch.Tensor, dict[str, Any]]]:
    found = sparsefool(
        clf, images, lam=lam, max_rounds=max_rounds, candidates=candidates, progress=progress, cancel=cancel
    )
    return [
        (
            found.perturbations[i],
            {
                "original": int(found.original[i]),
                "reached_class": int(found.reached[i]),
                "distance": float(found.distances[i]),
                "nonzero": int(found.nonzero[i]),
                "converged": bool(found.converged[i]),
                "iterations": int(found.iterations[i]),
            },
        )
        for i in range(images.shape[0])
    ]


def sparse_direction(clf: Classifier, x: torch.Tensor, **params: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """The direction of a SparseFool perturbation (Modas et al.): few pixels, within the bounds."""
    return _sparse_batch(clf, x[None], **params)[0]


register(
    DirectionKind(
        name="dct",
        takes_protocol=True,
        factory=dct_direction,
        batch_factory=_dct_batch,
        description="Within one DCT frequency band (Hold me tight): band-constrained DeepFool, or noise in the band.",
        parameters=(
            BandSpec("band", "low", "frequency band: low/mid/high, an index along the diagonal, a range or a dct.Band"),
            Choice("method", "deepfool", "DeepFool inside the band, or seeded noise", choices=DCT_METHODS),
            Int("block", None, "band size K (None: from the image size)", minimum=1, maximum=MAX_BLOCK),
            Int("stride", None, "offset between bands (None: K, disjoint bands)", minimum=1, maximum=MAX_BLOCK),
            Int("seed", 0, "random seed (method 'random')", maximum=MAX_SEED),
            Int("max_iter", 100, "DeepFool step limit", minimum=1, maximum=MAX_STEPS),
            Int("candidates", 10, "classes DeepFool considers", minimum=2, maximum=MAX_CANDIDATES),
        ),
    )
)
register(
    DirectionKind(
        name="curvature",
        takes_protocol=True,
        factory=curvature_direction,
        description="A principal curvature direction of the nearest boundary (pair it with 'adversarial').",
        parameters=(
            Int("index", 0, "which principal direction, most curved first", maximum=MAX_CURVATURES - 1),
            Choice("which", "magnitude", "end of the spectrum", choices=tuple(CURVATURE_WHICH)),
            Int("k", 5, "principal directions computed (Lanczos)", minimum=1, maximum=MAX_CURVATURES),
            Choice("mode", "finite_difference", "Hessian-vector products", choices=tuple(CURVATURE_MODES)),
            Int("seed", 0, "Lanczos start vector (and the averaged bases)", maximum=MAX_SEED),
            Int(
                "lanczos_runs",
                2,
                "runs from seeds seed, seed + 1, …: their spread is shown",
                minimum=1,
                maximum=MAX_RUNS,
            ),
            Int(
                "n_bases",
                None,
                "random tangent bases averaged into a linear operator, d − 1 products each (None: Lanczos on the products)",
                minimum=1,
                maximum=MAX_BASES,
            ),
        ),
    )
)
register(
    DirectionKind(
        name="image",
        factory=image_direction,
        batch_factory=_image_batch,
        description="Toward another image; two give the plane through three images.",
        parameters=(Image("other", None, "the image to move toward"),),
    )
)
register(
    DirectionKind(
        name="sparse",
        takes_protocol=True,
        factory=sparse_direction,
        batch_factory=_sparse_batch,
        description="A SparseFool perturbation (Modas et al.): few pixels changed, within the bounds.",
        parameters=(
            Float("lam", 3.0, "λ: how far past the DeepFool boundary point to aim", minimum=1.0, maximum=MAX_LAM),
            Int("max_rounds", 20, "SparseFool rounds", minimum=1, maximum=MAX_ROUNDS),
            Int("candidates", 10, "classes DeepFool considers", minimum=2, maximum=MAX_CANDIDATES),
        ),
    )
)


__all__ = [
    "DCT_METHODS",
    "MAX_BASES",
    "MAX_BLOCK",
    "MAX_CURVATURES",
    "MAX_LAM",
    "MAX_ROUNDS",
    "MAX_RUNS",
    "curvature_direction",
    "dct_direction",
    "image_direction",
    "sparse_direction",
]
