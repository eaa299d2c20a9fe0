r"""Contours of 2-D masks: marching squares, simplification, keyholes.

Coordinates are ``(row, column)`` in pixel units of the image, pixel centres at
whole numbers, so pixel ``(r, c)`` covers ``[r - 0.5, r + 0.5] x [c - 0.5, c + 0.5]``.

:func:`find_contours` runs marching squares over the whole image at once
(NumPy, no loop over pixels): each 2x2 cell of pixel centres contributes up to
two directed segments between the midpoints (or, for grey-level images,
the interpolated crossings) of its edges; segments are chained into closed
polygons by pointer jumping. For a binary mask every vertex lies half-way
between an inside and an outside pixel centre, so filling the polygons with
:func:`radbridge.iods.raster.fill_polygons` (pixel centre inside,
even-odd rule) gives back exactly the same mask.

Conventions:

- inside pixels that touch only diagonally are joined (the mask is taken as
  8-connected, the background as 4-connected);
- outer boundaries and hole boundaries run in opposite directions:
  :func:`signed_area` is positive for an outer boundary and negative for a hole;
- a polygon does not repeat its first vertex at the end.

Examples
--------
>>> import numpy as np
>>> mask = np.zeros((5, 5), bool)
>>> mask[1:4, 1:4] = True
>>> mask[2, 2] = False  # a one-pixel hole
>>> polygons = find_contours(mask)
>>> sorted(round(signed_area(p), 2) for p in polygons)
[-0.5, 8.5]
>>> [len(p) for p in simplify_polygons(polygons, tolerance=0.0)]
[8, 4]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radbridge.errors import EncodingError
from radbridge.iods.threshold import DEFAULT_THRESHOLD, binarize, check_threshold

__all__ = [
    "check_outline_settings",
    "find_contours",
    "keyhole",
    "nest_polygons",
    "remove_collinear",
    "signed_area",
    "simplify",
    "simplify_polygons",
    "slice_polygons",
]

FloatArray = NDArray[np.float64]


def check_outline_settings(tolerance_mm: float, level: float) -> None:
    """Check what every outline takes: its simplification tolerance and iso-level.

    Raises
    ------
    EncodingError
        ``tolerance_mm`` is not a finite number >= 0, or ``level`` is no threshold
        (see :func:`radbridge.iods.threshold.check_threshold`).
    """
    if not np.isfinite(tolerance_mm) or tolerance_mm < 0:
        raise EncodingError(
            f"tolerance_mm must be a finite number >= 0, got {tolerance_mm}",
            attribute="tolerance_mm",
        )
    check_threshold(level, attribute="level")


# Cell corners as (row, column) offsets, with their bit in the case index.
_CORNERS = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], dtype=np.float64)  # TL, TR, BR, BL
# Local edges: 0 top (TL-TR), 1 right (TR-BR), 2 bottom (BR-BL), 3 left (BL-TL).
_EDGE_CORNERS = ((0, 1), (1, 2), (2, 3), (3, 0))
# The two edges around each corner (the segment that cuts that corner off).
_CUT = {0: (3, 0), 1: (0, 1), 2: (1, 2), 3: (2, 3)}


def _unoriented_segments(case: int, joined: bool) -> list[tuple[int, int]]:
    inside = [bool(case >> k & 1) for k in range(4)]
    count = sum(inside)
    if count in (0, 4):
        return []
    if count in (1, 3):
        odd = inside.index(count == 1)
        return [_CUT[odd]]
    if case in (5, 10):  # saddle: diagonal corners inside
        cut_state = not joined  # joined → cut off the outside corners
        return [_CUT[k] for k in range(4) if inside[k] == cut_state]
    return [(3, 1)] if case in (3, 12) else [(0, 2)]


def _orient(case: int, edges: tuple[int, int]) -> tuple[int, int]:
    """Order a segment so that inside corners lie to its left (positive cross product)."""
    mid = [_CORNERS[list(_EDGE_CORNERS[e])].mean(axis=0) for e in edges]
    direction = mid[1] - mid[0]
    sides: dict[int, set[bool]] = {1: set(), -1: set()}
    for k in range(4):
        v = _CORNERS[k] - mid[0]
        cross = direction[0] * v[1] - direction[1] * v[0]
        sides[1 if cross > 0 else -1].add(bool(case >> k & 1))
    for side, states in sides.items():
        if len(states) == 1:
            correct = (side == 1) == states.pop()
            return edges if correct else (edges[1], edges[0])
    raise AssertionError("unreachable: a segment always leaves one side uniform")


def _segment_table() -> tuple[NDArray[np.int8], NDArray[np.int8], NDArray[np.int8]]:
    """``count[variant, case]``, ``start[variant, case, k]``, ``end[variant, case, k]``."""
    count = np.zeros((2, 16), np.int8)
    start = np.zeros((2, 16, 2), np.int8)
    end = np.zeros((2, 16, 2), np.int8)
    for variant, joined in enumerate((False, True)):
        for case in range(16):
            segments = [_orient(case, s) for s in _unoriented_segments(case, joined)]
            count[variant, case] = len(segments)
            for k, (a, b) in enumerate(segments):
                start[variant, case, k], end[variant, case, k] = a, b
    return count, start, end


_COUNT, _START, _END = _segment_table()


def find_contours(image: ArrayLike, level: float = 0.5) -> list[FloatArray]:
    """Return the closed iso-contours of a 2-D image at ``level`` (marching squares).

    Parameters
    ----------
    image
        A 2-D boolean mask, or grey levels (e.g. probabilities) compared with
        ``level``; a pixel is inside when its value is ``>= level``.
    level
        The iso-level (0.5 for masks).

    Returns
    -------
    list of numpy.ndarray
        One ``(n, 2)`` array of ``(row, column)`` vertices per closed contour.
        Contours along the image border run half a pixel outside the border
        pixels' centres (on the image edge).

    Examples
    --------
    >>> find_contours([[0, 1], [0, 0]])[0].tolist()
    [[-0.5, 1.0], [0.0, 0.5], [0.5, 1.0], [0.0, 1.5]]
    """
    values = np.asarray(image)
    if values.ndim != 2:
        raise EncodingError(
            f"contours are found in 2-D images, got {values.ndim}-D", attribute="image"
        )
    values = values.astype(np.float64)
    rows, cols = values.shape[0] + 2, values.shape[1] + 2
    padded = np.zeros((rows, cols), np.float64)
    padded[1:-1, 1:-1] = values
    inside = np.zeros((rows, cols), bool)
    inside[1:-1, 1:-1] = values >= level
    case = (
        inside[:-1, :-1].astype(np.uint8)
        | inside[:-1, 1:] << 1
        | inside[1:, 1:] << 2
        | inside[1:, :-1] << 3
    )
    ci, cj = np.nonzero((case != 0) & (case != 15))
    if ci.size == 0:
        return []
    cases = case[ci, cj]
    centre = (padded[ci, cj] + padded[ci, cj + 1] + padded[ci + 1, cj] + padded[ci + 1, cj + 1]) / 4
    variant = (centre >= level).astype(np.intp)
    n = _COUNT[variant, cases]
    second = n == 2
    cell_i = np.concatenate([ci, ci[second]])
    cell_j = np.concatenate([cj, cj[second]])
    local_a = np.concatenate([_START[variant, cases, 0], _START[variant[second], cases[second], 1]])
    local_b = np.concatenate([_END[variant, cases, 0], _END[variant[second], cases[second], 1]])
    a = _edge_ids(cell_i, cell_j, local_a, rows, cols)
    b = _edge_ids(cell_i, cell_j, local_b, rows, cols)
    points = _edge_points(a, padded, level, rows, cols)
    return _chain(a, b, points)


def _edge_ids(
    i: NDArray[np.intp], j: NDArray[np.intp], local: NDArray[np.int8], rows: int, cols: int
) -> NDArray[np.int64]:
    """Global ids: horizontal edge (i, j)-(i, j+1) → i*(cols-1)+j; vertical after them."""
    n_horizontal = rows * (cols - 1)
    i64, j64 = i.astype(np.int64), j.astype(np.int64)
    choices = [
        i64 * (cols - 1) + j64,  # top
        n_horizontal + i64 * cols + j64 + 1,  # right
        (i64 + 1) * (cols - 1) + j64,  # bottom
        n_horizontal + i64 * cols + j64,  # left
    ]
    return np.choose(local.astype(np.intp), choices)


def _edge_points(
    ids: NDArray[np.int64], padded: FloatArray, level: float, rows: int, cols: int
) -> FloatArray:
    """Return the crossing point on each edge, in unpadded (row, column) coordinates."""
    n_horizontal = rows * (cols - 1)
    horizontal = ids < n_horizontal
    vertical_ids = ids - n_horizontal
    r0 = np.where(horizontal, ids // (cols - 1), vertical_ids // cols)
    c0 = np.where(horizontal, ids % (cols - 1), vertical_ids % cols)
    r1 = np.where(horizontal, r0, r0 + 1)
    c1 = np.where(horizontal, c0 + 1, c0)
    v0, v1 = padded[r0, c0], padded[r1, c1]
    on_border = (
        (np.minimum(r0, r1) == 0)
        | (np.maximum(r0, r1) == rows - 1)
        | (np.minimum(c0, c1) == 0)
        | (np.maximum(c0, c1) == cols - 1)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(on_border | (v1 == v0), 0.5, (level - v0) / (v1 - v0))
    t = np.clip(t, 0.0, 1.0)
    out = np.empty((ids.size, 2), np.float64)
    out[:, 0] = r0 + t * (r1 - r0) - 1.0
    out[:, 1] = c0 + t * (c1 - c0) - 1.0
    return out


def _chain(a: NDArray[np.int64], b: NDArray[np.int64], points: FloatArray) -> list[FloatArray]:
    """Chain directed segments ``a[k] → b[k]`` into closed polygons (vectorised)."""
    order = np.argsort(a, kind="stable")
    sorted_a = a[order]
    position = np.searchsorted(sorted_a, b)
    if np.any(position >= sorted_a.size) or np.any(sorted_a[np.minimum(position, a.size - 1)] != b):
        raise AssertionError("marching squares produced an open chain")  # pragma: no cover
    successor = order[position]
    n = a.size
    # Cycle label = smallest index on the cycle (pointer doubling).
    label = np.arange(n)
    jump = successor.copy()
    steps = max(1, int(np.ceil(np.log2(n))) + 1)
    for _ in range(steps):
        label = np.minimum(label, label[jump])
        jump = jump[jump]
    # Distance to the cycle's head (its label), by list ranking on the broken cycles.
    is_tail = successor == label  # the node just before the head
    nxt = np.where(is_tail, np.arange(n), successor)
    dist = np.where(is_tail, 0, 1)
    for _ in range(steps):
        dist = dist + dist[nxt]
        nxt = nxt[nxt]
    walk = np.lexsort((-dist, label))
    labels = label[walk]
    cuts = np.flatnonzero(np.diff(labels)) + 1
    return [np.ascontiguousarray(p) for p in np.split(points[walk], cuts)]


def signed_area(polygon: ArrayLike) -> float:
    """Signed area (pixels²) of a ``(row, column)`` polygon: > 0 outer, < 0 hole."""
    p = np.asarray(polygon, dtype=np.float64)
    r, c = p[:, 0], p[:, 1]
    return float(0.5 * np.sum(r * np.roll(c, -1) - c * np.roll(r, -1)))


def remove_collinear(polygon: ArrayLike, *, atol: float = 1e-9) -> FloatArray:
    """Drop vertices lying on the straight line between their neighbours (lossless).

    Examples
    --------
    >>> remove_collinear([[0, 0], [0, 1], [0, 2], [2, 2], [2, 0]]).tolist()
    [[0.0, 0.0], [0.0, 2.0], [2.0, 2.0], [2.0, 0.0]]
    """
    p = np.asarray(polygon, dtype=np.float64)
    if len(p) <= 3:
        return p
    before = p - np.roll(p, 1, axis=0)
    after = np.roll(p, -1, axis=0) - p
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    dot = np.einsum("ij,ij->i", before, after)
    keep = (np.abs(cross) > atol) | (dot <= 0)
    if keep.sum() < 3:
        return p
    kept: FloatArray = p[keep]
    return kept


def simplify(polygon: ArrayLike, tolerance: float) -> FloatArray:
    """Douglas-Peucker simplification of a closed polygon.

    Every removed vertex lies within ``tolerance`` of the simplified polygon
    (same units as the coordinates); at least three vertices are kept.

    Examples
    --------
    >>> square = [[0, 0], [0, 1], [0.05, 2], [0, 3], [3, 3], [3, 0]]
    >>> simplify(square, 0.1).tolist()
    [[0.0, 0.0], [0.0, 3.0], [3.0, 3.0], [3.0, 0.0]]
    """
    p = np.asarray(polygon, dtype=np.float64)
    n = len(p)
    if tolerance <= 0 or n <= 3:
        return p
    far = int(np.argmax(np.sum((p - p[0]) ** 2, axis=1)))
    if far == 0:
        return p[:1]
    closed = np.concatenate([p, p[:1]])
    keep = _douglas_peucker(closed, [0, far, n], tolerance)
    if keep[:n].sum() < 3:
        # A sliver thinner than the tolerance: anchor at its middles too and simplify
        # again, so every dropped vertex is still within the tolerance of the result.
        keep = _douglas_peucker(closed, [0, far // 2, far, (far + n) // 2, n], tolerance)
    kept: FloatArray = closed[:n][keep[:n]]
    return kept


def _douglas_peucker(closed: FloatArray, anchors: list[int], tolerance: float) -> NDArray[np.bool_]:
    """Return which vertices to keep: the anchors, and vertices further than ``tolerance``."""
    keep = np.zeros(len(closed), bool)
    points = sorted(set(anchors))
    keep[points] = True
    stack = list(pairwise(points))
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        inner = closed[first + 1 : last]
        distance = _segment_distance(inner, closed[first], closed[last])
        worst = int(np.argmax(distance))
        if distance[worst] > tolerance:
            split = first + 1 + worst
            keep[split] = True
            stack.append((first, split))
            stack.append((split, last))
    return keep


def _segment_distance(points: FloatArray, start: FloatArray, end: FloatArray) -> FloatArray:
    direction = end - start
    length2 = float(direction @ direction)
    if length2 == 0.0:
        return np.asarray(np.linalg.norm(points - start, axis=1))
    t = np.clip((points - start) @ direction / length2, 0.0, 1.0)
    nearest = start + t[:, None] * direction
    return np.asarray(np.linalg.norm(points - nearest, axis=1))


def simplify_polygons(
    polygons: Sequence[FloatArray],
    tolerance: float,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
) -> list[FloatArray]:
    """Remove collinear vertices, then simplify within ``tolerance`` (in scaled units).

    Parameters
    ----------
    polygons
        ``(row, column)`` polygons.
    tolerance
        Largest distance of a removed vertex from the result, in the units of
        ``scale`` (mm when ``scale`` is the pixel spacing); 0 removes only
        collinear vertices (lossless).
    scale
        Size of a pixel along rows and columns (``PixelSpacing``).
    """
    factor = np.asarray(scale, dtype=np.float64)
    out = []
    for polygon in polygons:
        p = remove_collinear(polygon)
        if tolerance > 0:
            p = simplify(p * factor, tolerance) / factor
        out.append(p)
    return out


def nest_polygons(polygons: Sequence[FloatArray]) -> list[tuple[FloatArray, list[FloatArray]]]:
    """Group hole boundaries with the outer boundary that directly encloses them.

    Parameters
    ----------
    polygons
        Polygons from :func:`find_contours` (outer boundaries positive, holes
        negative :func:`signed_area`).

    Returns
    -------
    list of (outer, holes)
    """
    areas = [signed_area(p) for p in polygons]
    outers = [k for k, a in enumerate(areas) if a > 0]
    groups: dict[int, list[FloatArray]] = {k: [] for k in outers}
    for k, area in enumerate(areas):
        if area > 0:
            continue
        probe = polygons[k][0]
        containing = [o for o in outers if _contains(polygons[o], probe) and areas[o] > -area]
        if not containing:  # pragma: no cover - marching squares always closes holes inside
            continue
        parent = min(containing, key=lambda o: areas[o])
        groups[parent].append(polygons[k])
    return [(polygons[k], groups[k]) for k in outers]


def _contains(polygon: FloatArray, point: FloatArray) -> bool:
    """Even-odd test with a ray towards +column (points on the boundary count as inside)."""
    r, c = polygon[:, 0], polygon[:, 1]
    r2, c2 = np.roll(r, -1), np.roll(c, -1)
    low, high = np.minimum(r, r2), np.maximum(r, r2)
    spans = (low <= point[0]) & (point[0] < high)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = c + (point[0] - r) * (c2 - c) / (r2 - r)
    crossings = spans & (x > point[1])
    return bool(np.count_nonzero(crossings) % 2)


def keyhole(outer: FloatArray, holes: Sequence[FloatArray]) -> FloatArray:
    """Join holes to their outer boundary with zero-width channels (one polygon).

    Each hole is bridged from its right-most vertex (largest column) along its
    row to the nearest boundary to the right, holes taken from right to left,
    so a channel never crosses another boundary. Filling the result with the
    even-odd rule gives the same region as the outer boundary and the holes
    filled together.

    Examples
    --------
    >>> outer = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
    >>> hole = np.array([[1, 1], [1, 2], [2, 2], [2, 1]], float)
    >>> keyhole(outer, [hole]).tolist()  # doctest: +NORMALIZE_WHITESPACE
    [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [1.0, 4.0], [1.0, 2.0], [2.0, 2.0], [2.0, 1.0],
     [1.0, 1.0], [1.0, 2.0], [1.0, 4.0], [0.0, 4.0]]
    """
    merged = np.asarray(outer, dtype=np.float64)
    pending = sorted(
        (np.asarray(h, dtype=np.float64) for h in holes), key=lambda h: -float(h[:, 1].max())
    )
    for hole in pending:
        start = int(np.argmax(hole[:, 1]))
        m = hole[start]
        edge, point = _nearest_crossing(merged, m)
        ring = np.roll(hole, -start, axis=0)
        insert = np.concatenate([[point], ring, [m], [point]])
        merged = np.concatenate([merged[: edge + 1], insert, merged[edge + 1 :]])
    repeated = np.all(merged == np.roll(merged, -1, axis=0), axis=1)
    result: FloatArray = merged[~repeated]
    return result


def _nearest_crossing(polygon: FloatArray, m: FloatArray) -> tuple[int, FloatArray]:
    """Edge index and point where the ray from ``m`` towards +column first meets ``polygon``."""
    r, c = polygon[:, 0], polygon[:, 1]
    r2, c2 = np.roll(r, -1), np.roll(c, -1)
    low, high = np.minimum(r, r2), np.maximum(r, r2)
    spans = (low <= m[0]) & (m[0] <= high) & (r != r2)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(spans, c + (m[0] - r) * (c2 - c) / (r2 - r), np.inf)
    x = np.where(x > m[1], x, np.inf)
    edge = int(np.argmin(x))
    if not np.isfinite(x[edge]):
        raise EncodingError(
            "a hole lies outside its outer boundary", attribute="mask"
        )  # pragma: no cover - nest_polygons pairs holes with enclosing outers
    return edge, np.array([m[0], x[edge]])


def slice_polygons(
    volume: NDArray[Any],
    *,
    level: float = DEFAULT_THRESHOLD,
    tolerance: float = 0.0,
    spacing: tuple[float, float] = (1.0, 1.0),
    join_holes: bool = False,
) -> Iterator[tuple[int, list[FloatArray]]]:
    """Yield ``(slice, polygons)`` for every slice of a 3-D mask with something inside.

    Parameters
    ----------
    volume
        ``[slice, row, column]`` booleans (contoured half-way between inside and
        outside pixels), or fractions in [0, 1] contoured at ``level`` with
        sub-pixel interpolation.
    level
        Iso-level of fractional input (a pixel is inside when its value is at least it).
    tolerance
        Douglas-Peucker tolerance in the units of ``spacing`` (0: lossless).
    spacing
        Pixel size along rows and columns (``PixelSpacing``).
    join_holes
        Join each outer boundary and its holes into one keyhole polygon.

    Yields
    ------
    tuple
        The slice index and its closed ``(row, column)`` polygons in pixel units of
        the whole image (outer boundaries positive :func:`signed_area`, holes negative
        unless joined).

    Examples
    --------
    >>> mask = np.zeros((2, 4, 4), bool)
    >>> mask[1, 1:3, 1:3] = True
    >>> [(k, [len(p) for p in polygons]) for k, polygons in slice_polygons(mask)]
    [(1, [8])]
    """
    binary = volume.dtype == np.bool_
    inside = binarize(volume, threshold=level)
    for k in np.flatnonzero(inside.any(axis=(1, 2))):
        rows = np.flatnonzero(inside[k].any(axis=1))
        cols = np.flatnonzero(inside[k].any(axis=0))
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, volume.shape[1])
        c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, volume.shape[2])
        crop = volume[k, r0:r1, c0:c1]
        polygons = find_contours(crop, level=0.5 if binary else level)
        polygons = simplify_polygons(polygons, tolerance, scale=spacing)
        if join_holes:
            polygons = [keyhole(outer, holes) for outer, holes in nest_polygons(polygons)]
        offset = np.array([r0, c0], np.float64)
        yield int(k), [p + offset for p in polygons]
