"""Order image planes into one stack and check that they form a regular grid.

This works on plane descriptions only (positions, orientations, spacings), so
it can describe a series without decoding a single pixel. Slices are ordered
along the slice normal (row cosines × column cosines), never by Instance
Number or file name.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from radbridge.errors import (
    GeometryError,
    MissingAttributeError,
    OrientationError,
    SlicePositionError,
    SliceSpacingError,
)
from radbridge.geometry.volume import FloatArray, SliceRef, VolumeGeometry, affine_from_planes

__all__ = ["PlaneInfo", "StackPlan", "plan_stack"]

log = logging.getLogger(__name__)

#: Largest difference between direction cosines of two slices still taken as equal.
ORIENTATION_TOLERANCE = 1e-4
#: Largest distance (mm) between two positions that counts as "the same position".
DUPLICATE_TOLERANCE_MM = 1e-3
#: Largest off-normal part of the slice step still taken as rounding noise in Image
#: Position (Patient), not as shear (gantry tilt): it must stay within both limits.
#: Over the whole stack, 0.01 mm (the tolerance positions already get for lying on one
#: line; positions written with 3 decimals, as many scanners and converters write them,
#: leave at most 0.0017 mm, whatever the stack's length). Per mm along the normal,
#: 1e-3 (a tilt of 0.057 degrees; a 0.5 degree gantry tilt is 8.7e-3, so every real
#: tilt keeps its sheared affine, even over a stack too short for the first limit).
ROUNDING_SHEAR_MM = 0.01
ROUNDING_SHEAR_SLOPE = 1e-3


@dataclass(frozen=True)
class PlaneInfo:
    """The geometry of one image plane (a single-frame instance or one frame).

    Parameters
    ----------
    source
        Where the plane came from, for messages (a path, or ``path [frame N]``).
    ref
        The instance (and frame) the plane belongs to.
    rows, columns
        Matrix size.
    position
        ``ImagePositionPatient``, or ``None`` when absent.
    orientation
        ``ImageOrientationPatient``, or ``None`` when absent.
    pixel_spacing
        ``PixelSpacing``, or ``None`` when absent.
    slice_thickness, spacing_between_slices
        Used only to give a single-slice volume its third spacing.
    """

    source: str
    ref: SliceRef
    rows: int
    columns: int
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, ...] | None
    slice_thickness: float | None = None
    spacing_between_slices: float | None = None


@dataclass(frozen=True, eq=False)
class StackPlan:
    """The result of :func:`plan_stack`.

    Attributes
    ----------
    order
        Indices into the input planes, in slice order.
    geometry
        The regular grid the planes form.
    acquired_positions
        Actual positions in slice order when non-uniform spacing was accepted,
        else ``None``.
    """

    order: tuple[int, ...]
    geometry: VolumeGeometry
    acquired_positions: FloatArray | None = None


def _require(plane: PlaneInfo, value: object, attribute: str) -> None:
    if value is None:
        raise MissingAttributeError(
            "image has no plane geometry, so it cannot be placed in a volume",
            path=plane.source,
            attribute=attribute,
            hint="remove localizers, screenshots and reports from the input, or read the "
            "image on its own",
        )


def _check_orientation(planes: Sequence[PlaneInfo]) -> np.ndarray:
    orientations = np.array([p.orientation for p in planes], dtype=np.float64)
    reference = orientations[0]
    deviation = np.abs(orientations - reference).max(axis=1)
    worst = int(np.argmax(deviation))
    if deviation[worst] > ORIENTATION_TOLERANCE:
        raise OrientationError(
            f"slices have different orientations ({planes[0].source} has "
            f"{_fmt(reference)}, this one {_fmt(orientations[worst])})",
            path=planes[worst].source,
            attribute="ImageOrientationPatient",
            hint="the input mixes several stacks (e.g. axial and sagittal); read each series "
            "or stack on its own",
        )
    row, col = reference[:3], reference[3:]
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(float(np.dot(row, col))) > 1e-3
    ):
        raise OrientationError(
            f"direction cosines {_fmt(reference)} are not two orthogonal unit vectors",
            path=planes[0].source,
            attribute="ImageOrientationPatient",
            hint="the file is damaged or was written by a faulty converter",
        )
    # Re-orthonormalise the tiny residual error that DS rounding leaves.
    row = row / np.linalg.norm(row)
    col = col - np.dot(col, row) * row
    col = col / np.linalg.norm(col)
    return np.concatenate([row, col])


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def plan_stack(
    planes: Sequence[PlaneInfo],
    *,
    frame_of_reference_uid: str | None = None,
    spacing_tolerance: float = 0.01,
    allow_nonuniform_spacing: bool = False,
) -> StackPlan:
    """Order planes along the slice normal and build their common grid.

    Parameters
    ----------
    planes
        One entry per slice, in any order.
    frame_of_reference_uid
        Stored on the resulting geometry.
    spacing_tolerance
        Largest accepted deviation of any slice step from the mean step, as a
        fraction of the mean step (0.01 = 1 %).
    allow_nonuniform_spacing
        Accept steps outside the tolerance: the grid then uses the mean step and
        the actual positions are kept in :attr:`StackPlan.acquired_positions`
        (a warning is issued).

    Returns
    -------
    StackPlan

    Raises
    ------
    MissingAttributeError
        A plane lacks position, orientation or pixel spacing.
    OrientationError
        Orientations differ or are not orthonormal.
    SlicePositionError
        Two planes share a position, or the positions do not lie on one line.
    SliceSpacingError
        The slice steps are not uniform and ``allow_nonuniform_spacing`` is false.
    GeometryError
        Matrix sizes or pixel spacings differ.

    Examples
    --------
    >>> from radbridge.geometry.volume import SliceRef
    >>> planes = [
    ...     PlaneInfo(f"s{z}", SliceRef("1.2", f"1.2.{z}"), 4, 4, (0.0, 0.0, float(z)),
    ...               (1, 0, 0, 0, 1, 0), (0.5, 0.5))
    ...     for z in (5, 0, 10)
    ... ]
    >>> plan = plan_stack(planes)
    >>> plan.order, plan.geometry.spacing
    ((1, 0, 2), (5.0, 0.5, 0.5))
    """
    if not planes:
        raise GeometryError("no image planes to build a volume from", attribute="planes")
    for plane in planes:
        _require(plane, plane.position, "ImagePositionPatient")
        _require(plane, plane.orientation, "ImageOrientationPatient")
        _require(plane, plane.pixel_spacing, "PixelSpacing")
    first = planes[0]
    _check_matrix(planes)
    orientation = _check_orientation(planes)
    pixel_spacing = _check_pixel_spacing(planes)
    positions = np.array([p.position for p in planes], dtype=np.float64)
    normal = np.cross(orientation[:3], orientation[3:])
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    names = [planes[int(i)].source for i in order]
    if len(planes) == 1:
        thickness = first.spacing_between_slices or first.slice_thickness or 1.0
        step = normal * float(thickness)
    else:
        _check_positions(positions, normal, names, spacing_tolerance)
        step = _snap_to_normal(
            (positions[-1] - positions[0]) / (len(planes) - 1), normal, len(planes)
        )
    acquired = None
    if len(planes) > 2:
        acquired = _check_spacing(
            positions @ normal, names, spacing_tolerance, allow_nonuniform_spacing
        )
    geometry = VolumeGeometry(
        (len(planes), first.rows, first.columns),
        affine_from_planes(positions[0], orientation, pixel_spacing, step),
        frame_of_reference_uid,
    )
    return StackPlan(tuple(int(i) for i in order), geometry, positions if acquired else None)


def _snap_to_normal(step: FloatArray, normal: FloatArray, count: int) -> FloatArray:
    """Return the slice step, put onto the normal when its off-normal part is rounding noise.

    Positions rounded to a few decimals tilt the step a little off the normal; kept,
    that noise would make an orthogonal grid sheared, which ITK images (NRRD,
    MetaImage, SimpleITK) cannot hold. A real gantry tilt is far above the limits
    (:data:`ROUNDING_SHEAR_MM`, :data:`ROUNDING_SHEAR_SLOPE`) and is kept.

    Parameters
    ----------
    step
        The mean step between consecutive slice positions (mm, LPS).
    normal
        The unit slice normal; ``step`` points along it (positions are sorted).
    count
        The number of slices.
    """
    along = float(step @ normal)
    off = float(np.linalg.norm(step - along * normal))
    if off * (count - 1) <= ROUNDING_SHEAR_MM and off <= ROUNDING_SHEAR_SLOPE * along:
        return normal * along
    return step


def _check_matrix(planes: Sequence[PlaneInfo]) -> None:
    first = planes[0]
    for plane in planes:
        if (plane.rows, plane.columns) != (first.rows, first.columns):
            raise GeometryError(
                f"matrix size {plane.rows}x{plane.columns} differs from {first.rows}x"
                f"{first.columns} in {first.source}",
                path=plane.source,
                attribute="Rows/Columns",
                hint="the input mixes series or stacks; read each on its own",
            )


def _check_pixel_spacing(planes: Sequence[PlaneInfo]) -> FloatArray:
    spacings = np.array([p.pixel_spacing for p in planes], dtype=np.float64)
    if np.any(spacings <= 0):
        bad = int(np.argmin(spacings.min(axis=1)))
        raise GeometryError(
            "pixel spacing must be positive",
            path=planes[bad].source,
            attribute="PixelSpacing",
        )
    off = np.abs(spacings - spacings[0]).max(axis=1)
    if off.max() > 1e-4 * max(1.0, float(spacings[0].max())):
        bad = int(np.argmax(off))
        raise GeometryError(
            f"pixel spacing {spacings[bad].tolist()} differs from {spacings[0].tolist()}",
            path=planes[bad].source,
            attribute="PixelSpacing",
            hint="the input mixes series or reconstructions; read each on its own",
        )
    return np.asarray(spacings[0])


def _check_positions(
    positions: FloatArray, normal: FloatArray, names: list[str], spacing_tolerance: float
) -> None:
    """Refuse duplicate positions and positions off one line (sorted input)."""
    gaps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    dup = int(np.argmin(gaps))
    if gaps[dup] < DUPLICATE_TOLERANCE_MM:
        raise SlicePositionError(
            f"two images share the position {_fmt(positions[dup])} (the other is {names[dup]})",
            path=names[dup + 1],
            attribute="ImagePositionPatient",
            hint="the series holds several images per position (echoes, phases or time "
            "points); split it, e.g. by EchoNumbers or TemporalPositionIdentifier",
        )
    distance = positions @ normal
    span = positions[-1] - positions[0]
    total = distance[-1] - distance[0]
    expected = positions[0] + np.outer((distance - distance[0]) / total, span)
    off_line = np.linalg.norm(positions - expected, axis=1)
    mean_step = total / (len(positions) - 1)
    if off_line.max() > max(0.01, spacing_tolerance * mean_step):
        bad = int(np.argmax(off_line))
        raise SlicePositionError(
            f"slice positions do not lie on one line ({off_line[bad]:.3g} mm off)",
            path=names[bad],
            attribute="ImagePositionPatient",
            hint="the input mixes several stacks; read each series or stack on its own",
        )


def _check_spacing(
    distance: FloatArray, names: list[str], tolerance: float, allow_nonuniform: bool
) -> bool:
    """Return whether non-uniform spacing was accepted; raise unless allowed."""
    steps = np.diff(distance)
    mean_step = (distance[-1] - distance[0]) / (len(distance) - 1)
    deviation = np.abs(steps - mean_step)
    if deviation.max() <= tolerance * mean_step:
        return False
    bad = int(np.argmax(deviation))
    message = (
        f"slice spacing is not uniform: step {steps[bad]:.4g} mm after {names[bad]}, "
        f"mean {mean_step:.4g} mm"
    )
    if not allow_nonuniform:
        raise SliceSpacingError(
            message,
            path=names[bad + 1],
            attribute="ImagePositionPatient",
            hint="a slice may be missing; pass allow_nonuniform_spacing=True "
            "(CLI: --allow-nonuniform) to accept the mean spacing",
        )
    warnings.warn(f"{message}; using the mean spacing", stacklevel=4)
    log.warning("non-uniform slice spacing accepted (mean %.4g mm)", mean_step)
    return True
