"""`radbridge seg encode|decode|info` through the real entry point."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from radbridge.cli import main
from radbridge.geometry import Volume
from radbridge.io.nifti import read_image, volume_to_nifti
from radbridge.iods.seg import read_segmentation
from tests.peers import dciodvfy

LIVER = {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}
ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}


@pytest.fixture
def labels_json(tmp_path):
    path = tmp_path / "labels.json"
    spec = {
        str(k): {"label": f"organ {k}", "category": ANATOMY, "type": LIVER} for k in range(1, 8)
    }
    path.write_text(json.dumps(spec))
    return path


def test_encode_npy_then_decode_on_source(study, tmp_path, labels_json, capsys):
    np.save(tmp_path / "mask.npy", study.labels)
    out = tmp_path / "seg.dcm"
    code = main(
        [
            "seg",
            "encode",
            "--source",
            str(study.folder),
            "--mask",
            str(tmp_path / "mask.npy"),
            "--labels",
            str(labels_json),
            "-o",
            str(out),
            "--algorithm",
            "unet",
            "--algorithm-version",
            "2.1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert dciodvfy(out).errors == []
    seg = read_segmentation(out)
    assert seg.segments[3].algorithm.name == "unet"
    decoded = tmp_path / "back.nii.gz"
    assert main(["seg", "decode", str(out), "-o", str(decoded), "--source", str(study.folder)]) == 0
    back = read_image(decoded)
    np.testing.assert_array_equal(back.array, study.labels)
    np.testing.assert_allclose(back.affine, study.source.geometry.affine, atol=1e-3)


def test_nifti_with_flipped_axes_lands_on_the_source_grid(study, tmp_path, labels_json):
    vol = Volume(study.labels, study.source.geometry.affine)
    image = volume_to_nifti(vol)
    # Re-orient like a tool that stores RAS-ascending axes: flip i and j, swap them.
    flipped = image.as_reoriented(np.array([[1, -1], [0, -1], [2, 1]]))
    assert not np.allclose(flipped.affine, image.affine)
    nib.save(flipped, tmp_path / "mask.nii.gz")
    out = tmp_path / "seg.dcm"
    assert (
        main(
            [
                "seg",
                "encode",
                "--source",
                str(study.folder),
                "--mask",
                str(tmp_path / "mask.nii.gz"),
                "--labels",
                str(labels_json),
                "-o",
                str(out),
                "--type",
                "labelmap",
                "--compression",
                "none",
            ]
        )
        == 0
    )
    labels = read_segmentation(out).label_volume(study.source).array
    np.testing.assert_array_equal(labels, study.labels)


def test_mask_on_another_grid_is_refused(study, tmp_path, labels_json, capsys):
    affine = study.source.geometry.affine.copy()
    affine[:3, 3] += 5.0
    nib.save(volume_to_nifti(Volume(study.labels, affine)), tmp_path / "shifted.nii.gz")
    code = main(
        [
            "seg",
            "encode",
            "--source",
            str(study.folder),
            "--mask",
            str(tmp_path / "shifted.nii.gz"),
            "--labels",
            str(labels_json),
            "-o",
            str(tmp_path / "x.dcm"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "shifted.nii.gz" in err and "resample" in err
    assert not (tmp_path / "x.dcm").exists()
    np.save(tmp_path / "small.npy", study.labels[:3])
    assert (
        main(
            [
                "seg",
                "encode",
                "--source",
                str(study.folder),
                "--mask",
                str(tmp_path / "small.npy"),
                "--labels",
                str(labels_json),
                "-o",
                str(tmp_path / "x.dcm"),
            ]
        )
        == 1
    )
    assert "radbridge info --json" in capsys.readouterr().err


def test_bad_labels_file(study, tmp_path, capsys):
    np.save(tmp_path / "mask.npy", study.labels)
    bad = tmp_path / "labels.json"
    bad.write_text("[1, 2]")
    assert (
        main(
            [
                "seg",
                "encode",
                "--source",
                str(study.folder),
                "--mask",
                str(tmp_path / "mask.npy"),
                "--labels",
                str(bad),
                "-o",
                str(tmp_path / "x.dcm"),
            ]
        )
        == 1
    )
    assert "labels must be a JSON object" in capsys.readouterr().err


def test_info_json_and_stacked_decode(interop, tmp_path, capsys):
    path = interop / "seg" / "dcmqi" / "partial_overlaps.dcm"
    assert main(["seg", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["segmentation_type"] == "BINARY" and info["frame_count"] == 7
    assert [s["segment_number"] for s in info["segments"]] == [1, 2, 3, 4, 5]
    assert info["geometry"]["shape"] == [3, 512, 512]
    assert main(["seg", "decode", str(path), "-o", str(tmp_path / "x.nii.gz")]) == 1
    assert "--stacked" in capsys.readouterr().err
    assert main(["seg", "decode", str(path), "-o", str(tmp_path / "x.npy"), "--stacked"]) == 0
    assert np.load(tmp_path / "x.npy").shape == (5, 3, 512, 512)


def test_readme_tour_with_plain_names(tmp_path, capsys):
    out = tmp_path / "tour"
    assert main(["phantom", str(out), "--slices", "16", "--size", "64"]) == 0
    seg = out / "truth.seg.dcm"
    assert (
        main(
            [
                "seg",
                "encode",
                "--source",
                str(out / "dicom"),
                "--mask",
                str(out / "labels.nii.gz"),
                "--labels",
                str(out / "labels.json"),
                "--type",
                "labelmap",
                "-o",
                str(seg),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["seg", "info", str(seg)]) == 0
    text = capsys.readouterr().out
    assert "SCT 39607008 Lung (Left)" in text and "SCT 27925004 Nodule in Lung" in text
    assert dciodvfy(seg).errors == []
    decoded = tmp_path / "back.nii.gz"
    assert (
        main(["seg", "decode", str(seg), "--source", str(out / "dicom"), "-o", str(decoded)]) == 0
    )
    np.testing.assert_array_equal(read_image(decoded).array, np.load(out / "labels.npy"))
