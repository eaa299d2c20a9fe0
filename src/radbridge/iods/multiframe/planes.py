"""Where the frames of a multi-frame object lie: the one plane-geometry reader.

Reading, :class:`FramePlanes` gives a SEG's or a Parametric Map's own grid
(:meth:`~FramePlanes.geometry`: spanning its frames at their slice spacing) and
places its frames on a target grid (:meth:`~FramePlanes.slice_indices`: the
source series, its geometry, or any grid of the same frame of reference; by
acquired position for a source with non-uniform spacing, by source reference for
frames without positions). :meth:`~FramePlanes.placement` also places frames that
cover a rectangle of the target's plane on its lattice (a map of a crop), as a
:class:`FramePlacement`. Writing, :func:`on_source_grid` checks that an array
(or a :class:`~radbridge.geometry.Volume`) fits the source series.

Examples
--------
>>> import numpy as np
>>> from radbridge.geometry import Volume
>>> from radbridge.iods.source import Series
>>> source = Series.from_volume(Volume(np.zeros((3, 4, 4)), np.eye(4), "1.2.3"))
>>> array, grid, same = on_source_grid(np.zeros((3, 4, 4)), source, what="mask",
...                                    attribute="mask", register_hint="", shape_hint="")
>>> grid.shape, same
((3, 4, 4), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.errors import DecodingError, GridMismatchError, UnsupportedObjectError
from radbridge.geometry import Volume, VolumeGeometry, affine_from_planes
from radbridge.iods.multiframe.fast_read import plane_attributes
from radbridge.iods.multiframe.frame_index import FrameIndex
from radbridge.iods.source import Series

__all__ = ["FramePlacement", "FramePlanes", "on_source_grid"]

#: How far (in voxels) a frame may lie off the grid it is placed on.
_OFF_GRID = 0.01


def on_source_grid(
    values: NDArray[Any] | Volume,
    source: Series,
    *,
    what: str,
    attribute: str,
    register_hint: str,
    shape_hint: str,
    stacked: str | None = None,
) -> tuple[NDArray[Any], VolumeGeometry, bool]:
    """Return the array, its grid, and whether that grid is the source's.

    An array must have the source grid's shape (after a leading axis when ``stacked``
    names it, e.g. ``"segment"``); a Volume may lie on another grid of the source's
    frame of reference.

    Raises
    ------
    GridMismatchError
        The Volume has another frame of reference, or the array another shape.
    """
    if isinstance(values, Volume):
        if (
            values.frame_of_reference_uid
            and values.frame_of_reference_uid != source.frame_of_reference_uid
        ):
            raise GridMismatchError(
                f"the {what}'s frame of reference differs from the source's",
                attribute="FrameOfReferenceUID",
                hint=register_hint,
            )
        geometry = VolumeGeometry(values.shape, values.affine, source.frame_of_reference_uid)
        return values.array, geometry, geometry.is_close(source.geometry, atol=1e-3)
    array = np.asarray(values)
    grid = array.shape[1:] if stacked else array.shape
    if tuple(grid) != source.geometry.shape:
        raise GridMismatchError(
            f"{what} has shape {tuple(array.shape)} but the source grid is "
            f"{source.geometry.shape} [slice, row, column]"
            + (f" after the {stacked} axis" if stacked else ""),
            attribute=attribute,
            hint=shape_hint,
        )
    return array, source.geometry, True


@dataclass(frozen=True, eq=False)
class FramePlacement:
    """Where each frame of a multi-frame object lies on a target grid.

    Attributes
    ----------
    slices
        The target slice of each frame.
    rows, columns
        The first target row and column each frame covers (0 for whole planes).
    frame_shape
        ``(Rows, Columns)`` of every frame.

    Examples
    --------
    >>> at = FramePlacement(np.array([1]), np.array([1]), np.array([2]), (1, 2))
    >>> out = np.zeros((3, 2, 4), int)
    >>> at.fill(out, np.array([[[7, 8]]]))
    >>> out[1].tolist(), at.covers(out.shape)
    ([[0, 0, 0, 0], [0, 0, 7, 8]], False)
    """

    slices: NDArray[np.int64]
    rows: NDArray[np.int64]
    columns: NDArray[np.int64]
    frame_shape: tuple[int, int]

    def _boxes(self) -> list[tuple[NDArray[np.intp], slice, slice]]:
        """Return the frames of each in-plane offset, and the rows and columns they cover."""
        height, width = self.frame_shape
        offsets = np.column_stack([self.rows, self.columns])
        boxes = []
        for row, column in np.unique(offsets, axis=0).tolist():
            which = np.flatnonzero((offsets[:, 0] == row) & (offsets[:, 1] == column))
            boxes.append((which, slice(row, row + height), slice(column, column + width)))
        return boxes

    def fill(self, out: NDArray[Any], frames: NDArray[Any]) -> None:
        """Write ``frames`` (``[frame, row, column]``) into ``out`` at their places."""
        for which, rows, columns in self._boxes():
            out[self.slices[which], rows, columns] = frames[which]

    def covers(self, shape: tuple[int, ...]) -> bool:
        """Whether the frames cover every voxel of a grid of ``shape``."""
        if tuple(self.frame_shape) == tuple(shape[1:]) and not (
            self.rows.any() or self.columns.any()
        ):
            return bool(np.isin(np.arange(shape[0]), self.slices).all())
        covered = np.zeros(shape, np.bool_)
        for which, rows, columns in self._boxes():
            covered[self.slices[which], rows, columns] = True
        return bool(covered.all())


@dataclass(frozen=True, eq=False)
class FramePlanes:
    """The planes of a multi-frame object's frames, for placing them on a grid.

    Parameters
    ----------
    dataset
        The object (its shared/first-frame functional groups give orientation,
        pixel spacing and the declared slice step).
    frames
        Each frame's position and source reference.
    rows, columns
        The frame matrix.
    source
        Name for messages.
    what
        The object's name in messages (``"SEG"``, ``"map"``).
    frames_hint
        How to read its frames without a grid (for objects without positions).
    """

    dataset: Dataset
    frames: FrameIndex
    rows: int
    columns: int
    source: str | None
    what: str
    frames_hint: str

    @property
    def frame_of_reference_uid(self) -> str | None:
        """The object's Frame of Reference UID, if it has one."""
        value = self.dataset.get("FrameOfReferenceUID")
        return str(value) if value else None

    @property
    def _own_hint(self) -> str:
        return f"read the {self.what} on its own grid (geometry(), or no target)"

    def orientation(self) -> tuple[list[float], list[float], float | None]:
        """Image Orientation, Pixel Spacing and declared slice step (shared or first frame).

        Raises
        ------
        DecodingError
            The functional groups hold no orientation or pixel spacing.
        """
        orientation, spacing, declared = plane_attributes(self.dataset, self.source)
        if orientation is None or spacing is None:
            raise DecodingError(
                "no plane orientation or pixel spacing in the functional groups",
                path=self.source,
                attribute="PlaneOrientationSequence/PixelMeasuresSequence",
                hint="the file is damaged",
            )
        return orientation, spacing, declared

    def _positions(self) -> NDArray[np.float64]:
        if not self.frames.has_positions:
            raise UnsupportedObjectError(
                f"frames carry no patient positions, so the {self.what} has no volume grid",
                path=self.source,
                attribute="PlanePositionSequence",
                hint=self.frames_hint,
            )
        return self.frames.positions

    def geometry(self, *, merge_coincident: bool) -> VolumeGeometry:
        """Return the object's own grid: spanning its frames, at their slice spacing.

        The step is the declared slice spacing when every gap between frames is a
        whole multiple of it, else the smallest gap.

        Parameters
        ----------
        merge_coincident
            Frames at one position are slices of one plane (a SEG's segments); when
            false they are refused (several quantities per slice of a map).

        Raises
        ------
        UnsupportedObjectError
            No positions, or (unless merged) several frames at one position.
        DecodingError
            The frames do not lie on one regular stack.
        """
        positions = self._positions()
        orientation, spacing, declared = self.orientation()
        normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
        distance = positions @ normal
        order = np.argsort(distance)
        distinct = [int(order[0])]
        for i in order[1:]:
            if distance[i] - distance[distinct[-1]] > 1e-3:
                distinct.append(int(i))
            elif not merge_coincident:
                raise UnsupportedObjectError(
                    "several frames lie at one position (e.g. several quantities per slice)",
                    path=self.source,
                    attribute="ImagePositionPatient",
                    hint=self.frames_hint + " and group them yourself",
                )
        gaps = np.diff(distance[distinct])
        step = declared if declared and (not gaps.size or _multiples(gaps, declared)) else None
        if step is None:
            step = float(gaps.min()) if gaps.size else 1.0
        count = int(np.rint((distance[distinct[-1]] - distance[distinct[0]]) / step)) + 1
        affine = affine_from_planes(positions[distinct[0]], orientation, spacing, normal * step)
        geometry = VolumeGeometry(
            (count, self.rows, self.columns), affine, self.frame_of_reference_uid
        )
        index = geometry.lps_to_index(positions)
        if (
            np.abs(index[:, 1:]).max(initial=0) > _OFF_GRID
            or np.abs(index[:, 0] - np.rint(index[:, 0])).max(initial=0) > _OFF_GRID
        ):
            raise DecodingError(
                "frame positions do not lie on one regular stack",
                path=self.source,
                attribute="ImagePositionPatient",
                hint=f"read it with its source series, or {self.frames_hint}",
            )
        return geometry

    def slice_indices(
        self, target: VolumeGeometry | Series, *, by_reference: bool = False
    ) -> NDArray[np.int64]:
        """Return the slice of ``target`` each frame lies on (frames of its whole plane).

        Frames are placed by position: :meth:`placement` without ``partial``.

        Raises
        ------
        GridMismatchError
            Another frame of reference, other planes, or frames off the target's slices.
        UnsupportedObjectError
            Frames without positions that cannot be placed by reference.
        """
        return self.placement(target, by_reference=by_reference).slices

    def placement(
        self, target: VolumeGeometry | Series, *, by_reference: bool = False, partial: bool = False
    ) -> FramePlacement:
        """Return where on ``target`` each frame lies.

        Frames are placed by position; on a source series with non-uniform spacing,
        by the nearest acquired slice position. Frames without positions are placed
        by the source image they reference when ``by_reference`` (and ``target`` is
        the source series). With ``partial``, frames may cover a rectangle of the
        target's plane: same orientation and pixel spacing, a whole number of rows
        and columns from its first voxel (a map of a crop of the source).

        Raises
        ------
        GridMismatchError
            Another frame of reference, other planes, frames off the target's
            lattice, or reaching outside it.
        UnsupportedObjectError
            Frames without positions that cannot be placed by reference.
        """
        geometry = target.geometry if isinstance(target, Series) else target
        if not self.frames.has_positions and by_reference:
            if isinstance(target, Series) and target.slice_refs:
                return self._at(self._indices_from_refs(target), None)
            raise UnsupportedObjectError(
                f"frames carry no patient positions (e.g. a slide microscopy or projection "
                f"{self.what}), so they cannot be placed on a volume grid",
                path=self.source,
                attribute="PlanePositionSequence",
                hint="pass the source as a Series to place frames by their source "
                f"references, or {self.frames_hint}",
            )
        positions = self._positions()
        own = self.frame_of_reference_uid
        if own and geometry.frame_of_reference_uid and own != geometry.frame_of_reference_uid:
            raise GridMismatchError(
                f"the {self.what} and the target grid have different frames of reference",
                path=self.source,
                attribute="FrameOfReferenceUID",
                hint=f"read the {self.what} with the series it was made from",
            )
        self._check_planes(geometry, partial=partial)
        if isinstance(target, Series) and target.acquired_positions is not None:
            k, in_plane = self._indices_from_positions(positions, target, partial=partial)
        else:
            k, in_plane = self._indices_on_lattice(geometry.lps_to_index(positions), partial)
        if len(k) and (k.min() < 0 or k.max() >= geometry.shape[0]):
            raise GridMismatchError(
                "frames lie outside the target grid's slices",
                path=self.source,
                attribute="ImagePositionPatient",
                hint=f"{self._own_hint}, or read it with its source series",
            )
        placement = self._at(k, in_plane)
        self._check_inside(placement, geometry)
        return placement

    def _at(self, slices: NDArray[np.int64], in_plane: NDArray[np.int64] | None) -> FramePlacement:
        """Return frames on ``slices``, ``in_plane`` rows and columns from the plane's first."""
        if in_plane is None:
            in_plane = np.zeros((len(slices), 2), np.int64)
        return FramePlacement(slices, in_plane[:, 0], in_plane[:, 1], (self.rows, self.columns))

    def _indices_on_lattice(
        self, index: NDArray[np.float64], partial: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Slices and in-plane offsets of frames at (fractional) target ``index``es."""
        near = np.rint(index).astype(np.int64)
        if not partial:
            near[:, 1:] = 0  # a whole plane starts at the plane's first voxel
        off = np.abs(index - near).max(axis=1)
        worst = int(np.argmax(off)) if len(off) else 0
        if len(off) and off[worst] > _OFF_GRID:
            raise GridMismatchError(
                f"frame {worst + 1} lies between the target's voxels (off by {off[worst]:.3g} "
                "voxels)",
                path=self.source,
                attribute="ImagePositionPatient",
                hint=f"the {self.what} is on another grid; {self._own_hint}",
            )
        return near[:, 0], near[:, 1:]

    def _check_inside(self, placement: FramePlacement, geometry: VolumeGeometry) -> None:
        """Refuse frames that reach beyond the target's rows or columns."""
        if not len(placement.slices):
            return
        first = (int(placement.rows.min()), int(placement.columns.min()))
        last = (
            int(placement.rows.max()) + self.rows - 1,
            int(placement.columns.max()) + self.columns - 1,
        )
        rows, columns = geometry.shape[1:]
        if min(first) < 0 or last[0] >= rows or last[1] >= columns:
            raise GridMismatchError(
                f"{self.what} frames of {self.rows}x{self.columns} reach outside the target "
                f"grid's {rows}x{columns} plane (rows {first[0]}..{last[0]}, columns "
                f"{first[1]}..{last[1]})",
                path=self.source,
                attribute="ImagePositionPatient",
                hint=f"{self._own_hint}, or read it with its source series",
            )

    def _check_planes(self, geometry: VolumeGeometry, *, partial: bool = False) -> None:
        orientation, spacing, _ = plane_attributes(self.dataset, self.source)
        turned = orientation is not None and not np.allclose(
            orientation, geometry.image_orientation, atol=1e-3
        )
        scaled = spacing is not None and not np.allclose(spacing, geometry.pixel_spacing, rtol=1e-3)
        on_lattice = orientation is not None and spacing is not None and not (turned or scaled)
        if (self.rows, self.columns) != geometry.shape[1:] and not (partial and on_lattice):
            raise self._mismatch(
                f"{self.what} frames are {self.rows}x{self.columns} but the target grid is "
                f"{geometry.shape[1]}x{geometry.shape[2]}",
                "Rows/Columns",
            )
        if turned:
            raise self._mismatch(
                f"{self.what} frames are oriented differently from the target grid",
                "ImageOrientationPatient",
            )
        if scaled:
            raise self._mismatch(
                f"{self.what} pixel spacing {spacing} differs from the target's "
                f"{tuple(round(v, 6) for v in geometry.pixel_spacing)}",
                "PixelSpacing",
            )

    def _mismatch(self, message: str, attribute: str) -> GridMismatchError:
        """Return the error of a target grid whose planes differ in ``attribute``."""
        return GridMismatchError(
            message, path=self.source, attribute=attribute, hint=self._own_hint
        )

    def _indices_from_positions(
        self, positions: NDArray[np.float64], source: Series, *, partial: bool = False
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Match frames to the source's acquired slice positions (non-uniform spacing).

        Returns each frame's slice and its in-plane offset (0 unless ``partial``).
        """
        acquired = source.slice_positions()
        if partial:  # the nearest slice along the normal, then rows and columns within it
            normal = source.geometry.slice_normal
            along = np.abs((positions @ normal)[:, None] - (acquired @ normal)[None, :])
            nearest = np.argmin(along, axis=1)
            delta = positions - acquired[nearest]
            steps = source.geometry.affine[:3, 1:3]  # one row, one column, in mm
            in_plane = np.rint(delta @ steps / (steps * steps).sum(axis=0)).astype(np.int64)
            residual = np.linalg.norm(delta - in_plane @ steps.T, axis=1)
        else:
            distance = np.linalg.norm(positions[:, None, :] - acquired[None, :, :], axis=2)
            nearest = np.argmin(distance, axis=1)
            in_plane = np.zeros((len(nearest), 2), np.int64)
            residual = distance[np.arange(len(nearest)), nearest]
        worst = float(residual.max(initial=0.0))
        if worst > _OFF_GRID:
            raise GridMismatchError(
                f"a frame lies {worst:.3g} mm from every source slice"
                + (" and voxel" if partial else ""),
                path=self.source,
                attribute="ImagePositionPatient",
                hint=self._own_hint,
            )
        return nearest.astype(np.int64), in_plane

    def _indices_from_refs(self, source: Series) -> NDArray[np.int64]:
        lookup = {
            (ref.sop_instance_uid, ref.frame_number or 0): k
            for k, ref in enumerate(source.slice_refs)
        }
        out = np.empty(len(self.frames), np.int64)
        for i, uid in enumerate(self.frames.source_uids):
            k = lookup.get((uid, int(self.frames.source_frames[i])), lookup.get((uid, 0)))
            if k is None:
                raise GridMismatchError(
                    f"frame {i + 1} refers to an image that is not in the source series",
                    path=self.source,
                    attribute="ReferencedSOPInstanceUID",
                    hint=f"pass the series the {self.what} was made from",
                )
            out[i] = k
        return out


def _multiples(gaps: NDArray[np.float64], step: float) -> bool:
    """Whether every gap is a whole multiple (at least one) of ``step``."""
    ratio = gaps / step
    return bool(np.abs(ratio - np.rint(ratio)).max() < 0.01 and ratio.min() > 0.5)
