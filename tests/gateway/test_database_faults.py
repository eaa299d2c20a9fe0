"""The state database failing under a running gateway: locked by another program.

Another SQLite client (here a second Python process, as an engineer's `sqlite3`
shell or a backup script would) takes the write lock of gateway.sqlite and keeps it
longer than the gateway's busy timeout, right when a job's run ends. The job's
outcome cannot be recorded then; once the lock is gone the job must run again and
finish, as after a crash — not stay 'running' until the gateway restarts.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

import radbridge.gateway.service as service
from radbridge.gateway import Gateway

from .conftest import query, receive

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def hold_write_lock(database, seconds):
    """Start another process that holds the database's write lock for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(database), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_job_whose_outcome_meets_a_locked_database_runs_again(config, phantom_study, monkeypatch):
    gateway = Gateway(config)
    holders = []
    real_run_job = service.run_job

    def run_job_then_lock(*args, **kwargs):
        output = real_run_job(*args, **kwargs)
        if not holders:  # the first run only: the lock outlasts the busy timeout (5 s)
            holders.append(hold_write_lock(gateway.config.database, 6.5))
        return output

    monkeypatch.setattr(service, "run_job", run_job_then_lock)
    try:
        receive(gateway, sorted(phantom_study.dicom_dir.glob("*.dcm")))
        assert gateway.assemble_once() == 1
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            gateway.run_once()
        holders[0].wait(30)
        assert [r["state"] for r in query(gateway, "SELECT state FROM jobs")] == ["running"]
        for _ in range(5):
            gateway.step()
        jobs = query(gateway, "SELECT state, attempts FROM jobs")
        assert [(r["state"], r["attempts"]) for r in jobs] == [("done", 2)]
        delivered = query(gateway, "SELECT COUNT(*) AS n FROM deliveries WHERE state = 'delivered'")
        assert delivered[0]["n"] > 0
    finally:
        gateway.close()
