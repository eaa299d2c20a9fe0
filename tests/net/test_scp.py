"""radbridge's Storage SCP (`radbridge listen`) against real senders: DCMTK and Orthanc."""

from __future__ import annotations

import hashlib
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, RLELossless
from pynetdicom import AE, build_context

from radbridge.errors import AssociationError, StorageError
from radbridge.io.part10 import dataset_offset
from radbridge.net import NullSink, StorageSCP, echo, parse_peer
from radbridge.uids import new_uid
from tests.net.helpers import (
    DroppingProxy,
    dataset_bytes,
    received_tree,
    send_claiming,
    sources_by_uid,
)
from tests.peers import free_port, wait_for_port
from tests.peers.dcmtk import dcmcjpeg, echoscu, storescu


def _compressed_copies(study, folder: Path, syntax) -> Path:
    folder.mkdir()
    for path in sorted(study.dicom_dir.glob("*.dcm"))[:3]:
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(folder / path.name, enforce_file_format=True)
    return folder


@pytest.mark.peer
def test_dcmtk_storescu_into_scp_stores_the_bytes_it_received(scp, small_study):
    result = storescu([small_study.dicom_dir], "127.0.0.1", scp.port, called_aet="RADBRIDGE")
    assert result.returncode == 0, result.output
    got = received_tree(scp.out_dir)
    sent = sources_by_uid(small_study.dicom_dir)
    assert got.keys() == sent.keys()
    for uid, path in sent.items():
        assert dataset_bytes(got[uid]) == dataset_bytes(path)
    assert scp.stats.stored == len(sent) and scp.stats.failed == 0


@pytest.mark.peer
@pytest.mark.parametrize(
    ("syntax", "option"), [(RLELossless, "-xr"), (JPEGLSLossless, "-xt")], ids=["rle", "jpeg-ls"]
)
def test_compressed_instances_are_stored_without_decoding(
    scp, small_study, tmp_path, syntax, option
):
    folder = _compressed_copies(small_study, tmp_path / "compressed", syntax)
    # storescu proposes only uncompressed syntaxes unless told which compressed one to offer
    result = storescu([folder], "127.0.0.1", scp.port, called_aet="RADBRIDGE", extra_args=[option])
    assert result.returncode == 0, result.output
    got = received_tree(scp.out_dir)
    for uid, path in sources_by_uid(folder).items():
        stored = pydicom.dcmread(got[uid])
        assert stored.file_meta.TransferSyntaxUID == syntax
        assert dataset_bytes(got[uid]) == dataset_bytes(path)


@pytest.mark.peer
def test_the_plain_receiver_stores_jpeg_lossless_it_cannot_decode(scp, small_study, tmp_path):
    """`radbridge listen` stores bytes and never decodes: unlike the gateway, it takes .70."""
    source = sorted(small_study.dicom_dir.glob("*.dcm"))[0]
    jpeg = dcmcjpeg(source, tmp_path / "jpeg.dcm")
    result = storescu([jpeg], "127.0.0.1", scp.port, called_aet="RADBRIDGE", extra_args=["-xs"])
    assert result.returncode == 0, result.output
    (stored,) = received_tree(scp.out_dir).values()
    assert dataset_bytes(stored) == dataset_bytes(jpeg)
    assert pydicom.dcmread(stored).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"


@pytest.mark.peer
def test_orthanc_modality_store_into_scp(orthanc_factory, scp, small_study):
    orthanc = orthanc_factory(modalities={"rb": ("RADBRIDGE", "127.0.0.1", scp.port)})
    orthanc.upload_many(sorted(small_study.dicom_dir.glob("*.dcm")))
    orthanc.store_to("rb", orthanc.studies())
    got = received_tree(scp.out_dir)
    sent = sources_by_uid(small_study.dicom_dir)
    assert got.keys() == sent.keys()
    for uid, path in sent.items():
        assert pydicom.dcmread(got[uid]) == pydicom.dcmread(path)


@pytest.mark.peer
def test_calling_and_called_ae_checks(tmp_path):
    with StorageSCP(tmp_path, port=0, ae_title="GATE", allowed_calling_aets=["TRUSTED"]) as scp:
        assert echo(parse_peer(f"GATE@127.0.0.1:{scp.port}"), ae_title="TRUSTED") < 5
        with pytest.raises(AssociationError, match="rejected"):
            echo(parse_peer(f"GATE@127.0.0.1:{scp.port}"), ae_title="INTRUDER")
        with pytest.raises(AssociationError):
            echo(parse_peer(f"OTHER@127.0.0.1:{scp.port}"), ae_title="TRUSTED")
        bad = echoscu("127.0.0.1", scp.port, called_aet="GATE", calling_aet="INTRUDER")
        assert bad.returncode != 0
        good = echoscu("127.0.0.1", scp.port, called_aet="GATE", calling_aet="TRUSTED")
        assert good.returncode == 0, good.output


def _store_with_pynetdicom(port: int, ds) -> int:
    ae = AE(ae_title="TESTSCU")
    assoc = ae.associate(
        "127.0.0.1",
        port,
        [build_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)],
        ae_title="RADBRIDGE",
    )
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def test_uids_that_are_not_uids_are_refused_not_used_as_paths(scp, small_study, tmp_path):
    ds = pydicom.dcmread(next(small_study.dicom_dir.glob("*.dcm")))
    ds.SOPInstanceUID = "../../../escaped"
    assert _store_with_pynetdicom(scp.port, ds) == 0xC000
    assert not list(tmp_path.rglob("escaped*"))
    assert received_tree(scp.out_dir) == {}


def test_write_failure_answers_a_failure_and_leaves_nothing(scp, small_study):
    path = next(small_study.dicom_dir.glob("*.dcm"))
    ds = pydicom.dcmread(path)
    # a file where the study folder should be: the OS refuses the write (ENOTDIR)
    (scp.out_dir / str(ds.StudyInstanceUID)).write_bytes(b"in the way")
    assert _store_with_pynetdicom(scp.port, ds) == 0xA700
    assert [p.name for p in scp.out_dir.rglob("*")] == [str(ds.StudyInstanceUID)]


def test_low_disk_predicate_refuses_before_writing(tmp_path, small_study):
    ds = pydicom.dcmread(next(small_study.dicom_dir.glob("*.dcm")))
    with StorageSCP(tmp_path / "in", port=0, accepting=lambda: False) as scp:
        assert _store_with_pynetdicom(scp.port, ds) == 0xA700
    assert not list((tmp_path / "in").rglob("*.dcm"))


class Recorder(NullSink):
    """Records the receiver-contract events, in order."""

    def __init__(self, refuse: bool = False) -> None:
        self.events: list[tuple[str, ...]] = []
        self.refuse = refuse
        self.lock = threading.Lock()

    def transfer_opened(self, transfer_id):
        with self.lock:
            self.events.append(("opened", transfer_id))

    def instance_stored(self, instance, transfer_id):
        if self.refuse:
            raise RuntimeError("database is locked")
        with self.lock:
            self.events.append(("stored", transfer_id, instance.sop_instance_uid))

    def instance_refused(self, transfer_id, series_uid, reason, status=None):
        with self.lock:
            self.events.append(("refused", transfer_id, series_uid, status))

    def transfer_ended(self, transfer_id, outcome):
        with self.lock:
            self.events.append(("ended", transfer_id, outcome))

    def wait_ended(self, count: int = 1) -> None:
        deadline = time.monotonic() + 10
        while sum(e[0] == "ended" for e in self.events) < count:
            assert time.monotonic() < deadline, self.events
            time.sleep(0.02)


def test_sink_failure_is_not_acknowledged_and_reported_refused(tmp_path, small_study):
    sink = Recorder(refuse=True)
    ds = pydicom.dcmread(next(small_study.dicom_dir.glob("*.dcm")))
    with StorageSCP(tmp_path / "in", port=0, sink=sink) as scp:
        assert _store_with_pynetdicom(scp.port, ds) == 0xA700
        assert scp.stats.stored == 0 and scp.stats.failed == 1
        sink.wait_ended()
    (opened, refused, ended) = sink.events
    assert refused == ("refused", opened[1], str(ds.SeriesInstanceUID), 0xA700)
    assert ended == ("ended", opened[1], "released")


def test_a_failing_store_is_logged_once_per_change_not_per_instance(tmp_path, small_study, caplog):
    sink = Recorder(refuse=True)  # e.g. the gateway's database on a full disk
    datasets = [pydicom.dcmread(p) for p in sorted(small_study.dicom_dir.glob("*.dcm"))[:4]]
    with (
        caplog.at_level(logging.DEBUG, logger="radbridge.net.dimse.scp"),
        StorageSCP(tmp_path / "in", port=0, sink=sink) as scp,
    ):
        assert [_store_with_pynetdicom(scp.port, ds) for ds in datasets[:3]] == [0xA700] * 3
        sink.refuse = False
        assert _store_with_pynetdicom(scp.port, datasets[3]) == 0
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2, lines
    assert lines[0].startswith("cannot store instances") and "database is locked" in lines[0]
    assert lines[1] == "storing instances again"
    assert scp.stats.failed == 3


def test_low_disk_refusal_names_the_series(tmp_path, small_study):
    sink = Recorder()
    ds = pydicom.dcmread(next(small_study.dicom_dir.glob("*.dcm")))
    with StorageSCP(tmp_path / "in", port=0, sink=sink, accepting=lambda: False) as scp:
        assert _store_with_pynetdicom(scp.port, ds) == 0xA700
        sink.wait_ended()
    assert [e[0] for e in sink.events] == ["opened", "refused", "ended"]
    assert sink.events[1][2:] == (str(ds.SeriesInstanceUID), 0xA700)


def test_transfer_events_pair_up_and_say_how_it_ended(tmp_path, small_study):
    sink = Recorder()
    ds = pydicom.dcmread(next(small_study.dicom_dir.glob("*.dcm")))
    with StorageSCP(tmp_path / "in", port=0, sink=sink, unique_contents=True) as scp:
        _store_with_pynetdicom(scp.port, ds)  # released
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(ds.SOPClassUID, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="RADBRIDGE")
        assert assoc.send_c_store(ds).Status == 0
        assoc.abort()  # aborted
        sink.wait_ended(2)
    first, second = sink.events[:3], sink.events[3:]
    assert [e[0] for e in first] == ["opened", "stored", "ended"] and first[2][2] == "released"
    assert [e[0] for e in second] == ["opened", "stored", "ended"] and second[2][2] == "aborted"
    assert len({e[1] for e in first}) == 1 and first[0][1] != second[0][1]
    (path,) = (tmp_path / "in").rglob("*.dcm")  # the same content twice: one file
    data = path.read_bytes()
    digest = hashlib.sha256(data[dataset_offset(data) :]).hexdigest()
    assert path.name == f"{ds.SOPInstanceUID}.{digest[:16]}.dcm"


@pytest.mark.parametrize("claim", ["sop_instance", "sop_class"])
def test_a_request_claiming_another_instance_is_refused_and_nothing_stored(
    tmp_path, small_study, claim
):
    """DCMTK storescp answers 0xA900 when the command's UIDs are not the data set's."""
    sink = Recorder()
    path = next(small_study.dicom_dir.glob("*.dcm"))
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    other = {"sop_instance": new_uid(), "sop_class": "1.2.840.10008.5.1.4.1.1.4"}[claim]
    with StorageSCP(tmp_path / "in", port=0, sink=sink, unique_contents=True) as scp:
        assert send_claiming(scp.port, path, tmp_path, **{claim: other}) == 0xA900
        sink.wait_ended()
        assert scp.stats.stored == 0 and scp.stats.failed == 1
    assert not list((tmp_path / "in").rglob("*.dcm"))
    (opened, refused, ended) = sink.events
    assert refused == ("refused", opened[1], str(ds.SeriesInstanceUID), 0xA900)
    assert ended == ("ended", opened[1], "released")


@pytest.mark.peer
def test_dropped_connection_leaves_no_partial_file(scp, ct_study):
    proxy = DroppingProxy(scp.port, limit=800_000)  # about one and a half CT slices
    try:
        result = storescu([ct_study.dicom_dir], "127.0.0.1", proxy.port, called_aet="RADBRIDGE")
    finally:
        proxy.close()
    assert result.returncode != 0
    got = received_tree(scp.out_dir)  # also asserts no temporary file is left
    sent = sources_by_uid(ct_study.dicom_dir)
    assert len(got) < len(sent)
    for uid, path in got.items():
        assert dataset_bytes(path) == dataset_bytes(sent[uid])
    # the receiver keeps working
    again = storescu([ct_study.dicom_dir], "127.0.0.1", scp.port, called_aet="RADBRIDGE")
    assert again.returncode == 0, again.output
    assert received_tree(scp.out_dir).keys() == sent.keys()


def _limit_file_size() -> None:
    limit = 200_000  # bytes: a 64x64 slice fits, a 512x512 one does not
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.peer
@pytest.mark.slow
def test_listen_cli_on_a_full_disk_answers_failure(tmp_path, ct_study, small_study):
    """`radbridge listen` under RLIMIT_FSIZE: writes fail with EFBIG like on a full disk."""
    port = free_port()
    out = tmp_path / "in"
    log = (tmp_path / "listen.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "radbridge", "listen", "--out", str(out), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_limit_file_size,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=30, proc=proc)
        big = storescu(
            [ct_study.dicom_dir], "127.0.0.1", port, called_aet="RADBRIDGE", extra_args=["-v"]
        )
        assert big.returncode != 0
        assert "Refused: OutOfResources" in big.output, big.output
        assert not list(out.rglob("*.dcm")) and not [p for p in out.rglob(".*") if p.is_file()]
        small = storescu([small_study.dicom_dir], "127.0.0.1", port, called_aet="RADBRIDGE")
        assert small.returncode == 0, small.output
        assert len(list(out.rglob("*.dcm"))) == len(list(small_study.dicom_dir.glob("*.dcm")))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert "stored 12 instances" in (tmp_path / "listen.log").read_text()


@pytest.mark.peer
@pytest.mark.slow
def test_twenty_concurrent_associations_lose_nothing(tmp_path, small_study):
    template = pydicom.dcmread(next(small_study.dicom_dir.glob("*.dcm")))
    folders = []
    expected = set()
    for sender in range(20):
        folder = tmp_path / f"sender{sender:02d}"
        folder.mkdir()
        for i in range(100):
            template.SOPInstanceUID = new_uid()
            template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
            template.save_as(folder / f"{i:03d}.dcm", enforce_file_format=True)
            expected.add(str(template.SOPInstanceUID))
        folders.append(folder)
    assert len(expected) == 2000
    with StorageSCP(tmp_path / "in", port=0, max_associations=25) as scp:
        env = {**os.environ, "TCP_NODELAY": "1"}
        procs = [
            subprocess.Popen(
                [
                    "/usr/bin/storescu",
                    "-aec",
                    "RADBRIDGE",
                    "+sd",
                    "-R",
                    "127.0.0.1",
                    str(scp.port),
                    str(folder),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )
            for folder in folders
        ]
        codes = [p.wait(timeout=600) for p in procs]
        assert codes == [0] * 20, [p.stdout.read()[-500:] for p in procs if p.returncode]
        assert scp.stats.stored == 2000 and scp.stats.failed == 0
    got = received_tree(tmp_path / "in")
    assert set(got) == expected


def test_port_in_use_is_a_clear_error(scp, tmp_path):
    with pytest.raises(StorageError, match="cannot listen"):
        StorageSCP(tmp_path / "other", port=scp.port).start()
