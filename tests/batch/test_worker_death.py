"""A worker process that dies fails its own row, never the batch."""

from __future__ import annotations

import os
import signal

import pytest

from radbridge.batch import read_manifest, run_batch, tasks


@pytest.fixture
def killing_row(monkeypatch):
    """Row ``big`` kills its process, as the out-of-memory killer does (pool workers fork)."""
    encode = tasks._encode

    def killed(row):
        if row.id == "big":
            os.kill(os.getpid(), signal.SIGKILL)
        return encode(row)

    monkeypatch.setattr(tasks, "_encode", killed)


def test_a_killed_worker_process_fails_its_row_only(manifest_factory, killing_row, tmp_path):
    """Before, BrokenProcessPool ended run_batch (a traceback from radbridge batch, no
    failures.csv), and the rows still queued were never encoded."""
    manifest = manifest_factory(4, bad_row=False)
    text = manifest.read_text().splitlines()
    big = text[1].replace("s0,", "big,", 1).replace("s0/dicom", "s1/dicom")
    big = big.replace("s0/labels.npy", "s1/labels.npy")
    rows = manifest.with_name("killing.csv")
    rows.write_text("\n".join([text[0], text[1], big, *text[2:]]) + "\n")
    summary = run_batch(read_manifest(rows), tmp_path, workers=2)
    assert (summary.done, summary.failed) == (4, 1), summary.results
    (failed,) = [r for r in summary.results if not r.ok]
    assert failed.id == "big" and "worker process encoding this row died" in failed.error
    assert sorted(p.name for p in tmp_path.glob("*.dcm")) == [f"s{i}.dcm" for i in range(4)]
    assert "big" in (tmp_path / "failures.csv").read_text()


#: A worker preload (it may run more than once): row ``big`` kills its worker.
PRELOAD = """
import os, signal
from radbridge.batch import tasks
encode = getattr(tasks, "_unpatched_encode", tasks._encode)
tasks._unpatched_encode = encode
def killed(row):
    if row.id == "big":
        os.kill(os.getpid(), signal.SIGKILL)
    return encode(row)
tasks._encode = killed
"""


@pytest.mark.slow
def test_a_row_that_kills_dask_workers_fails_alone(manifest_factory, tmp_path):
    """A task that kills every worker it runs on ends in KilledWorker: one failed row.

    Before, future.result() raised KilledWorker out of run_batch and the batch stopped;
    then the rows queued on the dying worker failed with it (each runs again alone now).
    Workers run under a nanny (restarted when killed), as `dask worker` starts them.
    """
    from distributed import Client

    from tests.batch.conftest import DASK, start_process
    from tests.peers import free_port, wait_for_port

    (tmp_path / "killer.py").write_text(PRELOAD)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    scheduler = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    # two threads: row s0 runs beside the killer, dies with it twice, and is a suspect too
    worker = [str(DASK), "worker", address, "--host", "127.0.0.1", "--nthreads", "2"]
    worker += ["--no-dashboard", "--memory-limit", "0", "--preload", str(tmp_path / "killer.py")]
    processes = [
        start_process([*scheduler, "--no-dashboard", "--no-show"], tmp_path / "s.log", env=env)
    ]
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        processes.append(start_process(worker, tmp_path / "w.log", cwd=tmp_path / "w"))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        manifest = manifest_factory(1, bad_row=False)
        text = manifest.read_text().splitlines()
        rows = manifest.with_name("killing.csv")
        # (CI at a2c10a5 failed s0 too when, on one thread, it was queued behind the killer)
        rows.write_text("\n".join([text[0], text[1].replace("s0,", "big,", 1), text[1]]) + "\n")
        summary = run_batch(read_manifest(rows), tmp_path / "out", scheduler=address)
        assert (summary.done, summary.failed) == (1, 1), summary.results
        (failed,) = [r for r in summary.results if not r.ok]
        assert failed.id == "big" and "KilledWorker" in failed.error
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)
