"""Segments without codes stay without codes: no made-up code in seg info, RTSTRUCTs or SEGs.

PS3.3 Table C.8.20-4 makes Segmented Property Category and Type Type 1 in a SEG, so
the writer asks for them (suggesting names from the code table); in an RT Structure
Set both are Type 3 (Table C.8-44), so a converted ROI is written without them.
"""

from __future__ import annotations

import io
import json
import warnings

import pydicom
import pytest

from radbridge.cli import main
from radbridge.errors import EncodingError
from radbridge.iods.seg import SegmentDescription, encode_segmentation, read_segmentation
from tests.peers import dciodvfy

from .conftest import descriptions


@pytest.fixture
def uncoded(study, tmp_path):
    """Our SEG with segment 3's codes removed, as some third-party SEGs come."""
    ds = encode_segmentation(study.labels, study.source, descriptions(7))
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    ds = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    del ds.SegmentSequence[2].SegmentedPropertyCategoryCodeSequence
    del ds.SegmentSequence[2].SegmentedPropertyTypeCodeSequence
    path = tmp_path / "uncoded.dcm"
    ds.save_as(path)
    return path


def test_seg_info_shows_no_codes_where_there_are_none(uncoded, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["seg", "info", str(uncoded), "--json"]) == 0
        printed = capsys.readouterr().out
        assert main(["seg", "info", str(uncoded)]) == 0
        text = capsys.readouterr().out
    info = json.loads(printed)
    third = next(s for s in info["segments"] if s["segment_number"] == 3)
    assert third["category"] is None and third["property_type"] is None
    assert "(unknown)" not in printed and "Unknown" not in printed
    assert "(no codes)" in text


def test_converted_rtstruct_carries_no_invented_code(study, uncoded, tmp_path):
    out = tmp_path / "rs.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        argv = ["convert", str(uncoded), "--to", "rtstruct", "--source", str(study.folder)]
        code = main([*argv, "-o", str(out), "--allow-empty"])
    assert code == 0
    rs = pydicom.dcmread(out)
    observation = next(o for o in rs.RTROIObservationsSequence if o.ReferencedROINumber == 3)
    assert "RTROIIdentificationCodeSequence" not in observation
    assert "SegmentedPropertyCategoryCodeSequence" not in observation
    others = [o for o in rs.RTROIObservationsSequence if o.ReferencedROINumber != 3]
    assert all(o.RTROIIdentificationCodeSequence[0].CodeValue == "10200004" for o in others)
    assert "(unknown)" not in str(rs)
    assert dciodvfy(out).errors == []


def test_writing_a_segment_without_codes_asks_for_them(study):
    bare = SegmentDescription(1, "livr", category=None, property_type=None, algorithm_type="MANUAL")
    with pytest.raises(EncodingError, match="Type 1") as info:
        encode_segmentation((study.labels == 5).astype("uint8"), study.source, [bare])
    assert (
        '"liver"' in str(info.value) and info.value.attribute == "SegmentedPropertyTypeCodeSequence"
    )


def test_reencoding_an_uncoded_segment_is_refused_not_invented(study, uncoded):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segments = list(read_segmentation(uncoded).segments.values())
    with pytest.raises(EncodingError, match="segment 3"):
        encode_segmentation(study.labels, study.source, segments)
