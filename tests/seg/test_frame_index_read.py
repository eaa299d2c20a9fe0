"""The frame index parses only the functional groups it reads, and gives what a full parse gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement

from radbridge.errors import DecodingError
from radbridge.iods.multiframe.frame_index import FrameIndex, index_frames, parse_raw
from radbridge.iods.multiframe.functional_groups import parse_items

PER_FRAME = 0x52009230
FRAME_CONTENT = 0x00209111
PLANE_POSITION = 0x00209113

SEGS = [
    "dcmqi/liver.dcm",
    "dcmqi/partial_overlaps.dcm",
    "dcmqi/23x38x3_label.seg.dcm",
    "dcmqi/sparse-labelmap-ppv5.dcm",
    "highdicom/seg_image_ct_binary.dcm",
    "highdicom/seg_image_ct_binary_fractional.dcm",
    "highdicom/seg_image_sm_numbers.dcm",
    "pydicom_recoded/liver_expb.dcm",
]


def _same(a: FrameIndex, b: FrameIndex) -> bool:
    return (
        np.array_equal(a.positions, b.positions, equal_nan=True)
        and np.array_equal(a.segments, b.segments)
        and a.source_uids == b.source_uids
        and np.array_equal(a.source_frames, b.source_frames)
    )


@pytest.mark.parametrize("name", SEGS)
def test_the_index_is_that_of_pydicom_items(interop: Path, name: str) -> None:
    path = interop / "seg" / name
    raw = pydicom.dcmread(path)
    labelmap = "LABELMAP" in str(raw.get("SegmentationType", ""))
    parsed = pydicom.dcmread(path)
    _ = list(parsed.PerFrameFunctionalGroupsSequence)  # parsed by pydicom: the other path
    _ = list(parsed.get("SharedFunctionalGroupsSequence", []))
    assert not isinstance(parsed.get_item(PER_FRAME), RawDataElement)
    assert _same(index_frames(raw, labelmap=labelmap), index_frames(parsed, labelmap=labelmap))


def test_unread_sequences_stay_bytes(interop: Path) -> None:
    ds = pydicom.dcmread(interop / "seg" / "highdicom" / "seg_image_ct_binary.dcm")
    element = ds.get_item(PER_FRAME)
    assert isinstance(element, RawDataElement)
    everything = parse_raw(element, None)
    only = parse_raw(element, None, descend={PLANE_POSITION})
    assert everything is not None and only is not None
    assert isinstance(everything[0][FRAME_CONTENT], list)
    assert isinstance(only[0][FRAME_CONTENT], bytes)
    assert only[0][PLANE_POSITION] == everything[0][PLANE_POSITION]
    # the bytes kept are the sequence's value: parsing them gives the full parse's items
    kept = parse_items(
        only[0][FRAME_CONTENT], little_endian=True, implicit_vr=element.is_implicit_VR
    )
    assert kept == everything[0][FRAME_CONTENT]


def test_a_skipped_sequence_longer_than_the_data_is_refused() -> None:
    # an item holding FrameContentSequence (SQ, explicit VR) whose length runs past the end
    element = b"\x20\x00\x11\x91SQ\x00\x00" + (1000).to_bytes(4, "little") + b"\x00" * 8
    item = b"\xfe\xff\x00\xe0" + len(element).to_bytes(4, "little") + element
    with pytest.raises(DecodingError, match="00209111 has an impossible length"):
        parse_items(item, little_endian=True, implicit_vr=False, descend=set())
