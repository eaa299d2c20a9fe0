"""`radbridge send` (C-STORE SCU) against DCMTK storescp, Orthanc and radbridge's own SCP."""

from __future__ import annotations

import io
import time

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from radbridge.cli import main
from radbridge.errors import ConfigError, SendError
from radbridge.net import Peer, StorageSCP, TLSConfig, parse_peer, send
from radbridge.net.dimse.scu import DimseSender
from tests.net.helpers import (
    DroppingProxy,
    dataset_bytes,
    make_certificates,
    received_tree,
    sources_by_uid,
)
from tests.peers import free_port


@pytest.mark.peer
def test_send_to_dcmtk_storescp(storescp, small_study):
    report = send([small_study.dicom_dir], parse_peer(f"{storescp.aet}@127.0.0.1:{storescp.port}"))
    assert report.ok and report.associations == 1
    sent = sources_by_uid(small_study.dicom_dir)
    assert {r.sop_instance_uid for r in report.sent} == set(sent)
    files = storescp.wait_for_files(len(sent))
    got = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in files}
    for uid, path in sent.items():
        assert dataset_bytes(got[uid]) == dataset_bytes(path)


@pytest.mark.peer
def test_files_are_sent_as_stored_without_parsing_them(storescp, small_study, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("a file was parsed on the way out")

    sent = sources_by_uid(small_study.dicom_dir)
    with monkeypatch.context() as patched:
        patched.setattr("pydicom.dcmread", no_decoding)
        patched.setattr("pydicom.filereader.read_dataset", no_decoding)
        report = send(
            [small_study.dicom_dir], parse_peer(f"{storescp.aet}@127.0.0.1:{storescp.port}")
        )
    assert report.ok, [r.error for r in report.failed]
    files = storescp.wait_for_files(len(sent))
    got = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in files}
    assert {uid: dataset_bytes(got[uid]) for uid in sent} == {
        uid: dataset_bytes(path) for uid, path in sent.items()
    }


@pytest.mark.peer
def test_send_cli_to_orthanc(orthanc, small_study, capsys):
    code = main(
        ["send", str(small_study.dicom_dir), "--to", f"ORTHANC@127.0.0.1:{orthanc.dicom_port}"]
    )
    assert code == 0
    assert "sent 12 of 12 instances" in capsys.readouterr().out
    assert orthanc.sop_instance_uids() == set(sources_by_uid(small_study.dicom_dir))


@pytest.mark.peer
def test_peer_from_config_file(orthanc, small_study, tmp_path, capsys):
    config = tmp_path / "peers.toml"
    config.write_text(
        f'[peers.pacs]\nae_title = "ORTHANC"\nhost = "127.0.0.1"\nport = {orthanc.dicom_port}\n'
    )
    assert main(["send", str(small_study.dicom_dir), "--to", "pacs", "--config", str(config)]) == 0
    assert main(["echo", "--to", "pacs", "--config", str(config)]) == 0
    assert main(["echo", "--to", "nobody", "--config", str(config)]) == 1
    assert "no peer named 'nobody'" in capsys.readouterr().err


@pytest.mark.peer
def test_compressed_file_is_transcoded_only_when_the_peer_refuses_its_syntax(
    storescp_factory, small_study, tmp_path
):
    folder = tmp_path / "rle"
    folder.mkdir()
    source = sorted(small_study.dicom_dir.glob("*.dcm"))[0]
    ds = pydicom.dcmread(source)
    ds.compress(RLELossless)
    ds.save_as(folder / "rle.dcm", enforce_file_format=True)
    # `+xi`: this storescp accepts Implicit VR Little Endian only
    only_implicit = storescp_factory(aet="IMPLICIT", extra_args=("+xi",))
    report = send([folder], parse_peer(f"IMPLICIT@127.0.0.1:{only_implicit.port}"))
    assert report.ok and report.results[0].transcoded
    (received,) = only_implicit.wait_for_files(1)
    got = pydicom.dcmread(received)
    assert got.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert got.SOPInstanceUID == ds.SOPInstanceUID  # lossless: the same instance
    assert np.array_equal(got.pixel_array, pydicom.dcmread(source).pixel_array)
    # a peer that takes RLE gets the file as it is
    takes_all = storescp_factory(aet="ALL")
    report = send([folder], parse_peer(f"ALL@127.0.0.1:{takes_all.port}"))
    assert report.ok and not report.results[0].transcoded
    (received,) = takes_all.wait_for_files(1)
    assert dataset_bytes(received) == dataset_bytes(folder / "rle.dcm")


def _written_in(study, folder, syntax) -> dict[str, pydicom.Dataset]:
    """Write 3 slices of ``study`` in ``syntax`` into ``folder``; return them by SOP UID."""
    folder.mkdir()
    written = {}
    for path in sorted(study.dicom_dir.glob("*.dcm"))[:3]:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = syntax
        pydicom.dcmwrite(  # big endian: only the encoding; the test never reads its pixels
            folder / path.name,
            ds,
            implicit_vr=syntax.is_implicit_VR,
            little_endian=syntax.is_little_endian,
            force_encoding=True,
        )
        written[str(ds.SOPInstanceUID)] = pydicom.dcmread(folder / path.name)
    return written


@pytest.mark.peer
def test_explicit_files_are_reencoded_for_a_peer_taking_only_implicit_vr(
    storescp_factory, small_study, tmp_path
):
    """DCMTK storescp +xi takes only the DICOM default, Implicit VR LE (PS3.5 10.1)."""
    written = _written_in(small_study, tmp_path / "explicit", ExplicitVRLittleEndian)
    only_implicit = storescp_factory(aet="IMPLICIT", extra_args=("+xi",))
    report = send([tmp_path / "explicit"], parse_peer(f"IMPLICIT@127.0.0.1:{only_implicit.port}"))
    assert report.ok, [r.error for r in report.failed]
    assert all(r.transcoded for r in report.results)
    for received in only_implicit.wait_for_files(3):
        got = pydicom.dcmread(received)
        assert got.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert got == written[str(got.SOPInstanceUID)]  # equal data sets; meta not compared


@pytest.mark.peer
def test_implicit_files_are_reencoded_for_a_peer_taking_only_explicit_vr(
    orthanc_factory, small_study, tmp_path
):
    written = _written_in(small_study, tmp_path / "implicit", ImplicitVRLittleEndian)
    orthanc = orthanc_factory(extra={"AcceptedTransferSyntaxes": [ExplicitVRLittleEndian]})
    report = send([tmp_path / "implicit"], parse_peer(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}"))
    assert report.ok, [r.error for r in report.failed]
    assert all(r.transcoded for r in report.results)
    for uid, ds in written.items():
        (found,) = orthanc.lookup(uid)
        got = pydicom.dcmread(io.BytesIO(orthanc.instance_bytes(found["ID"])))
        assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert got == ds


@pytest.mark.peer
def test_a_big_endian_file_is_a_permanent_failure_for_a_little_endian_peer(
    storescp_factory, small_study, tmp_path
):
    """Explicit VR Big Endian is retired; radbridge does not swap it: a clear refusal."""
    _written_in(small_study, tmp_path / "big", ExplicitVRBigEndian)
    only_implicit = storescp_factory(aet="IMPLICIT", extra_args=("+xi",))
    peer = Peer("IMPLICIT", "127.0.0.1", only_implicit.port, name="pacs")
    with pytest.raises(SendError, match="does not convert big endian") as caught:
        DimseSender().send(next((tmp_path / "big").iterdir()), peer)
    assert caught.value.permanent
    assert only_implicit.received() == []


def test_peer_down_is_reported_per_instance_and_in_one_line(small_study, capsys):
    peer = parse_peer(f"NOBODY@127.0.0.1:{free_port()}")
    report = send([small_study.dicom_dir], peer, retries=1, backoff_s=0.01)
    assert not report.ok and len(report.failed) == 12
    assert all("cannot open an association" in r.error for r in report.failed)
    code = main(["send", str(small_study.dicom_dir), "--to", str(peer), "--retries", "0"])
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()  # one line, not one per file
    assert line.startswith("error: 12 instances not stored")
    assert "cannot open an association" in line


@pytest.mark.peer
@pytest.mark.timeout(120)
def test_a_peer_that_stalls_fails_in_bounded_time_and_says_how_long_it_waited(
    storescp_factory, small_study
):
    """DCMTK storescp sleeping 30 s inside every C-STORE: a stalled PACS, for real."""
    stalled = storescp_factory(extra_args=("--sleep-during", "30"))
    peer = Peer(stalled.aet, "127.0.0.1", stalled.port, timeout_s=1.5)
    started = time.monotonic()
    report = send([small_study.dicom_dir], peer, retries=1, backoff_s=0.05)
    took = time.monotonic() - started
    assert not report.ok and len(report.failed) == 12 and not report.sent
    assert all("sent nothing within 1.5 s" in r.error for r in report.failed), report.failed[0]
    assert "raise timeout_s" in report.failed[0].error
    # two attempts, each ended by the timeout: neither a hang nor the 30 s sleep
    assert took < 15, took


@pytest.mark.peer
@pytest.mark.slow
def test_a_slow_peer_within_the_timeout_gets_every_instance(storescp_factory, small_study):
    """storescp taking 1 s per C-STORE, under a 5 s timeout: slow is not failed."""
    slow = storescp_factory(extra_args=("--sleep-during", "1"))
    files = sorted(small_study.dicom_dir.glob("*.dcm"))[:4]
    report = send(files, Peer(slow.aet, "127.0.0.1", slow.port, timeout_s=5), retries=0)
    assert report.ok, [r.error for r in report.failed]
    assert report.associations == 1
    received = {str(pydicom.dcmread(p).SOPInstanceUID) for p in slow.directory.glob("*.dcm")}
    assert received == {str(pydicom.dcmread(p).SOPInstanceUID) for p in files}


@pytest.mark.peer
def test_sop_class_refused_by_orthanc_is_not_retried(orthanc_factory, small_study, tmp_path):
    orthanc = orthanc_factory(extra={"UnknownSopClassAccepted": False})
    folder = tmp_path / "private"
    folder.mkdir()
    ds = pydicom.dcmread(next(small_study.dicom_dir.glob("*.dcm")))
    ds.SOPClassUID = "1.2.826.0.1.3680043.10.1234.99"  # a private storage class nobody knows
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.save_as(folder / "private.dcm", enforce_file_format=True)
    report = send(
        [folder, small_study.dicom_dir], parse_peer(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}")
    )
    (refused,) = report.failed
    assert "accepted no presentation context" in refused.error
    assert len(report.sent) == 12 and report.associations == 1


def test_dropped_association_is_retried_and_completes(scp, ct_study):
    proxy = DroppingProxy(scp.port, limit=700_000)
    try:
        report = send(
            [ct_study.dicom_dir], parse_peer(f"RADBRIDGE@127.0.0.1:{proxy.port}"), backoff_s=0.05
        )
    finally:
        proxy.close()
    assert report.ok, [r.error for r in report.failed]
    assert report.associations == 2 and proxy.connections == 2
    assert received_tree(scp.out_dir).keys() == sources_by_uid(ct_study.dicom_dir).keys()


def test_out_of_resources_is_retried_with_backoff(tmp_path, small_study):
    answers = iter([False, False])  # the receiver is full twice, then has room

    with StorageSCP(tmp_path / "in", port=0, accepting=lambda: next(answers, True)) as scp:
        report = send(
            [small_study.dicom_dir], parse_peer(f"RADBRIDGE@127.0.0.1:{scp.port}"), backoff_s=0.01
        )
    assert report.ok and report.associations >= 2
    assert len(received_tree(tmp_path / "in")) == 12


def test_unauthorised_calling_ae_is_an_association_error(tmp_path, small_study):
    with StorageSCP(tmp_path / "in", port=0, allowed_calling_aets=["MODALITY"]) as scp:
        report = send(
            [small_study.dicom_dir], parse_peer(f"RADBRIDGE@127.0.0.1:{scp.port}"), retries=0
        )
        assert not report.ok and "rejected the association" in report.failed[0].error
        report = send(
            [small_study.dicom_dir],
            parse_peer(f"RADBRIDGE@127.0.0.1:{scp.port}"),
            ae_title="MODALITY",
        )
        assert report.ok


def test_files_that_are_not_dicom_fail_alone(scp, small_study, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    (folder / "truncated.dcm").write_bytes(
        next(small_study.dicom_dir.glob("*.dcm")).read_bytes()[:100]
    )
    report = send([folder, small_study.dicom_dir], parse_peer(f"RADBRIDGE@127.0.0.1:{scp.port}"))
    assert len(report.sent) == 12 and len(report.failed) == 2
    assert all("not a DICOM file" in r.error for r in report.failed)


def test_mutual_tls(tmp_path, small_study):
    certs = make_certificates(tmp_path)
    server_tls = TLSConfig(
        ca_file=certs / "ca.pem", cert_file=certs / "server.pem", key_file=certs / "server.key"
    )
    with StorageSCP(tmp_path / "in", port=0, tls=server_tls) as scp:
        client = TLSConfig(
            ca_file=certs / "ca.pem", cert_file=certs / "client.pem", key_file=certs / "client.key"
        )
        peer = Peer("RADBRIDGE", "127.0.0.1", scp.port, tls=client)
        assert send([small_study.dicom_dir], peer).ok
        no_cert = Peer("RADBRIDGE", "127.0.0.1", scp.port, tls=TLSConfig(ca_file=certs / "ca.pem"))
        assert not send([small_study.dicom_dir], no_cert, retries=0).ok
        plain = Peer("RADBRIDGE", "127.0.0.1", scp.port, timeout_s=3)
        assert not send([small_study.dicom_dir], plain, retries=0).ok
    assert len(received_tree(tmp_path / "in")) == 12


@pytest.mark.parametrize(
    "text", ["ORTHANC@127.0.0.1", "@127.0.0.1:104", "WAY_TOO_LONG_AE_TITLE@h:104", "A@h:99999"]
)
def test_bad_peer_addresses(text):
    with pytest.raises(ConfigError):
        parse_peer(text)


def test_parallel_associations_share_the_files(scp, small_study):
    peer = parse_peer(f"RADBRIDGE@127.0.0.1:{scp.port}")
    report = send([small_study.dicom_dir], peer, associations=3)
    assert report.ok and report.associations == 3 and len(report.sent) == 12
    assert received_tree(scp.out_dir).keys() == sources_by_uid(small_study.dicom_dir).keys()
    with pytest.raises(ConfigError):
        send([small_study.dicom_dir], peer, associations=0)
