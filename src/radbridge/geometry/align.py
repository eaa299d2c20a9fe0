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

__all__ = ["align_to_grid", "crop_of_grid", "embed_in_grid"]


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
    _check_frame(volume, reference)
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


def _check_frame(volume: Volume, reference: VolumeGeometry) -> None:
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


def embed_in_grid(volume: Volume, reference: VolumeGeometry, *, atol: float = 1e-2) -> NDArray[Any]:
    """Return ``volume.array`` placed into ``reference`` when its voxels lie on that lattice.

    For an array on a part of the grid, e.g. the frames a SEG holds as dcmqi's
    ``segimage2itkimage`` writes them: every voxel centre must coincide with a
    voxel of ``reference`` (axes may be permuted or flipped, no resampling); the
    voxels outside the array are 0.

    Raises
    ------
    GridMismatchError
        The voxels do not lie on the reference lattice, or fall outside it.

    Examples
    --------
    >>> grid = VolumeGeometry((4, 2, 2), np.eye(4))
    >>> shifted = np.eye(4)
    >>> shifted[0, 3] = 1.0  # slices 1 and 2 of the grid (slice axis along x here)
    >>> part = Volume(np.ones((2, 2, 2), np.uint8), shifted)
    >>> embed_in_grid(part, grid)[:, 0, 0].tolist()
    [0, 1, 1, 0]
    """
    array, box = _on_lattice(volume, reference, atol)
    out = np.zeros(reference.shape, volume.array.dtype)
    out[box] = array
    return out


def crop_of_grid(volume: Volume, reference: VolumeGeometry, *, atol: float = 1e-2) -> Volume:
    """Return ``volume`` on the part of ``reference`` it covers, on the reference's lattice.

    The reference's axes and spacing, the array's own extent: no voxel outside it
    is made up.

    Where :func:`embed_in_grid` fills the rest of the grid with 0, this keeps the
    array's own box, e.g. for a map whose 0 would be a value (an ADC map of a
    cropped prostate region). The result carries the reference's frame of reference.
    It raises :class:`~radbridge.errors.GridMismatchError` as :func:`embed_in_grid` does.

    Examples
    --------
    >>> flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    >>> flipped[0, 3] = 2.0  # slices 2 and 1 of a 4-slice grid, in that order
    >>> map_ = Volume(np.array([20.0, 10.0]).reshape(2, 1, 1), flipped)
    >>> part = crop_of_grid(map_, VolumeGeometry((4, 1, 1), np.eye(4)))
    >>> part.array.ravel().tolist(), part.affine[0, 3].item()
    ([10.0, 20.0], 1.0)
    """
    array, box = _on_lattice(volume, reference, atol)
    start = np.array([b.start for b in box] + [1], dtype=float)
    affine = reference.affine.copy()
    affine[:, 3] = reference.affine @ start
    return Volume(array, affine, reference.frame_of_reference_uid)


def _on_lattice(
    volume: Volume, reference: VolumeGeometry, atol: float
) -> tuple[NDArray[Any], tuple[slice, slice, slice]]:
    """Return ``volume.array`` in the reference's axis order and the box of the grid it fills.

    Raises
    ------
    GridMismatchError
        The voxels are not on the reference lattice, or reach outside it.
    """
    _check_frame(volume, reference)
    index = np.linalg.inv(reference.affine) @ volume.affine  # volume index -> reference index
    turn, shift = index[:3, :3], index[:3, 3]
    tolerance = atol / float(min(reference.spacing))
    axes = np.argmax(np.abs(turn), axis=0)  # the reference axis of each volume axis
    signs = np.sign(turn[axes, range(3)])
    exact = np.zeros((3, 3))
    exact[axes, range(3)] = signs
    if sorted(axes.tolist()) != [0, 1, 2] or not np.allclose(turn, exact, atol=tolerance):
        raise GridMismatchError(
            "the array's voxels are not on the source grid (other orientation or spacing)",
            attribute="affine",
            hint="resample the mask onto the source series first",
        )
    if not np.allclose(shift, np.rint(shift), atol=tolerance):
        raise GridMismatchError(
            "the array's voxels fall between the source voxels",
            attribute="affine",
            hint="resample the mask onto the source series first",
        )
    order = [int(np.where(axes == b)[0][0]) for b in range(3)]
    array = np.transpose(volume.array, order)
    starts = []
    for b, a in enumerate(order):
        if signs[a] < 0:
            array = np.flip(array, axis=b)
        first = int(np.rint(shift[b])) - (volume.shape[a] - 1 if signs[a] < 0 else 0)
        starts.append(first)
    stops = [start + n for start, n in zip(starts, array.shape, strict=True)]
    if min(starts) < 0 or any(stop > n for stop, n in zip(stops, reference.shape, strict=True)):
        raise GridMismatchError(
            f"the array reaches outside the source grid {reference.shape}",
            attribute="affine",
            hint="crop or resample the mask onto the source series first",
        )
    box = tuple(slice(a, b) for a, b in zip(starts, stops, strict=True))
    return array, (box[0], box[1], box[2])


def _fmt(values: tuple[float, ...]) -> str:
    return " x ".join(f"{v:.4g}" for v in values)
