"""The gateway's SR and KOS encoders: a model's result as TID 1500 and key images.

:func:`measurement_report` makes one volumetric group (TID 1411) per segment of the
job's SEG — and one per object for per-lesion values — referencing the segment,
with the model's measurements and qualitative findings for that label; values
without a label go into an image-level group (TID 1501). Measurement names the
model gives as text are coded from a small table (volume, mean, standard deviation,
long axis, diameter); others get a local ``99RADBRIDGE`` code.

:func:`key_images` flags the slice where the largest present finding (or, without
one, the largest segmented area) is biggest.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
from pydicom import Dataset

from radbridge.coding import Code, dcm, sct
from radbridge.gateway.routing import Rule
from radbridge.iods.common import SeriesOptions
from radbridge.iods.ko import encode_key_objects
from radbridge.iods.source import SourceSeries
from radbridge.iods.sr import (
    AlgorithmIdentification,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    QualitativeEvaluation,
    SegmentReference,
    encode_measurement_report,
)
from radbridge.iods.sr import concepts as c
from radbridge.models import Finding, ModelMeasurement, ModelResult

__all__ = ["DEFAULT_REPORT_ENCODERS", "key_images", "measurement_report"]

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


def _local(text: str) -> Code:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text.strip().lower()).strip("-")[:16] or "value"
    return Code(slug, "99RADBRIDGE", text[:64])


def _measurement(m: ModelMeasurement, algorithm: AlgorithmIdentification) -> Measurement:
    concept, derivation, method = _NAMES.get(m.name.lower(), (None, None, None))
    unit = Code(m.unit, "UCUM", m.unit)
    return Measurement(
        concept=m.concept or concept or _local(m.name),
        value=float(m.value),
        unit=unit,
        derivation=derivation,
        method=method,
        algorithm=algorithm,
    )


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


def measurement_report(
    result: ModelResult, source: SourceSeries, seg: Dataset, rule: Rule, options: SeriesOptions
) -> Dataset:
    """Encode ``result`` as a TID 1500 SR referencing the job's ``seg``."""
    algorithm = AlgorithmIdentification(result.algorithm.name, result.algorithm.version)
    by_label: dict[int | None, dict[int | None, list[ModelMeasurement]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for m in result.measurements:
        by_label[m.label][m.instance].append(m)
    findings: dict[int | None, list[Finding]] = defaultdict(list)
    for f in result.findings:
        findings[f.label].append(f)
    groups: list[MeasurementGroup] = []
    for segment in seg.SegmentSequence:
        number = int(segment.SegmentNumber)
        finding = Code.from_dataset(segment.SegmentedPropertyTypeCodeSequence[0])
        category = Code.from_dataset(segment.SegmentedPropertyCategoryCodeSequence[0])
        reference = SegmentReference.from_segmentation(seg, number)
        label_text = str(segment.SegmentLabel)
        instances = by_label.get(number, {})
        groups.append(
            MeasurementGroup(
                tracking_id=label_text,
                finding=finding,
                finding_category=category,
                segment=reference,
                measurements=tuple(_measurement(m, algorithm) for m in instances.get(None, []))
                + _probabilities(findings.get(number, []), algorithm),
                evaluations=_evaluations(findings.get(number, [])),
            )
        )
        for instance in sorted(i for i in instances if i is not None):
            groups.append(
                MeasurementGroup(
                    tracking_id=f"{label_text} {instance}",
                    finding=finding,
                    finding_category=category,
                    segment=reference,
                    measurements=tuple(_measurement(m, algorithm) for m in instances[instance]),
                )
            )
    described = {int(s.SegmentNumber) for s in seg.SegmentSequence}
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
                measurements=tuple(_measurement(m, algorithm) for m in loose)
                + _probabilities(loose_findings, algorithm),
                evaluations=_evaluations(loose_findings),
            )
        )
    report = MeasurementReport(groups=tuple(groups))
    return encode_measurement_report(report, source, options=options)


def key_images(
    result: ModelResult, source: SourceSeries, seg: Dataset, rule: Rule, options: SeriesOptions
) -> Dataset:
    """Encode a KOS flagging the slice where the most important finding is largest."""
    labels = np.asarray(result.labels.array) if result.labels is not None else None
    if labels is None or not source.slice_refs:
        raise ValueError("key images need a label volume and source instances")
    present = [f.label for f in result.findings if f.label and f.value.lower() == "present"]
    chosen = [lab for lab in present if (labels == lab).any()]
    mask = np.isin(labels, chosen) if chosen else labels > 0
    area = mask.reshape(mask.shape[0], -1).sum(axis=1)
    index = int(np.argmax(area))
    what = "largest finding" if chosen else "largest segmented area"
    return encode_key_objects(
        source,
        [source.slice_refs[index].sop_instance_uid],
        description=f"radbridge: slice with the {what}",
        options=options,
    )


DEFAULT_REPORT_ENCODERS = {"sr": measurement_report, "ko": key_images}
