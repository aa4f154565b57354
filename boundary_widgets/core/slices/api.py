"""The public slice functions: compute_slice and iter_slice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np

from ..classifier import Classifier
from ..plane import Plane
from ..progress import CancelEvent, Progress, check_protocol, track
from .cache import CACHE, cache_key
from .certified import bounder
from .frames import SLICE_METHODS, SliceRequest, total_units
from .options import DEFAULT_METHOD, Extent, ProofOptions, Resolution, SliceOptions
from .points import PointEvaluator, default_resolution
from .request import ModelChangedError
from .result import PlaneSlice

# A slice whose model changed while it was computed is computed again from the start, this many times in all.
STATE_TRIES = 2


def check_slice_arguments(clf: object, plane: object) -> None:
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    if not isinstance(plane, Plane):
        raise TypeError(f"`plane` must be a boundary_widgets.Plane; got {type(plane).__name__}.")
    if plane.shape != clf.input_shape:
        raise ValueError(f"`plane` must live in the classifier's input shape {clf.input_shape}; got {plane.shape}.")
    # The origin is an image the user handed in: the same bounds check (and message) as every other one.
    clf.check_inputs(plane.origin, "plane.origin", batched=False, in_bounds=True)


def iter_slice(
    clf: Classifier,
    plane: Plane,
    *,
    extent: Extent,
    resolution: Resolution | None = None,
    method: Literal["adaptive", "dense", "certified"] = DEFAULT_METHOD,
    clip: bool = False,
    memory_budget: int | None = None,
    precision: str = "float32",
    proof: ProofOptions | None = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
    cache: bool = True,
) -> Iterator[PlaneSlice]:
    """The frames of :func:`compute_slice` as they are ready: coarse first, the finished slice last.

    Arguments are checked at once (not at the first ``next``). Every frame is a complete
    ``PlaneSlice`` of the requested resolution; only the last has ``is_final=True`` and it equals
    ``compute_slice(...)`` with the same arguments. ``method="dense"`` yields one frame. With
    ``cache=True`` a cached result is yielded alone; a finished result is cached, a cancelled or
    abandoned one is not. Raises :class:`~boundary_widgets.Cancelled` from ``next`` once
    ``cancel.is_set()``.
    """
    options = _options(clf, plane, extent, resolution, method, clip, precision, memory_budget, proof)
    return _frames(clf, plane, options, progress=progress, cancel=cancel, cache=cache, progressive=True)


def compute_slice(
    clf: Classifier,
    plane: Plane,
    *,
    extent: Extent,
    resolution: Resolution | None = None,
    method: Literal["adaptive", "dense", "certified"] = DEFAULT_METHOD,
    clip: bool = False,
    memory_budget: int | None = None,
    precision: str = "float32",
    proof: ProofOptions | None = None,
    on_frame: Callable[[PlaneSlice], object] | None = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
    cache: bool = True,
) -> PlaneSlice:
    """Classify an ``Ra × Rb`` grid on ``plane`` spanning ``extent`` (L2 units around the origin).

    ``resolution`` is ``R`` or ``(Ra, Rb)``, at most ``MAX_RESOLUTION`` (4096) cells per axis and
    ``MAX_RESULT_BYTES`` (256 MiB, 18 bytes a cell: about 3861²) of result arrays; ``None`` takes
    :func:`default_resolution` of the classifier's device (128 on a CPU, 256 on a GPU). The peak
    resident memory of a computation stays within ``PEAK_RESULT_MULTIPLE`` (3) times its result
    arrays, plus the model's own activations.

    ``method="adaptive"`` (the default) evaluates a coarse lattice (at least ``MIN_COARSE_SAMPLES``
    per axis; 9 on a slow model, so the first frame costs about a hundred forwards: see
    ``frames.starts_coarse``), then halves the step level by level down to the full grid, evaluating only cells
    whose corner labels disagree or whose margin says a boundary (or a small island) may be
    inside; other cells take their corners' label, and margin/confidence by bilinear
    interpolation. ``evaluated`` marks the cells the model was run on. ``method="dense"``
    evaluates every cell, for exact work.

    ``method="certified"`` proves the map: the adaptive map first, then, coarse to fine, boxes of the
    plane whose margin is proven positive over their whole area by bound propagation
    (:mod:`boundary_widgets.core.bounds`), as ``proof`` (a :class:`ProofOptions`) says; the result's
    ``certificate`` holds per cell the share of its area proven single-label, the proven class and a
    lower bound of the margin, and the unproven leaves (boundary boxes). Cells not wholly proven are
    evaluated at their centre; a wholly proven cell takes its proven label. Its frames: the adaptive
    levels (no certificate yet), then one per level of the proof (``certificate.is_complete`` False).
    A model with an operator that has no bound, or that ``torch.fx`` cannot trace, raises
    :class:`~boundary_widgets.core.bounds.UnsupportedModelError` (a ``ValueError``) before any work.

    Images are built on the classifier's device one chunk at a time. ``memory_budget`` bounds the
    *activations* of one forward chunk (its inputs plus every leaf module's output), not the result
    arrays (capped by ``resolution`` above): ``None`` means chunks of 8 MiB on a CPU (they stay in
    cache; 32 MiB for convolutional models, which gain from larger batches) and of half the free
    memory on CUDA (``torch.cuda.mem_get_info``); a given budget only lowers these. See
    :func:`chunk_size`. Within that, a dense slice of many points times a few chunk sizes on its first
    points and runs the rest in the fastest, remembered per classifier (``points.PointEvaluator``).
    Image batches run in ``channels_last`` on CUDA. ``precision``
    ``"bfloat16"``/``"float16"`` runs the model under autocast and re-checks near-ties in float32.
    ``clip=True`` clips every point to the classifier's bounds and reports the share of evaluated
    points it moved.

    Progress and cancellation (the protocol of :mod:`boundary_widgets.core.progress`):

    - ``progress``: ``True`` for a bar, or ``progress(done, total)``; its units are levels
      (adaptive) or chunks of forward passes (dense); a cache hit is one unit.
    - ``on_frame(sl)`` is called in the calling thread after each level with a complete
      ``PlaneSlice`` of the requested resolution (coarse levels interpolated; ``sl.is_final`` is
      ``False`` for all but the last). Its return value is ignored; an exception it raises stops
      the computation and propagates. The last call receives the object that is returned.
      ``method="dense"`` and a cache hit call it once.
    - ``cancel`` is a ``threading.Event`` (anything with ``is_set()``); it is checked before each
      level and between chunks of forward passes, and when set the call raises
      :class:`~boundary_widgets.Cancelled`. Nothing is cached then.

    ``cache=True`` keeps finished results in a process-wide cache bounded in bytes (see
    :func:`clear_slice_cache`), keyed by the classifier object and the values of its parameters and
    buffers (:meth:`Classifier.state_checksum`), the plane's values, extent, resolution, method,
    clip and precision: a repeated call runs no forward pass. Results have read-only arrays,
    whether they came from the cache or not.

    A map is of one model state: the state checksum is compared at the end, after every level
    (adaptive) and between chunks as often as that costs about 1 % of the work (``STATE_CHECK_SPACING``),
    and a model changed meanwhile (by another thread) restarts the computation, once;
    a second change raises :class:`ModelChangedError`. A mixed map is never returned nor cached.
    """
    if on_frame is not None and not callable(on_frame):
        raise TypeError(f"`on_frame` must be callable or None; got {type(on_frame).__name__}.")
    options = _options(clf, plane, extent, resolution, method, clip, precision, memory_budget, proof)
    frames = _frames(
        clf, plane, options, progress=progress, cancel=cancel, cache=cache, progressive=on_frame is not None
    )
    for frame in frames:
        if on_frame is not None:
            on_frame(frame)
    return frame


def _options(
    clf: object,
    plane: object,
    extent: object,
    resolution: object,
    method: object,
    clip: object,
    precision: object,
    memory_budget: object,
    proof: object,
) -> SliceOptions:
    check_slice_arguments(clf, plane)
    if resolution is None:
        resolution = default_resolution(clf.device)
    return SliceOptions(
        extent=extent,
        resolution=resolution,
        method=method,
        clip=clip,
        precision=precision,
        memory_budget=memory_budget,
        proof=proof,
    )


def _frames(
    clf: Classifier,
    plane: Plane,
    options: SliceOptions,
    *,
    progress: Progress,
    cancel: CancelEvent | None,
    cache: bool,
    progressive: bool,
) -> Iterator[PlaneSlice]:
    """Checks the run's own arguments now, and returns the generator of the frames."""
    check_protocol(progress, cancel)
    if not isinstance(cache, bool | np.bool_):
        raise TypeError(f"`cache` must be a bool; got {type(cache).__name__}.")
    if options.method == "certified":
        bounder(clf, plane, options)  # an operator without a bound, or a model fx cannot trace: refused before any work
    return _run(clf, plane, options, bool(cache), progress=progress, cancel=cancel, progressive=progressive)


def _run(
    clf: Classifier,
    plane: Plane,
    options: SliceOptions,
    cache: bool,
    *,
    progress: Progress,
    cancel: CancelEvent | None,
    progressive: bool,
) -> Iterator[PlaneSlice]:
    """One model state per map: the state checksum is compared at the end, after every level (adaptive)
    and between chunks (``SliceRequest.check_state``); a change restarts the computation (the cache is looked up again, for the new
    state), up to ``STATE_TRIES`` times in all, then raises :class:`ModelChangedError`. A map is
    cached only under the state it was computed with."""
    for _ in range(STATE_TRIES):
        # The key is taken when the work starts (the first ``next``), not when iter_slice was called.
        key = cache_key(clf, plane, options) if cache else None
        cached = CACHE.get(key, clf) if key is not None else None
        if cached is not None:
            with track(progress, cancel, total=1, desc="slice (cached)") as tracker:
                tracker.advance()
            yield cached
            return
        evaluator = PointEvaluator(
            clf, plane, clip=options.clip, memory_budget=options.memory_budget, precision=options.precision
        )
        total = total_units(options, evaluator)
        state = key[1] if key is not None else clf.state_checksum()
        try:
            with track(progress, cancel, total=total, desc=f"{options.method} slice") as tracker:
                request = SliceRequest(clf, plane, options, tracker, progressive, evaluator, state)
                for frame in SLICE_METHODS[options.method](request):
                    if frame.is_final and key is not None:
                        CACHE.put(key, clf, frame)
                    yield frame
            return
        except ModelChangedError:
            continue
    raise ModelChangedError(
        f"the classifier's parameters or buffers changed while the slice was computed, {STATE_TRIES} times in a "
        "row: a map must be of one model state. Pause what changes the model (training, another thread) and "
        "compute it again."
    )


__all__ = [
    "STATE_TRIES",
    "check_slice_arguments",
    "compute_slice",
    "iter_slice",
]
