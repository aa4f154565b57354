"""The one class palette shared by the matplotlib views and the widgets, and boundary lines."""

from __future__ import annotations

import colorsys

import contourpy
import numpy as np

from ..core.slices import PlaneSlice

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


def class_colors(n: int) -> list[str]:
    """``n`` hex colours: Tol's muted ten, then golden-angle hues at alternating lightness."""
    colors = list(_TOL_MUTED[:n])
    for k in range(n - len(colors)):
        hue = (k * 0.618033988749895) % 1.0
        lightness = (0.35, 0.55, 0.75)[k % 3]
        r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.65)
        colors.append(f"#{int(r * 255):02X}{int(g * 255):02X}{int(b * 255):02X}")
    return colors


def rgb_table(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 RGB of :func:`class_colors`."""
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in class_colors(n)], dtype=np.uint8)


def boundary_lines(sl: PlaneSlice) -> np.ndarray:
    """Decision boundaries as one ``(M, 2)`` array of (alpha, beta) vertices, segments split by NaN rows.

    For each class present, the field ``+margin`` inside the class and ``-margin`` outside changes
    sign exactly at the class's border and is smooth across it; its zero contour is the boundary.
    """
    pieces: list[np.ndarray] = []
    for k in sl.classes_present:
        signed = np.where(sl.labels == k, sl.margin, -sl.margin).astype(np.float64)
        generator = contourpy.contour_generator(sl.alphas, sl.betas, signed)
        for line in generator.lines(0.0):
            pieces += [line, np.full((1, 2), np.nan)]
    return np.concatenate(pieces) if pieces else np.empty((0, 2))
