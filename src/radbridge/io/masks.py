"""Read a mask (or map) file onto a source grid: NIfTI, NRRD/MetaImage or ``.npy``.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from radbridge.geometry import VolumeGeometry
>>> grid = VolumeGeometry((2, 3, 4), np.diag([2.0, 1.0, 1.0, 1.0]))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.npy"
>>> np.save(path, np.zeros((2, 3, 4), np.uint8))
>>> read_mask(path, grid).shape
(2, 3, 4)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import GridMismatchError, UnsupportedObjectError
from radbridge.geometry import Volume, VolumeGeometry, align_to_grid, crop_of_grid, embed_in_grid
from radbridge.io.arrays import load_array
from radbridge.io.nifti import read_images

__all__ = ["place_on_grid", "read_map", "read_mask"]


def read_mask(path: str | os.PathLike[str], geometry: VolumeGeometry) -> NDArray[Any]:
    """Return the array in ``path`` on ``geometry`` (``[slice, row, column]``).

    NIfTI and NRRD files carry their own geometry: an array that differs from the
    grid only by axis order or direction is re-oriented
    (:func:`~radbridge.geometry.align_to_grid`); one that covers part of the grid
    on its voxels (dcmqi writes a SEG's frames so) is placed into it, zero
    elsewhere (:func:`~radbridge.geometry.embed_in_grid`); anything else is refused. A 4-D
    NIfTI (or a multi-component NRRD, as 3D Slicer writes) gives
    ``[segment, slice, row, column]``, one volume per segment. A ``.npy`` array
    must already be ``[slice, row, column]`` (or with a leading segment axis) in
    the grid's slice order, as ``radbridge info --json`` lists it.

    Raises
    ------
    GridMismatchError
        The array is not on the grid (the message names the file).
    UnsupportedObjectError
        The file does not exist or its type is unknown.
    """
    p = Path(path)
    if not p.exists():
        raise UnsupportedObjectError("no such mask file", path=p, hint="check the path")
    if p.suffix.lower() == ".npy":
        array = load_array(p)
        grid = array.shape[1:] if array.ndim == 4 else array.shape
        if tuple(grid) != geometry.shape:
            raise GridMismatchError(
                f"mask has shape {array.shape}; the source grid is {geometry.shape}",
                path=p,
                attribute="shape",
                hint="a .npy mask is [slice, row, column] (or [segment, slice, row, column]) "
                "in the slice order of `radbridge info --json`",
            )
        return array
    return _placed(p, read_images(p), geometry)


def _placed(p: Path, volumes: list[Volume], geometry: VolumeGeometry) -> NDArray[Any]:
    """Return the volumes read from ``p`` on ``geometry`` (stacked when several)."""
    try:
        aligned = [place_on_grid(volume, geometry) for volume in volumes]
    except GridMismatchError as exc:
        raise _naming(p, exc) from None
    return aligned[0] if len(aligned) == 1 else np.stack(aligned)


def _naming(p: Path, exc: GridMismatchError) -> GridMismatchError:
    """Return ``exc`` naming the file it is about."""
    return GridMismatchError(exc.message, path=p, attribute=exc.attribute, hint=exc.hint)


def read_map(path: str | os.PathLike[str], geometry: VolumeGeometry) -> NDArray[Any] | Volume:
    """Return the map in ``path`` on ``geometry``, or on the part of it the map covers.

    As :func:`read_mask`, except that a NIfTI/NRRD map covering part of the grid
    keeps its own extent (:func:`~radbridge.geometry.crop_of_grid`, a
    :class:`~radbridge.geometry.Volume` on the grid's lattice) instead of being
    padded with 0: in a map of real values (ADC, T1, SUV) 0 is a value.

    Raises
    ------
    GridMismatchError
        The map is not on the grid's lattice (the message names the file).
    UnsupportedObjectError
        The file does not exist or its type is unknown.
    """
    p = Path(path)
    if p.suffix.lower() == ".npy" or not p.exists():
        return read_mask(p, geometry)
    volumes = read_images(p)
    if len(volumes) != 1:
        return _placed(p, volumes, geometry)  # read once, not again by read_mask
    try:
        return align_to_grid(volumes[0], geometry)
    except GridMismatchError as whole:
        try:
            return crop_of_grid(volumes[0], geometry)
        except GridMismatchError:
            raise _naming(p, whole) from None


def place_on_grid(volume: Volume, geometry: VolumeGeometry) -> NDArray[Any]:
    """Return ``volume``'s array on ``geometry``: re-oriented, or placed into part of it.

    :func:`~radbridge.geometry.align_to_grid` for an array of the whole grid,
    :func:`~radbridge.geometry.embed_in_grid` for one covering part of it (as dcmqi
    writes a SEG's frames); the error of the first when neither fits.
    """
    try:
        return align_to_grid(volume, geometry)
    except GridMismatchError as whole:
        try:
            return embed_in_grid(volume, geometry)
        except GridMismatchError:
            raise whole from None
