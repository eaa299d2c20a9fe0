"""radbridge's STOW-RS receiver (Hypercorn) against real clients: dicomweb-client, curl,
requests and raw sockets — chunked and Content-Length bodies, keep-alive, refusals,
limits, timeouts, half-sent requests, mutual TLS, and the receiver contract's events."""

from __future__ import annotations

import http.client
import logging
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from radbridge.io.phantom import write_phantom
from radbridge.net import NullSink, StowAuth, StowLimits, StowServer, TLSConfig
from tests.net.helpers import dataset_bytes, make_certificates

BOUNDARY = "rb-test-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


class Recorder(NullSink):
    """A receiver sink that keeps every event, in order."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def _add(self, *event):
        with self.lock:
            self.events.append(event)

    def transfer_opened(self, transfer_id):
        self._add("opened", transfer_id)

    def instance_stored(self, instance, transfer_id):
        self._add("stored", transfer_id, instance)

    def instance_refused(self, transfer_id, series_uid, reason, status=None):
        self._add("refused", transfer_id, series_uid, reason, status)

    def transfer_ended(self, transfer_id, outcome):
        self._add("ended", transfer_id, outcome)

    def kinds(self):
        return [e[0] for e in self.events]

    def outcomes(self):
        return [e[2] for e in self.events if e[0] == "ended"]

    def stored(self):
        return [e[2] for e in self.events if e[0] == "stored"]

    def wait_ended(self, count=1, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.outcomes()) >= count:
                return self.outcomes()
            time.sleep(0.02)
        raise AssertionError(f"transfers not ended: {self.events}")


def multipart(*parts: bytes, boundary=BOUNDARY) -> bytes:
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
        for part in parts
    )
    return body + b"--" + boundary.encode() + b"--\r\n"


@pytest.fixture(scope="module")
def ct60(tmp_path_factory):
    """The project's phantom: a 60-slice 512x512 CT series (about 31 MB)."""
    study = write_phantom(tmp_path_factory.mktemp("ct60"), slices=60, size=512, seed=6, nifti=False)
    return sorted(study.dicom_dir.glob("*.dcm"))


@pytest.fixture
def sink():
    return Recorder()


@pytest.fixture
def server(tmp_path, sink):
    with StowServer(tmp_path / "spool", sink, unique_contents=True) as running:
        yield running


def spooled(root: Path) -> dict[str, bytes]:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".")], "temporary files left behind"
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in files}


def test_dicomweb_client_stores_60_slices_chunked(server, sink, ct60, tmp_path, caplog):
    datasets = [pydicom.dcmread(p) for p in ct60]
    with caplog.at_level(logging.INFO):
        response = DICOMwebClient(server.url).store_instances(datasets)
    assert "chunked transfer encoding" in caplog.text  # dicomweb-client sent it chunked
    assert "(chunked," in caplog.text  # and the server saw it so
    assert len(response.ReferencedSOPSequence) == 60
    assert "FailedSOPSequence" not in response
    on_disk = spooled(tmp_path / "spool")
    assert len(on_disk) == 60
    for ds, path in zip(datasets, ct60, strict=True):  # stored as sent: the data set bytes
        assert dataset_bytes(on_disk[str(ds.SOPInstanceUID)]) == dataset_bytes(path)
    assert sink.kinds() == ["opened", *["stored"] * 60, "ended"]
    assert sink.outcomes() == ["released"]
    stored = sink.stored()[0]
    assert stored.path.name.startswith(stored.sop_instance_uid + ".")  # <sop>.<digest>.dcm


@pytest.mark.peer
def test_curl_upload_with_content_length(server, sink, ct60, tmp_path):
    body = tmp_path / "body.bin"
    body.write_bytes(multipart(*(p.read_bytes() for p in ct60[:5])))
    result = subprocess.run(
        [
            *("curl", "-sS", "--noproxy", "*", "-X", "POST", "-T", str(body)),
            *("-H", f"Content-Type: {CONTENT_TYPE}", "-H", "Accept: application/dicom+json"),
            *("-w", "\n%{http_code}", f"{server.url}/studies"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rsplit("\n", 1)[1] == "200"
    assert len(spooled(tmp_path / "spool")) == 5
    assert sink.outcomes() == ["released"]


def test_keep_alive_two_requests_on_one_connection(server, sink, ct60):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for path in ct60[:2]:
        connection.request(
            "POST",
            "/dicom-web/studies",
            body=multipart(path.read_bytes()),
            headers={"Content-Type": CONTENT_TYPE},
        )
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    first_socket = connection.sock
    assert first_socket is not None  # still open: the second request used the same one
    connection.close()
    assert sink.outcomes() == ["released", "released"]


def part_failures(response):
    return [item["00081197"]["Value"][0] for item in response.json()["00081198"]["Value"]]


def test_study_in_the_url_must_match(server, ct60, tmp_path):
    url = f"{server.url}/studies/1.2.3.4.5.6"
    response = requests.post(
        url, data=multipart(ct60[0].read_bytes()), headers={"Content-Type": CONTENT_TYPE}
    )
    assert response.status_code == 409
    assert part_failures(response) == [0xC003]
    item = response.json()["00081198"]["Value"][0]
    assert item["00081155"]["Value"] == [str(pydicom.dcmread(ct60[0]).SOPInstanceUID)]
    assert spooled(tmp_path / "spool") == {}
    study = str(pydicom.dcmread(ct60[0]).StudyInstanceUID)
    ok = requests.post(
        f"{server.url}/studies/{study}",
        data=multipart(ct60[0].read_bytes()),
        headers={"Content-Type": CONTENT_TYPE},
    )
    assert ok.status_code == 200


def test_parts_that_are_not_part10_files_are_refused_and_named(server, sink, ct60, tmp_path):
    bare = dataset_bytes(ct60[1])  # a data set without File Meta Information
    body = multipart(ct60[0].read_bytes(), bare, b"", b"not dicom at all")
    response = requests.post(
        f"{server.url}/studies", data=body, headers={"Content-Type": CONTENT_TYPE}
    )
    assert response.status_code == 202
    assert part_failures(response) == [0xC001, 0xC000, 0xC001]
    named = response.json()["00081198"]["Value"][0]["00081155"]["Value"]
    assert named == [str(pydicom.dcmread(ct60[1]).SOPInstanceUID)]
    assert list(spooled(tmp_path / "spool")) == [str(pydicom.dcmread(ct60[0]).SOPInstanceUID)]
    # the good part is recorded with its batch, at the end of the body
    assert sink.kinds() == ["opened", "refused", "refused", "refused", "stored", "ended"]
    assert [e[4] for e in sink.events if e[0] == "refused"] == [0xC001, 0xC000, 0xC001]
    assert sink.outcomes() == ["released"]  # the body arrived whole; the refusals say the rest


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/dicom-web/studies", {}, 405),
        ("POST", "/elsewhere/studies", {"Content-Type": CONTENT_TYPE}, 404),
        ("POST", "/dicom-web/studies", {"Content-Type": "application/dicom"}, 415),
        (
            "POST",
            "/dicom-web/studies",
            {"Content-Type": CONTENT_TYPE.replace("application/dicom", "application/dicom+json")},
            415,
        ),
    ],
)
def test_requests_refused_from_their_head(server, sink, method, path, headers, status):
    url = server.url.replace("/dicom-web", "") + path
    response = requests.request(method, url, data=multipart(b"x"), headers=headers, timeout=10)
    assert response.status_code == status
    assert sink.events == []  # no transfer was opened


def test_credentials_are_checked_before_the_body(tmp_path, sink, ct60):
    auth = StowAuth(username="pacs", password="s3cret", token="t0ken")
    with StowServer(tmp_path / "spool", sink, auth=auth) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        raw.sendall(
            b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {10**9}\r\n\r\n".encode()
        )  # a gigabyte announced, none sent: the answer must not wait for it
        started = time.monotonic()
        answer = raw.recv(4096)
        raw.close()
        assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
        assert time.monotonic() - started < 2
        body = multipart(ct60[0].read_bytes())
        for credentials in (
            {"auth": ("pacs", "wrong")},
            {"headers": {"Authorization": "Bearer x"}},
        ):
            kwargs = {"headers": {"Content-Type": CONTENT_TYPE}, **credentials}
            if "headers" in credentials:
                kwargs["headers"] = {**kwargs["headers"], "Content-Type": CONTENT_TYPE}
            assert requests.post(f"{server.url}/studies", data=body, **kwargs).status_code == 401
        assert sink.events == []
        ok = requests.post(
            f"{server.url}/studies",
            data=body,
            auth=("pacs", "s3cret"),
            headers={"Content-Type": CONTENT_TYPE},
        )
        assert ok.status_code == 200
        bearer = {"Content-Type": CONTENT_TYPE, "Authorization": "Bearer t0ken"}
        assert requests.post(f"{server.url}/studies", data=body, headers=bearer).ok


def test_a_site_serves_the_other_paths_behind_the_same_credentials(tmp_path, sink, ct60):
    """``site=``: paths outside the DICOMweb root go to the given ASGI app, after the
    credentials; the DICOMweb root never reaches it."""
    seen = []

    async def site(scope, receive, send):
        seen.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"site"})

    auth = StowAuth(username="pacs", password="s3cret")
    with StowServer(tmp_path / "spool", sink, auth=auth, site=site) as server:
        root = server.url.removesuffix("/dicom-web")
        refused = requests.get(f"{root}/status", timeout=10)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith('Basic realm="radbridge"')
        assert seen == []  # refused before the site
        answer = requests.get(f"{root}/status?x=1", auth=("pacs", "s3cret"), timeout=10)
        assert (answer.status_code, answer.text) == (200, "site")
        stow = requests.get(f"{server.url}/studies", auth=("pacs", "s3cret"), timeout=10)
        assert stow.status_code == 405  # still the STOW-RS server's own answer
        elsewhere = requests.get(f"{server.url}/other", auth=("pacs", "s3cret"), timeout=10)
        assert elsewhere.status_code == 404
        ok = requests.post(
            f"{server.url}/studies",
            data=multipart(ct60[0].read_bytes()),
            auth=("pacs", "s3cret"),
            headers={"Content-Type": CONTENT_TYPE},
            timeout=30,
        )
        assert ok.status_code == 200
    assert seen == [("GET", "/status")]


def test_size_limits(tmp_path, sink, ct60):
    limits = StowLimits(max_request_mb=2, max_part_mb=0.4)
    with StowServer(tmp_path / "spool", sink, limits=limits) as server:
        url = f"{server.url}/studies"
        small = requests.post(  # a 64x64 slice fits, a 512x512 one (0.5 MB) does not
            url,
            data=multipart(_small_slice(tmp_path), ct60[0].read_bytes()),
            headers={"Content-Type": CONTENT_TYPE},
        )
        assert small.status_code == 202
        assert part_failures(small) == [0xA701]
        big = multipart(*(p.read_bytes() for p in ct60[:5]))  # 2.6 MB
        declared = requests.post(url, data=big, headers={"Content-Type": CONTENT_TYPE})
        assert declared.status_code == 413
        chunked = requests.post(url, data=iter([big]), headers={"Content-Type": CONTENT_TYPE})
        assert chunked.status_code == 413
    assert sink.outcomes() == ["released", "failed"]  # the declared one never opened a transfer
    assert len(spooled(tmp_path / "spool")) == 1


def _small_slice(tmp_path):
    study = write_phantom(tmp_path / "small", slices=2, size=64, seed=2, nifti=False)
    return next(study.dicom_dir.glob("*.dcm")).read_bytes()


def test_a_body_that_stalls_fails_and_leaves_nothing(tmp_path, sink, ct60):
    limits = StowLimits(idle_timeout_s=1)
    with StowServer(tmp_path / "spool", sink, limits=limits) as server:
        body = multipart(ct60[0].read_bytes(), ct60[1].read_bytes())
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        raw.sendall(
            b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) * 3 // 4]  # the first part whole, the second cut
        )
        answer = raw.recv(4096)
        raw.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert sink.outcomes() == ["failed"]
    # the complete part waited in the batch for the end of the body: refused with the cut one
    assert sink.kinds() == ["opened", "refused", "refused", "ended"]
    assert not spooled(tmp_path / "spool")  # no file, complete or partial
    assert not list((tmp_path / "spool").rglob(".rb-tmp-*"))


def test_a_client_that_goes_away_aborts_the_transfer(tmp_path, sink, ct60):
    with StowServer(tmp_path / "spool", sink) as server:
        body = multipart(ct60[0].read_bytes(), ct60[1].read_bytes())
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        raw.sendall(
            b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) * 3 // 4]
        )
        time.sleep(0.5)
        raw.close()
        assert sink.wait_ended() == ["aborted"]
    assert sink.kinds() == ["opened", "refused", "refused", "ended"]  # nothing acknowledged
    assert not spooled(tmp_path / "spool")
    assert not list((tmp_path / "spool").rglob(".rb-tmp-*"))


@pytest.mark.parametrize(
    "body", [multipart(), b"a preamble\r\n" + multipart(), multipart().rstrip(b"\r\n")]
)
def test_a_body_without_parts_is_bad_syntax(tmp_path, sink, body):
    # PS3.18 10.5: a Store request carries one or more instances; none is 400, not 200.
    with StowServer(tmp_path / "spool", sink) as server:
        answer = requests.post(
            f"{server.url}/studies", data=body, headers={"Content-Type": CONTENT_TYPE}, timeout=10
        )
        assert answer.status_code == 400, answer.text
        assert "no part" in answer.json()["error"]
        assert sink.wait_ended() == ["failed"]  # not a clean transfer
    assert sink.kinds() == ["opened", "ended"]  # nothing stored, nothing acknowledged
    assert not [p for p in (tmp_path / "spool").rglob("*") if p.is_file()]


def _read_response(raw: socket.socket) -> bytes:
    """Read one response head (and its Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = raw.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")[1:]
         if line.startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(rest) < length:
        rest += raw.recv(4096)
    return head + b"\r\n\r\n" + rest


def test_expect_100_continue_without_credentials_stores_nothing(tmp_path, sink, ct60):
    """A client that waits for 100 Continue before its body, with wrong credentials.

    Measured: Hypercorn sends ``100 Continue`` as soon as it parsed the head, before
    the application runs (it has no setting to leave it to the application), so the
    401 comes after the body, which is read and dropped (docs/gateway.md says so)."""
    auth = StowAuth(username="pacs", password="s3cret")
    body = multipart(ct60[0].read_bytes())
    with StowServer(tmp_path / "spool", sink, auth=auth) as server:
        for credentials in (b"", b"Authorization: Basic cGFjczp3cm9uZw==\r\n"):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            raw.sendall(
                b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                + credentials
                + f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            )
            interim = _read_response(raw)
            assert interim.startswith(b"HTTP/1.1 100"), (
                "Hypercorn no longer sends 100 Continue before the application answers: "
                "the 401 now comes first; update docs/gateway.md and this test"
            )
            raw.sendall(body)
            final = _read_response(raw)
            raw.close()
            assert final.startswith(b"HTTP/1.1 401"), final[:80]
            assert b"www-authenticate" in final.lower()
    assert sink.events == []  # no transfer was opened
    assert not [p for p in (tmp_path / "spool").rglob("*") if p.is_file()]


def test_concurrent_request_cap_answers_503(tmp_path, sink, ct60):
    limits = StowLimits(max_concurrent_requests=1)
    with StowServer(tmp_path / "spool", sink, limits=limits) as server:
        body = multipart(ct60[0].read_bytes())
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        slow.sendall(
            b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:1000]
        )
        deadline = time.monotonic() + 10
        while "opened" not in sink.kinds() and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = requests.post(
            f"{server.url}/studies", data=body, headers={"Content-Type": CONTENT_TYPE}
        )
        assert busy.status_code == 503 and busy.headers["Retry-After"]
        slow.sendall(body[1000:])
        assert slow.recv(4096).startswith(b"HTTP/1.1 200")
        slow.close()
        again = requests.post(
            f"{server.url}/studies", data=body, headers={"Content-Type": CONTENT_TYPE}
        )
        assert again.status_code == 200


def test_half_sent_requests_do_not_stop_a_normal_one(tmp_path, sink, ct60):
    """Slowloris: 100 connections each send part of a request head, then trickle."""
    limits = StowLimits(keep_alive_s=3)
    with StowServer(tmp_path / "spool", sink, limits=limits) as server:
        loris = []
        for index in range(100):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            s.sendall(f"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nX-{index}: ".encode())
            loris.append(s)
        started = time.monotonic()
        response = DICOMwebClient(server.url).store_instances([pydicom.dcmread(ct60[0])])
        assert len(response.ReferencedSOPSequence) == 1
        assert time.monotonic() - started < 5
        for s in loris:  # keep trickling: a byte now and then does not keep them alive
            s.sendall(b"a")
        closed = 0
        deadline = time.monotonic() + 15
        for s in loris:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, ConnectionResetError):
                closed += 1
            s.close()
        assert closed == 100  # every half-sent request was dropped after keep_alive_s
    assert sink.outcomes() == ["released"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("stow-certs"))


@pytest.mark.slow  # stopping a TLS server with a keep-alive client waits the grace period
def test_mutual_tls(tmp_path, sink, ct60, certs):
    tls = TLSConfig(
        ca_file=certs / "ca.pem", cert_file=certs / "server.pem", key_file=certs / "server.key"
    )
    with StowServer(tmp_path / "spool", sink, tls=tls, tls_handshake_timeout_s=2) as server:
        idle = socket.create_connection(("127.0.0.1", server.port))  # never says hello
        session = requests.Session()
        session.trust_env = False
        session.verify = str(certs / "ca.pem")
        body = multipart(ct60[0].read_bytes())
        for name in (None, "stranger", "expired"):  # no certificate, another CA's, expired
            session.cert = (
                (str(certs / f"{name}.pem"), str(certs / f"{name}.key")) if name else None
            )
            with pytest.raises(requests.exceptions.ConnectionError):
                session.post(
                    f"{server.url}/studies", data=body, headers={"Content-Type": CONTENT_TYPE}
                )
        session.cert = (str(certs / "client.pem"), str(certs / "client.key"))
        ok = session.post(
            f"{server.url}/studies", data=body, headers={"Content-Type": CONTENT_TYPE}
        )
        assert ok.status_code == 200
        session.close()
        idle.settimeout(10)
        assert idle.recv(1) == b""  # dropped after the handshake timeout
        idle.close()
    assert sink.outcomes() == ["released"]
    assert len(spooled(tmp_path / "spool")) == 1


def test_request_ids_are_unique_transfers(server, sink, ct60):
    body = multipart(ct60[0].read_bytes())
    for _ in range(3):
        requests.post(f"{server.url}/studies", data=body, headers={"Content-Type": CONTENT_TYPE})
    opened = [e[1] for e in sink.events if e[0] == "opened"]
    assert len(set(opened)) == 3 and all(t.startswith("stow-") for t in opened)
    assert uuid.UUID(opened[0][len("stow-") :])


def test_request_timeout_during_a_store_keeps_the_contract_order(tmp_path, ct60):
    """The timeout fires while a part is being recorded: it is stored, then the transfer
    ends (failed) — never ended first, never reported both stored and refused."""

    class SlowSink(Recorder):
        def instance_stored(self, instance, transfer_id):
            time.sleep(1.5)
            super().instance_stored(instance, transfer_id)

    sink = SlowSink()
    with StowServer(tmp_path / "spool", sink, limits=StowLimits(request_timeout_s=0.5)) as server:
        response = requests.post(
            f"{server.url}/studies",
            data=multipart(ct60[0].read_bytes()),
            headers={"Content-Type": CONTENT_TYPE},
        )
    assert response.status_code == 408
    assert sink.kinds() == ["opened", "stored", "ended"]
    assert sink.outcomes() == ["failed"]


def _stored_sops(response):
    return [i["00081155"]["Value"][0] for i in response.json().get("00081199", {}).get("Value", [])]


def test_a_batch_the_sink_refuses_is_refused_whole(tmp_path, ct60, monkeypatch):
    """A sink with instances_stored gets the parts in batches; one it refuses fails whole,
    the batches before and after it are stored."""
    from radbridge.net.dicomweb import batch

    monkeypatch.setattr(batch, "BATCH_PARTS", 2)

    class BatchRecorder(Recorder):
        def __init__(self):
            super().__init__()
            self.batches = []

        def instances_stored(self, instances, transfer_id):
            self.batches.append([i.sop_instance_uid for i in instances])
            if len(self.batches) == 2:
                raise OSError("the database is full")
            for instance in instances:
                self._add("stored", transfer_id, instance)

    sink = BatchRecorder()
    sops = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in ct60[:5]]
    with StowServer(tmp_path / "spool", sink) as server:
        response = requests.post(
            f"{server.url}/studies",
            data=multipart(*(p.read_bytes() for p in ct60[:5])),
            headers={"Content-Type": CONTENT_TYPE},
        )
    assert sink.batches == [sops[0:2], sops[2:4], sops[4:5]]
    assert response.status_code == 202
    assert _stored_sops(response) == [sops[0], sops[1], sops[4]]
    failed = response.json()["00081198"]["Value"]
    assert [i["00081155"]["Value"][0] for i in failed] == sops[2:4]
    assert part_failures(response) == [0xA700, 0xA700]
    assert sink.kinds() == ["opened", "stored", "stored", "refused", "refused", "stored", "ended"]


def test_a_sink_without_batches_refuses_parts_one_by_one(tmp_path, ct60):
    sops = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in ct60[:3]]

    class Picky(Recorder):
        def instance_stored(self, instance, transfer_id):
            if instance.sop_instance_uid == sops[1]:
                raise OSError("no")
            super().instance_stored(instance, transfer_id)

    sink = Picky()
    with StowServer(tmp_path / "spool", sink) as server:
        response = requests.post(
            f"{server.url}/studies",
            data=multipart(*(p.read_bytes() for p in ct60[:3])),
            headers={"Content-Type": CONTENT_TYPE},
        )
    assert response.status_code == 202
    assert _stored_sops(response) == [sops[0], sops[2]] and part_failures(response) == [0xA700]
