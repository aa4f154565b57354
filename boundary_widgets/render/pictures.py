"""A PlaneSlice as pixels and lines, an input as a picture: what every view draws."""

from __future__ import annotations

import contourpy
import numpy as np

from ..core.slices import PlaneSlice
from ..core.validation import check_choice
from .palette import rgb_table

# Undefined cells (NaN logits) are hatched: diagonal stripes of two greys, HATCH_PERIOD pixels apart.
HATCH_PERIOD = 4
_HATCH_RGB = np.array([[150, 150, 150], [205, 205, 205]], dtype=np.uint8)


def slice_rgb(sl: PlaneSlice, *, shading: str = "labels") -> np.ndarray:
    """``(Rb, Ra, 3)`` uint8 picture of the slice, row 0 at beta_min; every view draws these pixels.

    ``shading="confidence"`` fades each class colour toward white as the top-1 probability drops
    to chance. Undefined cells (NaN logits, ``sl.undefined``) are hatched in two greys, whatever
    their label.
    """
    check_choice(shading, "shading", ("labels", "confidence"))
    table = rgb_table(len(sl.class_names))
    if shading == "labels":
        rgb = table[sl.labels]
    else:
        chance = 1.0 / len(sl.class_names)
        strength = np.clip((sl.confidence - chance) / (1.0 - chance), 0.0, 1.0)[..., None]
        rgb = (255.0 - strength * (255.0 - table[sl.labels].astype(np.float32))).round().astype(np.uint8)
    if sl.n_undefined:
        rows, cols = np.nonzero(sl.undefined)
        rgb[rows, cols] = _HATCH_RGB[((rows + cols) // (HATCH_PERIOD // 2)) % 2]
    return rgb


def boundary_lines(sl: PlaneSlice) -> np.ndarray:
    """Decision boundaries as one ``(M, 2)`` array of (alpha, beta) vertices, segments split by NaN rows.

    The array never starts or ends with a NaN row: a line drawer that places something at the last
    vertex (bqplot's ``Lines`` puts its curve label there) gets a finite point.

    For each class present, the field ``+margin`` inside the class and ``-margin`` outside changes
    sign exactly at the class's border and is smooth across it; its zero contour is the boundary.
    Each class's field is contoured only over its bounding box grown by one cell, where all of its
    border lies, so that slices crossing many classes stay quick to draw.
    """
    pieces: list[np.ndarray] = []
    n_rows, n_cols = sl.labels.shape
    undefined = sl.undefined
    for k in sl.classes_present:
        inside = (sl.labels == k) & ~undefined
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, n_rows)
        c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, n_cols)
        margin = sl.margin[r0:r1, c0:c1].astype(np.float64)
        signed = np.where(inside[r0:r1, c0:c1], margin, -margin)
        if sl.n_undefined:  # no line through cells without a class
            signed = np.ma.masked_array(signed, mask=undefined[r0:r1, c0:c1].copy())
        generator = contourpy.contour_generator(sl.alphas[c0:c1], sl.betas[r0:r1], signed)
        for line in generator.lines(0.0):
            pieces += [np.full((1, 2), np.nan), line]
    return np.concatenate(pieces[1:]) if pieces else np.empty((0, 2))


def _certificate(sl: PlaneSlice):
    if sl.certificate is None:
        raise ValueError("`sl` must be a slice of method='certified' (its certificate is None).")
    return sl.certificate


def unproven_rgba(
    sl: PlaneSlice, *, color: tuple[float, float, float] = (0.45, 0.45, 0.45), opacity: float = 0.7
) -> np.ndarray:
    """``(Rb, Ra, 4)`` float32 RGBA over a certified slice: ``color`` at ``opacity`` times the share of each cell
    left unproven (transparent where a cell is wholly proven)."""
    unproven = 1.0 - _certificate(sl).proven.astype(np.float32)
    rgba = np.empty((*unproven.shape, 4), dtype=np.float32)
    rgba[..., :3] = color
    rgba[..., 3] = opacity * unproven
    return rgba


def boundary_boxes(sl: PlaneSlice) -> np.ndarray:
    """The outlines of a certified slice's unproven leaves, ``(6K - 1, 2)`` (alpha, beta) vertices: each box closed
    (5 vertices), boxes split by NaN rows; it starts and ends on a vertex, like :func:`boundary_lines`."""
    a, b, ha, hb = _certificate(sl).boundary.T
    corners_a = np.stack([np.full_like(a, np.nan), a - ha, a + ha, a + ha, a - ha, a - ha], axis=1)
    corners_b = np.stack([np.full_like(b, np.nan), b - hb, b - hb, b + hb, b + hb, b - hb], axis=1)
    return np.stack([corners_a.ravel(), corners_b.ravel()], axis=1)[1:]


def input_picture(x: object, bounds: tuple[float, float]) -> np.ndarray | None:
    """An input as uint8 pixels, ``(H, W)`` grey or ``(H, W, 3)`` colour, its values clipped to ``bounds``
    (the picture every view shows of an input); None when ``x`` is not an image (a vector of features).

    ``x``: ``(1, H, W)``, ``(3, H, W)`` or ``(H, W)``, a numpy array or a torch tensor.
    """
    array = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)  # a tensor, without importing torch
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    elif array.ndim != 2:
        return None
    low, high = bounds
    return np.round((np.clip(array, low, high) - low) / (high - low) * 255.0).astype(np.uint8)


__all__ = [
    "HATCH_PERIOD",
    "boundary_boxes",
    "boundary_lines",
    "input_picture",
    "slice_rgb",
    "unproven_rgba",
]
