"""CLI: FRACTIONAL SEGs from 3-D/4-D NIfTI and NRRD; stacked decode to 4-D NIfTI and per segment.

highdicom reads the SEGs we write; nibabel and SimpleITK (not radbridge) read the
files ``seg decode`` writes.
"""

from __future__ import annotations

import json

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from radbridge.cli import main
from radbridge.geometry import Volume
from radbridge.io.nifti import volume_to_nifti, volume_to_sitk

pytestmark = pytest.mark.peer

LIVER = {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}
ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}


def _labels(path, n):
    spec = {
        str(k): {"label": f"class {k}", "category": ANATOMY, "type": LIVER} for k in range(1, n + 1)
    }
    path.write_text(json.dumps(spec))
    return path


def _probabilities(shape, n, seed=3):
    rng = np.random.default_rng(seed)
    values = rng.random((n, *shape)).astype(np.float32)
    values[values < 0.4] = 0  # empty areas, so frames are omitted somewhere
    return values


def _highdicom_fractions(path, study, n):
    uids = [ref.sop_instance_uid for ref in study.source.slice_refs]
    pixels = hd.seg.segread(path).get_pixels_by_source_instance(uids, rescale_fractional=True)
    return np.moveaxis(np.asarray(pixels, np.float64), -1, 0)[:n]


def _nifti_4d(stacked, geometry):
    """A 4-D NIfTI (i, j, k, segment) made with nibabel from the per-volume affine."""
    affine = volume_to_nifti(Volume.from_geometry(stacked[0], geometry)).affine
    return nib.Nifti1Image(np.ascontiguousarray(np.transpose(stacked, (3, 2, 1, 0))), affine)


def _encode(study, mask, labels, out, *extra):
    argv = ["seg", "encode", "--source", str(study.folder), "--mask", str(mask)]
    return main([*argv, "--labels", str(labels), "-o", str(out), *extra])


def test_fractional_from_a_4d_nifti(study, tmp_path):
    probabilities = _probabilities(study.source.geometry.shape, 3)
    nib.save(_nifti_4d(probabilities, study.source.geometry), tmp_path / "p.nii.gz")
    out = tmp_path / "seg.dcm"
    code = _encode(
        study, tmp_path / "p.nii.gz", _labels(tmp_path / "l.json", 3), out, "--type", "fractional"
    )
    assert code == 0
    theirs = _highdicom_fractions(out, study, 3)
    np.testing.assert_allclose(theirs, probabilities, atol=0.5 / 255 + 1e-6)


def test_fractional_from_a_multicomponent_nrrd(study, tmp_path):
    probabilities = _probabilities(study.source.geometry.shape, 2, seed=5)
    template = volume_to_sitk(Volume.from_geometry(probabilities[0], study.source.geometry))
    image = sitk.GetImageFromArray(np.moveaxis(probabilities, 0, -1).copy(), isVector=True)
    image.CopyInformation(template)
    sitk.WriteImage(image, str(tmp_path / "p.nrrd"))
    out = tmp_path / "seg.dcm"
    code = _encode(
        study, tmp_path / "p.nrrd", _labels(tmp_path / "l.json", 2), out, "--type", "fractional"
    )
    assert code == 0
    np.testing.assert_allclose(
        _highdicom_fractions(out, study, 2), probabilities, atol=0.5 / 255 + 1e-6
    )


def test_3d_probabilities_for_several_segments_get_one_clear_hint(study, tmp_path, capsys):
    probabilities = _probabilities(study.source.geometry.shape, 1)[0]
    nib.save(
        volume_to_nifti(Volume.from_geometry(probabilities, study.source.geometry)),
        tmp_path / "p.nii.gz",
    )
    labels = _labels(tmp_path / "l.json", 2)
    assert (
        _encode(study, tmp_path / "p.nii.gz", labels, tmp_path / "a.dcm", "--type", "fractional")
        == 1
    )
    err = capsys.readouterr().err
    assert "one volume per segment" in err and "4-D NIfTI" in err
    # As a binary SEG, fractions are refused with a pointer to --type fractional.
    assert _encode(study, tmp_path / "p.nii.gz", labels, tmp_path / "b.dcm") == 1
    err = capsys.readouterr().err
    assert "--type fractional" in err and "split" not in err


@pytest.fixture(scope="module")
def overlapping(study, tmp_path_factory):
    """A BINARY SEG with two overlapping segments, written by the CLI from a 4-D NIfTI."""
    folder = tmp_path_factory.mktemp("overlap")
    shape = study.source.geometry.shape
    masks = np.zeros((2, *shape), np.uint8)
    masks[0, 2:8, 10:30, 10:30] = 1
    masks[1, 4:9, 20:40, 20:40] = 1
    nib.save(_nifti_4d(masks, study.source.geometry), folder / "m.nii.gz")
    out = folder / "overlap.dcm"
    assert _encode(study, folder / "m.nii.gz", _labels(folder / "l.json", 2), out) == 0
    return out, masks.astype(bool)


def test_stacked_decode_to_4d_nifti_and_nrrd(study, overlapping, tmp_path, capsys):
    path, masks = overlapping
    # A label map cannot hold them: the hint names what does.
    assert main(["seg", "decode", str(path), "-o", str(tmp_path / "l.nii.gz")]) == 1
    assert "--stacked" in capsys.readouterr().err
    out = tmp_path / "stacked.nii.gz"
    argv = ["seg", "decode", str(path), "--stacked", "--source", str(study.folder)]
    assert main([*argv, "-o", str(out)]) == 0
    data = np.asarray(nib.load(out).dataobj)
    assert data.shape == (*study.source.geometry.shape[::-1], 2)
    np.testing.assert_array_equal(np.transpose(data, (3, 2, 1, 0)) == 1, masks)
    assert main([*argv, "-o", str(tmp_path / "stacked.nrrd")]) == 0
    image = sitk.ReadImage(str(tmp_path / "stacked.nrrd"))
    assert image.GetNumberOfComponentsPerPixel() == 2
    np.testing.assert_array_equal(np.moveaxis(sitk.GetArrayFromImage(image), -1, 0) == 1, masks)


@pytest.mark.parametrize("file_format", ["nii.gz", "nrrd"])
def test_per_segment_decode_writes_one_file_per_segment(study, overlapping, tmp_path, file_format):
    path, masks = overlapping
    folder = tmp_path / "segments"
    argv = ["seg", "decode", str(path), "--per-segment", "--source", str(study.folder)]
    assert main([*argv, "-o", str(folder), "--format", file_format]) == 0
    described = json.loads((folder / "segments.json").read_text())
    assert [d["segment_number"] for d in described] == [1, 2]
    assert [d["label"] for d in described] == ["class 1", "class 2"]
    for k, entry in enumerate(described):
        image = sitk.ReadImage(str(folder / entry["file"]))
        assert entry["file"] == f"segment-{k + 1}.{file_format}"
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image) == 1, masks[k])
        np.testing.assert_allclose(image.GetOrigin(), study.source.geometry.origin, atol=1e-3)


def test_stacked_fractional_decode_keeps_fractions_unless_thresholded(study, tmp_path):
    probabilities = _probabilities(study.source.geometry.shape, 2, seed=9)
    np.save(tmp_path / "p.npy", probabilities)
    out = tmp_path / "seg.dcm"
    assert (
        _encode(
            study, tmp_path / "p.npy", _labels(tmp_path / "l.json", 2), out, "--type", "fractional"
        )
        == 0
    )
    theirs = _highdicom_fractions(out, study, 2)
    argv = ["seg", "decode", str(out), "--stacked", "--source", str(study.folder)]
    assert main([*argv, "-o", str(tmp_path / "f.nii.gz")]) == 0
    data = np.transpose(np.asarray(nib.load(tmp_path / "f.nii.gz").dataobj), (3, 2, 1, 0))
    np.testing.assert_allclose(data, theirs, atol=1e-6)
    assert main([*argv, "-o", str(tmp_path / "t.nii.gz"), "--threshold", "0.7"]) == 0
    data = np.transpose(np.asarray(nib.load(tmp_path / "t.nii.gz").dataobj), (3, 2, 1, 0))
    np.testing.assert_array_equal(data == 1, theirs >= 0.7)
