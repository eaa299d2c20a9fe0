"""The JSON form of a measurement report (schema in ``docs/sr.md``).

A code is ``{"value": ..., "scheme": ..., "meaning": ...}``; a unit may also be a
plain UCUM string (``"mm"``). A group refers to a segment of the SEG given with
``--seg`` by ``{"segment": 2}``, or to any SEG by ``{"segment": {"sop_class_uid": ...,
"sop_instance_uid": ..., "segment_number": 2}}``.

Examples
--------
>>> doc = {"groups": [{"tracking_id": "ich", "evaluations": [{
...     "concept": {"value": "50960005", "scheme": "SCT", "meaning": "Hemorrhage"},
...     "value": {"value": "121053", "scheme": "DCM", "meaning": "Present"}}],
...     "measurements": [{"concept": {"value": "122157", "scheme": "DCM",
...     "meaning": "Probability"}, "value": 0.93, "unit": "1"}]}]}
>>> report = report_from_json(doc)
>>> report.groups[0].measurements[0].unit.value, report_to_json(report) == report_to_json(
...     report_from_json(report_to_json(report)))
('1', True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydicom import Dataset

from radbridge.coding import Code
from radbridge.errors import InvalidAttributeError, RadbridgeError
from radbridge.iods.sr import concepts as c
from radbridge.iods.sr import report as tid1500

__all__ = ["report_from_json", "report_to_json"]


def _code_json(code: Code | None) -> dict[str, str] | None:
    return code.to_json() if code is not None else None


def _measurement_json(m: tid1500.Measurement) -> dict[str, Any]:
    out: dict[str, Any] = {
        "concept": m.concept.to_json(),
        "value": m.value,
        "unit": m.unit.to_json(),
    }
    for key in ("derivation", "method", "finding_site", "laterality"):
        if getattr(m, key) is not None:
            out[key] = getattr(m, key).to_json()
    if m.algorithm:
        out["algorithm"] = {"name": m.algorithm.name, "version": m.algorithm.version}
    if m.region is not None:
        out["region"] = _region_json(m.region)
    return out


def _region_json(r: tid1500.ImageRegion) -> dict[str, Any]:
    return {
        k: v
        for k, v in (
            ("graphic_type", r.graphic_type),
            ("points", list(r.points)),
            ("sop_class_uid", r.sop_class_uid),
            ("sop_instance_uid", r.sop_instance_uid),
            ("frame_number", r.frame_number),
            ("frame_of_reference_uid", r.frame_of_reference_uid),
            ("volume_surface", r.volume_surface or None),
            ("purpose", r.purpose.to_json() if r.purpose else None),
        )
        if v is not None
    }


def _group_json(g: tid1500.MeasurementGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"tracking_id": g.tracking_id, "template": g.template}
    if g.tracking_uid:
        out["tracking_uid"] = g.tracking_uid
    for key in ("finding", "finding_category", "finding_site", "laterality"):
        if getattr(g, key) is not None:
            out[key] = getattr(g, key).to_json()
    if g.region is not None:
        out["region"] = _region_json(g.region)
    if g.regions:
        out["regions"] = [_region_json(r) for r in g.regions]
    if g.segmentation_frame is not None:
        out["segmentation_frame"] = _given(g.segmentation_frame)
    if g.segment is not None:
        out["segment"] = _given(g.segment)
    if g.measurements:
        out["measurements"] = [_measurement_json(m) for m in g.measurements]
    if g.evaluations:
        out["evaluations"] = _evaluations_json(g.evaluations)
    if g.algorithm:
        out["algorithm"] = {"name": g.algorithm.name, "version": g.algorithm.version}
    if g.time_point is not None:
        out["time_point"] = {"label": g.time_point.label, "order": g.time_point.order}
    return out


def _given(
    reference: tid1500.SegmentReference | tid1500.SegmentationFrameReference,
) -> dict[str, Any]:
    """Return a reference's fields by name, those not given (None) left out."""
    return {k: v for k, v in dataclasses.asdict(reference).items() if v is not None}


def _evaluations_json(items: tuple[tid1500.QualitativeEvaluation, ...]) -> list[dict[str, Any]]:
    return [{"concept": e.concept.to_json(), "value": e.value.to_json()} for e in items]


def _evaluations_from(
    data: dict[str, Any], where: str
) -> tuple[tid1500.QualitativeEvaluation, ...]:
    return tuple(
        tid1500.QualitativeEvaluation(
            _code(e.get("concept"), f"{where}.evaluations[{i}].concept"),
            _code(e.get("value"), f"{where}.evaluations[{i}].value"),
        )
        for i, e in enumerate(data.get("evaluations", []))
    )


def report_to_json(report: tid1500.MeasurementReport) -> dict[str, Any]:
    """Return the JSON form of ``report`` (see the module docstring)."""
    out: dict[str, Any] = {
        "title": report.title.to_json(),
        "procedure": report.procedure.to_json(),
        "language": report.language.to_json(),
        "groups": [_group_json(g) for g in report.groups],
    }
    if report.evaluations:
        out["evaluations"] = _evaluations_json(report.evaluations)
    if report.person:
        out["person"] = report.person
    if report.device:
        out["device"] = dataclasses.asdict(report.device)
    return out


@contextmanager
def _schema(where: str) -> Iterator[None]:
    """Turn a value of the wrong shape anywhere under ``where`` into a clear error."""
    try:
        yield
    except RadbridgeError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InvalidAttributeError(
            f"{where} does not follow the schema ({type(exc).__name__}: {exc})",
            attribute=where,
            hint="see docs/sr.md for the JSON schema",
        ) from exc


def _text(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidAttributeError(
            f"{where}.{key} must be a string, got {type(value).__name__}",
            attribute=f"{where}.{key}",
        )
    return value


def _flag(data: dict[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InvalidAttributeError(
            f"{where}.{key} must be true or false, got {value!r}", attribute=f"{where}.{key}"
        )
    return value


def _code(data: Any, where: str, *, unit: bool = False) -> Code:
    if unit and isinstance(data, str):
        return Code(data, "UCUM", data)
    if not isinstance(data, dict):
        raise InvalidAttributeError(
            f"{where} must be a code object, got {type(data).__name__}",
            attribute=where,
            hint='write {"value": ..., "scheme": ..., "meaning": ...}'
            + (' or a UCUM string such as "mm"' if unit else ""),
        )
    return Code.from_json(data)


def _opt(data: dict[str, Any], key: str, where: str) -> Code | None:
    return _code(data[key], f"{where}.{key}") if data.get(key) is not None else None


def _algorithm(data: Any) -> tid1500.AlgorithmIdentification | None:
    if not data:
        return None
    return tid1500.AlgorithmIdentification(str(data["name"]), str(data.get("version", "")))


def _measurement(data: dict[str, Any], where: str) -> tid1500.Measurement:
    try:
        if isinstance(data["value"], bool):
            raise TypeError("a measurement value cannot be true or false")
        value = float(data["value"])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidAttributeError(
            f"{where}.value must be a number", attribute=f"{where}.value"
        ) from exc
    return tid1500.Measurement(
        concept=_code(data.get("concept"), f"{where}.concept"),
        value=value,
        unit=_code(data.get("unit"), f"{where}.unit", unit=True),
        derivation=_opt(data, "derivation", where),
        method=_opt(data, "method", where),
        finding_site=_opt(data, "finding_site", where),
        laterality=_opt(data, "laterality", where),
        algorithm=_algorithm(data.get("algorithm")),
        region=_region(data["region"], where) if data.get("region") else None,
    )


def _segment(data: Any, seg: Dataset | None, where: str) -> tid1500.SegmentReference:
    if isinstance(data, int) and not isinstance(data, bool):
        if seg is None:
            raise InvalidAttributeError(
                f"{where}.segment is a segment number but no SEG was given",
                attribute=f"{where}.segment",
                hint="give the SEG (--seg SEG.dcm) or a full segment reference",
            )
        return tid1500.SegmentReference.from_segmentation(seg, data)
    if isinstance(data, dict):
        if seg is not None and set(data) <= {"segment_number"}:
            return tid1500.SegmentReference.from_segmentation(seg, int(data["segment_number"]))
        try:
            return tid1500.SegmentReference(
                str(data["sop_class_uid"]),
                str(data["sop_instance_uid"]),
                int(data["segment_number"]),
                data.get("source_series_uid"),
                data.get("series_instance_uid"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidAttributeError(
                f"{where}.segment is incomplete ({exc})", attribute=f"{where}.segment"
            ) from exc
    raise InvalidAttributeError(
        f"{where}.segment must be a number or an object", attribute=f"{where}.segment"
    )


def _region(data: dict[str, Any], where: str) -> tid1500.ImageRegion:
    surface = _flag(data, "volume_surface", f"{where}.region") if isinstance(data, dict) else False
    try:
        return tid1500.ImageRegion(
            graphic_type=str(data["graphic_type"]).upper(),
            points=tuple(float(p) for p in data["points"]),
            sop_class_uid=data.get("sop_class_uid"),
            sop_instance_uid=data.get("sop_instance_uid"),
            frame_number=data.get("frame_number"),
            frame_of_reference_uid=data.get("frame_of_reference_uid"),
            volume_surface=surface,
            purpose=_opt(data, "purpose", f"{where}.region"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidAttributeError(
            f"{where}.region needs graphic_type and points ({exc})", attribute=f"{where}.region"
        ) from exc


def _frame(data: Any, where: str) -> tid1500.SegmentationFrameReference:
    try:
        return tid1500.SegmentationFrameReference(
            str(data["sop_class_uid"]),
            str(data["sop_instance_uid"]),
            int(data["frame_number"]),
            str(data["source_sop_class_uid"]),
            str(data["source_sop_instance_uid"]),
            data.get("series_instance_uid"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidAttributeError(
            f"{where}.segmentation_frame is incomplete ({exc})",
            attribute=f"{where}.segmentation_frame",
        ) from exc


def _group(data: Any, index: int, seg: Dataset | None) -> tid1500.MeasurementGroup:
    where = f"groups[{index}]"
    if not isinstance(data, dict):
        raise InvalidAttributeError(f"{where} must be an object", attribute=where)
    with _schema(where):
        return _group_fields(data, index, seg, where)


def _group_fields(
    data: dict[str, Any], index: int, seg: Dataset | None, where: str
) -> tid1500.MeasurementGroup:
    tracking_id = _text(data, "tracking_id", where)
    return tid1500.MeasurementGroup(
        tracking_id=f"group {index + 1}" if tracking_id is None else tracking_id,
        tracking_uid=_text(data, "tracking_uid", where),
        finding=_opt(data, "finding", where),
        finding_category=_opt(data, "finding_category", where),
        finding_site=_opt(data, "finding_site", where),
        laterality=_opt(data, "laterality", where),
        region=_region(data["region"], where) if data.get("region") else None,
        regions=tuple(_region(r, where) for r in data.get("regions", [])),
        segmentation_frame=_frame(data["segmentation_frame"], where)
        if data.get("segmentation_frame")
        else None,
        segment=_segment(data["segment"], seg, where) if data.get("segment") is not None else None,
        measurements=tuple(
            _measurement(m, f"{where}.measurements[{i}]")
            for i, m in enumerate(data.get("measurements", []))
        ),
        evaluations=_evaluations_from(data, where),
        algorithm=_algorithm(data.get("algorithm")),
        time_point=_time_point(data.get("time_point"), where),
    )


def _time_point(data: Any, where: str) -> tid1500.TimePoint | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("label"), str):
        raise InvalidAttributeError(
            f"{where}.time_point needs a label (text)", attribute=f"{where}.time_point"
        )
    order = data.get("order")
    if order is not None and (not isinstance(order, int) or isinstance(order, bool)):
        raise InvalidAttributeError(
            f"{where}.time_point.order must be a whole number", attribute=f"{where}.time_point"
        )
    return tid1500.TimePoint(data["label"], order)


def report_from_json(data: Any, *, seg: Dataset | None = None) -> tid1500.MeasurementReport:
    """Build a :class:`MeasurementReport` from its JSON form.

    Parameters
    ----------
    data
        The parsed JSON document.
    seg
        The SEG that ``{"segment": N}`` references refer to.

    Raises
    ------
    InvalidAttributeError
        The document does not follow the schema (the message names the field).
    """
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise InvalidAttributeError(
            "a report must be an object with a 'groups' list",
            attribute="groups",
            hint="see docs/sr.md for the schema",
        )
    groups = tuple(_group(g, i, seg) for i, g in enumerate(data["groups"]))
    device = data.get("device")
    with _schema("device"):
        observer = (
            tid1500.DeviceObserver(**{k: str(v) for k, v in device.items()}) if device else None
        )
    with _schema("report"):
        return tid1500.MeasurementReport(
            groups=groups,
            procedure=_opt(data, "procedure", "report") or c.IMAGING_PROCEDURE,
            device=observer,
            person=_text(data, "person", "report"),
            language=_opt(data, "language", "report") or c.ENGLISH_US,
            title=_opt(data, "title", "report") or c.IMAGING_MEASUREMENT_REPORT,
            evaluations=_evaluations_from(data, "report"),
        )
