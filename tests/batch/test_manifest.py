"""The manifest as spreadsheets and shells write it."""

from __future__ import annotations

from radbridge.batch import read_manifest


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
