"""The manifest as spreadsheets and shells write it."""

from __future__ import annotations

import json

import pydicom
import pytest

from radbridge.batch import read_manifest, run_batch
from radbridge.errors import ConfigError


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    """Excel's "CSV UTF-8" starts the file with U+FEFF; the id column must still be read."""
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(
        "id,source,kind,input,labels\nliver_01,ct é,seg,m.npy,l.json\n".encode("utf-8-sig")
    )
    (row,) = read_manifest(manifest)
    assert (row.id, row.output_name, row.source.name) == ("liver_01", "liver_01.dcm", "ct é")
    manifest.write_bytes("source,kind,input\nct,pm,m.npy\n".encode("utf-8-sig"))
    (row,) = read_manifest(manifest)
    assert row.source.name == "ct"


def test_a_rerun_skips_rows_however_the_manifest_path_is_spelled(
    manifest_factory, tmp_path, monkeypatch
):
    """manifest.csv, ./manifest.csv and /abs/manifest.csv are one manifest: rows are done."""
    manifest = manifest_factory(1, bad_row=False)
    monkeypatch.chdir(manifest.parent)
    (row,) = read_manifest("manifest.csv")
    assert row.source.is_absolute() and row.input.is_absolute() and row.labels.is_absolute()
    out = tmp_path / "out"
    assert run_batch(read_manifest("manifest.csv"), out).done == 1
    for spelling in ("./manifest.csv", str(manifest), f"../{manifest.parent.name}/manifest.csv"):
        summary = run_batch(read_manifest(spelling), out)
        assert (summary.skipped, summary.done) == (1, 0), spelling
    monkeypatch.chdir(tmp_path)
    summary = run_batch(read_manifest(manifest), "out")  # a relative --out
    assert summary.skipped == 1
    assert summary.results[0].output == str(out / "s0.dcm")


def _uid(path):
    return pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID


def test_a_changed_row_is_encoded_again_under_new_uids(manifest_factory, tmp_path):
    """Options, kind or labels changed: the row is redone, and its object gets new UIDs.

    Before, a re-run skipped a row whose options or kind had changed (the BINARY SEG
    stayed), and a forced redo wrote the LABELMAP SEG, or a SEG with corrected labels,
    under the UIDs of the object already sent to the PACS.
    """
    root = manifest_factory(1, bad_row=False).parent
    manifest, out = root / "changes.csv", tmp_path / "out"
    row = 'c,s0/dicom,{kind},s0/labels.npy,{labels},"{options}"\n'
    header = "id,source,kind,input,labels,options\n"

    def run(kind="seg", labels="labels.json", options='{""type"": ""binary""}'):
        manifest.write_text(header + row.format(kind=kind, labels=labels, options=options))
        summary = run_batch(read_manifest(manifest), out)
        assert (summary.done, summary.failed) == (1, 0), summary.results
        return pydicom.dcmread(out / "c.dcm", stop_before_pixels=True)

    first = run()
    again = run_batch(read_manifest(manifest), out)
    assert again.skipped == 1  # nothing changed: skipped
    labelmap = run(options='{""type"": ""labelmap""}')
    assert labelmap.SegmentationType == "LABELMAP"
    assert labelmap.SOPInstanceUID != first.SOPInstanceUID
    assert labelmap.SeriesInstanceUID != first.SeriesInstanceUID
    relabelled = json.loads((root / "labels.json").read_text())
    relabelled["1"]["label"] = "body outline"
    (root / "relabelled.json").write_text(json.dumps(relabelled))
    renamed = run(labels="relabelled.json")
    assert renamed.SegmentSequence[0].SegmentLabel == "body outline"
    assert renamed.SOPInstanceUID not in (first.SOPInstanceUID, labelmap.SOPInstanceUID)
    contours = run(kind="rtstruct", options='{""allow_empty"": true}')
    assert contours.Modality == "RTSTRUCT"
    uids = {first.SOPInstanceUID, labelmap.SOPInstanceUID, renamed.SOPInstanceUID}
    assert contours.SOPInstanceUID not in uids
    (out / "c.dcm.done.json").unlink()
    same = run(kind="rtstruct", options='{""allow_empty"": true}')
    assert same.SOPInstanceUID == contours.SOPInstanceUID  # the same row, the same UIDs


def test_an_sr_row_is_redone_when_its_seg_changes(manifest_factory, tmp_path):
    """The SEG an sr row refers to is one of its files: SEG encoded again, SR too.

    Before, the SR was skipped and went on referring to the SEG that had been replaced.
    """
    root = manifest_factory(1, bad_row=False).parent
    volume = {"value": "118565006", "scheme": "SCT", "meaning": "Volume"}
    measurement = {"concept": volume, "value": 12.5, "unit": "ml"}
    group = {"tracking_id": "organ 5", "segment": 5, "measurements": [measurement]}
    (root / "report.json").write_text(json.dumps({"groups": [group]}))
    seg_rows, sr_rows = root / "segs.csv", root / "sr.csv"
    header = "id,source,kind,input,labels,options\n"
    seg_rows.write_text(header + "seg,s0/dicom,seg,s0/labels.npy,labels.json,\n")
    sr_rows.write_text(header + 'r,s0/dicom,sr,report.json,,"{""seg"": ""segs/seg.dcm""}"\n')
    assert run_batch(read_manifest(seg_rows), root / "segs").done == 1
    assert run_batch(read_manifest(sr_rows), tmp_path).done == 1
    labelmap = 'seg,s0/dicom,seg,s0/labels.npy,labels.json,"{""type"": ""labelmap""}"\n'
    seg_rows.write_text(header + labelmap)
    assert run_batch(read_manifest(seg_rows), root / "segs").done == 1
    summary = run_batch(read_manifest(sr_rows), tmp_path)
    assert (summary.done, summary.skipped) == (1, 0), summary.results
    assert _uid(root / "segs" / "seg.dcm").encode() in (tmp_path / "r.dcm").read_bytes()


def test_two_rows_cannot_write_one_file_under_two_spellings(tmp_path):
    """Before, ./case1.dcm passed the duplicate check: the second row overwrote the first."""
    manifest = tmp_path / "m.csv"
    for other in ("./case1.dcm", "sub//../case1.dcm", "case1.dcm/"):
        manifest.write_text(
            "id,source,kind,input,labels,output\n"
            "liver,ct,seg,m.npy,l.json,case1.dcm\n"
            f"body,ct,rtstruct,m.npy,l.json,{other}\n"
        )
        with pytest.raises(ConfigError, match=r"duplicate output 'case1\.dcm'"):
            read_manifest(manifest)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("rtstruct", '{""allow_empty"": ""false""}'),
        ("seg", '{""keep_empty_frames"": ""no""}'),
        ("gsps", '{""areas"": 1}'),
        ("gsps", '{""labels"": ""false""}'),
    ],
)
def test_boolean_options_must_be_json_booleans(manifest_factory, tmp_path, kind, options):
    """Before, "false" was true (bool("false")): an RT Structure Set with empty ROIs was
    written although the row said allow_empty false."""
    root = manifest_factory(1, bad_row=False).parent
    manifest = root / "flags.csv"
    manifest.write_text(
        f'id,source,kind,input,labels,options\nr,s0/dicom,{kind},s0/labels.npy,labels.json,"{options}"\n'
    )
    summary = run_batch(read_manifest(manifest), tmp_path)
    assert summary.failed == 1, summary.results
    assert "must be true or false" in summary.results[0].error
    assert not (tmp_path / "r.dcm").exists()


def test_a_series_column_picks_one_series_of_a_study_folder(manifest_factory, tmp_path):
    """A whole study in one folder: the series column says which series a row is on.

    Before, such a row could only fail ('2 image series found ... CLI: --series UID'):
    the manifest had no way to name the series.
    """
    import shutil

    root = manifest_factory(2, bad_row=False).parent
    study = root / "study"
    for index in range(2):
        shutil.copytree(root / f"s{index}" / "dicom", study / f"s{index}")
    wanted_series = pydicom.dcmread(next((root / "s1" / "dicom").iterdir())).SeriesInstanceUID
    manifest = root / "study.csv"
    row = "one,study,seg,s1/labels.npy,labels.json"
    manifest.write_text(f"id,source,kind,input,labels,series\n{row},\n")
    summary = run_batch(read_manifest(manifest), tmp_path)
    assert summary.failed == 1 and "series column" in summary.results[0].error
    manifest.write_text(f"id,source,kind,input,labels,series\n{row},{wanted_series}\n")
    summary = run_batch(read_manifest(manifest), tmp_path)
    assert summary.done == 1, summary.results
    seg = pydicom.dcmread(tmp_path / "one.dcm", stop_before_pixels=True)
    referenced = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
    assert referenced == wanted_series


def test_a_failed_row_says_why_on_stderr(manifest_factory, tmp_path, capsys):
    """Before, stderr said only 'row bad failed'; the reason was in failures.csv alone."""
    from radbridge.cli import main

    manifest = manifest_factory(1)
    assert main(["batch", str(manifest), "--out", str(tmp_path), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "row bad failed: " in err and "wrong.npy" in err


def test_a_missing_manifest_is_not_told_to_be_utf8(tmp_path):
    """Before: 'cannot read the manifest (FileNotFoundError ...). Write it as a UTF-8 CSV file.'"""
    for path in (tmp_path / "nope.csv", tmp_path):
        with pytest.raises(ConfigError, match="no manifest file here") as caught:
            read_manifest(path)
        assert "UTF-8" not in str(caught.value) and str(path) in str(caught.value)


def test_rows_of_empty_cells_are_left_out(tmp_path):
    """Spreadsheets save trailing ',,,,' rows; before, 'row 2 has no source' failed the run."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,source,kind,input,labels\na,ct,seg,m.npy,l.json\n,,,,\n , ,,,\nb,ct,seg,n.npy,l.json\n"
    )
    assert [row.id for row in read_manifest(manifest)] == ["a", "b"]
