"""The gateway's status page and ``/metrics`` on the STOW-RS port, behind its credentials.

Driven over real HTTP (requests, dicomweb-client) against the gateway's Hypercorn
server; the page is also opened in Debian's headless Chromium (playwright-core) while a
job runs, and its Retry button pressed there. The metrics are parsed with
prometheus-client's own text parser and compared with counts read from the state
database by SQL of the test's own.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from prometheus_client.parser import text_string_to_metric_families

from radbridge.gateway import Gateway
from radbridge.gateway.page import Disk, StatusView, render_status
from radbridge.gateway.routing import Rule
from radbridge.gateway.status import status
from radbridge.gateway.store import JobState, Retry, Store
from radbridge.models.reference_ct import ReferenceCTModel
from radbridge.net import Peer, StowAuth
from tests.gateway.conftest import query, receive
from tests.peers import free_port

USER, PASSWORD = "ops", "pw-1"
STARTED, RELEASE = threading.Event(), threading.Event()


class Failing:
    """A model that always fails (its job is dead-lettered with ``max_attempts = 1``)."""

    name, version = "failing", "1"

    def __call__(self, volume, series):
        raise RuntimeError("the model found no lungs")


class Blocking:
    """The reference model, held back until the test lets it go (a job that is running)."""

    name, version = "blocking-reference", "1"

    def __call__(self, volume, series):
        STARTED.set()
        assert RELEASE.wait(60)
        return ReferenceCTModel()(volume, series)


def failing_rule(priority: int = 5) -> Rule:
    return Rule("failing", model=f"{__name__}:Failing", priority=priority)


@pytest.fixture
def web_config(config):
    return replace(config, stow_auth=StowAuth(username=USER, password=PASSWORD), max_attempts=1)


def get(server, path, **kwargs):
    base = server.url.removesuffix("/dicom-web")
    return requests.get(base + path, timeout=30, allow_redirects=False, **kwargs)


def post(server, path, **kwargs):
    base = server.url.removesuffix("/dicom-web")
    return requests.post(base + path, timeout=30, allow_redirects=False, **kwargs)


def dead_job(gateway: Gateway, series: str = "1.2.3.4") -> int:
    """Queue a job and dead-letter it through the store (as a permanent failure would)."""
    job_id = gateway.store.enqueue(
        series, "1.2.3", version=1, rule="failing", model="failing", priority=0, instance_count=1
    )
    gateway.store.claim_job()
    gateway.store.fail_job(job_id, "the model found no lungs", Retry(1, 0.0), permanent=True)
    return job_id


def test_page_and_metrics_need_the_stow_credentials(web_config, phantom_study):
    gateway = Gateway(web_config)
    server = gateway.stow_server().start()
    try:
        receive(gateway, sorted(phantom_study.dicom_dir.glob("*.dcm"))[:3], outcome="aborted")
        for path in ("/", "/metrics"):
            refused = get(server, path)
            assert refused.status_code == 401
            assert "Basic" in refused.headers["WWW-Authenticate"]
            assert get(server, path, auth=(USER, "wrong")).status_code == 401
        assert post(server, "/jobs/1/retry", data={"csrf": "x"}).status_code == 401
        page = get(server, "/", auth=(USER, PASSWORD))
        assert page.status_code == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert page.headers["Cache-Control"] == "no-store"
        assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none'
        assert "<script" not in page.text
        ds = pydicom.dcmread(next(phantom_study.dicom_dir.glob("*.dcm")))
        held = re.search(r'<table id="held">.*?</table>', page.text)
        assert held is not None and str(ds.SeriesInstanceUID) in held.group()
        assert "transfer aborted" in held.group()  # the reason it is held
        for identifier in (str(ds.PatientName), str(ds.PatientID), str(ds.PatientBirthDate)):
            assert identifier and identifier not in page.text  # UIDs only, no patient data
        assert get(server, "/nothing", auth=(USER, PASSWORD)).status_code == 404
        assert post(server, "/", auth=(USER, PASSWORD)).status_code == 405
        metrics = get(server, "/metrics", auth=(USER, PASSWORD))
        assert metrics.headers["Content-Type"].startswith("text/plain")
        assert "radbridge_instances_received_total 3.0" in metrics.text
    finally:
        server.stop()
        gateway.close()


def test_the_page_lists_series_still_arriving_until_they_are_assembled(web_config, phantom_study):
    from tests.gateway.conftest import receive_open

    gateway = Gateway(web_config)
    server = gateway.stow_server().start()
    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    series = str(pydicom.dcmread(files[0]).SeriesInstanceUID)

    def arriving() -> list[list[str]]:
        page = get(server, "/", auth=(USER, PASSWORD)).text
        table = re.search(r'<table id="arriving">.*?</table>|<p class="empty" id="arriving">', page)
        assert table is not None, "no arriving section"
        rows = re.findall(r"<tr>(.*?)</tr>", table.group(), flags=re.S)[1:]  # without headers
        return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]

    try:
        gateway.transfer_opened("t1")
        receive_open(gateway, files[:5], "t1")
        ((uid, _, count, _, open_transfers, _, _),) = arriving()
        assert (uid, count, open_transfers) == (series, "5", "1")  # still on an association
        receive_open(gateway, files[5:], "t1")
        gateway.transfer_ended("t1", "released")
        ((uid, _, count, _, open_transfers, _, quiet),) = arriving()
        assert (uid, count, open_transfers) == (series, str(len(files)), "0")
        assert quiet.endswith(" s")  # waiting out the quiet period
        assert gateway.assemble_once() == 1
        assert arriving() == []  # a version was made of it: no longer arriving
    finally:
        server.stop()
        gateway.close()


def _token(page: str, job_id: int) -> str:
    form = re.search(rf'action="/jobs/{job_id}/retry">.*?name="csrf" value="([0-9a-f]+)"', page)
    assert form is not None, "no retry form for the job"
    return form.group(1)


def test_retry_needs_credentials_and_the_csrf_token(web_config):
    gateway = Gateway(web_config)
    server = gateway.stow_server().start()
    auth = (USER, PASSWORD)
    try:
        job_id = dead_job(gateway)
        token = _token(get(server, "/", auth=auth).text, job_id)
        path = f"/jobs/{job_id}/retry"
        assert post(server, path, auth=auth).status_code == 403  # no token
        assert post(server, path, auth=auth, data={"csrf": "0" * 64}).status_code == 403
        foreign = {"Origin": "http://evil.example"}
        refused = post(server, path, auth=auth, data={"csrf": token}, headers=foreign)
        assert refused.status_code == 403
        assert "another site" in refused.text
        assert post(server, path, data={"csrf": token}).status_code == 401
        (row,) = query(gateway, "SELECT state FROM jobs WHERE id = ?", job_id)
        assert row["state"] == JobState.DEAD  # nothing above changed anything
        done = post(server, path, auth=auth, data={"csrf": token})
        assert done.status_code == 303
        assert done.headers["Location"] == f"/?retried={job_id}"
        (row,) = query(gateway, "SELECT state, attempts FROM jobs WHERE id = ?", job_id)
        assert (row["state"], row["attempts"]) == (JobState.QUEUED, 0)
        again = post(server, path, auth=auth, data={"csrf": token})
        assert again.status_code == 409 and "not dead" in again.text
        assert post(server, "/jobs/999/retry", auth=auth, data={"csrf": token}).status_code == 404
        notice = get(server, f"/?retried={job_id}", auth=auth).text
        assert f"Job {job_id} is queued again." in notice
        audit = gateway.config.audit_log.read_text()
        assert '"job retried"' in audit
    finally:
        server.stop()
        gateway.close()


def test_without_credentials_the_page_offers_no_retry(config):
    gateway = Gateway(config)  # no [gateway.stow_auth]: the page is open, retry is not
    server = gateway.stow_server().start()
    try:
        job_id = dead_job(gateway)
        page = get(server, "/")
        assert page.status_code == 200
        assert f"/jobs/{job_id}/retry" not in page.text
        assert "needs [gateway.stow_auth]" in page.text
        refused = post(server, f"/jobs/{job_id}/retry", data={"csrf": "anything"})
        assert refused.status_code == 403
        (row,) = query(gateway, "SELECT state FROM jobs WHERE id = ?", job_id)
        assert row["state"] == JobState.DEAD
    finally:
        server.stop()
        gateway.close()


def _job_row(page: str, job_id: int) -> dict[str, str]:
    """The jobs table's row of ``job_id`` as {header: cell text}."""
    table = re.search(r'<table id="jobs">(.*?)</table>', page, re.S)
    assert table is not None
    headers = re.findall(r"<th>(.*?)</th>", table.group(1))
    row = re.search(rf'<tr><td id="job-{job_id}">.*?</tr>', table.group(1), re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    return dict(zip(headers, cells, strict=True))


def test_a_retried_job_waits_from_its_retry_not_from_its_first_queueing(tmp_path):
    # Times are given to the store, so the page's latencies are exact.
    store = Store(tmp_path / "gateway.sqlite")
    try:
        job_id = store.enqueue(
            "1.2.3.4", "1.2.3", version=1, rule="r", model="m", priority=0, instance_count=1,
            now=1000.0,
        )  # fmt: skip
        store.claim_job(now=1010.0)
        store.fail_job(job_id, "no lungs", Retry(1, 0.0), permanent=True, now=1040.0)

        def row() -> dict[str, str]:
            view = StatusView(status(store), [], Disk(1.0, 2.0, 0.0), [], "RB", now=9000.0)
            return _job_row(render_status(view, csrf=None), job_id)

        assert (row()["Waited"], row()["Ran"]) == ("10.0 s", "30.0 s")
        retried = store.retry_job(job_id, now=5000.0)
        assert retried.state == JobState.QUEUED
        assert (retried.created_at, retried.started_at, retried.finished_at) == (5000.0, None, None)
        assert (row()["Waited"], row()["Ran"]) == ("", "")  # not started again yet
        assert row()["Queued at"] == "1970-01-01 01:23:20 UTC"  # the retry, not 1000 s
        store.claim_job(now=5003.0)
        assert (row()["Waited"], row()["Ran"]) == ("3.0 s", "3997.0 s")  # running at now=9000
    finally:
        store.close()


def _families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Parse an exposition: family name -> {(sample name, sorted labels): value}."""
    parsed: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text):
        samples = parsed.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return parsed


def _value(families, family, sample=None, **labels):
    key = (sample or family, tuple(sorted(labels.items())))
    return families[family][key]


def _post_not_dicom(server) -> requests.Response:
    """A STOW-RS request with one part that is not a DICOM file (refused: 0xC001)."""
    boundary = "radbridge-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + b"this is not a DICOM file" * 10
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return requests.post(
        server.url + "/studies",
        data=body,
        headers={"Content-Type": content_type},
        auth=(USER, PASSWORD),
        timeout=30,
    )


def test_metrics_match_the_store_during_a_gateway_run(web_config, phantom_study):
    """Receive by STOW-RS (one refused part), run two rules (one fails), deliver to the
    archive and to a PACS that is down; scrape at each stage and compare with the database."""
    down = Peer(ae_title="DOWN", host="127.0.0.1", port=free_port(), name="down", timeout_s=5)
    rules = (
        Rule("ct-reference", model="reference-ct", destinations=("archive", "down")),
        failing_rule(),
    )
    settings = replace(web_config, rules=rules, peers={"down": down}, delivery_attempts=1)
    gateway = Gateway(settings)
    server = gateway.stow_server().start()
    auth = (USER, PASSWORD)
    try:
        session = requests.Session()
        session.auth = auth
        datasets = [pydicom.dcmread(p) for p in sorted(phantom_study.dicom_dir.glob("*.dcm"))]
        DICOMwebClient(server.url, session=session).store_instances(datasets)
        assert _post_not_dicom(server).status_code == 409
        before = _families(get(server, "/metrics", auth=auth).text)
        assert _value(before, "radbridge_instances_received", "radbridge_instances_received_total")
        assert _value(before, "radbridge_queue_depth") == 0
        while gateway.step():
            pass
        families = _families(get(server, "/metrics", auth=auth).text)
        _check_against_the_database(gateway, families)
        # what only the process counts: one model run, one encoding, the delivery attempts
        model = {"model": "reference-ct"}
        count = _value(
            families, "radbridge_model_seconds", "radbridge_model_seconds_count", **model
        )
        assert count == 1
        assert _value(
            families, "radbridge_encode_seconds", "radbridge_encode_seconds_count", **model
        )
        assert (
            _value(families, "radbridge_model_seconds", "radbridge_model_seconds_sum", **model) > 0
        )
        # the arrival commits of this process: one record per stored part, none failed
        commits = "radbridge_arrival_commits"
        assert _value(families, commits, f"{commits}_total", outcome="failed") == 0
        committed = _value(families, commits, f"{commits}_total", outcome="committed")
        records = _value(families, "radbridge_arrival_records", "radbridge_arrival_records_total")
        assert records == 24 and 1 <= committed <= records
        results = query(gateway, "SELECT COUNT(*) AS n FROM results")[0]["n"]
        attempts = "radbridge_delivery_attempts"
        for destination in ("archive", "down"):
            assert (
                _value(families, attempts, f"{attempts}_total", destination=destination) == results
            )
        failures = "radbridge_delivery_failures"
        labels = {"destination": "down", "status_class": "network"}
        assert _value(families, failures, f"{failures}_total", **labels) == results
        assert not any(
            key[1] and dict(key[1])["destination"] == "archive" for key in families[failures]
        )
    finally:
        server.stop()
        gateway.close()


def _check_against_the_database(gateway: Gateway, families) -> None:
    """Every metric the database keeps equals the count read from it by SQL."""
    (received,) = query(gateway, "SELECT SUM(instance_count) AS n FROM series")
    total = "radbridge_instances_received_total"
    assert _value(families, "radbridge_instances_received", total) == received["n"] == 24
    (refused,) = query(gateway, "SELECT SUM(refused) AS n FROM transfers")
    by_reason = families["radbridge_instances_refused"]
    assert sum(by_reason.values()) == refused["n"] == 1
    reason = {"reason": "0xc001"}  # the STOW-RS Failure Reason of a part that is not Part 10
    assert (
        _value(
            families, "radbridge_instances_refused", "radbridge_instances_refused_total", **reason
        )
        == 1
    )
    jobs = dict(query(gateway, "SELECT state, COUNT(*) FROM jobs GROUP BY state"))
    assert jobs == {
        JobState.DEAD: 2
    }  # the failing model, and the delivery to the PACS that is down
    for state in (
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.DELIVERING,
        JobState.DONE,
        JobState.DEAD,
    ):
        assert _value(families, "radbridge_jobs", state=state) == jobs.get(state, 0)
    assert _value(families, "radbridge_queue_depth") == jobs.get(JobState.QUEUED, 0)
    deliveries = dict(query(gateway, "SELECT state, COUNT(*) FROM deliveries GROUP BY state"))
    for state in ("pending", "delivered", "failed"):
        assert _value(families, "radbridge_deliveries", state=state) == deliveries.get(state, 0)
    assert deliveries["delivered"] == deliveries["failed"] > 0
    (held,) = query(gateway, "SELECT COUNT(*) AS n FROM series WHERE held_reason IS NOT NULL")
    assert _value(families, "radbridge_series_held") == held["n"]
    versions = dict(query(gateway, "SELECT complete, COUNT(*) FROM versions GROUP BY complete"))
    complete = "radbridge_series_complete"
    assert _value(families, complete, f"{complete}_total") == versions.get(1, 0) == 1
    free = _value(families, "radbridge_disk_free_bytes")
    assert free > 0 and abs(free - _free(gateway)) < 64 * 2**20
    assert _value(families, "radbridge_disk_min_free_bytes") == 200 * 2**20


def _free(gateway: Gateway) -> float:
    import shutil

    return float(shutil.disk_usage(gateway.config.spool_dir).free)


@pytest.mark.slow
@pytest.mark.peer
def test_status_page_in_chromium_while_a_job_runs(web_config, phantom_study, tmp_path):
    from PIL import Image

    from tests.peers.browser import status_page_in_chromium

    STARTED.clear()
    RELEASE.clear()
    rules = (Rule("slow-reference", model=f"{__name__}:Blocking"), failing_rule(priority=5))
    gateway = Gateway(replace(web_config, rules=rules))
    server = gateway.stow_server().start()
    runner = threading.Thread(target=gateway.run_once)
    try:
        files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
        series = str(pydicom.dcmread(files[0]).SeriesInstanceUID)
        receive(gateway, files)
        assert gateway.assemble_once() == 1
        assert gateway.run_once()  # the failing rule first (higher priority): dead-lettered
        (dead,) = query(gateway, "SELECT id FROM jobs WHERE state = 'dead'")
        runner.start()
        assert STARTED.wait(60)  # the other job is now inside its model
        (running,) = query(gateway, "SELECT id FROM jobs WHERE state = 'running'")
        base = server.url.removesuffix("dicom-web")
        shown, screenshot = status_page_in_chromium(
            base, USER, PASSWORD, tmp_path, retry_job=dead["id"]
        )
        assert shown["status"] == 200 and shown["title"] == "radbridge gateway RADBRIDGE"
        jobs = {int(job["id"]): job for job in shown["jobs"]}
        assert jobs[running["id"]]["state"] == "running"
        assert jobs[running["id"]]["series"] == series
        assert jobs[running["id"]]["ran"].endswith(" s")  # the running time so far
        assert jobs[dead["id"]]["state"] == "dead"
        (row,) = shown["dead"]
        assert (int(row["job"]), row["series"], row["button"]) == (dead["id"], series, True)
        assert "the model found no lungs" in row["reason"]
        assert "slow-reference" in shown["models"] and "failing" in shown["models"]
        assert "free of" in shown["disk"]
        with Image.open(screenshot) as image:
            pixels = np.asarray(image.convert("L"))
        assert image.width == 1400 and image.height >= 600  # fits the window: no sideways scroll
        assert len(np.unique(pixels)) > 20 and pixels.std() > 10  # text and tables, not blank
        after = shown["retry"]  # the Retry button pressed in the browser
        assert after["status"] == 200 and after["url"].endswith(f"/?retried={dead['id']}")
        assert after["notice"] == f"Job {dead['id']} is queued again."
        assert {int(j["id"]): j["state"] for j in after["jobs"]}[dead["id"]] == "queued"
        assert after["dead"] == []
        (row,) = query(gateway, "SELECT state FROM jobs WHERE id = ?", dead["id"])
        assert row["state"] == JobState.QUEUED
    finally:
        RELEASE.set()
        if runner.is_alive() or runner.ident:
            runner.join(60)
        server.stop()
        gateway.close()
