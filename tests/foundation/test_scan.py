"""Folder indexing: patients → studies → series → instances; junk is skipped, not fatal."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from radbridge.errors import DicomReadError, MixedSeriesError, NotDicomError
from radbridge.io.scan import read_header, scan
from radbridge.io.series import load_datasets, read_volume

from .builders import ct_slice, deflated_cut


@pytest.fixture
def tree(tmp_path):
    a = tmp_path / "a" / "deeper"
    a.mkdir(parents=True)
    for k in range(3):
        ct_slice((0, 0, k)).save_as(a / f"{k}.dcm", enforce_file_format=True)
    b = tmp_path / "b"
    b.mkdir()
    for k in range(2):
        other = ct_slice((0, 0, k), series_uid="1.2.3.99")
        other.StudyInstanceUID = "1.2.3.77"
        other.PatientID = "P2"
        other.save_as(b / f"IM{k}", enforce_file_format=True)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 100)
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "b" / "empty.dcm").write_bytes(b"")
    return tmp_path


def test_hierarchy_and_skips(tree, caplog):
    with caplog.at_level(logging.DEBUG, logger="radbridge.io.scan"):
        index = scan(tree)
    assert sorted(index.patients) == ["P1", "P2"]
    assert sorted(len(s.instances) for s in index.series()) == [2, 3]
    assert {p.name for p, _ in index.skipped} == {".DS_Store", "notes.txt", "empty.dcm"}
    assert "P1" not in caplog.text and "P2" not in caplog.text  # no patient IDs in logs


def test_raw_dataset_without_preamble_is_read(tmp_path):
    ds = ct_slice((0, 0, 0))
    del ds.file_meta
    path = tmp_path / "raw"
    ds.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert path.read_bytes()[:2] == b"\x08\x00"
    assert read_header(path).SOPInstanceUID == ds.SOPInstanceUID


def test_not_dicom_error_names_the_file(tmp_path):
    path = tmp_path / "x.dcm"
    path.write_bytes(b"hello world, definitely not DICOM" * 10)
    with pytest.raises(NotDicomError) as err:
        read_header(path)
    assert err.value.path == str(path)


def test_truncated_file_is_skipped_by_scan_and_refused_by_reader(tmp_path):
    ds = ct_slice((0, 0, 0), rows=64, columns=64)
    good = tmp_path / "good.dcm"
    ds.save_as(good, enforce_file_format=True)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(good.read_bytes()[:400])  # cut inside the header
    index = scan(tmp_path)
    assert index.instance_count() == 1
    assert [p.name for p, _ in index.skipped] == ["bad.dcm"]
    with pytest.raises(DicomReadError) as err:
        load_datasets([bad])
    assert err.value.path == str(bad)


def test_duplicate_instance_is_indexed_once(tree):
    src = next((tree / "a" / "deeper").glob("*.dcm"))
    shutil.copy(src, tree / "copy.dcm")
    index = scan(tree)
    assert index.instance_count() == 5
    assert any("duplicate" in reason for _, reason in index.skipped)


def test_read_volume_needs_a_series_choice_when_several(tree):
    with pytest.raises(MixedSeriesError) as err:
        read_volume(tree)
    assert "1.2.3.99" in str(err.value) and "--series" in str(err.value)
    vol = read_volume(tree, series_instance_uid="1.2.3.99")
    assert vol.shape[0] == 2
    with pytest.raises(MixedSeriesError, match="no series with this UID"):
        read_volume(tree, series_instance_uid="7.7.7")


def test_results_do_not_count_as_image_series(tree):
    seg = ct_slice((0, 0, 9))
    seg.Modality = "SEG"
    seg.SeriesInstanceUID = "1.2.3.55"
    seg.save_as(tree / "a" / "seg.dcm", enforce_file_format=True)
    shutil.rmtree(tree / "b")
    assert read_volume(tree).shape[0] == 3


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(NotDicomError, match="no such file"):
        scan(tmp_path / "nope")


@pytest.mark.parametrize("cut", [300, 400, 700, -100, -1])
def test_truncated_anywhere_is_refused(tmp_path, cut):
    ds = ct_slice((0, 0, 0), rows=64, columns=64)
    good = tmp_path / "good.dcm"
    ds.save_as(good, enforce_file_format=True)
    data = good.read_bytes()
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(data[:cut])
    with pytest.raises(DicomReadError, match="truncated") as err:
        load_datasets([bad])
    assert err.value.path == str(bad)
    assert len(load_datasets([good])) == 1


def test_truncated_encapsulated_pixel_data_is_refused(tmp_path, interop):
    data = (interop / "seg" / "pydicom_recoded" / "liver_rle.dcm").read_bytes()
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(data[:-20])
    with pytest.raises(DicomReadError, match="truncated"):
        load_datasets([bad])
    assert len(load_datasets([interop / "seg" / "pydicom_recoded" / "liver_rle.dcm"])) == 1


def _deflated_series(folder, n=3):
    """Slices 2 mm apart, saved deflated; compressible pixels make the file smaller than them."""
    paths = []
    for k in range(n):
        ds = ct_slice((0, 0, 2.0 * k), rows=64, columns=64)
        ds.PixelData = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) // 64 + k).tobytes()
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        paths.append(folder / f"{k}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


def test_a_complete_deflated_series_reads_as_pydicom_decodes_it(tmp_path):
    paths = _deflated_series(tmp_path)
    assert paths[0].stat().st_size < 64 * 64 * 2  # value offsets lie past the file's end
    vol = read_volume(paths)
    expected = np.stack([pydicom.dcmread(p).pixel_array for p in paths])
    assert np.array_equal(vol.array, expected)
    assert vol.geometry.origin.tolist() == [0.0, 0.0, 0.0] and vol.spacing[0] == 2.0


def test_a_deflated_file_cut_before_or_after_deflating_is_refused(tmp_path):
    good = _deflated_series(tmp_path, 1)[0]
    data = good.read_bytes()
    cut_inside = tmp_path / "cut_inside.dcm"
    cut_inside.write_bytes(deflated_cut(data, 100))
    with pytest.raises(DicomReadError, match="truncated") as err:
        load_datasets([cut_inside])
    assert (err.value.path, err.value.attribute) == (str(cut_inside), "(7FE0,0010)")
    cut_outside = tmp_path / "cut_outside.dcm"
    cut_outside.write_bytes(data[:-20])  # the deflate stream ends early: zlib refuses it
    with pytest.raises(DicomReadError, match="truncated") as err:
        load_datasets([cut_outside])
    assert err.value.path == str(cut_outside)
