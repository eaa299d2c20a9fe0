"""embed_in_grid: an array on part of a grid (permuted, flipped) goes back to its voxels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from radbridge.errors import GridMismatchError
from radbridge.geometry import Volume, VolumeGeometry, embed_in_grid

RNG = np.random.default_rng(7)
ROTATION, _ = np.linalg.qr(RNG.normal(size=(3, 3)))
GRID = np.eye(4)
GRID[:3, :3] = ROTATION @ np.diag([2.5, 0.7, 0.8])
GRID[:3, 3] = [-120.0, 33.0, 7.5]
REFERENCE = VolumeGeometry((9, 11, 13), GRID)


def _part(order: tuple[int, ...], flips: tuple[bool, ...]) -> tuple[Volume, np.ndarray]:
    """A block of the grid, its axes permuted and flipped, with the affine saying so."""
    full = RNG.integers(1, 200, size=REFERENCE.shape).astype(np.uint8)
    block = (slice(2, 7), slice(3, 11), slice(0, 4))
    expected = np.zeros_like(full)
    expected[block] = full[block]
    array = full[block]
    affine = GRID.copy()
    affine[:3, 3] = (GRID @ np.array([2, 3, 0, 1.0]))[:3]
    for axis, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis)
            affine[:3, 3] += (array.shape[axis] - 1) * affine[:3, axis]
            affine[:3, axis] = -affine[:3, axis]
    array = np.transpose(array, order)
    affine[:3, :3] = affine[:3, list(order)]
    return Volume(array, affine), expected


@pytest.mark.parametrize(
    ("order", "flips"),
    [(o, f) for o in itertools.permutations(range(3)) for f in [(False,) * 3, (True, False, True)]],
)
def test_a_part_of_the_grid_is_placed_back(order, flips):
    part, expected = _part(order, flips)
    assert np.array_equal(embed_in_grid(part, REFERENCE), expected)


def test_off_lattice_and_outside_are_refused():
    part, _ = _part((0, 1, 2), (False, False, False))
    between = part.affine.copy()
    between[:3, 3] += 0.5 * GRID[:3, 0]
    with pytest.raises(GridMismatchError, match="between the source voxels"):
        embed_in_grid(Volume(part.array, between), REFERENCE)
    outside = part.affine.copy()
    outside[:3, 3] += 12 * GRID[:3, 2]  # columns 12..15 of 13
    with pytest.raises(GridMismatchError, match="outside the source grid"):
        embed_in_grid(Volume(part.array, outside), REFERENCE)
    coarse = part.affine.copy()
    coarse[:3, 1] *= 2
    with pytest.raises(GridMismatchError, match="not on the source grid"):
        embed_in_grid(Volume(part.array, coarse), REFERENCE)
