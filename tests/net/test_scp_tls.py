"""The Storage SCP's connection handling: TLS handshakes off the accept thread with a
timeout, mutual TLS with DCMTK (right certificate in; none, wrong CA, expired out), and
plain connections that never send an association request dropped after ARTIM."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from radbridge.net import StorageSCP, TLSConfig, echo, parse_peer
from tests.net.helpers import make_certificates, received_tree
from tests.peers import free_port, wait_for_port
from tests.peers.dcmtk import storescu

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def server_tls(certs, *, mutual=True):
    return TLSConfig(
        ca_file=certs / "ca.pem" if mutual else None,
        cert_file=certs / "server.pem",
        key_file=certs / "server.key",
    )


def tls_storescu(files, port, certs, name="client"):
    """DCMTK storescu over TLS with certificate ``name`` (None: anonymous TLS)."""
    tls = ["+tls", certs / f"{name}.key", certs / f"{name}.pem"] if name else ["+tla"]
    extra = [*map(str, tls), "+cf", str(certs / "ca.pem"), "-to", "20", "-ta", "20"]
    return storescu(files, "127.0.0.1", port, called_aet="RADBRIDGE", extra_args=extra, timeout=60)


def closed_within(sock, seconds):
    """Return how long the server took to close ``sock`` (fails if it stays open)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        data = sock.recv(1)
    except TimeoutError:
        raise AssertionError(f"the server kept a silent connection open {seconds} s") from None
    except ConnectionResetError:
        data = b""
    assert data == b""
    return time.monotonic() - started


def test_idle_socket_does_not_block_a_tls_association(tmp_path, certs, small_study):
    files = sorted(small_study.dicom_dir.glob("*.dcm"))
    scp = StorageSCP(
        tmp_path / "in", port=0, tls=server_tls(certs), tls_handshake_timeout_s=3
    ).start()
    try:
        idle = socket.create_connection(("127.0.0.1", scp.port))  # connects, sends nothing
        started = time.monotonic()
        result = tls_storescu(files, scp.port, certs)
        took = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert took < 10, f"storescu +tls took {took:.1f} s behind an idle connection"
        assert len(received_tree(tmp_path / "in")) == len(files)
        assert closed_within(idle, 10) < 10  # dropped after the handshake timeout (3 s)
        idle.close()
    finally:
        scp.stop()


def test_listen_cli_takes_the_tls_handshake_timeout(tmp_path, certs, small_study):
    """`radbridge listen --tls-handshake-timeout 2`: a silent TLS connection is dropped
    after 2 s (not the default 10 s) and a TLS association meanwhile is not held up."""
    files = sorted(small_study.dicom_dir.glob("*.dcm"))
    port, out = free_port(), tmp_path / "in"
    argv = [sys.executable, "-m", "radbridge", "listen", "--out", str(out), "--port", str(port)]
    argv += ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")]
    argv += ["--tls-ca", str(certs / "ca.pem"), "--tls-handshake-timeout", "2"]
    log = (tmp_path / "listen.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, timeout=30, proc=proc)
        idle = socket.create_connection(("127.0.0.1", port))  # connects, sends nothing
        started = time.monotonic()
        result = tls_storescu(files, port, certs)
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < 8, "storescu +tls was held up by a silent client"
        assert len(received_tree(out)) == len(files)
        assert closed_within(idle, 9) < 6  # 2 s, not the default 10 s
        idle.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_listen_and_the_gateway_share_the_handshake_default(capsys):
    from radbridge.cli import main
    from radbridge.gateway.config import GatewayConfig

    default = GatewayConfig().tls_handshake_timeout_s
    assert StorageSCP(".").tls_handshake_timeout_s == default
    assert main(["listen", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"tls_handshake_timeout_s. [default: {default}]" in text
    assert main(["listen", "--out", "x", "--tls-handshake-timeout", "0"]) == 2
    assert "not a positive number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "refused_why"),
    [(None, "no certificate"), ("stranger", "another CA"), ("expired", "expired")],
)
def test_mutual_tls_refuses_wrong_certificates(tmp_path, certs, small_study, name, refused_why):
    files = sorted(small_study.dicom_dir.glob("*.dcm"))[:2]
    with StorageSCP(tmp_path / "in", port=0, tls=server_tls(certs)) as scp:
        refused = tls_storescu(files, scp.port, certs, name)
        assert refused.returncode != 0, f"accepted a client with {refused_why}"
        assert not (tmp_path / "in").exists() or not received_tree(tmp_path / "in")
        accepted = tls_storescu(files, scp.port, certs, "client")  # the server still serves
        assert accepted.returncode == 0, accepted.stderr
    assert len(received_tree(tmp_path / "in")) == 2


def test_silent_plain_connection_is_dropped_after_artim(tmp_path):
    with StorageSCP(tmp_path / "in", port=0, timeout_s=2) as scp:
        silent = socket.create_connection(("127.0.0.1", scp.port))
        assert echo(parse_peer(f"RADBRIDGE@127.0.0.1:{scp.port}")) < 5  # others still served
        took = closed_within(silent, 15)
        assert 1.5 < took < 6, took
        silent.close()
