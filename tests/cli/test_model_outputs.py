"""Model-framework outputs to SEG: TotalSegmentator's folder, nnU-Net's .npz, MONAI's array+affine.

highdicom reads the SEGs back (an outside oracle); the truth is the phantom's label map.
"""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from radbridge.cli import main
from radbridge.io.model_outputs import mask_from_ijk, read_mask_folder
from radbridge.io.series import read_series

NAMES = {1: "body", 2: "lung_left", 3: "lung_right", 5: "liver", 7: "liver_lesion"}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    assert main(["-q", "phantom", str(out), "--slices", "20", "--size", "64"]) == 0
    return out


def _truth(study: Path) -> np.ndarray:
    return np.load(study / "labels.npy")  # [slice, row, column] in radbridge's slice order


def _slice_uids(study: Path) -> list[str]:
    return json.loads((study / "phantom.json").read_text())["sop_instance_uids"]


def _totalsegmentator_folder(study: Path, folder: Path) -> None:
    """One binary NIfTI per structure, named by it, in RAS (as TotalSegmentator writes)."""
    labels = nib.as_closest_canonical(nib.load(study / "labels.nii.gz"))
    data = np.asarray(labels.dataobj)
    folder.mkdir()
    for value, name in NAMES.items():
        nib.save(nib.Nifti1Image((data == value).astype(np.uint8), labels.affine),
                 folder / f"{name}.nii.gz")  # fmt: skip
    nib.save(
        nib.Nifti1Image(np.zeros_like(data, np.uint8), labels.affine), folder / "spleen.nii.gz"
    )


def _highdicom_masks(seg_file: Path, study: Path) -> tuple[dict[str, int], np.ndarray]:
    """highdicom's reading: segment label -> number, and [slice, row, column, segment]."""
    seg = hd.seg.segread(seg_file)
    numbers = {seg.get_segment_description(n).segment_label: n for n in seg.segment_numbers}
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=_slice_uids(study),
        segment_numbers=sorted(numbers.values()),
        combine_segments=False,
        assert_missing_frames_are_empty=True,
        ignore_spatial_locations=True,  # our SEGs reference each frame's source image
    )
    return numbers, pixels


def test_totalsegmentator_folder_to_seg_read_back_by_highdicom(study, tmp_path, capsys):
    folder = tmp_path / "segmentations"
    _totalsegmentator_folder(study, folder)
    out = tmp_path / "ts.seg.dcm"
    argv = ["seg", "encode", "--source", study / "dicom", "--mask-dir", folder, "-o", out, "--json"]
    assert main([str(a) for a in argv]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["left_out_empty"] == ["spleen"]
    numbers, pixels = _highdicom_masks(out, study)
    assert sorted(numbers) == sorted(NAMES.values())
    truth = _truth(study)
    for value, name in NAMES.items():
        column = sorted(numbers.values()).index(numbers[name])
        assert np.array_equal(pixels[..., column] > 0, truth == value), name
    ds = pydicom.dcmread(out)
    liver = next(s for s in ds.SegmentSequence if s.SegmentLabel == "liver")
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"  # the name table


def test_overlapping_structures_are_stacked(study, tmp_path):
    folder = tmp_path / "segmentations"
    _totalsegmentator_folder(study, folder)
    labels = nib.as_closest_canonical(nib.load(study / "labels.nii.gz"))
    data = np.asarray(labels.dataobj)
    nib.save(nib.Nifti1Image(np.isin(data, (5, 7)).astype(np.uint8), labels.affine),
             folder / "liver.nii.gz")  # the liver now includes its lesion  # fmt: skip
    read = read_mask_folder(folder, read_series(study / "dicom").geometry)
    assert read.array.ndim == 4 and read.names == tuple(sorted(NAMES.values()))
    truth = _truth(study)
    assert np.array_equal(read.array[read.names.index("liver")] > 0, np.isin(truth, (5, 7)))
    assert np.array_equal(read.array[read.names.index("liver_lesion")] > 0, truth == 7)


def _probabilities(study: Path) -> np.ndarray:
    """Background + liver + lesion probabilities on the truth, [class, slice, row, column]."""
    truth = _truth(study)
    rng = np.random.default_rng(3)
    liver = np.where(truth == 5, 0.9, 0.05) * rng.uniform(0.8, 1.0, truth.shape)
    lesion = np.where(truth == 7, 0.8, 0.02)
    return np.stack([1 - liver - lesion, liver, lesion]).astype(np.float32)


def test_nnunet_npz_probabilities_become_fractional(study, tmp_path):
    probabilities = _probabilities(study)  # [class, slice, row, column]
    # the model's input image, in RAS (rows and columns flipped against the DICOM grid)
    image = nib.as_closest_canonical(nib.load(study / "labels.nii.gz"))
    nib.save(image, tmp_path / "case_0000.nii.gz")
    assert not np.array_equal(np.asarray(image.dataobj).T, _truth(study))  # another voxel order
    truth_ijk = np.asarray(nib.load(study / "labels.nii.gz").dataobj)
    flips = [
        a
        for a in range(3)
        if image.affine[a, a] * nib.load(study / "labels.nii.gz").affine[a, a] < 0
    ]
    # nnU-Net's arrays are SimpleITK's [z, y, x] of its input: the input's [k, j, i]
    sitk_order = np.stack([np.flip(p.T, flips).T for p in probabilities])
    assert np.array_equal(np.flip(truth_ijk, flips).T, np.asarray(image.dataobj).T)
    np.savez_compressed(tmp_path / "case.npz", probabilities=sitk_order)
    (tmp_path / "labels.json").write_text(json.dumps({"1": "liver", "2": "liver_lesion"}))
    out = tmp_path / "prob.seg.dcm"
    argv = ["seg", "encode", "--source", study / "dicom", "--mask", tmp_path / "case.npz",
            "--npz-image", tmp_path / "case_0000.nii.gz", "--labels", tmp_path / "labels.json",
            "--type", "fractional", "-o", out]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    seg = hd.seg.segread(out)
    assert seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=_slice_uids(study), segment_numbers=[1, 2],
        combine_segments=False, rescale_fractional=True, ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    )  # fmt: skip
    # background (class 0) dropped; FRACTIONAL stores 0..255: equal within one step
    assert np.allclose(pixels[..., 0], probabilities[1], atol=1 / 255 + 1e-6)
    assert np.allclose(pixels[..., 1], probabilities[2], atol=1 / 255 + 1e-6)


def test_monai_array_and_affine_reach_the_source_grid(study):
    """MONAI's LoadImage gives [channel, i, j, k] and a RAS affine: no resampling, exact."""
    image = nib.as_closest_canonical(nib.load(study / "labels.nii.gz"))  # RAS, as MONAI loads
    ijk = np.asarray(image.dataobj)
    one_hot = np.stack([ijk == 5, ijk == 7]).astype(np.float32)  # [channel, i, j, k]
    geometry = read_series(study / "dicom").geometry
    placed = mask_from_ijk(one_hot, image.affine, geometry)
    truth = _truth(study)
    assert placed.shape == (2, *truth.shape)
    assert np.array_equal(placed[0] > 0, truth == 5) and np.array_equal(placed[1] > 0, truth == 7)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
    assert np.array_equal(mask_from_ijk(ijk, lps, geometry, space="LPS", channel_first=False),
                          truth)  # fmt: skip


def test_4d_nifti_probabilities_with_background_become_fractional(study, tmp_path):
    probabilities = _probabilities(study)  # [class, slice, row, column], class 0 background
    image = nib.load(study / "labels.nii.gz")  # i = column, j = row, k = slice
    channels_last = np.stack([p.T for p in probabilities], axis=-1)  # [i, j, k, class]
    nib.save(nib.Nifti1Image(channels_last, image.affine), tmp_path / "probabilities.nii.gz")
    (tmp_path / "labels.json").write_text(json.dumps({"1": "liver", "2": "liver_lesion"}))
    out = tmp_path / "prob.seg.dcm"
    argv = ["seg", "encode", "--source", study / "dicom", "--mask",
            tmp_path / "probabilities.nii.gz", "--labels", tmp_path / "labels.json",
            "--type", "fractional", "-o", out]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    seg = hd.seg.segread(out)
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=_slice_uids(study), segment_numbers=[1, 2],
        combine_segments=False, rescale_fractional=True, ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    )  # fmt: skip
    assert np.allclose(pixels[..., 0], probabilities[1], atol=1 / 255 + 1e-6)
    assert np.allclose(pixels[..., 1], probabilities[2], atol=1 / 255 + 1e-6)
