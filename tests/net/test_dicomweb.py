"""DICOMweb (STOW-RS, QIDO-RS, WADO-RS) against a real Orthanc with its DICOMweb plugin.

Two small local HTTP stand-ins cover what Orthanc 1.10.1 cannot do on demand: check a
bearer token (it has no token authentication without an extra plugin) and never answer.
"""

from __future__ import annotations

import http.server
import socket
import threading
from typing import ClassVar

import pydicom
import pytest

from radbridge.config import Peer
from radbridge.errors import DicomWebError, PeerTimeoutError
from radbridge.io.phantom import write_phantom
from radbridge.net.dicomweb import qido, stow, wado
from radbridge.net.qr import find
from tests.net.helpers import dataset_bytes, received_tree, sources_by_uid
from tests.peers._common import free_port
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
