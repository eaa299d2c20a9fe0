"""Closed graphics of a presentation state back to pixel masks.

GSPS coordinates are ``(column, row)`` with ``(0, 0)`` at the top left corner of
the top left pixel, so the centre of pixel ``(r, c)`` is ``(c + 0.5, r + 0.5)``.
A pixel belongs to a region on an image when its centre lies inside an odd
number of the region's closed polylines there (the even-odd rule of
:func:`radbridge.iods.raster.fill_polygons`: holes stay holes), or inside one of
its circles or ellipses.

Examples
--------
>>> import numpy as np
>>> from radbridge.iods.pr.types import GraphicObject
>>> square = GraphicObject("POLYLINE", [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]])
>>> circle = GraphicObject("CIRCLE", [[4.5, 1.5], [4.5, 2.5]])
>>> region_mask([square, circle], (4, 6)).astype(int)
array([[0, 0, 0, 0, 1, 0],
       [0, 1, 1, 1, 1, 1],
       [0, 1, 1, 0, 1, 0],
       [0, 0, 0, 0, 0, 0]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from radbridge.iods.pr.types import GraphicObject, GraphicType
from radbridge.iods.raster import fill_polygons

__all__ = ["encloses_area", "region_mask"]


def encloses_area(graphic: GraphicObject) -> bool:
    """Whether a graphic outlines pixels of the image (a closed PIXEL-relative shape)."""
    return graphic.closed and str(graphic.units) == "PIXEL"


def _centres(shape: tuple[int, int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rows, columns = shape
    x = np.arange(columns, dtype=np.float64)[None, :] + 0.5
    y = np.arange(rows, dtype=np.float64)[:, None] + 0.5
    return x, y


def _ellipse(graphic: GraphicObject, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Pixels whose centre lies inside (or on) a CIRCLE or an ELLIPSE."""
    x, y = _centres(shape)
    p = graphic.points
    if graphic.graphic_type is GraphicType.CIRCLE:
        radius2 = float(np.sum((p[1] - p[0]) ** 2))
        return np.asarray((x - p[0, 0]) ** 2 + (y - p[0, 1]) ** 2 <= radius2 * (1 + 1e-9))
    centre = (p[0] + p[1]) / 2
    major = (p[1] - p[0]) / 2
    minor = (p[3] - p[2]) / 2
    a2, b2 = float(major @ major), float(minor @ minor)
    if a2 == 0 or b2 == 0:
        return np.zeros(shape, bool)
    dx, dy = x - centre[0], y - centre[1]
    u = (dx * major[0] + dy * major[1]) / a2
    v = (dx * minor[0] + dy * minor[1]) / b2
    return np.asarray(u * u + v * v <= 1 + 1e-9)


def _fill_cropped(polygons: list[NDArray[np.float64]], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Fill ``(row, column)`` polygons on their bounding box only (an organ is small)."""
    out = np.zeros(shape, bool)
    if not polygons:
        return out
    points = np.concatenate(polygons)
    top, left = np.maximum(np.floor(points.min(axis=0)).astype(int), 0)
    bottom = min(int(np.ceil(points[:, 0].max())) + 1, shape[0])
    right = min(int(np.ceil(points[:, 1].max())) + 1, shape[1])
    if top < bottom and left < right:
        corner = np.array([top, left], np.float64)
        window = (bottom - top, right - left)
        out[top:bottom, left:right] = fill_polygons([p - corner for p in polygons], window)
    return out


def region_mask(graphics: Sequence[GraphicObject], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Return the pixels ``(rows, columns)`` that the closed graphics of one region enclose.

    Graphics that enclose no area (open polylines, points, DISPLAY-relative ones)
    are ignored; see :func:`encloses_area`.
    """
    closed = [g for g in graphics if encloses_area(g)]
    polygons = [
        g.points[:-1, ::-1] - 0.5
        for g in closed
        if g.graphic_type is not GraphicType.CIRCLE and g.graphic_type is not GraphicType.ELLIPSE
    ]
    out = _fill_cropped(polygons, shape)
    for g in closed:
        if g.graphic_type in (GraphicType.CIRCLE, GraphicType.ELLIPSE):
            out |= _ellipse(g, shape)
    return out
