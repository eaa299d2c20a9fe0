"""Multi-frame True Color SC: dciodvfy, pixels back exactly, study context, determinism."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pydicom
import pytest

from radbridge.errors import EncodingError, GridMismatchError
from radbridge.iods.common import SeriesOptions
from radbridge.iods.sc import MULTIFRAME_TRUE_COLOR_SC_STORAGE, encode_overlay_sc, render_overlay
from radbridge.pixels import FrameReader

from .conftest import COLOURS

FIXED = SeriesOptions(
    series_instance_uid="2.25.5151",
    sop_instance_uid="2.25.5152",
    timestamp=dt.datetime(2024, 1, 2, 3, 4, 5),
)


def _bytes(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def frames(study):
    return render_overlay(study.volume, study.labels, COLOURS, {1: "body"}, style="filled")


@pytest.mark.parametrize("syntax", ["explicit", "rle", "jpegls", "deflated-explicit"])
def test_pixels_come_back_exactly(study, frames, syntax):
    ds = pydicom.dcmread(
        io.BytesIO(_bytes(encode_overlay_sc(study.source, frames, transfer_syntax=syntax)))
    )
    assert ds.SOPClassUID == MULTIFRAME_TRUE_COLOR_SC_STORAGE
    assert np.array_equal(FrameReader(ds).frames(list(range(len(frames)))), frames)


def test_same_study_one_series_burned_in(study, frames):
    ds = encode_overlay_sc(study.source, frames)
    assert ds.StudyInstanceUID == study.source.study_instance_uid
    assert ds.SeriesInstanceUID != study.source.series_instance_uid
    assert ds.BurnedInAnnotation == "YES"
    assert ds.PhotometricInterpretation == "RGB" and int(ds.SamplesPerPixel) == 3
    assert len(ds.SliceLocationVector) == len(frames)
    locations = [float(v) for v in ds.SliceLocationVector]
    assert locations == sorted(locations)
    referenced = {item.ReferencedSOPInstanceUID for item in ds.SourceImageSequence}
    assert referenced == {ref.sop_instance_uid for ref in study.source.slice_refs}


def test_fixed_options_give_identical_bytes(study, frames):
    assert _bytes(encode_overlay_sc(study.source, frames, options=FIXED)) == _bytes(
        encode_overlay_sc(study.source, frames, options=FIXED)
    )


def test_bad_frames(study, frames):
    with pytest.raises(EncodingError, match="uint8"):
        encode_overlay_sc(study.source, frames.astype(np.uint16))
    with pytest.raises(GridMismatchError):
        encode_overlay_sc(study.source, frames[:2])
    with pytest.raises(EncodingError, match="jpeg2000"):
        encode_overlay_sc(study.source, frames, transfer_syntax="jpeg2000")


@pytest.mark.peer
def test_dciodvfy_reports_no_error(study, frames, tmp_path):
    from tests.peers import dciodvfy

    outline = render_overlay(study.volume, study.labels, COLOURS, {}, style="outline")
    blank = render_overlay(study.source, study.labels, {}, {})
    for name, rgb, syntax in [
        ("filled", frames, "explicit"),
        ("outline-rle", outline, "rle"),
        ("blank-jpegls", blank, "jpegls"),
    ]:
        path = tmp_path / f"{name}.dcm"
        encode_overlay_sc(study.source, rgb, transfer_syntax=syntax).save_as(
            path, enforce_file_format=True
        )
        result = dciodvfy(path)
        assert result.ok, result.summary()
