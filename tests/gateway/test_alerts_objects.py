"""An urgent result says so in its DICOM objects: the KOS is titled DCM 113002 "For
Referring Provider" and the TID 1500 SR holds a report-level "Qualitative Evaluations"
container with SCT 260870009 "Priority" = SCT 103391001 "Urgent"; a routine result keeps
"Of Interest" and no such container. Read with pydicom's raw data sets and DCMTK's
dsrdump; dciodvfy and PixelMed's SR validator check the urgent objects.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pydicom
import pytest

from radbridge.gateway import GatewayConfig
from radbridge.gateway.triage import Urgency
from radbridge.net import AlertTargets
from radbridge.sr import read_measurement_report, report_from_json, report_to_json
from tests.peers.dcmtk import dsrdump
from tests.peers.dicom3tools import dciodvfy
from tests.peers.pixelmed import validate_sr

from .conftest import receive
from .test_alerts import alert_gateway, files_of, run_until_alerted


def run_rule(config, study, urgent):
    gateway = alert_gateway(config, AlertTargets(), names=(), urgent=urgent)
    try:
        receive(gateway, files_of(study))
        run_until_alerted(gateway)
    finally:
        gateway.close()
    outbox = gateway.config.outbox_dir
    return next(outbox.rglob("sr.dcm")), next(outbox.rglob("ko.dcm"))


def root_evaluations(sr):
    """(concept, value) code values of the root's Qualitative Evaluations container."""
    found = []
    for item in sr.ContentSequence:
        concept = item.ConceptNameCodeSequence[0]
        if item.ValueType == "CONTAINER" and concept.CodeValue == "C0034375":
            assert concept.CodingSchemeDesignator == "UMLS"
            for child in item.ContentSequence:
                value = child.ConceptCodeSequence[0]
                found.append(
                    (child.ConceptNameCodeSequence[0].CodeValue, value.CodeValue, child.ValueType)
                )
    return found


@pytest.fixture(scope="module")
def urgent_objects(tmp_path_factory, phantom_study):
    config = replace(
        GatewayConfig.default(tmp_path_factory.mktemp("urgent") / "data"),
        quiet_period_s=0.0,
    )
    return run_rule(config, phantom_study, Urgency(findings=("lung nodule: present",)))


def test_an_urgent_result_marks_its_kos_and_sr(urgent_objects):
    sr_path, ko_path = urgent_objects
    ko = pydicom.dcmread(ko_path)
    title = ko.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("113002", "DCM")
    sr = pydicom.dcmread(sr_path)
    assert root_evaluations(sr) == [("260870009", "103391001", "CODE")]
    (evaluation,) = read_measurement_report(sr).evaluations
    assert (evaluation.concept.value, evaluation.value.value) == ("260870009", "103391001")
    report = read_measurement_report(sr)
    again = report_from_json(json.loads(json.dumps(report_to_json(report))))
    assert again.evaluations == report.evaluations


def test_a_routine_result_keeps_of_interest(config, phantom_study):
    calm = Urgency(findings=("lung nodule: absent",))  # the phantom has nodules
    sr_path, ko_path = run_rule(config, phantom_study, calm)
    assert pydicom.dcmread(ko_path).ConceptNameCodeSequence[0].CodeValue == "113000"
    assert root_evaluations(pydicom.dcmread(sr_path)) == []
    assert read_measurement_report(pydicom.dcmread(sr_path)).evaluations == ()


@pytest.mark.peer
@pytest.mark.slow
def test_validators_accept_the_urgent_kos_and_sr(urgent_objects):
    sr_path, ko_path = urgent_objects
    for path in (sr_path, ko_path):
        result = dciodvfy(path)
        assert not result.errors, result.summary()
        assert dsrdump(path, "+Pt").returncode == 0
    tree = dsrdump(sr_path).stdout
    assert "Qualitative Evaluations" in tree and "Urgent" in tree and "Priority" in tree
    assert "For Referring Provider" in dsrdump(ko_path).stdout
    for path, result in validate_sr([sr_path, ko_path]).items():
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert not errors, (path.name, errors[:3])
