"""One slice computation as the frame functions see it: its checked options, its model and plane, its tracker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..classifier import Classifier
from ..plane import Plane
from ..progress import Tracker
from .options import SliceOptions
from .points import PointEvaluator
from .result import PlaneSlice


class ModelChangedError(RuntimeError):
    """The classifier's parameters or buffers changed while a slice was computed: its map would mix two models."""


@dataclass(frozen=True)
class SliceRequest:
    """One slice computation: the checked options, and how it reports progress and honours ``cancel``."""

    clf: Classifier
    plane: Plane
    options: SliceOptions
    tracker: Tracker  # its units: chunks of forward passes (dense) or levels (adaptive)
    progressive: bool  # whether intermediate frames are wanted (built only then)
    evaluator: PointEvaluator
    state: tuple[float, ...]  # the classifier's state checksum when the computation started

    def check_state(self, _points_done: int = 0) -> None:
        """Raises ModelChangedError unless the model is in the state the computation started with; called
        after every forward chunk. The checksum reads the weights once, as a chunk's forward does."""
        if self.clf.state_checksum() != self.state:
            raise ModelChangedError("the classifier's parameters or buffers changed while the slice was computed")

    def advance(self) -> None:
        """One unit of work done, of the model state the computation started with."""
        self.check_state()
        self.tracker.advance()

    @property
    def alphas(self) -> np.ndarray:
        return self.options.alphas

    @property
    def betas(self) -> np.ndarray:
        return self.options.betas

    def make_slice(
        self,
        labels: np.ndarray,
        confidence: np.ndarray,
        margin: np.ndarray,
        evaluated: np.ndarray,
        *,
        n_clipped: int,
        is_final: bool,
    ) -> PlaneSlice:
        n_evaluated = int(evaluated.sum())
        options = self.options
        # NaN logits give a NaN confidence (softmax) and margin: such cells have no class.
        undefined = np.isnan(confidence) | np.isnan(margin)
        return PlaneSlice(
            alphas=options.alphas,
            betas=options.betas,
            labels=labels,
            confidence=confidence,
            margin=margin,
            evaluated=evaluated,
            undefined=undefined,
            n_evaluated=n_evaluated,
            plane=self.plane,
            class_names=self.clf.class_names,
            extent=options.extent,
            resolution=options.resolution,
            method=options.method,
            clip=options.clip,
            clipped_fraction=n_clipped / max(n_evaluated, 1),
            precision=options.precision,
            is_final=is_final,
        )


__all__ = ["ModelChangedError", "SliceRequest"]
