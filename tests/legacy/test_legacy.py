"""Legacy Converted Enhanced images: exact pixels and geometry, every attribute kept.

Oracles outside radbridge: dciodvfy (0 errors), highdicom's own Legacy Converted
Enhanced reader (``lceread``: each classic image's frame, found through the Image
Frame Conversion Source, holds its pixels exactly), and a real Orthanc storing it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

from radbridge.cli import main
from radbridge.errors import (
    EncodingError,
    GeometryError,
    InvalidAttributeError,
    MissingAttributeError,
    MixedSeriesError,
    UnsupportedObjectError,
)
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_series, read_series_datasets
from radbridge.iods.common import ReadObject
from radbridge.legacy import encode_legacy_enhanced, read_legacy_enhanced
from tests.peers import dciodvfy

CLASSIC = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_phantom(tmp_path_factory.mktemp("lce"), slices=8, size=32, nifti=False).dicom_dir


@pytest.fixture
def classic(phantom: Path) -> list[pydicom.Dataset]:
    return read_series_datasets(phantom)


def _as(datasets: list[pydicom.Dataset], modality: str) -> list[pydicom.Dataset]:
    for ds in datasets:
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CLASSIC[modality]
        ds.Modality = modality
        if modality != "CT":
            ds.RescaleType = "US"
    return datasets


def _save(ds: pydicom.Dataset, folder: Path, name: str = "lce.dcm") -> Path:
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.peer
@pytest.mark.parametrize("modality", ["CT", "MR", "PT"])
def test_dciodvfy_finds_no_error(classic, tmp_path, modality):
    path = _save(encode_legacy_enhanced(_as(classic, modality)), tmp_path)
    result = dciodvfy(path)
    assert not result.errors, result.output
    expected = {"CT": "LegacyConvertedEnhancedCTImage", "MR": "LegacyConvertedEnhancedMRImage"}
    assert expected.get(modality, "LegacyConvertedEnhancedPETImage") in result.output


@pytest.mark.parametrize("modality", ["CT", "MR", "PT"])
def test_highdicom_finds_each_classic_image_exactly(classic, tmp_path, modality):
    classic = _as(classic, modality)
    path = _save(encode_legacy_enhanced(classic), tmp_path)
    image = hd.legacy.lceread(path)
    for ds in classic:
        theirs = image.get_pixels_by_legacy_source_instance(
            ds.SOPInstanceUID, apply_modality_transform=False, dtype=np.int32
        )
        np.testing.assert_array_equal(theirs, ds.pixel_array)
        hu = image.get_pixels_by_legacy_source_instance(
            ds.SOPInstanceUID, apply_modality_transform=True, dtype=np.float64
        )
        np.testing.assert_allclose(
            hu, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        )


def test_series_reader_gives_the_same_volume_and_geometry(phantom, classic, tmp_path):
    path = _save(encode_legacy_enhanced(classic), tmp_path)
    ours, theirs = read_series(path), read_series(phantom)
    ours_hu, theirs_hu = ours.volume(rescale=True), theirs.volume(rescale=True)
    np.testing.assert_array_equal(ours_hu.array, theirs_hu.array)
    np.testing.assert_allclose(ours.geometry.affine, theirs.geometry.affine, atol=1e-6)
    image = read_legacy_enhanced(path)
    assert isinstance(image, ReadObject) and image.source == str(path)  # one base for readers
    assert [ref.sop_instance_uid for ref in image.classic_images] == [
        ref.sop_instance_uid for ref in theirs.slice_refs
    ]
    assert image.frame_of(theirs.slice_refs[3].sop_instance_uid) == 3


def test_every_attribute_is_kept_in_its_place(classic, tmp_path):
    for k, ds in enumerate(classic):
        ds.KVP = "120"
        ds.ExposureTime = str(100 + k)  # differs per image
        ds.ContrastBolusAgent = "IODINE"
    ds = pydicom.dcmread(_save(encode_legacy_enhanced(classic), tmp_path))
    shared = ds.SharedFunctionalGroupsSequence[0].UnassignedSharedConvertedAttributesSequence[0]
    assert shared.KVP == "120"
    assert ds.ContrastBolusAgent == "IODINE" and ds.PatientID == classic[0].PatientID
    by_uid = {str(c.SOPInstanceUID): c for c in classic}
    for frame in ds.PerFrameFunctionalGroupsSequence:
        source = by_uid[frame.ConversionSourceAttributesSequence[0].ReferencedSOPInstanceUID]
        unassigned = frame.UnassignedPerFrameConvertedAttributesSequence[0]
        assert unassigned.ExposureTime == source.ExposureTime
        assert [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient] == [
            float(v) for v in source.ImagePositionPatient
        ]
    assert "ExposureTime" not in shared and "KVP" not in ds


def test_per_slice_rescale_and_private_attributes(phantom, classic, tmp_path):
    for k, ds in enumerate(classic):
        ds.RescaleIntercept = str(-1024 + k)
        ds.add_new(0x00091010, "LO", "vendor secret")
        ds.private_block(0x0009, "ACME", create=True)
    path = _save(encode_legacy_enhanced(classic), tmp_path)
    written = pydicom.dcmread(path)
    assert not any(element.tag.is_private for element in written.iterall())
    intercepts = [
        f.PixelValueTransformationSequence[0].RescaleIntercept
        for f in written.PerFrameFunctionalGroupsSequence
    ]
    assert len(set(intercepts)) == len(classic)
    expected = np.stack(
        [
            ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            for ds in sorted(classic, key=lambda d: float(d.ImagePositionPatient[2]))
        ]
    )
    got = read_series(path).volume(rescale=True).array
    np.testing.assert_array_equal(got if got.shape == expected.shape else got[::-1], expected)


def test_compressed_and_unevenly_spaced_images_are_converted(classic, tmp_path):
    del classic[3]  # a gap: the frames keep their own positions
    for ds in classic:
        ds.compress(RLELossless)
    path = _save(encode_legacy_enhanced(classic), tmp_path)
    image = hd.legacy.lceread(path)
    for ds in classic:
        np.testing.assert_array_equal(
            image.get_pixels_by_legacy_source_instance(
                ds.SOPInstanceUID, apply_modality_transform=False, dtype=np.int32
            ),
            ds.pixel_array,
        )
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def test_same_images_give_the_same_uids(classic):
    a, b = encode_legacy_enhanced(classic), encode_legacy_enhanced(list(reversed(classic)))
    assert (a.SOPInstanceUID, a.SeriesInstanceUID) == (b.SOPInstanceUID, b.SeriesInstanceUID)
    assert a.SeriesInstanceUID != classic[0].SeriesInstanceUID
    assert a.StudyInstanceUID == classic[0].StudyInstanceUID
    assert a.SeriesNumber == int(classic[0].SeriesNumber) + 1000


def _damage(classic, index, keyword, value):
    damaged = [copy.deepcopy(ds) for ds in classic]
    if value is None:
        delattr(damaged[index], keyword)
    else:
        setattr(damaged[index], keyword, value)
    return damaged


@pytest.mark.parametrize(
    ("keyword", "value", "error", "match"),
    [
        ("PatientID", "OTHER", MixedSeriesError, "PatientID differs"),
        ("StudyInstanceUID", "1.2.3", GeometryError, None),
        ("Rows", 16, EncodingError, "Rows is 16"),
        ("PhotometricInterpretation", "MONOCHROME1", EncodingError, "MONOCHROME2"),
        ("ImagePositionPatient", None, MissingAttributeError, "CT000006.dcm"),
        ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7", MixedSeriesError, "SOPClassUID"),
        ("NumberOfFrames", 2, EncodingError, "multi-frame"),
    ],
)
def test_inconsistent_images_are_refused_naming_file_and_attribute(
    classic, keyword, value, error, match
):
    damaged = _damage(classic, 5, keyword, value)
    with pytest.raises(error, match=match) as caught:
        encode_legacy_enhanced(damaged)
    assert caught.value.attribute, str(caught.value)


def test_other_objects_are_refused_by_the_writer_and_the_reader(phantom, classic, tmp_path):
    with pytest.raises(EncodingError, match="no images"):
        encode_legacy_enhanced([])
    with pytest.raises(EncodingError, match="no Legacy Converted Enhanced form"):
        encode_legacy_enhanced(_damage(classic, 0, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.7"))
    with pytest.raises(UnsupportedObjectError, match="not a Legacy Converted Enhanced"):
        read_legacy_enhanced(sorted(phantom.iterdir())[0])


def test_damaged_files_get_clear_errors(classic, tmp_path):
    path = _save(encode_legacy_enhanced(classic), tmp_path)
    ds = pydicom.dcmread(path)
    del (
        ds.PerFrameFunctionalGroupsSequence[2]
        .ConversionSourceAttributesSequence[0]
        .ReferencedSOPInstanceUID
    )
    with pytest.raises(InvalidAttributeError, match="frame 3") as caught:
        read_legacy_enhanced(_save(ds, tmp_path, "damaged.dcm"))
    assert caught.value.path and caught.value.path.endswith("damaged.dcm")
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(Exception) as caught_truncated:
        read_legacy_enhanced(truncated)
    assert "truncated.dcm" in str(caught_truncated.value)
    assert type(caught_truncated.value).__module__ == "radbridge.errors"


def test_cli_converts_each_series(phantom, tmp_path, capsys):
    assert main(["legacy", "encode", "--source", str(phantom), "-o", str(tmp_path / "out")]) == 0
    (written,) = (tmp_path / "out").glob("*.dcm")
    assert "8 frames" in capsys.readouterr().out
    assert pydicom.dcmread(written).NumberOfFrames == 8
    assert main(["legacy", "encode", "--source", str(tmp_path / "out"), "-o", "x.dcm"]) == 1
    assert "no classic CT, MR or PET image series" in capsys.readouterr().err


@pytest.mark.peer
def test_orthanc_stores_and_lists_it(orthanc, classic, tmp_path):
    ds = encode_legacy_enhanced(classic)
    path = _save(ds, tmp_path)
    orthanc.upload(path)
    (found,) = orthanc.lookup(str(ds.SOPInstanceUID))
    stored = orthanc.instance_bytes(found["ID"])
    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(stored)) == pydicom.dcmread(path)
    assert str(ds.SeriesInstanceUID) in {
        orthanc.get(f"/series/{s}")["MainDicomTags"]["SeriesInstanceUID"] for s in orthanc.series()
    }


@pytest.mark.peer
def test_original_ct_frames_say_hu_even_when_the_classic_images_say_us(classic, tmp_path):
    # A classic CT image may give Rescale Type US (dcmqi's test CTs do); an ORIGINAL
    # enhanced CT frame shall say HU (PS3.3 C.8.15.3.10), as highdicom writes it.
    for ds in classic:
        ds.RescaleType = "US"
    image = encode_legacy_enhanced(classic)
    groups = [image.SharedFunctionalGroupsSequence[0], *image.PerFrameFunctionalGroupsSequence]
    types = {
        g.PixelValueTransformationSequence[0].RescaleType
        for g in groups
        if "PixelValueTransformationSequence" in g
    }
    assert types == {"HU"}
    result = dciodvfy(_save(image, tmp_path))
    assert not result.errors, result.output


@pytest.mark.peer
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_secondary_classic_images_give_primary_frames(classic, tmp_path, modality):
    # A reformat says DERIVED\SECONDARY\AXIAL; value 2 of an enhanced image's Image
    # and Frame Type can only be PRIMARY (PS3.3 C.8.16.1.2), dciodvfy checks it.
    images = _as(classic, modality)
    for ds in images:
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    image = encode_legacy_enhanced(images)
    assert list(image.ImageType)[:2] == ["DERIVED", "PRIMARY"]
    frame = image.PerFrameFunctionalGroupsSequence[0]
    frame_type = frame[f"{modality}ImageFrameTypeSequence"][0].FrameType
    assert list(frame_type)[:2] == ["DERIVED", "PRIMARY"]
    result = dciodvfy(_save(image, tmp_path))
    assert not result.errors, result.output


@pytest.mark.peer
def test_an_empty_specific_character_set_is_left_out(interop, tmp_path):
    """The ct-3slice images write (0008,0005) empty; it is Type 1C: present only with a value."""
    images = read_series_datasets(interop / "images" / "ct-3slice")
    assert any("SpecificCharacterSet" in ds and not ds.SpecificCharacterSet for ds in images)
    image = encode_legacy_enhanced(images)
    assert "SpecificCharacterSet" not in image
    result = dciodvfy(_save(image, tmp_path))
    assert not result.errors, result.output
