"""DICOMweb (STOW-RS, QIDO-RS, WADO-RS) against a real Orthanc with its DICOMweb plugin.

Two small local HTTP stand-ins cover what Orthanc 1.10.1 cannot do on demand: check a
bearer token (it has no token authentication without an extra plugin) and never answer.
"""

from __future__ import annotations

import http.server
import itertools
import socket
import threading
import time
from dataclasses import replace
from typing import ClassVar

import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radbridge.errors import DicomWebError, NotDicomError, PeerTimeoutError
from radbridge.io.phantom import write_phantom
from radbridge.net import Peer, TLSConfig, find, qido, stow, wado
from radbridge.net.dicomweb.client import stow_batches
from radbridge.net.dicomweb.multipart import part_bodies
from tests.net.helpers import dataset_bytes, make_certificates, received_tree, sources_by_uid
from tests.peers import free_port
from tests.peers.orthanc import OrthancConfig


def web(orthanc, **auth) -> Peer:
    """Orthanc as a peer with its DICOMweb URL (and ``username``/``password``)."""
    return Peer(
        "ORTHANC", "127.0.0.1", orthanc.dicom_port, dicomweb_url=orthanc.dicomweb_url, **auth
    )


@pytest.mark.peer
def test_stow_then_find_qido_and_wado(orthanc_factory, small_study, tmp_path):
    # RADBRIDGE must be a known modality for Orthanc to answer our C-FIND
    pacs = orthanc_factory(modalities={"rb": ("RADBRIDGE", "127.0.0.1", free_port())})
    sent = sources_by_uid(small_study.dicom_dir)
    report = stow(sorted(sent.values()), web(pacs))
    assert sorted(report.stored) == sorted(sent)
    assert pacs.sop_instance_uids() == set(sent)
    study_uid = small_study.study_instance_uid
    series_uid = small_study.series_instance_uid

    dimse = Peer("ORTHANC", "127.0.0.1", pacs.dicom_port)
    assert [str(s.StudyInstanceUID) for s in find(dimse, "STUDY")] == [study_uid]
    series = find(dimse, "SERIES", keys={"StudyInstanceUID": study_uid})
    assert [str(s.SeriesInstanceUID) for s in series] == [series_uid]
    assert [str(s.StudyInstanceUID) for s in qido(web(pacs), "STUDY")] == [study_uid]
    found = qido(web(pacs), "SERIES", study=study_uid)
    assert [str(s.SeriesInstanceUID) for s in found] == [series_uid]
    instances = qido(web(pacs), "IMAGE", study=study_uid)
    assert {str(s.SOPInstanceUID) for s in instances} == set(sent)
    assert qido(web(pacs), "STUDY", keys={"StudyInstanceUID": "1.2.3.4.5"}) == []

    for folder, series_arg in (("study", None), ("series", series_uid)):
        got = wado(web(pacs), tmp_path / folder, study=study_uid, series=series_arg)
        tree = received_tree(tmp_path / folder)  # DIR/<study>/<series>/<sop>.dcm, no temporaries
        assert tree.keys() == sent.keys() and sorted(got.files) == sorted(tree.values())
        for uid, path in sent.items():
            assert dataset_bytes(tree[uid]) == dataset_bytes(path)


@pytest.mark.peer
def test_stow_names_the_refused_instances(orthanc, small_study, tmp_path):
    other = write_phantom(tmp_path / "other", slices=2, size=16, seed=9, nifti=False)
    ours = sorted(small_study.dicom_dir.glob("*.dcm"))[:2]
    strangers = sorted(sources_by_uid(other.dicom_dir))
    with pytest.raises(DicomWebError) as err:  # posted to our study: Orthanc refuses the others
        stow(
            ours + sorted(other.dicom_dir.glob("*.dcm")),
            web(orthanc),
            study=small_study.study_instance_uid,
        )
    assert err.value.http_status == 409
    assert "2 of 4 instances were not stored" in str(err.value)
    assert all(uid in str(err.value) for uid in strangers)
    assert "reason 0x0110" in str(err.value)  # Orthanc's FailureReason: processing failure
    assert orthanc.sop_instance_uids() == {str(pydicom.dcmread(p).SOPInstanceUID) for p in ours}


@pytest.mark.peer
def test_dicomweb_faults(orthanc_factory, tmp_path):
    locked = orthanc_factory(OrthancConfig(auth=("radbridge", "right")))
    with pytest.raises(DicomWebError) as err:
        qido(web(locked, username="radbridge", password="wrong"), "STUDY")
    assert err.value.http_status == 401 and locked.dicomweb_url in str(err.value)
    assert "password" in str(err.value)  # the hint
    assert qido(web(locked, username="radbridge", password="right"), "STUDY") == []
    with pytest.raises(DicomWebError) as err:  # unknown study
        wado(web(locked, username="radbridge", password="right"), tmp_path, study="1.2.3.4.5")
    assert err.value.http_status == 404
    assert not list(tmp_path.rglob("*"))
    down = Peer("ORTHANC", "127.0.0.1", 1, dicomweb_url=f"http://127.0.0.1:{free_port()}/dw")
    with pytest.raises(DicomWebError, match="cannot connect") as err:
        qido(down, "STUDY")
    assert err.value.http_status is None


class _TokenChecker(http.server.BaseHTTPRequestHandler):
    """Answers QIDO-RS with no matches, or 401 unless the bearer token is right."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        header = self.headers.get("Authorization")
        self.seen.append(header)
        ok = header == "Bearer s3cret"
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, *args: object) -> None:
        pass


def test_bearer_token_is_sent():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenChecker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    try:
        assert qido(Peer("WEB", "127.0.0.1", 1, dicomweb_url=url, token="s3cret"), "STUDY") == []
        with pytest.raises(DicomWebError) as err:
            qido(Peer("WEB", "127.0.0.1", 1, dicomweb_url=url, token="wrong"), "STUDY")
        assert err.value.http_status == 401
    finally:
        server.shutdown()
        server.server_close()
    assert _TokenChecker.seen[-2:] == ["Bearer s3cret", "Bearer wrong"]


def test_a_server_that_never_answers_times_out(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/dicom-web"
        peer = Peer("WEB", "127.0.0.1", 1, dicomweb_url=url, timeout_s=0.5)
        with pytest.raises(PeerTimeoutError, match=r"no answer within 0\.5 s"):
            wado(peer, tmp_path, study="1.2.3")
    assert not list(tmp_path.rglob("*"))


def _drain(parts):
    """Return (the parts a part_bodies generator yields, what it returns)."""
    got = []
    while True:
        try:
            got.append(next(parts))
        except StopIteration as stop:
            return got, stop.value


def _multipart(parts: list[bytes], boundary: str, *, preamble: bytes = b"") -> bytes:
    body = preamble
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


_BOUNDARY = "rb-8f0c2d"
_part_bytes = st.binary(max_size=300).map(lambda b: b.replace(_BOUNDARY.encode(), b"x"))


@given(
    parts=st.lists(
        _part_bytes | st.sampled_from([b"\r\n", b"--", b"\r\n--", b"\r\n\r\n"]), max_size=5
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    preamble=st.sampled_from([b"", b"ignored preamble\r\n"]),
)
def test_multipart_parts_come_out_whatever_the_chunking(parts, cuts, preamble):
    body = _multipart(parts, _BOUNDARY, preamble=preamble)
    content_type = f'multipart/related; type="application/dicom"; boundary="{_BOUNDARY}"'
    assert _drain(part_bodies(content_type, _chunked(body, cuts))) == (parts, True)


@given(
    parts=st.lists(_part_bytes, min_size=1, max_size=4),
    cut=st.integers(min_value=0),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_a_multipart_body_cut_short_yields_only_whole_parts(parts, cut, cuts):
    body = _multipart(parts, _BOUNDARY)
    end = body.rindex(f"--{_BOUNDARY}--".encode())
    short = body[: cut % (end + 2)]  # lose at least the close delimiter's "--"
    content_type = f"multipart/related; boundary={_BOUNDARY}"
    got, complete = _drain(part_bodies(content_type, _chunked(short, cuts)))
    assert not complete
    assert got == parts[: len(got)]


class _Cutting(http.server.BaseHTTPRequestHandler):
    """WADO-RS stand-in: sends a whole first instance, then fails as ``mode`` says.

    ``drop``: half the second part, then closes (the Content-Length promised more);
    ``short``: no Content-Length, the body ends without the close delimiter;
    ``stall``: stops sending after the first part (but keeps the connection).
    """

    instances: ClassVar[list[bytes]] = []
    mode: ClassVar[str] = "drop"

    def do_GET(self) -> None:
        boundary = "cut-here"
        body = _multipart(self.instances, boundary)
        first = body.index(b"\r\n--cut-here", 10) + 2  # the first part, whole
        self.send_response(200)
        self.send_header(
            "Content-Type", f"multipart/related; type=application/dicom; boundary={boundary}"
        )
        if self.mode == "drop":
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body[: first + 200])  # the first part and the start of the second
        self.wfile.flush()
        if self.mode == "stall":
            time.sleep(3)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("drop", DicomWebError, "connection was lost mid-answer"),
        ("short", DicomWebError, "ended before its last part"),
        ("stall", PeerTimeoutError, "stopped sending for 1 s"),
    ],
)
def test_wado_cut_short_leaves_only_complete_files(small_study, tmp_path, mode, error, message):
    sent = sorted(small_study.dicom_dir.glob("*.dcm"))[:2]
    _Cutting.instances = [p.read_bytes() for p in sent]
    _Cutting.mode = mode
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Cutting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    try:
        with pytest.raises(error, match=message) as err:
            wado(
                Peer("WEB", "127.0.0.1", 1, dicomweb_url=url, timeout_s=1.0),
                tmp_path,
                study="1.2.3",
            )
    finally:
        server.shutdown()
        server.server_close()
    assert "1 complete instances written" in str(err.value)
    tree = received_tree(tmp_path)  # layout, and no temporary file left
    first = pydicom.dcmread(sent[0], stop_before_pixels=True)
    assert list(tree) == [str(first.SOPInstanceUID)]
    assert tree[str(first.SOPInstanceUID)].read_bytes() == sent[0].read_bytes()


@pytest.mark.peer
def test_stow_in_batches_and_refuses_non_dicom_first(orthanc, small_study, tmp_path):
    sent = sources_by_uid(small_study.dicom_dir)
    files = sorted(sent.values())
    junk = tmp_path / "notes.dcm"
    junk.write_bytes(b"not a DICOM file" * 20)
    with pytest.raises(NotDicomError) as err:
        stow([*files, junk], web(orthanc))
    assert err.value.path == str(junk)
    assert orthanc.sop_instance_uids() == set()  # nothing was sent
    size = files[0].stat().st_size
    report = stow(files, web(orthanc), batch_bytes=int(size * 4.5))  # 4 files per request
    assert sorted(report.stored) == sorted(sent)
    assert orthanc.sop_instance_uids() == set(sent)


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=50), max_size=12),
    limit=st.integers(min_value=1, max_value=120),
)
def test_batches_keep_order_and_size(tmp_path_factory, sizes, limit):
    folder = tmp_path_factory.mktemp("batches")
    files = []
    for number, size in enumerate(sizes):
        files.append(folder / f"{number}.dcm")
        files[-1].write_bytes(b"x" * size)
    batches = list(stow_batches(files, limit))
    assert [p for batch in batches for p in batch] == files
    for batch in batches:
        total = sum(p.stat().st_size for p in batch)
        assert batch and (total <= limit or len(batch) == 1)
    for first, second in itertools.pairwise(batches):  # each batch was as full as it could be
        assert sum(p.stat().st_size for p in [*first, second[0]]) > limit


def test_stow_qido_wado_over_mutual_tls(small_study, tmp_path):
    # radbridge's own STOW-RS endpoint (the gateway's) serves HTTPS and asks for a client
    # certificate; the Orthanc fixture has no HTTPS mode
    from radbridge.net import NullSink, StowServer

    certs = make_certificates(tmp_path)
    received: dict[str, bytes] = {}

    class Recorder(NullSink):
        def instance_stored(self, instance, transfer_id):
            received[instance.sop_instance_uid] = instance.path.read_bytes()

    server_tls = TLSConfig(
        ca_file=certs / "ca.pem", cert_file=certs / "server.pem", key_file=certs / "server.key"
    )
    server = StowServer(tmp_path / "spool", Recorder(), tls=server_tls).start()
    client = TLSConfig(
        ca_file=certs / "ca.pem", cert_file=certs / "client.pem", key_file=certs / "client.key"
    )
    files = sorted(small_study.dicom_dir.glob("*.dcm"))[:3]
    try:
        peer = Peer("WEB", "127.0.0.1", 1, dicomweb_url=server.url, tls=client, timeout_s=10)
        assert len(stow(files, peer).stored) == 3
        no_client_cert = TLSConfig(ca_file=certs / "ca.pem")
        for tls in (no_client_cert, None):  # no certificate to show; or the CA unknown
            with pytest.raises(DicomWebError, match="TLS with") as err:
                stow(files[:1], replace(peer, tls=tls))
            assert "ca_file" in str(err.value)
    finally:
        server.stop()
    assert received == {str(pydicom.dcmread(p).SOPInstanceUID): p.read_bytes() for p in files}


def test_a_study_search_cannot_be_limited_to_a_series():
    """qido(level=STUDY, series=...) ignored the series and returned every study."""
    from radbridge.errors import ConfigError
    from radbridge.net import Peer, qido

    peer = Peer("PACS", "127.0.0.1", 1, dicomweb_url="http://127.0.0.1:1/dicom-web")
    with pytest.raises(ConfigError, match="cannot be limited to one series") as caught:
        qido(peer, "STUDY", series="1.2.3")
    assert caught.value.attribute == "series"
