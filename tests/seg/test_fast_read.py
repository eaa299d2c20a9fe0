"""Cutting undefined-length sequences out of pydicom's way loses nothing."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataelem import RawDataElement

from radbridge.iods.multiframe.fast_read import read_with_raw_sequences

PER_FRAME = 0x52009230


@pytest.mark.parametrize(
    "name",
    [
        "dcmqi/liver.dcm",
        "dcmqi/partial_overlaps.dcm",
        "dcmqi/23x38x3_label.seg.dcm",
        "highdicom/seg_image_ct_binary.dcm",
        "pydicom_recoded/liver_expb.dcm",
        "pydicom_recoded/liver_deflate.dcm",
        "pydicom_recoded/liver_rle.dcm",
    ],
)
def test_same_data_set_as_pydicom(interop, name):
    path = interop / "seg" / name
    ours = read_with_raw_sequences(path.read_bytes(), tags=(PER_FRAME,))
    theirs = pydicom.dcmread(path)
    assert ours == theirs  # every element, the per-frame groups parsed on access
    assert len(ours.PerFrameFunctionalGroupsSequence) == int(theirs.NumberOfFrames)


def test_undefined_length_sequences_stay_raw(interop):
    data = (interop / "seg" / "dcmqi" / "partial_overlaps.dcm").read_bytes()
    ds = read_with_raw_sequences(data, tags=(PER_FRAME,))
    assert isinstance(ds.get_item(PER_FRAME), RawDataElement)


def test_damaged_file_falls_back_to_pydicom(interop):
    data = (interop / "seg" / "dcmqi" / "liver.dcm").read_bytes()
    cut = data[: len(data) // 3]
    plain = pydicom.dcmread(__import__("io").BytesIO(cut))
    assert read_with_raw_sequences(cut, tags=(PER_FRAME,)).keys() == plain.keys()
