"""Margins along DCT bands (Ortiz-Jimenez et al., *Hold me tight!*): subspace-constrained DeepFool per band."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..classifier import Classifier
from ..dct import Band, as_projector
from ..dct import bands as dct_bands
from ..deepfool import LINEARISE, Linearise, deepfool
from ..distributed import PER_IMAGE, Executor, shardable
from ..progress import CancelEvent, Progress, check_protocol, track
from ..validation import check_bool, check_choice, check_number, check_positive_int


@dataclass(frozen=True, eq=False)
class BandMargins:
    """The margin of each image along each band: the L2 norm of the band-constrained DeepFool perturbation."""

    margins: np.ndarray = field(metadata=PER_IMAGE)  # (N, B) float64, L2 input units (not converged: last norm)
    converged: np.ndarray = field(metadata=PER_IMAGE)  # (N, B) bool, DeepFool inside the band changed the label
    band_names: tuple[str, ...]  # (B,)
    band_dims: np.ndarray  # (B,) int64, dimension of each band's subspace
    labels: np.ndarray = field(metadata=PER_IMAGE)  # (N,) int64, predicted class of each image
    bands: tuple[Band, ...]  # (B,) the subspaces' descriptions (coefficient ranges, no basis), for slices along them
    linearise: str  # where DeepFool linearised: "overshot" (the kit's) or "iterate" (LTS4/hold-me-tight's)

    @property
    def medians(self) -> np.ndarray:
        """(B,) median margin per band; an image whose DeepFool did not converge counts as +inf (no boundary found)."""
        return np.median(np.where(self.converged, self.margins, np.inf), axis=0)

    @property
    def reference_medians(self) -> np.ndarray:
        """(B,) median margin per band as LTS4/hold-me-tight count it: a non-converged image counts with the
        norm of its last perturbation (a lower bound on its margin), so these are <= :attr:`medians`."""
        return np.median(self.margins, axis=0)

    @property
    def converged_share(self) -> np.ndarray:
        """(B,) share of images whose band-constrained DeepFool changed the label."""
        return self.converged.mean(axis=0)

    def __repr__(self) -> str:
        medians = ", ".join(f"{name}={m:.3g}" for name, m in zip(self.band_names, self.medians, strict=True))
        return f"BandMargins(images={self.margins.shape[0]}, medians: {medians})"


# Images per DeepFool call: about 2**22 input elements, so that its d-sized buffers (iterates, gradients of
# the candidate classes, their projections) stay well under 1 GB at 3×224×224; progress is reported per chunk.
_CHUNK_ELEMENTS = 2**22


def _band_margins_arguments(
    clf: Classifier,
    images: object,
    *,
    bands: Sequence[Band] | None,
    max_iter: int,
    overshoot: float,
    candidates: int,
    clip: bool,
    linearise: str,
) -> tuple[torch.Tensor, tuple[Band, ...]]:
    """:func:`band_margins`' arguments checked (before any work): the batch and the bands."""
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    batch = clf.check_inputs(images, "images", batched=True, in_bounds=True)
    if batch.shape[0] == 0:
        raise ValueError("`images` must hold at least one image; got an empty batch.")
    check_positive_int(max_iter, "max_iter")
    check_number(overshoot, "overshoot", minimum=0)
    check_positive_int(candidates, "candidates", minimum=2)
    check_bool(clip, "clip")
    check_choice(linearise, "linearise", LINEARISE)
    chosen = tuple(dct_bands(clf.input_shape) if bands is None else bands)
    if not chosen or not all(isinstance(band, Band) for band in chosen):
        raise TypeError(
            "`bands` must be a non-empty sequence of dct.Band objects (see boundary_widgets.core.dct.bands)."
        )
    for band in chosen:
        try:
            as_projector(band, clf.input_shape)
        except ValueError as error:
            raise ValueError(
                f"`bands` must be bands of the input shape {clf.input_shape}; {band!r} is of {band.shape}."
            ) from error
    return batch, chosen


@shardable(inputs=("images",), check=_band_margins_arguments)
def band_margins(
    clf: Classifier,
    images: object,
    *,
    bands: Sequence[Band] | None = None,
    max_iter: int = 100,
    overshoot: float = 0.02,
    candidates: int = 10,
    clip: bool = False,
    linearise: Linearise = "overshot",
    progress: Progress = None,
    cancel: CancelEvent | None = None,
    executor: Executor = None,
) -> BandMargins:
    """The margin of every image along every band, as in the paper: DeepFool with each step projected on the band.

    ``bands`` defaults to :func:`boundary_widgets.core.dct.bands` of the input shape. Each band is a
    batched DeepFool over the images (``max_iter`` 100 and ``overshoot`` 0.02, the paper's values;
    no clipping unless ``clip=True``), its steps projected with the band's fast transform on the
    classifier's device (no dense basis). Large images go in chunks of about 2**22 input elements.
    For the paper's grids pass ``bands=dct.bands(shape, grid="hold-me-tight")``.
    ``linearise`` (see :func:`~boundary_widgets.core.deepfool.deepfool`): ``"overshot"`` (default)
    linearises at the point it tests, so each margin lands within 0.2 % past the band's boundary (the
    closest estimate); ``"iterate"`` is LTS4/hold-me-tight's step (linearised before the overshoot,
    floored at 1e-4), so multi-step margins come out the whole overshoot (about 2 %) larger, equal to
    the reference's image by image.
    :attr:`BandMargins.medians` counts an image whose DeepFool did not converge as +inf (no boundary
    found); :attr:`BandMargins.reference_medians` counts its last norm, as the reference does.
    ``progress`` counts bands × images; ``cancel`` is checked at every DeepFool step
    (see :mod:`boundary_widgets.core.progress`). ``executor``: a ``distributed.Client`` (or a ``Sharding``) runs
    the images in shards on its cluster, with the same results (see :mod:`boundary_widgets.core.distributed`).
    """
    batch, chosen = _band_margins_arguments(
        clf,
        images,
        bands=bands,
        max_iter=max_iter,
        overshoot=overshoot,
        candidates=candidates,
        clip=clip,
        linearise=linearise,
    )
    check_protocol(progress, cancel)
    n = batch.shape[0]
    per_chunk = max(1, _CHUNK_ELEMENTS // clf.input_dim)
    margins = np.zeros((n, len(chosen)))
    converged = np.zeros((n, len(chosen)), dtype=bool)
    with track(progress, cancel, total=len(chosen) * n, desc="band margins") as tracker:
        labels = clf.predict(batch).cpu().numpy().astype(np.int64)
        for j, band in enumerate(chosen):
            for start in range(0, n, per_chunk):
                rows = slice(start, min(start + per_chunk, n))
                result = deepfool(
                    clf,
                    batch[rows],
                    subspace=band,
                    max_iter=max_iter,
                    overshoot=overshoot,
                    candidates=candidates,
                    clip=clip,
                    linearise=linearise,
                    cancel=tracker.cancel,
                )
                margins[rows, j] = result.distances.double().numpy()
                converged[rows, j] = result.converged.numpy()
                tracker.advance(rows.stop - rows.start)
    return BandMargins(
        margins=margins,
        converged=converged,
        band_names=tuple(band.name for band in chosen),
        band_dims=np.array([band.dim for band in chosen], dtype=np.int64),
        labels=labels,
        bands=chosen,
        linearise=linearise,
    )


def band_direction(clf: Classifier, result: BandMargins, x: object, band: int, *, max_iter: int = 100) -> torch.Tensor:
    """The band-constrained DeepFool perturbation of one image ``x`` along ``result.bands[band]`` (for a slice)."""
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    if not isinstance(result, BandMargins):
        raise TypeError(f"`result` must be a BandMargins (from band_margins); got {type(result).__name__}.")
    if isinstance(band, bool) or not isinstance(band, int | np.integer):
        raise TypeError(f"`band` must be an int index into `result.bands`; got {type(band).__name__}.")
    if not 0 <= band < len(result.bands):
        raise ValueError(f"`band` must be in [0, {len(result.bands)}); got {band}.")
    found = deepfool(clf, x, subspace=result.bands[band], max_iter=max_iter)
    return found.perturbations[0]


__all__ = [
    "BandMargins",
    "band_direction",
    "band_margins",
]
