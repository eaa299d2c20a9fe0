"""`radbridge rtstruct encode|decode|info` and `radbridge convert` through the real entry point."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from radbridge.cli import main
from radbridge.io.nifti import read_image
from radbridge.iods.rtstruct import read_rtstruct
from radbridge.iods.seg import read_segmentation
from tests.peers import dciodvfy

from .conftest import PHANTOM

ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}


@pytest.fixture
def labels_json(tmp_path):
    path = tmp_path / "labels.json"
    spec = {
        str(number): {
            "label": name,
            "category": ANATOMY,
            "type": property_type.to_json(),
            "interpreted_type": "GTV" if number >= 6 else "ORGAN",
        }
        for number, (name, property_type, _) in PHANTOM.items()
    }
    path.write_text(json.dumps(spec))
    return path


def run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.peer
def test_encode_info_decode(study, tmp_path, labels_json, capsys):
    np.save(tmp_path / "mask.npy", study.labels)
    out = tmp_path / "rs.dcm"
    code, stdout, stderr = run(
        ["rtstruct", "encode", "--source", study.folder, "--mask", tmp_path / "mask.npy",
         "--labels", labels_json, "-o", out, "--algorithm", "unet", "--algorithm-version", "2.1",
         "--hole-style", "keyhole"],
        capsys,
    )  # fmt: skip
    assert code == 0, stderr
    assert "7 ROIs" in stdout and dciodvfy(out).errors == []
    rs = read_rtstruct(out)
    assert rs.roi("Nodules").interpreted_type == "GTV"
    algorithm = rs.roi(1).structure_item.ROIDerivationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "unet"

    code, stdout, _ = run(["rtstruct", "info", out, "--json"], capsys)
    info = json.loads(stdout)
    assert code == 0 and [r["name"] for r in info["rois"]] == [v[0] for v in PHANTOM.values()]
    assert info["referenced_series_instance_uids"] == [study.source.series_instance_uid]

    # the RTSTRUCT sits in the CT folder: decode picks the series it references
    shutil.copy(out, study.folder.parent / "rs_in_folder.dcm")
    try:
        back = tmp_path / "back.nii.gz"
        code, _, stderr = run(
            ["rtstruct", "decode", out, "--source", study.folder.parent, "-o", back], capsys
        )
        assert code == 0, stderr
    finally:
        (study.folder.parent / "rs_in_folder.dcm").unlink()
    decoded = read_image(back)
    np.testing.assert_array_equal(decoded.array, study.labels)
    np.testing.assert_allclose(decoded.affine, study.source.geometry.affine, atol=1e-3)

    stacked = tmp_path / "stacked.npy"
    assert run(["rtstruct", "decode", out, "--source", study.folder, "-o", stacked,
                "--stacked"], capsys)[0] == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(stacked)[4], study.labels == 5)


def test_encode_nifti_with_plain_names(study, tmp_path, capsys):
    from radbridge.geometry import Volume
    from radbridge.io.nifti import write_image

    nifti = write_image(
        Volume.from_geometry(study.labels, study.source.geometry), tmp_path / "m.nii.gz"
    )
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({str(k): f"ROI_{k}" for k in PHANTOM}))
    out = tmp_path / "rs.dcm"
    code, _, stderr = run(
        ["rtstruct", "encode", "--source", study.folder, "--mask", nifti, "--labels", labels,
         "-o", out, "--tolerance-mm", "0.5"], capsys,
    )  # fmt: skip
    assert code == 0, stderr
    assert [r.name for r in read_rtstruct(out).rois.values()] == [f"ROI_{k}" for k in PHANTOM]


@pytest.mark.peer
def test_convert_both_ways(study, tmp_path, labels_json, capsys):
    from radbridge.iods.seg import encode_segmentation

    from .test_convert import segments

    seg_path = tmp_path / "seg.dcm"
    encode_segmentation(study.labels, study.source, segments()).save_as(
        seg_path, enforce_file_format=True
    )
    rs_path = tmp_path / "rs.dcm"
    code, stdout, stderr = run(
        ["convert", seg_path, "--to", "rtstruct", "--source", study.folder, "-o", rs_path], capsys
    )
    assert code == 0, stderr
    assert dciodvfy(rs_path).errors == []
    back = tmp_path / "back.dcm"
    code, stdout, stderr = run(
        ["convert", rs_path, "--to", "seg", "--source", study.folder, "-o", back, "--type",
         "labelmap"], capsys
    )  # fmt: skip
    assert code == 0, stderr
    assert "LABELMAP SEG, 7 segments" in stdout
    seg = read_segmentation(back)
    np.testing.assert_array_equal(seg.label_volume(study.source.geometry).array, study.labels)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mask", "wrong.npy"], "source grid is"),
        (["--mask", "mask.npy", "--labels", "one.json"], "have no ROI description"),
        (["--mask", "liver.npy", "--labels", "two.json"], "has no voxels"),
    ],
)
def test_bad_input_gives_a_clear_error(study, tmp_path, labels_json, capsys, args, message):
    np.save(tmp_path / "mask.npy", study.labels)
    np.save(tmp_path / "wrong.npy", study.labels[:, ::2])
    np.save(tmp_path / "liver.npy", (study.labels == 5).astype(np.uint8))
    (tmp_path / "one.json").write_text(json.dumps({"1": "Body"}))
    (tmp_path / "two.json").write_text(json.dumps({"1": "Liver", "2": "Spleen"}))
    base = ["rtstruct", "encode", "--source", study.folder, "--labels", labels_json,
            "-o", tmp_path / "rs.dcm"]  # fmt: skip
    args = [tmp_path / a if str(a).endswith((".npy", ".json")) else a for a in args]
    code, _, stderr = run(base + args, capsys)
    assert code == 1
    assert stderr.startswith("error: ") and message in stderr
    assert not (tmp_path / "rs.dcm").exists()


def test_unknown_interpreted_type_is_a_usage_error(study, tmp_path, labels_json, capsys):
    np.save(tmp_path / "mask.npy", study.labels)
    code, _, stderr = run(
        ["rtstruct", "encode", "--source", study.folder, "--labels", labels_json, "--mask",
         tmp_path / "mask.npy", "-o", tmp_path / "rs.dcm", "--interpreted-type", "TUMOUR"], capsys
    )  # fmt: skip
    assert code == 2 and "RT ROI Interpreted Type" in stderr and "--interpreted-type" in stderr
    assert not (tmp_path / "rs.dcm").exists()


def test_convert_refuses_unknown_targets(study, tmp_path, capsys):
    code, _, stderr = run(
        ["convert", tmp_path / "x.dcm", "--to", "nifti", "--source", study.folder, "-o",
         tmp_path / "y"], capsys
    )  # fmt: skip
    assert code == 2 and "'nifti' is not one of 'rtstruct', 'seg'" in stderr


def test_decode_refuses_a_tolerance_that_would_leave_every_contour_out(study, tmp_path, capsys):
    """A negative or NaN --tolerance-mm wrote an all-zero label map and exited 0."""
    mask = np.where(study.labels == 5, 5, 0).astype(np.uint8)
    np.save(tmp_path / "liver.npy", mask)
    (tmp_path / "liver.json").write_text(json.dumps({"5": "Liver"}))
    rs = tmp_path / "rs.dcm"
    code, _, _ = run(
        ["rtstruct", "encode", "--source", study.folder, "--mask", tmp_path / "liver.npy",
         "--labels", tmp_path / "liver.json", "-o", rs], capsys
    )  # fmt: skip
    assert code == 0
    base = ["rtstruct", "decode", rs, "--source", study.folder, "-o", tmp_path / "out.npy"]
    for bad in ("-1", "nan"):
        code, _, stderr = run([*base, "--tolerance-mm", bad], capsys)
        assert code == 2 and "--tolerance-mm" in stderr
    assert not (tmp_path / "out.npy").exists()
    code, _, _ = run([*base, "--tolerance-mm", "0"], capsys)  # contours lie on the planes
    assert code == 0 and np.array_equal(np.load(tmp_path / "out.npy"), mask)
