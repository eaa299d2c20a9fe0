"""The TID 1500 Measurement Report as small frozen dataclasses.

A :class:`MeasurementReport` holds :class:`MeasurementGroup` objects; each group is,
by what it refers to, one of the three TID 1500 group templates:

* no region → **TID 1501** image-level measurements and qualitative evaluations
  (e.g. "intracranial hemorrhage: present, probability 0.93");
* a 2D :class:`ImageRegion` (SCOORD on one image) or a 3D one (SCOORD3D) →
  **TID 1410** planar ROI;
* a :class:`SegmentReference` (a segment of a SEG) or a 3D volume surface →
  **TID 1411** volumetric ROI.

Examples
--------
>>> from radbridge.coding import Code, sct
>>> diameter = Measurement(sct("81827009", "Diameter"), 12.5, Code("mm", "UCUM", "mm"))
>>> group = MeasurementGroup("nodule 1", finding=sct("27925004", "Nodule"),
...                          measurements=(diameter,))
>>> group.template
'1501'
"""

from __future__ import annotations

import logging
import math
import numbers
import reprlib
import warnings
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset

from radbridge.codes import BILATERAL, LEFT, RIGHT, UNILATERAL, is_anatomical_structure
from radbridge.coding import Code
from radbridge.errors import EncodingError, InvalidAttributeError
from radbridge.iods.content import AlgorithmIdentification, SegmentDescription
from radbridge.iods.sr import concepts
from radbridge.iods.sr.content import as_sct
from radbridge.ucum import parse_units
from radbridge.uids import is_valid_uid

__all__ = [
    "RESERVED_CONCEPTS",
    "AlgorithmIdentification",
    "DeviceObserver",
    "ImageRegion",
    "Measurement",
    "MeasurementGroup",
    "MeasurementReport",
    "QualitativeEvaluation",
    "SegmentReference",
    "SegmentationFrameReference",
    "TimePoint",
]

# Number of points per graphic type (PS3.3 C.18.6.1.2 SCOORD, C.18.9.1.2 SCOORD3D): exactly
# that many for the types in _EXACT_POINTS, at least that many for the others. A SCOORD3D
# POLYGON is closed (its last point repeats the first), so a triangle has four points.
_GRAPHIC_2D = {"POINT": 1, "POLYLINE": 2, "CIRCLE": 2, "ELLIPSE": 4, "MULTIPOINT": 1}
_GRAPHIC_3D = {
    "POINT": 1,
    "POLYLINE": 2,
    "POLYGON": 4,
    "ELLIPSE": 4,
    "ELLIPSOID": 6,
    "MULTIPOINT": 1,
}
_EXACT_POINTS = frozenset({"POINT", "CIRCLE", "ELLIPSE", "ELLIPSOID"})
#: Concepts with a fixed meaning in a measurement group; an evaluation cannot use them.
RESERVED_CONCEPTS = frozenset(
    {
        concepts.TRACKING_IDENTIFIER,
        concepts.TRACKING_UID,
        concepts.FINDING,
        concepts.FINDING_CATEGORY,
        concepts.FINDING_SITE,
        concepts.IMAGE_REGION,
        concepts.VOLUME_SURFACE,
        concepts.REFERENCED_SEGMENT,
        concepts.REFERENCED_SEGMENTATION_FRAME,
        concepts.SOURCE_SERIES_FOR_SEGMENTATION,
        concepts.SOURCE_IMAGE_FOR_SEGMENTATION,
    }
)
_SEGMENTATION_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
}
# CID 244 Laterality (SCT).
_LATERALITY_SCT = {code.value for code in (LEFT, RIGHT, BILATERAL, UNILATERAL)}

log = logging.getLogger(__name__)


def _laterality(modifiers: tuple[Code, ...]) -> Code | None:
    """Return the first CID 244 laterality among ``modifiers`` (SCT; legacy SRT ones mapped)."""
    for modifier in map(as_sct, modifiers):
        if modifier.scheme == "SCT" and modifier.value in _LATERALITY_SCT:
            return modifier
    return None


def _segment_site(segment: SegmentDescription) -> tuple[Code | None, Code | None]:
    """Return the finding site a segment names and its laterality.

    The Anatomic Region, with the laterality among its modifiers. Without one, an
    anatomical structure is its own site (PS3.3 C.8.20.2: the anatomy is implicit in the
    property type): "left kidney" (type Kidney, modifier Left) is Finding Site Kidney with
    Laterality Left, as PS3.17 RRR.3 and dcmqi's tid1500writer encode a site's side and
    highdicom and dcmqi read it. Anything else with a laterality has no site to carry it.
    """
    if segment.anatomic_region is not None:
        return segment.anatomic_region, _laterality(segment.anatomic_region_modifiers)
    laterality = _laterality(segment.property_type_modifiers)
    if laterality is None or segment.property_type is None:
        return None, None
    if segment.category is not None and is_anatomical_structure(as_sct(segment.category)):
        return segment.property_type, laterality
    log.warning(
        "segment %d (%r): its laterality %s qualifies a %s, which is no finding site, so the "
        "SR group cannot carry it; describe the segment with an Anatomic Region and give the "
        "laterality as its modifier",
        segment.segment_number,
        segment.label,
        laterality.meaning,
        segment.property_type.meaning,
    )
    return None, None


def _check_laterality(site: Code | None, laterality: Code | None, where: str) -> None:
    """Laterality is written as a modifier of the finding site: refuse it alone."""
    if laterality is not None and site is None:
        raise EncodingError(
            f"{where} has a laterality but no finding site",
            attribute="laterality",
            hint="give finding_site too (laterality qualifies it), or leave laterality out",
        )


def _check_uids(where: str, **uids: object) -> None:
    """Refuse UIDs that are not strings of the DICOM UID syntax (None means absent)."""
    for attribute, value in uids.items():
        if value is not None and not (isinstance(value, str) and is_valid_uid(value)):
            raise EncodingError(
                f"{where}: {attribute} {value!r} is not a valid UID",
                attribute=attribute,
                hint="give a UID of digits and dots (PS3.5 9.1), e.g. from radbridge.uids",
            )


def _check_number(where: str, attribute: str, value: object) -> None:
    """Refuse a frame or segment number that is not a positive integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise EncodingError(
            f"{where}: {attribute} must be a positive integer, got {value!r}",
            attribute=attribute,
        )


def _finite_value(value: object, where: str) -> float:
    """Return ``value`` as a float: any finite real number but a bool (NumPy scalars too).

    Raises
    ------
    EncodingError
        ``value`` is not a real number, is a bool, is NaN or infinite, or is an integer
        beyond the range of a double (DS and Floating Point Value cannot hold it).
    """
    number = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = None
    if number is None or not math.isfinite(number):
        raise EncodingError(
            f"{where} has value {reprlib.repr(value)}, which is not a finite real number "
            f"(a {type(value).__name__})",
            attribute="NumericValue",
            hint="give a finite int or float (NumPy scalars too) within the range of a double, "
            "or leave the measurement out",
        )
    return number


@dataclass(frozen=True)
class Measurement:
    """A TID 300 numeric measurement.

    Parameters
    ----------
    concept
        What was measured, e.g. SCT 81827009 "Diameter".
    value
        The number: any finite real number (``int``, ``float``, NumPy scalars such as
        ``np.float32``), written as ``float(value)``; not a ``bool``.
    unit
        A UCUM code, e.g. ``Code("mm", "UCUM", "mm")``.
    derivation, method
        DCM 121401 "Derivation" (e.g. mean) and SCT 370129005 "Measurement Method".
    finding_site, laterality
        Where, if it differs from the group's finding site.
    algorithm
        The algorithm that produced the value.
    region
        The geometry the value was measured on (TID 300 "INFERRED FROM" TID 320):
        e.g. the line of a length, as OHIF/dcmjs write one per measurement. A 2D
        region (SCOORD on an image) or a 3D one (SCOORD3D).
    """

    concept: Code
    value: float
    unit: Code
    derivation: Code | None = None
    method: Code | None = None
    finding_site: Code | None = None
    laterality: Code | None = None
    algorithm: AlgorithmIdentification | None = None
    region: ImageRegion | None = None

    def check(self) -> None:
        """Raise :class:`~radbridge.errors.EncodingError` for values an SR cannot hold."""
        try:
            parse_units(self.unit)
        except EncodingError as exc:
            raise EncodingError(
                f"measurement {self.concept.meaning!r}: {exc.message}",
                attribute="MeasurementUnitsCodeSequence",
                hint='give a UCUM unit, e.g. "mm", "ml", "mm3", "HU" is "[hnsf\'U]", "1" for '
                "no unit (docs/sr.md)",
            ) from None
        _finite_value(self.value, f"measurement {self.concept.meaning!r}")
        _check_laterality(
            self.finding_site, self.laterality, f"measurement {self.concept.meaning!r}"
        )
        if self.region is not None:
            self.region.check()
            if self.region.volume_surface:
                raise EncodingError(
                    f"measurement {self.concept.meaning!r}: its region is the geometry it was "
                    "measured on, not a volume surface",
                    attribute="volume_surface",
                    hint="put volume surfaces on the group (region=), not on a measurement",
                )


@dataclass(frozen=True)
class QualitativeEvaluation:
    """A coded finding: ``concept`` = ``value`` (e.g. Nodule = Present)."""

    concept: Code
    value: Code


@dataclass(frozen=True)
class ImageRegion:
    """An ROI outline: 2D on one image (``sop_instance_uid``) or 3D in patient space.

    2D ``points`` are (column, row) pairs in image pixels; 3D ones are (x, y, z) in mm
    with ``frame_of_reference_uid``. ``purpose`` names what the coordinates of a
    measurement's region are (TID 320's concept name, e.g. DCM 128138 "Center of
    Mass"); group regions are always "Image Region" or "Volume Surface".
    """

    graphic_type: str
    points: tuple[float, ...]
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    frame_number: int | None = None
    frame_of_reference_uid: str | None = None
    volume_surface: bool = False
    purpose: Code | None = None

    @property
    def is_3d(self) -> bool:
        """Whether the region is SCOORD3D."""
        return self.frame_of_reference_uid is not None

    def check(self) -> None:
        """Raise EncodingError for an impossible region."""
        self._check_graphic_data()
        if not self.is_3d and not (self.sop_class_uid and self.sop_instance_uid):
            raise EncodingError(
                "a 2D region needs the image it was drawn on",
                attribute="ReferencedSOPSequence",
                hint="give sop_class_uid and sop_instance_uid, or frame_of_reference_uid for 3D",
            )
        _check_uids(
            f"{self.graphic_type} region",
            ReferencedSOPClassUID=self.sop_class_uid,
            ReferencedSOPInstanceUID=self.sop_instance_uid,
            ReferencedFrameOfReferenceUID=self.frame_of_reference_uid,
        )
        if self.frame_number is not None:
            _check_number(f"{self.graphic_type} region", "ReferencedFrameNumber", self.frame_number)
        if self.volume_surface and not self.is_3d:
            raise EncodingError(
                "a volume surface needs 3D coordinates",
                attribute="volume_surface",
                hint="give frame_of_reference_uid and (x, y, z) points, or leave it False",
            )

    def _check_graphic_data(self) -> None:
        """Refuse a graphic type, point count or open 3D polygon PS3.3 C.18.6/C.18.9 forbid."""
        table = _GRAPHIC_3D if self.is_3d else _GRAPHIC_2D
        dims = 3 if self.is_3d else 2
        if self.graphic_type not in table:
            raise EncodingError(
                f"graphic type {self.graphic_type!r} is not allowed here",
                attribute="GraphicType",
                hint=f"use one of {', '.join(table)}",
            )
        kind = f"{'SCOORD3D' if self.is_3d else 'SCOORD'} {self.graphic_type}"
        n, wanted = len(self.points), table[self.graphic_type]
        exact = self.graphic_type in _EXACT_POINTS
        count_ok = n % dims == 0 and (n // dims == wanted if exact else n // dims >= wanted)
        if not count_ok or not all(map(math.isfinite, self.points)):
            raise EncodingError(
                f"a {kind} needs {'exactly' if exact else 'at least'} {wanted} finite "
                f"{'(x, y, z)' if dims == 3 else '(column, row)'} point"
                f"{'s' if wanted > 1 else ''} ({wanted * dims} numbers), got {n} numbers",
                attribute="GraphicData",
                hint="give the points PS3.3 C.18.6.1.2 / C.18.9.1.2 require for the graphic type",
            )
        first, last = tuple(self.points[:dims]), tuple(self.points[-dims:])
        if self.graphic_type == "POLYGON" and first != last:
            raise EncodingError(
                f"the {kind} is open: its last point {last} is not its first {first}",
                attribute="GraphicData",
                hint="repeat the first point at the end (PS3.3 C.18.9.1.2: a closed polygon)",
            )


@dataclass(frozen=True)
class SegmentReference:
    """A segment of a Segmentation instance, and the series it was made from."""

    sop_class_uid: str
    sop_instance_uid: str
    segment_number: int
    source_series_uid: str | None = None
    series_instance_uid: str | None = None

    @classmethod
    def from_segmentation(cls, seg: Dataset, segment_number: int) -> SegmentReference:
        """Refer to segment ``segment_number`` of ``seg`` (e.g. from our SEG writer).

        Raises
        ------
        InvalidAttributeError
            ``seg`` is not a Segmentation, or has no such segment.
        """
        if str(seg.get("SOPClassUID", "")) not in _SEGMENTATION_CLASSES:
            raise InvalidAttributeError(
                "the referenced object is not a Segmentation",
                attribute="SOPClassUID",
                hint="give the SEG data set the measurements were made on",
            )
        numbers = {int(s.SegmentNumber) for s in seg.get("SegmentSequence", [])}
        if segment_number not in numbers:
            raise InvalidAttributeError(
                f"the SEG has no segment {segment_number} (it has {sorted(numbers)})",
                attribute="ReferencedSegmentNumber",
                hint="use one of the SEG's segment numbers",
            )
        series = seg.get("ReferencedSeriesSequence") or []
        return cls(
            str(seg.SOPClassUID),
            str(seg.SOPInstanceUID),
            segment_number,
            str(series[0].SeriesInstanceUID) if series else None,
            str(seg.get("SeriesInstanceUID", "")) or None,
        )


@dataclass(frozen=True)
class SegmentationFrameReference:
    """One frame of a Segmentation (TID 1410 "Referenced Segmentation Frame").

    ``source_sop_class_uid``/``source_sop_instance_uid`` name the image the frame
    segments (written as "Source image for segmentation").
    """

    sop_class_uid: str
    sop_instance_uid: str
    frame_number: int
    source_sop_class_uid: str
    source_sop_instance_uid: str
    series_instance_uid: str | None = None


@dataclass(frozen=True)
class TimePoint:
    """TID 1502 Time Point Context of a measurement group (a visit in a series of visits).

    Parameters
    ----------
    label
        UMLS C2348792 "Time Point", e.g. the study date.
    order
        1 for the first visit, 2 for the next, ...: written as DCM 126070 "Subject
        Time Point Identifier" (PixelMed refuses the NUM "Time Point Order" in
        TID 1411).
    """

    label: str
    order: int | None = None

    def check(self, where: str) -> None:
        """Raise EncodingError for a time point an SR cannot hold."""
        if not self.label.strip():
            raise EncodingError(f"{where}: a time point needs a label", attribute="TimePoint")
        if self.order is not None:
            _check_number(where, "TimePointOrder", self.order)


@dataclass(frozen=True)
class MeasurementGroup:
    """One TID 1501, 1410 or 1411 measurement group (see the module docstring).

    Parameters
    ----------
    tracking_id
        Human-readable identifier, stable across reports (e.g. "nodule 1").
    tracking_uid
        Tracking Unique Identifier; derived from the report's UID when omitted.
    finding, finding_category
        DCM 121071 "Finding" and SCT 276214006 "Finding category".
    finding_site, laterality
        Where the finding is.
    region, segment, segmentation_frame
        What the group refers to (at most one of them).
    regions
        More regions of the same ROI (e.g. its outline on several slices): a group
        with more than one region is volumetric (TID 1411).
    measurements, evaluations
        The numbers and the coded findings.
    algorithm
        TID 4019 for every measurement of the group that has none.
    time_point
        TID 1502: the visit the group belongs to (longitudinal reports).
    """

    tracking_id: str
    tracking_uid: str | None = None
    finding: Code | None = None
    finding_category: Code | None = None
    finding_site: Code | None = None
    laterality: Code | None = None
    region: ImageRegion | None = None
    segment: SegmentReference | None = None
    segmentation_frame: SegmentationFrameReference | None = None
    regions: tuple[ImageRegion, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    evaluations: tuple[QualitativeEvaluation, ...] = ()
    algorithm: AlgorithmIdentification | None = None
    time_point: TimePoint | None = None

    def all_regions(self) -> tuple[ImageRegion, ...]:
        """Return the group's regions and those its measurements were measured on."""
        found = [r for r in (self.region, *self.regions) if r is not None]
        found += [m.region for m in self.measurements if m.region is not None]
        return tuple(found)

    @property
    def template(self) -> str:
        """``"1501"``, ``"1410"`` or ``"1411"``."""
        if (
            self.segment is not None
            or (
                self.region is not None
                and (self.region.graphic_type == "ELLIPSOID" or self.region.volume_surface)
            )
            or self.regions
        ):
            return "1411"
        if self.region is not None or self.segmentation_frame is not None:
            return "1410"
        return "1501"

    @classmethod
    def from_segment(
        cls,
        seg: Dataset,
        segment_number: int,
        *,
        measurements: tuple[Measurement, ...] = (),
        evaluations: tuple[QualitativeEvaluation, ...] = (),
        tracking_id: str | None = None,
        tracking_uid: str | None = None,
        algorithm: AlgorithmIdentification | None = None,
    ) -> MeasurementGroup:
        """Build the TID 1411 group for segment ``segment_number`` of ``seg`` in one call.

        The finding, finding category, finding site (and its laterality) come from
        the segment's Segmented Property Type, Category and Anatomic Region (with its
        laterality modifier). A segment of an anatomical structure without Anatomic
        Region whose type has a laterality modifier (e.g. "left kidney") is its own
        finding site, with that laterality: readers of TID 1411 (highdicom, dcmqi)
        find a group's side there. The tracking identifier and UID come from its
        Tracking ID/UID (else its label); the algorithm from its Segmentation
        Algorithm Identification.

        Parameters
        ----------
        seg
            A Segmentation data set, e.g. from
            :func:`~radbridge.iods.seg.encode_segmentation` (headers suffice).
        segment_number
            The segment the measurements were made on.
        measurements, evaluations
            The group's content.
        tracking_id, tracking_uid, algorithm
            Override what the segment says.

        Raises
        ------
        InvalidAttributeError
            ``seg`` is not a Segmentation, or has no such segment.

        Examples
        --------
        >>> import numpy as np
        >>> from radbridge.geometry import Volume
        >>> from radbridge.iods.seg import encode_segmentation
        >>> from radbridge.iods.source import Series
        >>> from radbridge.coding import Code, sct
        >>> source = Series.from_volume(Volume(np.zeros((2, 4, 4)), np.eye(4), "1.2.3"))
        >>> mask = np.zeros((2, 4, 4), np.uint8)
        >>> mask[0, 1:3, 1:3] = 1
        >>> seg = encode_segmentation(mask, source, {1: "liver"})
        >>> volume = Measurement(sct("118565006", "Volume"), 4.0, Code("mm3", "UCUM", "mm3"))
        >>> group = MeasurementGroup.from_segment(seg, 1, measurements=(volume,))
        >>> group.template, group.segment.segment_number, group.finding.meaning
        ('1411', 1, 'Liver')
        """
        reference = SegmentReference.from_segmentation(seg, segment_number)
        item = next(s for s in seg.SegmentSequence if int(s.SegmentNumber) == segment_number)
        segment = SegmentDescription.from_dataset(item)
        site, laterality = _segment_site(segment)
        found = segment.algorithm
        if algorithm is None and found is not None and found.name and found.version:
            algorithm = AlgorithmIdentification(found.name, found.version)
        return cls(
            tracking_id or segment.tracking_id or segment.label,
            tracking_uid=tracking_uid or segment.tracking_uid,
            finding=segment.property_type,
            finding_category=segment.category,
            finding_site=site,
            laterality=laterality,
            segment=reference,
            measurements=tuple(measurements),
            evaluations=tuple(evaluations),
            algorithm=algorithm,
        )

    def check(self) -> None:
        """Raise EncodingError if the group cannot be written."""
        if not self.tracking_id.strip():
            raise EncodingError(
                "a measurement group needs a tracking identifier", attribute="tracking_id"
            )
        references = [self.region, self.segment, self.segmentation_frame]
        if sum(r is not None for r in references) > 1:
            raise EncodingError(
                f"group {self.tracking_id!r} refers to more than one of a region, a segment "
                "and a segmentation frame",
                attribute="region/segment",
                hint="make one group per region or segment",
            )
        _check_laterality(self.finding_site, self.laterality, f"group {self.tracking_id!r}")
        if self.time_point is not None:
            self.time_point.check(f"group {self.tracking_id!r}")
        if not (self.measurements or self.evaluations or self.finding):
            raise EncodingError(
                f"group {self.tracking_id!r} has no finding, measurement or evaluation",
                attribute="measurements",
            )
        if self.regions and self.region is None:
            raise EncodingError(
                f"group {self.tracking_id!r} has extra regions but no region",
                attribute="regions",
                hint="put the first region in region=",
            )
        for region in (self.region, *self.regions):
            if region is not None:
                region.check()
        self._check_references()
        for measurement in self.measurements:
            measurement.check()
        for evaluation in self.evaluations:
            if evaluation.concept in RESERVED_CONCEPTS:
                raise EncodingError(
                    f"group {self.tracking_id!r}: {evaluation.concept} has a fixed meaning in a "
                    "measurement group and cannot name a qualitative evaluation",
                    attribute="evaluations",
                    hint="use the group's finding / finding site fields, or another concept",
                )

    def _check_references(self) -> None:
        where = f"group {self.tracking_id!r}"
        _check_uids(where, TrackingUID=self.tracking_uid)
        if self.segment is not None:
            seg = self.segment
            _check_uids(
                where,
                ReferencedSOPClassUID=seg.sop_class_uid,
                ReferencedSOPInstanceUID=seg.sop_instance_uid,
                SourceSeriesForSegmentation=seg.source_series_uid,
                SeriesInstanceUID=seg.series_instance_uid,
            )
            _check_number(where, "ReferencedSegmentNumber", seg.segment_number)
        if self.segmentation_frame is not None:
            frame = self.segmentation_frame
            _check_uids(
                where,
                ReferencedSOPClassUID=frame.sop_class_uid,
                ReferencedSOPInstanceUID=frame.sop_instance_uid,
                SourceImageClassUID=frame.source_sop_class_uid,
                SourceImageInstanceUID=frame.source_sop_instance_uid,
                SeriesInstanceUID=frame.series_instance_uid,
            )
            _check_number(where, "ReferencedFrameNumber", frame.frame_number)


@dataclass(frozen=True)
class DeviceObserver:
    """The algorithm or device that made the report (TID 1004)."""

    uid: str
    name: str = ""
    manufacturer: str = ""
    model_name: str = ""
    serial_number: str = ""


@dataclass(frozen=True)
class MeasurementReport:
    """A TID 1500 Measurement Report.

    Parameters
    ----------
    groups
        The measurement groups.
    procedure
        DCM 121058 "Procedure reported" (default SCT 363679005 "Imaging procedure").
    device, person
        Observers; the device is the algorithm (radbridge's writer fills one in
        from the series options when none is given).
    language
        Language of the content (default en-US).
    title
        The document title (CID 7021; default "Imaging Measurement Report").
    evaluations
        Qualitative evaluations of the whole report (TID 1500 row 12, the
        "Qualitative Evaluations" container), e.g. SCT 260870009 "Priority" =
        SCT 103391001 "Urgent" for a result that needs a radiologist now.
    """

    groups: tuple[MeasurementGroup, ...] = ()
    procedure: Code = concepts.IMAGING_PROCEDURE
    device: DeviceObserver | None = None
    person: str | None = None
    language: Code = concepts.ENGLISH_US
    title: Code = concepts.IMAGING_MEASUREMENT_REPORT
    evaluations: tuple[QualitativeEvaluation, ...] = ()

    def check(self) -> None:
        """Raise EncodingError if the report cannot be written."""
        if not self.groups:
            raise EncodingError(
                "the report has no measurement groups",
                attribute="groups",
                hint="add at least one group (a finding, measurement or evaluation)",
            )
        if self.device is not None:
            _check_uids("device observer", DeviceObserverUID=self.device.uid)
        if self.person is not None and not isinstance(self.person, str):
            raise EncodingError(
                f"the person observer name must be text, got {type(self.person).__name__}",
                attribute="PersonObserverName",
            )
        seen: set[str] = set()
        for group in self.groups:
            group.check()
            if group.tracking_id in seen:
                raise EncodingError(
                    f"two groups share the tracking identifier {group.tracking_id!r}",
                    attribute="tracking_id",
                    hint="tracking identifiers must be unique within a report",
                )
            seen.add(group.tracking_id)


def __getattr__(name: str) -> Any:
    if name == "Algorithm":  # the old name of the SR's algorithm type
        warnings.warn(
            "radbridge.sr.Algorithm is deprecated: use AlgorithmIdentification (the one "
            "algorithm type of every object; SR documents write its name and version)",
            DeprecationWarning,
            stacklevel=2,
        )
        return AlgorithmIdentification
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
