"""Critical-finding alerts end to end: the phantom's result is urgent by its rule, and the
alert reaches a real webhook receiver, FHIR endpoint and MLLP listener on 127.0.0.1.

Oracles outside radbridge: the webhook's HMAC is recomputed with :mod:`hmac`; the FHIR
body is parsed by fhir.resources; the ORU^R01 is received, parsed and acknowledged by
hl7apy's own MLLP server. The expected reasons come from running the reference model on
the phantom in the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import ssl
import time
from dataclasses import replace

import highdicom as hd
import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle
from hl7apy.parser import parse_message

from radbridge.errors import ConfigError
from radbridge.gateway import Gateway
from radbridge.gateway.page import Disk, StatusView, render_status
from radbridge.gateway.routing import Match, Rule
from radbridge.gateway.status import status
from radbridge.gateway.store import SCHEMA_VERSION, Store
from radbridge.gateway.triage import Threshold, Urgency
from radbridge.io.series import read_series
from radbridge.models import SeriesInfo
from radbridge.models.reference_ct import ReferenceCTModel
from radbridge.net import AlertTargets, FhirTarget, Hl7Target, TLSConfig, WebhookTarget
from tests.models.onnx_network import write_card
from tests.net.helpers import make_certificates

from .alert_receivers import HttpReceiver, MllpListener
from .conftest import BEFORE_RETENTION, query, receive

SECRET = "s3cret-hmac-key"
URGENT = Urgency(
    findings=("lung nodule: present",),
    measurements=(
        Threshold("long axis", "mm", label="lung_nodule", at_least=20.0),
        Threshold("volume", "mL", label="lung_nodule", above=5.0),
        Threshold("volume", "mL", label="liver_lesion", above=0.0),  # liver lesion absent
    ),
)


def files_of(study):
    return sorted(study.dicom_dir.glob("*.dcm"))


@pytest.fixture(scope="module")
def model_result(phantom_study):
    """The reference model's result on the phantom, computed here as the expectation."""
    series = read_series(phantom_study.dicom_dir)
    volume = series.volume(rescale=True)
    return ReferenceCTModel()(volume, SeriesInfo(modality="CT"))


def expected_reasons(result):
    """The reasons URGENT must give for ``result``: (kind, concept, value in the rule's unit)."""
    found = [("finding", f.concept, f.value) for f in result.findings if f.value == "present"]
    for m in result.measurements:
        if m.label == 6 and m.name == "long axis" and m.value >= 20:
            found.append(("measurement", "long axis", round(m.value, 6)))
        if m.label == 6 and m.name == "volume" and m.value / 1000 > 5:
            found.append(("measurement", "volume", round(m.value / 1000, 6)))
    return found


def alert_gateway(config, targets, *, names, urgent=URGENT, model="reference-ct", **changes):
    rule = Rule(
        "ct",
        model=model,
        match=Match(modality=("CT",)),
        outputs=("seg", "sr", "ko"),
        destinations=("archive",),
        urgent=urgent,
        alert=tuple(names),
    )
    return Gateway(replace(config, rules=(rule,), alerts=targets, **changes))


def run_until_alerted(gateway, timeout=30.0):
    """Step until the job is done and no alert is pending (waiting out backoffs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not gateway.step():
            left = query(gateway, "SELECT COUNT(*) FROM alerts WHERE state = 'pending'")[0][0]
            jobs = query(gateway, "SELECT COUNT(*) FROM jobs WHERE state != 'done'")[0][0]
            if not left and not jobs:
                return
            time.sleep(0.01)
    raise AssertionError("the gateway did not finish its job and alerts")


def alerts(gateway):
    return [dict(r) for r in query(gateway, "SELECT * FROM alerts ORDER BY target")]


def run_alerts(gateway, study, receiver):
    """Receive ``study``, run until its alerts are done, stop both; return the alert rows."""
    try:
        receive(gateway, files_of(study))
        run_until_alerted(gateway)
        return alerts(gateway)
    finally:
        gateway.close()
        receiver.stop()


def metric_samples(gateway, family):
    """The gateway's Prometheus samples of ``family`` by state, parsed by prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    body, _ = gateway.metrics.exposition()
    (found,) = [f for f in text_string_to_metric_families(body.decode()) if f.name == family]
    return {s.labels["state"]: s.value for s in found.samples}


def audit(gateway, event):
    lines = gateway.config.audit_log.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def test_webhook_receives_one_signed_alert(config, phantom_study, model_result):
    hook = HttpReceiver()
    target = WebhookTarget(url=hook.url, secret=SECRET, name="oncall")
    gateway = alert_gateway(config, AlertTargets(webhook={"oncall": target}), names=["oncall"])
    try:
        receive(gateway, files_of(phantom_study))
        run_until_alerted(gateway)
        report = status(gateway.store)
    finally:
        gateway.close()
        hook.stop()
    (request,) = hook.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Radbridge-Signature"], expected)
    payload = json.loads(request.body)
    source = pydicom.dcmread(files_of(phantom_study)[0], stop_before_pixels=True)
    assert payload["study_instance_uid"] == source.StudyInstanceUID
    assert payload["series_instance_uid"] == source.SeriesInstanceUID
    assert request.headers["Idempotency-Key"] == payload["idempotency_key"]
    got = [(r["kind"], r["concept"], r["value"]) for r in payload["reasons"]]
    assert sorted(got, key=str) == sorted(expected_reasons(model_result), key=str)
    assert len(got) >= 3  # the finding, a long axis and the nodules' volume
    results = {
        uid for (uid,) in query(gateway.config.database, "SELECT sop_instance_uid FROM results")
    }
    assert {r["sop_instance_uid"] for r in payload["results"]} == results
    assert "patient" not in payload and source.PatientID.encode() not in request.body
    assert report["alerts"] == {"sent": 1} and report["alert_failures"] == []
    assert report["alert_latency_s"]["count"] == 1
    (sent,) = audit(gateway, "alert sent")
    assert sent["destination"] == "oncall" and sent["answer"] == "HTTP 200"
    assert source.PatientID not in gateway.config.audit_log.read_text()


def test_a_server_error_is_retried_and_a_refusal_dead_lettered(config, phantom_study, capsys):
    from radbridge.cli import main

    flaky, refusing = HttpReceiver([503, 500]), HttpReceiver([403])
    targets = AlertTargets(
        webhook={
            "flaky": WebhookTarget(url=flaky.url, secret=SECRET, name="flaky"),
            "refusing": WebhookTarget(url=refusing.url, secret=SECRET, name="refusing"),
        }
    )
    gateway = alert_gateway(config, targets, names=["flaky", "refusing"])
    try:
        receive(gateway, files_of(phantom_study))
        run_until_alerted(gateway)
        flaky_row, refused_row = alerts(gateway)
        report = status(gateway.store)
        scraped = metric_samples(gateway, "radbridge_alerts")
        assert main(["gateway", "status", "--data-dir", str(gateway.config.data_dir)]) == 0
        printed = capsys.readouterr().out
        (job,) = query(gateway, "SELECT id, state FROM jobs")
        retried = gateway.store.retry_job(job["id"])  # the dead letter goes out again
        run_until_alerted(gateway)
        after = alerts(gateway)
    finally:
        gateway.close()
        flaky.stop()
        refusing.stop()
    assert (flaky_row["state"], flaky_row["attempts"]) == ("sent", 3)
    assert len(flaky.requests) == 3  # two 5xx, then taken
    assert len({r.body for r in flaky.requests}) == 1  # the same alert every time
    assert (refused_row["state"], refused_row["attempts"]) == ("failed", 1)
    assert "permanent" in refused_row["error"] and "HTTP 403" in refused_row["error"]
    assert report["alerts"] == {"failed": 1, "sent": 1}
    assert scraped == {"pending": 0.0, "sent": 1.0, "failed": 1.0}  # Prometheus agrees
    assert "alerts: failed 1, sent 1" in printed
    assert "alert of job 1 to refusing failed after 1 attempts: permanent" in printed
    (failure,) = report["alert_failures"]
    assert failure["destination"] == "refusing" and "403" in failure["error"]
    page = render_status(
        StatusView(report, [], Disk(1.0, 1.0, 0.0), [], "RADBRIDGE", now=time.time()), csrf=None
    )
    assert "Alerts: failed 1, sent 1; last instance → alert taken: median" in page
    failed = re.search(r'<table id="alert-failures">.*?</table>', page, flags=re.S)
    assert failed is not None and "refusing" in failed.group() and "HTTP 403" in failed.group()
    assert job["state"] == "done" and retried.state == "done"  # the DICOM results went out
    assert [a["state"] for a in after] == ["sent", "sent"]
    assert len(refusing.requests) == 2
    assert refusing.requests[0].body == refusing.requests[1].body  # same key, same alert


def test_fhir_endpoint_receives_a_diagnostic_report(config, phantom_study, model_result):
    server = HttpReceiver([500], fhir=True)
    target = FhirTarget(
        url=server.url, name="ris", patient_identifiers=True, patient_system="urn:oid:1.2.3.4"
    )
    gateway = alert_gateway(config, AlertTargets(fhir={"ris": target}), names=["ris"])
    (row,) = run_alerts(gateway, phantom_study, server)
    assert (row["state"], row["attempts"]) == ("sent", 2)
    first, second = server.requests
    assert first.body == second.body and first.headers["Content-Type"] == "application/fhir+json"
    bundle = Bundle.model_validate_json(second.body)  # fhir.resources parses it
    assert bundle.type == "transaction"
    resources = [e.resource for e in bundle.entry]
    report = resources[-1]
    observations = resources[:-1]
    assert report.get_resource_type() == "DiagnosticReport"
    assert {o.get_resource_type() for o in observations} == {"Observation"}
    assert len(observations) == len(expected_reasons(model_result))
    source = pydicom.dcmread(files_of(phantom_study)[0], stop_before_pixels=True)
    (study,) = report.imagingStudy
    assert study.identifier.value == f"urn:oid:{source.StudyInstanceUID}"
    assert [r.reference for r in report.result] == [e.fullUrl for e in bundle.entry[:-1]]
    assert report.subject.identifier.value == source.PatientID  # configured to receive it
    assert report.subject.identifier.system == "urn:oid:1.2.3.4"
    quantities = sorted(float(o.valueQuantity.value) for o in observations if o.valueQuantity)
    measured = sorted(v for kind, _, v in expected_reasons(model_result) if kind == "measurement")
    assert quantities == pytest.approx(measured)
    assert all(e.request.ifNoneExist for e in bundle.entry)  # conditional creates
    assert report.status == "preliminary"


def test_mllp_listener_acks_the_oru_and_a_nack_is_retried(config, phantom_study, model_result):
    listener = MllpListener(["AE", "AR"])
    target = Hl7Target(
        host="127.0.0.1", port=listener.port, name="ris", receiving_application="RIS"
    )
    gateway = alert_gateway(config, AlertTargets(hl7={"ris": target}), names=["ris"])
    try:
        receive(gateway, files_of(phantom_study))
        run_until_alerted(gateway)
        (row,) = alerts(gateway)
        failures = audit(gateway, "alert failed")
    finally:
        gateway.close()
        listener.stop()
    assert (row["state"], row["attempts"], row["answer"]) == ("sent", 3, "ACK AA")
    assert [f["state"] for f in failures] == ["pending", "pending"]
    assert "negative acknowledgement AE" in failures[0]["error"]
    assert len(listener.messages) == 3 and len(set(listener.messages)) == 1
    oru = parse_message(listener.messages[-1], find_groups=False)
    assert oru.msh.msh_9.to_er7() == "ORU^R01^ORU_R01"
    assert oru.msh.msh_5.to_er7() == "RIS"
    source = pydicom.dcmread(files_of(phantom_study)[0], stop_before_pixels=True)
    assert oru.obr.obr_3.to_er7() == source.StudyInstanceUID
    segments = [s.name for s in oru.children]
    assert "PID" not in segments  # not configured to receive patient identifiers
    assert source.PatientID not in listener.messages[-1]
    obx = [s for s in oru.children if s.name == "OBX"]
    assert len(obx) == 1 + len(expected_reasons(model_result))
    numeric = sorted(float(s.obx_5.to_er7()) for s in obx if s.obx_2.to_er7() == "NM")
    measured = sorted(v for kind, _, v in expected_reasons(model_result) if kind == "measurement")
    assert numeric == pytest.approx(measured, rel=1e-5)
    assert all(s.obx_8.to_er7() == "AA" for s in obx[1:])


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("hl7-certs"))


def _mllp_server_context(certs, cert="server"):
    """The listener's side: its certificate, and clients must show one signed by ca.pem."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs / "ca.pem")
    context.load_cert_chain(certs / f"{cert}.pem", certs / f"{cert}.key")
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _tls(certs):
    return TLSConfig(
        ca_file=certs / "ca.pem", cert_file=certs / "client.pem", key_file=certs / "client.key"
    )


def test_hl7_over_mutual_tls_reaches_the_listener(config, phantom_study, certs):
    listener = MllpListener(tls=_mllp_server_context(certs))
    target = Hl7Target(host="127.0.0.1", port=listener.port, name="ris", tls=_tls(certs))
    gateway = alert_gateway(config, AlertTargets(hl7={"ris": target}), names=["ris"])
    (row,) = run_alerts(gateway, phantom_study, listener)
    assert (row["state"], row["attempts"], row["answer"]) == ("sent", 1, "ACK AA")
    (message,) = listener.messages
    assert parse_message(message, find_groups=False).msh.msh_9.to_er7() == "ORU^R01^ORU_R01"
    assert listener.refused == 0


def test_hl7_to_a_listener_with_a_stranger_certificate_is_not_sent(config, phantom_study, certs):
    # a receiver radbridge's CA did not sign: no message leaves, the alert is retried
    # and dead-lettered with the reason
    listener = MllpListener(tls=_mllp_server_context(certs, cert="stranger"))
    target = Hl7Target(host="127.0.0.1", port=listener.port, name="ris", tls=_tls(certs))
    gateway = alert_gateway(
        config, AlertTargets(hl7={"ris": target}), names=["ris"], alert_attempts=2
    )
    (row,) = run_alerts(gateway, phantom_study, listener)
    failures = audit(gateway, "alert failed")
    assert (row["state"], row["attempts"]) == ("failed", 2)
    assert "TLS with the receiver failed (SSLCertVerificationError" in row["error"]
    assert [f["state"] for f in failures] == ["pending", "failed"]
    assert listener.messages == [] and listener.refused == 2


def test_hl7_tls_files_that_cannot_be_read_fail_when_the_config_loads(tmp_path, certs):
    from radbridge.gateway import load_gateway_config

    path = tmp_path / "g.toml"
    text = """
[[rules]]
name = "ct"
model = "reference-ct"
alert = ["ris"]
[rules.urgent]
model_flag = true
[alerts.hl7.ris]
host = "127.0.0.1"
port = 2575
[alerts.hl7.ris.tls]
ca_file = "{ca}"
"""
    path.write_text(text.format(ca=certs / "ca.pem"))
    loaded = load_gateway_config(path).alerts.hl7["ris"].tls
    assert loaded is not None and loaded.ca_file == certs / "ca.pem"
    path.write_text(text.format(ca=tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"missing\.pem is not a file") as caught:
        load_gateway_config(path)
    assert caught.value.attribute == "alerts.hl7.ris.tls.ca_file"


def test_hl7_names_the_patient_only_when_configured(config, phantom_study):
    listener = MllpListener()
    target = Hl7Target(host="127.0.0.1", port=listener.port, name="ris", patient_identifiers=True)
    gateway = alert_gateway(config, AlertTargets(hl7={"ris": target}), names=["ris"])
    try:
        receive(gateway, files_of(phantom_study))
        run_until_alerted(gateway)
        stored = query(gateway, "SELECT payload FROM alerts")[0][0]
    finally:
        gateway.close()
        listener.stop()
    (message,) = listener.messages
    oru = parse_message(message, find_groups=False)
    source = pydicom.dcmread(files_of(phantom_study)[0], stop_before_pixels=True)
    assert oru.pid.pid_3.to_er7() == source.PatientID
    assert oru.pid.pid_5.to_er7() == str(source.PatientName)
    assert oru.obr.obr_2.to_er7() == source.AccessionNumber
    assert source.PatientID not in stored and str(source.PatientName) not in stored


def test_a_result_that_is_not_urgent_sends_nothing(config, phantom_study):
    hook = HttpReceiver()
    calm = Urgency(measurements=(Threshold("volume", "L", label="lung_nodule", above=1.0),))
    target = WebhookTarget(url=hook.url, secret=SECRET, name="oncall")
    gateway = alert_gateway(
        config, AlertTargets(webhook={"oncall": target}), names=["oncall"], urgent=calm
    )
    try:
        receive(gateway, files_of(phantom_study))
        run_until_alerted(gateway)
        (job,) = query(gateway, "SELECT state FROM jobs")
        rows = alerts(gateway)
    finally:
        gateway.close()
        hook.stop()
    assert job["state"] == "done" and rows == [] and hook.requests == []


def test_a_job_run_twice_queues_one_alert(config, phantom_study):
    """A crash after the results were recorded re-runs the job: one alert, the same key."""
    hook = HttpReceiver()
    target = WebhookTarget(url=hook.url, secret=SECRET, name="oncall")
    gateway = alert_gateway(config, AlertTargets(webhook={"oncall": target}), names=["oncall"])
    try:
        receive(gateway, files_of(phantom_study))
        gateway.assemble_once()
        assert gateway.run_once()
        (first,) = alerts(gateway)
        with sqlite3.connect(gateway.config.database) as db:  # as if it crashed mid-delivery
            db.execute("UPDATE jobs SET state = 'running'")
        gateway.store.recover_jobs()
        assert gateway.run_once()
        (again,) = alerts(gateway)
        run_until_alerted(gateway)
    finally:
        gateway.close()
        hook.stop()
    assert again["idempotency_key"] == first["idempotency_key"]
    assert len(hook.requests) == 1


def test_an_alert_destination_must_exist_and_need_criteria(tmp_path, monkeypatch):
    from radbridge.gateway import load_gateway_config

    monkeypatch.setenv("HOOK_SECRET", SECRET)
    base = """
[[rules]]
name = "ct"
model = "reference-ct"
alert = ["oncall"]
{urgent}
[alerts.webhook.{name}]
url = "http://127.0.0.1:9/hook"
secret_env = "HOOK_SECRET"
"""
    path = tmp_path / "g.toml"
    path.write_text(base.format(urgent="[rules.urgent]\nmodel_flag = true", name="pager"))
    with pytest.raises(ConfigError, match=r"not an \[alerts\.KIND\.NAME\] table") as err:
        load_gateway_config(path)
    assert "pager" in str(err.value)
    path.write_text(base.format(urgent="", name="oncall"))
    with pytest.raises(ConfigError, match="no alert would ever be sent"):
        load_gateway_config(path)
    path.write_text(base.format(urgent="[rules.urgent]\nmodel_flag = true", name="oncall"))
    assert load_gateway_config(path).alerts.webhook["oncall"].secret == SECRET


def test_an_older_database_gains_the_alerts_table(tmp_path):
    path = tmp_path / "gateway.sqlite"
    store = Store(path)
    job = store.enqueue(
        "1.2.3", "1.2", version=1, rule="r", model="m", priority=0, instance_count=1
    )
    store.close()
    with sqlite3.connect(path) as db:  # what a schema-2 gateway left behind
        db.executescript(
            BEFORE_RETENTION
            + "DROP TABLE alerts; ALTER TABLE series DROP COLUMN holds; PRAGMA user_version = 2;"
        )
    upgraded = Store(path)
    try:
        assert upgraded.job(job).series_instance_uid == "1.2.3"  # nothing lost
        assert upgraded.alert_counts() == {}
        upgraded.start_delivering(job, [], (), alerts=[("hook", "2.25.1", "{}")])
        assert [a.target for a in upgraded.alerts_of(job)] == ["hook"]
    finally:
        upgraded.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8


def test_an_onnx_models_label_volume_makes_its_result_urgent(config, phantom_study, tmp_path):
    # an ONNX card gives labels only; with "measurements": ["volume"] a rule's volume
    # threshold can act on it, and the SR reports the volume
    card = write_card(tmp_path, measurements=["volume"])
    body = _body_volume_ml(files_of(phantom_study))  # counted with pydicom, below
    urgent = Urgency(measurements=(Threshold("volume", "mL", label="body", above=body / 2),))
    hook = HttpReceiver()
    target = WebhookTarget(url=hook.url, secret=SECRET, name="oncall")
    gateway = alert_gateway(
        config,
        AlertTargets(webhook={"oncall": target}),
        names=["oncall"],
        urgent=urgent,
        model=str(card),
    )
    try:
        receive(gateway, files_of(phantom_study))
        run_until_alerted(gateway, timeout=60)
        paths = [path for (path,) in query(gateway, "SELECT path FROM results")]
    finally:
        gateway.close()
        hook.stop()
    (request,) = hook.requests
    (reason,) = json.loads(request.body)["reasons"]
    assert (reason["kind"], reason["concept"]) == ("measurement", "volume")
    assert reason["value"] == pytest.approx(body, rel=1e-6)
    (sr_path,) = [p for p in paths if pydicom.dcmread(p, stop_before_pixels=True).Modality == "SR"]
    groups = hd.sr.srread(sr_path).content.get_volumetric_roi_measurement_groups()
    volumes = [
        (float(m.value), m.unit.value)
        for group in groups
        for m in group.get_measurements()
        if m.name.meaning.lower() == "volume"
    ]
    assert len(volumes) == 1 and volumes[0][1] == "mm3"
    assert volumes[0][0] == pytest.approx(body * 1000, rel=1e-6)


def _body_volume_ml(files):
    """The phantom's voxels above 0 HU times the voxel volume, from pydicom alone."""
    datasets = sorted(
        (pydicom.dcmread(path) for path in files), key=lambda ds: float(ds.ImagePositionPatient[2])
    )
    count = sum(
        int((ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) > 0).sum())
        for ds in datasets
    )
    rows, columns = (float(v) for v in datasets[0].PixelSpacing)
    first, second = (float(ds.ImagePositionPatient[2]) for ds in datasets[:2])
    gap = abs(second - first)
    return count * rows * columns * gap / 1000
