"""`radbridge gsps encode|decode` through the real entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radbridge.cli import main
from radbridge.coding import sct
from radbridge.pr import read_gsps
from radbridge.rtstruct import encode_rtstruct
from radbridge.seg import SegmentDescription, encode_segmentation
from tests.peers import dciodvfy


def run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def mask_and_labels(study, tmp_path):
    np.save(tmp_path / "mask.npy", study.labels)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({str(n): name for n, name in study.present.items()}))
    return tmp_path / "mask.npy", labels


@pytest.mark.peer
def test_encode_a_mask_then_decode(study, tmp_path, mask_and_labels, capsys):
    mask, labels = mask_and_labels
    out = tmp_path / "ps.dcm"
    code, stdout, stderr = run(
        ["gsps", "encode", "--source", study.folder, "--mask", mask, "--labels", labels,
         "-o", out, "--window-center", "-600", "--window-width", "1500", "--areas"],
        capsys,
    )  # fmt: skip
    assert code == 0, stderr
    assert f"GSPS, {len(study.present)} segments" in stdout
    assert dciodvfy(out).errors == []
    code, stdout, stderr = run(["gsps", "decode", out, "--json"], capsys)
    assert code == 0, stderr
    described = json.loads(stdout)
    assert described["sop_class"] == "Grayscale Softcopy Presentation State"
    assert described["segments"] == {str(n): name for n, name in study.present.items()}
    assert described["windows"] == [
        {"center": -600.0, "width": 1500.0, "explanation": "", "images": 0}
    ]
    non_empty = {k for k in range(study.labels.shape[0]) if study.labels[k].any()}
    assert len(described["images"]) == len(non_empty)
    first = described["images"][0]["annotations"][0]
    assert first["graphics"][0]["closed"] and first["texts"][0]["text"].endswith("mm2")
    labelled = tmp_path / "back.npy"
    code, stdout, stderr = run(
        ["gsps", "decode", out, "--source", study.folder, "-o", labelled], capsys
    )
    assert code == 0, stderr
    assert "Grayscale Softcopy Presentation State" in stdout and "window -600/1500" in stdout
    assert np.array_equal(np.load(labelled), study.labels)


def test_encode_from_a_seg(study, tmp_path, capsys):
    tissue = sct("85756007", "Tissue")
    segments = [
        SegmentDescription(
            n,
            name,
            category=tissue,
            property_type=tissue,
            algorithm_type="MANUAL",
            display_rgb=(25 * n, 100, 200),
        )
        for n, name in study.present.items()
    ]
    seg = tmp_path / "seg.dcm"
    encode_segmentation(study.labels, study.source, segments).save_as(seg, enforce_file_format=True)
    out = tmp_path / "from-seg.dcm"
    code, _, stderr = run(
        ["gsps", "encode", "--source", study.folder, "--seg", seg, "-o", out], capsys
    )
    assert code == 0, stderr
    ps = read_gsps(out)
    assert ps.segments == study.present
    for layer in ps.layers:  # the SEG's colours, through CIELab and back
        assert np.abs(np.subtract(layer.display_rgb, (25 * layer.order, 100, 200))).max() <= 1
    assert np.array_equal(ps.label_volume(study.source).array, study.labels)


def test_encode_from_an_rtstruct(study, tmp_path, capsys):
    rs = tmp_path / "rs.dcm"
    rois = {n: name for n, name in study.present.items()}
    encode_rtstruct(study.labels, study.source, rois).save_as(rs, enforce_file_format=True)
    out = tmp_path / "from-rs.dcm"
    code, _, stderr = run(
        ["gsps", "encode", "--source", study.folder, "--rtstruct", rs, "-o", out, "--no-labels"],
        capsys,
    )
    assert code == 0, stderr
    ps = read_gsps(out)
    assert ps.segments == study.present
    assert all(not a.texts for a in ps.annotations)
    assert np.array_equal(ps.label_volume(study.source).array, study.labels)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--seg", "a.dcm", "--rtstruct", "b.dcm"],
        ["--mask", "m.npy"],
        ["--seg", "a.dcm", "--labels", "l.json"],
        ["--seg", "a.dcm", "--window-center", "40"],
    ],
    ids=["none", "two", "mask-without-labels", "labels-without-mask", "half-a-window"],
)
def test_usage_errors_exit_2(study, tmp_path, capsys, extra):
    code, _, stderr = run(
        ["gsps", "encode", "--source", study.folder, "-o", tmp_path / "x.dcm", *extra], capsys
    )
    assert code == 2
    assert "--" in stderr
    assert not (tmp_path / "x.dcm").exists()


def test_decoding_an_image_is_an_error(study, capsys):
    image = sorted(study.folder.iterdir())[0]
    code, _, stderr = run(["gsps", "decode", image], capsys)
    assert code == 1
    assert stderr.startswith("error: ") and "not a softcopy presentation state" in stderr
