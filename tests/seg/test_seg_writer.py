"""SEG writer: structure, options, and strict refusal of bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest

from radbridge.errors import EncodingError, GridMismatchError, MissingAttributeError
from radbridge.geometry import Volume
from radbridge.iods.common import SeriesOptions
from radbridge.iods.seg import (
    AlgorithmIdentification,
    SegmentDescription,
    encode_segmentation,
    read_segmentation,
)
from radbridge.iods.source import SourceSeries

from .conftest import ALGORITHM, ANATOMY, descriptions


def test_binary_structure(study):
    seg = encode_segmentation(study.labels, study.source, descriptions(7))
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert (seg.BitsAllocated, seg.SegmentationType, seg.SegmentsOverlap) == (1, "BINARY", "NO")
    assert seg.StudyInstanceUID == study.datasets[0].StudyInstanceUID
    assert seg.PatientID == study.datasets[0].PatientID
    assert seg.FrameOfReferenceUID == study.datasets[0].FrameOfReferenceUID
    present = {(k, s) for s in range(12) for k in np.unique(study.labels[s]) if k}
    assert int(seg.NumberOfFrames) == len(present)
    frames = seg.PerFrameFunctionalGroupsSequence  # pydicom parses our raw bytes
    pairs = [
        (
            f.SegmentIdentificationSequence[0].ReferencedSegmentNumber,
            f.FrameContentSequence[0].DimensionIndexValues,
        )
        for f in frames
    ]
    assert [p[0] for p in pairs] == sorted(p[0] for p in pairs)  # segment-major order
    refs = {
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID for f in frames
    }
    assert refs <= {ds.SOPInstanceUID for ds in study.datasets}
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == study.datasets[0].SeriesInstanceUID
    assert len(referenced.ReferencedInstanceSequence) == 12


def test_positions_match_source_slices(study):
    seg = encode_segmentation(study.labels, study.source, descriptions(7))
    positions = {
        tuple(round(float(v), 3) for v in f.PlanePositionSequence[0].ImagePositionPatient)
        for f in seg.PerFrameFunctionalGroupsSequence
    }
    source = {tuple(round(float(v), 3) for v in ds.ImagePositionPatient) for ds in study.datasets}
    assert positions <= source


def test_keep_empty_frames(study):
    sparse = encode_segmentation(study.labels, study.source, descriptions(7))
    full = encode_segmentation(study.labels, study.source, descriptions(7), keep_empty_frames=True)
    assert int(full.NumberOfFrames) == 7 * 12 > int(sparse.NumberOfFrames)
    label = encode_segmentation(
        study.labels,
        study.source,
        descriptions(7),
        segmentation_type="labelmap",
        transfer_syntax="explicit",
        keep_empty_frames=True,
    )
    assert int(label.NumberOfFrames) == 12


def test_fixed_uids_and_options(study):
    options = SeriesOptions(
        series_description="AI liver",
        series_number=901,
        series_instance_uid="2.25.1",
        sop_instance_uid="2.25.2",
        content_label="LIVER_AI",
    )
    seg = encode_segmentation(study.labels, study.source, descriptions(7), options=options)
    assert (seg.SeriesInstanceUID, seg.SOPInstanceUID) == ("2.25.1", "2.25.2")
    assert seg.file_meta.MediaStorageSOPInstanceUID == "2.25.2"
    assert (seg.SeriesNumber, seg.ContentLabel) == (901, "LIVER_AI")


def test_series_is_the_deprecated_name_of_options(study):
    options = SeriesOptions(series_instance_uid="2.25.1", sop_instance_uid="2.25.2")
    with pytest.warns(DeprecationWarning, match="options="):
        old = encode_segmentation(study.labels, study.source, descriptions(7), series=options)
    assert (old.SeriesInstanceUID, old.SOPInstanceUID) == ("2.25.1", "2.25.2")
    with pytest.raises(TypeError, match="options= only"):
        encode_segmentation(
            study.labels, study.source, descriptions(7), options=options, series=options
        )


def test_fractional_probabilities(study):
    rng = np.random.default_rng(0)
    prob = rng.random((2, *study.labels.shape)).astype(np.float32)
    prob[prob < 0.5] = 0
    seg = encode_segmentation(
        prob,
        study.source,
        descriptions(2),
        segmentation_type="fractional",
        fractional_type="occupancy",
        max_fractional_value=200,
    )
    assert (seg.SegmentationFractionalType, seg.MaximumFractionalValue) == ("OCCUPANCY", 200)
    back = read_segmentation(seg).stacked_volume(study.source)
    np.testing.assert_allclose(back.array, np.rint(prob * 200) / 200, atol=1e-6)


def test_a_boolean_mask_as_fractional_is_a_fraction_of_one(study):
    # True was stored as the integer 1 (1/255): the segment vanished at any threshold
    mask = np.stack([study.labels == 1, study.labels == 5])
    seg = encode_segmentation(mask, study.source, descriptions(2), segmentation_type="fractional")
    stored = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_part10(seg))).pixel_array
    assert set(np.unique(stored).tolist()) <= {0, 255} and stored.max() == 255  # pydicom
    back = read_segmentation(seg).stacked_volume(study.source, threshold=0.5)
    np.testing.assert_array_equal(back.array.astype(bool), mask)


def test_an_automatic_segment_needs_an_algorithm_name(study):
    # an empty Segment Algorithm Name (Type 1C) was written as it came
    (body,) = descriptions(1)
    unnamed = dataclasses.replace(body, algorithm=AlgorithmIdentification(" ", "1"))
    with pytest.raises(EncodingError, match="no name") as caught:
        encode_segmentation((study.labels == 1).astype(np.uint8), study.source, [unnamed])
    assert caught.value.attribute == "SegmentAlgorithmName"


def test_the_algorithm_identification_macro_needs_a_name_and_a_version():
    with pytest.raises(EncodingError, match="AlgorithmVersion"):
        AlgorithmIdentification("liver-net", " ").to_dataset()


def _part10(ds) -> bytes:
    buffer = pydicom.filebase.DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mask", "kwargs", "match"),
    [
        ("small", {}, "shape"),
        ("floats", {}, "whole numbers"),
        ("negative", {}, "negative"),
        ("undescribed", {}, "are described"),
        ("empty", {}, "every frame is empty"),
        ("overlap", {"segmentation_type": "labelmap"}, "overlap"),
        ("nonbinary", {}, "only 0 and 1"),
        ("nan", {"segmentation_type": "fractional"}, "NaN"),
        ("labels", {"segmentation_type": "fractional"}, "one volume per segment"),
        ("labels", {"segmentation_type": "bogus"}, "unknown value"),
        ("labels", {"transfer_syntax": "jpeg-xl"}, "unknown transfer syntax"),
    ],
)
def test_bad_input_is_refused(study, mask, kwargs, match):
    shape = study.labels.shape
    arrays = {
        "floats": study.labels.astype(np.float32) + 0.5,
        "negative": study.labels.astype(np.int16) - 1,
        "undescribed": study.labels,
        "empty": np.zeros(shape, np.uint8),
        "overlap": np.ones((2, *shape), bool),
        "nonbinary": np.full((2, *shape), 2, np.uint8),
        "nan": np.full((2, *shape), np.nan, np.float32),
        "labels": study.labels,
        "small": np.zeros((3, 4, 4), np.uint8),
    }
    n = 2 if mask in ("overlap", "nonbinary", "nan") else 7
    if mask == "undescribed":
        n = 5
    array = arrays[mask]
    with pytest.raises((EncodingError, GridMismatchError), match=match):
        encode_segmentation(array, study.source, descriptions(n), **kwargs)


def test_segment_numbers_must_run_from_one(study):
    bad = descriptions(3)[1:]
    with pytest.raises(EncodingError, match=r"1\.\.2 in order"):
        encode_segmentation(np.minimum(study.labels, 2), study.source, bad)


def test_description_rules():
    with pytest.raises(EncodingError, match="needs its algorithm"):
        SegmentDescription(1, "x", category=ANATOMY, property_type=ANATOMY).validate()
    with pytest.raises(EncodingError, match="both a tracking ID"):
        SegmentDescription(
            1, "x", category=ANATOMY, property_type=ANATOMY, algorithm=ALGORITHM, tracking_id="a"
        ).validate()
    with pytest.raises(EncodingError, match="unknown algorithm type"):
        SegmentDescription(1, "x", category=ANATOMY, property_type=ANATOMY, algorithm_type="ROBOT")
    manual = SegmentDescription(
        1, "x", category=ANATOMY, property_type=ANATOMY, algorithm_type="manual".upper()
    )
    manual.validate()


def test_source_without_frame_of_reference_is_refused(study):
    datasets = [ds.copy() for ds in study.datasets]
    for ds in datasets:
        del ds.FrameOfReferenceUID
    with pytest.raises(MissingAttributeError, match="FrameOfReferenceUID"):
        encode_segmentation(study.labels, datasets, descriptions(7))


def test_mask_on_another_grid_in_the_same_frame(study):
    geometry = study.source.geometry
    affine = geometry.affine.copy()
    affine[:3, 1:3] *= 2  # half resolution in plane
    small = np.zeros((12, 24, 24), np.uint8)
    small[3:6, 5:10, 5:10] = 1
    vol = Volume(small, affine, geometry.frame_of_reference_uid)
    seg = encode_segmentation(vol, study.source, descriptions(1))
    assert (seg.Rows, seg.Columns) == (24, 24)
    assert "DerivationImageSequence" not in seg.PerFrameFunctionalGroupsSequence[0]
    back = read_segmentation(seg)
    own = back.label_volume()
    idx = np.argwhere(small)
    assert (
        own.geometry.index_to_lps(np.argwhere(own.array)).round(3).tolist()
        == vol.geometry.index_to_lps(idx).round(3).tolist()
    )
    with pytest.raises(GridMismatchError):
        back.label_volume(study.source)
    other = Volume(small, affine, "2.25.999")
    with pytest.raises(GridMismatchError, match="frame of reference"):
        encode_segmentation(other, study.source, descriptions(1))


def test_volume_source_goes_to_a_new_study(study, caplog):
    vol = Volume(study.labels, study.source.geometry.affine, "2.25.77")
    seg = encode_segmentation(study.labels, SourceSeries.from_volume(vol), descriptions(7))
    assert seg.StudyInstanceUID != study.datasets[0].StudyInstanceUID
    assert "new study" in caplog.text
    assert "ReferencedSeriesSequence" not in seg


def test_palette_colour_labelmap(study, tmp_path):
    from dataclasses import replace

    from pydicom import dcmread
    from pydicom.pixels import apply_color_lut

    from tests.peers import dciodvfy

    segments = [replace(d, display_rgb=(10 * d.segment_number, 200, 30)) for d in descriptions(7)]
    ds = encode_segmentation(
        study.labels,
        study.source,
        segments,
        segmentation_type="labelmap",
        transfer_syntax="explicit",
        palette=True,
    )
    path = tmp_path / "palette.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert dciodvfy(path).errors == []
    stored = dcmread(path)
    assert stored.PhotometricInterpretation == "PALETTE COLOR"
    frames = np.flatnonzero(study.labels.any(axis=(1, 2)))
    rgb = apply_color_lut(stored.pixel_array, stored)  # pydicom renders it independently
    for label in (1, 5):
        assert tuple(rgb[study.labels[frames] == label][0] // 257) == (10 * label, 200, 30)
    assert tuple(rgb[study.labels[frames] == 0][0]) == (0, 0, 0)
    np.testing.assert_array_equal(
        read_segmentation(path).label_volume(study.source).array, study.labels
    )
    with pytest.raises(EncodingError, match="only defined for LABELMAP"):
        encode_segmentation(study.labels, study.source, descriptions(7), palette=True)
