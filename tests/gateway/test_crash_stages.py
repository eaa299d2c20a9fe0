"""`kill -9` of a real gateway at each stage of a job, each kill proven to land in its stage.

For the model, encode, outbox-write and delivery stages the gateway runs under a small
harness that parks the worker thread *inside* the stage (it prints ``STAGE <name>`` from
there and sleeps), so the kill cannot land before or after it; the test also checks
the database says what that stage implies before killing. A held series and a finished
job need no harness: the audit log and the database show the stage. After each kill a
plain `radbridge gateway run` restarts and must finish with exactly one result set,
every copy the destination (DCMTK `storescp +uf`, which keeps every copy) received being
byte-identical per SOP Instance UID. Killing during receive is in test_faults.py and
test_crash.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.gateway.processes import (
    GatewayProcess,
    Storescu,
    audit_events,
    copies_by_uid,
    db_rows,
    jobs_done,
    wait_until,
    write_config,
)
from tests.peers import free_port

pytestmark = [pytest.mark.peer, pytest.mark.slow]

OUTPUTS = ("seg", "sr")

HARNESS = """
import sys, time
import radbridge.gateway.runner as runner
import radbridge.gateway.service as service

stage, config = sys.argv[1], sys.argv[-1]  # argv: STAGE --config FILE

def park():
    print("STAGE " + stage, flush=True)
    while True:
        time.sleep(3600)

if stage == "model":
    def run_model(*args, **kwargs):
        park()
    runner.run_model = run_model
elif stage == "encode":  # the SEG is encoded; the SR is being encoded
    real_encode, calls = runner._encode, []
    def encode(ds):
        calls.append(ds)
        if len(calls) == 2:
            park()
        return real_encode(ds)
    runner._encode = encode
elif stage == "outbox":  # one result file is durable in the outbox, the other is not
    real_write = runner.write_bytes_durably
    def write(data, path, **options):
        real_write(data, path, **options)
        park()
    runner.write_bytes_durably = write
elif stage == "delivery":  # the PACS has the SEG; the database does not know yet
    real_deliver = service.deliver
    def deliver(item, *args, **kwargs):
        status = real_deliver(item, *args, **kwargs)
        if item.destination == "pacs":
            park()
        return status
    service.deliver = deliver

from radbridge.cli import main
sys.exit(main(["gateway", "run", "--config", config]))
"""


class Harnessed(GatewayProcess):
    """The gateway under the harness: waits until the worker is parked in ``stage``."""

    def __init__(self, config: Path, port: int, stage: str) -> None:
        super().__init__(config, port, command=[sys.executable, "-c", HARNESS, stage])

    def wait_parked(self, stage: str, timeout: float = 120.0) -> None:
        wait_until(lambda: f"STAGE {stage}" in self.log.read_text(), timeout, f"parked in {stage}")


@pytest.fixture
def setup(tmp_path, storescp_factory):
    pacs = storescp_factory(aet="PACS", extra_args=("+uf",))
    port = free_port()
    config = write_config(tmp_path, port=port, pacs_port=pacs.port, quiet=0.5, outputs=OUTPUTS)
    return config, port, pacs, tmp_path / "data"


def _finish_and_check(config: Path, port: int, pacs, data: Path, slices: int) -> None:
    """Restart a plain gateway, let it finish, check one result set, one content per UID."""
    gateway = GatewayProcess(config, port)
    try:
        wait_until(lambda: jobs_done(data), what="the job done after the restart")
        wait_until(
            lambda: len(copies_by_uid(pacs.directory)) >= len(OUTPUTS), 60, "results at PACS"
        )
    finally:
        gateway.stop()
    copies = copies_by_uid(pacs.directory)
    assert len(copies) == len(OUTPUTS)  # one version: no second result set with new UIDs
    assert all(len(contents) == 1 for contents in copies.values())  # every copy identical
    assert db_rows(data, "SELECT COUNT(*), MAX(version) FROM jobs") == [(1, 1)]
    assert db_rows(data, "SELECT COUNT(*) FROM version_inputs") == [(slices,)]
    archived = {p.name.removesuffix(".dcm") for p in (data / "archive").rglob("*.dcm")}
    assert archived == set(copies)


@pytest.mark.parametrize("stage", ["model", "encode", "outbox", "delivery"])
def test_kill_9_inside_a_job_stage(setup, phantom_study, stage):
    config, port, pacs, data = setup
    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    gateway = Harnessed(config, port, stage)
    try:
        assert Storescu(files, port).wait(120) == 0
        gateway.wait_parked(stage)
        outbox = sorted(p.name for p in (data / "outbox").rglob("*.dcm"))
        (state,) = db_rows(data, "SELECT state FROM jobs")[0]
        results = db_rows(data, "SELECT COUNT(*) FROM results")[0][0]
        if stage in ("model", "encode"):
            assert (state, outbox, results) == ("running", [], 0)
        elif stage == "outbox":
            assert (state, outbox, results) == ("running", ["seg.dcm"], 0)
            written = next((data / "outbox").rglob("seg.dcm")).read_bytes()
        else:
            assert (state, results) == ("delivering", len(OUTPUTS))
            assert len(pacs.received()) == 1  # sent, not yet recorded as delivered
    finally:
        gateway.kill9()
    _finish_and_check(config, port, pacs, data, len(files))
    if stage == "outbox":  # the re-run wrote the same bytes over the file the crash left
        assert next((data / "outbox").rglob("seg.dcm")).read_bytes() == written
    if stage == "delivery":
        assert len(pacs.received()) == len(OUTPUTS) + 1  # the SEG twice, identical


def test_kill_9_while_a_series_is_held(setup, phantom_study):
    config, port, pacs, data = setup
    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    gateway = GatewayProcess(config, port)
    try:
        cut = Storescu(files, port, kill_after=10)
        cut.wait(120)
        wait_until(lambda: audit_events(data, "series held"), 60, "the series held")
    finally:
        gateway.kill9()
    restarted = GatewayProcess(config, port)
    try:
        (reason,) = wait_until(
            lambda: db_rows(data, "SELECT held_reason FROM series WHERE held_reason IS NOT NULL")
        )
        assert reason[0].startswith("transfer ")  # still held after the restart
        assert db_rows(data, "SELECT COUNT(*) FROM jobs") == [(0,)]
        assert Storescu(files, port).wait(120) == 0  # the whole series again
    finally:
        restarted.stop()
    _finish_and_check(config, port, pacs, data, len(files))


def test_kill_9_after_done_sends_nothing_again(setup, phantom_study):
    config, port, pacs, data = setup
    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    gateway = GatewayProcess(config, port)
    try:
        assert Storescu(files, port).wait(120) == 0
        wait_until(lambda: jobs_done(data), what="job done")
        assert audit_events(data, "delivered")
    finally:
        gateway.kill9()
    received = len(pacs.received())
    restarted = GatewayProcess(config, port)
    try:
        time.sleep(3)  # several quiet periods and delivery rounds
        assert len(pacs.received()) == received  # no re-delivery, no new version
        assert db_rows(data, "SELECT COUNT(*), MAX(version) FROM jobs") == [(1, 1)]
    finally:
        restarted.stop()
    assert received == len(OUTPUTS)
