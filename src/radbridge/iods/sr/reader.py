"""Read Structured Reports: TID 1500 into dataclasses, anything else into a content tree.

:func:`read_structured_report` opens any SR or KOS document: its generic
:class:`~radbridge.iods.sr.content.ContentItem` tree, and — when the root is a TID
1500 "Imaging Measurement Report" — the :class:`MeasurementReport`.
:func:`read_measurement_report` returns the report or raises.

Readers tolerate what other implementations write: groups without tracking UIDs,
empty NUMs (absent measurements are skipped), legacy SRT codes, extra items.

Examples
--------
>>> from pydicom.data import get_testdata_file
>>> sr = read_structured_report(get_testdata_file("test-SR.dcm", download=False))
>>> sr.report is None, sr.tree.value_type
(True, 'CONTAINER')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydicom import Dataset

from radbridge.coding import Code
from radbridge.errors import (
    InvalidAttributeError,
    RadbridgeError,
    UnsupportedObjectError,
)
from radbridge.iods.multiframe.fast_read import DicomFile
from radbridge.iods.sr import concepts as c
from radbridge.iods.sr import report as tid1500
from radbridge.iods.sr.content import ContentItem, content_tree

__all__ = ["StructuredReport", "read_measurement_report", "read_structured_report"]

_SR_MODALITIES = ("SR", "KO")
_CONTEXT = {
    c.TRACKING_IDENTIFIER,
    c.TRACKING_UID,
    c.FINDING,
    c.FINDING_CATEGORY,
    c.FINDING_SITE,
    c.REFERENCED_SEGMENT,
    c.SOURCE_SERIES_FOR_SEGMENTATION,
    c.IMAGE_REGION,
    c.VOLUME_SURFACE,
    c.REFERENCED_SEGMENTATION_FRAME,
    c.SOURCE_IMAGE_FOR_SEGMENTATION,
}


@dataclass
class StructuredReport:
    """Any SR document, read.

    Attributes
    ----------
    dataset
        The data set.
    tree
        The content tree (root CONTAINER).
    template
        The root template identifier (e.g. ``"1500"``, ``"2010"``), or ``""``.
    report
        The TID 1500 report, or ``None`` for other documents.
    """

    dataset: Dataset
    tree: ContentItem
    template: str
    report: tid1500.MeasurementReport | None


def _open(file: DicomFile) -> tuple[Dataset, str]:
    from radbridge.iods.multiframe.fast_read import open_dataset

    ds, name = open_dataset(file, raw_tags=())
    return ds, name or "<dataset>"


def read_structured_report(file: DicomFile) -> StructuredReport:
    """Open any SR/KOS document (path, bytes or Dataset).

    Raises
    ------
    NotDicomError
        Not a DICOM file.
    UnsupportedObjectError
        A DICOM file that is not an SR document.
    DicomReadError
        The content tree is malformed.
    """
    ds, name = _open(file)
    try:
        return _interpret(ds, name)
    except RadbridgeError:
        raise
    except Exception as exc:  # damaged data (pydicom parses nested items lazily) of any kind
        raise InvalidAttributeError(
            f"the SR content cannot be read ({type(exc).__name__}: {exc})",
            path=name,
            attribute="ContentSequence",
            hint="the file is damaged or not a valid SR",
        ) from exc


def _interpret(ds: Dataset, name: str) -> StructuredReport:
    if str(ds.get("Modality", "")) not in _SR_MODALITIES and "ContentSequence" not in ds:
        raise UnsupportedObjectError(
            f"not a structured report (Modality {str(ds.get('Modality', '?'))[:16]!r})",
            path=name,
            attribute="Modality",
            hint="give an SR or KO document",
        )
    tree = content_tree(ds, source=name)
    templates = ds.get("ContentTemplateSequence") or []
    template = str(templates[0].get("TemplateIdentifier", "")) if templates else ""
    report = None
    if tree.concept == c.IMAGING_MEASUREMENT_REPORT or template == "1500":
        report = _report(tree, _evidence_series(ds))
    return StructuredReport(ds, tree, template, report)


def read_measurement_report(file: DicomFile) -> tid1500.MeasurementReport:
    """Read a TID 1500 SR into a :class:`MeasurementReport`.

    Raises
    ------
    UnsupportedObjectError
        The document is an SR of another template (use :func:`read_structured_report`).
    """
    sr = read_structured_report(file)
    if sr.report is None:
        raise UnsupportedObjectError(
            f"the SR is not a TID 1500 measurement report (title {sr.tree.concept})",
            path=str(getattr(sr.dataset, "filename", "") or ""),
            attribute="ContentTemplateSequence",
            hint="use read_structured_report() for its generic content tree",
        )
    return sr.report


def _code(node: ContentItem | None) -> Code | None:
    return node.value if node is not None and isinstance(node.value, Code) else None


def _text(node: ContentItem | None) -> str:
    return str(node.value) if node is not None and node.value is not None else ""


def _site(parent: ContentItem) -> tuple[Code | None, Code | None]:
    node = parent.first(c.FINDING_SITE)
    if node is None:
        return None, None
    return _code(node), _code(node.first(c.LATERALITY))


def _algorithm(node: ContentItem) -> tid1500.AlgorithmIdentification | None:
    name, version = node.first(c.ALGORITHM_NAME), node.first(c.ALGORITHM_VERSION)
    if name is None:
        return None
    return tid1500.AlgorithmIdentification(_text(name), _text(version))


def _measurement(node: ContentItem, tree: ContentItem) -> tid1500.Measurement | None:
    if node.value is None or node.concept is None:
        return None
    number, unit = node.value
    site, laterality = _site(node)
    return tid1500.Measurement(
        concept=node.concept,
        value=number,
        unit=unit or Code("1", "UCUM", "no units"),
        derivation=_code(node.first(c.DERIVATION)),
        method=_code(node.first(c.MEASUREMENT_METHOD)),
        finding_site=site,
        laterality=laterality,
        algorithm=_algorithm(node),
        region=_measured_region(node, tree),
    )


def _measured_region(node: ContentItem, tree: ContentItem) -> tid1500.ImageRegion | None:
    """Return the SCOORD/SCOORD3D a NUM was inferred from: a child, or an item it names.

    dcmjs/OHIF put one SCOORD under each length (INFERRED FROM); other writers refer
    to a region elsewhere in the tree by Referenced Content Item Identifier.
    """
    for child in node.children:
        target = _resolve(tree, child.value) if child.value_type == "REFERENCE" else child
        if target is not None and target.value_type in ("SCOORD", "SCOORD3D") and target.value:
            return replace(_region(target), purpose=target.concept)
    return None


def _resolve(tree: ContentItem, path: object) -> ContentItem | None:
    """Return the item at a Referenced Content Item Identifier (1-based, from the root)."""
    if not isinstance(path, list) or not path or path[0] != 1:
        return None
    node = tree
    for position in path[1:]:
        if not isinstance(position, int) or not 1 <= position <= len(node.children):
            return None
        node = node.children[position - 1]
    return node


def _region(node: ContentItem) -> tid1500.ImageRegion:
    if node.value_type == "SCOORD3D":
        graphic_type, points, frame_of_reference = node.value
        return tid1500.ImageRegion(
            graphic_type,
            tuple(points),
            frame_of_reference_uid=frame_of_reference,
            # an ELLIPSOID is always a volume surface; the flag marks the other types
            volume_surface=node.concept == c.VOLUME_SURFACE and graphic_type != "ELLIPSOID",
        )
    graphic_type, points = node.value
    source = next((ch for ch in node.children if ch.value_type == "IMAGE"), None)
    refs = source.value if source is not None else []
    sop_class, sop, frames, _ = refs[0] if refs else ("", "", [], [])
    return tid1500.ImageRegion(
        graphic_type,
        tuple(points),
        sop_class_uid=sop_class or None,
        sop_instance_uid=sop or None,
        frame_number=frames[0] if frames else None,
    )


def _image_refs(node: ContentItem | None) -> list[Any]:
    """Return the references of an IMAGE item (empty for anything else)."""
    if node is None or node.value_type != "IMAGE" or not node.value:
        return []
    refs: list[Any] = node.value
    return refs


def _segmentation_frame(
    node: ContentItem, evidence: dict[str, str]
) -> tid1500.SegmentationFrameReference | None:
    frame_refs = _image_refs(node.first(c.REFERENCED_SEGMENTATION_FRAME))
    if not frame_refs:
        return None
    seg_class, seg_sop, frames, _ = frame_refs[0]
    source_refs = _image_refs(node.first(c.SOURCE_IMAGE_FOR_SEGMENTATION))
    src = source_refs[0] if source_refs else None
    return tid1500.SegmentationFrameReference(
        seg_class,
        seg_sop,
        frames[0] if frames else 1,
        src[0] if src else "",
        src[1] if src else "",
        evidence.get(seg_sop) or None,
    )


def _segment(node: ContentItem, evidence: dict[str, str]) -> tid1500.SegmentReference | None:
    refs = _image_refs(node.first(c.REFERENCED_SEGMENT))
    if not refs:
        return None
    sop_class, sop, _, segments = refs[0]
    return tid1500.SegmentReference(
        sop_class,
        sop,
        segments[0] if segments else 0,
        _text(node.first(c.SOURCE_SERIES_FOR_SEGMENTATION)) or None,
        evidence.get(sop) or None,
    )


def _evaluations(node: ContentItem) -> tuple[tid1500.QualitativeEvaluation, ...]:
    return tuple(
        tid1500.QualitativeEvaluation(n.concept, n.value)
        for n in node.children
        if n.value_type == "CODE"
        and n.relationship == "CONTAINS"
        and not n.is_named(*_CONTEXT)
        and n.concept is not None
        and isinstance(n.value, Code)
    )


def _time_point(node: ContentItem) -> tid1500.TimePoint | None:
    """Read the TID 1502 Time Point Context of a group."""
    label = node.first(c.TIME_POINT)
    if label is None:
        return None
    order = _text(node.first(c.SUBJECT_TIME_POINT_IDENTIFIER))
    return tid1500.TimePoint(
        _text(label), order=int(order) if order.isdigit() and int(order) else None
    )


def _group(
    node: ContentItem, evidence: dict[str, str], tree: ContentItem
) -> tid1500.MeasurementGroup:
    regions = [
        _region(n)
        for n in node.children
        if n.concept in (c.IMAGE_REGION, c.VOLUME_SURFACE)
        and n.value_type in ("SCOORD", "SCOORD3D")
        and n.value
    ]
    if len(regions) > 1:  # several regions are volumetric anyway: the flag marks a single one
        regions = [replace(r, volume_surface=False) for r in regions]
    site, laterality = _site(node)
    measurements = tuple(
        m
        for m in (
            _measurement(n, tree)
            for n in node.children
            if n.value_type == "NUM" and n.relationship != "HAS OBS CONTEXT"
        )
        if m
    )
    return tid1500.MeasurementGroup(
        tracking_id=_text(node.first(c.TRACKING_IDENTIFIER)),
        tracking_uid=_text(node.first(c.TRACKING_UID)) or None,
        finding=_code(node.first(c.FINDING)),
        finding_category=_code(node.first(c.FINDING_CATEGORY)),
        finding_site=site,
        laterality=laterality,
        region=regions[0] if regions else None,
        regions=tuple(regions[1:]),
        segment=_segment(node, evidence),
        segmentation_frame=_segmentation_frame(node, evidence),
        measurements=measurements,
        evaluations=_evaluations(node),
        time_point=_time_point(node),
    )


def _device(tree: ContentItem) -> tid1500.DeviceObserver | None:
    uid = tree.first(c.DEVICE_OBSERVER_UID)
    if uid is None:
        return None
    return tid1500.DeviceObserver(
        uid=_text(uid),
        name=_text(tree.first(c.DEVICE_OBSERVER_NAME)),
        manufacturer=_text(tree.first(c.DEVICE_OBSERVER_MANUFACTURER)),
        model_name=_text(tree.first(c.DEVICE_OBSERVER_MODEL_NAME)),
        serial_number=_text(tree.first(c.DEVICE_OBSERVER_SERIAL_NUMBER)),
    )


def _evidence_series(ds: Dataset) -> dict[str, str]:
    """Map SOP Instance UID -> Series Instance UID from the evidence sequences."""
    series: dict[str, str] = {}
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(keyword, []):
            for item in study.get("ReferencedSeriesSequence", []):
                for ref in item.get("ReferencedSOPSequence", []):
                    series[str(ref.get("ReferencedSOPInstanceUID", ""))] = str(
                        item.get("SeriesInstanceUID", "")
                    )
    return series


def _report(tree: ContentItem, evidence: dict[str, str]) -> tid1500.MeasurementReport:
    measurements = tree.first(c.IMAGING_MEASUREMENTS)
    groups = tuple(
        _group(g, evidence, tree)
        for g in (measurements.find(c.MEASUREMENT_GROUP) if measurements else [])
    )
    person = tree.first(c.PERSON_OBSERVER_NAME)
    evaluations = tree.first(c.QUALITATIVE_EVALUATIONS)
    return tid1500.MeasurementReport(
        groups=groups,
        procedure=_code(tree.first(c.PROCEDURE_REPORTED)) or c.IMAGING_PROCEDURE,
        device=_device(tree),
        person=_text(person) or None,
        language=_code(tree.first(c.LANGUAGE)) or c.ENGLISH_US,
        title=tree.concept or c.IMAGING_MEASUREMENT_REPORT,
        evaluations=_evaluations(evaluations) if evaluations is not None else (),
    )
