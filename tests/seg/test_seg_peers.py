"""Independent readers agree with radbridge, both ways, voxel for voxel."""

from __future__ import annotations

import warnings

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radbridge.geometry import Volume, VolumeGeometry
from radbridge.io.nifti import volume_from_sitk
from radbridge.io.nrrd import read_nrrd
from radbridge.iods.seg import encode_segmentation, read_segmentation
from tests.peers import dcentvfy, dciodvfy, segimage2itkimage

from .conftest import descriptions

pytestmark = pytest.mark.peer


def onto(geometry: VolumeGeometry, array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Place another reader's voxels onto ``geometry`` by their LPS positions."""
    out = np.zeros(geometry.shape, array.dtype)
    idx = np.argwhere(np.ones(array.shape, bool))
    lps = idx @ affine[:3, :3].T + affine[:3, 3]
    ours = geometry.lps_to_index(lps)
    rounded = np.rint(ours).astype(int)
    assert np.abs(ours - rounded).max() < 1e-3, "voxel centres do not coincide"
    inside = np.all((rounded >= 0) & (rounded < geometry.shape), axis=1)
    assert not array[tuple(idx[~inside].T)].any(), "segmented voxels outside the grid"
    out[tuple(rounded[inside].T)] = array[tuple(idx[inside].T)]
    return out


@pytest.fixture(scope="module")
def written(study, tmp_path_factory):
    folder = tmp_path_factory.mktemp("segs")
    paths = {}
    for seg_type in ("binary", "labelmap"):
        ds = encode_segmentation(
            study.labels,
            study.source,
            descriptions(7),
            segmentation_type=seg_type,
            transfer_syntax="explicit",
        )
        paths[seg_type] = folder / f"{seg_type}.dcm"
        ds.save_as(paths[seg_type], enforce_file_format=True)
    return paths


@pytest.mark.parametrize("seg_type", ["binary", "labelmap"])
def test_validators_accept_our_files(study, written, seg_type):
    assert dciodvfy(written[seg_type]).errors == []
    result = dcentvfy([written[seg_type], *sorted(study.folder.glob("*.dcm"))])
    assert result.errors == [], result.output


@pytest.mark.parametrize("seg_type", ["binary", "labelmap"])
def test_highdicom_reads_our_files(study, written, seg_type):
    theirs = hd.seg.segread(written[seg_type]).get_volume(combine_segments=True)
    placed = onto(study.source.geometry, np.asarray(theirs.array), theirs.affine)
    np.testing.assert_array_equal(placed, study.labels)


@pytest.mark.parametrize("seg_type", ["binary", "labelmap"])
def test_highdicom_indexes_our_frames_by_source_image(study, written, seg_type):
    # Without Spatial Locations Preserved = YES in the Derivation Image items,
    # highdicom refuses this unless told ignore_spatial_locations=True.
    seg = hd.seg.segread(written[seg_type])
    uids = [ref.sop_instance_uid for ref in study.source.slice_refs]
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=True)
    np.testing.assert_array_equal(np.asarray(pixels), study.labels)
    items = [
        image
        for frame in pydicom.dcmread(written[seg_type]).PerFrameFunctionalGroupsSequence
        for derivation in frame.DerivationImageSequence
        for image in derivation.SourceImageSequence
    ]
    assert items and {item.SpatialLocationsPreserved for item in items} == {"YES"}


def test_a_seg_on_its_own_grid_names_no_source_plane(study):
    # A mask on another grid references no source frame, so it claims no preserved location.
    geometry = study.source.geometry
    affine = geometry.affine.copy()
    affine[:3, 1:3] *= 2
    half = Volume(study.labels[:, ::2, ::2].copy(), affine, study.source.frame_of_reference_uid)
    ds = encode_segmentation(half, study.source, descriptions(7), segmentation_type="binary")
    for frame in ds.PerFrameFunctionalGroupsSequence:
        assert "DerivationImageSequence" not in frame or not frame.DerivationImageSequence


@pytest.mark.slow
def test_dcmqi_reads_our_binary_and_labelmap(study, written, tmp_path):
    # dcmqi writes one image per segment holding the segment number, ...
    images = segimage2itkimage(written["binary"], tmp_path / "binary")
    assert sorted(images.images) == list(range(1, 8))  # empty segments too
    for number in range(1, 8):
        vol = volume_from_sitk(sitk.ReadImage(str(images.images[number])))
        placed = onto(study.source.geometry, vol.array, vol.affine)
        np.testing.assert_array_equal(placed, np.where(study.labels == number, number, 0))
    # ... and a label map as one merged image.
    images = segimage2itkimage(written["labelmap"], tmp_path / "labelmap")
    vol = volume_from_sitk(sitk.ReadImage(str(images.images[min(images.images)])))
    np.testing.assert_array_equal(onto(study.source.geometry, vol.array, vol.affine), study.labels)
    # radbridge's own NRRD reader (seg encode --mask) reads dcmqi's file as SimpleITK does
    ours = read_nrrd(images.images[min(images.images)])
    assert ours is not None and ours.array.dtype == vol.array.dtype
    np.testing.assert_array_equal(ours.array, vol.array)
    np.testing.assert_allclose(ours.affine, vol.affine, rtol=0, atol=1e-12)


PATIENT_SPACE = [
    "dcmqi/liver.dcm",
    "dcmqi/partial_overlaps.dcm",
    "dcmqi/23x38x3_label.seg.dcm",
    "dcmqi/24x38x3_label.seg.dcm",
    "dcmqi/sparse-labelmap-noppv.dcm",
    "dcmqi/sparse-labelmap-ppv5.dcm",
    "highdicom/seg_image_ct_binary.dcm",
    "highdicom/seg_image_ct_binary_overlap.dcm",
    "highdicom/seg_image_ct_binary_fractional.dcm",
    "highdicom/seg_image_ct_true_fractional.dcm",
    "highdicom/seg_image_ct_binary_single_frame.dcm",
    "pydicom_recoded/liver_expb.dcm",
    "pydicom_recoded/liver_nonbyte_aligned.dcm",
    "pydicom_recoded/liver_deflate.dcm",
    "pydicom_recoded/liver_j2k.dcm",
    "pydicom_recoded/liver_rle.dcm",
    "pydicom_recoded/liver_nonbyte_aligned_rle.dcm",
]


HIGHDICOM_REFERENCE = {
    "pydicom_recoded/liver_expb.dcm": "dcmqi/liver.dcm",
    "pydicom_recoded/liver_deflate.dcm": "dcmqi/liver.dcm",
    # highdicom 0.28 fails on 1-bit RLE ("Unable to decode RLE ... 1 bits allocated").
    "pydicom_recoded/liver_rle.dcm": "dcmqi/liver.dcm",
    "pydicom_recoded/liver_nonbyte_aligned_rle.dcm": "pydicom_recoded/liver_nonbyte_aligned.dcm",
}


@pytest.mark.parametrize("name", PATIENT_SPACE)
def test_we_read_interop_segs_as_highdicom_does(interop, name):
    path = interop / "seg" / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = read_segmentation(path)
        stacked = ours.stacked_volume(fractional_as_float=False)
        # highdicom cannot open some re-encoded files: compare those with its reading
        # of the original they were re-encoded from.
        reference = HIGHDICOM_REFERENCE.get(name, name)
        theirs = hd.seg.segread(interop / "seg" / reference)
    for i, number in enumerate(stacked.segment_numbers):
        volume = theirs.get_volume(
            segment_numbers=[number], combine_segments=False, rescale_fractional=False
        )
        array = np.asarray(volume.array)[..., 0]
        placed = onto(stacked.geometry, array, volume.affine)
        np.testing.assert_array_equal(placed, stacked.array[i], err_msg=f"segment {number}")


def test_every_interop_seg_opens_with_its_segments(interop):
    for path in sorted((interop / "seg").rglob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = read_segmentation(path)
            ref = pydicom.dcmread(path)
            assert set(seg.segments) >= {
                int(s.SegmentNumber) for s in ref.SegmentSequence if int(s.SegmentNumber) > 0
            }
            frames = np.concatenate([f for _, f in seg.iter_frames()])
            assert frames.shape[0] == int(ref.get("NumberOfFrames", 1))


@pytest.mark.parametrize(
    ("seg_type", "syntax"),
    [
        ("binary", "rle"),
        ("binary", "jpeg2000"),
        ("binary", "deflated-explicit"),
        ("labelmap", "rle"),
        ("labelmap", "jpegls"),
        ("labelmap", "jpeg2000"),
    ],
)
def test_highdicom_reads_our_compressed_files(study, tmp_path, seg_type, syntax):
    ds = encode_segmentation(
        study.labels,
        study.source,
        descriptions(7),
        segmentation_type=seg_type,
        transfer_syntax=syntax,
    )
    path = tmp_path / "seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    theirs = hd.seg.segread(path).get_volume(combine_segments=True)
    placed = onto(study.source.geometry, np.asarray(theirs.array), theirs.affine)
    np.testing.assert_array_equal(placed, study.labels)
