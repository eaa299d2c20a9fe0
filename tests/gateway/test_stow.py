"""The gateway's STOW-RS endpoint, driven by dicomweb-client (a real DICOMweb client)."""

from __future__ import annotations

import copy

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from requests.exceptions import HTTPError

from radbridge.gateway.state import JobState
from radbridge.net.dicomweb.settings import StowAuth


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
        (job,) = gateway.store.query("SELECT state FROM jobs")
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
        assert gateway.store.series_row(str(ds.SeriesInstanceUID))["instance_count"] == 1
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
