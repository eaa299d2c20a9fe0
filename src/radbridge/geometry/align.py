"""Bring an array onto a reference grid when it differs only by axis order or direction.

Masks exported through NIfTI often come back with flipped or swapped axes
(RAS vs LPS conventions, i/j/k order). :func:`align_to_grid` finds the axis
permutation and flips that put every voxel on the reference voxel at the same
LPS point, and refuses anything that would need resampling.

Examples
--------
>>> import numpy as np
>>> from radbridge.geometry import Volume, VolumeGeometry
>>> ref = VolumeGeometry((2, 3, 4), np.diag([2.0, 1.0, 0.5, 1.0]))
>>> flipped_affine = ref.affine.copy()
>>> flipped_affine[:3, 3] += flipped_affine[:3, 0]          # start at the last slice
>>> flipped_affine[:3, 0] *= -1
>>> data = np.arange(24).reshape(2, 3, 4)
>>> moved = align_to_grid(Volume(data[::-1], flipped_affine), ref)
>>> bool(np.array_equal(moved, data))
True
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import GridMismatchError
from radbridge.geometry.volume import Volume, VolumeGeometry

__all__ = ["align_to_grid"]


def align_to_grid(volume: Volume, reference: VolumeGeometry, *, atol: float = 1e-2) -> NDArray[Any]:
    """Return ``volume.array`` rearranged onto ``reference`` (no resampling).

    Parameters
    ----------
    volume
        The array and its own grid.
    reference
        The grid to match.
    atol
        Largest distance (mm) between matched voxel centres (NIfTI stores
        affines in single precision).

    Raises
    ------
    GridMismatchError
        No axis permutation and flip makes the grids coincide.
    """
    if (
        volume.frame_of_reference_uid
        and reference.frame_of_reference_uid
        and volume.frame_of_reference_uid != reference.frame_of_reference_uid
    ):
        raise GridMismatchError(
            "the array is in another frame of reference",
            attribute="FrameOfReferenceUID",
            hint="use a mask made from this series",
        )
    for order in itertools.permutations(range(3)):
        shape = tuple(volume.shape[i] for i in order)
        if shape != reference.shape:
            continue
        array = np.transpose(volume.array, order)
        affine = volume.affine.copy()
        affine[:3, :3] = volume.affine[:3, list(order)]
        for axis in range(3):
            if float(np.dot(affine[:3, axis], reference.affine[:3, axis])) < 0:
                array = np.flip(array, axis=axis)
                affine[:3, 3] += (shape[axis] - 1) * affine[:3, axis]
                affine[:3, axis] = -affine[:3, axis]
        candidate = VolumeGeometry(reference.shape, affine, reference.frame_of_reference_uid)
        if candidate.is_close(reference, atol=atol):
            return np.ascontiguousarray(array)
    worst = float(np.max(np.abs(volume.geometry.spacing_array() - reference.spacing_array())))
    raise GridMismatchError(
        f"the array's grid {volume.shape} (spacing {_fmt(volume.spacing)} mm) does not match "
        f"the source grid {reference.shape} (spacing {_fmt(reference.spacing)} mm)"
        + (f"; spacings differ by up to {worst:.3g} mm" if worst > atol else ""),
        attribute="affine",
        hint="the mask must be on the source series' voxels (same size, spacing, position); "
        "resample it onto the source first",
    )


def _fmt(values: tuple[float, ...]) -> str:
    return " x ".join(f"{v:.4g}" for v in values)
