"""Outlines on an enhanced multi-frame image: frames referenced, per-frame display read."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom import dcmread

from radbridge.io.series import read_series, read_series_datasets
from radbridge.legacy import encode_legacy_enhanced
from radbridge.pr import encode_gsps, read_gsps
from tests.peers import dciodvfy, dcmp2pgm_dump

from .conftest import save
from .test_dcmtk import expected, parse


@pytest.fixture(scope="module")
def enhanced(study, tmp_path_factory):
    """The phantom as one Legacy Converted Enhanced CT image, read as a series."""
    folder = tmp_path_factory.mktemp("pr-enhanced")
    image = encode_legacy_enhanced(read_series_datasets(study.folder))
    image.save_as(folder / "ct.dcm", enforce_file_format=True)
    return read_series(folder / "ct.dcm"), dcmread(folder / "ct.dcm", stop_before_pixels=True)


@pytest.mark.peer
def test_frames_are_referenced_and_outlines_come_back(study, enhanced, tmp_path):
    source, image = enhanced
    assert {r.frame_number for r in source.slice_refs} == set(range(1, study.labels.shape[0] + 1))
    ds = encode_gsps(study.labels, source, study.present)
    assert dciodvfy(save(ds, tmp_path)).errors == []
    ((item,),) = [s.ReferencedImageSequence for s in ds.ReferencedSeriesSequence]
    assert item.ReferencedSOPInstanceUID == image.SOPInstanceUID
    assert sorted(item.ReferencedFrameNumber) == list(range(1, study.labels.shape[0] + 1))
    frame_of_slice = {k: r.frame_number for k, r in enumerate(source.slice_refs)}
    for annotation in ds.GraphicAnnotationSequence:
        (ref,) = annotation.ReferencedImageSequence
        assert ref.ReferencedSOPInstanceUID == image.SOPInstanceUID
        assert int(ref.ReferencedFrameNumber) in frame_of_slice.values()
    # The window and rescale come from the functional groups, as from the classic images.
    (voi,) = ds.SoftcopyVOILUTSequence
    assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (40.0, 400.0)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    ps = read_gsps(ds)
    assert np.array_equal(ps.label_volume(source).array, study.labels)
    # DCMTK, showing frame 1, applies exactly what we wrote for frame 1 (and nothing of
    # the other frames: annotations name their frame).
    path, image_path = tmp_path / "ps.dcm", tmp_path / "enhanced.dcm"
    written = pydicom.dcmread(path)
    encode_legacy_enhanced(read_series_datasets(study.folder)).save_as(
        image_path, enforce_file_format=True
    )
    assert dcmread(image_path, stop_before_pixels=True).SOPInstanceUID == image.SOPInstanceUID
    theirs = parse(dcmp2pgm_dump(image_path, path, tmp_path / "frame1.pgm"))
    assert theirs["layers"] == expected(written, image.SOPInstanceUID, 1)
    assert any(layer["graphics"] for layer in theirs["layers"].values())  # frame 1 is drawn on
    first = next(k for k in range(study.labels.shape[0]) if study.labels[k].any())
    key = (image.SOPInstanceUID, frame_of_slice[first])
    assert {a.layer for a in ps.by_image[key]} == {
        study.present[n].upper() for n in np.unique(study.labels[first]) if n
    }
