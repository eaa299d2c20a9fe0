"""Cutting undefined-length sequences out of pydicom's way loses nothing."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement

from radbridge.errors import RadbridgeError
from radbridge.iods.multiframe.fast_read import open_read, read_with_raw_sequences
from radbridge.seg import read_segmentation

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


@pytest.mark.parametrize(
    "name",
    [
        "dcmqi/liver.dcm",  # native 1-bit
        "pydicom_recoded/liver_rle.dcm",  # encapsulated
        "pydicom_recoded/liver_deflate.dcm",  # Deflated Image Frame Compression
        "pydicom_recoded/liver_expb.dcm",  # big endian: read as before
    ],
)
def test_open_read_gives_pydicoms_data_set_without_copying_pixels(interop, name):
    path = interop / "seg" / name
    ours = open_read(path, raw_tags=(PER_FRAME,))
    theirs = pydicom.dcmread(path)
    assert ours == theirs  # every element, Pixel Data's bytes too
    assert ours["PixelData"].is_undefined_length == theirs["PixelData"].is_undefined_length
    assert isinstance(ours.PixelData, memoryview) is not name.endswith("expb.dcm")
    assert ours.filename == str(path)


def test_open_read_keeps_elements_after_the_pixel_data(interop, tmp_path):
    ds = pydicom.dcmread(interop / "seg" / "dcmqi" / "liver.dcm")
    ds.DataSetTrailingPadding = b"\x00" * 4
    path = tmp_path / "trailing.dcm"
    ds.save_as(path)
    ours = open_read(path, raw_tags=(PER_FRAME,))
    assert ours.DataSetTrailingPadding == b"\x00" * 4
    assert ours.PixelData == ds.PixelData


def test_a_segmentation_read_from_a_file_survives_the_file_being_overwritten(interop, tmp_path):
    # The pixels are a view of bytes read into memory, not of a mapping of the file:
    # saving over the file it came from (truncate, then write) must not pull them away.
    path = tmp_path / "seg.dcm"
    path.write_bytes((interop / "seg" / "dcmqi" / "liver.dcm").read_bytes())
    seg = read_segmentation(path)
    before = seg.label_volume().array.copy()
    seg.dataset.save_as(path)
    np.testing.assert_array_equal(seg.label_volume().array, before)
    np.testing.assert_array_equal(read_segmentation(path).label_volume().array, before)


def test_open_read_names_the_file_of_a_damaged_header(interop, tmp_path):
    data = bytearray((interop / "seg" / "dcmqi" / "liver.dcm").read_bytes())
    at = data.index(b"\x08\x00\x60\x00")  # Modality (0008,0060) CS
    data[at + 4 : at + 6] = b"TI"  # a VR pydicom cannot decode
    path = tmp_path / "damaged.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(RadbridgeError, match=r"damaged\.dcm"):
        open_read(path, raw_tags=(PER_FRAME,))


@pytest.mark.parametrize("syntax", ["rle", "explicit"])
def test_label_maps_longer_than_a_decoding_chunk(tmp_path, syntax):
    """40 LABELMAP frames are decoded 16 at a time into the volume; pydicom decodes the same."""
    from radbridge.io.phantom import write_phantom
    from radbridge.io.series import read_series_datasets
    from radbridge.seg import encode_segmentation

    from .conftest import descriptions

    files = write_phantom(tmp_path / "ct", slices=40, size=24, seed=3)
    datasets = read_series_datasets(files.dicom_dir, headers_only=True)
    labels = np.load(files.labels_npy)
    labels[:, 0, 0] = np.arange(40) % 3 + 1  # every slice holds a label: one frame each
    n = int(labels.max())
    ds = encode_segmentation(
        labels,
        datasets,
        descriptions(n),
        segmentation_type="labelmap",
        transfer_syntax=syntax,
    )
    path = tmp_path / "seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    volume = read_segmentation(path).label_volume()
    np.testing.assert_array_equal(volume.array, labels)
    np.testing.assert_array_equal(pydicom.dcmread(path).pixel_array, labels)


def _pickle_and_copy(ds):
    import copy
    import pickle

    return pickle.loads(pickle.dumps(ds)), copy.deepcopy(ds)


@pytest.mark.parametrize("opener", ["open_read", "open_mapped"])
def test_a_data_set_with_its_pixel_data_in_the_file_pickles_and_copies(interop, opener):
    """A worker process or an edit of a copy needs the data set whole: the view becomes bytes."""
    from radbridge.iods.multiframe import fast_read

    path = interop / "seg" / "dcmqi" / "liver.dcm"
    ds = getattr(fast_read, opener)(path, raw_tags=(PER_FRAME,))
    assert isinstance(ds["PixelData"].value, memoryview)  # read without a copy
    for copied in _pickle_and_copy(ds):
        assert type(copied["PixelData"]).__name__ == "DataElement"
        assert isinstance(copied.PixelData, bytes)
        assert copied == ds and copied.PixelData == pydicom.dcmread(path).PixelData


def test_readers_results_pickle_and_copy(interop, tmp_path):
    from radbridge.pm import open_parametric_map

    seg = read_segmentation(interop / "seg" / "dcmqi" / "liver.dcm")
    for copied in _pickle_and_copy(seg.dataset):
        assert read_segmentation(copied).label_volume().array.sum() == (
            seg.label_volume().array.sum()
        )
    pm_files = sorted((interop / "pm").rglob("*.dcm"))
    assert pm_files, "no Parametric Map in the interop set"
    pm = open_parametric_map(pm_files[0])
    for copied in _pickle_and_copy(pm.dataset):
        assert copied == pm.dataset
