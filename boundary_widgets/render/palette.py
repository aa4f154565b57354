"""Class colours for any number of classes: the colour of a class depends only on its index."""

from __future__ import annotations

import threading

import numpy as np

from ..core.validation import check_positive_int

# Paul Tol's "muted" scheme: distinguishable under the common colour-vision deficiencies.
_TOL_MUTED = (
    "#CC6677",
    "#332288",
    "#DDCC77",
    "#117733",
    "#88CCEE",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
    "#DDDDDD",
)
# The legend swatch of undefined cells (NaN logits), which slices draw hatched in two greys.
UNDEFINED_COLOR = "#B4B4B4"
_GOLDEN = 0.618033988749895
# Consecutive classes (often related ones, e.g. dog breeds) differ in hue by the golden angle and
# in lightness; the saturation cycles more slowly, which keeps far-apart classes from coinciding.
_LIGHTNESS = (0.35, 0.55, 0.75)
_SATURATION = (0.65, 0.9, 0.45)

_table = np.empty((0, 3), dtype=np.uint8)
_table_lock = threading.Lock()


def _hls_to_rgb(h: np.ndarray, lightness: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Vectorised :func:`colorsys.hls_to_rgb` (the closed form of HSL to RGB): ``(n, 3)`` floats in [0, 1]."""
    chroma = (1.0 - np.abs(2.0 * lightness - 1.0)) * s
    k = (np.array([0.0, 8.0, 4.0]) + h[:, None] * 12.0) % 12.0  # per channel (R, G, B)
    return lightness[:, None] - (chroma / 2)[:, None] * np.clip(np.minimum(k - 3.0, 9.0 - k), -1.0, 1.0)


def _extend_table(n: int) -> np.ndarray:
    """The table of the first ``n`` classes (grown, never changed: class ``k`` keeps its colour)."""
    global _table
    with _table_lock:
        if _table.shape[0] < n:
            size = max(n, 1024)
            j = np.arange(size - len(_TOL_MUTED), dtype=np.float64)
            generated = _hls_to_rgb(
                (j * _GOLDEN) % 1.0,
                np.take(_LIGHTNESS, j.astype(np.int64) % 3),
                np.take(_SATURATION, (j.astype(np.int64) // 3) % 3),
            )
            tol = [[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in _TOL_MUTED]
            rgb = np.concatenate([np.array(tol, dtype=np.int64), np.round(generated * 255).astype(np.int64)])
            _table = _unique_rows(rgb).astype(np.uint8)
            _table.flags.writeable = False
        return _table[:n]


_STEPS = np.arange(256)
_GREENS_AT_ONCE = 4  # greens searched per look-up: most repeats find a free blue within the first few


def _unique_rows(rgb: np.ndarray) -> np.ndarray:
    """Nudge a colour that repeats an earlier one by one step of blue (then green) until it is new.

    Deterministic in the index, so a class's colour never depends on how many classes there are.
    The nudges of a repeated colour ``(r, g, b)`` visit, for green ``g, g + 1, ...`` in turn, the
    blues ``b, b ± 1, ..., b ± 255`` (mod 256; upward when ``b < 128``); the first free one is taken,
    found by vectorised look-ups in a table of the colours used (100 000 classes: seconds).
    """
    used = np.zeros((256, 256, 256), dtype=bool)
    out = rgb.copy()
    for k, (r, g, b) in enumerate(rgb.tolist()):
        if not used[r, g, b]:
            used[r, g, b] = True
            continue
        blues = (b + _STEPS) % 256 if b < 128 else (b - _STEPS) % 256
        greens = (g + _STEPS) % 256
        for start in range(0, 256, _GREENS_AT_ONCE):
            block = used[r][np.ix_(greens[start : start + _GREENS_AT_ONCE], blues)]
            first = int(block.argmin())  # the first free colour in the order of the nudges
            if not block.flat[first]:
                green, blue = int(greens[start + first // 256]), int(blues[first % 256])
                used[r, green, blue] = True
                out[k] = (r, green, blue)
                break
    return out


def rgb_table(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 RGB, row ``k`` the colour of class ``k``; read-only, all rows distinct.

    Tol's muted ten first, then golden-angle hues at alternating lightness and saturation. Row ``k``
    is the same for every ``n > k``: a class keeps its colour across views, planes and frames.
    """
    n = check_positive_int(n, "n", minimum=0)
    return _extend_table(n)


def class_colors(n: int) -> list[str]:
    """``n`` hex colours ``"#RRGGBB"`` of :func:`rgb_table`."""
    return [f"#{r:02X}{g:02X}{b:02X}" for r, g, b in rgb_table(n).tolist()]


__all__ = [
    "UNDEFINED_COLOR",
    "class_colors",
    "rgb_table",
]
