"""Objects made on a source with a missing slice, and on a lossy compressed source.

A series read with ``allow_nonuniform_spacing`` keeps each slice where it was acquired
(z = 0, 2.5, 5, 10, 12.5 here). The SEG and Parametric Map frames lie there too, and
their Pixel Measures must not contradict them: dcmqi (3D Slicer's reader, the oracle
here) builds its grid from Spacing Between Slices, else from Slice Thickness, and places
each SEG frame on it by position. The mean step (3.125 mm) put frames 0.6 mm off.

Derived objects of lossy compressed images copy the Lossy Image Compression Ratio and
Method (Type 1C in the Segmentation and Parametric Map image modules).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radbridge.coding import dcm, sct, ucum
from radbridge.iods.source import Series
from radbridge.pm import encode_parametric_map
from radbridge.sc import encode_overlay_sc
from radbridge.seg import SegmentDescription, encode_segmentation
from tests.foundation.builders import ct_slice
from tests.peers.dcmqi import segimage2itkimage

ACQUIRED_Z = [0.0, 2.5, 5.0, 10.0, 12.5]  # the slice at 7.5 is missing
LIVER = SegmentDescription(
    1,
    "Liver",
    sct("91723000", "Anatomical structure"),
    sct("10200004", "Liver"),
    algorithm_type="MANUAL",
)


def missing_slice_source(thickness: str = "1") -> Series:
    datasets = []
    for number, z in enumerate(ACQUIRED_Z, start=1):
        ds = ct_slice((0.0, 0.0, z), rows=8, columns=8)
        ds.SliceThickness = thickness  # thinner than the step: no help in placing frames
        ds.InstanceNumber = number
        datasets.append(ds)
    return Series.from_datasets(datasets, allow_nonuniform_spacing=True)


def one_row_per_slice(source: Series) -> np.ndarray:
    """Slice k marks row k: where a reader puts each frame shows in the row it finds."""
    mask = np.zeros(source.geometry.shape, np.uint8)
    for k in range(mask.shape[0]):
        mask[k, k, :] = 1
    return mask


def z_of_each_row(image: sitk.Image, array: np.ndarray) -> dict[int, float]:
    """The physical z at which a reader's volume holds each marked row."""
    found = {}
    for k in range(array.shape[0]):
        for row in np.flatnonzero((array[k] > 0).any(axis=1)):
            found[int(row)] = image.TransformIndexToPhysicalPoint((0, int(row), k))[2]
    return found


@pytest.mark.peer
def test_dcmqi_places_every_seg_frame_of_a_source_with_a_missing_slice(tmp_path):
    source = missing_slice_source()
    seg = encode_segmentation(one_row_per_slice(source), source, [LIVER])
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert "SpacingBetweenSlices" not in measures  # no one value is right
    seg.save_as(tmp_path / "seg.dcm", enforce_file_format=True)
    (path,) = segimage2itkimage(tmp_path / "seg.dcm", tmp_path / "dcmqi").images.values()
    image = sitk.ReadImage(str(path))
    assert z_of_each_row(image, sitk.GetArrayFromImage(image)) == pytest.approx(
        dict(enumerate(ACQUIRED_Z))
    )


def test_a_parametric_map_of_a_source_with_a_missing_slice_states_no_false_spacing():
    # dcmqi's paramap2itkimage stacks a map's frames one step apart whatever their
    # positions (docs/pm.md), so it cannot be the oracle here; the frames keep their
    # acquired positions and no Spacing Between Slices contradicts them
    source = missing_slice_source()
    values = one_row_per_slice(source).astype(np.float32) * 0.5
    pm = encode_parametric_map(
        values,
        source,
        quantity=dcm("130402", "Class activation"),
        units=ucum("1", "ratio"),
        anatomic_region="liver",
    )
    read = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_bytes(pm)))
    measures = read.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert "SpacingBetweenSlices" not in measures
    assert float(measures.SliceThickness) == 2.5  # the smallest step
    frames = read.PerFrameFunctionalGroupsSequence
    assert [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in frames] == (
        ACQUIRED_Z
    )


def test_an_evenly_spaced_source_keeps_its_spacing_between_slices():
    datasets = [ct_slice((0.0, 0.0, 2.5 * k), rows=8, columns=8) for k in range(4)]
    source = Series.from_datasets(datasets)
    seg = encode_segmentation(np.ones(source.geometry.shape, np.uint8), source, [LIVER])
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert (float(measures.SpacingBetweenSlices), float(measures.SliceThickness)) == (2.5, 2.5)


@pytest.mark.parametrize("kind", ["seg", "pm", "sc"])
def test_a_lossy_source_passes_its_compression_ratio_and_method_on(kind):
    datasets = [ct_slice((0.0, 0.0, 2.5 * k), rows=8, columns=8) for k in range(3)]
    for ds in datasets:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = "9.5"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
    source = Series.from_datasets(datasets)
    mask = np.ones(source.geometry.shape, np.uint8)
    if kind == "seg":
        made = encode_segmentation(mask, source, [LIVER])
    elif kind == "pm":
        made = encode_parametric_map(
            mask.astype(np.float32),
            source,
            quantity=dcm("130402", "Class activation"),
            units=ucum("1", "ratio"),
            anatomic_region="liver",
        )
    else:
        made = encode_overlay_sc(np.zeros((*mask.shape, 3), np.uint8), source)
    read = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_bytes(made)))
    assert read.LossyImageCompression == "01"
    assert [float(v) for v in _values(read.LossyImageCompressionRatio)] == [9.5]
    assert list(_values(read.LossyImageCompressionMethod)) == ["ISO_10918_1"]


def _values(value):
    return value if isinstance(value, pydicom.multival.MultiValue) else [value]


def _bytes(ds) -> bytes:
    buffer = pydicom.filebase.DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
