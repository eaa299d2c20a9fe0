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
        io.BytesIO(_bytes(encode_overlay_sc(frames, study.source, transfer_syntax=syntax)))
    )
    assert ds.SOPClassUID == MULTIFRAME_TRUE_COLOR_SC_STORAGE
    # pydicom's own decoders (RLE, pyjpegls, zlib), not radbridge's reader
    assert np.array_equal(ds.pixel_array, frames)
    assert np.array_equal(FrameReader(ds).frames(list(range(len(frames)))), frames)


def _one_slice(study):
    from radbridge.io.series import read_series_datasets
    from radbridge.iods.source import SourceSeries

    first = read_series_datasets(study.folder, headers_only=True)[:1]
    return SourceSeries.from_datasets(first)


def test_one_slice_source_has_no_frame_increment_pointer(study, frames):
    ds = pydicom.dcmread(io.BytesIO(_bytes(encode_overlay_sc(frames[:1], _one_slice(study)))))
    assert int(ds.NumberOfFrames) == 1
    assert "FrameIncrementPointer" not in ds and "SliceLocationVector" not in ds
    assert np.array_equal(ds.pixel_array, frames[0])


def test_png_decoded_by_pillow_shows_the_frames(study, frames, tmp_path):
    from PIL import Image

    from radbridge.iods.sc import render_png_montage

    labels = np.zeros(study.labels.shape, np.uint8)
    labels[2] = study.labels[2]  # only slice 3 has segments: the montage is that one frame
    chosen = render_png_montage(frames, labels, tmp_path / "m.png", count=1)
    assert list(chosen) == [2]
    png = np.asarray(Image.open(tmp_path / "m.png").convert("RGB"))
    assert np.array_equal(png, frames[2])


def test_same_study_one_series_burned_in(study, frames):
    ds = encode_overlay_sc(frames, study.source)
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
    assert _bytes(encode_overlay_sc(frames, study.source, options=FIXED)) == _bytes(
        encode_overlay_sc(frames, study.source, options=FIXED)
    )


def test_source_as_datasets_or_in_the_former_order_gives_the_same_object(study, frames):
    expected = _bytes(encode_overlay_sc(frames, study.source, options=FIXED))
    datasets = [pydicom.dcmread(p) for p in sorted(study.folder.glob("*.dcm"))]
    assert _bytes(encode_overlay_sc(frames, datasets, options=FIXED)) == expected
    deprecated = r"encode_overlay_sc\(source, \.\.\.\) is deprecated"
    with pytest.warns(DeprecationWarning, match=deprecated):
        former = encode_overlay_sc(study.source, frames, options=FIXED)
    assert _bytes(former) == expected


def test_bad_frames(study, frames):
    with pytest.raises(EncodingError, match="uint8"):
        encode_overlay_sc(frames.astype(np.uint16), study.source)
    with pytest.raises(GridMismatchError):
        encode_overlay_sc(frames[:2], study.source)
    with pytest.raises(EncodingError, match="jpeg2000"):
        encode_overlay_sc(frames, study.source, transfer_syntax="jpeg2000")


@pytest.mark.peer
def test_dciodvfy_reports_no_error(study, frames, tmp_path):
    from tests.peers import dciodvfy

    outline = render_overlay(study.volume, study.labels, COLOURS, {}, style="outline")
    blank = render_overlay(study.source, study.labels, {}, {})
    for name, rgb, syntax, source in [
        ("filled", frames, "explicit", study.source),
        ("outline-rle", outline, "rle", study.source),
        ("blank-jpegls", blank, "jpegls", study.source),
        ("one-slice", frames[:1], "explicit", _one_slice(study)),
    ]:
        path = tmp_path / f"{name}.dcm"
        encode_overlay_sc(rgb, source, transfer_syntax=syntax).save_as(
            path, enforce_file_format=True
        )
        result = dciodvfy(path)
        assert result.ok, result.summary()


@pytest.mark.peer
def test_non_square_source_pixels_keep_their_shape(study, frames, tmp_path):
    # Source pixels 0.5 mm high and 1 mm wide: without Pixel Aspect Ratio a viewer
    # shows the frames' pixels square and the anatomy twice as tall as it is.
    from tests.peers import dciodvfy

    datasets = [pydicom.dcmread(p) for p in sorted(study.folder.glob("*.dcm"))]
    for ds in datasets:
        ds.PixelSpacing = [0.5, 1.0]
    ds = encode_overlay_sc(frames, datasets)
    assert [int(v) for v in ds.PixelAspectRatio] == [1, 2]
    assert "PixelAspectRatio" not in encode_overlay_sc(frames, study.source)
    path = tmp_path / "aniso.dcm"
    ds.save_as(path, enforce_file_format=True)
    result = dciodvfy(path)
    assert result.ok, result.summary()
