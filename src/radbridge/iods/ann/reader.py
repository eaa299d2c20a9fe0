"""Read Microscopy Bulk Simple Annotations: groups, annotations and measurements, lazily.

:func:`read_annotations` opens the file with its coordinates, index lists and values
left in the memory-mapped file (:func:`radbridge.iods.bulk.open_bulk_mapped`); each
:class:`AnnotationGroup` then gives NumPy views on them, so a million annotations
are read without loading them. The reader checks what it relies on (the index list
against the points, the counts, the measurement index lists) and names the attribute
when a file is damaged.

Examples
--------
>>> import tempfile, numpy as np
>>> from radbridge.coding import sct
>>> from radbridge.iods.ann import AnnotationGroupDescription, write_annotations
>>> from radbridge.iods.wsi import read_slide
>>> slide = read_slide("../shared/interop/images/highdicom/sm_image.dcm")
>>> dots = AnnotationGroupDescription(
...     1, "Cells", category=sct("91723000", "Anatomical structure"),
...     property_type=sct("4421005", "Cell"), graphic_type="point", algorithm_type="manual")
>>> path = write_annotations(tempfile.mktemp(suffix=".dcm"), slide,
...                          [(dots, [np.array([[3.5, 7.0]]), np.array([[12.0, 20.25]])])])
>>> read = read_annotations(path)
>>> group = read.groups[0]
>>> group.description.label, len(group), group.annotation(1).tolist()
('Cells', 2, [[12.0, 20.25]])
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.dataset import Dataset

from radbridge.coding import Code
from radbridge.errors import DecodingError
from radbridge.iods.ann.types import (
    MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE,
    AnnotationGraphicType,
    AnnotationGroupDescription,
    MeasurementDescription,
)
from radbridge.iods.bulk import open_bulk_mapped
from radbridge.iods.common import ReadObject
from radbridge.iods.content import AlgorithmIdentification, AlgorithmType
from radbridge.iods.multiframe.fast_read import DicomFile

__all__ = ["AnnotationGroup", "MicroscopyAnnotations", "read_annotations"]


def _array(item: Dataset, keyword: str, dtype: str) -> NDArray[Any] | None:
    value = item.get(keyword)
    if value is None:
        return None
    return np.frombuffer(value, dtype=dtype, count=len(value) // np.dtype(dtype).itemsize)


class AnnotationGroup:
    """One Annotation Group: its description, its annotations' points and measurements.

    Attributes
    ----------
    description
        Number, label, coded property, graphic type, algorithm, measurements.
    coordinates
        All points ``[point, dims]`` (column, row for 2D; x, y, z in mm for 3D), a view
        on the file (a copy for a 3D group whose points share one Z: the file then
        stores x, y and a Common Z Coordinate Value).
    starts
        Where each annotation's points begin in ``coordinates``, and the end (length
        ``len(group) + 1``).
    """

    def __init__(self, item: Dataset, dims: int, source: str | None) -> None:
        self.source = source
        self.description = _description(item, source)
        common_z = _common_z(item, dims, self.description.number, source)
        stored = 2 if common_z is not None else dims  # the index list counts stored values
        self.coordinates = _coordinates(item, stored, self.description.number, source)
        count = _count(item, self.description.number, source)
        self.starts = _starts(item, self.description, count, len(self.coordinates), stored, source)
        if common_z is not None:
            z = np.full((len(self.coordinates), 1), common_z, self.coordinates.dtype)
            self.coordinates = np.concatenate([self.coordinates, z], axis=1)
        self._measurements = [
            _values(m, count, self.description.number, source)
            for m in item.get("MeasurementsSequence", [])
        ]

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __repr__(self) -> str:
        d = self.description
        return (
            f"AnnotationGroup({d.number}, {d.label!r}, {d.graphic_type}, {len(self)} annotations)"
        )

    def annotation(self, index: int) -> NDArray[Any]:
        """Return the points of annotation ``index`` (0-based)."""
        return self.coordinates[self.starts[index] : self.starts[index + 1]]

    def __iter__(self) -> Iterator[NDArray[Any]]:
        for k in range(len(self)):
            yield self.annotation(k)

    def measurement(self, index: int = 0) -> NDArray[np.float32]:
        """Values of measurement ``index`` per annotation (NaN where not measured)."""
        values, indices = self._measurements[index]
        if indices is None:
            return values
        out = np.full(len(self), np.nan, np.float32)
        out[indices] = values
        return out


def _description(item: Dataset, source: str | None) -> AnnotationGroupDescription:
    number = int(item.get("AnnotationGroupNumber", 0) or 0)

    def code(keyword: str) -> Code:
        seq = item.get(keyword)
        if not seq:
            raise DecodingError(
                f"annotation group {number} has no {keyword}",
                path=source,
                attribute=keyword,
                hint="the file is damaged",
            )
        return Code.from_dataset(seq[0], source=source)

    graphic = str(item.get("GraphicType", "") or "")
    if graphic not in AnnotationGraphicType.__members__:
        raise DecodingError(
            f"annotation group {number}: Graphic Type {graphic[:20]!r} is not one of "
            + ", ".join(AnnotationGraphicType.__members__),
            path=source,
            attribute="GraphicType",
        )
    generation = str(item.get("AnnotationGroupGenerationType", "") or "")
    algorithm = item.get("AnnotationGroupAlgorithmIdentificationSequence")
    return AnnotationGroupDescription(
        number,
        str(item.get("AnnotationGroupLabel", "") or ""),
        category=code("AnnotationPropertyCategoryCodeSequence"),
        property_type=code("AnnotationPropertyTypeCodeSequence"),
        graphic_type=graphic,
        algorithm_type=generation if generation in AlgorithmType.__members__ else "MANUAL",
        algorithm=AlgorithmIdentification.from_dataset(algorithm[0]) if algorithm else None,
        measurements=tuple(
            MeasurementDescription(
                Code.from_dataset(m.ConceptNameCodeSequence[0], source=source),
                Code.from_dataset(m.MeasurementUnitsCodeSequence[0], source=source),
            )
            for m in item.get("MeasurementsSequence", [])
        ),
        uid=str(item.get("AnnotationGroupUID", "") or "") or None,
        description=str(item.get("AnnotationGroupDescription", "") or "") or None,
        optical_paths=_optical_paths(item),
    )


def _optical_paths(item: Dataset) -> tuple[str, ...]:
    if str(item.get("AnnotationAppliesToAllOpticalPaths", "YES") or "YES") == "YES":
        return ()
    value = item.get("ReferencedOpticalPathIdentifier") or []
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _common_z(item: Dataset, dims: int, number: int, source: str | None) -> float | None:
    """Return the Common Z Coordinate Value of a 3D group (its points then store x, y only)."""
    value = item.get("CommonZCoordinateValue") if dims == 3 else None
    if value is None or value == "":
        return None
    try:
        return float(value[0] if isinstance(value, list | tuple) else value)
    except (TypeError, ValueError, IndexError):
        raise DecodingError(
            f"annotation group {number}: Common Z Coordinate Value {str(value)[:20]!r} "
            "is not a number",
            path=source,
            attribute="CommonZCoordinateValue",
            hint="the file is damaged",
        ) from None


def _coordinates(item: Dataset, dims: int, number: int, source: str | None) -> NDArray[Any]:
    values = _array(item, "DoublePointCoordinatesData", "<f8")
    if values is None:
        values = _array(item, "PointCoordinatesData", "<f4")
    if values is None or len(values) % dims:
        raise DecodingError(
            f"annotation group {number} has no point coordinates, or not a whole number of "
            f"{dims}-D points",
            path=source,
            attribute="PointCoordinatesData",
            hint="the file is damaged",
        )
    return values.reshape(-1, dims)


def _count(item: Dataset, number: int, source: str | None) -> int:
    try:
        return int(item.NumberOfAnnotations)
    except (AttributeError, TypeError, ValueError):
        raise DecodingError(
            f"annotation group {number} has no usable Number of Annotations",
            path=source,
            attribute="NumberOfAnnotations",
            hint="the file is damaged",
        ) from None


def _starts(
    item: Dataset,
    description: AnnotationGroupDescription,
    count: int,
    points: int,
    dims: int,
    source: str | None,
) -> NDArray[np.int64]:
    fixed = description.points_per_annotation
    where = f"annotation group {description.number}"
    if fixed is not None:
        if points != fixed * count:
            raise DecodingError(
                f"{where}: {points} points for {count} annotations of {fixed} points each",
                path=source,
                attribute="NumberOfAnnotations",
                hint="the file is damaged",
            )
        return np.arange(count + 1, dtype=np.int64) * fixed
    index = _array(item, "LongPrimitivePointIndexList", "<u4")
    if index is None:
        raise DecodingError(
            f"{where}: a {description.graphic_type} group needs a Long Primitive Point Index List",
            path=source,
            attribute="LongPrimitivePointIndexList",
            hint="the file is damaged",
        )
    starts = (index.astype(np.int64) - 1) // dims
    if (
        len(index) != count
        or (count and index[0] != 1)
        or np.any((index.astype(np.int64) - 1) % dims)
        or np.any(np.diff(starts) < 1)
        or (count and starts[-1] >= points)
    ):
        raise DecodingError(
            f"{where}: the point index list does not split {points} points into "
            f"{count} annotations",
            path=source,
            attribute="LongPrimitivePointIndexList",
            hint="the file is damaged",
        )
    return np.append(starts, points)


def _values(
    item: Dataset, count: int, number: int, source: str | None
) -> tuple[NDArray[np.float32], NDArray[np.int64] | None]:
    holder = item.get("MeasurementValuesSequence")
    values = _array(holder[0], "FloatingPointValues", "<f4") if holder else None
    indices = _array(holder[0], "AnnotationIndexList", "<u4") if holder else None
    problem = values is None
    if not problem and indices is None:
        problem = len(values) != count  # type: ignore[arg-type]
    elif not problem and indices is not None:
        positions = indices.astype(np.int64) - 1
        problem = len(positions) != len(values) or bool(  # type: ignore[arg-type]
            len(positions) and (positions.min() < 0 or positions.max() >= count)
        )
        indices = positions
    if problem or values is None:
        raise DecodingError(
            f"annotation group {number}: measurement values do not match its {count} annotations",
            path=source,
            attribute="MeasurementValuesSequence",
            hint="the file is damaged",
        )
    return values, indices


class MicroscopyAnnotations(ReadObject):
    """A Microscopy Bulk Simple Annotations object (``source`` as :class:`ReadObject`).

    Attributes
    ----------
    dataset
        The header (coordinates and values left in the mapped file).
    groups
        The annotation groups in order.
    coordinate_type
        ``2D`` (pixels of the referenced images' Total Pixel Matrix) or ``3D`` (mm).
    referenced_sop_instance_uids
        The images a 2D object refers to.
    """

    SOP_CLASSES = (MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE,)
    WHAT = "a Microscopy Bulk Simple Annotations object"
    HINT = f"give an annotation file (SOP class {MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE})"

    def __init__(self, ds: Dataset, *, source: str | None = None) -> None:
        super().__init__(ds, source=source)
        self.coordinate_type = str(ds.get("AnnotationCoordinateType", "") or "")
        if self.coordinate_type not in ("2D", "3D"):
            raise DecodingError(
                f"Annotation Coordinate Type {self.coordinate_type[:20]!r} is not 2D or 3D",
                path=source,
                attribute="AnnotationCoordinateType",
            )
        dims = 2 if self.coordinate_type == "2D" else 3
        self.groups = tuple(
            AnnotationGroup(item, dims, source) for item in ds.get("AnnotationGroupSequence", [])
        )
        self.referenced_sop_instance_uids = tuple(
            str(item.ReferencedSOPInstanceUID) for item in ds.get("ReferencedImageSequence", [])
        )

    def __repr__(self) -> str:
        return f"MicroscopyAnnotations({len(self.groups)} groups, {self.coordinate_type})"


def read_annotations(file: DicomFile) -> MicroscopyAnnotations:
    """Open a Microscopy Bulk Simple Annotations object (a path is memory-mapped).

    Raises
    ------
    UnsupportedObjectError
        Not a Microscopy Bulk Simple Annotations object.
    DecodingError
        Damaged counts, index lists, coordinates or values (attribute named).
    """
    source: str | None = None
    if isinstance(file, str | os.PathLike):
        source = os.fspath(file)
        ds = open_bulk_mapped(file)
    elif isinstance(file, bytes | bytearray):
        source = "<bytes>"
        ds = dcmread(io.BytesIO(file))
    else:
        ds = file
    return MicroscopyAnnotations(ds, source=source)
