"""Critical-finding alerts in the gateway: queue them with a job's results, send them durably.

When a job's result meets its rule's ``urgent`` criteria
(:mod:`radbridge.gateway.triage`), :func:`alert_rows` makes one alert per
destination named by the rule's ``alert`` list. They are queued in the very
transaction that records the results (so a crash cannot lose them or queue them
twice), and :func:`send_queued_alert` sends one through
:func:`radbridge.net.alerts.send_alert` — the gateway's alert loop retries
temporary failures with the delivery backoff and dead-letters the rest.

The idempotency key is a UID derived from the series, version and rule (the
job): a re-send after a crash carries the same key (webhook ``Idempotency-Key``,
FHIR conditional create, HL7 ``MSH-10``). What is stored is UIDs, codes and
values; a destination with ``patient_identifiers = true`` gets the patient block
read from the source header at send time, never stored or logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from pydicom import dcmread

from radbridge.attributes import text_value
from radbridge.errors import ConfigError, SendError
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.routing import Rule
from radbridge.gateway.runner import JobOutput
from radbridge.gateway.store import Alert, Job, Store
from radbridge.net import AlertMessage, AlertPatient, AlertTarget, send_alert
from radbridge.uids import derived_uid

__all__ = ["AlertSender", "alert_key", "alert_rows", "patient_of", "send_queued_alert"]

#: Sends one alert to one destination; returns what the destination answered.
AlertSender = Callable[[AlertTarget, AlertMessage], str]

_PATIENT_TAGS = (
    "PatientID",
    "IssuerOfPatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
)


def alert_key(job: Job) -> str:
    """Return the idempotency key of ``job``'s alert: a UID from series, version and rule."""
    return derived_uid(job.series_instance_uid, str(job.version), job.rule, "alert")


def alert_rows(job: Job, rule: Rule, output: JobOutput) -> list[tuple[str, str, str]]:
    """Return ``(destination, key, payload)`` for each of the rule's alert destinations.

    Empty when the result is not urgent or the rule sends no alert.
    """
    if not output.reasons or not rule.alert:
        return []
    message = AlertMessage(
        key=alert_key(job),
        rule=rule.name,
        model=rule.model,
        version=job.version,
        study_instance_uid=job.study_instance_uid,
        series_instance_uid=job.series_instance_uid,
        reasons=output.reasons,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        results=tuple((f.kind, f.sop_instance_uid) for f in output.files),
    )
    payload = message.to_json()
    return [(name, message.key, payload) for name in rule.alert]


def patient_of(path: str | Path) -> AlertPatient:
    """Read the patient and order identifiers from a source instance's header."""
    ds = dcmread(path, stop_before_pixels=True, specific_tags=list(_PATIENT_TAGS))

    text = partial(text_value, ds)
    return AlertPatient(
        patient_id=text("PatientID"),
        issuer_of_patient_id=text("IssuerOfPatientID"),
        name=text("PatientName"),
        birth_date=text("PatientBirthDate"),
        sex=text("PatientSex"),
        accession_number=text("AccessionNumber"),
    )


def _refuse_purged(alert: Alert, job: Job, purged_at: float | None) -> None:
    """Refuse, for good, an alert whose patient block would be read from removed files."""
    if purged_at is None:
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(purged_at))
    failure = SendError(
        f"the alert of job {job.id} to {alert.target} names the patient, read from the "
        f"spool files of version {job.version} of series {job.series_instance_uid}; the "
        f"retention sweep removed them at {when}",
        attribute="spool_retention_h",
        hint="send the series to the gateway again: its new version alerts again",
    )
    failure.permanent = True
    raise failure


def send_queued_alert(
    alert: Alert, store: Store, config: GatewayConfig, sender: AlertSender = send_alert
) -> str:
    """Send one queued alert once; return the destination's answer.

    Raises
    ------
    ConfigError
        The destination is no longer configured (permanent).
    SendError
        The destination names the patient (``patient_identifiers``) and the
        retention sweep removed the spool files the patient block is read from
        (permanent).
    AlertError
        The destination did not take it (``permanent`` tells whether to retry).
    """
    target = config.alerts.get(alert.target)
    if target is None:
        raise ConfigError(
            f"alert destination {alert.target!r} is no longer configured",
            attribute="alerts",
            hint="add it back under [alerts.KIND.NAME] and `radbridge gateway retry JOB`",
        )
    message = AlertMessage.from_json(alert.payload)
    if target.patient_identifiers:
        job = store.job(alert.job_id)
        _refuse_purged(alert, job, store.version_purged_at(job.series_instance_uid, job.version))
        inputs = store.version_inputs(job.series_instance_uid, job.version)
        message = message.with_patient(patient_of(inputs[0].path) if inputs else None)
    return sender(target, message)
