"""Senders: one failure contract for every transport, and the registry by peer transport.

Each built-in sender is driven against a real receiver (radbridge's StorageSCP and
StowServer, DCMTK's storescp through the gateway's tests); the statuses no real peer
answers on demand (0xA700, 0xA900, 0xC000, a warning) come from pynetdicom's SCP
(tests.net.helpers.StatusSCP).
"""

from __future__ import annotations

import socket

import pydicom
import pytest

from radbridge.errors import (
    AssociationError,
    ConfigError,
    DicomWebError,
    DimseStatusError,
    NotDicomError,
    PeerTimeoutError,
    PresentationContextError,
    SendError,
)
from radbridge.net import (
    NullSink,
    Peer,
    Sender,
    StorageSCP,
    StowAuth,
    StowServer,
    parse_peer,
    register_transport,
    sender_for,
    transports,
    unregister_transport,
)
from radbridge.net.dicomweb.client import permanent_failure
from tests.net.helpers import StatusSCP, received_tree


@pytest.fixture
def one_file(small_study):
    return sorted(small_study.dicom_dir.glob("*.dcm"))[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _failure(sender: Sender, path, peer) -> SendError:
    with pytest.raises(SendError) as caught:
        sender.send(path, peer, ae_title="RADBRIDGE")
    return caught.value


# -- the registry ----------------------------------------------------------------------


def test_the_built_in_transports_are_registered():
    assert {"dimse", "dicomweb"} <= set(transports())
    assert isinstance(sender_for("dimse"), Sender) and isinstance(sender_for("dicomweb"), Sender)
    with pytest.raises(ConfigError, match="unknown transport 'ftp'"):
        sender_for("ftp")


def test_a_peer_takes_only_a_registered_transport():
    with pytest.raises(ConfigError, match="unknown transport 'toy'"):
        Peer("LAB", "127.0.0.1", 104, transport="toy")
    register_transport("toy", NullSink)  # any factory; the peer only checks the name
    try:
        assert Peer("LAB", "127.0.0.1", 104, transport="toy").transport == "toy"
        with pytest.raises(ConfigError, match="already registered"):
            register_transport("toy", NullSink)
    finally:
        unregister_transport("toy")
    assert "toy" not in transports()
    with pytest.raises(ConfigError, match="already registered"):
        register_transport("dimse", NullSink)  # built-ins stay what they are
    unregister_transport("dimse")
    assert "dimse" in transports()


# -- DIMSE -----------------------------------------------------------------------------


def test_dimse_sender_stores_and_returns_the_status(tmp_path, one_file):
    with StorageSCP(tmp_path / "in", port=0) as scp:
        peer = parse_peer(f"{scp.ae_title}@127.0.0.1:{scp.port}")
        assert sender_for("dimse").send(one_file, peer, ae_title="RADBRIDGE") == 0
    assert len(received_tree(tmp_path / "in")) == 1


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(0xA900, True), (0xC000, True), (0xC123, True), (0xA700, False), (0xA702, False),
     (0x0110, False)],
)  # fmt: skip
def test_dimse_sender_sorts_failure_statuses(one_file, status, permanent):
    scp = StatusSCP([status])
    try:
        failure = _failure(sender_for("dimse"), one_file, parse_peer(f"PACS@127.0.0.1:{scp.port}"))
    finally:
        scp.stop()
    assert failure.permanent is permanent and f"0x{status:04X}" in str(failure)
    assert isinstance(failure.__cause__, DimseStatusError) and failure.__cause__.status == status


def test_dimse_sender_returns_a_warning_status(one_file):
    scp = StatusSCP([0xB000])
    try:
        peer = parse_peer(f"PACS@127.0.0.1:{scp.port}")
        assert sender_for("dimse").send(one_file, peer, ae_title="RADBRIDGE") == 0xB000
    finally:
        scp.stop()
    assert len(scp.received) == 1


def test_dimse_sender_failures_without_a_status(tmp_path, one_file):
    from pynetdicom import AllStoragePresentationContexts

    mr_only = [c for c in AllStoragePresentationContexts if c.abstract_syntax.endswith(".1.1.4")]
    scp = StatusSCP([], contexts=mr_only)  # takes no CT: 0x0122 by negotiation
    try:
        refused = _failure(sender_for("dimse"), one_file, parse_peer(f"P@127.0.0.1:{scp.port}"))
    finally:
        scp.stop()
    nobody = _failure(sender_for("dimse"), one_file, parse_peer(f"P@127.0.0.1:{_closed_port()}"))
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not DICOM at all")
    with StorageSCP(tmp_path / "in", port=0) as running:
        not_dicom = _failure(sender_for("dimse"), junk, parse_peer(f"X@127.0.0.1:{running.port}"))
    assert refused.permanent and isinstance(refused.__cause__, PresentationContextError)
    assert not nobody.permanent and isinstance(nobody.__cause__, AssociationError)
    assert not_dicom.permanent and isinstance(not_dicom.__cause__, NotDicomError)


# -- DICOMweb --------------------------------------------------------------------------


class _RefusingSink(NullSink):
    def instance_stored(self, instance, transfer_id):
        raise OSError(28, "No space left on device")


def _web(server: StowServer, **auth) -> Peer:
    url = f"http://127.0.0.1:{server.port}/dicom-web"
    return Peer("STOW", "127.0.0.1", 104, dicomweb_url=url, timeout_s=10, **auth)


def test_dicomweb_sender_stores(tmp_path, one_file):
    with StowServer(tmp_path / "in", port=0) as server:
        assert sender_for("dicomweb").send(one_file, _web(server), ae_title="RADBRIDGE") == 0
    assert len(received_tree(tmp_path / "in")) == 1


def test_dicomweb_sender_sorts_failures(tmp_path, one_file):
    evil = pydicom.dcmread(one_file)
    evil.SOPInstanceUID = "../../etc/passwd"
    evil_path = tmp_path / "evil.dcm"
    evil.save_as(evil_path, enforce_file_format=True)
    send = sender_for("dicomweb")
    auth = StowAuth(username="pacs", password="s3cret")
    with StowServer(tmp_path / "a", port=0, auth=auth) as server:
        unauthorised = _failure(send, one_file, _web(server, username="pacs", password="no"))
        refused = _failure(send, evil_path, _web(server, username="pacs", password="s3cret"))
    with StowServer(tmp_path / "b", port=0, accepting=lambda: False) as server:
        low_disk = _failure(send, one_file, _web(server))
    with StowServer(tmp_path / "c", _RefusingSink(), port=0) as server:
        sink_failed = _failure(send, one_file, _web(server))
    nobody = _failure(
        send, one_file, Peer("X", "127.0.0.1", 104, dicomweb_url="http://127.0.0.1:1")
    )
    outcomes = {
        "401": (unauthorised, True, 401),
        "409 cannot understand": (refused, True, 409),
        "503": (low_disk, False, 503),
        "409 out of resources": (sink_failed, False, 409),
        "no server": (nobody, False, None),
    }
    for what, (failure, permanent, http) in outcomes.items():
        assert isinstance(failure.__cause__, DicomWebError), what
        assert (failure.permanent, failure.__cause__.http_status) == (permanent, http), what
    assert refused.__cause__.failure_reasons == (0xC000,)
    assert sink_failed.__cause__.failure_reasons == (0xA700,)


@pytest.mark.parametrize(
    ("http", "reasons", "permanent"),
    [
        (400, (), True),
        (404, (), True),
        (409, (0xC000,), True),
        (409, (0xA700,), False),
        (408, (), False),
        (429, (), False),
        (500, (), False),
        (503, (), False),
        (None, (), False),
    ],
)
def test_dicomweb_failures_are_sorted_by_http_status(http, reasons, permanent):
    err = DicomWebError("STOW-RS failed")
    err.http_status, err.failure_reasons = http, reasons
    assert permanent_failure(err) is permanent
    assert permanent_failure(PeerTimeoutError("no answer")) is False
