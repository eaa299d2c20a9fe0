"""Alerts as FHIR R4 resources: a DiagnosticReport with Observations, referring to the ImagingStudy.

:func:`fhir_bundle` builds a ``transaction`` Bundle with one ``Observation`` per
reason (interpretation ``AA`` critical abnormal) and a ``DiagnosticReport``
(status ``preliminary``: no radiologist has signed it; category ``RAD``; code
LOINC 18748-4) whose ``imagingStudy`` refers to the study by its DICOM Study
Instance UID (identifier system ``urn:dicom:uid``) and whose ``conclusion`` says
why the result is urgent. The resources are built and validated with
fhir.resources (the R4B models, which R4 servers read). Every entry is a
conditional create (``ifNoneExist`` on an identifier derived from the alert's
idempotency key), so a re-send after a crash creates nothing new on the server.
The ``subject`` (a patient identifier and name) and the accession number are
included only for a destination with ``patient_identifiers = true``.

Examples
--------
>>> from radbridge.net.alerts.message import AlertMessage, AlertReason
>>> reason = AlertReason("finding", "hemorrhage", "present")
>>> message = AlertMessage("2.25.7", "ct", "m", 1, "1.2", "1.2.3", (reason,),
...                        "2026-01-01T00:00:00Z")
>>> bundle = fhir_bundle(message)
>>> [e.resource.get_resource_type() for e in bundle.entry]
['Observation', 'DiagnosticReport']
>>> bundle.entry[1].resource.imagingStudy[0].identifier.value
'urn:oid:1.2'
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from radbridge._optional import require
from radbridge.coding import Code
from radbridge.net.alerts.message import AlertMessage, AlertReason
from radbridge.net.alerts.posting import alert_error, post_json
from radbridge.net.alerts.settings import FhirTarget

__all__ = ["fhir_bundle", "send_fhir"]

DICOM_UID = "urn:dicom:uid"
_SYSTEMS = {
    "SCT": "http://snomed.info/sct",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "LN": "http://loinc.org",
    "UCUM": "http://unitsofmeasure.org",
}
_CRITICAL = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": "AA",
            "display": "Critical abnormal",
        }
    ]
}
_IMAGING = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "imaging",
        }
    ]
}
_RADIOLOGY = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]
}
_IMAGING_STUDY = {"coding": [{"system": "http://loinc.org", "code": "18748-4"}]}


def _concept(text: str, code: Code | None) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if code is not None and code.scheme in _SYSTEMS:
        concept["coding"] = [
            {"system": _SYSTEMS[code.scheme], "code": code.value, "display": code.meaning}
        ]
    return concept


def _value(reason: AlertReason) -> dict[str, Any]:
    if reason.kind == "measurement":
        quantity: dict[str, Any] = {"value": float(reason.value), "unit": reason.unit}
        if reason.unit:
            quantity |= {"system": _SYSTEMS["UCUM"], "code": reason.unit}
        return {"valueQuantity": quantity}
    if reason.kind == "flag":
        return {"valueBoolean": True}
    return {"valueCodeableConcept": _concept(str(reason.value), reason.value_code)}


def _identifier(value: str) -> dict[str, str]:
    return {"system": DICOM_UID, "value": f"urn:oid:{value}"}


def _entry(resource: dict[str, Any], full_url: str, identifier: dict[str, str]) -> dict[str, Any]:
    search = urlencode({"identifier": f"{identifier['system']}|{identifier['value']}"})
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": search},
    }


def _subject(message: AlertMessage, system: str) -> dict[str, Any]:
    patient = message.patient
    if patient is None or not patient.patient_id:
        return {}
    reference = {
        "type": "Patient",
        "identifier": {"system": system, "value": patient.patient_id},
        # the DICOM name's alphabetic group (before any ideographic "=" group)
        "display": " ".join(patient.name.split("=")[0].replace("^", " ").split()),
    }
    return {"subject": reference}


def _observation(
    message: AlertMessage, reason: AlertReason, number: int, system: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "identifier": [_identifier(f"{message.key}.{number}")],
        "status": "preliminary",
        "category": [_IMAGING],
        "code": _concept(
            reason.concept + (f" ({reason.label})" if reason.label else ""), reason.concept_code
        ),
        "interpretation": [_CRITICAL],
        "note": [{"text": reason.text}],
        "derivedFrom": [
            {"type": "ImagingStudy", "identifier": _identifier(message.study_instance_uid)}
        ],
        **_value(reason),
        **_subject(message, system),
    }


def _report(message: AlertMessage, results: list[str], system: str) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = [_identifier(message.key)]
    if message.patient is not None and message.patient.accession_number:
        identifiers.append(
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}
                    ]
                },
                "value": message.patient.accession_number,
            }
        )
    return {
        "resourceType": "DiagnosticReport",
        "identifier": identifiers,
        "status": "preliminary",
        "category": [_RADIOLOGY],
        "code": _IMAGING_STUDY | {"text": "Diagnostic imaging study"},
        "issued": message.created,
        "imagingStudy": [
            {"type": "ImagingStudy", "identifier": _identifier(message.study_instance_uid)}
        ],
        "result": [{"reference": url} for url in results],
        "conclusion": message.summary,
        **_subject(message, system),
    }


def fhir_bundle(message: AlertMessage, *, patient_system: str = "urn:radbridge:patient-id") -> Any:
    """Return the alert as a validated fhir.resources R4B ``Bundle`` (type ``transaction``).

    Raises
    ------
    OptionalDependencyError
        fhir.resources is not installed (``pip install 'radbridge[alerts]'``).
    """
    bundle_model = require("fhir.resources.R4B.bundle", "alerts", purpose="build FHIR alerts")
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, message.key)
    urls = [f"urn:uuid:{uuid.uuid5(namespace, str(n))}" for n in range(len(message.reasons) + 1)]
    entries = []
    for number, reason in enumerate(message.reasons, start=1):
        observation = _observation(message, reason, number, patient_system)
        entries.append(_entry(observation, urls[number], observation["identifier"][0]))
    report = _report(message, urls[1:], patient_system)
    entries.append(_entry(report, urls[0], report["identifier"][0]))
    document = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return bundle_model.Bundle.model_validate(document)


def _check_answer(url: str, text: str, entries: int) -> str:
    try:
        answer = json.loads(text)
        statuses = [str(e["response"]["status"]) for e in answer["entry"]]
        kind = (answer["resourceType"], answer["type"])
    except (ValueError, KeyError, TypeError, AttributeError):
        statuses, kind = [], ("", "")
    if kind != ("Bundle", "transaction-response") or len(statuses) != entries:
        raise alert_error(
            "the server's answer is not a transaction-response Bundle for every entry",
            url=url,
            permanent=False,
        )
    failed = [s for s in statuses if not s.startswith("2")]
    if failed:
        raise alert_error(
            f"the server refused entries ({', '.join(failed)})", url=url, permanent=False
        )
    return ", ".join(statuses)


def send_fhir(target: FhirTarget, message: AlertMessage) -> str:
    """POST the alert's transaction Bundle to the server's base URL; return the entry statuses.

    Raises
    ------
    SendError
        No 2xx answer, or an entry of the transaction-response that is not 2xx.
    """
    bundle = fhir_bundle(message, patient_system=target.patient_system)
    body = bundle.model_dump_json(exclude_none=True).encode()
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    response = post_json(target.url.rstrip("/"), body, headers=headers, timeout_s=target.timeout_s)
    answer = _check_answer(target.url, response.text, len(bundle.entry))
    return f"HTTP {response.status_code}: {answer}"
