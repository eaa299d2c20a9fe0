"""The gateway's receivers with TLS and STOW-RS credentials from its TOML configuration."""

from __future__ import annotations

import os
import socket
import stat
import threading
from dataclasses import replace

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from radbridge.errors import ConfigError
from radbridge.gateway import Gateway, load_gateway_config
from radbridge.net import Peer, TLSConfig, send
from tests.net.helpers import make_certificates
from tests.peers import free_port, wait_for_port
from tests.peers.dcmtk import storescu


@pytest.mark.slow  # stopping the TLS STOW-RS server with a keep-alive client waits ~4 s
def test_tls_and_stow_credentials_from_the_config(tmp_path, phantom_study, monkeypatch):
    certs = make_certificates(tmp_path)
    port, stow_port = free_port(), free_port()
    monkeypatch.setenv("RB_STOW_PASSWORD", "s3cret")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[gateway]
data_dir = "data"
port = {port}
stow_port = {stow_port}
quiet_period_s = 0.2

[gateway.tls]
cert_file = "server.pem"
key_file = "server.key"
ca_file = "ca.pem"

[gateway.stow_auth]
username = "pacs"
password_env = "RB_STOW_PASSWORD"
"""
    )
    settings = load_gateway_config(config)
    assert settings.tls.cert_file == tmp_path / "server.pem"
    gateway = Gateway(settings)
    stop = threading.Event()
    thread = threading.Thread(target=gateway.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        wait_for_port("127.0.0.1", stow_port, timeout=30)
        files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
        client_tls = TLSConfig(
            ca_file=certs / "ca.pem", cert_file=certs / "client.pem", key_file=certs / "client.key"
        )
        assert send(files[:3], Peer("RADBRIDGE", "127.0.0.1", port, tls=client_tls)).ok
        plain = Peer("RADBRIDGE", "127.0.0.1", port, timeout_s=3)
        assert not send(files[3:4], plain, retries=0).ok  # no TLS: refused
        url = f"https://127.0.0.1:{stow_port}/dicom-web"
        session = requests.Session()
        session.trust_env = False  # no CA bundle or proxy from the environment
        session.verify = str(certs / "ca.pem")
        session.cert = (str(certs / "client.pem"), str(certs / "client.key"))
        anonymous = DICOMwebClient(url, session=session)
        anonymous.set_http_retry_params(retry=False)
        with pytest.raises(requests.HTTPError) as err:
            anonymous.store_instances([pydicom.dcmread(files[4])])
        assert err.value.response.status_code == 401
        session.auth = ("pacs", "s3cret")
        DICOMwebClient(url, session=session).store_instances([pydicom.dcmread(files[4])])
        stored = {p.name.rsplit(".", 2)[0] for p in settings.spool_dir.rglob("*.dcm")}
        expected = {str(pydicom.dcmread(f).SOPInstanceUID) for f in (*files[:3], files[4])}
        assert stored == expected
        # the status page and the metrics: same port, same TLS, same credentials
        site = f"https://127.0.0.1:{stow_port}"
        page = session.get(f"{site}/", timeout=30)
        assert page.status_code == 200 and "radbridge gateway RADBRIDGE" in page.text
        metrics = session.get(f"{site}/metrics", timeout=30).text
        assert "radbridge_instances_received_total 4.0" in metrics
        session.auth = None
        assert session.get(f"{site}/metrics", timeout=30).status_code == 401
        session.cert = None  # no client certificate from the hospital CA: no TLS session
        with pytest.raises(requests.exceptions.ConnectionError):  # TLS 1.3: closed after it
            session.get(f"{site}/", timeout=30)
    finally:
        stop.set()
        thread.join(60)


def test_missing_secret_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("RB_NOT_SET", raising=False)
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway.stow_auth]\nusername = "x"\npassword_env = "RB_NOT_SET"\n')
    with pytest.raises(ConfigError, match="RB_NOT_SET"):
        load_gateway_config(config)


def modes_under(root):
    """Map every path under ``root`` (itself included) to its permission bits."""
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


@pytest.mark.peer
@pytest.mark.parametrize("file_mode", [0o600, 0o640])
def test_file_modes_after_a_receive(config, phantom_study, file_mode):
    previous = os.umask(0o022)  # what a service usually runs with: 0644 files by default
    try:
        settings = replace(config, file_mode=file_mode)
        gateway = Gateway(settings)
        scp = gateway.receiver(port=0).start()
        stow = gateway.stow_server().start()
        try:
            files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
            result = storescu(files[:12], "127.0.0.1", scp.port, called_aet="RADBRIDGE")
            assert result.returncode == 0, result.stderr
            datasets = [pydicom.dcmread(f) for f in files[12:]]  # the rest by STOW-RS
            assert (
                len(DICOMwebClient(stow.url).store_instances(datasets).ReferencedSOPSequence) == 12
            )
            for _ in range(100):
                gateway.step()
                if list(settings.archive_dir.rglob("*.dcm")):
                    break
        finally:
            stow.stop()
            scp.stop()
            gateway.close()
    finally:
        os.umask(previous)
    modes = modes_under(settings.data_dir)
    files = {p: m for p, m in modes.items() if p.is_file()}
    folders = {p: m for p, m in modes.items() if p.is_dir()}
    kinds = {p.parent.name if p.suffix == ".dcm" else p.name for p in files}
    assert {"gateway.sqlite", "audit.jsonl"} <= kinds  # the database and the audit log
    assert len([p for p in files if settings.spool_dir in p.parents]) == 24
    assert [p for p in files if settings.outbox_dir in p.parents]
    assert [p for p in files if settings.archive_dir in p.parents]
    assert {oct(m) for m in files.values()} == {oct(file_mode)}, files
    assert {oct(m) for m in folders.values()} == {oct(file_mode | (file_mode & 0o444) >> 2)}


@pytest.mark.parametrize("make", [False, True])
def test_status_of_a_folder_that_is_no_data_dir_is_an_error(tmp_path, capsys, make):
    from radbridge.cli import main

    folder = tmp_path / "not-a-gateway"
    if make:
        folder.mkdir()
    assert main(["gateway", "status", "--data-dir", str(folder)]) == 1
    assert "is not a gateway data directory" in capsys.readouterr().err
    assert main(["gateway", "retry", "1", "--data-dir", str(folder)]) == 1
    assert not (folder / "gateway.sqlite").exists()
    assert folder.exists() == make


@pytest.mark.peer
@pytest.mark.slow
def test_gateway_run_host_option(tmp_path, phantom_study):
    """`gateway run --host` moves both receivers: 127.0.0.2 answers, 127.0.0.1 does not."""
    import subprocess
    import sys

    from tests.peers.dcmtk import echoscu

    port, stow_port = free_port("127.0.0.2"), free_port("127.0.0.2")
    (tmp_path / "gateway.toml").write_text('[gateway]\ndata_dir = "data"\n')
    command = [sys.executable, "-m", "radbridge", "gateway", "run"]
    command += ["--config", str(tmp_path / "gateway.toml"), "--host", "127.0.0.2"]
    command += ["--port", str(port), "--stow-port", str(stow_port)]
    with (tmp_path / "gateway.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.2", port, timeout=60, proc=proc)
        wait_for_port("127.0.0.2", stow_port, timeout=60, proc=proc)
        assert echoscu("127.0.0.2", port, called_aet="RADBRIDGE").returncode == 0
        url = f"http://127.0.0.2:{stow_port}/dicom-web"
        ds = pydicom.dcmread(next(phantom_study.dicom_dir.glob("*.dcm")))
        assert DICOMwebClient(url).store_instances([ds]).ReferencedSOPSequence
        for other in (port, stow_port):  # nothing listens on 127.0.0.1
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", other), timeout=5).close()
    finally:
        proc.terminate()
        proc.wait(60)
    assert "on 127.0.0.2:" in (tmp_path / "gateway.log").read_text()


def test_a_busy_stow_port_stops_the_start_cleanly(tmp_path, capsys):
    from radbridge.cli import main

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = free_port()
        (tmp_path / "gateway.toml").write_text('[gateway]\ndata_dir = "data"\n')
        command = ["gateway", "run", "--config", str(tmp_path / "gateway.toml")]
        command += ["--port", str(port), "--stow-port", str(busy.getsockname()[1])]
        assert main(command) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", port)):  # the C-STORE port was never taken
        pass
