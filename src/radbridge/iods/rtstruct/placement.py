"""Put contours (LPS, mm) on the slices of a target grid and fill them.

Each closed contour is assigned to the slice whose plane it lies on: by its
coordinates, which are authoritative; the image it references (Contour Image
Sequence) is only cross-checked. A contour a little off the plane (within the
tolerance) is projected onto it; one further away lies between slices and is
left out. When contours drawn on several planes come within the tolerance of one
slice (an ROI drawn on finer slices than the target's), only those of the plane
nearest to the slice are used: the contours of one image are combined with the
even-odd rule, and two copies of one outline from neighbouring planes would
cancel out. A closed contour of one or two points (OpenCV traces single pixels
and one-pixel lines so) covers the pixel centres it passes through. Problems
are counted and reported once per ROI, not per contour.

Examples
--------
>>> import numpy as np
>>> from radbridge.geometry import VolumeGeometry, affine_from_planes
>>> grid = VolumeGeometry((3, 8, 8), affine_from_planes([0, 0, 0], [1, 0, 0, 0, 1, 0],
...                                                      [1, 1], [0, 0, 2]))
>>> square = Contour(np.array([[2, 2, 2.01], [5, 2, 2.01], [5, 5, 2.01], [2, 5, 2.01]]))
>>> placed = place_contours([square], Target.of(grid))
>>> {k: v[0].round(2).tolist() for k, v in placed.items()}
{1: [[2.0, 2.0], [2.0, 5.0], [5.0, 5.0], [5.0, 2.0]]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import InvalidAttributeError
from radbridge.geometry import SliceRef, Volume, VolumeGeometry
from radbridge.iods.source import Series

__all__ = ["Contour", "PlacementReport", "Target", "place_contours"]

FloatArray = NDArray[np.float64]
_CLOSED = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")
#: Contours whose mean planes lie closer than this (mm) were drawn on the same plane.
SAME_PLANE_MM = 0.05


@dataclass(frozen=True, eq=False)
class Contour:
    """One contour of an ROI as stored.

    Attributes
    ----------
    points
        ``(n, 3)`` LPS coordinates in mm.
    geometric_type
        Contour Geometric Type as written (CLOSED_PLANAR, POINT, ...).
    referenced_sop_instance_uid, referenced_frame_number
        The image the contour says it lies on (Contour Image Sequence), if any.
    """

    points: FloatArray
    geometric_type: str = "CLOSED_PLANAR"
    referenced_sop_instance_uid: str | None = None
    referenced_frame_number: int | None = None

    @property
    def is_closed(self) -> bool:
        """Whether the contour encloses an area (CLOSED_PLANAR or CLOSEDPLANAR_XOR)."""
        return self.geometric_type in _CLOSED


@dataclass(frozen=True, eq=False)
class Target:
    """A grid to rasterise on: geometry, actual slice positions and slice images."""

    geometry: VolumeGeometry
    positions: FloatArray
    slice_refs: tuple[SliceRef, ...] = ()

    @classmethod
    def of(cls, target: VolumeGeometry | Series | Volume) -> Target:
        """Describe a geometry, a source series or a volume as a target."""
        if isinstance(target, Series):
            return cls(target.geometry, target.slice_positions(), target.slice_refs)
        if isinstance(target, Volume):
            positions = (
                target.acquired_positions
                if target.acquired_positions is not None
                else target.geometry.slice_positions
            )
            return cls(target.geometry, np.asarray(positions), target.slice_refs)
        return cls(target, target.slice_positions)

    @property
    def slice_spacing(self) -> float:
        """Median distance between neighbouring slice planes (1 mm for one slice)."""
        offsets = np.sort(self.positions @ self.geometry.slice_normal)
        return float(np.median(np.diff(offsets))) if len(offsets) > 1 else 1.0

    def slice_of_image(self) -> dict[tuple[str, int | None], int]:
        """Map (SOP Instance UID, frame) of each slice to its index."""
        return {(r.sop_instance_uid, r.frame_number): k for k, r in enumerate(self.slice_refs)}


@dataclass
class PlacementReport:
    """What happened to the contours of one ROI (counts for warnings)."""

    placed: int = 0
    not_closed: int = 0
    empty: int = 0
    projected: int = 0
    largest_offset_mm: float = 0.0
    between_slices: int = 0
    other_plane: int = 0
    outside_grid: int = 0
    non_planar: int = 0
    no_image_reference: int = 0
    unknown_image: int = 0
    image_mismatch: int = 0
    referenced_slices: set[int] = field(default_factory=set)

    def messages(self, tolerance_mm: float) -> list[str]:
        """One sentence per kind of problem seen."""
        tolerance = f"{tolerance_mm:.3g} mm"
        problems = (
            (self.not_closed, "POINT/OPEN contours enclose no area and were skipped"),
            (self.empty, "contours without points were skipped"),
            (
                self.projected,
                f"contours lay up to {self.largest_offset_mm:.3g} mm off their slice plane "
                f"and were projected onto it (tolerance {tolerance})",
            ),
            (
                self.between_slices,
                f"contours lie between slices (more than {tolerance} from any plane) "
                "and were left out",
            ),
            (self.outside_grid, "contours lie outside the target's slices"),
            (
                self.other_plane,
                "contours were left out: they lie on another plane than the contours "
                "nearest to the same slice (the ROI was drawn on finer slices than the "
                "target's)",
            ),
            (self.non_planar, "contours are not planar; their mean plane was used"),
            (
                self.unknown_image,
                "contours reference images that are not in the target; "
                "they were placed by their coordinates",
            ),
            (
                self.image_mismatch,
                "contours reference a different slice than the one they lie on; "
                "their coordinates were trusted",
            ),
        )
        return [f"{count} {sentence}" for count, sentence in problems if count]


def place_contours(
    contours: Sequence[Contour],
    target: Target,
    *,
    tolerance_mm: float | None = None,
    report: PlacementReport | None = None,
) -> dict[int, list[FloatArray]]:
    """Return ``{slice index: [(row, column) polygons]}`` for the closed contours.

    Parameters
    ----------
    contours
        The ROI's contours.
    target
        The grid to place them on.
    tolerance_mm
        How far off a slice plane a contour may lie and still be projected
        onto it (default: a quarter of the slice spacing).
    report
        Filled with counts of what was skipped or corrected.
    """
    report = report if report is not None else PlacementReport()
    tolerance = _tolerance(target, tolerance_mm)
    geometry = target.geometry
    directions = geometry.direction
    row_unit, col_unit = directions[:, 1], directions[:, 2]
    row_spacing, col_spacing = geometry.pixel_spacing
    by_image = target.slice_of_image()
    out: dict[int, list[FloatArray]] = {}
    for k, candidates in _by_nearest_slice(contours, target, tolerance, report).items():
        best = min(candidates, key=lambda c: c[0])[1]
        for offset, height, contour in candidates:
            if abs(height - best) > SAME_PLANE_MM:
                report.other_plane += 1
                continue
            if offset > 1e-3:
                report.projected += 1
                report.largest_offset_mm = max(report.largest_offset_mm, offset)
            _check_reference(contour, k, by_image, report)
            relative = contour.points - target.positions[k]
            polygon = np.stack(
                [relative @ row_unit / row_spacing, relative @ col_unit / col_spacing], 1
            )
            out.setdefault(k, []).append(polygon)
            report.placed += 1
    return out


def _by_nearest_slice(
    contours: Sequence[Contour], target: Target, tolerance: float, report: PlacementReport
) -> dict[int, list[tuple[float, float, Contour]]]:
    """Group closed contours by the slice within ``tolerance``: (offset, height, contour)."""
    normal = target.geometry.slice_normal
    plane_offsets = target.positions @ normal
    out: dict[int, list[tuple[float, float, Contour]]] = {}
    for contour in contours:
        if not contour.is_closed:
            report.not_closed += 1
            continue
        if len(contour.points) == 0:
            report.empty += 1
            continue
        heights = contour.points @ normal
        if float(np.ptp(heights)) > tolerance:
            report.non_planar += 1
        height = float(heights.mean())
        k = int(np.argmin(np.abs(plane_offsets - height)))
        offset = abs(float(plane_offsets[k]) - height)
        if offset > tolerance:
            inside = plane_offsets.min() - tolerance <= height <= plane_offsets.max() + tolerance
            if inside:
                report.between_slices += 1
            else:
                report.outside_grid += 1
            continue
        out.setdefault(k, []).append((offset, height, contour))
    return out


def _tolerance(target: Target, tolerance_mm: float | None) -> float:
    if tolerance_mm is not None:
        if np.isnan(tolerance_mm) or tolerance_mm < 0:
            raise InvalidAttributeError(  # it would leave every contour out
                f"the off-plane tolerance must be a number of mm >= 0, got {tolerance_mm}",
                attribute="tolerance_mm",
                hint="omit it for a quarter of the slice spacing",
            )
        return float(tolerance_mm)
    return max(0.25 * target.slice_spacing, 0.01)


def _check_reference(
    contour: Contour, k: int, by_image: dict[tuple[str, int | None], int], report: PlacementReport
) -> None:
    uid = contour.referenced_sop_instance_uid
    if uid is None:
        report.no_image_reference += 1
        return
    if not by_image:
        return
    found = by_image.get((uid, contour.referenced_frame_number))
    if found is None and contour.referenced_frame_number is None:
        found = next((s for (u, _), s in by_image.items() if u == uid), None)
    if found is None:
        report.unknown_image += 1
        return
    report.referenced_slices.add(found)
    if found != k:
        report.image_mismatch += 1
