"""Damaged SR documents: the reader returns a report or raises a radbridge error, never crashes."""

from __future__ import annotations

import copy
import io

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import Dataset

from radbridge.coding import Code, dcm, sct
from radbridge.errors import RadbridgeError
from radbridge.iods.ko import encode_key_objects, read_key_objects
from radbridge.iods.sr import (
    ImageRegion,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    QualitativeEvaluation,
    encode_measurement_report,
    read_measurement_report,
    read_structured_report,
    report_from_json,
    report_to_json,
)

# Attributes of content items (and of their nested code/value/reference items).
_KEYWORDS = [
    "ValueType",
    "RelationshipType",
    "ConceptNameCodeSequence",
    "ConceptCodeSequence",
    "MeasuredValueSequence",
    "MeasurementUnitsCodeSequence",
    "NumericValue",
    "FloatingPointValue",
    "CodeValue",
    "CodingSchemeDesignator",
    "CodeMeaning",
    "GraphicType",
    "GraphicData",
    "ReferencedSOPSequence",
    "ReferencedSOPInstanceUID",
    "ReferencedSegmentNumber",
    "ReferencedFrameNumber",
    "UID",
    "TextValue",
    "ContentSequence",
    "ReferencedFrameOfReferenceUID",
    "ContentTemplateSequence",
]


def _items(ds: Dataset) -> list[Dataset]:
    """Every nested item of ``ds`` (depth first), and ``ds`` itself."""
    found = [ds]
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                found += _items(item)
    return found


@pytest.fixture(scope="module")
def sr_document(source, seg):
    ref = source.slice_refs[5]
    mm = Code("mm", "UCUM", "millimeter")
    groups = (
        MeasurementGroup(
            "ich",
            finding=sct("50960005", "Hemorrhage"),
            measurements=(Measurement(dcm("122157", "Probability"), 0.9, Code("1", "UCUM", "1")),),
            evaluations=(
                QualitativeEvaluation(sct("50960005", "Hemorrhage"), dcm("121053", "Present")),
            ),
        ),
        MeasurementGroup(
            "nodule",
            finding=sct("27925004", "Nodule"),
            finding_site=sct("39607008", "Lung"),
            region=ImageRegion(
                "CIRCLE", (30.0, 30.0, 34.0, 30.0), ref.sop_class_uid, ref.sop_instance_uid
            ),
            measurements=(Measurement(sct("81827009", "Diameter"), 8.0, mm),),
        ),
        MeasurementGroup.from_segment(
            seg, 5, measurements=(Measurement(sct("118565006", "Volume"), 2.0, mm),)
        ),
    )
    return encode_measurement_report(MeasurementReport(groups=groups), source)


@pytest.fixture(scope="module")
def seg(seg_file):
    return pydicom.dcmread(seg_file, stop_before_pixels=True)


def _damage(ds: Dataset, data: st.DataObject) -> Dataset:
    broken = copy.deepcopy(ds)
    for _ in range(data.draw(st.integers(1, 3))):
        items = [i for i in _items(broken) if any(k in i for k in _KEYWORDS)]
        item = data.draw(st.sampled_from(items))
        keyword = data.draw(st.sampled_from([k for k in _KEYWORDS if k in item]))
        action = data.draw(st.sampled_from(["delete", "empty", "garbage"]))
        if action == "delete":
            delattr(item, keyword)
        elif action == "empty":
            item[keyword].value = [] if item[keyword].VR == "SQ" else None
        elif item[keyword].VR != "SQ":
            garbage = {"DS": "1e999", "FD": float("nan"), "IS": "-1", "UI": "1..2", "US": 0}
            item[keyword].value = garbage.get(item[keyword].VR, "\\\\")
    return broken


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_reports_are_read_or_refused_cleanly(sr_document, data):
    broken = _damage(sr_document, data)
    try:
        sr = read_structured_report(broken)
    except RadbridgeError as exc:
        assert str(exc)
        return
    assert sr.tree.value_type == "CONTAINER"


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_files_are_read_or_refused_cleanly(sr_document, data):
    """The same, through bytes: damage that pydicom itself has to parse."""
    buffer = io.BytesIO()
    sr_document.save_as(buffer, enforce_file_format=True)
    raw = bytearray(buffer.getvalue())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(132, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(132, len(raw)))
    try:
        read_structured_report(bytes(raw[:cut]))
    except RadbridgeError as exc:
        assert str(exc)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_key_object_documents_are_read_or_refused_cleanly(source, data):
    keys = [r.sop_instance_uid for r in source.slice_refs[:3]]
    broken = _damage(encode_key_objects(keys, source, description="key"), data)
    try:
        read_key_objects(broken)
    except RadbridgeError as exc:
        assert str(exc)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def _paths(node, prefix=()):
    """Every (container, key) position in a JSON document."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list):
            found += _paths(value, (*prefix, key))
    return found


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_json_reports_are_refused_cleanly(sr_document, seg, source, data):
    """JSON -> report -> SR (what ``radbridge sr encode`` does) on a damaged document."""
    document = report_to_json(read_measurement_report(sr_document))
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(_paths(document)))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(_json)
        elif isinstance(parent, dict):
            del parent[path[-1]]
    try:
        report = report_from_json(document, seg=seg)
        encoded = encode_measurement_report(report, source)
    except RadbridgeError as exc:
        assert str(exc)
        return
    assert encoded.SOPClassUID
