"""The gateway's STOW-RS endpoint, driven by dicomweb-client (a real DICOMweb client)."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from dataclasses import replace

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from requests.exceptions import HTTPError

from radbridge.gateway import Gateway
from radbridge.gateway.store import JobState
from radbridge.io.phantom import write_phantom
from radbridge.net import Peer, StowAuth
from tests.gateway.conftest import query
from tests.peers import free_port, wait_for_port


def client_for(server, **kwargs):
    return DICOMwebClient(server.url, **kwargs)


def test_stow_then_the_pipeline_runs(gateway, phantom_study):
    server = gateway.stow_server().start()
    try:
        datasets = [pydicom.dcmread(p) for p in sorted(phantom_study.dicom_dir.glob("*.dcm"))]
        response = client_for(server).store_instances(datasets)
        stored = response.get("ReferencedSOPSequence") or response.ReferencedSOPSequence
        assert len(stored) == 24
        for ds in datasets:
            folder = gateway.config.spool_dir / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID)
            (path,) = folder.glob(f"{ds.SOPInstanceUID}.*.dcm")  # <sop>.<digest>.dcm
            assert pydicom.dcmread(path) == ds  # stored unchanged
        for _ in range(50):
            if not gateway.step():
                break
        (job,) = query(gateway, "SELECT state FROM jobs")
        assert job["state"] == JobState.DONE
    finally:
        server.stop()


def test_bad_parts_fail_alone_and_are_not_acknowledged(gateway, phantom_study):
    server = gateway.stow_server().start()
    try:
        good = pydicom.dcmread(next(phantom_study.dicom_dir.glob("*.dcm")))
        evil = copy.deepcopy(good)
        evil.SOPInstanceUID = "../../etc/passwd"
        client = client_for(server)
        with pytest.raises(HTTPError) as err:
            client.store_instances([evil])
        assert err.value.response.status_code == 409
        response = client.store_instances([good])
        assert len(response.ReferencedSOPSequence) == 1
        spooled = [p.name.rsplit(".", 2)[0] for p in gateway.config.spool_dir.rglob("*.dcm")]
        assert spooled == [str(good.SOPInstanceUID)]
        assert not list(gateway.config.data_dir.rglob("passwd*"))
    finally:
        server.stop()


def test_authentication(gateway, phantom_study):
    server = gateway.stow_server(
        auth=StowAuth(username="pacs", password="s3cret", token="t0ken")
    ).start()
    try:
        ds = pydicom.dcmread(next(phantom_study.dicom_dir.glob("*.dcm")))
        with pytest.raises(HTTPError) as err:
            client_for(server).store_instances([ds])
        assert err.value.response.status_code == 401
        from requests import Session

        basic = Session()
        basic.auth = ("pacs", "s3cret")
        client_for(server, session=basic).store_instances([ds])
        bearer = Session()
        bearer.headers["Authorization"] = "Bearer t0ken"
        client_for(server, session=bearer).store_instances([ds])
        assert gateway.store.series_row(str(ds.SeriesInstanceUID)).instance_count == 1
    finally:
        server.stop()


def test_low_disk_refuses_before_storing(gateway, phantom_study, monkeypatch):
    monkeypatch.setattr(gateway, "disk_ok", lambda: False)
    server = gateway.stow_server().start()
    try:
        ds = pydicom.dcmread(next(phantom_study.dicom_dir.glob("*.dcm")))
        client = client_for(server)
        client.set_http_retry_params(retry=False)  # it would otherwise retry 503 for ~30 s
        with pytest.raises(HTTPError) as err:
            client.store_instances([ds])
        assert err.value.response.status_code == 503
        assert err.value.response.headers["Retry-After"]
        assert not list(gateway.config.spool_dir.rglob("*.dcm"))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ct60(tmp_path_factory):
    """The project's phantom as a realistic CT series: 60 slices of 512x512."""
    return write_phantom(tmp_path_factory.mktemp("ct60"), slices=60, size=512, seed=7)


@pytest.mark.peer
@pytest.mark.slow
def test_orthanc_pushes_a_study_by_stow_rs(orthanc_factory, config, ct60, monkeypatch, caplog):
    """Orthanc's DICOMweb plugin (chunked bodies) -> the gateway's STOW-RS -> results back."""
    caplog.set_level(logging.INFO, logger="radbridge.net.dicomweb.server")
    monkeypatch.setenv("RB_STOW_PASSWORD", "s3cret")
    stow_port, dimse_port = free_port(), free_port()
    url = f"http://127.0.0.1:{stow_port}/dicom-web/"
    dicomweb = {"Enable": True, "Root": "/dicom-web/", "Servers": {"gw": [url, "pacs", "s3cret"]}}
    orthanc = orthanc_factory(extra={"DicomWeb": dicomweb})
    pacs = Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port, name="pacs")
    rule = replace(config.rules[0], destinations=("pacs", "archive"))
    settings = replace(
        config,
        port=dimse_port,
        stow_port=stow_port,
        stow_auth=StowAuth(username="pacs", password="s3cret"),
        peers={"pacs": pacs},
        rules=(rule,),
        quiet_period_s=0.5,
    )
    files = sorted(ct60.dicom_dir.glob("*.dcm"))
    orthanc.upload_many(files)
    (study,) = orthanc.studies()
    gateway = Gateway(settings)
    stop = threading.Event()
    serving = threading.Thread(target=gateway.serve, args=(stop,), daemon=True)
    serving.start()
    try:
        wait_for_port("127.0.0.1", stow_port, timeout=30)
        answer = orthanc.post("/dicom-web/servers/gw/stow", {"Resources": [study]})
        assert answer is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            states = [r["state"] for r in query(gateway, "SELECT state FROM jobs")]
            if states == [JobState.DONE]:
                break
            time.sleep(0.5)
        assert states == [JobState.DONE]
        delivered = query(
            gateway,
            "SELECT sop_instance_uid FROM deliveries "
            "WHERE destination = 'pacs' AND state = 'delivered'",
        )
    finally:
        stop.set()
        serving.join(60)
    spooled = {
        pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
        for p in settings.spool_dir.rglob("*.dcm")
    }
    assert spooled == {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in files}
    assert len(delivered) == 3  # SEG, SR and KO
    assert {d["sop_instance_uid"] for d in delivered} <= orthanc.sop_instance_uids()
    events = [json.loads(line) for line in settings.audit_log.read_text().splitlines()]
    stow = [e["transfer"] for e in events if e["event"] == "received"]
    assert len(stow) == 60 and all(t.startswith("stow-") for t in stow)
    assert "(chunked," in caplog.text  # Orthanc sent its requests chunked
