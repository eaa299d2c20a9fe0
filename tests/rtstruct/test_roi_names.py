"""ROI names that are one name: the writer refuses them, the reader keeps every ROI and says so.

Planning systems (Eclipse, RayStation) and rt-utils find structures by ROI Name; two
ROIs of one name make an import fail or merge them, and rt-utils returns the first one
only. PS3.3 C.8.8.5 asks only ROI Number to be unique, so files from other systems may
repeat a name: those are read, every ROI kept, with a warning.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
from pydicom import dcmread

from radbridge.cli import main
from radbridge.errors import EncodingError, InvalidAttributeError
from radbridge.iods.rtstruct import ROIDescription, encode_rtstruct, read_rtstruct
from radbridge.iods.seg import encode_segmentation
from radbridge.rtstruct import seg_to_rtstruct
from tests.peers import dciodvfy

from .conftest import segment

LUNGS = (2, 3)


def lungs(study) -> np.ndarray:
    return np.where(np.isin(study.labels, LUNGS), study.labels, 0)


def twin_seg(study):
    """A SEG of the two lungs (segments 1 and 2), both labelled 'Lung_L'."""
    twins = [replace(segment(2), segment_number=1), replace(segment(3), segment_number=2)]
    twins[1] = replace(twins[1], label="Lung_L")
    return encode_segmentation(np.where(lungs(study) > 0, lungs(study) - 1, 0), study.source, twins)


def run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("first", "second"), [("Lung", "Lung"), ("Lung", "lung "), (" PTV_70", "ptv_70")]
)
def test_the_writer_refuses_names_that_are_one(study, first, second):
    with pytest.raises(EncodingError) as caught:
        encode_rtstruct(lungs(study), study.source, {2: first, 3: second})
    message = str(caught.value)
    assert "ROIs 2 (" in message and "and 3 (" in message and repr(second) in message
    assert caught.value.attribute == "ROIName" and "own name" in message
    described = [ROIDescription(2, first), ROIDescription(3, second)]
    with pytest.raises(EncodingError, match="same ROI Name"):
        encode_rtstruct(lungs(study), study.source, described)


def test_names_that_differ_inside_are_different_names(study):
    rs = encode_rtstruct(lungs(study), study.source, {2: "PTV 70", 3: "PTV_70"})
    assert [item.ROIName for item in rs.StructureSetROISequence] == ["PTV 70", "PTV_70"]


def test_a_seg_whose_segments_share_a_label_is_not_converted(study):
    """SEG labels need not be unique; the structure set made from them must be."""
    seg = twin_seg(study)
    with pytest.raises(EncodingError, match=r"ROIs 1 \('Lung_L'\) and 2 \('Lung_L'\)"):
        seg_to_rtstruct(seg, study.source)


def test_the_cli_refuses_them_and_writes_nothing(study, tmp_path, capsys):
    np.save(tmp_path / "mask.npy", lungs(study))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"2": "GTV", "3": "gtv"}))
    out = tmp_path / "rs.dcm"
    code, _, stderr = run(
        ["rtstruct", "encode", "--source", study.folder, "--mask", tmp_path / "mask.npy",
         "--labels", labels, "-o", out],
        capsys,
    )  # fmt: skip
    assert code == 1 and "same ROI Name" in stderr and "'gtv'" in stderr and not out.exists()
    seg_path = tmp_path / "seg.dcm"
    twin_seg(study).save_as(seg_path, enforce_file_format=True)
    code, _, stderr = run(
        ["convert", seg_path, "--to", "rtstruct", "--source", study.folder, "-o", out], capsys
    )
    assert code == 1 and "same ROI Name" in stderr and not out.exists()


def foreign_file(study, tmp_path):
    """A structure set as another system may write it: ROIs 2 and 3 both named 'Lung'."""
    ds = encode_rtstruct(lungs(study), study.source, {2: "Lung", 3: "Lung_R"})
    ds.StructureSetROISequence[1].ROIName = "LUNG "
    path = tmp_path / "foreign.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.peer
def test_the_reader_keeps_every_roi_and_says_which_share_a_name(study, tmp_path):
    path = foreign_file(study, tmp_path)
    names = [(int(i.ROINumber), i.ROIName) for i in dcmread(path).StructureSetROISequence]
    assert names == [(2, "Lung"), (3, "LUNG")]  # pydicom: two ROIs, one name but for case
    assert dciodvfy(path).errors == []  # the standard does not ask names to differ
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rs = read_rtstruct(path)
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "ROIs 2 ('Lung') and 3 ('LUNG')" in said[0]
    assert "ROI number" in said[0]
    assert [(roi.number, roi.name) for roi in rs.rois.values()] == names  # as written
    with pytest.raises(InvalidAttributeError, match=r"'lung' is ambiguous: ROIs 2 .*, 3 "):
        rs.roi("lung")  # was ROI 2, silently
    assert rs.roi(3).name == "LUNG"
    np.testing.assert_array_equal(rs.label_volume(study.source).array, lungs(study))


def test_the_cli_reads_such_a_file(study, tmp_path, capsys):
    path = foreign_file(study, tmp_path)
    code, stdout, stderr = run(["rtstruct", "info", path, "--json"], capsys)
    assert code == 0, stderr
    assert [(r["roi_number"], r["name"]) for r in json.loads(stdout)["rois"]] == [
        (2, "Lung"),
        (3, "LUNG"),
    ]
    out = tmp_path / "labels.npy"
    code, _, stderr = run(["rtstruct", "decode", path, "--source", study.folder, "-o", out], capsys)
    assert code == 0, stderr
    np.testing.assert_array_equal(np.load(out), lungs(study))
