"""`kill -9` of a real `radbridge gateway run` at each stage, then restart.

What must hold: an instance the gateway acknowledged is never lost; a result is never
lost; a result delivered twice carries the same UIDs (never a second object with new
UIDs); a PACS that is down gets the results once it is back.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pytest

from tests.gateway.processes import STORESCU, GatewayProcess, db_rows, wait_until, write_config
from tests.peers import free_port
from tests.peers.dcmtk import start_storescp

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def storescu_async(folder: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [STORESCU, "-v", "-aec", "RADBRIDGE", "+sd", "-R", "127.0.0.1", str(port), str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TCP_NODELAY": "1"},
    )


def test_kill_9_while_receiving_loses_no_acknowledged_instance(tmp_path, phantom_study):
    port, pacs_port = free_port(), free_port()
    config = write_config(tmp_path, port=port, pacs_port=pacs_port, quiet=5.0)
    data = tmp_path / "data"
    pacs = start_storescp(tmp_path / "pacs", aet="PACS", port=pacs_port)
    try:
        gateway = GatewayProcess(config, port)
        # a modality that opens one association per image, like many do
        acked: list[Path] = []

        def send_one_by_one() -> None:
            for path in sorted(phantom_study.dicom_dir.glob("*.dcm")):
                result = subprocess.run(
                    ["/usr/bin/storescu", "-aec", "RADBRIDGE", "127.0.0.1", str(port), str(path)],
                    capture_output=True,
                )
                if result.returncode == 0:
                    acked.append(path)

        sender = threading.Thread(target=send_one_by_one)
        sender.start()
        wait_until(lambda: len(acked) >= 8, 60, "8 acknowledged instances")
        gateway.kill9()
        sender.join(120)
        assert 8 <= len(acked) < 24  # the crash cut the transfer
        recorded = {row[0] for row in db_rows(data, "SELECT sop_instance_uid FROM instances")}
        for path in acked:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert str(ds.SOPInstanceUID) in recorded
            spooled = next((data / "spool").rglob(f"{ds.SOPInstanceUID}.*.dcm"))
            assert pydicom.dcmread(spooled) == pydicom.dcmread(path)
        # restart, the modality sends the study again (as it does after a failure)
        gateway = GatewayProcess(config, port)
        resend = storescu_async(phantom_study.dicom_dir, port)
        assert resend.wait(120) == 0
        wait_until(
            lambda: (
                db_rows(data, "SELECT state FROM jobs")
                and all(r[0] == "done" for r in db_rows(data, "SELECT state FROM jobs"))
            ),
            what="jobs done",
        )
        gateway.stop()
        (count,) = db_rows(data, "SELECT COUNT(*) FROM instances")[0]
        assert count == 24
        seg = next((data / "archive").rglob("*.dcm"))
        references = pydicom.dcmread(seg).ReferencedSeriesSequence[0].ReferencedInstanceSequence
        assert len(references) == 24
    finally:
        pacs.stop()


def test_kill_9_at_random_moments_then_pacs_comes_back(tmp_path, phantom_study):
    port, pacs_port = free_port(), free_port()
    config = write_config(tmp_path, port=port, pacs_port=pacs_port)
    data = tmp_path / "data"
    gateway = GatewayProcess(config, port)
    sent = subprocess.run(
        [
            "/usr/bin/storescu",
            "-aec",
            "RADBRIDGE",
            "+sd",
            "-R",
            "127.0.0.1",
            str(port),
            str(phantom_study.dicom_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    # kill at several moments: assembling, running the model, writing, failing deliveries
    for delay in (0.5, 1.5, 3.0, 5.0):
        time.sleep(delay)
        gateway.kill9()
        gateway = GatewayProcess(config, port)
    wait_until(
        lambda: (
            db_rows(
                data, "SELECT COUNT(*) FROM deliveries WHERE state != 'delivered' AND attempts > 0"
            )[0][0]
            > 0
        ),
        what="a failed delivery while the PACS is down",
    )
    gateway.kill9()  # and once more while deliveries are failing
    pacs = start_storescp(tmp_path / "pacs", aet="PACS", port=pacs_port)
    try:
        gateway = GatewayProcess(config, port)
        wait_until(lambda: db_rows(data, "SELECT state FROM jobs") == [("done",)], what="job done")
        gateway.stop()
        outbox = {
            str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            for p in (data / "outbox").rglob("*.dcm")
        }
        at_pacs = {
            str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in pacs.received()
        }
        archived = {p.stem for p in (data / "archive").rglob("*.dcm")}
        assert len(outbox) == 1 and at_pacs == outbox == archived
        (instances,) = db_rows(data, "SELECT COUNT(*) FROM instances")[0]
        assert instances == 24
    finally:
        pacs.stop()
