"""The one plane pipeline of the explorers and the command line: two directions, the plane they span, its extent.

``resolve_plane(clf, x, u, v)`` makes (or takes from a :class:`DirectionCache`) the two directions,
spans the plane through ``x`` and chooses the extent when none is given; the caller then computes
the slice (progressively in a widget, once on the command line).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import directions
from .classifier import Classifier
from .dct import Band
from .directions import Direction
from .extent import default_extent, extent_from_distance
from .plane import Plane
from .progress import CancelEvent, Progress, track

__all__ = ["DirectionCache", "DirectionRequest", "ResolvedPlane", "resolve_plane"]

DirectionRequest = Direction | tuple[str, dict[str, Any]]  # a made direction, or (kind, parameters) to make


@dataclass(frozen=True, eq=False)
class ResolvedPlane:
    """The plane through ``x`` spanned by ``u`` and ``v`` and the half-width of the square to show."""

    plane: Plane
    u: Direction
    v: Direction
    extent: float  # half-width in L2 units, > 0
    extent_source: str  # "given", "DeepFool distance of u" or "default_extent"

    def __repr__(self) -> str:
        return f"ResolvedPlane(u={self.u.kind!r}, v={self.v.kind!r}, extent={self.extent:.4g} ({self.extent_source}))"


def _digest(tensor: torch.Tensor) -> str:
    array = np.ascontiguousarray(tensor.detach().cpu().numpy())
    return hashlib.blake2b(array.tobytes() + str(array.shape).encode(), digest_size=16).hexdigest()


def _params_key(params: dict[str, Any]) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return ["tensor", _digest(value)]
        if isinstance(value, Band):
            return ["band", value.rows, value.cols, value.shape]
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value if value is None or isinstance(value, bool | int | float | str) else repr(value)

    return json.dumps({name: plain(value) for name, value in params.items()}, sort_keys=True)


class DirectionCache:
    """The last ``size`` directions made, keyed by content: the image, the model's state, the kind and
    its parameters (so a changed model or image never gets a stale direction). ``computed`` counts
    the directions made (not served from the cache)."""

    def __init__(self, size: int = 8) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"`size` must be an int >= 1; got {size!r}.")
        self.size = size
        self.computed = 0
        self._entries: OrderedDict[tuple, Direction] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Direction]:
        """The directions held, oldest first."""
        return iter(list(self._entries.values()))

    def get(
        self,
        clf: Classifier,
        x: torch.Tensor,
        kind: str,
        params: dict[str, Any],
        *,
        content: tuple | None = None,
        progress: Progress = None,
        cancel: CancelEvent | None = None,
    ) -> Direction:
        """The direction ``directions.make(kind, clf, x, **params)``, made once per content.

        ``content`` is the key of ``x`` and the model's state when the caller already has it.
        """
        content = content if content is not None else (_digest(x), tuple(clf.state_checksum()))
        key = (*content, kind, _params_key(params))
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        made = directions.make(kind, clf, x, **params, progress=progress, cancel=cancel)
        self.computed += 1
        self._entries[key] = made
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return made


def _deepfool_extent(u: Direction) -> float | None:
    """The extent :func:`default_extent` would choose, read off ``u`` when ``u`` is that very DeepFool run."""
    defaults = directions.get("adversarial").defaults()
    same_run = u.kind == "adversarial" and all(
        u.params.get(k) == defaults[k] for k in ("method", "target", "candidates", "max_iter")
    )
    distance = u.info.get("distance")
    if same_run and u.info.get("converged") and isinstance(distance, int | float) and distance > 0:
        return extent_from_distance(float(distance))
    return None


def resolve_plane(
    clf: Classifier,
    x: object,
    u: DirectionRequest,
    v: DirectionRequest,
    *,
    extent: float | None = None,
    images: object = None,
    cache: DirectionCache | None = None,
    progress: Progress = None,
    cancel: CancelEvent | None = None,
) -> ResolvedPlane:
    """The plane through ``x`` (one input) spanned by ``u`` and ``v``, and its extent.

    ``u``/``v``: a :class:`~boundary_widgets.core.directions.Direction`, or ``(kind, params)`` made
    with ``directions.make`` (through ``cache`` when given). ``extent=None``: the DeepFool distance
    of ``u`` when ``u`` is the default adversarial direction (the same answer, without a second
    run), else :func:`~boundary_widgets.core.extent.default_extent` (``images``: the data set, its
    fallback). ``progress`` counts three units: ``u``, ``v``, the extent.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"`clf` must be a boundary_widgets.Classifier; got {type(clf).__name__}.")
    if extent is not None and (
        isinstance(extent, bool) or not isinstance(extent, int | float) or not 0 < extent < float("inf")
    ):
        raise ValueError(f"`extent` must be None or a finite number > 0; got {extent!r:.40}.")
    if cache is not None and not isinstance(cache, DirectionCache):
        raise TypeError(f"`cache` must be a DirectionCache or None; got {type(cache).__name__}.")
    for name, request in (("u", u), ("v", v)):
        if not isinstance(request, Direction):
            if not (isinstance(request, tuple) and len(request) == 2 and isinstance(request[1], dict)):
                raise TypeError(f"`{name}` must be a Direction or a (kind, params) pair; got {request!r:.80}.")
            directions.check_parameters(request[0], clf, request[1])
    sample = clf.check_inputs(x, "x", batched=False, in_bounds=True)[0].cpu()
    content = (_digest(sample), tuple(clf.state_checksum())) if cache is not None else None
    made: list[Direction] = []
    with track(progress, cancel, total=3, desc="plane") as tracker:
        for request in (u, v):
            if isinstance(request, Direction):
                made.append(request)
            elif cache is not None:
                made.append(cache.get(clf, sample, *request, content=content, cancel=tracker.cancel))
            else:
                made.append(directions.make(request[0], clf, sample, **request[1], cancel=tracker.cancel))
            tracker.advance()
        plane = Plane.through(sample, made[0], made[1])
        source = "given"
        if extent is None:
            extent, source = _deepfool_extent(made[0]), "DeepFool distance of u"
            if extent is None:
                extent = default_extent(clf, sample, images=images, cancel=tracker.cancel)
                source = "default_extent"
        tracker.advance()
    return ResolvedPlane(plane=plane, u=made[0], v=made[1], extent=float(extent), extent_source=source)
