"""Random and adversarial directions."""

from __future__ import annotations

from typing import Any

import torch

from ..classifier import Classifier
from ..dct import Band, Projector, as_projector, check_basis
from ..deepfool import deepfool
from ..progress import CancelEvent, Progress, raise_if_cancelled, track
from .params import Basis, Bool, Choice, ClassIndex, Int
from .registry import DirectionKind, register

# The caps of the parameters (a share string or a command line can ask for no more): each bounds the work.
MAX_SEED = 2**31 - 1
MAX_CANDIDATES = 1000  # classes DeepFool compares per step (one gradient each)
MAX_STEPS = 1000  # DeepFool iterations


def random_direction(
    clf: Classifier, x: torch.Tensor, *, seed: int = 0, subspace: object = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Gaussian noise, normalised; inside `subspace` (a dct.Band, any dct.Projector, or a (d, m) orthonormal basis) when given."""
    generator = torch.Generator().manual_seed(int(seed))
    if subspace is None:
        return torch.randn(clf.input_shape, generator=generator), {}
    if isinstance(subspace, Projector):  # no dense basis: a band draws its coefficients, others project noise
        projector = as_projector(subspace, clf.input_shape)
        if isinstance(projector, Band):
            return projector.random(seed=seed).reshape(clf.input_shape), {"subspace_dim": projector.dim}
        return projector.project(torch.randn(clf.input_shape, generator=generator)), {"subspace_dim": projector.dim}
    basis = check_basis(subspace, clf.input_dim)
    coefficients = torch.randn(basis.shape[1], generator=generator)
    return basis @ coefficients, {"subspace_dim": basis.shape[1]}


def adversarial_direction(
    clf: Classifier,
    x: torch.Tensor,
    *,
    method: str = "deepfool",
    target: int | None = None,
    candidates: int = 10,
    max_iter: int = 50,
    clip: bool = False,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Toward the nearest decision boundary: DeepFool, or the gradient of top-1 minus runner-up logit.

    ``info["reached_class"]`` is the class across the boundary (reached by DeepFool; the class of the
    linearised boundary for the gradient), ``info["original"]`` the class of ``x``.
    """
    if method == "deepfool":
        return _deepfool_directions(
            clf,
            x[None],
            target=target,
            candidates=candidates,
            max_iter=max_iter,
            clip=clip,
            progress=progress,
            cancel=cancel,
        )[0]
    if method == "gradient":
        raise_if_cancelled(cancel)
        with clf.evaluating(), torch.enable_grad():
            point = x[None].detach().requires_grad_(True)
            logits = clf.forward(point)[0]
            ranked = logits.argsort(descending=True)
            original = int(ranked[0])
            other = int(ranked[1]) if target is None else int(target)
            if other == original:
                raise ValueError(f"`target` must differ from the predicted class {original}; got {target}.")
            gap = logits[original] - logits[other]
            (grad,) = torch.autograd.grad(gap, point)
        # Decreasing the gap moves toward the boundary with `other`; first-order distance gap/|grad|.
        grad_norm = grad.norm().item()
        info = {
            "original": original,
            "reached_class": other,
            "distance": gap.item() / grad_norm if grad_norm > 0 else float("inf"),
        }
        return -grad[0], info
    raise ValueError(f"`method` must be one of ['deepfool', 'gradient']; got {method!r}.")


def _deepfool_directions(
    clf: Classifier,
    images: torch.Tensor,
    *,
    target: int | None,
    candidates: int,
    max_iter: int,
    clip: bool,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> list[tuple[torch.Tensor, dict[str, Any]]]:
    result = deepfool(
        clf,
        images,
        candidates=candidates,
        max_iter=max_iter,
        target=target,
        clip=clip,
        progress=progress,
        cancel=cancel,
    )
    return [
        (
            result.perturbations[i],
            {
                "original": int(result.original[i]),
                "reached_class": int(result.reached[i]),
                "distance": float(result.distances[i]),
                "converged": bool(result.converged[i]),
                "clipped": bool(result.clipped[i]),
                "iterations": int(result.iterations[i]),
            },
        )
        for i in range(images.shape[0])
    ]


def _adversarial_batch(
    clf: Classifier,
    images: torch.Tensor,
    *,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
    **params: Any,
) -> list[tuple[torch.Tensor, dict]]:
    if params.pop("method") == "deepfool":
        return _deepfool_directions(clf, images, **params, progress=progress, cancel=cancel)
    results = []
    with track(progress, cancel, total=images.shape[0], desc="gradient directions") as tracker:
        for x in images:
            results.append(adversarial_direction(clf, x, method="gradient", **params))
            tracker.advance()
    return results


register(
    DirectionKind(
        name="random",
        factory=random_direction,
        description="Gaussian noise, normalised (a typical direction: boundaries look flat and far).",
        parameters=(
            Int("seed", 0, "random seed", maximum=MAX_SEED),
            Basis("subspace", None, "restrict to a dct.Band or a (d, m) orthonormal basis"),
        ),
    )
)
register(
    DirectionKind(
        name="adversarial",
        takes_protocol=True,
        factory=adversarial_direction,
        batch_factory=_adversarial_batch,
        description="Toward the nearest decision boundary (DeepFool or the logit-gap gradient).",
        parameters=(
            Choice("method", "deepfool", "how the boundary is found", choices=("deepfool", "gradient")),
            ClassIndex("target", None, "class to cross into (None: the nearest)"),
            Int("candidates", 10, "classes DeepFool considers", minimum=2, maximum=MAX_CANDIDATES),
            Int("max_iter", 50, "DeepFool step limit", minimum=1, maximum=MAX_STEPS),
            Bool("clip", False, "keep DeepFool iterates within the input bounds"),
        ),
    )
)


__all__ = [
    "MAX_CANDIDATES",
    "MAX_SEED",
    "MAX_STEPS",
    "adversarial_direction",
    "random_direction",
]
