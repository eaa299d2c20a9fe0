"""The pydicom-free UID scanner (io.part10.scan_uids) agrees with pydicom, or gives up."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_files

from radbridge.errors import NotDicomError
from radbridge.io.part10 import dataset_offset, scan_uids

INTEROP = Path(__file__).resolve().parents[2] / ".." / "shared" / "interop"


def _files() -> list[Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that it will not download
        bundled = [Path(p) for p in get_testdata_files("*.dcm")]
    shared = sorted(p for p in INTEROP.rglob("*.dcm")) if INTEROP.exists() else []
    return bundled + shared


def _pydicom_uids(path: Path) -> tuple[str, str, str, str] | None:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        syntax = str(ds.file_meta.TransferSyntaxUID)
    except Exception:
        return None
    values = tuple(
        str(ds.get(k, "") or "").strip("\0 ")
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
    )
    return (*values, syntax)  # type: ignore[return-value]


def test_the_scanner_reads_what_pydicom_reads_in_real_files():
    compared = 0
    for path in _files():
        expected = _pydicom_uids(path)
        if expected is None:
            continue
        data = path.read_bytes()
        try:
            start = dataset_offset(data)
        except NotDicomError:
            continue  # a meta without its group length: not sendable as stored
        if start == 0:
            continue  # no meta: no transfer syntax to read with
        found = scan_uids(data[start:], expected[4])
        if found is None:
            continue  # gave up: the caller parses with pydicom
        assert found == expected[:4], path.name
        compared += 1
    assert compared >= 60  # bundled files and third-party SEG/SR/RTSTRUCT/PM


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]))
def test_garbage_never_raises(data, syntax):
    found = scan_uids(data, syntax)
    assert found is None or all(isinstance(v, str) for v in found)


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"])
def test_big_endian_and_deflated_are_left_to_pydicom(syntax):
    assert scan_uids(b"\x08\x00\x16\x00UI\x04\x001.2\x00", syntax) is None


def test_undefined_length_sequences_before_the_uids_are_skipped():
    item = (
        b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
        + b"\x08\x00\x00\x01SH\x02\x00ab"
        + (b"\xfe\xff\x0d\xe0\x00\x00\x00\x00")
    )
    sequence = (
        b"\x08\x00\x06\x00SQ\x00\x00\xff\xff\xff\xff" + item + (b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    )
    uids = b"\x08\x00\x16\x00UI\x04\x001.2\x00" + b"\x08\x00\x18\x00UI\x04\x005.6\x00"
    assert scan_uids(sequence + uids, "1.2.840.10008.1.2.1") == ("", "", "5.6", "1.2")
    assert scan_uids(sequence[:-8] + uids, "1.2.840.10008.1.2.1") is None  # no end: give up
