"""The gateway between a real Orthanc (the PACS) and itself: C-STORE in, results back."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace

import pydicom
import pytest

from radbridge.gateway import Gateway
from radbridge.gateway.store import JobState
from radbridge.net import Peer
from tests.gateway.conftest import query
from tests.gateway.processes import gateway_status, wait_until
from tests.peers import free_port, wait_for_port


def _series_modalities(orthanc, study_uid):
    (study,) = [
        s
        for s in orthanc.studies()
        if orthanc.get(f"/studies/{s}")["MainDicomTags"]["StudyInstanceUID"] == study_uid
    ]
    return sorted(
        orthanc.get(f"/series/{s}")["MainDicomTags"].get("Modality", "")
        for s in orthanc.get(f"/studies/{study}")["Series"]
    )


@pytest.mark.peer
@pytest.mark.slow
def test_orthanc_to_gateway_and_back(orthanc_factory, config, phantom_study):
    gateway_port = free_port()
    orthanc = orthanc_factory(modalities={"gateway": ("RADBRIDGE", "127.0.0.1", gateway_port)})
    pacs = Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port, name="pacs")
    rule = replace(config.rules[0], destinations=("pacs", "archive"))
    settings = replace(
        config, port=gateway_port, peers={"pacs": pacs}, rules=(rule,), quiet_period_s=0.5
    )
    orthanc.upload_many(sorted(phantom_study.dicom_dir.glob("*.dcm")))
    gateway = Gateway(settings)
    stop = threading.Event()
    serving = threading.Thread(target=gateway.serve, args=(stop,), daemon=True)
    serving.start()
    try:
        wait_for_port("127.0.0.1", gateway_port, timeout=30)
        orthanc.store_to("gateway", orthanc.studies())  # the PACS routes the study to us
        study_uid = phantom_study.study_instance_uid
        wait_until(
            lambda: {"SEG", "SR", "KO"} <= set(_series_modalities(orthanc, study_uid)),
            what="SEG, SR and KO in Orthanc",
        )
        # and Orthanc's QIDO-RS lists them in the same study
        qido = orthanc.get(
            f"/dicom-web/studies/{study_uid}/series", accept="application/dicom+json"
        )
        modalities = sorted(item["00080060"]["Value"][0] for item in qido)
        assert modalities == ["CT", "KO", "SEG", "SR"]
    finally:
        stop.set()
        serving.join(60)
    assert not serving.is_alive()
    (job,) = query(settings.database, "SELECT state FROM jobs")
    deliveries = query(
        settings.database, "SELECT destination, state, sop_instance_uid FROM deliveries"
    )
    assert job["state"] == JobState.DONE
    pacs_uids = {d["sop_instance_uid"] for d in deliveries if d["destination"] == "pacs"}
    assert pacs_uids and pacs_uids <= orthanc.sop_instance_uids()
    # what Orthanc holds is what the gateway archived, byte for byte
    for uid in pacs_uids:
        (found,) = orthanc.lookup(uid)
        stored = pydicom.dcmread(io.BytesIO(orthanc.instance_bytes(found["ID"])))
        archived = next(settings.archive_dir.rglob(f"{uid}.dcm"))
        assert stored == pydicom.dcmread(archived)


@pytest.mark.peer
@pytest.mark.slow
def test_gateway_run_command_with_send_and_status(orthanc, phantom_study, tmp_path):
    """The one-command deployment: `radbridge gateway run`, fed by `radbridge send`."""
    port = free_port()
    data = tmp_path / "data"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[gateway]
data_dir = "data"
port = {port}
quiet_period_s = 0.5

[[rules]]
name = "ct"
model = "reference-ct"
outputs = ["seg"]
destinations = ["pacs"]
[rules.match]
modality = ["CT"]

[peers.pacs]
ae_title = "ORTHANC"
host = "127.0.0.1"
port = {orthanc.dicom_port}
"""
    )
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "radbridge", "gateway", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60, proc=proc)
        sent = subprocess.run(
            [
                sys.executable,
                "-m",
                "radbridge",
                "send",
                str(phantom_study.dicom_dir),
                "--to",
                f"RADBRIDGE@127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sent.returncode == 0, sent.stderr

        def delivered():
            report = gateway_status(config)
            return report if report["queue"].get("done") == 1 and report["latency_s"] else None

        report = wait_until(delivered, 180, what="a delivered job")
        assert report["received"]["instances"] == 24
        assert "SEG" in _series_modalities(orthanc, phantom_study.study_instance_uid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    text = (tmp_path / "gateway.log").read_text()
    assert proc.returncode == 0, text
    assert "gateway stopped" in text
    # no patient data in the gateway's own output or audit log
    for line in (text, (data / "audit.jsonl").read_text()):
        assert "Phantom^" not in line and "RB-PHANTOM" not in line


@pytest.mark.peer
def test_results_delivered_by_stow_rs(orthanc, config, phantom_study):
    from tests.gateway.conftest import query, receive
    from tests.gateway.test_core import files_of, run_until_idle

    pacs = Peer(
        "ORTHANC",
        "127.0.0.1",
        orthanc.dicom_port,
        name="pacs",
        dicomweb_url=orthanc.dicomweb_url,
        transport="dicomweb",
    )
    rule = replace(config.rules[0], destinations=("pacs",), outputs=("seg", "sr"))
    gateway = Gateway(replace(config, peers={"pacs": pacs}, rules=(rule,)))
    try:
        receive(gateway, files_of(phantom_study))
        run_until_idle(gateway)
        (job,) = query(gateway, "SELECT state FROM jobs")
        assert job["state"] == JobState.DONE
        uids = {r["sop_instance_uid"] for r in query(gateway, "SELECT * FROM deliveries")}
    finally:
        gateway.close()
    assert len(uids) == 2 and uids <= orthanc.sop_instance_uids()


@pytest.mark.peer
def test_results_reach_a_pacs_that_accepts_only_implicit_vr(orthanc_factory, config, phantom_study):
    """Orthanc accepting only the Default Transfer Syntax (PS3.5 10.1) gets SEG, SR and KO.

    radbridge writes them in Explicit VR Little Endian; it proposes both uncompressed
    syntaxes and re-encodes each for the one accepted: what Orthanc stores reads back
    equal to what the gateway archived, apart from the transfer syntax.
    """
    from tests.gateway.conftest import receive
    from tests.gateway.test_core import files_of, run_until_idle

    orthanc = orthanc_factory(extra={"AcceptedTransferSyntaxes": ["1.2.840.10008.1.2"]})
    pacs = Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port, name="pacs")
    rule = replace(config.rules[0], destinations=("pacs",), outputs=("seg", "sr", "ko"))
    gateway = Gateway(replace(config, peers={"pacs": pacs}, rules=(rule,)))
    try:
        receive(gateway, files_of(phantom_study))
        run_until_idle(gateway)
        (job,) = query(gateway, "SELECT state, error FROM jobs")
        deliveries = query(gateway, "SELECT state, path, sop_instance_uid FROM deliveries")
    finally:
        gateway.close()
    assert job["state"] == JobState.DONE, job["error"]
    assert len(deliveries) == 3 and {d["state"] for d in deliveries} == {"delivered"}
    modalities = set()
    for delivery in deliveries:
        (found,) = orthanc.lookup(delivery["sop_instance_uid"])
        stored = pydicom.dcmread(io.BytesIO(orthanc.instance_bytes(found["ID"])))
        sent = pydicom.dcmread(delivery["path"])
        assert stored.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
        assert sent.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        if "PixelData" in sent:  # Implicit VR names no VR: Pixel Data reads back as OW
            assert stored["PixelData"].VR == "OW"
            stored["PixelData"].VR = sent["PixelData"].VR
        assert stored == sent  # data sets compare equal; the file meta is not compared
        modalities.add(stored.Modality)
    assert modalities == {"SEG", "SR", "KO"}
