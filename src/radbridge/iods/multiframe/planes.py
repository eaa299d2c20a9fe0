"""Where the frames of a multi-frame object lie: the one plane-geometry reader.

Reading, :class:`FramePlanes` gives a SEG's or a Parametric Map's own grid
(:meth:`~FramePlanes.geometry`: spanning its frames at their slice spacing) and
places its frames on a target grid (:meth:`~FramePlanes.slice_indices`: the
source series, its geometry, or any grid of the same frame of reference; by
acquired position for a source with non-uniform spacing, by source reference for
frames without positions). Writing, :func:`on_source_grid` checks that an array
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

__all__ = ["FramePlanes", "on_source_grid"]

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
        """Return the slice of ``target`` each frame lies on.

        Frames are placed by position; on a source series with non-uniform spacing,
        by the nearest acquired slice position. Frames without positions are placed
        by the source image they reference when ``by_reference`` (and ``target`` is
        the source series).

        Raises
        ------
        GridMismatchError
            Another frame of reference, other planes, or frames off the target's slices.
        UnsupportedObjectError
            Frames without positions that cannot be placed by reference.
        """
        geometry = target.geometry if isinstance(target, Series) else target
        if not self.frames.has_positions and by_reference:
            if isinstance(target, Series) and target.slice_refs:
                return self._indices_from_refs(target)
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
        self._check_planes(geometry)
        if isinstance(target, Series) and target.acquired_positions is not None:
            return self._indices_from_positions(positions, target)
        idx = geometry.lps_to_index(positions)
        k = np.rint(idx[:, 0]).astype(np.int64)
        off = np.abs(idx - np.column_stack([k, np.zeros_like(idx[:, 1:])])).max(axis=1)
        worst = int(np.argmax(off)) if len(off) else 0
        if len(off) and off[worst] > _OFF_GRID:
            raise GridMismatchError(
                f"frame {worst + 1} lies between the target's voxels (off by {off[worst]:.3g} "
                "voxels)",
                path=self.source,
                attribute="ImagePositionPatient",
                hint=f"the {self.what} is on another grid; {self._own_hint}",
            )
        if len(k) and (k.min() < 0 or k.max() >= geometry.shape[0]):
            raise GridMismatchError(
                "frames lie outside the target grid's slices",
                path=self.source,
                attribute="ImagePositionPatient",
                hint=f"{self._own_hint}, or read it with its source series",
            )
        return k

    def _check_planes(self, geometry: VolumeGeometry) -> None:
        if (self.rows, self.columns) != geometry.shape[1:]:
            raise self._mismatch(
                f"{self.what} frames are {self.rows}x{self.columns} but the target grid is "
                f"{geometry.shape[1]}x{geometry.shape[2]}",
                "Rows/Columns",
            )
        orientation, spacing, _ = plane_attributes(self.dataset, self.source)
        if orientation is not None and not np.allclose(
            orientation, geometry.image_orientation, atol=1e-3
        ):
            raise self._mismatch(
                f"{self.what} frames are oriented differently from the target grid",
                "ImageOrientationPatient",
            )
        if spacing is not None and not np.allclose(spacing, geometry.pixel_spacing, rtol=1e-3):
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
        self, positions: NDArray[np.float64], source: Series
    ) -> NDArray[np.int64]:
        """Match frames to the source's acquired slice positions (non-uniform spacing)."""
        acquired = source.slice_positions()
        distance = np.linalg.norm(positions[:, None, :] - acquired[None, :, :], axis=2)
        nearest: NDArray[np.int64] = np.argmin(distance, axis=1).astype(np.int64)
        worst = float(distance[np.arange(len(nearest)), nearest].max(initial=0.0))
        if worst > _OFF_GRID:
            raise GridMismatchError(
                f"a frame lies {worst:.3g} mm from every source slice",
                path=self.source,
                attribute="ImagePositionPatient",
                hint=self._own_hint,
            )
        return nearest

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
