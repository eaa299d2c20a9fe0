"""Delivery failures sorted into permanent and temporary; what the gateway does at start
and when storage fails; what `gateway status` reports.

Destinations that answer 0xA700, 0xA900, 0xC000 or a warning on demand are a pynetdicom
Storage SCP in the test (no real peer produces these statuses at will); a real Orthanc
receives results in tests/gateway/test_pacs.py and tests/gateway/test_faults.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

import pydicom
import pytest
from pynetdicom import AllStoragePresentationContexts

from radbridge.errors import SendError, StorageError
from radbridge.gateway import Gateway
from radbridge.gateway.routing import Match, Rule
from radbridge.gateway.status import status
from radbridge.gateway.store import JobState
from radbridge.io.storage import write_durably
from radbridge.net import Peer, register_transport, unregister_transport
from tests.net.helpers import StatusSCP

from .conftest import query, receive


def files_of(study):
    return sorted(study.dicom_dir.glob("*.dcm"))


def jobs(gateway):
    return [dict(r) for r in query(gateway, "SELECT * FROM jobs ORDER BY id")]


def deliveries(gateway):
    return [dict(r) for r in query(gateway, "SELECT * FROM deliveries")]


@contextmanager
def delivering_to(config, statuses, study=None, **scp_options):
    """A gateway whose rule sends SEGs to a StatusSCP; with ``study``, received and run."""
    scp = StatusSCP(statuses, **scp_options)
    gateway = pacs_gateway(config, scp.port)
    try:
        if study is not None:
            receive(gateway, files_of(study))
            run_until_idle(gateway)
        yield gateway, scp
    finally:
        gateway.close()
        scp.stop()


def pacs_gateway(config, port, **changes):
    rule = Rule(
        "ct",
        model="reference-ct",
        match=Match(modality=("CT",)),
        outputs=("seg",),
        destinations=("pacs",),
    )
    peer = Peer("PACS", "127.0.0.1", port, name="pacs", timeout_s=10)
    return Gateway(replace(config, rules=(rule,), peers={"pacs": peer}, **changes))


def run_until_idle(gateway, timeout=20.0):
    """Step until nothing is left to do (waiting out delivery backoffs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not gateway.step():
            pending = query(gateway, "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")[0][
                0
            ]
            if not pending:
                return
            time.sleep(0.01)
    raise AssertionError("gateway did not become idle")


@pytest.mark.parametrize("refusal", [0xA900, 0xC000, 0xC123])
def test_a_permanent_refusal_is_dead_lettered_at_once(config, phantom_study, refusal):
    with delivering_to(config, [refusal], phantom_study) as (gateway, scp):
        (job,) = jobs(gateway)
        (delivery,) = deliveries(gateway)
        assert job["state"] == JobState.DEAD and delivery["attempts"] == 1
        assert f"0x{refusal:04X}" in job["error"] and "permanent" in job["error"]
        assert scp.received == []


def test_out_of_resources_backs_off_then_delivers(config, phantom_study):
    with delivering_to(config, [0xA700, 0xA702], phantom_study) as (gateway, scp):
        (job,) = jobs(gateway)
        (delivery,) = deliveries(gateway)
        assert job["state"] == JobState.DONE and delivery["attempts"] == 3
        (seg,) = gateway.config.outbox_dir.rglob("seg.dcm")
        assert len(scp.received) == 1 and seg.read_bytes().endswith(scp.received[0])


def test_a_warning_counts_as_delivered_and_is_logged(config, phantom_study, caplog):
    with (
        caplog.at_level(logging.WARNING, logger="radbridge.gateway.service"),
        delivering_to(config, [0xB000], phantom_study) as (gateway, scp),
    ):
        (job,) = jobs(gateway)
        assert job["state"] == JobState.DONE and len(scp.received) == 1
        assert "warning 0xB000" in caplog.text
        events = [json.loads(line) for line in gateway.config.audit_log.read_text().splitlines()]
        (sent,) = [e for e in events if e["event"] == "delivered"]
        assert sent["warning"] == "0xB000"


def test_a_sop_class_the_destination_does_not_take_is_permanent(config, phantom_study):
    ct_only = [c for c in AllStoragePresentationContexts if c.abstract_syntax.endswith(".1.1.2")]
    with delivering_to(config, [], phantom_study, contexts=ct_only) as (gateway, _):
        (job,) = jobs(gateway)
        assert job["state"] == JobState.DEAD and "presentation context" in job["error"]
        assert deliveries(gateway)[0]["attempts"] == 1


def test_retry_of_a_failed_delivery_resends_the_outbox_bytes(config, phantom_study):
    with delivering_to(config, [0xA900], phantom_study) as (gateway, scp):
        (seg,) = gateway.config.outbox_dir.rglob("seg.dcm")
        written, mtime = seg.read_bytes(), seg.stat().st_mtime_ns
        retried = gateway.store.retry_job(jobs(gateway)[0]["id"])
        assert retried.state == JobState.DELIVERING  # not run again
        run_until_idle(gateway)
        assert jobs(gateway)[0]["state"] == JobState.DONE
        assert seg.stat().st_mtime_ns == mtime and written.endswith(scp.received[0])


def test_an_outbox_file_that_changed_is_never_sent(config, phantom_study):
    # the first try fails, so the file waits in the outbox
    with delivering_to(config, [0xA700]) as (gateway, scp):
        receive(gateway, files_of(phantom_study))
        gateway.assemble_once()
        gateway.run_once()
        gateway.deliver_once()
        (seg,) = gateway.config.outbox_dir.rglob("seg.dcm")
        write_durably(seg.read_bytes() + b"\0\0", seg)  # other bytes under the same UID
        run_until_idle(gateway)
        (job,) = jobs(gateway)
        assert job["state"] == JobState.DEAD and "differs" in job["error"]
        assert scp.received == []


class ToySender:
    """A transport of the test's own: keeps the files it is given, fails as told."""

    def __init__(self):
        self.sent: list[tuple[str, str, bytes]] = []
        self.failures: list[SendError] = []

    def send(self, path, peer, *, ae_title):
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((peer.name, ae_title, path.read_bytes()))
        return 0


def _failure(permanent: bool) -> SendError:
    err = SendError("the toy refused it", path="toy")
    err.permanent = permanent
    return err


@pytest.fixture
def toy(config):
    """A gateway whose rule sends SEGs to a peer of transport "toy" (registered by name)."""
    sender = ToySender()
    register_transport("toy", lambda: sender)
    rule = Rule("ct", model="reference-ct", match=Match(modality=("CT",)), outputs=("seg",))
    peer = Peer("LAB", "127.0.0.1", 104, name="lab", transport="toy")
    changes = {"rules": (replace(rule, destinations=("lab",)),), "peers": {"lab": peer}}
    gateway = Gateway(replace(config, **changes))
    try:
        yield gateway, sender
    finally:
        gateway.close()
        unregister_transport("toy")


def test_a_transport_registered_by_name_delivers(toy, phantom_study):
    gateway, sender = toy
    sender.failures = [_failure(permanent=False)]  # temporary: backed off, tried again
    receive(gateway, files_of(phantom_study))
    run_until_idle(gateway)
    (job,) = jobs(gateway)
    (delivery,) = deliveries(gateway)
    assert job["state"] == JobState.DONE and delivery["attempts"] == 2
    (seg,) = gateway.config.outbox_dir.rglob("seg.dcm")
    assert sender.sent == [("lab", gateway.config.ae_title, seg.read_bytes())]


def test_a_permanent_failure_of_a_registered_transport_is_dead_lettered(toy, phantom_study):
    gateway, sender = toy
    sender.failures = [_failure(permanent=True)]
    receive(gateway, files_of(phantom_study))
    run_until_idle(gateway)
    (job,) = jobs(gateway)
    assert job["state"] == JobState.DEAD and deliveries(gateway)[0]["attempts"] == 1
    assert "permanent: toy: the toy refused it" in job["error"]
    assert sender.sent == []


def test_a_series_with_empty_pixel_data_is_poison_at_once(gateway, phantom_study, tmp_path):
    empty = []
    for path in files_of(phantom_study):
        ds = pydicom.dcmread(path)
        ds.PixelData = b""
        ds.save_as(tmp_path / path.name)
        empty.append(tmp_path / path.name)
    receive(gateway, empty)
    run_until_idle(gateway)
    (job,) = jobs(gateway)
    assert (job["state"], job["attempts"]) == (JobState.DEAD, 1)
    assert "PixelData" in job["error"]


def test_partial_files_in_outbox_and_archive_are_removed_at_start(config):
    for folder in (config.outbox_dir / "7", config.archive_dir / "1.2" / "1.2.3"):
        folder.mkdir(parents=True)
        (folder / ".rb-tmp-0123").write_bytes(b"half a result")
        (folder / "kept.dcm").write_bytes(b"whole")
    gateway = Gateway(config)
    gateway.close()
    assert not list(config.data_dir.rglob(".rb-tmp-*"))
    assert len(list(config.data_dir.rglob("kept.dcm"))) == 2


def test_latency_is_measured_from_the_last_instance_of_that_version(gateway, phantom_study):
    files = files_of(phantom_study)
    receive(gateway, files[:20], "a1")
    run_until_idle(gateway)
    receive(gateway, files[20:], "a2")  # arrives after version 1 was done
    report = status(gateway.store)
    assert report["latency_s"]["count"] == 1 and report["latency_s"]["max"] >= 0


def test_status_lists_held_series(config, phantom_study):
    gateway = Gateway(replace(config, incomplete_after_s=3600.0))
    try:
        receive(gateway, files_of(phantom_study)[:5], "cut", outcome="aborted")
        gateway.assemble_once()
        (held,) = status(gateway.store)["held_series"]
        assert held["series_instance_uid"] == phantom_study.series_instance_uid
        assert (held["instances"], held["reason"]) == (5, "transfer aborted")
    finally:
        gateway.close()


def test_a_failing_storage_logs_once_per_change(gateway, caplog, monkeypatch):
    failures = iter([StorageError("No space left on device")] * 20)

    def assemble_once():
        error = next(failures, None)
        if error is not None:
            raise error
        done.set()
        return False

    done = threading.Event()
    monkeypatch.setattr(gateway, "assemble_once", assemble_once)
    monkeypatch.setattr(gateway, "run_once", lambda: False)
    monkeypatch.setattr(gateway, "deliver_once", lambda: False)
    gateway.config = replace(gateway.config, poll_s=0.001)
    with caplog.at_level(logging.DEBUG, logger="radbridge.gateway.service"):
        gateway.start()
        assert done.wait(10)
        gateway.stop()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in lines] == [
        "assembler failing: No space left on device",
        "assembler working again",
    ]
    assert all(r.exc_info is None for r in lines)
