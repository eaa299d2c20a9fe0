"""Write Microscopy Bulk Simple Annotations, streaming: millions of annotations, bounded memory.

:func:`write_annotations` takes, per annotation group, a description and an iterable
of annotations (points ``[point, 2]`` as column, row in the level's Total Pixel
Matrix, and measurement values). It consumes each iterable once, spooling the
coordinates, point index list and measurement values to temporary files in chunks,
then writes the file: the header through pydicom, the Annotation Group Sequence
element by element with the large values copied from the spool files. Memory stays
bounded by the chunk size, whatever the number of annotations.

Coordinates are 2D (Annotation Coordinate Type ``2D``, Pixel Origin Interpretation
``VOLUME``): pixel positions in the Total Pixel Matrix of the referenced level's
images, stored as given (radbridge shifts nothing), as 64-bit floats (Double Point
Coordinates Data) unless ``single_precision``. Measurement values are 32-bit floats
(the standard's OF); NaN means "not measured" (left out, with an Annotation Index
List).

Examples
--------
>>> import tempfile, numpy as np
>>> from radbridge.coding import sct, ucum
>>> from radbridge.iods.wsi import read_slide
>>> from radbridge.iods.ann import AnnotationGroupDescription, MeasurementDescription
>>> slide = read_slide("../shared/interop/images/highdicom/sm_image.dcm")
>>> area = MeasurementDescription(sct("42798000", "Area"), ucum("um2", "square micrometer"))
>>> cells = AnnotationGroupDescription(
...     1, "Cells", category=sct("91723000", "Anatomical structure"),
...     property_type=sct("4421005", "Cell"), graphic_type="polygon",
...     algorithm_type="manual", measurements=(area,))
>>> polygons = (Annotation(np.array([[x, 5.0], [x + 4, 5.0], [x + 2, 9.0]]), (8.0,))
...             for x in range(0, 40, 10))
>>> path = write_annotations(tempfile.mktemp(suffix=".dcm"), slide, [(cells, polygons)])
>>> path.stat().st_size > 0
True
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian

from radbridge.errors import EncodingError, GridMismatchError
from radbridge.iods.ann.types import (
    MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE,
    MIN_POINTS,
    Annotation,
    AnnotationGraphicType,
    AnnotationGroupDescription,
    MeasurementDescription,
)
from radbridge.iods.common import (
    SeriesOptions,
    check_single_values,
    finish_file,
    new_instance,
    series_options,
    texts_of,
    use_character_set_for,
)
from radbridge.iods.multiframe.tiles import SlideLevelSource, SlideSource
from radbridge.iods.source import write_context
from radbridge.uids import derived_uid

__all__ = ["write_annotations"]

log = logging.getLogger(__name__)

#: Annotations buffered before a chunk goes to the spool files.
CHUNK = 16384
_GROUP_SEQUENCE = 0x006A0002


def _long_element(tag: int, vr: str, length: int) -> bytes:
    """Explicit VR Little Endian header of an element with a 4-byte length."""
    return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)


def _delimiter(tag: int, length: int = 0) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, length)


def _encode(ds: Dataset, encodings: list[str]) -> bytes:
    """Encode a (small) data set's elements as Explicit VR Little Endian, texts in ``encodings``."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds, parent_encoding=encodings)
    return buffer.getvalue()


class _Spool:
    """One temporary file filled in chunks: its length is known when it is copied out."""

    def __init__(self, folder: str, name: str) -> None:
        self.path = os.path.join(folder, name)
        self.handle: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed in copy_to
        self.size = 0

    def write(self, array: NDArray[Any]) -> None:
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
        self.handle.write(data.tobytes())
        self.size += data.nbytes

    def copy_to(self, out: IO[bytes]) -> None:
        self.handle.close()
        with open(self.path, "rb") as source:
            while block := source.read(1 << 20):
                out.write(block)


def _measurement_item(measurement: MeasurementDescription) -> Dataset:
    """Return the coded part of a Measurements Sequence item: what was measured, in which unit."""
    item = Dataset()
    item.MeasurementUnitsCodeSequence = [measurement.unit.to_dataset()]
    item.ConceptNameCodeSequence = [measurement.name.to_dataset()]
    return item


class _Group:
    """A group being spooled: its points, point index list and measurement values."""

    def __init__(self, folder: str, description: AnnotationGroupDescription, double: bool):
        self.description = description
        self.graphic = AnnotationGraphicType(description.graphic_type)
        self.dtype = np.dtype("<f8" if double else "<f4")
        number = description.number
        self.points = _Spool(folder, f"g{number}-points")
        self.index = _Spool(folder, f"g{number}-index")
        self.values = [
            _Spool(folder, f"g{number}-m{k}") for k in range(len(description.measurements))
        ]
        self.value_index = [
            _Spool(folder, f"g{number}-m{k}-index") for k in range(len(description.measurements))
        ]
        self.measured = [0] * len(description.measurements)
        self.count = 0
        self.point_count = 0
        self._coordinates: list[NDArray[Any]] = []
        self._values: list[tuple[float, ...]] = []
        fixed = description.points_per_annotation
        self._fewest = fixed if fixed is not None else MIN_POINTS[self.graphic]
        self._most = fixed if fixed is not None else 2**31

    def add(self, annotation: Annotation | Any) -> None:
        if not isinstance(annotation, Annotation):
            annotation = Annotation(annotation)
        points = np.asarray(annotation.coordinates, np.float64)
        shape = points.shape
        if len(shape) != 2 or shape[1] != 2 or not self._fewest <= shape[0] <= self._most:
            self._refuse_shape(shape)
        values = tuple(annotation.values)
        if len(values) != len(self.values):
            raise EncodingError(
                f"{self._where(len(self._values))} has {len(values)} values for "
                f"{len(self.values)} measurements",
                attribute="MeasurementsSequence",
            )
        self._coordinates.append(points)
        self._values.append(values)
        if len(self._coordinates) >= CHUNK:
            self.flush()

    def _where(self, offset: int) -> str:
        return f"annotation {self.count + offset + 1} of group {self.description.number}"

    def _refuse_shape(self, shape: tuple[int, ...]) -> None:
        where = self._where(len(self._coordinates))
        if len(shape) != 2 or shape[1] != 2:
            raise EncodingError(
                f"{where}: points must be [point, 2] (column, row), got shape {shape}",
                attribute="GraphicData",
            )
        wanted = self._fewest if self._fewest == self._most else f"at least {self._fewest}"
        raise EncodingError(
            f"{where}: a {self.graphic.value} needs {wanted} points, got {shape[0]}",
            attribute="GraphicData",
        )

    def _check_chunk(self, points: NDArray[np.float64], starts: NDArray[np.int64]) -> None:
        """Refuse NaN/infinite coordinates and closed POLYGONs, naming the annotation."""
        ends = np.append(starts[1:], len(points)) - 1
        bad = ~np.isfinite(points).all(axis=1)
        if bad.any():
            first = int(np.searchsorted(starts, np.flatnonzero(bad)[0], side="right")) - 1
            raise EncodingError(
                f"{self._where(first)}: a coordinate is NaN or infinite", attribute="GraphicData"
            )
        if self.graphic is AnnotationGraphicType.POLYGON:
            closed = (points[starts] == points[ends]).all(axis=1)
            if closed.any():
                raise EncodingError(
                    f"{self._where(int(np.flatnonzero(closed)[0]))}: a POLYGON is closed "
                    "implicitly; do not repeat the first point",
                    attribute="GraphicData",
                )

    def flush(self) -> None:
        if not self._coordinates:
            return
        counts = np.fromiter((len(p) for p in self._coordinates), np.int64, len(self._coordinates))
        points = np.concatenate(self._coordinates)
        local = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._check_chunk(points, local)
        if self.description.points_per_annotation is None:
            self.index.write(((self.point_count + local) * 2 + 1).astype("<u4"))
        self.points.write(points.astype(self.dtype))
        table = np.asarray(self._values, np.float64).reshape(len(self._values), len(self.values))
        numbers = np.arange(self.count + 1, self.count + len(self._values) + 1, dtype="<u4")
        for k in range(len(self.values)):
            present = ~np.isnan(table[:, k])
            self.values[k].write(table[present, k].astype("<f4"))
            self.value_index[k].write(numbers[present])
            self.measured[k] += int(present.sum())
        self.point_count += int(counts.sum())
        self.count += len(self._coordinates)
        self._coordinates, self._values = [], []

    def texts(self, sop_instance_uid: str) -> list[str]:
        """Return the texts this group writes (for the file's character set).

        Raises :class:`~radbridge.errors.EncodingError` for a label holding a backslash
        (:func:`~radbridge.iods.common.check_single_values`).
        """
        items = [
            self._tail(sop_instance_uid),
            *map(_measurement_item, self.description.measurements),
        ]
        for item in items:
            check_single_values(item)
        return [text for item in items for text in texts_of(item)]

    def write(self, out: IO[bytes], sop_instance_uid: str, encodings: list[str]) -> None:
        """Write this group as one item of the Annotation Group Sequence."""
        d = self.description
        out.write(_delimiter(0xFFFEE000, 0xFFFFFFFF))
        head = Dataset()
        head.AnnotationGroupNumber = d.number
        out.write(_encode(head, encodings))
        coordinates = 0x00660022 if self.dtype.itemsize == 8 else 0x00660016
        out.write(
            _long_element(coordinates, "OD" if self.dtype.itemsize == 8 else "OF", self.points.size)
        )
        self.points.copy_to(out)
        if d.points_per_annotation is None:
            out.write(_long_element(0x00660040, "OL", self.index.size))
            self.index.copy_to(out)
        if d.measurements:
            self._measurements(out, encodings)
        out.write(_encode(self._tail(sop_instance_uid), encodings))
        out.write(_delimiter(0xFFFEE00D))

    def _measurements(self, out: IO[bytes], encodings: list[str]) -> None:
        out.write(_long_element(0x00660121, "SQ", 0xFFFFFFFF))
        for k, measurement in enumerate(self.description.measurements):
            out.write(_delimiter(0xFFFEE000, 0xFFFFFFFF))
            out.write(_encode(_measurement_item(measurement), encodings))
            out.write(_long_element(0x00660132, "SQ", 0xFFFFFFFF))
            out.write(_delimiter(0xFFFEE000, 0xFFFFFFFF))
            out.write(_long_element(0x00660125, "OF", self.values[k].size))
            self.values[k].copy_to(out)
            if self.measured[k] != self.count:  # some annotations have no value
                out.write(_long_element(0x006A0011, "OL", self.value_index[k].size))
                self.value_index[k].copy_to(out)
            out.write(_delimiter(0xFFFEE00D) + _delimiter(0xFFFEE0DD))
            out.write(_delimiter(0xFFFEE00D))
        out.write(_delimiter(0xFFFEE0DD))

    def _tail(self, sop_instance_uid: str) -> Dataset:
        d = self.description
        ds = Dataset()
        ds.AnnotationGroupUID = d.uid or derived_uid(sop_instance_uid, "group", str(d.number))
        ds.AnnotationGroupLabel = d.label
        if d.description:
            ds.AnnotationGroupDescription = d.description
        ds.AnnotationGroupGenerationType = str(d.algorithm_type)
        if d.algorithm is not None:
            ds.AnnotationGroupAlgorithmIdentificationSequence = [d.algorithm.to_dataset()]
        ds.AnnotationPropertyCategoryCodeSequence = [d.category.to_dataset()]
        ds.AnnotationPropertyTypeCodeSequence = [d.property_type.to_dataset()]
        if d.property_type_modifiers:
            ds.AnnotationPropertyTypeModifierCodeSequence = [
                m.to_dataset() for m in d.property_type_modifiers
            ]
        ds.NumberOfAnnotations = self.count
        ds.AnnotationAppliesToAllOpticalPaths = "NO" if d.optical_paths else "YES"
        if d.optical_paths:
            ds.ReferencedOpticalPathIdentifier = list(d.optical_paths)
        ds.GraphicType = self.graphic.value
        return ds


def _check_groups(groups: Sequence[AnnotationGroupDescription]) -> None:
    if not groups:
        raise EncodingError("no annotation group given", attribute="AnnotationGroupSequence")
    for k, description in enumerate(groups, start=1):
        description.validate()
        if description.number != k:
            raise EncodingError(
                f"annotation groups must be numbered 1..{len(groups)} in order; "
                f"group {k} has number {description.number}",
                attribute="AnnotationGroupNumber",
            )


def _path_ids(image: Dataset) -> set[str]:
    return {
        str(item.get("OpticalPathIdentifier", "")) for item in image.get("OpticalPathSequence", [])
    }


def _check_optical_paths(
    level: SlideLevelSource, groups: Sequence[AnnotationGroupDescription]
) -> None:
    known = {path for image in level.datasets for path in _path_ids(image)}
    for group in groups:
        unknown = [path for path in group.optical_paths if path not in known]
        if unknown:
            raise GridMismatchError(
                f"annotation group {group.number} names optical path {unknown[0]!r}, "
                "which the level's images do not have",
                attribute="ReferencedOpticalPathIdentifier",
                hint="use one of " + ", ".join(sorted(known)),
            )


def _header(
    slide: SlideSource,
    level: int,
    options: SeriesOptions,
    groups: Sequence[AnnotationGroupDescription],
) -> Dataset:
    """Start the object: slide context, references to the level's images.

    Every image of the level is referenced (Referenced Series Sequence); Referenced
    Image Sequence, whose Total Pixel Matrix the 2D coordinates are on, takes exactly
    one item (PS3.3 C.37.1.2): the first image holding the first optical path a group
    names, else the level's first image.
    """
    chosen = slide.level(level)
    ds = new_instance(MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE, options, modality="ANN")
    write_context(ds, slide.context)
    references = []
    for image in chosen.datasets:
        item = Dataset()
        item.ReferencedSOPClassUID = image.SOPClassUID
        item.ReferencedSOPInstanceUID = image.SOPInstanceUID
        references.append(item)
    series = Dataset()
    series.ReferencedInstanceSequence = references
    series.SeriesInstanceUID = slide.series_instance_uid
    ds.ReferencedSeriesSequence = [series]
    named = [path for group in groups for path in group.optical_paths]
    holds = [bool(named) and named[0] in _path_ids(image) for image in chosen.datasets]
    ds.ReferencedImageSequence = [Dataset(references[holds.index(True) if any(holds) else 0])]
    ds.PixelOriginInterpretation = "VOLUME"
    ds.AnnotationCoordinateType = "2D"
    return ds


def write_annotations(
    output: str | os.PathLike[str],
    slide: SlideSource,
    groups: Sequence[tuple[AnnotationGroupDescription, Iterable[Annotation | Any]]],
    *,
    level: int = 0,
    single_precision: bool = False,
    options: SeriesOptions | None = None,
) -> Path:
    """Write a Microscopy Bulk Simple Annotations file for one level of a slide.

    Parameters
    ----------
    output
        The file to write (folders created).
    slide
        The slide (:func:`~radbridge.iods.wsi.read_slide`); its context is copied and the
        level's images are referenced.
    groups
        ``(description, annotations)`` per group, numbered 1..N in order. Each
        annotation is an :class:`Annotation` (points and values) or just its points
        ``[point, 2]`` (column, row) when the group has no measurements. Each iterable is
        consumed once (a generator keeps memory bounded).
    level
        The level whose Total Pixel Matrix the coordinates refer to.
    single_precision
        Store coordinates as 32-bit floats (Point Coordinates Data), half the size.
    options
        Series/instance/equipment attributes, fixed UIDs and time.

    Returns
    -------
    pathlib.Path
        ``output``.

    Raises
    ------
    EncodingError
        An annotation with the wrong number of points, NaN coordinates, a repeated
        first point of a POLYGON, the wrong number of values, an empty group, or
        groups not numbered 1..N. Nothing is left at ``output`` then.
    GridMismatchError
        The level, or an optical path a group names, does not exist.
    """
    started = time.perf_counter()
    descriptions = [description for description, _ in groups]
    _check_groups(descriptions)
    settings = series_options(
        options,
        None,
        default=SeriesOptions(series_description="Annotations", content_label="ANNOTATIONS"),
    )
    copied = [element.keyword for element in slide.context]  # as the slide has them
    _check_optical_paths(slide.level(level), descriptions)
    header = finish_file(
        _header(slide, level, settings, descriptions), ExplicitVRLittleEndian, as_given=copied
    )
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="radbridge-ann-", dir=path.parent) as folder:
        uid = str(header.SOPInstanceUID)
        spooled = [_spool(folder, d, items, not single_precision, uid) for d, items in groups]
        try:
            _write_file(path, header, spooled)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    log.info(
        "wrote annotations %s: %d groups, %d annotations in %.2f s",
        header.SOPInstanceUID,
        len(spooled),
        sum(group.count for group in spooled),
        time.perf_counter() - started,
    )
    return path


def _spool(
    folder: str,
    description: AnnotationGroupDescription,
    items: Iterable[Any],
    double: bool,
    sop_instance_uid: str,
) -> _Group:
    group = _Group(folder, description, double)
    group.texts(sop_instance_uid)  # refuses a label it cannot write before any annotation
    for item in items:
        group.add(item)
    group.flush()
    if group.count == 0:
        raise EncodingError(
            f"annotation group {description.number} ({description.label!r}) has no annotation",
            attribute="NumberOfAnnotations",
            hint="leave the group out",
        )
    return group


def _write_file(path: Path, header: Any, groups: list[_Group]) -> None:
    """Header elements before the Annotation Group Sequence, the groups, the rest."""
    before, after = Dataset(), Dataset()
    for element in header:
        (before if element.tag < _GROUP_SEQUENCE else after).add(element)
    sop_instance_uid = str(header.SOPInstanceUID)
    use_character_set_for(before, [t for group in groups for t in group.texts(sop_instance_uid)])
    head = finish_file(before, ExplicitVRLittleEndian, check_values=False)  # checked as header
    encodings = convert_encodings(head.get("SpecificCharacterSet") or "")
    head.save_as(path, enforce_file_format=True)
    with open(path, "ab") as out:
        out.write(_long_element(_GROUP_SEQUENCE, "SQ", 0xFFFFFFFF))
        for group in groups:
            group.write(out, sop_instance_uid, encodings)
        out.write(_delimiter(0xFFFEE0DD))
        out.write(_encode(after, encodings))
