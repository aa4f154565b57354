"""One slice computation as the frame functions see it: its checked options, its model and plane, its tracker."""

from __future__ import annotations

import time
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


# Within one evaluator call the model state is checked once the work since the last check took this many
# times as long as that check (see SliceRequest.check_state): checks cost about 1 % of a slice. Their timing
# changes no result: a call's end always checks, and a change restarts the computation whenever it is seen.
STATE_CHECK_SPACING = 100


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
    # When the last check ended (time.perf_counter) and how long it took.
    _last_check: list[float] = field(default_factory=lambda: [0.0, 0.0], repr=False, compare=False)

    def check_state(self, points_done: int | None = None) -> None:
        """Raises ModelChangedError unless the model is in the state the computation started with.

        Called with ``points_done`` (an evaluator's progress within its call) after every forward chunk,
        it checks once the time since its last check is ``STATE_CHECK_SPACING`` times what that check
        took: the checksum reads every weight, which may cost as much as a chunk of a small model's
        forwards. Called without, at the end of a call or level, it always checks.
        """
        if points_done is not None:
            ended, took = self._last_check
            if time.perf_counter() - ended < STATE_CHECK_SPACING * took:
                return
        began = time.perf_counter()
        changed = self.clf.state_checksum() != self.state
        ended = time.perf_counter()
        self._last_check[:] = [ended, ended - began]
        if changed:
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


__all__ = ["STATE_CHECK_SPACING", "ModelChangedError", "SliceRequest"]
