"""The ``sr`` output: the result's measurements and findings as a TID 1500 report.

One volumetric group (TID 1411) per segment of the SEG encoded before it
(:meth:`~radbridge.iods.sr.MeasurementGroup.from_segment`), and one per object for
per-lesion values, with the model's measurements and qualitative findings for that
label (an object's centroid, when the model gives one, is written as the 3D point its
measurements were made at, DCM 128138 "Center of Mass": what a longitudinal comparison
matches lesions by); values without a label go into an image-level group (TID 1501). Each
object measured one by one also gets its long axis on its key slice, drawn on the
image (a TID 1410 group with POLYLINE SCOORDs that OHIF shows:
:mod:`radbridge.results.planar`). The report is the root of the result: its
evidence lists every object encoded before it (the SEG, the KOS, ...).
Measurement names the model gives as text are coded from a small table (volume,
mean, standard deviation, long axis, diameter); others get a local
``99RADBRIDGE`` code. A ready report (``SrOutput(report=...)``, e.g. read from
JSON) is encoded as it is.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import ClassVar

from pydicom import Dataset

from radbridge.coding import Code, dcm, sct
from radbridge.errors import EncodingError
from radbridge.iods.source import Series
from radbridge.models import Finding, ModelMeasurement, ModelResult
from radbridge.results.planar import long_axis_groups
from radbridge.results.registry import Output, OutputKind, ResultContext
from radbridge.sr import (
    AlgorithmIdentification,
    ImageRegion,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    QualitativeEvaluation,
    encode_measurement_report,
)
from radbridge.sr import concepts as c

__all__ = ["KIND", "SrOutput", "measurement_report"]

_VOLUME = sct("118565006", "Volume")
_HU = dcm("112031", "Attenuation Coefficient")
_NAMES: dict[str, tuple[Code, Code | None, Code | None]] = {
    # name: (concept, derivation, method)
    "volume": (_VOLUME, None, dcm("126030", "Sum of segmented voxel volumes")),
    "mean": (_HU, sct("373098007", "Mean"), None),
    "standard deviation": (_HU, sct("386136009", "Standard Deviation"), None),
    "long axis": (sct("103339001", "Long axis"), None, None),
    "diameter": (sct("81827009", "Diameter"), None, None),
}
_FINDINGS = {
    "lung nodule": sct("27925004", "Nodule"),
    "liver lesion": sct("52988006", "Lesion"),
    "nodule": sct("27925004", "Nodule"),
    "lesion": sct("52988006", "Lesion"),
}
_VALUES = {"present": c.PRESENT, "absent": c.ABSENT}


@dataclass(frozen=True)
class SrOutput(Output):
    """Settings of the ``sr`` output.

    Parameters
    ----------
    report
        A ready report to encode instead of one built from the result.
    urgent
        Mark the report urgent: a report-level qualitative evaluation SCT 260870009
        "Priority" = SCT 103391001 "Urgent" (TID 1500's "Qualitative Evaluations";
        the gateway sets it for a result its rule finds urgent, docs/triage.md).
    long_axes
        Add the image-plane long axis of each object measured one by one
        (:mod:`radbridge.results.planar`).
    """

    kind: ClassVar[str] = "sr"
    report: MeasurementReport | None = None
    urgent: bool = False
    long_axes: bool = True


def _local(text: str) -> Code:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text.strip().lower()).strip("-")[:16] or "value"
    return Code(slug, "99RADBRIDGE", text[:64])


def _centre(m: ModelMeasurement, frame_of_reference: str | None) -> ImageRegion | None:
    """Return an object's centroid as a 3D point ("Center of Mass"), if the model gave one."""
    if m.centroid_lps is None or not frame_of_reference:
        return None
    return ImageRegion(
        "POINT",
        tuple(float(v) for v in m.centroid_lps),
        frame_of_reference_uid=frame_of_reference,
        purpose=c.CENTER_OF_MASS,
    )


def _measurements(
    items: Iterable[ModelMeasurement],
    algorithm: AlgorithmIdentification,
    frame_of_reference: str | None = None,
) -> tuple[Measurement, ...]:
    out = []
    for m in items:
        if not str(m.unit).strip():
            raise EncodingError(
                f"measurement {m.name!r} (label {m.label}) has no unit",
                attribute="MeasurementUnitsCodeSequence",
                hint='give its UCUM unit in ModelMeasurement(unit=...), e.g. "mm", "ml", '
                '"mm3", "[hnsf\'U]"; "1" for a value without unit',
            )
        concept, derivation, method = _NAMES.get(m.name.lower(), (None, None, None))
        out.append(
            Measurement(
                concept=m.concept or concept or _local(m.name),
                value=float(m.value),
                unit=Code(m.unit, "UCUM", m.unit),
                derivation=derivation,
                method=method,
                algorithm=algorithm,
                region=_centre(m, frame_of_reference),
            )
        )
    return tuple(out)


def _evaluations(findings: list[Finding]) -> tuple[QualitativeEvaluation, ...]:
    return tuple(
        QualitativeEvaluation(
            f.concept_code or _FINDINGS.get(f.concept.lower()) or _local(f.concept),
            f.value_code or _VALUES.get(f.value.lower()) or _local(f.value),
        )
        for f in findings
    )


def _probabilities(
    findings: list[Finding], algorithm: AlgorithmIdentification
) -> tuple[Measurement, ...]:
    return tuple(
        Measurement(
            c.PROBABILITY, float(f.probability), Code("1", "UCUM", "no units"), algorithm=algorithm
        )
        for f in findings
        if f.probability is not None
    )


def _segment_groups(
    seg: Dataset,
    number: int,
    by_instance: dict[int | None, list[ModelMeasurement]],
    findings: list[Finding],
    algorithm: AlgorithmIdentification,
) -> list[MeasurementGroup]:
    """Return the group of one segment, then one per object of it (per-lesion values)."""
    group = MeasurementGroup.from_segment(
        seg,
        number,
        measurements=_measurements(by_instance.get(None, []), algorithm)
        + _probabilities(findings, algorithm),
        evaluations=_evaluations(findings),
    )
    per_object = [
        replace(
            group,
            tracking_id=f"{group.tracking_id} {instance}",
            tracking_uid=None,
            measurements=_measurements(
                by_instance[instance], algorithm, str(seg.get("FrameOfReferenceUID", "")) or None
            ),
            evaluations=(),
        )
        for instance in sorted(i for i in by_instance if i is not None)
    ]
    return [group, *per_object]


def measurement_report(
    result: ModelResult,
    seg: Dataset,
    numbers: Iterable[int],
    *,
    series: Series | None = None,
) -> MeasurementReport:
    """Build the TID 1500 report of ``result`` on segments ``numbers`` of ``seg``.

    With ``series`` (the source), objects measured one by one also get their
    image-plane long axis (:func:`~radbridge.results.planar.long_axis_groups`).
    """
    algorithm = AlgorithmIdentification(result.algorithm.name, result.algorithm.version)
    by_label: dict[int | None, dict[int | None, list[ModelMeasurement]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for m in result.measurements:
        by_label[m.label][m.instance].append(m)
    findings: dict[int | None, list[Finding]] = defaultdict(list)
    for f in result.findings:
        findings[f.label].append(f)
    described = set(numbers)
    groups = [
        group
        for number in sorted(described)
        for group in _segment_groups(
            seg, number, by_label.get(number, {}), findings.get(number, []), algorithm
        )
    ]
    if series is not None and result.labels is not None:
        main: dict[int, MeasurementGroup] = {}
        for group in groups:  # each segment's own group comes before its per-object ones
            if group.segment is not None:
                main.setdefault(group.segment.segment_number, group)
        groups += long_axis_groups(series, result.labels, result.measurements, main, algorithm)
    loose = [
        m
        for label, items in by_label.items()
        if label not in described
        for ms in items.values()
        for m in ms
    ]
    loose_findings = [f for label, fs in findings.items() if label not in described for f in fs]
    if loose or loose_findings:
        groups.append(
            MeasurementGroup(
                tracking_id="image",
                measurements=_measurements(loose, algorithm)
                + _probabilities(loose_findings, algorithm),
                evaluations=_evaluations(loose_findings),
            )
        )
    return MeasurementReport(groups=tuple(groups))


def encode(context: ResultContext, output: SrOutput) -> Dataset:
    """Encode the given report, or the result's measurements on the SEG's segments."""
    report = output.report
    if report is None:
        seg = context.encoded.get("seg")
        if seg is None:
            raise EncodingError(
                "the sr output refers to the segments of the seg output, which was not encoded",
                attribute="outputs",
                hint='request "seg" before "sr", or pass SrOutput(report=...)',
            )
        numbers = context.segment_numbers  # labels with gaps are the SEG's 1..N
        described = [numbers.get(d.segment_number, d.segment_number) for d in context.segments]
        series = context.series if output.long_axes else None
        report = measurement_report(context.numbered, seg, described, series=series)
    if output.urgent:
        urgency = QualitativeEvaluation(c.PRIORITY, c.URGENT)
        report = replace(report, evaluations=(*report.evaluations, urgency))
    return encode_measurement_report(
        report,
        context.series,
        options=context.series_options("sr"),
        related=list(context.encoded.values()),
    )


KIND = OutputKind("sr", SrOutput, encode)
