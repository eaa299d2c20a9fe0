"""The manifest as spreadsheets and shells write it."""

from __future__ import annotations

from radbridge.batch import read_manifest, run_batch


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
