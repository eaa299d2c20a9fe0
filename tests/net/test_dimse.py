"""radbridge's own DICOM upper layer (net/dimse): interop the other tests do not cover, limits,
and malformed PDUs (fuzzed) that must be refused cleanly without losing the server.

Covered elsewhere: DCMTK storescu -> our SCP, plain and TLS (test_scp, test_scp_tls);
Orthanc -> our SCP, pynetdicom SCU -> our SCP (test_scp); our SCU -> DCMTK storescp,
Orthanc, our SCP, mutual TLS (test_send); our SCU -> pynetdicom SCP (gateway/test_delivery).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radbridge.errors import AssociationError
from radbridge.net import Peer, StorageSCP, TLSConfig, echo, parse_peer, send
from radbridge.net.dimse.commands import Command, store_request
from radbridge.net.dimse.pdu import AssociateRequest, pdu_header
from tests.net.helpers import dataset_bytes, make_certificates, received_tree, sources_by_uid
from tests.peers import free_port
from tests.peers.dcmtk import dcmtk_program, run, start_storescp

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def fuzz_scp(tmp_path_factory):
    """One SCP for all fuzz examples (short timeouts: a silent peer is dropped in 1 s)."""
    server = StorageSCP(tmp_path_factory.mktemp("fuzz") / "in", port=0, timeout_s=1).start()
    yield server
    server.stop()


# -- interop ------------------------------------------------------------------------------


@pytest.mark.peer
def test_send_over_tls_to_dcmtk_storescp(tmp_path, certs, small_study):
    extra = ("+tls", str(certs / "server.key"), str(certs / "server.pem"))
    extra += ("+cf", str(certs / "ca.pem"))
    scp = start_storescp(tmp_path / "in", aet="TLSSCP", extra_args=extra)
    try:
        peer = Peer(
            name="dcmtk-tls",
            ae_title="TLSSCP",
            host="127.0.0.1",
            port=scp.port,
            tls=TLSConfig(
                ca_file=certs / "ca.pem",
                cert_file=certs / "client.pem",
                key_file=certs / "client.key",
            ),
        )
        report = send([small_study.dicom_dir], peer)
        assert report.ok, [r.error for r in report.failed]
        files = scp.wait_for_files(len(report.sent))
    finally:
        scp.stop()
    sources = sources_by_uid(small_study.dicom_dir)
    assert sorted(dataset_bytes(f) for f in files) == sorted(
        dataset_bytes(p) for p in sources.values()
    )


@pytest.mark.peer
def test_dcmtk_echoscu_and_our_echo(tmp_path, storescp):
    with StorageSCP(tmp_path / "in", port=0) as scp:
        done = run(dcmtk_program("echoscu"), ["-aec", scp.ae_title, "127.0.0.1", str(scp.port)])
        assert done.returncode == 0, done.output
    assert echo(parse_peer(f"{storescp.aet}@127.0.0.1:{storescp.port}")) < 5


def test_association_limit_rejects_the_one_too_many(tmp_path, small_study):
    with StorageSCP(tmp_path / "in", port=0, max_associations=1) as scp:
        first = _associate(scp.port)  # holds the only slot
        try:
            with pytest.raises(AssociationError, match="transient: local limit exceeded"):
                echo(parse_peer(f"{scp.ae_title}@127.0.0.1:{scp.port}"))
        finally:
            first.close()
        time.sleep(0.2)
        assert echo(parse_peer(f"{scp.ae_title}@127.0.0.1:{scp.port}")) < 5


def test_scp_sockets_send_without_delay(tmp_path):
    with StorageSCP(tmp_path / "in", port=0) as scp:
        sock = _associate(scp.port)
        try:
            links = list(scp._server._active.values())  # the SCP's side of the connection
            options = [x.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for x in links]
        finally:
            sock.close()
    assert options == [1]


# -- malformed PDUs -----------------------------------------------------------------------


def _associate(port: int) -> socket.socket:
    """A raw socket with an established association (CT in Explicit VR LE, context 1)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(AssociateRequest("RADBRIDGE", "FUZZER", [(1, CT, [EXPLICIT])]).encode())
    header = _recv_exactly(sock, 6)
    assert header[0] == 0x02, f"association not accepted: PDU type {header[0]}"
    _recv_exactly(sock, struct.unpack(">I", header[2:])[0])
    return sock


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _ends_cleanly(sock: socket.socket, seconds: float = 8.0) -> bytes:
    """Read until the server closes; return what it sent (it must close in time)."""
    sock.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return received
        except TimeoutError:
            break
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept a connection with bad PDUs open {seconds} s")


def _send(sock: socket.socket, data: bytes) -> None:
    """Send what the server may already have refused (it may close mid-way)."""
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        sock.sendall(data)


def _server_still_serves(scp: StorageSCP) -> None:
    assert echo(parse_peer(f"{scp.ae_title}@127.0.0.1:{scp.port}")) < 5
    leftovers = [p for p in scp.out_dir.rglob("*") if p.is_file()]
    assert leftovers == [], f"a malformed transfer left files: {leftovers}"


def _pdata(context: int, control: int, data: bytes) -> bytes:
    return pdu_header(0x04, len(data) + 6) + struct.pack(">IBB", len(data) + 2, context, control)


def _valid_store() -> bytes:
    command = store_request(1, CT, "1.2.3.4")
    dataset = b"\x08\x00\x16\x00UI\x1a\x00" + CT.encode() + b"\x00" * (26 - len(CT))
    return _pdata(1, 0x03, command) + command + _pdata(1, 0x02, dataset) + dataset


def _mutate(data: bytes, position: int, replacement: bytes) -> bytes:
    position %= max(len(data), 1)
    return data[:position] + replacement + data[position + len(replacement) :]


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.slow
@FUZZ
@given(garbage=st.binary(min_size=1, max_size=300))
def test_random_bytes_instead_of_an_association_request(fuzz_scp, garbage):
    sock = socket.create_connection(("127.0.0.1", fuzz_scp.port), timeout=5)
    try:
        _send(sock, garbage)
        answer = _ends_cleanly(sock)
    finally:
        sock.close()
    assert answer == b"" or answer[0] in (0x03, 0x07, 0x02)  # rejected, aborted, or accepted
    _server_still_serves(fuzz_scp)


@pytest.mark.slow
@FUZZ
@given(
    position=st.integers(0, 400),
    replacement=st.binary(min_size=1, max_size=8),
    cut=st.integers(0, 8),
)
def test_damaged_association_requests(fuzz_scp, position, replacement, cut):
    request = AssociateRequest("RADBRIDGE", "FUZZER", [(1, CT, [EXPLICIT])]).encode()
    damaged = _mutate(request, position, replacement)
    damaged = damaged[: len(damaged) - cut] if cut else damaged
    sock = socket.create_connection(("127.0.0.1", fuzz_scp.port), timeout=5)
    try:
        _send(sock, damaged)
        if damaged[0] == 0x01 and len(damaged) >= 6:
            declared = struct.unpack(">I", damaged[2:6])[0]
            if declared <= len(damaged) - 6:
                _send(sock, pdu_header(0x05, 4) + bytes(4))  # then release if it was accepted
        _ends_cleanly(sock)
    finally:
        sock.close()
    _server_still_serves(fuzz_scp)


@pytest.mark.slow
@FUZZ
@given(position=st.integers(0, 250), replacement=st.binary(min_size=1, max_size=6))
def test_damaged_dimse_messages_abort_and_store_nothing(fuzz_scp, position, replacement):
    damaged = _mutate(_valid_store(), position, replacement)
    sock = _associate(fuzz_scp.port)
    try:
        _send(sock, damaged)
        _send(sock, pdu_header(0x05, 4) + bytes(4))
        answer = _ends_cleanly(sock)
    finally:
        sock.close()
    # whatever arrived is well formed: responses (P-DATA), the release answer, or an abort
    offset = 0
    while offset + 6 <= len(answer):
        kind, length = answer[offset], struct.unpack(">I", answer[offset + 2 : offset + 6])[0]
        assert kind in (0x04, 0x06, 0x07)
        if kind == 0x04:
            command = Command.decode(answer[offset + 12 : offset + 6 + length])
            assert command.status != 0x0000  # never Success for this data set
        offset += 6 + length
    _server_still_serves(fuzz_scp)


def test_an_oversized_pdu_is_refused_without_reading_it(fuzz_scp):
    sock = _associate(fuzz_scp.port)
    try:
        _send(sock, pdu_header(0x04, 1 << 30))  # 1 GB announced, nothing sent
        answer = _ends_cleanly(sock)
    finally:
        sock.close()
    assert answer[:1] == b"\x07"  # A-ABORT at once
    _server_still_serves(fuzz_scp)


def test_unknown_peer_address_fails_fast():
    with pytest.raises(AssociationError, match="cannot open an association"):
        echo(parse_peer(f"NOBODY@127.0.0.1:{free_port()}"))


def test_stored_instance_from_raw_pdus_matches_what_was_sent(tmp_path, small_study):
    """The handwritten PDUs above are a real peer's: a whole file sent this way is stored."""
    source = sorted(small_study.dicom_dir.glob("*.dcm"))[0]
    dataset = dataset_bytes(source)
    with StorageSCP(tmp_path / "in", port=0) as scp:
        sock = _associate(scp.port)
        try:
            import pydicom

            uid = str(pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID)
            command = store_request(9, CT, uid)
            sock.sendall(_pdata(1, 0x03, command) + command + _pdata(1, 0x02, dataset) + dataset)
            header = _recv_exactly(sock, 6)
            body = _recv_exactly(sock, struct.unpack(">I", header[2:])[0])
            assert Command.decode(body[6:]).status == 0x0000
            sock.sendall(pdu_header(0x05, 4) + bytes(4))
            assert _ends_cleanly(sock)[:1] == b"\x06"
        finally:
            sock.close()
        (stored,) = received_tree(scp.out_dir).values()
    assert dataset_bytes(stored) == dataset
