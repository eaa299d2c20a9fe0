r"""Polygon fill: contours back to masks, vectorised scanlines, even-odd rule.

A pixel is inside when its centre is inside the polygons under the even-odd
rule: the centre lies inside an odd number of them (so a contour inside
another one is a hole, an island inside a hole is filled again, and the two
sides of a keyhole channel cancel). Following PS3.3 C.8.8.6.3, points *on*
a contour belong to the ROI: a pixel whose centre lies on a contour (within
:data:`ON_CONTOUR` pixels) is inside too, which is what contours drawn
through boundary pixel centres (OpenCV-traced, as rt-utils writes them) need.

Coordinates are ``(row, column)`` in pixel units, pixel centres at whole
numbers. The work is NumPy throughout: every (edge, scanline) crossing is
computed at once, and one cumulative sum per image turns crossings into runs.

Examples
--------
>>> import numpy as np
>>> outer = np.array([[0.5, 0.5], [0.5, 4.5], [4.5, 4.5], [4.5, 0.5]])
>>> hole = np.array([[1.5, 1.5], [1.5, 3.5], [3.5, 3.5], [3.5, 1.5]])
>>> fill_polygons([outer, hole], (6, 6)).astype(int)
array([[0, 0, 0, 0, 0, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 1, 0, 0, 1, 0],
       [0, 1, 0, 0, 1, 0],
       [0, 1, 1, 1, 1, 0],
       [0, 0, 0, 0, 0, 0]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ON_CONTOUR", "fill_polygons"]

#: Distance (pixels) within which a pixel centre counts as lying on a contour.
ON_CONTOUR = 1e-3


def _edges(polygons: Sequence[ArrayLike]) -> NDArray[np.float64]:
    """All edges as rows ``(r0, c0, r1, c1)`` with ``r0 <= r1`` (canonical direction)."""
    parts = []
    for polygon in polygons:
        p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(p) == 0:
            continue
        parts.append(np.concatenate([p, np.roll(p, -1, axis=0)], axis=1))
    if not parts:
        return np.zeros((0, 4))
    edges = np.concatenate(parts)
    flip = (edges[:, 2] < edges[:, 0]) | (
        (edges[:, 2] == edges[:, 0]) & (edges[:, 3] < edges[:, 1])
    )
    edges[flip] = edges[flip][:, [2, 3, 0, 1]]
    return edges


def _crossings(
    edges: NDArray[np.float64], rows: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Rows and columns where non-horizontal edges cross the scanlines ``r0 <= r < r1``."""
    sloped = edges[edges[:, 0] != edges[:, 2]]
    r0, c0, r1, c1 = sloped.T
    first = np.clip(np.ceil(r0), 0, rows).astype(np.int64)
    stop = np.clip(np.ceil(r1), 0, rows).astype(np.int64)
    counts = np.maximum(stop - first, 0)
    total = int(counts.sum())
    which = np.repeat(np.arange(len(sloped)), counts)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    row = first[which] + (np.arange(total) - offsets)
    slope = (c1 - c0) / (r1 - r0)
    col = c0[which] + (row - r0[which]) * slope[which]
    return row, col


def _on_contour(
    edges: NDArray[np.float64],
    row: NDArray[np.int64],
    col: NDArray[np.float64],
    shape: tuple[int, int],
) -> NDArray[np.bool_]:
    """Pixels whose centre lies on a contour (edge crossings, horizontal edges, vertices)."""
    rows, cols = shape
    out = np.zeros(shape, bool)
    nearest = np.rint(col)
    hit = (np.abs(col - nearest) <= ON_CONTOUR) & (nearest >= 0) & (nearest < cols)
    out[row[hit], nearest[hit].astype(np.int64)] = True
    flat = edges[edges[:, 0] == edges[:, 2]]
    r = np.rint(flat[:, 0])
    on_row = (np.abs(flat[:, 0] - r) <= ON_CONTOUR) & (r >= 0) & (r < rows)
    flat, r = flat[on_row], r[on_row].astype(np.int64)
    lo = np.clip(np.ceil(np.minimum(flat[:, 1], flat[:, 3]) - ON_CONTOUR), 0, cols).astype(np.int64)
    hi = np.clip(np.floor(np.maximum(flat[:, 1], flat[:, 3]) + ON_CONTOUR) + 1, 0, cols).astype(
        np.int64
    )
    counts = np.maximum(hi - lo, 0)
    which = np.repeat(np.arange(len(flat)), counts)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    out[r[which], lo[which] + np.arange(int(counts.sum())) - offsets] = True
    vertices = np.concatenate([edges[:, :2], edges[:, 2:]])
    snapped = np.rint(vertices)
    at_centre = np.all(np.abs(vertices - snapped) <= ON_CONTOUR, axis=1)
    inside = at_centre & np.all((snapped >= 0) & (snapped < [rows, cols]), axis=1)
    out[snapped[inside, 0].astype(np.int64), snapped[inside, 1].astype(np.int64)] = True
    return out


def fill_polygons(polygons: Sequence[ArrayLike], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Rasterise closed polygons with the even-odd rule.

    Parameters
    ----------
    polygons
        ``(n, 2)`` arrays of ``(row, column)`` vertices (pixel units), each
        implicitly closed; all are combined with the even-odd rule.
    shape
        ``(rows, columns)`` of the output.

    Returns
    -------
    numpy.ndarray
        Boolean mask; pixels whose centre is inside (or on) the polygons are True.

    Examples
    --------
    >>> triangle = [[0, 0], [0, 4], [4, 0]]
    >>> fill_polygons([triangle], (5, 5)).sum()
    np.int64(15)
    """
    rows, cols = int(shape[0]), int(shape[1])
    edges = _edges(polygons)
    if len(edges) == 0 or rows == 0 or cols == 0:
        return np.zeros((rows, cols), bool)
    row, col = _crossings(edges, rows)
    # A crossing at column x toggles every pixel centre to its right (c > x).
    start = np.clip(np.floor(col).astype(np.int64) + 1, 0, cols)
    toggles = np.bincount(row * (cols + 1) + start, minlength=rows * (cols + 1))
    parity = np.cumsum(toggles.reshape(rows, cols + 1), axis=1)[:, :cols] & 1
    return parity.astype(bool) | _on_contour(edges, row, col, (rows, cols))
