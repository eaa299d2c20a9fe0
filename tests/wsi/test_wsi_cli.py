"""``radbridge wsi info|seg encode|seg decode`` in-process, and a real Orthanc storing the SEG."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from radbridge.cli import main
from radbridge.wsi import read_slide
from tests.peers import storescu


@pytest.fixture
def labels_json(tmp_path):
    path = tmp_path / "labels.json"
    necrosis = {
        "label": "Necrosis",
        "category": {
            "value": "49755003",
            "scheme": "SCT",
            "meaning": "Morphologically Abnormal Structure",
        },
        "type": {"value": "6574001", "scheme": "SCT", "meaning": "Necrosis"},
    }
    path.write_text(json.dumps({"1": "tumor", "2": necrosis}))
    return path


def blobs(shape):
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    out = np.zeros(shape, np.uint8)
    out[(y - 40) ** 2 + (x - 50) ** 2 < 30**2] = 1
    out[y > shape[0] - 20] = 2
    return out


def test_info_lists_levels(full_slide, fluorescence_slide, capsys):
    assert main(["wsi", "info", str(full_slide.folder)]) == 0
    text = capsys.readouterr().out
    assert "3 levels" in text and "level 1  150x210 px  tiles 64x64" in text
    assert main(["wsi", "info", str(fluorescence_slide.folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["series_instance_uid"] == fluorescence_slide.series_uid
    level = result["levels"][0]
    assert level["shape"] == [300, 420] and level["tile_organization"] == "TILED_SPARSE"
    assert [p["identifier"] for p in level["optical_paths"]] == ["1", "2"]


@pytest.mark.parametrize("sparse", [False, True])
def test_encode_then_decode(full_slide, tmp_path, labels_json, capsys, sparse):
    level = read_slide(full_slide.folder).level(1)
    labels = blobs(level.shape)
    np.save(tmp_path / "mask.npy", labels)
    seg = tmp_path / "out" / "seg.dcm"
    args = ["wsi", "seg", "encode", "--source", str(full_slide.folder), "--level", "1"]
    args += ["--mask", str(tmp_path / "mask.npy"), "--labels", str(labels_json), "-o", str(seg)]
    assert main(args + (["--omit-empty-tiles"] if sparse else [])) == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    assert ("TILED_SPARSE" if sparse else "TILED_FULL") in said
    ds = pydicom.dcmread(seg)
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["tumor", "Necrosis"]
    assert ds.TotalPixelMatrixRows == level.shape[0]
    assert main(["wsi", "seg", "decode", str(seg), "-o", str(tmp_path / "back.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), labels)
    one = tmp_path / "two.npy"
    assert main(["wsi", "seg", "decode", str(seg), "-o", str(one), "--segment", "2"]) == 0
    np.testing.assert_array_equal(np.load(one), labels == 2)


def test_encode_goes_through_the_slide_seg_output_kind(full_slide, tmp_path, labels_json):
    """As the registry's kind: a named algorithm is AUTOMATIC and Contributing Equipment;
    without one the segments are MANUAL and nothing claims a model made them."""
    level = read_slide(full_slide.folder).level(2)
    np.save(tmp_path / "mask.npy", blobs(level.shape))
    args = ["wsi", "seg", "encode", "--source", str(full_slide.folder), "--level", "2"]
    args += ["--mask", str(tmp_path / "mask.npy"), "--labels", str(labels_json)]
    assert main([*args, "-o", str(tmp_path / "a.dcm"), "--algorithm", "blobber"]) == 0
    assert main([*args, "-o", str(tmp_path / "m.dcm")]) == 0
    named, manual = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "m.dcm")
    assert named.ContributingEquipmentSequence[0].ManufacturerModelName == "blobber"
    assert {s.SegmentAlgorithmType for s in named.SegmentSequence} == {"AUTOMATIC"}
    assert "ContributingEquipmentSequence" not in manual
    assert {s.SegmentAlgorithmType for s in manual.SegmentSequence} == {"MANUAL"}


def test_errors_say_what_to_do(full_slide, tmp_path, labels_json, capsys):
    np.save(tmp_path / "small.npy", np.zeros((5, 5), np.uint8))
    (tmp_path / "mask.png").write_bytes(b"\x89PNG")
    base = ["wsi", "seg", "encode", "--source", str(full_slide.folder), "--level", "0"]
    base += ["--labels", str(labels_json), "-o", str(tmp_path / "seg.dcm")]
    assert main([*base, "--mask", str(tmp_path / "small.npy")]) == 1
    assert "does not cover level 0" in capsys.readouterr().err
    assert main([*base, "--mask", str(tmp_path / "mask.png")]) == 1
    assert "numpy.save as .npy" in capsys.readouterr().err
    cut = tmp_path / "cut.npy"  # a truncated file: NumPy's own error, named
    cut.write_bytes((tmp_path / "small.npy").read_bytes()[:70])
    assert main([*base, "--mask", str(cut)]) == 1
    assert f"error: {cut}: cannot be read as a NumPy array" in capsys.readouterr().err
    assert main([*base[:-2], "--mask", str(tmp_path / "small.npy")]) == 2  # no -o
    capsys.readouterr()
    out = tmp_path / "x.npy"
    assert main(["wsi", "seg", "decode", str(full_slide.files[0][0]), "-o", str(out)]) == 1
    assert "error: " in capsys.readouterr().err
    assert not out.exists()
    assert not (tmp_path / "seg.dcm").exists()


@pytest.mark.peer
def test_orthanc_stores_and_lists_the_slide_seg(orthanc, full_slide, tmp_path, labels_json):
    level = read_slide(full_slide.folder).level(0)
    np.save(tmp_path / "mask.npy", blobs(level.shape))
    seg = tmp_path / "seg.dcm"
    args = ["wsi", "seg", "encode", "--source", str(full_slide.folder), "--level", "0"]
    args += ["--mask", str(tmp_path / "mask.npy"), "--labels", str(labels_json), "-o", str(seg)]
    assert main(args) == 0
    storescu(
        [seg, *full_slide.files[0]], orthanc.host, orthanc.dicom_port, called_aet=orthanc.aet
    ).check()
    sop = str(pydicom.dcmread(seg, stop_before_pixels=True).SOPInstanceUID)
    (found,) = orthanc.lookup(sop)
    stored = pydicom.dcmread(pydicom.filebase.DicomBytesIO(orthanc.instance_bytes(found["ID"])))
    assert stored == pydicom.dcmread(seg)  # the data set unchanged (Orthanc rewrites file meta)
    series = orthanc.get(f"/instances/{found['ID']}/series")
    assert series["MainDicomTags"]["Modality"] == "SEG"
    study = orthanc.get(f"/series/{series['ID']}/study")
    modalities = {orthanc.get(f"/series/{s}")["MainDicomTags"]["Modality"] for s in study["Series"]}
    assert modalities == {"SEG", "SM"}


def test_fractional_planes_from_the_command_line(full_slide, tmp_path, labels_json):
    level = read_slide(full_slide.folder).level(2)
    planes = np.zeros((2, *level.shape), np.float32)
    planes[0, :20] = 0.25
    planes[1, 30:] = 1.0
    np.save(tmp_path / "planes.npy", planes)
    seg = tmp_path / "frac.dcm"
    args = ["wsi", "seg", "encode", "--source", str(full_slide.folder), "--level", "2"]
    args += ["--mask", str(tmp_path / "planes.npy"), "--labels", str(labels_json)]
    assert main([*args, "-o", str(seg), "--type", "fractional"]) == 0
    assert main(["wsi", "seg", "decode", str(seg), "-o", str(tmp_path / "back.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), np.rint(planes * 255))
