"""The outbox's file system full while jobs run: they wait, and run once there is room.

A real full disk: the gateway runs in a subprocess with its own small tmpfs mounted on
the outbox (a private mount namespace, as in test_faults.py), filled by another file.
A full disk is the gateway's fault, not the job's: the job must not be dead-lettered
after ``max_attempts`` (it was, within 14 s with the defaults) and must not run the
model again and again while the outbox is below ``min_free_disk_mb``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.test_faults import private_tmpfs_prefix

pytestmark = pytest.mark.peer

SCRIPT = """
import json, sys, time
from dataclasses import replace
from pathlib import Path
from radbridge.gateway import Gateway, GatewayConfig
from tests.gateway.conftest import query, receive

data, study, min_free = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
config = replace(GatewayConfig.default(data), quiet_period_s=0.0, retry_base_s=0.01,
                 max_attempts=2, min_free_disk_mb=min_free)
filler = config.outbox_dir / "filler"
with filler.open("wb") as out:  # another program fills the outbox's disk
    try:
        while True:
            out.write(bytes(65536))
    except OSError:
        pass
gateway = Gateway(config)
receive(gateway, sorted(study.glob("*.dcm")))
seen = []
for _ in range(8):
    gateway.step()
    time.sleep(0.05)
    seen.append([dict(r) for r in query(gateway, "SELECT state, attempts FROM jobs")])
filler.unlink()  # room again
for _ in range(4):
    gateway.step()
    time.sleep(0.05)
seen.append([dict(r) for r in query(gateway, "SELECT state, attempts FROM jobs")])
gateway.close()
print(json.dumps(seen))
"""


@pytest.mark.parametrize("min_free_mb", [0.0, 1.0])
def test_jobs_wait_for_room_in_the_outbox_and_then_run(tmp_path, phantom_study, min_free_mb):
    outbox = tmp_path / "data" / "outbox"
    outbox.mkdir(parents=True)
    prefix = private_tmpfs_prefix(outbox, 2048)
    run = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-c",
            SCRIPT,
            str(tmp_path / "data"),
            str(phantom_study.dicom_dir),
            str(min_free_mb),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    while_full, after = seen[:-1], seen[-1]
    assert all(jobs[0]["state"] == "queued" for jobs in while_full)  # never dead
    if min_free_mb:  # below the low-water mark: no run at all
        assert all(jobs[0]["attempts"] == 0 for jobs in while_full)
        assert "no job is started" in run.stderr
    assert after == [{"state": "done", "attempts": 1}]
