"""Bridges between :class:`~radbridge.geometry.Volume` and NIfTI, NRRD, SimpleITK.

These conversions live at the edge: inside radbridge every volume is
``[slice, row, column]`` with an LPS affine.

- NIfTI (nibabel) uses RAS and voxel axes ``(i, j, k)``; radbridge writes
  ``i = column, j = row, k = slice`` (the layout dcm2niix produces) and reads
  any NIfTI affine back without resampling.
- SimpleITK uses LPS and ``(x, y, z) = (column, row, slice)``; its direction
  matrix must be orthonormal, so a sheared grid (gantry tilt) cannot be given
  to ITK.

nibabel and SimpleITK come with ``pip install 'radbridge[nifti]'``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge._optional import require
from radbridge.errors import (
    DicomReadError,
    GeometryError,
    RadbridgeError,
    UnsupportedObjectError,
)
from radbridge.geometry import Volume, VolumeGeometry

__all__ = [
    "read_image",
    "read_images",
    "volume_from_nifti",
    "volume_from_sitk",
    "volume_to_nifti",
    "volume_to_sitk",
    "write_image",
    "write_images",
]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Permutes (slice, row, column) index columns into (column, row, slice) and back.
_SWAP = np.array(
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
_INTEGERS = ("b1", "u1", "i1", "u2", "i2", "u4", "i4")  # booleans are written as uint8
#: Voxel types (NumPy kind and size) each writer takes: nibabel writes 64-bit integers
#: only when told to ("may cause incompatibilities with other tools"); SimpleITK has no
#: complex vector images; radbridge's own NRRD writer (.nrrd) writes no complex type.
_WRITABLE = {
    "NIfTI": (*_INTEGERS, "f4", "f8", "c8", "c16"),
    "NRRD": (*_INTEGERS, "u8", "i8", "f4", "f8"),
    "NRRD/MetaImage": (*_INTEGERS, "u8", "i8", "f4", "f8", "c8", "c16"),
    "multi-component NRRD/MetaImage": (*_INTEGERS, "u8", "i8", "f4", "f8"),
}


def volume_to_nifti(volume: Volume) -> Any:
    """Return a ``nibabel.Nifti1Image`` of the volume (RAS affine, i=column, j=row, k=slice).

    Examples
    --------
    >>> import numpy as np
    >>> from radbridge.geometry import Volume, VolumeGeometry
    >>> vol = Volume(np.zeros((2, 3, 4), np.int16), np.diag([2.0, 0.5, 0.7, 1.0]))
    >>> img = volume_to_nifti(vol)
    >>> img.shape, [round(float(v), 4) for v in img.header.get_zooms()]
    ((4, 3, 2), [0.7, 0.5, 2.0])
    >>> back = volume_from_nifti(img)
    >>> bool(np.allclose(back.affine, vol.affine))
    True
    """
    _check_dtype(volume.array.dtype, "NIfTI")
    nib = require("nibabel", "nifti", purpose="write NIfTI")
    data = np.ascontiguousarray(np.transpose(volume.array, (2, 1, 0)))
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    return _nifti_image(nib, data, _LPS_TO_RAS @ volume.affine @ _SWAP)


def _nifti_image(nib: Any, data: NDArray[Any], affine: NDArray[np.float64]) -> Any:
    """Return a NIfTI-1 image whose sform holds ``affine`` (RAS) exactly.

    The qform (a rotation, zooms and an offset) holds it too when its axes are
    orthogonal. A sheared grid (gantry tilt) has no qform (code 0): nibabel would
    write the closest rotation instead, and readers that prefer the qform (ITK,
    hence SimpleITK, Slicer, nnU-Net) would place voxels millimetres away without a
    word; with code 0 they use the sform or refuse.
    """
    image = nib.Nifti1Image(data, affine)
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    orthogonal = np.allclose(axes.T @ axes, np.eye(3), atol=1e-6)
    image.header.set_qform(affine if orthogonal else None, code=1 if orthogonal else 0)
    image.header.set_sform(affine, code=1)
    return image


def volume_from_nifti(image: Any, *, frame_of_reference_uid: str | None = None) -> Volume:
    """Return a volume from a ``nibabel`` image (any affine, no resampling)."""
    return _nifti_volume(image, np.asanyarray(image.dataobj), frame_of_reference_uid)


def _nifti_volume(image: Any, data: NDArray[Any], frame_of_reference_uid: str | None) -> Volume:
    """Return the volume of a NIfTI image whose voxels ``data`` are read already."""
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise UnsupportedObjectError(
            f"a {data.ndim}-D NIfTI image cannot be one volume",
            attribute="dim",
            hint="read 4-D images (one volume per segment or channel) with read_images()",
        )
    affine = _LPS_TO_RAS @ np.asarray(image.affine, dtype=np.float64) @ _SWAP
    return Volume(np.transpose(data, (2, 1, 0)), affine, frame_of_reference_uid)


def volume_to_sitk(volume: Volume) -> Any:
    """Return a ``SimpleITK.Image`` of the volume (LPS, x=column, y=row, z=slice)."""
    _check_dtype(volume.array.dtype, "NRRD/MetaImage")
    sitk = require("SimpleITK", "nifti", purpose="convert to SimpleITK")
    direction = _itk_direction(volume)
    array = volume.array.astype(np.uint8) if volume.array.dtype == np.bool_ else volume.array
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    spacing = volume.spacing
    image.SetSpacing((spacing[2], spacing[1], spacing[0]))
    image.SetOrigin(tuple(float(v) for v in volume.geometry.origin))
    xyz = direction[:, [2, 1, 0]]
    image.SetDirection(tuple(float(v) for v in xyz.reshape(-1)))
    return image


def _itk_direction(volume: Volume) -> NDArray[np.float64]:
    """Return the grid's direction cosines; refuse a sheared grid, as ITK images cannot hold it."""
    direction = volume.geometry.direction
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        raise GeometryError(
            "the grid is sheared (e.g. gantry tilt), which ITK images cannot represent",
            attribute="affine",
            hint="resample onto an orthogonal grid, or use NIfTI, which keeps the full affine",
        )
    return direction


def volume_from_sitk(image: Any, *, frame_of_reference_uid: str | None = None) -> Volume:
    """Return a volume from a 3-D ``SimpleITK.Image``."""
    sitk = require("SimpleITK", "nifti", purpose="convert from SimpleITK")
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise UnsupportedObjectError(
            f"expected a 3-D scalar image, got {image.GetDimension()}-D with "
            f"{image.GetNumberOfComponentsPerPixel()} components",
            attribute="dimension",
            hint="read images with one volume per segment or channel with read_images()",
        )
    array: NDArray[Any] = sitk.GetArrayFromImage(image)
    return Volume(array, _sitk_affine(image, 3), frame_of_reference_uid)


def _sitk_affine(image: Any, dimension: int) -> NDArray[np.float64]:
    """Return the LPS affine of an ITK image's first three axes (slice, row, column order)."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dimension, dimension)
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)[:3]
    affine = np.eye(4)
    xyz = direction[:3, :3] * spacing  # columns scaled by x, y, z spacing
    affine[:3, 0] = xyz[:, 2]
    affine[:3, 1] = xyz[:, 1]
    affine[:3, 2] = xyz[:, 0]
    affine[:3, 3] = np.asarray(image.GetOrigin(), dtype=np.float64)[:3]
    return affine


def _check_dtype(dtype: np.dtype[Any], kind: str, path: Path | None = None) -> None:
    """Refuse voxels of a type the ``kind`` of file (a :data:`_WRITABLE` key) cannot hold.

    Raises
    ------
    UnsupportedObjectError
        Naming the type and those that can be written (e.g. float16: cast to float32).
    """
    writable = _WRITABLE[kind]
    if f"{dtype.kind}{dtype.itemsize}" in writable:
        return
    names = ", ".join(str(np.dtype(code)) for code in writable if code != "b1")
    raise UnsupportedObjectError(
        f"{dtype} voxels cannot be written as {kind}",
        path=path,
        attribute="dtype",
        hint=f"cast the array to one of {names} first (e.g. float16 to float32, int64 to "
        "int32 when its values fit, else float64)",
    )


def _writer_kind(suffix: str, *, components: bool = False) -> str | None:
    """Return the :data:`_WRITABLE` key of a file suffix; None when it is not an image's."""
    if suffix in _NIFTI_SUFFIXES:
        return "NIfTI"
    if suffix not in _ITK_SUFFIXES:
        return None
    if components:
        return "multi-component NRRD/MetaImage"
    return "NRRD" if suffix == ".nrrd" else "NRRD/MetaImage"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_image(
    path: str | os.PathLike[str], *, frame_of_reference_uid: str | None = None
) -> Volume:
    """Read a NIfTI (``.nii``, ``.nii.gz``) or ITK (``.nrrd``, ``.mha``, ``.mhd``) image.

    Raises
    ------
    UnsupportedObjectError
        Unknown file type, or more than one volume in the file.
    DicomReadError
        The file cannot be read.
    """
    volumes = read_images(path, frame_of_reference_uid=frame_of_reference_uid)
    if len(volumes) != 1:
        raise UnsupportedObjectError(
            f"the image holds {len(volumes)} volumes (a 4-D or multi-component image), not one",
            path=Path(path),
            attribute="dim",
            hint="read it with read_images() (one volume per segment or channel)",
        )
    return volumes[0]


def write_image(volume: Volume, path: str | os.PathLike[str]) -> Path:
    """Write a volume as NIfTI or NRRD/MetaImage, chosen by the file suffix.

    Raises
    ------
    UnsupportedObjectError
        Unknown suffix, or voxels of a type the file cannot hold (float16 anywhere,
        64-bit integers in NIfTI, complex numbers in ``.nrrd``).
    GeometryError
        A sheared grid (gantry tilt) for NRRD/MetaImage, which cannot hold it.
    """
    p = Path(path)
    suffix = _suffix(p)
    kind = _writer_kind(suffix)
    if kind is not None:
        _check_dtype(volume.array.dtype, kind, p)
    if suffix in _NIFTI_SUFFIXES:
        nib = require("nibabel", "nifti", purpose="write NIfTI")
        nib.save(volume_to_nifti(volume), p)
        return p
    if suffix == ".nrrd" and volume.array.ndim == 3:  # no SimpleITK import (~0.05 s)
        from radbridge.io.nrrd import write_nrrd

        _itk_direction(volume)  # the same refusal as through SimpleITK
        return write_nrrd(volume, p)
    if suffix in _ITK_SUFFIXES:
        sitk = require("SimpleITK", "nifti", purpose="write NRRD/MetaImage")
        sitk.WriteImage(volume_to_sitk(volume), str(p), True)
        return p
    raise UnsupportedObjectError(
        f"unknown image file type {suffix!r}", path=p, hint="use .nii.gz or .nrrd"
    )


def read_images(
    path: str | os.PathLike[str], *, frame_of_reference_uid: str | None = None
) -> list[Volume]:
    """Read a 3-D or 4-D NIfTI/NRRD/MetaImage: one volume per segment or channel.

    A 4-D NIfTI gives one volume per index of its 4th axis; an ITK image with
    several components per voxel (Slicer's ``.seg.nrrd``) or a 4th axis gives one
    volume per component; a 3-D image gives a list of one.

    Raises
    ------
    UnsupportedObjectError
        Unknown file type, or an image of more than four dimensions.
    DicomReadError
        The file cannot be read.
    """
    p = Path(path)
    suffix = _suffix(p)
    if suffix in _NIFTI_SUFFIXES:
        nib = require("nibabel", "nifti", purpose="read NIfTI")
        with _reading(p):
            image = nib.load(p)
            data = np.asanyarray(image.dataobj)  # the voxels, read once
        if data.ndim != 4:
            return [_nifti_volume(image, data, frame_of_reference_uid)]
        affine = _LPS_TO_RAS @ np.asarray(image.affine, dtype=np.float64) @ _SWAP
        return [
            Volume(np.transpose(data[..., i], (2, 1, 0)), affine, frame_of_reference_uid)
            for i in range(data.shape[3])
        ]
    if suffix == ".nrrd":  # a plain 3-D NRRD without SimpleITK (its import: ~0.1 s)
        from radbridge.io.nrrd import read_nrrd

        with _reading(p):
            volume = read_nrrd(p)
        if volume is not None:
            return [Volume(volume.array, volume.affine, frame_of_reference_uid)]
    if suffix in _ITK_SUFFIXES:
        sitk = require("SimpleITK", "nifti", purpose="read NRRD/MetaImage")
        with _reading(p):
            itk_image = sitk.ReadImage(str(p))
        return _itk_volumes(itk_image, frame_of_reference_uid)
    raise UnsupportedObjectError(
        f"unknown image file type {suffix!r}",
        path=p,
        hint="use .nii, .nii.gz, .nrrd, .mha or .mhd",
    )


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn what nibabel, SimpleITK or the NRRD parser raise on a damaged file into DicomReadError.

    Only the reading itself runs inside: an error in radbridge's own conversion
    afterwards is not mistaken for a damaged file.
    """
    try:
        yield
    except RadbridgeError:
        raise
    except Exception as exc:  # the libraries raise many types on damaged files
        raise DicomReadError(
            f"cannot be read as an image ({type(exc).__name__}: {exc})",
            path=path,
            hint="check that the file is complete",
        ) from exc


def _itk_volumes(image: Any, frame_of_reference_uid: str | None) -> list[Volume]:
    sitk = require("SimpleITK", "nifti", purpose="read NRRD/MetaImage")
    dimension = image.GetDimension()
    if dimension not in (3, 4) or (dimension == 4 and image.GetNumberOfComponentsPerPixel() > 1):
        raise UnsupportedObjectError(
            f"a {dimension}-D image with {image.GetNumberOfComponentsPerPixel()} components "
            "cannot be read as volumes",
            attribute="dimension",
            hint="give a 3-D image, a 3-D image with one component per segment, or a 4-D one",
        )
    affine = _sitk_affine(image, dimension)
    array: NDArray[Any] = sitk.GetArrayFromImage(image)
    if dimension == 4:  # array [t, z, y, x]
        return [Volume(array[i], affine, frame_of_reference_uid) for i in range(array.shape[0])]
    if image.GetNumberOfComponentsPerPixel() > 1:  # array [z, y, x, component]
        return [
            Volume(np.ascontiguousarray(array[..., i]), affine, frame_of_reference_uid)
            for i in range(array.shape[3])
        ]
    return [Volume(array, affine, frame_of_reference_uid)]


def write_images(
    stacked: NDArray[Any], geometry: VolumeGeometry, path: str | os.PathLike[str]
) -> Path:
    """Write ``[segment, slice, row, column]`` as one 4-D NIfTI or a multi-component NRRD.

    NIfTI: axes ``(i, j, k, segment)`` with i = column, j = row, k = slice (as
    :func:`write_image`); NRRD/MetaImage: one component per segment, as 3D
    Slicer stores segmentations.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> from radbridge.geometry import VolumeGeometry
    >>> grid = VolumeGeometry((2, 3, 4), np.diag([2.0, 1.0, 1.0, 1.0]))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stack.nii.gz"
    >>> _ = write_images(np.ones((5, 2, 3, 4), bool), grid, path)
    >>> [v.shape for v in read_images(path)][:2], len(read_images(path))
    ([(2, 3, 4), (2, 3, 4)], 5)
    """
    p = Path(path)
    array = np.asarray(stacked)
    if array.ndim != 4 or array.shape[1:] != geometry.shape:
        raise UnsupportedObjectError(
            f"stacked masks have shape {array.shape}, not [segment, *{geometry.shape}]",
            attribute="stacked",
        )
    suffix = _suffix(p)
    kind = _writer_kind(suffix, components=True)
    if kind is not None:
        _check_dtype(array.dtype, kind, p)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if suffix in _NIFTI_SUFFIXES:
        nib = require("nibabel", "nifti", purpose="write NIfTI")
        data = np.ascontiguousarray(np.transpose(array, (3, 2, 1, 0)))
        nib.save(_nifti_image(nib, data, _LPS_TO_RAS @ geometry.affine @ _SWAP), p)
        return p
    if suffix in _ITK_SUFFIXES:
        sitk = require("SimpleITK", "nifti", purpose="write NRRD/MetaImage")
        template = volume_to_sitk(Volume.from_geometry(array[0], geometry))
        image = sitk.GetImageFromArray(
            np.ascontiguousarray(np.moveaxis(array, 0, -1)), isVector=True
        )
        image.CopyInformation(template)
        sitk.WriteImage(image, str(p), True)
        return p
    raise UnsupportedObjectError(
        f"unknown image file type {suffix!r}", path=p, hint="use .nii.gz or .nrrd"
    )
