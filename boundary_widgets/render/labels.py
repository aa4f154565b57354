"""Which classes a view names: the legend of a slice, the top-k of a probability vector, short names."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.slices import PlaneSlice
from ..core.validation import check_positive_int
from .palette import UNDEFINED_COLOR, class_colors

UNDEFINED_NAME = "undefined (NaN logits)"

ELLIPSIS = "…"
LEGEND_ENTRIES = 12  # classes named in a slice's legend; the rest are counted in one "and N more" line
NAME_WIDTH = 24  # characters of a class name shown in a legend or a panel
TOP_K = 10  # classes listed with their probability for an inspected point


def shorten(name: str, width: int = 24) -> str:
    """``name`` cut to at most ``width`` characters with an ellipsis; for views only, never for data."""
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str; got {type(name).__name__}.")
    width = check_positive_int(width, "width", minimum=2)
    if len(name) <= width:
        return name
    return name[: width - 1].rstrip(" ,;-_") + ELLIPSIS


def legend_entries(sl: PlaneSlice, *, max_entries: int | None = None) -> list[tuple[int, str, float, str]]:
    """``(class_index, name, share_of_area, hex_colour)`` of each class present, largest area first.

    ``share_of_area`` is the fraction of the slice's cells with that label (ties: lower index
    first); ``name`` is the full class name (views shorten it with :func:`shorten`). At most
    ``max_entries`` entries when given; the caller can say "and N more" with
    ``len(sl.classes_present) - max_entries``.
    """
    if not isinstance(sl, PlaneSlice):
        raise TypeError(f"`sl` must be a PlaneSlice; got {type(sl).__name__}.")
    if max_entries is not None:
        max_entries = check_positive_int(max_entries, "max_entries")
    counts = np.bincount(sl.labels[~sl.undefined], minlength=len(sl.class_names))
    present = np.flatnonzero(counts)
    order = present[np.lexsort((present, -counts[present]))]
    if max_entries is not None:
        order = order[:max_entries]
    colours = class_colors(len(sl.class_names))
    total = sl.labels.size
    return [(int(k), sl.class_names[k], float(counts[k] / total), colours[k]) for k in order]


def undefined_entry(sl: PlaneSlice) -> tuple[str, float, str] | None:
    """``(name, share_of_area, hex_colour)`` of the slice's undefined cells (NaN logits), or None if there are none.

    Views list it after the classes of :func:`legend_entries`, with a hatched swatch.
    """
    if not isinstance(sl, PlaneSlice):
        raise TypeError(f"`sl` must be a PlaneSlice; got {type(sl).__name__}.")
    if not sl.n_undefined:
        return None
    return UNDEFINED_NAME, sl.n_undefined / sl.labels.size, UNDEFINED_COLOR


def top_k(probabilities: object, class_names: Sequence[str], k: int = 10) -> list[tuple[int, str, float]]:
    """The ``k`` most probable classes as ``(class_index, name, probability)``, most probable first.

    ``probabilities`` is one vector ``(classes,)`` (a numpy array, a list or a torch tensor);
    ties go to the lower index. Fewer than ``k`` entries when there are fewer classes.
    """
    if hasattr(probabilities, "detach"):  # a torch tensor, without importing torch here
        probabilities = probabilities.detach().cpu().numpy()
    try:
        p = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`probabilities` must be a vector of numbers; got {probabilities!r:.80}.") from error
    if p.ndim != 1:
        raise ValueError(f"`probabilities` must be one vector (classes,); got shape {p.shape}.")
    if len(class_names) != p.size:
        raise ValueError(f"`class_names` must have one name per probability ({p.size}); got {len(class_names)}.")
    k = check_positive_int(k, "k")
    order = np.argsort(-p, kind="stable")[:k]
    return [(int(i), str(class_names[i]), float(p[i])) for i in order]


__all__ = [
    "ELLIPSIS",
    "LEGEND_ENTRIES",
    "NAME_WIDTH",
    "TOP_K",
    "UNDEFINED_NAME",
    "legend_entries",
    "shorten",
    "top_k",
    "undefined_entry",
]
