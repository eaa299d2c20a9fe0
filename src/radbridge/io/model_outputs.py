"""What segmentation frameworks write, onto a source grid: TotalSegmentator, nnU-Net, MONAI.

- **TotalSegmentator** writes a folder with one binary NIfTI per structure, named by
  the structure (``liver.nii.gz``, ``kidney_left.nii.gz``, ...):
  :func:`read_mask_folder` reads it as one label map (or stacked masks where
  structures overlap), the names to be coded by radbridge's name table
  (``docs/codes.md``); empty structures are left out and listed.
- **nnU-Net** saves class probabilities as ``.npz`` (``probabilities``, or
  ``softmax`` in version 1) indexed ``[class, z, y, x]``, the array order
  SimpleITK gives the image the model read: :func:`read_probabilities` puts them on
  the source grid through that image's geometry (or takes them in radbridge's
  ``[slice, row, column]`` order when no image is given).
- **MONAI** (``LoadImage`` / ``MetaTensor``) holds an array indexed ``[channel, i,
  j, k]`` and a 4×4 affine from ``(i, j, k)`` to RAS millimetres
  (``tensor.affine``): :func:`mask_from_ijk` turns that pair into an array on the
  source grid, without resampling and without MONAI installed.

Examples
--------
>>> import numpy as np
>>> from radbridge.geometry import VolumeGeometry
>>> axial = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1]], float)
>>> grid = VolumeGeometry((2, 3, 4), axial)  # LPS: x = column, y = row, z = 2 * slice
>>> ras = np.diag([-1.0, -1.0, 2.0, 1.0])  # (i, j, k) = (column, row, slice) in RAS
>>> ijk = np.zeros((4, 3, 2), np.uint8)
>>> ijk[3, 0, 1] = 1  # column 3, row 0, slice 1
>>> mask_from_ijk(ijk, ras, grid, channel_first=False)[1, 0, 3]
np.uint8(1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import (
    ConfigError,
    GridMismatchError,
    RadbridgeError,
    UnsupportedObjectError,
)
from radbridge.geometry import Volume, VolumeGeometry
from radbridge.io.masks import place_on_grid, read_mask
from radbridge.io.nifti import read_images

__all__ = ["MaskFolder", "mask_from_ijk", "read_mask_folder", "read_probabilities"]

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Permutes (i, j, k) index columns into (slice, row, column) = (k, j, i).
_KJI = np.array(
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


@dataclass(frozen=True)
class MaskFolder:
    """One mask per structure, read from a folder onto a source grid.

    Attributes
    ----------
    array
        A label map ``[slice, row, column]`` (label ``n`` is ``names[n - 1]``), or
        when structures overlap, stacked masks ``[structure, slice, row, column]``.
    names
        The structures with voxels, in file-name order.
    empty
        The structures whose masks hold no voxel (left out).
    """

    array: NDArray[Any]
    names: tuple[str, ...]
    empty: tuple[str, ...]

    @property
    def labels(self) -> dict[int, str]:
        """``{1: name, 2: name, ...}``: the labels.json the names make."""
        return {k + 1: name for k, name in enumerate(self.names)}


def _structure(path: Path) -> str | None:
    name = path.name
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def read_mask_folder(folder: str | os.PathLike[str], geometry: VolumeGeometry) -> MaskFolder:
    """Read a folder of one-mask-per-structure images (TotalSegmentator's layout).

    Every ``NAME.nii.gz`` (or ``.nii``, ``.nrrd``, ``.mha``) is one structure;
    voxels > 0 are inside. Each file is put on ``geometry`` like ``--mask``
    (re-oriented, never resampled).

    Raises
    ------
    UnsupportedObjectError
        The folder does not exist or holds no mask image.
    GridMismatchError
        A mask is not on the source grid (the message names the file).
    """
    root = Path(folder)
    if not root.is_dir():
        raise UnsupportedObjectError("no such folder", path=root, hint="check the path")
    files = sorted(
        (name, p) for p in root.iterdir() if p.is_file() and (name := _structure(p)) is not None
    )
    if not files:
        raise UnsupportedObjectError(
            "the folder holds no mask image (NAME.nii.gz, .nii, .nrrd, .mha)",
            path=root,
            hint="give the folder TotalSegmentator wrote its segmentations to",
        )
    dtype = np.uint8 if len(files) < 256 else np.uint16
    labels = np.zeros(geometry.shape, dtype)
    masks: list[NDArray[np.bool_]] = []
    names: list[str] = []
    empty: list[str] = []
    overlap = False
    for name, path in files:
        mask = np.asarray(read_mask(path, geometry)) > 0
        if not mask.any():
            empty.append(name)
            continue
        names.append(name)
        overlap = overlap or bool((labels[mask] > 0).any())
        labels[mask & (labels == 0)] = len(names)
        masks.append(mask)
    if overlap:
        return MaskFolder(np.stack(masks).astype(np.uint8), tuple(names), tuple(empty))
    return MaskFolder(labels, tuple(names), tuple(empty))


def mask_from_ijk(
    array: NDArray[Any],
    affine: NDArray[Any],
    geometry: VolumeGeometry,
    *,
    space: str = "RAS",
    channel_first: bool = True,
) -> NDArray[Any]:
    """Put an ``[i, j, k]`` array with its affine (MONAI's MetaTensor) on ``geometry``.

    Parameters
    ----------
    array
        ``[channel, i, j, k]`` (``channel_first``, MONAI's layout) or ``[i, j, k]``.
    affine
        4×4 affine from ``(i, j, k, 1)`` to millimetres in ``space``: MONAI's
        ``tensor.affine`` (RAS unless its reader was told otherwise).
    geometry
        The source grid (``series.geometry``).
    space
        ``"RAS"`` (NIfTI, MONAI) or ``"LPS"`` (DICOM, ITK).

    Returns
    -------
    numpy.ndarray
        ``[slice, row, column]``, or ``[channel, slice, row, column]``, on the grid:
        axes permuted and flipped, or placed into part of it, never resampled.

    Raises
    ------
    GridMismatchError
        The array's voxels are not the source's.
    """
    if space.upper() not in ("RAS", "LPS"):
        raise ConfigError(f"unknown space {space!r}", attribute="space", hint="use RAS or LPS")
    data = np.asarray(array)
    if data.ndim != (4 if channel_first else 3):
        raise GridMismatchError(
            f"expected a {'[channel, i, j, k]' if channel_first else '[i, j, k]'} array, "
            f"got {data.ndim}-D",
            attribute="array",
        )
    matrix = np.asarray(affine, dtype=np.float64)
    if space.upper() == "RAS":
        matrix = _LPS_FROM_RAS @ matrix
    lps = matrix @ _KJI  # (slice, row, column) = (k, j, i) -> LPS
    channels = data if channel_first else data[np.newaxis]
    placed = [place_on_grid(Volume(np.transpose(c, (2, 1, 0)), lps), geometry) for c in channels]
    return np.stack(placed) if channel_first else placed[0]


def read_probabilities(
    path: str | os.PathLike[str],
    geometry: VolumeGeometry,
    *,
    image: str | os.PathLike[str] | None = None,
) -> NDArray[np.float32]:
    """Read nnU-Net's ``.npz`` class probabilities ``[class, ...]`` onto ``geometry``.

    With ``image`` (the NIfTI/NRRD the model was run on), the arrays are in that
    image's ``[z, y, x]`` voxel order (SimpleITK's, which nnU-Net uses) and take its
    geometry; without it they must already be ``[slice, row, column]`` in the
    source's slice order (as ``radbridge info --json`` lists it). Background
    included: drop class 0 yourself if the model has one.

    Raises
    ------
    UnsupportedObjectError
        The file is not such an archive.
    GridMismatchError
        The arrays are not on the grid.
    """
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as archive:
            key = next((k for k in ("probabilities", "softmax") if k in archive.files), None)
            if key is None:
                raise UnsupportedObjectError(
                    f"no 'probabilities' (or 'softmax') array among {archive.files}",
                    path=p,
                    hint="give the .npz nnU-Net wrote with --save_probabilities",
                )
            data = np.asarray(archive[key], dtype=np.float32)
    except RadbridgeError:
        raise
    except Exception as exc:  # NumPy and zipfile raise many types on damaged archives
        raise UnsupportedObjectError(
            f"cannot read the archive ({type(exc).__name__}: {str(exc)[:120]})", path=p
        ) from exc
    if data.ndim != 4:
        raise GridMismatchError(
            f"probabilities must be [class, z, y, x], got shape {data.shape}", path=p
        )
    if image is None:
        if data.shape[1:] != geometry.shape:
            raise GridMismatchError(
                f"probabilities have shape {data.shape}; the source grid is {geometry.shape}",
                path=p,
                attribute="shape",
                hint="give the image the model read (--npz-image) to take its geometry",
            )
        return data
    (reference,) = read_images(image)[:1]
    if data.shape[1:] != reference.shape:
        raise GridMismatchError(
            f"probabilities have shape {data.shape}; the image {image} is {reference.shape}",
            path=p,
            attribute="shape",
        )
    return np.stack([place_on_grid(Volume(c, reference.affine), geometry) for c in data])
