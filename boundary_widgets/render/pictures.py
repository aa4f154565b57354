"""A PlaneSlice as pixels and lines: what every view of a slice draws."""

from __future__ import annotations

import contourpy
import numpy as np

from ..core.slices import PlaneSlice
from ..core.validation import check_choice
from .palette import rgb_table


def slice_rgb(sl: PlaneSlice, *, shading: str = "labels") -> np.ndarray:
    """``(Rb, Ra, 3)`` uint8 picture of the slice, row 0 at beta_min; every view draws these pixels.

    ``shading="confidence"`` fades each class colour toward white as the top-1 probability drops
    to chance.
    """
    check_choice(shading, "shading", ("labels", "confidence"))
    table = rgb_table(len(sl.class_names))
    if shading == "labels":
        return table[sl.labels]
    rgb = table[sl.labels].astype(np.float32)
    chance = 1.0 / len(sl.class_names)
    strength = np.clip((sl.confidence - chance) / (1.0 - chance), 0.0, 1.0)[..., None]
    rgb = 255.0 - strength * (255.0 - rgb)
    return rgb.round().astype(np.uint8)


def boundary_lines(sl: PlaneSlice) -> np.ndarray:
    """Decision boundaries as one ``(M, 2)`` array of (alpha, beta) vertices, segments split by NaN rows.

    For each class present, the field ``+margin`` inside the class and ``-margin`` outside changes
    sign exactly at the class's border and is smooth across it; its zero contour is the boundary.
    Each class's field is contoured only over its bounding box grown by one cell, where all of its
    border lies, so that slices crossing many classes stay quick to draw.
    """
    pieces: list[np.ndarray] = []
    n_rows, n_cols = sl.labels.shape
    for k in sl.classes_present:
        inside = sl.labels == k
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, n_rows)
        c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, n_cols)
        margin = sl.margin[r0:r1, c0:c1].astype(np.float64)
        signed = np.where(inside[r0:r1, c0:c1], margin, -margin)
        generator = contourpy.contour_generator(sl.alphas[c0:c1], sl.betas[r0:r1], signed)
        for line in generator.lines(0.0):
            pieces += [line, np.full((1, 2), np.nan)]
    return np.concatenate(pieces) if pieces else np.empty((0, 2))


__all__ = [
    "boundary_lines",
    "slice_rgb",
]
