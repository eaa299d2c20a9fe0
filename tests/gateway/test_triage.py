"""What makes a result urgent (radbridge.gateway.triage), and the alert senders' edges:
HL7 delimiters escaped, the FHIR subject only with patient identifiers, HTTP and MLLP
failures sorted into temporary and permanent."""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import replace

import pytest
from fhir.resources.R4B.bundle import Bundle
from hl7apy.parser import parse_message

from radbridge.coding import Code
from radbridge.errors import ConfigError, SendError
from radbridge.gateway.triage import Threshold, Urgency, convert_unit
from radbridge.models import Finding, ModelMeasurement, ModelResult
from radbridge.net import (
    AlertMessage,
    AlertPatient,
    AlertReason,
    FhirTarget,
    Hl7Target,
    WebhookTarget,
    send_alert,
)
from radbridge.net.alerts.fhir import fhir_bundle
from radbridge.net.alerts.hl7 import control_id, oru_message

from .alert_receivers import HttpReceiver, MllpListener

HEMORRHAGE = Code("50960005", "SCT", "Hemorrhage")
PRESENT = Code("121053", "DCM", "Present")


def result(**fields):
    return ModelResult(segments={3: "bleed", 4: "lesion"}, **fields)


@pytest.mark.parametrize(
    "criterion", ["hemorrhage: present", "HEMORRHAGE : Present", "50960005: 121053"]
)
def test_a_finding_matches_by_text_code_meaning_or_code_value(criterion):
    coded = Finding("ich", "yes", concept_code=HEMORRHAGE, value_code=PRESENT, label=3)
    (reason,) = Urgency(findings=(criterion,)).reasons(result(findings=(coded,)))
    assert (reason.kind, reason.label, reason.concept_code) == ("finding", "bleed", HEMORRHAGE)


def test_a_finding_with_another_value_is_not_urgent():
    absent = Finding("hemorrhage", "absent")
    assert Urgency(findings=("hemorrhage: present",)).reasons(result(findings=(absent,))) == ()


@pytest.mark.parametrize(
    "described",
    [
        "Bleed",
        {"name": "bleed"},
        {"label": "Bleed", "category": {}, "type": {}},
        {"label": "Bleed", "name": "hemorrhage"},
    ],
)
def test_a_threshold_names_its_segment_however_the_model_described_it(described):
    """Segments as names, as {"name": ...} table entries or as {"label": ...} specs."""
    volume = ModelMeasurement("volume", 12.0, "mL", label=3)
    threshold = Threshold("volume", "mL", label="bleed", above=10.0)
    found = ModelResult(segments={3: described}, measurements=(volume,))
    (reason,) = Urgency(measurements=(threshold,)).reasons(found)
    assert (reason.kind, reason.label) == ("measurement", "bleed")


@pytest.mark.parametrize(
    ("threshold", "value", "unit", "urgent"),
    [
        (Threshold("volume", "mL", label="bleed", above=10), 10001.0, "mm3", True),
        (Threshold("volume", "mL", label="bleed", above=10), 10000.0, "mm3", False),
        (Threshold("volume", "mL", label="bleed", at_least=10), 10000.0, "mm3", True),
        (Threshold("long axis", "mm", at_least=6), 0.6, "cm", True),
        (Threshold("long axis", "mm", at_least=6), 0.59, "cm", False),
        (Threshold("volume", "mL", label="3", above=1), 2.0, "cm3", True),  # label by number
        (Threshold("volume", "mL", label="lesion", above=1), 5000.0, "mm3", False),  # other
        (Threshold("volume", "mL", above=1), 5000.0, "mm", False),  # units do not convert
        (Threshold("mean", "[hnsf'U]", above=60), 70.0, "[hnsf'U]", True),  # same unit
    ],
)
def test_a_measurement_over_its_threshold(threshold, value, unit, urgent):
    name = threshold.measurement
    measured = ModelMeasurement(name, value, unit, label=3)
    reasons = Urgency(measurements=(threshold,)).reasons(result(measurements=(measured,)))
    assert bool(reasons) is urgent
    if urgent:
        (reason,) = reasons
        assert reason.unit == threshold.unit
        assert reason.value == pytest.approx(convert_unit(value, unit, threshold.unit))
        assert reason.criterion == threshold.criterion


def test_the_models_own_flag():
    flagged = Urgency(model_flag=True)
    assert [r.kind for r in flagged.reasons(result(urgent=True))] == ["flag"]
    assert flagged.reasons(result(urgent=False)) == ()
    assert Urgency().reasons(result(urgent=True)) == ()  # the rule did not ask for it


@pytest.mark.parametrize(
    ("fields", "attribute"),
    [
        ({"measurement": "volume", "unit": "mL"}, "urgent.measurements"),
        ({"measurement": "volume", "unit": "mL", "above": 1, "at_least": 1}, "urgent.measurements"),
        ({"measurement": "volume", "unit": "", "above": 1}, "urgent.unit"),
    ],
)
def test_a_threshold_needs_one_limit_and_a_unit(fields, attribute):
    with pytest.raises(ConfigError) as err:
        Threshold(**fields)
    assert err.value.attribute == attribute


def test_a_finding_criterion_needs_concept_and_value():
    with pytest.raises(ConfigError, match="concept: value"):
        Urgency(findings=("hemorrhage",))


def message(patient=None, concept="volume"):
    reasons = (
        AlertReason("measurement", concept, 12.5, unit="mL", label="bleed", criterion="x > 1"),
        AlertReason("finding", "ich", "present", concept_code=HEMORRHAGE, value_code=PRESENT),
    )
    return AlertMessage(
        "2.25.99",
        "ct",
        "m",
        2,
        "1.2.840.99.1",
        "1.2.840.99.1.2",
        reasons,
        "2026-12-06T05:00:00Z",
        patient=patient,
    )


PATIENT = AlertPatient("MRN|42", "HOSP", "Doe^Jane", "19700101", "F", "ACC^7")


def test_hl7_escapes_delimiters_and_names_the_patient_only_when_configured():
    target = Hl7Target(host="h", port=1, patient_identifiers=True)
    er7 = oru_message(message(PATIENT, concept="a|b^c&d~e\\f"), target)
    oru = parse_message(er7, find_groups=False)
    obx = [s for s in oru.children if s.name == "OBX"]
    assert len(obx) == 3 and len(obx[1].children) >= 6  # no field shifted by a delimiter
    assert obx[1].obx_3.to_er7() == r"^a\F\b\S\c\T\d\R\e\E\f"
    assert oru.pid.pid_3.to_er7() == r"MRN\F\42^^^HOSP"
    assert oru.pid.pid_5.to_er7() == "Doe^Jane"
    assert oru.obr.obr_2.to_er7() == r"ACC\S\7"
    assert oru.msh.msh_10.to_er7() == hashlib.sha256(b"2.25.99").hexdigest()[:20]
    hidden = oru_message(message(PATIENT), Hl7Target(host="h", port=1))
    assert "PID" not in hidden and "MRN" not in hidden and "ACC" not in hidden


def _hl7_with(patient=None, value=12.5):
    reason = AlertReason("measurement", "volume", value, unit="mm3", label="liver")
    alert = replace(message(patient), reasons=(reason,))
    er7 = oru_message(alert, Hl7Target(host="h", port=1, patient_identifiers=True))
    return parse_message(er7, find_groups=False)


@pytest.mark.parametrize(
    ("dicom", "family", "given", "middle", "suffix", "prefix"),
    [
        ("Doe^John^Q^Dr^Jr", "Doe", "John", "Q", "Jr", "Dr"),  # prefix and suffix were swapped
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada", "Tarou", "", "", ""),  # groups leaked
    ],
)
def test_hl7_pid5_is_the_dicom_name_in_xpn_component_order(
    dicom, family, given, middle, suffix, prefix
):
    oru = _hl7_with(replace(PATIENT, name=dicom))
    # hl7apy names the XPN components: 4 is the suffix, 5 the prefix (HL7 v2.5 2.A.88)
    found = {c.name: c.to_er7() for c in oru.pid.pid_5.children}
    assert found.get("XPN_1", "") == family and found.get("XPN_2", "") == given
    assert found.get("XPN_3", "") == middle
    assert found.get("XPN_4", "") == suffix and found.get("XPN_5", "") == prefix
    assert [c.long_name for c in oru.pid.pid_5.children][3:5] in (
        [],
        ["SUFFIX_E_G_JR_OR_III", "PREFIX_E_G_DR"],
    )


@pytest.mark.parametrize(
    ("value", "nm"), [(1534000.0, "1534000"), (0.00004, "0.00004"), (12.5, "12.5")]
)
def test_hl7_nm_values_are_plain_decimals(value, nm):
    # an HL7 NM is digits with an optional sign and point: "1.534e+06" is not one
    oru = _hl7_with(value=value)
    obx = [s for s in oru.children if s.name == "OBX"][1]
    assert obx.obx_2.to_er7() == "NM" and obx.obx_5.to_er7() == nm
    assert re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", obx.obx_5.to_er7())


def test_hl7_times_carry_their_utc_offset():
    # created is UTC; an HL7 time without an offset is the sender's local time
    oru = _hl7_with()
    assert oru.msh.msh_7.to_er7() == "20261206050000+0000"
    assert oru.obr.obr_7.to_er7() == "20261206050000+0000"


def test_fhir_subject_and_accession_only_with_a_patient_block():
    plain = Bundle.model_validate_json(fhir_bundle(message()).model_dump_json())
    report = plain.entry[-1].resource
    assert report.subject is None and len(report.identifier) == 1
    named = fhir_bundle(message(PATIENT), patient_system="urn:oid:1.2.3")
    report = named.entry[-1].resource
    assert (report.subject.identifier.system, report.subject.identifier.value) == (
        "urn:oid:1.2.3",
        "MRN|42",
    )
    assert report.identifier[1].value == "ACC^7"
    # Reference.type is a FHIR resource type (R4 Reference.type, binding resource-types)
    assert report.subject.type == "Patient"
    assert named.entry[0].resource.subject.type == "Patient"
    assert report.subject.display == "Doe Jane"
    grouped = fhir_bundle(message(replace(PATIENT, name="Yamada^Tarou=山田^太郎")))
    assert grouped.entry[-1].resource.subject.display == "Yamada Tarou"
    coded = named.entry[1].resource.code.coding[0]
    assert (coded.system, coded.code) == ("http://snomed.info/sct", "50960005")


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (404, True), (429, False), (503, False)]
)
def test_webhook_failures_are_sorted(status, permanent):
    hook = HttpReceiver([status])
    try:
        with pytest.raises(SendError) as err:
            send_alert(WebhookTarget(url=hook.url, secret="k"), message())
    finally:
        hook.stop()
    assert err.value.permanent is permanent and f"HTTP {status}" in str(err.value)
    assert "12.5" not in str(err.value)  # the body never goes into an error


def test_no_listener_is_a_temporary_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    for target in (
        WebhookTarget(url=f"http://127.0.0.1:{port}/hook", secret="k", timeout_s=2),
        FhirTarget(url=f"http://127.0.0.1:{port}/fhir", timeout_s=2),
        Hl7Target(host="127.0.0.1", port=port, timeout_s=2),
    ):
        with pytest.raises(SendError) as err:
            send_alert(target, message())
        assert err.value.permanent is False


def test_fhir_refused_entries_or_no_transaction_response_are_a_failure():
    refusing, plain = HttpReceiver(fhir=True), HttpReceiver()  # plain answers 200 {}
    refusing.server.state.entry_status = "422 Unprocessable Entity"
    try:
        with pytest.raises(SendError, match=r"refused entries \(422"):
            send_alert(FhirTarget(url=refusing.url), message())
        with pytest.raises(SendError, match="not a transaction-response"):
            send_alert(FhirTarget(url=plain.url), message())
        taker = HttpReceiver(fhir=True)
        try:
            answer = send_alert(FhirTarget(url=taker.url), message())
        finally:
            taker.stop()
    finally:
        refusing.stop()
        plain.stop()
    assert answer == "HTTP 200: 201 Created, 201 Created, 201 Created"


def test_an_ack_for_another_message_is_not_taken():
    listener = MllpListener(["AA:other", "AA"])
    target = Hl7Target(host="127.0.0.1", port=listener.port)
    try:
        with pytest.raises(SendError, match="acknowledgement is for message 'OTHER'") as err:
            send_alert(target, message())
        assert err.value.permanent is False
        assert send_alert(target, message()) == "ACK AA"
    finally:
        listener.stop()
    sent = parse_message(listener.messages[-1], find_groups=False)
    assert sent.msh.msh_10.to_er7() == control_id(message())


def test_a_missing_alerts_extra_refuses_to_start(tmp_path, monkeypatch):
    import sys

    from radbridge.gateway import load_gateway_config

    monkeypatch.setitem(sys.modules, "hl7apy", None)  # as if not installed
    path = tmp_path / "g.toml"
    path.write_text(
        '[[rules]]\nname = "ct"\nmodel = "reference-ct"\nalert = ["ris"]\n'
        '[rules.urgent]\nmodel_flag = true\n[alerts.hl7.ris]\nhost = "ris"\nport = 2575\n'
    )
    with pytest.raises(ConfigError, match="hl7apy") as err:
        load_gateway_config(path)
    assert "radbridge[alerts]" in str(err.value) and err.value.attribute == "alert"
