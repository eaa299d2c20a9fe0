"""dcmqi's JSON documents at the edge: segmentation ``meta.json`` and TID 1500 reports.

dcmqi (3D Slicer's DICOM converter) describes a SEG with a metadata JSON that
``itkimage2segimage`` reads and ``segimage2itkimage`` writes, and a TID 1500 report
with the JSON that ``tid1500writer`` reads and ``tid1500reader`` writes. radbridge
reads both and writes the first, so a dcmqi user keeps their files:

- :func:`read_segmentation_meta`: ``segmentAttributes`` (codes as ``CodeValue`` /
  ``CodingSchemeDesignator`` / ``CodeMeaning``, ``recommendedDisplayRGBValue``,
  algorithm type and name, tracking identifiers) become
  :class:`~radbridge.seg.SegmentDescription` s keyed by ``labelID``; the series
  attributes (``SeriesDescription``, ``SeriesNumber``, ``InstanceNumber``,
  ``ContentCreatorName``, ``ContentLabel``, ``ContentDescription``) become
  :class:`~radbridge.seg.SeriesOptions` fields.
- :func:`segmentation_meta`: the same document for a SEG radbridge read, for the
  label map (or per-segment files) ``radbridge seg decode`` writes.
- :func:`report_from_tid1500`: a tid1500writer document becomes radbridge's report
  JSON (docs/sr.md) plus its series fields.

Values dcmqi documents carry that radbridge does not write (``ClinicalTrial*``,
``BodyPartExamined``, ``activitySession``, ``timePoint``, completion and verification
flags, ``imageLibrary`` and ``compositeContext`` file lists) are ignored; a key that
would carry meaning radbridge cannot keep is refused by name, never dropped.

Examples
--------
>>> meta = {"SeriesDescription": "Liver", "SeriesNumber": "12", "segmentAttributes": [[{
...     "labelID": 1, "SegmentLabel": "liver", "SegmentAlgorithmType": "MANUAL",
...     "SegmentedPropertyCategoryCodeSequence": {"CodeValue": "123037004",
...         "CodingSchemeDesignator": "SCT", "CodeMeaning": "Anatomical Structure"},
...     "SegmentedPropertyTypeCodeSequence": {"CodeValue": "10200004",
...         "CodingSchemeDesignator": "SCT", "CodeMeaning": "Liver"},
...     "recommendedDisplayRGBValue": [221, 130, 101]}]]}
>>> parsed = parse_segmentation_meta(meta)
>>> parsed.segments[1].property_type.meaning, parsed.series["series_number"]
('Liver', 12)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radbridge.coding import Code
from radbridge.errors import ConfigError

if TYPE_CHECKING:
    from radbridge.seg import AlgorithmIdentification, Segmentation, SegmentDescription

__all__ = [
    "DcmqiSegmentation",
    "Tid1500Document",
    "is_segmentation_meta",
    "is_tid1500_document",
    "parse_segmentation_meta",
    "read_json",
    "read_segmentation_meta",
    "report_from_tid1500",
    "segmentation_meta",
]

#: dcmqi's series attributes -> SeriesOptions fields (and how to read the value).
_SERIES = {
    "SeriesDescription": ("series_description", str),
    "SeriesNumber": ("series_number", int),
    "InstanceNumber": ("instance_number", int),
    "ContentCreatorName": ("content_creator_name", str),
    "ContentLabel": ("content_label", str),
    "ContentDescription": ("content_description", str),
}
#: Segment attribute keys -> SegmentDescription code fields.
_CODES = {
    "SegmentedPropertyCategoryCodeSequence": "category",
    "SegmentedPropertyTypeCodeSequence": "property_type",
    "AnatomicRegionSequence": "anatomic_region",
}
_MODIFIERS = {
    "SegmentedPropertyTypeModifierCodeSequence": "property_type_modifiers",
    "AnatomicRegionModifierSequence": "anatomic_region_modifiers",
}
_SEGMENT_KEYS = {
    "labelID",
    "SegmentLabel",
    "SegmentDescription",
    "SegmentAlgorithmType",
    "SegmentAlgorithmName",
    "recommendedDisplayRGBValue",
    "TrackingIdentifier",
    "TrackingUniqueIdentifier",
    *_CODES,
    *_MODIFIERS,
}


@dataclass(frozen=True)
class DcmqiSegmentation:
    """A dcmqi segmentation ``meta.json``, read.

    Attributes
    ----------
    segments
        Segment descriptions by ``labelID`` (the label value in the mask).
    series
        :class:`~radbridge.seg.SeriesOptions` fields the document sets.
    """

    segments: dict[int, SegmentDescription]
    series: dict[str, Any]


def read_json(path: str | os.PathLike[str]) -> Any:
    """Return the JSON document in ``path``, or raise a ConfigError naming the file."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # JSON, text encoding, nesting
        raise ConfigError(f"cannot read the JSON document ({exc})", path=p) from exc


def is_segmentation_meta(data: object) -> bool:
    """Whether ``data`` is a dcmqi segmentation metadata document (``segmentAttributes``)."""
    return isinstance(data, Mapping) and "segmentAttributes" in data


def is_tid1500_document(data: object) -> bool:
    """Whether ``data`` is a dcmqi TID 1500 document (``Measurements``, no ``groups``)."""
    return isinstance(data, Mapping) and "Measurements" in data and "groups" not in data


def _code(value: object, where: str) -> Code:
    if not isinstance(value, Mapping) or not {"CodeValue", "CodingSchemeDesignator"} <= set(value):
        raise ConfigError(
            f"{where} is not a code",
            attribute=where.rsplit(" ", 1)[-1],
            hint="write {CodeValue, CodingSchemeDesignator, CodeMeaning}, as dcmqi does",
        )
    return Code(
        str(value["CodeValue"]),
        str(value["CodingSchemeDesignator"]),
        str(value.get("CodeMeaning", "")),
    )


def _dcmqi_code(code: Code) -> dict[str, str]:
    return {
        "CodeValue": code.value,
        "CodingSchemeDesignator": code.scheme,
        "CodeMeaning": code.meaning,
    }


def _series_fields(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, (name, kind) in _SERIES.items():
        value = data.get(key)
        if value in (None, ""):
            continue
        try:
            fields[name] = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {key} {value!r} is not valid", attribute=key) from None
    return fields


def _segment_codes(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Return the codes of a segment: single codes and modifier tuples, by field name."""
    fields: dict[str, Any] = {
        name: _code(item[key], f"{where} {key}") for key, name in _CODES.items() if key in item
    }
    for key, name in _MODIFIERS.items():
        if key in item:  # dcmqi writes one modifier as an object
            values = item[key] if isinstance(item[key], list) else [item[key]]
            fields[name] = tuple(_code(v, f"{where} {key}") for v in values)
    return fields


def _segment_algorithm(
    item: Mapping[str, Any], algorithm_type: str, default: AlgorithmIdentification | None
) -> AlgorithmIdentification | None:
    """Return the algorithm: none when MANUAL, else dcmqi's name with the default's version."""
    from radbridge.seg import AlgorithmIdentification

    if algorithm_type == "MANUAL":
        return None
    if item.get("SegmentAlgorithmName"):
        version = default.version if default else "0"
        return AlgorithmIdentification(str(item["SegmentAlgorithmName"]), version)
    return default


def _segment(
    item: Mapping[str, Any], default_algorithm: AlgorithmIdentification | None, where: str
) -> tuple[int, SegmentDescription]:
    from radbridge.seg import SegmentDescription

    _refuse_unknown(item, _SEGMENT_KEYS, where)
    number = item.get("labelID")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ConfigError(f"{where}: labelID must be a positive integer", attribute="labelID")
    fields = _segment_codes(item, where)
    algorithm_type = str(item.get("SegmentAlgorithmType", "AUTOMATIC")).upper()
    algorithm = _segment_algorithm(item, algorithm_type, default_algorithm)
    rgb = item.get("recommendedDisplayRGBValue")
    label = item.get("SegmentLabel") or item.get("SegmentDescription") or f"Segment {number}"
    description = SegmentDescription(
        segment_number=number,
        label=str(label)[:64],
        category=fields.pop("category", None),
        property_type=fields.pop("property_type", None),
        algorithm_type=algorithm_type,
        algorithm=algorithm,
        tracking_id=item.get("TrackingIdentifier"),
        tracking_uid=item.get("TrackingUniqueIdentifier"),
        display_rgb=tuple(int(v) for v in rgb) if rgb else None,  # type: ignore[arg-type]
        description=(
            str(item["SegmentDescription"])
            if item.get("SegmentLabel") and item.get("SegmentDescription")
            else None
        ),
        **fields,
    )
    return number, description


def parse_segmentation_meta(
    data: Mapping[str, Any],
    *,
    algorithm: AlgorithmIdentification | None = None,
    where: str = "meta.json",
) -> DcmqiSegmentation:
    """Read a dcmqi segmentation metadata document already parsed from JSON.

    ``segmentAttributes`` is a list per input image of lists of segments; radbridge
    takes one mask, so the labelIDs of all lists together must be distinct.
    ``algorithm`` supplies the version (and the name when the document gives none)
    of segments that are not MANUAL.

    Raises
    ------
    ConfigError
        The document is not such a document, repeats a labelID, or holds a key
        whose meaning radbridge cannot keep.
    """
    groups = data.get("segmentAttributes")
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        raise ConfigError(
            f"{where}: segmentAttributes must be a list of lists of segments",
            attribute="segmentAttributes",
            hint="see dcmqi's seg-schema.json",
        )
    segments: dict[int, SegmentDescription] = {}
    for item in (item for group in groups for item in group):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: a segment is not an object", attribute="segmentAttributes")
        number, description = _segment(item, algorithm, f"{where}: segment {item.get('labelID')}")
        if number in segments:
            raise ConfigError(
                f"{where}: labelID {number} is used twice",
                attribute="labelID",
                hint="radbridge reads one mask: give each segment its own label value "
                "(dcmqi's per-file lists cannot be merged here)",
            )
        segments[number] = description
    return DcmqiSegmentation(dict(sorted(segments.items())), _series_fields(data, where))


def read_segmentation_meta(
    path: str | os.PathLike[str], *, algorithm: AlgorithmIdentification | None = None
) -> DcmqiSegmentation:
    """Read dcmqi's segmentation ``meta.json`` (see :func:`parse_segmentation_meta`)."""
    data = read_json(path)
    if not is_segmentation_meta(data):
        raise ConfigError(
            "not a dcmqi segmentation metadata document (no segmentAttributes)", path=path
        )
    return parse_segmentation_meta(data, algorithm=algorithm, where=str(path))


def _segment_meta(description: SegmentDescription, label_id: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "labelID": label_id,
        "SegmentLabel": description.label,
        "SegmentDescription": description.description or "",
        "SegmentAlgorithmType": str(getattr(description.algorithm_type, "value", "AUTOMATIC")),
    }
    if description.algorithm is not None:
        item["SegmentAlgorithmName"] = description.algorithm.name
    for key, name in _CODES.items():
        code = getattr(description, name)
        if code is not None:
            item[key] = _dcmqi_code(code)
    for key, name in _MODIFIERS.items():
        codes = getattr(description, name)
        if codes:  # dcmqi's schema holds one modifier, as an object
            item[key] = _dcmqi_code(codes[0])
    if description.display_rgb is not None:
        item["recommendedDisplayRGBValue"] = list(description.display_rgb)
    if description.tracking_id:
        item["TrackingIdentifier"] = description.tracking_id
    if description.tracking_uid:
        item["TrackingUniqueIdentifier"] = description.tracking_uid
    return item


def segmentation_meta(
    seg: Segmentation, *, per_segment: Sequence[int] | None = None
) -> dict[str, Any]:
    """Return dcmqi's ``meta.json`` for ``seg``: its series and segment attributes.

    By default one list of segments with ``labelID`` = segment number (the label map
    ``seg decode`` writes); ``per_segment`` (segment numbers, in the order of the
    files) gives one list per segment file, each with ``labelID`` 1 (``seg decode
    --per-segment``), as ``segimage2itkimage`` does.
    """
    ds = seg.dataset
    meta: dict[str, Any] = {
        "ContentCreatorName": str(ds.get("ContentCreatorName", "")),
        "ClinicalTrialSeriesID": str(ds.get("ClinicalTrialSeriesID", "")),
        "ClinicalTrialTimePointID": str(ds.get("ClinicalTrialTimePointID", "")),
        "SeriesDescription": str(ds.get("SeriesDescription", "")),
        "SeriesNumber": str(ds.get("SeriesNumber", "")),
        "InstanceNumber": str(ds.get("InstanceNumber", "")),
        "BodyPartExamined": str(ds.get("BodyPartExamined", "")),
    }
    for key in ("ContentLabel", "ContentDescription"):
        if ds.get(key):
            meta[key] = str(ds.get(key))
    if per_segment is not None:
        meta["segmentAttributes"] = [[_segment_meta(seg.segments[n], 1)] for n in per_segment]
    else:
        items = sorted(seg.segments.items())
        meta["segmentAttributes"] = [[_segment_meta(d, n) for n, d in items]]
    return meta


def _json_code(value: object, where: str) -> dict[str, str]:
    code = _code(value, where)
    return {"value": code.value, "scheme": code.scheme, "meaning": code.meaning}


_ITEM_KEYS = {"value", "quantity", "units", "derivationModifier", "measurementMethod"}
#: dcmqi keys radbridge's SR does not write (TID 1502 time point context, the flags):
#: accepted, and reported back as ignored so nothing is lost silently.
_IGNORED = ("activitySession", "timePoint", "VerificationFlag", "CompletionFlag")
_GROUP_KEYS = {
    "TrackingIdentifier",
    "TrackingUniqueIdentifier",
    "ReferencedSegment",
    "SourceSeriesForImageSegmentation",
    "segmentationSOPInstanceUID",
    "Finding",
    "FindingSite",
    "FindingCategory",
    "measurementItems",
    "qualitativeEvaluations",
    *_IGNORED,
}


def _refuse_unknown(item: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(item) - known)
    if unknown:
        raise ConfigError(
            f"{where}: radbridge cannot keep {', '.join(unknown)}",
            attribute=unknown[0],
            hint="remove the key, or write it in radbridge's JSON (docs/seg.md, docs/sr.md)",
        )


def _measurement(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    _refuse_unknown(item, _ITEM_KEYS, where)
    try:
        number = float(item["value"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}: value must be a number", attribute="value") from None
    out: dict[str, Any] = {
        "concept": _json_code(item.get("quantity"), f"{where} quantity"),
        "value": number,
        "unit": _json_code(item.get("units"), f"{where} units"),
    }
    for key, name in (("derivationModifier", "derivation"), ("measurementMethod", "method")):
        if key in item:
            out[name] = _json_code(item[key], f"{where} {key}")
    return out


def _group(group: Mapping[str, Any], where: str) -> tuple[dict[str, Any], str | None]:
    _refuse_unknown(group, _GROUP_KEYS, where)
    out: dict[str, Any] = {"tracking_id": str(group.get("TrackingIdentifier", ""))}
    if group.get("TrackingUniqueIdentifier"):
        out["tracking_uid"] = str(group["TrackingUniqueIdentifier"])
    if "ReferencedSegment" in group:
        out["segment"] = int(group["ReferencedSegment"])
    for key, name in (
        ("Finding", "finding"),
        ("FindingSite", "finding_site"),
        ("FindingCategory", "finding_category"),
    ):
        if key in group:
            out[name] = _json_code(group[key], f"{where} {key}")
    out["measurements"] = [
        _measurement(item, f"{where} measurement {k + 1}")
        for k, item in enumerate(group.get("measurementItems", []))
    ]
    out["evaluations"] = [
        {
            "concept": _json_code(e.get("conceptCode"), f"{where} conceptCode"),
            "value": _json_code(e.get("conceptValue"), f"{where} conceptValue"),
        }
        for e in group.get("qualitativeEvaluations", [])
    ]
    seg_uid = group.get("segmentationSOPInstanceUID")
    return out, str(seg_uid) if seg_uid else None


def _observer(data: Mapping[str, Any]) -> dict[str, Any]:
    observer = data.get("observerContext") or {}
    if str(observer.get("ObserverType", "")).upper() == "PERSON":
        name = observer.get("PersonObserverName")
        return {"person": str(name)} if name else {}
    if observer.get("DeviceObserverUID"):
        return {
            "device": {
                "uid": str(observer["DeviceObserverUID"]),
                "name": str(observer.get("DeviceObserverName", "")),
                "manufacturer": str(observer.get("DeviceObserverManufacturer", "")),
                "model_name": str(observer.get("DeviceObserverModelName", "")),
                "serial_number": str(observer.get("DeviceObserverSerialNumber", "")),
            }
        }
    return {}


@dataclass(frozen=True)
class Tid1500Document:
    """A dcmqi TID 1500 document turned into radbridge's terms.

    Attributes
    ----------
    report
        The report in radbridge's JSON form (:func:`radbridge.sr.report_from_json`).
    series
        The SeriesOptions fields it sets.
    segmentations
        The SEG SOP Instance UIDs its groups refer to.
    ignored
        The keys given that radbridge does not write (time point context, the
        completion and verification flags), to report to the user.
    """

    report: dict[str, Any]
    series: dict[str, Any]
    segmentations: set[str]
    ignored: list[str]


def report_from_tid1500(data: Mapping[str, Any], *, where: str = "report") -> Tid1500Document:
    """Turn a dcmqi TID 1500 document (tid1500writer's input) into radbridge's report JSON.

    Raises
    ------
    ConfigError
        A group or measurement holds a key radbridge cannot keep, or a code or value
        is malformed.
    """
    groups = data.get("Measurements")
    if not isinstance(groups, list):
        raise ConfigError(f"{where}: Measurements must be a list", attribute="Measurements")
    report: dict[str, Any] = {"groups": []}
    segs: set[str] = set()
    for k, group in enumerate(groups):
        converted, seg_uid = _group(group, f"{where}: measurement group {k + 1}")
        report["groups"].append(converted)
        if seg_uid:
            segs.add(seg_uid)
    if "procedureReported" in data:
        report["procedure"] = _json_code(data["procedureReported"], f"{where} procedureReported")
    report.update(_observer(data))
    present = set(data) | {key for group in groups for key in group}
    ignored = [key for key in _IGNORED if key in present]
    return Tid1500Document(report, _series_fields(data, where), segs, ignored)
