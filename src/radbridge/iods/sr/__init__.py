"""Structured Reports: TID 1500 measurement reports (write, read, JSON).

See ``docs/sr.md``. Key Object Selection documents are in :mod:`radbridge.iods.sr.ko`;
:mod:`~radbridge.iods.sr.concepts` holds the coded concepts the templates use.
"""

from typing import Any

from radbridge.iods.common import SeriesOptions
from radbridge.iods.sr import concepts, longitudinal
from radbridge.iods.sr.content import ContentItem, content_tree
from radbridge.iods.sr.json_form import report_from_json, report_to_json
from radbridge.iods.sr.longitudinal import (
    Comparison,
    LesionChange,
    ValueChange,
    compare_reports,
    comparison_report,
    encode_comparison,
)
from radbridge.iods.sr.reader import (
    StructuredReport,
    read_measurement_report,
    read_structured_report,
)
from radbridge.iods.sr.report import (
    AlgorithmIdentification,
    DeviceObserver,
    ImageRegion,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    QualitativeEvaluation,
    SegmentationFrameReference,
    SegmentReference,
    TimePoint,
)
from radbridge.iods.sr.writer import (
    COMPREHENSIVE_3D_SR_STORAGE,
    COMPREHENSIVE_SR_STORAGE,
    encode_measurement_report,
)

__all__ = [
    "COMPREHENSIVE_3D_SR_STORAGE",
    "COMPREHENSIVE_SR_STORAGE",
    "AlgorithmIdentification",
    "Comparison",
    "ContentItem",
    "DeviceObserver",
    "ImageRegion",
    "LesionChange",
    "Measurement",
    "MeasurementGroup",
    "MeasurementReport",
    "QualitativeEvaluation",
    "SegmentReference",
    "SegmentationFrameReference",
    "SeriesOptions",
    "StructuredReport",
    "TimePoint",
    "ValueChange",
    "compare_reports",
    "comparison_report",
    "concepts",
    "content_tree",
    "encode_comparison",
    "encode_measurement_report",
    "longitudinal",
    "read_measurement_report",
    "read_structured_report",
    "report_from_json",
    "report_to_json",
]


def __getattr__(name: str) -> Any:
    from radbridge.iods.sr import report

    return getattr(report, name)  # the deprecated Algorithm (warns)
