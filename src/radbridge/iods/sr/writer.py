"""Write a :class:`~radbridge.iods.sr.report.MeasurementReport` as a TID 1500 SR document.

The document is Comprehensive 3D SR when a group uses 3D coordinates and
Comprehensive SR otherwise. Its content, in order: language, observer context
(device; person if given), procedure reported, the Image Library (one entry per
source image), and the Imaging Measurements container with one Measurement Group
per :class:`~radbridge.iods.sr.report.MeasurementGroup`. Every referenced instance is
listed in the Current Requested Procedure Evidence Sequence.

Examples
--------
>>> import numpy as np
>>> from radbridge.coding import Code, sct
>>> from radbridge.geometry import Volume
>>> from radbridge.iods.source import Series
>>> from radbridge.iods.sr.report import Measurement, MeasurementGroup, MeasurementReport
>>> source = Series.from_volume(Volume(np.zeros((2, 4, 4)), np.eye(4), "1.2.3"))
>>> group = MeasurementGroup(
...     "liver", finding=sct("10200004", "Liver"),
...     measurements=(Measurement(sct("118565006", "Volume"), 1520.0, Code("ml", "UCUM", "ml")),))
>>> sr = encode_measurement_report(MeasurementReport(groups=(group,)), source)
>>> sr.Modality, sr.ContentTemplateSequence[0].TemplateIdentifier
('SR', '1500')
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.dataset import FileDataset
from pydicom.uid import ExplicitVRLittleEndian

from radbridge.coding import Code
from radbridge.errors import EncodingError
from radbridge.geometry import SliceRef
from radbridge.iods.common import SeriesOptions, finish_file, new_instance
from radbridge.iods.source import (
    Series,
    copy_context,
    evidence_by_study,
    evidence_sequence,
    write_context,
)
from radbridge.iods.sr import concepts as c
from radbridge.iods.sr import report as tid1500
from radbridge.iods.sr.content import (
    code_item,
    container_item,
    image_item,
    num_item,
    pname_item,
    scoord3d_item,
    scoord_item,
    text_item,
    uidref_item,
)
from radbridge.uids import derived_uid

__all__ = [
    "COMPREHENSIVE_3D_SR_STORAGE",
    "COMPREHENSIVE_SR_STORAGE",
    "encode_measurement_report",
]

log = logging.getLogger(__name__)

COMPREHENSIVE_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.33"
COMPREHENSIVE_3D_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.34"

# SEG, SR/KOS, PM, RTSTRUCT: evidence that is not an image the report was measured on.
_DERIVED_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.66.",
    "1.2.840.10008.5.1.4.1.1.88.",
    "1.2.840.10008.5.1.4.1.1.30",
    "1.2.840.10008.5.1.4.1.1.481.3",
)
_DEFAULT_OPTIONS = SeriesOptions(series_description="radbridge measurements", series_number=301)


def _algorithm_items(algorithm: tid1500.AlgorithmIdentification | None) -> list[Dataset]:
    if algorithm is None:
        return []
    return [
        text_item("HAS CONCEPT MOD", c.ALGORITHM_NAME, algorithm.name),
        text_item("HAS CONCEPT MOD", c.ALGORITHM_VERSION, algorithm.version),
    ]


def _site_items(site: Code | None, laterality: Code | None) -> list[Dataset]:
    if site is None:
        return []
    item = code_item("HAS CONCEPT MOD", c.FINDING_SITE, site)
    if laterality is not None:
        item.ContentSequence = [code_item("HAS CONCEPT MOD", c.LATERALITY, laterality)]
    return [item]


def _measurement(
    m: tid1500.Measurement, default_algorithm: tid1500.AlgorithmIdentification | None
) -> Dataset:
    children: list[Dataset] = []
    if m.method is not None:
        children.append(code_item("HAS CONCEPT MOD", c.MEASUREMENT_METHOD, m.method))
    if m.derivation is not None:
        children.append(code_item("HAS CONCEPT MOD", c.DERIVATION, m.derivation))
    children += _site_items(m.finding_site, m.laterality)
    children += _algorithm_items(m.algorithm or default_algorithm)
    if m.region is not None:  # TID 300 INFERRED FROM TID 320: its purpose, if any
        children.append(_scoord(m.region, "INFERRED FROM", m.region.purpose))
    return num_item("CONTAINS", m.concept, float(m.value), m.unit, children)


def _region_item(group: tid1500.MeasurementGroup, region: tid1500.ImageRegion) -> Dataset:
    """Return a group region: in TID 1411 3D coordinates are always the Volume Surface."""
    surface = group.template == "1411" and region.is_3d
    return _scoord(region, "CONTAINS", c.VOLUME_SURFACE if surface else c.IMAGE_REGION)


def _scoord(region: tid1500.ImageRegion, relationship: str, concept: Code | None) -> Dataset:
    """Return the SCOORD (with the image it was drawn on) or SCOORD3D item of a region."""
    if region.is_3d:
        return scoord3d_item(
            relationship,
            concept,
            region.graphic_type,
            region.points,
            str(region.frame_of_reference_uid),
        )
    source = image_item(
        "SELECTED FROM",
        None,
        str(region.sop_class_uid),
        str(region.sop_instance_uid),
        frames=[region.frame_number] if region.frame_number else [],
    )
    return scoord_item(relationship, concept, region.graphic_type, region.points, source)


def _region_items(group: tid1500.MeasurementGroup, source_series: str | None) -> list[Dataset]:
    items = [_region_item(group, r) for r in (group.region, *group.regions) if r is not None]
    surface = group.region is not None and group.template == "1411" and group.region.is_3d
    if surface and source_series:
        # TID 1411: a Volume Surface comes with the series it was segmented from
        items.append(uidref_item("CONTAINS", c.SOURCE_SERIES_FOR_SEGMENTATION, source_series))
    frame = group.segmentation_frame
    if frame is not None:
        items += [
            image_item(
                "CONTAINS",
                c.REFERENCED_SEGMENTATION_FRAME,
                frame.sop_class_uid,
                frame.sop_instance_uid,
                frames=[frame.frame_number],
            ),
            image_item(
                "CONTAINS",
                c.SOURCE_IMAGE_FOR_SEGMENTATION,
                frame.source_sop_class_uid,
                frame.source_sop_instance_uid,
            ),
        ]
    return items


@dataclass(frozen=True)
class _Source:
    """What a report is written on: patient/study context and the measured images."""

    context: Dataset
    slice_refs: tuple[SliceRef, ...]
    series_instance_uid: str | None
    study_instance_uid: str
    frame_of_reference_uid: str | None
    image_size: tuple[int, int] | None  # rows, columns; None when not known

    @classmethod
    def of(cls, source: Series | Dataset) -> _Source:
        if isinstance(source, Series):
            _, rows, columns = source.geometry.shape
            return cls(
                source.context,
                tuple(source.slice_refs),
                source.series_instance_uid,
                source.study_instance_uid,
                source.frame_of_reference_uid,
                (rows, columns),
            )
        return cls._of_report(source)

    @classmethod
    def _of_report(cls, sr: Dataset) -> _Source:
        """Take the context and images of another SR (its Current Requested Procedure Evidence)."""
        study = str(sr.get("StudyInstanceUID", ""))
        refs: list[SliceRef] = []
        series_uid = None
        for item in sr.get("CurrentRequestedProcedureEvidenceSequence", []):
            for series in item.get("ReferencedSeriesSequence", []):
                images = [
                    SliceRef(str(r.ReferencedSOPClassUID), str(r.ReferencedSOPInstanceUID))
                    for r in series.get("ReferencedSOPSequence", [])
                    if not str(r.ReferencedSOPClassUID).startswith(_DERIVED_CLASSES)
                ]
                if images and series_uid is None and str(item.StudyInstanceUID) == study:
                    series_uid, refs = str(series.SeriesInstanceUID), images
        return cls(copy_context(sr), tuple(refs), series_uid, study, None, None)


def _check_in_source(
    group: tid1500.MeasurementGroup, source: _Source, sop_class: str | None, sop: str | None
) -> None:
    """Refuse a reference to an image that is not in the source series."""
    classes = {r.sop_instance_uid: r.sop_class_uid for r in source.slice_refs}
    if sop not in classes or classes[sop] != sop_class:
        raise EncodingError(
            f"group {group.tracking_id!r} refers to image {sop} ({sop_class}), which is not an "
            "instance of the source series",
            attribute="ReferencedSOPInstanceUID",
            hint="draw regions on images of the series passed as source (source.slice_refs)",
        )


def _check_regions(report: tid1500.MeasurementReport, source: _Source) -> None:
    """Refuse regions on images outside the source series, or outside their image."""
    rows, columns = source.image_size or (math.inf, math.inf)
    frame_of_reference = source.frame_of_reference_uid
    for group in report.groups:
        frame = group.segmentation_frame
        if frame is not None:
            _check_in_source(
                group, source, frame.source_sop_class_uid, frame.source_sop_instance_uid
            )
        for region in group.all_regions():
            if region.is_3d:
                if frame_of_reference and region.frame_of_reference_uid != frame_of_reference:
                    raise EncodingError(
                        f"group {group.tracking_id!r}: the {region.graphic_type} is in frame of "
                        f"reference {region.frame_of_reference_uid}, the source series in "
                        f"{frame_of_reference}",
                        attribute="ReferencedFrameOfReferenceUID",
                        hint="give 3D coordinates in the source series' frame of reference",
                    )
                continue
            _check_in_source(group, source, region.sop_class_uid, region.sop_instance_uid)
            xs, ys = region.points[0::2], region.points[1::2]
            if min(xs) < 0 or min(ys) < 0 or max(xs) > columns or max(ys) > rows:
                raise EncodingError(
                    f"group {group.tracking_id!r}: the {region.graphic_type} lies outside the "
                    f"{columns}x{rows} image",  # never reached with an unknown size
                    attribute="GraphicData",
                    hint="give (column, row) image coordinates within the image",
                )


def _check_tid1411(report: tid1500.MeasurementReport, source: _Source) -> None:
    """Refuse volumetric groups TID 1411 (and highdicom, its reader) cannot hold.

    In PS3.16 TID 1411, "Image Region" (SCOORD, row 5), "Referenced Segment" (row 7) and
    "Volume Surface" (SCOORD3D, row 10) exclude each other, and rows 7 and 10 need
    "Source image for segmentation" or "Source series for segmentation" (rows 11, 12):
    the series is the segment's, else the source series. highdicom reads a Volume
    Surface of one graphic type only.
    """
    for group in report.groups:
        if group.template != "1411":
            continue
        where = f"group {group.tracking_id!r}"
        regions = [r for r in (group.region, *group.regions) if r is not None]
        if len({r.is_3d for r in regions}) > 1:
            raise EncodingError(
                f"{where} mixes 2D and 3D regions in one volumetric ROI",
                attribute="regions",
                hint="give all outlines on images (Image Region) or all in 3D (Volume Surface)",
            )
        kinds = {r.graphic_type for r in regions if r.is_3d}
        if len(kinds) > 1:
            raise EncodingError(
                f"{where}: its volume surface mixes graphic types {sorted(kinds)}",
                attribute="GraphicType",
                hint="give every 3D outline of a volume surface one graphic type "
                "(e.g. POLYGON on each slice), or make one group per shape",
            )
        given = group.segment.source_series_uid if group.segment is not None else None
        if (kinds or group.segment is not None) and not (given or source.series_instance_uid):
            # a source known only as a volume (Series.from_volume) names no series: the
            # report is still made, without the item, as every such result set needs it
            log.warning(
                "%s: the source names no series, so the SR cannot say which series was "
                "segmented (TID 1411 'Source series for segmentation' left out); pass the "
                "source series itself, or SegmentReference(source_series_uid=...)",
                where,
            )


def _check_evidence(
    report: tid1500.MeasurementReport,
    related: Sequence[Dataset],
    pertinent_evidence: tuple[tuple[str, str, str, str], ...],
) -> None:
    """Refuse a SEG the evidence could not list: no series UID, not in related or pertinent."""
    passed = {str(ds.get("SOPInstanceUID", "")) for ds in related}
    passed |= {sop for *_, sop in pertinent_evidence}
    for group in report.groups:
        for ref in (group.segment, group.segmentation_frame):
            if ref is None or ref.series_instance_uid or ref.sop_instance_uid in passed:
                continue
            raise EncodingError(
                f"group {group.tracking_id!r} refers to SEG {ref.sop_instance_uid} without "
                "its Series Instance UID, which the evidence (PS3.3 C.17.2.3) must list",
                attribute="SeriesInstanceUID",
                hint="give series_instance_uid (the SEG's; from_segmentation() fills it), "
                "or pass the SEG data set in related= (or list it in pertinent_evidence=)",
            )


def _time_point_items(point: tid1500.TimePoint | None) -> list[Dataset]:
    """Return the TID 1502 Time Point Context items (HAS OBS CONTEXT)."""
    if point is None:
        return []
    items = []
    if point.order is not None:  # as text: PixelMed refuses the NUM "Time Point Order" here
        items.append(
            text_item("HAS OBS CONTEXT", c.SUBJECT_TIME_POINT_IDENTIFIER, str(point.order))
        )
    items.append(text_item("HAS OBS CONTEXT", c.TIME_POINT, point.label))
    return items


def _group(
    group: tid1500.MeasurementGroup, tracking_uid: str, source_series: str | None
) -> Dataset:
    items = [
        text_item("HAS OBS CONTEXT", c.TRACKING_IDENTIFIER, group.tracking_id),
        uidref_item("HAS OBS CONTEXT", c.TRACKING_UID, group.tracking_uid or tracking_uid),
    ]
    if group.finding_category is not None:
        items.append(code_item("CONTAINS", c.FINDING_CATEGORY, group.finding_category))
    if group.finding is not None:
        items.append(code_item("CONTAINS", c.FINDING, group.finding))
    items += _time_point_items(group.time_point)  # TID 1502 follows the finding
    items += _site_items(group.finding_site, group.laterality)
    if group.segment is not None:
        seg = group.segment
        items.append(
            image_item(
                "CONTAINS",
                c.REFERENCED_SEGMENT,
                seg.sop_class_uid,
                seg.sop_instance_uid,
                segments=[seg.segment_number],
            )
        )
        series = seg.source_series_uid or source_series  # None: warned by _check_tid1411
        if series:
            items.append(uidref_item("CONTAINS", c.SOURCE_SERIES_FOR_SEGMENTATION, series))
    items += _region_items(group, source_series)
    items += [_measurement(m, group.algorithm) for m in group.measurements]
    items += [code_item("CONTAINS", e.concept, e.value) for e in group.evaluations]
    return container_item("CONTAINS", c.MEASUREMENT_GROUP, items, template=group.template)


def _observers(
    report: tid1500.MeasurementReport, options: SeriesOptions, sop_uid: str
) -> list[Dataset]:
    items: list[Dataset] = []
    if report.person:
        items += [
            code_item("HAS OBS CONTEXT", c.OBSERVER_TYPE, c.PERSON),
            pname_item("HAS OBS CONTEXT", c.PERSON_OBSERVER_NAME, report.person),
        ]
    device = report.device or tid1500.DeviceObserver(
        uid=derived_uid("radbridge-device", options.manufacturer_model_name),
        name=options.manufacturer_model_name,
        manufacturer=options.manufacturer,
        model_name=options.manufacturer_model_name,
        serial_number=options.device_serial_number,
    )
    items += [
        code_item("HAS OBS CONTEXT", c.OBSERVER_TYPE, c.DEVICE),
        uidref_item("HAS OBS CONTEXT", c.DEVICE_OBSERVER_UID, device.uid),
    ]
    for concept, value in (
        (c.DEVICE_OBSERVER_NAME, device.name),
        (c.DEVICE_OBSERVER_MANUFACTURER, device.manufacturer),
        (c.DEVICE_OBSERVER_MODEL_NAME, device.model_name),
        (c.DEVICE_OBSERVER_SERIAL_NUMBER, device.serial_number),
    ):
        if value:
            items.append(text_item("HAS OBS CONTEXT", concept, value))
    items.append(code_item("HAS OBS CONTEXT", c.SUBJECT_CLASS, c.PATIENT))  # TID 1006
    return items


def _library(source: _Source) -> Dataset | None:
    refs = list(dict.fromkeys((r.sop_class_uid, r.sop_instance_uid) for r in source.slice_refs))
    if not refs:
        return None
    images = [image_item("CONTAINS", None, cls, uid) for cls, uid in refs]
    group = container_item("CONTAINS", c.IMAGE_LIBRARY_GROUP, images)
    return container_item("CONTAINS", c.IMAGE_LIBRARY, [group])


def _references(report: tid1500.MeasurementReport, source: _Source) -> list[tuple[str, str, str]]:
    refs: list[tuple[str, str, str]] = []
    source_series = source.series_instance_uid
    if source_series:
        refs += [(source_series, r.sop_class_uid, r.sop_instance_uid) for r in source.slice_refs]
    for group in report.groups:
        seg = group.segment
        if seg is not None and seg.series_instance_uid:
            refs.append((seg.series_instance_uid, seg.sop_class_uid, seg.sop_instance_uid))
        frame = group.segmentation_frame
        if frame is not None:
            if frame.series_instance_uid:
                refs.append(
                    (frame.series_instance_uid, frame.sop_class_uid, frame.sop_instance_uid)
                )
            if source_series:
                refs.append(
                    (source_series, frame.source_sop_class_uid, frame.source_sop_instance_uid)
                )
        for region in group.all_regions():
            if not region.is_3d and source_series:
                refs.append(
                    (source_series, str(region.sop_class_uid), str(region.sop_instance_uid))
                )
    return refs


def sr_document(
    sop_class: str,
    options: SeriesOptions,
    source: Series | _Source,
    *,
    modality: str,
    completion: str = "PARTIAL",
) -> Dataset:
    """Start an SR-family document: SOP common, series, patient/study context, flags."""
    ds = new_instance(sop_class, options, modality=modality)
    for keyword in ("ContentLabel", "ContentDescription", "ContentCreatorName"):
        del ds[keyword]  # Content Identification is not part of the SR IODs
    write_context(ds, source.context)
    ds.ReferencedPerformedProcedureStepSequence = []
    if modality == "SR":
        ds.CompletionFlag = completion
        ds.VerificationFlag = "UNVERIFIED"
        ds.PerformedProcedureCodeSequence = []
    return ds


def finish(ds: Dataset) -> FileDataset:
    """Wrap ``ds`` as a file data set in Explicit VR Little Endian (UTF-8 if its texts need it)."""
    return finish_file(ds, ExplicitVRLittleEndian)


def encode_measurement_report(
    report: tid1500.MeasurementReport,
    source: Series | Dataset,
    *,
    options: SeriesOptions | None = None,
    related: Sequence[Dataset] = (),
    pertinent_evidence: Iterable[tuple[str, str, str, str]] = (),
) -> FileDataset:
    """Encode ``report`` on ``source`` (its patient, study and images) as a TID 1500 SR.

    Parameters
    ----------
    report
        What to write; checked first (nothing is built from invalid input).
    source
        The series the measurements were made on
        (:func:`radbridge.io.series.read_source_series` or
        :meth:`~radbridge.iods.source.Series.from_datasets`), or another SR made on
        it (its patient, study and evidence are taken; 2D regions are then not
        checked against the image size).
    options
        Series, UIDs, equipment and timestamp; fix the UIDs and timestamp for
        byte-identical re-runs.
    related
        Other objects made for the same request (e.g. the SEG and the KOS of one
        AI result): listed in the Current Requested Procedure Evidence, so the
        report is the root that names every object of the result.
    pertinent_evidence
        Other objects the report relies on, as (study, series, SOP class, SOP
        instance) UIDs: written in the Pertinent Other Evidence Sequence (e.g. the
        prior study's SR, SEG and images of a longitudinal comparison).

    Returns
    -------
    pydicom.dataset.FileDataset
        Comprehensive (3D) SR, ready for ``save_as``.

    Raises
    ------
    EncodingError
        A group, measurement or region is invalid (non-UCUM unit, NaN, ...).
    """
    report.check()
    target = _Source.of(source)
    _check_regions(report, target)
    _check_tid1411(report, target)
    pertinent = tuple(pertinent_evidence)
    _check_evidence(report, related, pertinent)
    options = options or _DEFAULT_OPTIONS
    three_d = any(r.is_3d for g in report.groups for r in g.all_regions())
    sop_class = COMPREHENSIVE_3D_SR_STORAGE if three_d else COMPREHENSIVE_SR_STORAGE
    ds = sr_document(sop_class, options, target, modality="SR")
    sop_uid = str(ds.SOPInstanceUID)
    content: list[Dataset] = [code_item("HAS CONCEPT MOD", c.LANGUAGE, report.language)]
    content += _observers(report, options, sop_uid)
    content.append(code_item("HAS CONCEPT MOD", c.PROCEDURE_REPORTED, report.procedure))
    library = _library(target)
    if library is not None:
        content.append(library)
    groups = [
        _group(g, derived_uid(sop_uid, "tracking", str(i)), target.series_instance_uid)
        for i, g in enumerate(report.groups)
    ]
    content.append(container_item("CONTAINS", c.IMAGING_MEASUREMENTS, groups))
    if report.evaluations:
        evaluations = [code_item("CONTAINS", e.concept, e.value) for e in report.evaluations]
        content.append(container_item("CONTAINS", c.QUALITATIVE_EVALUATIONS, evaluations))
    root = container_item(None, report.title, content, template="1500")
    for keyword in root:
        ds[keyword.tag] = keyword
    _add_evidence(ds, report, target, related, pertinent)
    return finish(ds)


def _add_evidence(
    ds: Dataset,
    report: tid1500.MeasurementReport,
    target: _Source,
    related: Sequence[Dataset],
    pertinent_evidence: tuple[tuple[str, str, str, str], ...],
) -> None:
    """Write the Current Requested Procedure and the Pertinent Other Evidence."""
    elsewhere = {sop for _, _, _, sop in pertinent_evidence}
    references = [r for r in _references(report, target) if r[2] not in elsewhere] + [
        (str(r.SeriesInstanceUID), str(r.SOPClassUID), str(r.SOPInstanceUID)) for r in related
    ]
    evidence = evidence_sequence(target.study_instance_uid, references)
    if evidence:
        ds.CurrentRequestedProcedureEvidenceSequence = evidence
    pertinent = evidence_by_study(pertinent_evidence)
    if pertinent:
        ds.PertinentOtherEvidenceSequence = pertinent
