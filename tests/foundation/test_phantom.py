"""The phantom: deterministic, valid DICOM, ground truth consistent with the images."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from radbridge.io.phantom import LABEL_NAMES, FollowUp, generate_phantom, write_phantom
from radbridge.io.series import read_volume
from tests.peers import dciodvfy


def digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = write_phantom(tmp_path / "a", slices=8, size=32, seed=3)
    b = write_phantom(tmp_path / "b", slices=8, size=32, seed=3)
    c = write_phantom(tmp_path / "c", slices=8, size=32, seed=4)
    assert digest(a.dicom_dir) == digest(b.dicom_dir)
    assert digest(a.dicom_dir) != digest(c.dicom_dir)
    assert a.study_instance_uid != c.study_instance_uid


def test_hu_follow_the_labels():
    ph = generate_phantom(slices=40, size=96, seed=0)
    hu, lab = ph.hu.array, ph.labels.array
    means = {LABEL_NAMES[k]: float(hu[lab == k].mean()) for k in LABEL_NAMES}
    assert means["lung_left"] < -800 and means["lung_right"] < -800
    assert means["bone"] > 500
    assert 45 < means["liver"] < 75
    assert means["liver_lesion"] < means["liver"] - 25
    assert float(hu[lab == 0].mean()) < -990
    # Patient left is +x: the left lung's voxels lie at positive x.
    idx = np.argwhere(lab == 2)
    assert ph.labels.geometry.index_to_lps(idx)[:, 0].mean() > 0
    idx = np.argwhere(lab == 5)
    assert ph.labels.geometry.index_to_lps(idx)[:, 0].mean() < 0  # liver on the right


def test_lesions_have_their_stated_size():
    ph = generate_phantom(slices=150, size=256, seed=2)
    voxel = float(np.prod(ph.labels.spacing))
    for lesion in ph.lesions:
        centre_index = np.round(ph.labels.geometry.lps_to_index(lesion.centre_lps)).astype(int)
        assert ph.labels.array[tuple(centre_index)] == lesion.label
    liver_lesion = next(les for les in ph.lesions if les.name == "liver_lesion")
    measured = (ph.labels.array == 7).sum() * voxel
    expected = np.pi / 6 * liver_lesion.diameter_mm**3
    assert measured == pytest.approx(expected, rel=0.1)


def test_files_read_back_to_the_phantom(tmp_path):
    files = write_phantom(tmp_path, slices=12, size=48, seed=1)
    vol = read_volume(files.dicom_dir, rescale=True)
    ph = generate_phantom(slices=12, size=48, seed=1)
    np.testing.assert_array_equal(vol.array, ph.hu.array)
    np.testing.assert_allclose(vol.affine, ph.hu.affine, atol=1e-4)
    np.testing.assert_array_equal(np.load(files.labels_npy), ph.labels.array)
    assert json.loads(files.labels_json.read_text())["6"] == "lung_nodule"
    truth = json.loads(files.truth_json.read_text())
    assert truth["sop_instance_uids"] == [r.sop_instance_uid for r in vol.slice_refs]
    from radbridge.io.nifti import read_image

    nifti = read_image(files.labels_nifti)
    np.testing.assert_array_equal(nifti.array, ph.labels.array)
    np.testing.assert_allclose(nifti.affine, ph.labels.affine, atol=1e-4)


@pytest.mark.peer
def test_phantom_passes_dciodvfy(tmp_path):
    files = write_phantom(tmp_path, slices=4, size=32, seed=0)
    for path in sorted(files.dicom_dir.glob("*.dcm"))[:2]:
        result = dciodvfy(path)
        assert result.errors == [], result.output
        assert result.warnings == [], result.output


def test_follow_up_visit_from_the_command_line(tmp_path, capsys):
    from pydicom import dcmread

    from radbridge.cli import main

    base, later = tmp_path / "v0", tmp_path / "v1"
    args = ["phantom", "--slices", "8", "--size", "32", "--seed", "2"]
    assert main([*args, str(base)]) == 0
    moved = ["--follow-up", "1", "--days", "30", "--shift", "4,-2,6", "--rotate", "5"]
    assert main([*args, str(later), *moved]) == 0
    truth = json.loads((later / "phantom.json").read_text())
    assert [les["status"] for les in truth["lesions"]] == ["grown", "shrunk", "stable", "new"]
    assert truth["follow_up"] == {"visit": 1, "days": 30, "shift_mm": [4, -2, 6], "rotation_deg": 5}
    first, second = (dcmread(next((d / "dicom").iterdir())) for d in (base, later))
    assert first.PatientID == second.PatientID
    assert (first.StudyDate, second.StudyDate) == ("20260101", "20260131")
    assert first.StudyInstanceUID != second.StudyInstanceUID
    assert first.FrameOfReferenceUID != second.FrameOfReferenceUID  # the patient moved
    capsys.readouterr()
    assert main([*args, str(tmp_path / "bad"), "--follow-up", "1", "--shift", "4,2"]) == 2
    assert "--shift" in capsys.readouterr().err


def test_unmoved_follow_up_shares_the_frame_and_shows_the_changes():
    base = generate_phantom(slices=40, size=96, seed=5)
    later = generate_phantom(slices=40, size=96, seed=5, follow_up=FollowUp())
    assert base.hu.frame_of_reference_uid == later.hu.frame_of_reference_uid
    for lesion in later.lesions:
        if lesion.baseline_index is None:
            continue
        old = base.lesions[lesion.baseline_index]
        assert old.centre_lps == lesion.centre_lps
        index = np.rint(later.labels.geometry.lps_to_index(np.array([lesion.centre_lps]))[0])
        assert later.labels.array[tuple(index.astype(int))] == lesion.label
    # the resolved 10 mm nodule is gone: its centre is lung now
    gone = base.lesions[0]
    index = np.rint(base.labels.geometry.lps_to_index(np.array([gone.centre_lps]))[0]).astype(int)
    assert base.labels.array[tuple(index)] == gone.label
    assert later.labels.array[tuple(index)] == 2
