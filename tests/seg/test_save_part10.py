"""save_part10 writes exactly the bytes of pydicom's save_as, taking its fast path when it can."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom import examples
from pydicom.uid import ImplicitVRLittleEndian

from radbridge.io.part10 import save_part10
from radbridge.iods.seg import encode_segmentation

from .conftest import descriptions


def same_bytes(ds, tmp_path, monkeypatch, *, fast: bool) -> None:
    """save_part10 and save_as give the same file; ``fast``: without ds.save_as."""
    theirs = tmp_path / "pydicom.dcm"
    ds.save_as(theirs, enforce_file_format=True)
    if fast:  # the fast path saves a copy of the header, never the data set itself
        monkeypatch.setattr(ds, "save_as", lambda *a, **k: pytest.fail("not the fast path"))
    ours = tmp_path / "ours.dcm"
    save_part10(ds, ours)
    assert ours.read_bytes() == theirs.read_bytes()
    assert "PixelData" in ds  # the caller's data set is left whole


@pytest.mark.parametrize(
    ("seg_type", "syntax", "fast"),
    [
        ("binary", "explicit", True),
        ("labelmap", "explicit", True),
        ("fractional", "explicit", True),
        ("labelmap", "rle", False),  # encapsulated: pydicom saves it
    ],
)
def test_segs_are_saved_as_pydicom_saves_them(study, tmp_path, monkeypatch, seg_type, syntax, fast):
    ds = encode_segmentation(
        study.labels if seg_type != "fractional" else (study.labels == 3).astype(np.float32),
        study.source,
        descriptions(7 if seg_type != "fractional" else 1),
        segmentation_type=seg_type,
        transfer_syntax=syntax,
    )
    same_bytes(ds, tmp_path, monkeypatch, fast=fast)


def ct():
    """pydicom's CT_small (OW pixels, explicit VR little endian), trailing padding removed."""
    ds = examples.ct
    del ds.DataSetTrailingPadding
    return ds


def test_implicit_little_endian_and_ow_pixels(tmp_path, monkeypatch):
    same_bytes(ct(), tmp_path, monkeypatch, fast=True)
    ds = ct()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    same_bytes(ds, tmp_path, monkeypatch, fast=True)
    assert pydicom.dcmread(tmp_path / "ours.dcm").pixel_array.shape == (128, 128)


def test_odd_length_pixel_data_is_padded_as_pydicom_pads_it(tmp_path, monkeypatch):
    ds = ct()
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 3, 3, 8, 8, 7
    ds.PixelData = bytes(range(9))
    ds["PixelData"].VR = "OB"
    same_bytes(ds, tmp_path, monkeypatch, fast=True)
    assert len(pydicom.dcmread(tmp_path / "ours.dcm").PixelData) == 10


def test_elements_after_the_pixel_data_go_through_pydicom(tmp_path, monkeypatch):
    ds = ct()
    ds.DataSetTrailingPadding = b"\x00" * 6
    same_bytes(ds, tmp_path, monkeypatch, fast=False)
    assert pydicom.dcmread(tmp_path / "ours.dcm").DataSetTrailingPadding == b"\x00" * 6


def test_the_raw_per_frame_groups_are_written_as_they_are(study, tmp_path, monkeypatch):
    # The writer keeps the per-frame functional groups as raw bytes and declares their
    # encoding, so pydicom writes them without parsing 1000s of items; the header copy
    # save_part10 saves must declare it too (it once parsed them all: 0.1 -> 2.5 s).

    ds = encode_segmentation(
        study.labels, study.source, descriptions(7), transfer_syntax="explicit"
    )
    parsed = []
    original = pydicom.filereader.data_element_generator
    monkeypatch.setattr(
        pydicom.filereader,
        "data_element_generator",
        lambda *a, **k: parsed.append(1) or original(*a, **k),
    )
    ds.save_as(tmp_path / "pydicom.dcm", enforce_file_format=True)
    assert parsed == []
    save_part10(ds, tmp_path / "ours.dcm")
    assert parsed == []
