"""Marching squares, simplification, keyholes and the even-odd fill, on their own."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radbridge.errors import EncodingError
from radbridge.iods.contours import (
    find_contours,
    keyhole,
    nest_polygons,
    remove_collinear,
    signed_area,
    simplify,
    simplify_polygons,
)
from radbridge.iods.raster import fill_polygons


@st.composite
def shapes_with_holes(draw, max_size: int = 40) -> np.ndarray:
    """Unions of discs and boxes, minus holes, plus islands inside the holes."""
    rows = draw(st.integers(4, max_size))
    cols = draw(st.integers(4, max_size))
    r, c = np.mgrid[:rows, :cols]
    mask = np.zeros((rows, cols), bool)

    def disc() -> np.ndarray:
        cr = draw(st.floats(-2, rows + 1))
        cc = draw(st.floats(-2, cols + 1))
        radius = draw(st.floats(0.4, max(rows, cols) / 2))
        return (r - cr) ** 2 + (c - cc) ** 2 <= radius**2

    def box() -> np.ndarray:
        r0, r1 = sorted(draw(st.integers(-1, rows)) for _ in range(2))
        c0, c1 = sorted(draw(st.integers(-1, cols)) for _ in range(2))
        return (r >= r0) & (r <= r1) & (c >= c0) & (c <= c1)

    for _ in range(draw(st.integers(1, 4))):
        mask |= disc() if draw(st.booleans()) else box()
    for _ in range(draw(st.integers(0, 3))):  # holes
        mask &= ~(disc() if draw(st.booleans()) else box())
    for _ in range(draw(st.integers(0, 2))):  # islands, possibly inside holes
        mask |= disc()
    if draw(st.booleans()):  # salt and pepper: single pixels, diagonal touches, saddles
        noise = np.random.default_rng(draw(st.integers(0, 2**16))).random((rows, cols))
        mask ^= noise < draw(st.floats(0, 0.3))
    return mask


def boundary_distances(mask: np.ndarray, polygons: list[np.ndarray]) -> tuple[float, float]:
    """Largest distance from a contour vertex to the nearest inside / outside pixel centre."""
    padded = np.pad(mask, 1)
    inside = np.argwhere(padded) - 1.0
    outside = np.argwhere(~padded) - 1.0
    vertices = np.concatenate(polygons)
    d_in = np.min(np.linalg.norm(vertices[:, None] - inside[None], axis=2), axis=1)
    d_out = np.min(np.linalg.norm(vertices[:, None] - outside[None], axis=2), axis=1)
    return float(d_in.max()), float(d_out.max())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes_with_holes())
def test_masks_with_holes_round_trip_exactly(mask):
    polygons = find_contours(mask)
    assert np.array_equal(fill_polygons(polygons, mask.shape), mask)
    lean = simplify_polygons(polygons, 0.0)
    assert np.array_equal(fill_polygons(lean, mask.shape), mask)
    joined = [keyhole(outer, holes) for outer, holes in nest_polygons(lean)]
    assert len(joined) == sum(signed_area(p) > 0 for p in polygons)
    assert np.array_equal(fill_polygons(joined, mask.shape), mask)
    if mask.any():  # every vertex lies on the boundary: half a pixel from inside and outside
        d_in, d_out = boundary_distances(mask, polygons)
        assert d_in <= 0.5 + 1e-9 and d_out <= 0.5 + 1e-9


@settings(max_examples=60, deadline=None)
@given(shapes_with_holes(max_size=30), st.floats(0.05, 2.0))
def test_simplification_stays_within_tolerance(mask, tolerance):
    polygons = simplify_polygons(find_contours(mask), 0.0)
    for polygon in polygons:
        simple = simplify(polygon, tolerance)
        assert len(simple) >= min(3, len(polygon))
        # every dropped vertex lies within the tolerance of the simplified polygon
        edges = np.stack([simple, np.roll(simple, -1, axis=0)], axis=1)
        start, end = edges[:, 0], edges[:, 1]
        d = end - start
        length2 = np.maximum((d**2).sum(axis=1), 1e-300)
        t = np.clip(((polygon[:, None] - start[None]) * d[None]).sum(axis=2) / length2, 0, 1)
        nearest = start[None] + t[..., None] * d[None]
        distance = np.linalg.norm(polygon[:, None] - nearest, axis=2).min(axis=1)
        assert distance.max() <= tolerance + 1e-9


def test_orientation_and_nesting():
    mask = np.zeros((9, 9), bool)
    mask[1:8, 1:8] = True
    mask[2:7, 2:7] = False  # hole
    mask[4, 4] = True  # island in the hole
    polygons = find_contours(mask)
    areas = sorted(signed_area(p) for p in polygons)
    assert areas[0] < 0 < areas[1] and len(polygons) == 3
    groups = nest_polygons(polygons)
    assert sorted(len(holes) for _, holes in groups) == [0, 1]
    assert np.array_equal(fill_polygons(polygons, mask.shape), mask)


def test_diagonal_pixels_are_one_region():
    mask = np.array([[1, 0], [0, 1]], bool)
    assert len(find_contours(mask)) == 1


def test_grey_levels_give_interpolated_vertices():
    image = np.zeros((3, 5))
    image[1, 1:4] = [0.5, 1.0, 0.75]
    (polygon,) = find_contours(image, level=0.5)
    # along row 1 the crossing to the right of column 3 is a third of the way (0.75 → 0)
    right = polygon[np.isclose(polygon[:, 0], 1.0)][:, 1].max()
    assert right == pytest.approx(3 + 0.25 / 0.75)
    assert fill_polygons([polygon], image.shape).sum() == 3


def test_collinear_removal_keeps_corners():
    square = np.array([[0, 0], [0, 1], [0, 2], [1, 2], [2, 2], [2, 1], [2, 0], [1, 0]], float)
    assert remove_collinear(square).tolist() == [[0, 0], [0, 2], [2, 2], [2, 0]]


def test_contours_need_2d_images():
    with pytest.raises(EncodingError, match="2-D"):
        find_contours(np.zeros((2, 2, 2)))


def test_fill_marks_pixel_centres_on_the_contour():
    # a contour through pixel centres (as OpenCV traces) includes those pixels
    square = np.array([[1, 1], [1, 3], [3, 3], [3, 1]], float)
    filled = fill_polygons([square], (5, 5))
    assert filled.sum() == 9 and filled[1:4, 1:4].all()
    # one- and two-point contours cover the centres they touch
    assert fill_polygons([np.array([[2.0, 2.0]])], (5, 5)).sum() == 1
    assert fill_polygons([np.array([[0.0, 1.0], [0.0, 3.0]])], (5, 5)).sum() == 3


def test_fill_clips_to_the_image():
    big = np.array([[-5, -5], [-5, 20], [20, 20], [20, -5]], float)
    assert fill_polygons([big], (4, 6)).all()
    assert not fill_polygons([], (4, 6)).any()
