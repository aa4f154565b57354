"""One slice computation as the frame functions see it: its checked options, its model and plane, its tracker."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..classifier import Classifier
from ..plane import Plane
from ..progress import Tracker
from .options import SliceOptions
from .points import PointEvaluator
from .result import PlaneSlice


class ModelChangedError(RuntimeError):
    """The classifier's parameters or buffers changed while a slice was computed: its map would mix two models."""


# Forward points between two checks of the model state within one evaluator call (see SliceRequest.check_state).
STATE_CHECK_POINTS = 256


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
    _checked_at: list[int] = field(default_factory=lambda: [0], repr=False, compare=False)

    def check_state(self, points_done: int | None = None) -> None:
        """Raises ModelChangedError unless the model is in the state the computation started with.

        Called with ``points_done`` (an evaluator's count within its call) after every forward chunk, it
        checks once ``STATE_CHECK_POINTS`` points have passed since its last check: the checksum reads
        the weights once, about one point's forward, so chunks of a few points (a model with many
        classes) share one. Called without, at the end of a call or level, it always checks.
        """
        if points_done is not None:
            if 0 <= points_done - self._checked_at[0] < STATE_CHECK_POINTS:
                return
            self._checked_at[0] = points_done
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


__all__ = ["STATE_CHECK_POINTS", "ModelChangedError", "SliceRequest"]
