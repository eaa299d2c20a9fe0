"""A voxel grid in patient space (:class:`VolumeGeometry`) and an array on it (:class:`Volume`).

Index order is always ``(slice, row, column)``. The 4×4 affine maps an index
``(k, r, c, 1)`` to DICOM patient coordinates (LPS, millimetres):

- column 0 is the step from one slice to the next,
- column 1 is the step from one row to the next (``ImageOrientationPatient[3:6]``
  times ``PixelSpacing[0]``),
- column 2 is the step from one column to the next (``ImageOrientationPatient[0:3]``
  times ``PixelSpacing[1]``),
- column 3 is the centre of the first voxel (``ImagePositionPatient`` of slice 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radbridge.errors import GeometryError, GridMismatchError

__all__ = ["SliceRef", "Volume", "VolumeGeometry", "affine_from_planes"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SliceRef:
    """Where one slice of a volume came from.

    Parameters
    ----------
    sop_class_uid
        SOP Class UID of the source instance.
    sop_instance_uid
        SOP Instance UID of the source instance.
    frame_number
        1-based frame number within a multi-frame instance, or ``None`` for a
        single-frame instance.
    """

    sop_class_uid: str
    sop_instance_uid: str
    frame_number: int | None = None


def affine_from_planes(
    origin: ArrayLike,
    image_orientation: ArrayLike,
    pixel_spacing: ArrayLike,
    slice_step: ArrayLike,
) -> FloatArray:
    """Build the index → LPS affine from DICOM plane attributes.

    Parameters
    ----------
    origin
        ``ImagePositionPatient`` of the first slice.
    image_orientation
        ``ImageOrientationPatient`` (row direction cosines, then column direction cosines).
    pixel_spacing
        ``PixelSpacing``: spacing between rows, then spacing between columns (mm).
    slice_step
        The vector (mm) from one slice's position to the next.

    Returns
    -------
    numpy.ndarray
        A 4×4 float64 affine.

    Examples
    --------
    >>> a = affine_from_planes([10, 20, 30], [1, 0, 0, 0, 1, 0], [0.5, 0.8], [0, 0, 2.5])
    >>> a @ [1, 2, 3, 1]
    array([12.4, 21. , 32.5,  1. ])
    """
    iop = np.asarray(image_orientation, dtype=np.float64).reshape(6)
    ps = np.asarray(pixel_spacing, dtype=np.float64).reshape(2)
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(slice_step, dtype=np.float64).reshape(3)
    affine[:3, 1] = iop[3:6] * ps[0]
    affine[:3, 2] = iop[0:3] * ps[1]
    affine[:3, 3] = np.asarray(origin, dtype=np.float64).reshape(3)
    return affine


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """A regular voxel grid in patient coordinates.

    Parameters
    ----------
    shape
        ``(slices, rows, columns)``.
    affine
        4×4 affine mapping ``(slice, row, column)`` indices to LPS millimetres.
    frame_of_reference_uid
        The Frame of Reference UID the coordinates belong to, if known.

    Examples
    --------
    >>> g = VolumeGeometry((3, 4, 5), affine_from_planes([0, 0, 0], [1, 0, 0, 0, 1, 0],
    ...                                                 [0.5, 0.5], [0, 0, 2.0]))
    >>> g.spacing
    (2.0, 0.5, 0.5)
    >>> g.index_to_lps([[2, 0, 4]]).tolist()
    [[2.0, 0.0, 4.0]]
    """

    shape: tuple[int, int, int]
    affine: FloatArray
    frame_of_reference_uid: str | None = None

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise GeometryError(
                f"an affine must be a finite 4x4 matrix, got shape {affine.shape}",
                attribute="affine",
            )
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise GeometryError(
                "the affine is singular: two axes are parallel or a spacing is zero",
                attribute="affine",
            )
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise GeometryError(
                f"a volume shape needs three positive sizes, got {self.shape}", attribute="shape"
            )
        affine.setflags(write=False)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Distance in mm between neighbouring voxel centres along (slice, row, column)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[0]), float(norms[1]), float(norms[2]))

    def spacing_array(self) -> FloatArray:
        """Return the spacings sorted (to compare grids regardless of axis order)."""
        return np.sort(np.asarray(self.spacing))

    @property
    def origin(self) -> FloatArray:
        """LPS position of the centre of voxel ``(0, 0, 0)``."""
        return np.array(self.affine[:3, 3])

    @property
    def direction(self) -> FloatArray:
        """3×3 matrix whose columns are the unit vectors of the slice, row and column axes."""
        return np.asarray(self.affine[:3, :3] / np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def image_orientation(self) -> tuple[float, ...]:
        """``ImageOrientationPatient`` of every slice (row cosines, then column cosines)."""
        d = self.direction
        return tuple(float(v) for v in (*d[:, 2], *d[:, 1]))

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """``PixelSpacing`` of every slice: (between rows, between columns)."""
        s = self.spacing
        return (s[1], s[2])

    @property
    def slice_normal(self) -> FloatArray:
        """Unit normal of the image planes (row cosines × column cosines)."""
        d = self.direction
        n = np.cross(d[:, 2], d[:, 1])
        return np.asarray(n / np.linalg.norm(n))

    @property
    def slice_positions(self) -> FloatArray:
        """``ImagePositionPatient`` of each slice, shape ``(slices, 3)``."""
        k = np.arange(self.shape[0], dtype=np.float64)
        return np.asarray(self.affine[:3, 3] + np.outer(k, self.affine[:3, 0]))

    def index_to_lps(self, indices: ArrayLike) -> FloatArray:
        """Map ``(..., 3)`` voxel indices (slice, row, column) to LPS millimetres."""
        idx = np.asarray(indices, dtype=np.float64)
        return np.asarray(idx @ self.affine[:3, :3].T + self.affine[:3, 3])

    def lps_to_index(self, points: ArrayLike) -> FloatArray:
        """Map ``(..., 3)`` LPS points to (fractional) voxel indices."""
        pts = np.asarray(points, dtype=np.float64)
        inverse = np.linalg.inv(self.affine)
        return np.asarray(pts @ inverse[:3, :3].T + inverse[:3, 3])

    def is_close(self, other: VolumeGeometry, *, atol: float = 1e-4) -> bool:
        """Tell whether two grids have the same shape and voxel centres within ``atol`` mm.

        The frame of reference is compared too when both are known.
        """
        if self.shape != other.shape:
            return False
        if (
            self.frame_of_reference_uid
            and other.frame_of_reference_uid
            and self.frame_of_reference_uid != other.frame_of_reference_uid
        ):
            return False
        corners = np.array(
            [
                [k, r, c]
                for k in (0, self.shape[0] - 1)
                for r in (0, self.shape[1] - 1)
                for c in (0, self.shape[2] - 1)
            ],
            dtype=np.float64,
        )
        return bool(
            np.allclose(
                self.index_to_lps(corners), other.index_to_lps(corners), atol=atol, rtol=0.0
            )
        )

    def require_same_grid(self, other: VolumeGeometry, *, what: str, atol: float = 1e-3) -> None:
        """Raise :class:`~radbridge.errors.GridMismatchError` unless ``other`` is this grid."""
        if self.shape != other.shape:
            raise GridMismatchError(
                f"{what} has shape {other.shape} but the reference grid is {self.shape}",
                attribute="shape",
                hint="resample it onto the reference series, or pass it in the reference's "
                "slice order as given by `radbridge info --json`",
            )
        if not self.is_close(other, atol=atol):
            worst = float(np.max(np.abs(self.affine - other.affine)))
            raise GridMismatchError(
                f"{what} lies on a different grid than the reference (affines differ by up to "
                f"{worst:.4g} mm)",
                attribute="affine",
                hint="check that it was made from the same series, and that its orientation "
                "was not flipped on export",
            )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description (shape, spacing, affine, frame of reference)."""
        return {
            "shape": list(self.shape),
            "spacing": [round(s, 6) for s in self.spacing],
            "affine": [[float(v) for v in row] for row in self.affine],
            "frame_of_reference_uid": self.frame_of_reference_uid,
        }


@dataclass(frozen=True, eq=False)
class Volume:
    """A NumPy array on a patient-space grid.

    Parameters
    ----------
    array
        Voxel values, indexed ``[slice, row, column]``.
    affine
        4×4 affine mapping indices to LPS millimetres (see the module docstring).
    frame_of_reference_uid
        Frame of Reference UID of the coordinates.
    slice_refs
        For each slice, the source instance (and frame) it was read from; empty
        when the volume was not read from DICOM.
    acquired_positions
        For each slice, ``ImagePositionPatient`` as stored in the source, when it
        differs from the regular grid (series read with non-uniform spacing
        allowed); ``None`` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> vol = Volume(np.zeros((2, 3, 4), np.int16), np.diag([2.0, 0.5, 0.5, 1.0]))
    >>> vol.shape, vol.spacing
    ((2, 3, 4), (2.0, 0.5, 0.5))
    >>> vol.with_array(np.ones((2, 3, 4), bool)).array.dtype
    dtype('bool')
    """

    array: NDArray[Any]
    affine: FloatArray
    frame_of_reference_uid: str | None = None
    slice_refs: tuple[SliceRef, ...] = ()
    acquired_positions: FloatArray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise GeometryError(
                f"a volume array must be 3-D [slice, row, column], got {array.ndim}-D",
                attribute="array",
            )
        geometry = VolumeGeometry(
            (array.shape[0], array.shape[1], array.shape[2]),
            self.affine,
            self.frame_of_reference_uid,
        )
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", geometry.affine)
        object.__setattr__(self, "_geometry", geometry)
        if self.slice_refs and len(self.slice_refs) != array.shape[0]:
            raise GeometryError(
                f"{len(self.slice_refs)} slice references for {array.shape[0]} slices",
                attribute="slice_refs",
            )

    @classmethod
    def from_geometry(
        cls,
        array: NDArray[Any],
        geometry: VolumeGeometry,
        *,
        slice_refs: Sequence[SliceRef] = (),
    ) -> Volume:
        """Put ``array`` on ``geometry``; the shapes must agree."""
        if tuple(array.shape) != geometry.shape:
            raise GridMismatchError(
                f"array has shape {tuple(array.shape)} but the grid is {geometry.shape}",
                attribute="shape",
            )
        return cls(array, geometry.affine, geometry.frame_of_reference_uid, tuple(slice_refs))

    @property
    def geometry(self) -> VolumeGeometry:
        """The grid this volume lies on."""
        geometry: VolumeGeometry = self.__dict__["_geometry"]
        return geometry

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, columns)``."""
        return self.geometry.shape

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing in mm along (slice, row, column)."""
        return self.geometry.spacing

    def with_array(self, array: NDArray[Any]) -> Volume:
        """Return a volume on the same grid (and sources) holding ``array``."""
        if tuple(array.shape) != self.shape:
            raise GridMismatchError(
                f"array has shape {tuple(array.shape)} but the volume is {self.shape}",
                attribute="shape",
            )
        return Volume(
            array,
            self.affine,
            self.frame_of_reference_uid,
            self.slice_refs,
            self.acquired_positions,
        )
