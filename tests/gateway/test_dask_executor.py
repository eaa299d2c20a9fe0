"""Gateway jobs on a real Dask cluster: same results as local, a dead worker loses nothing."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from radbridge.gateway import Gateway, load_gateway_config
from radbridge.gateway.store import JobState

from .conftest import query, receive, undated

pytestmark = pytest.mark.slow


def wait_done(gateway, count, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gateway.step()
        states = [r["state"] for r in query(gateway, "SELECT state FROM jobs")]
        if len(states) == count and all(s == JobState.DONE for s in states):
            return
        time.sleep(0.05)
    raise AssertionError(f"jobs not done: {states}")


def test_jobs_run_on_dask_like_locally(config, phantom_study, dask_cluster, tmp_path):
    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    local = Gateway(replace(config, data_dir=tmp_path / "local"))
    remote = Gateway(
        replace(
            config,
            data_dir=tmp_path / "remote",
            executor=dask_cluster.address.replace("tcp://", "dask://"),
        )
    )
    try:
        for gateway in (local, remote):
            receive(gateway, files)
            wait_done(gateway, 1)
        seg_local = sorted(map(undated, (tmp_path / "local" / "archive").rglob("*.dcm")))
        seg_remote = sorted(map(undated, (tmp_path / "remote" / "archive").rglob("*.dcm")))
        assert seg_local and seg_local == seg_remote
    finally:
        local.close()
        remote.close()


def test_worker_killed_mid_job_loses_no_job(config, phantom_study, dask_cluster, tmp_path):
    gateway = Gateway(
        replace(
            config,
            data_dir=tmp_path / "gw",
            retry_base_s=0.1,
            executor=dask_cluster.address.replace("tcp://", "dask://"),
        )
    )
    try:
        receive(gateway, sorted(phantom_study.dicom_dir.glob("*.dcm")))
        gateway.assemble_once()
        killer = threading.Timer(0.3, dask_cluster.kill_worker, args=(0,))
        killer.start()
        wait_done(gateway, 1)
        killer.join()
        assert dask_cluster.workers[0].poll() is not None
        assert len(list((tmp_path / "gw" / "archive").rglob("*.dcm"))) == 3  # SEG, SR, KO
    finally:
        gateway.close()


def test_dask_executor_from_the_toml_file(tmp_path, phantom_study, dask_cluster):
    address = dask_cluster.address.removeprefix("tcp://")
    toml = tmp_path / "gateway.toml"
    toml.write_text(
        f'[gateway]\ndata_dir = "gw"\nquiet_period_s = 0\nexecutor = "dask://{address}"\n'
    )
    config = load_gateway_config(toml)
    assert config.executor == f"dask://{address}"
    gateway = Gateway(config)
    try:
        receive(gateway, sorted(phantom_study.dicom_dir.glob("*.dcm")))
        wait_done(gateway, 1)
    finally:
        gateway.close()
    assert len(list(config.archive_dir.rglob("*.dcm"))) == 3  # SEG, SR, KO
    from distributed import Client

    with Client(dask_cluster.address, timeout="30s") as client:
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.task_prefixes)
        )
    assert "compute_results" in prefixes  # the job's work ran on the cluster


COUNTING_MODEL = """
import os
from radbridge.models.reference_ct import ReferenceCTModel

class CountingModel(ReferenceCTModel):
    def __init__(self):
        super().__init__()
        with open(os.environ["RB_MODEL_LOADS"], "a") as log:
            log.write(f"{os.getpid()}\\n")
"""


def test_each_worker_loads_a_model_once(config, phantom_study, dask_cluster, tmp_path):
    """Three jobs of one model on two workers: at most one load per worker, not per job."""
    loads = tmp_path / "loads.txt"
    loads.touch()
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "countmodel.py").write_text(COUNTING_MODEL)
    from distributed import Client

    def prepare_worker(folder: str, loads: str) -> None:  # pickled by value, not by name
        import os
        import sys

        sys.path.insert(0, folder)
        os.environ["RB_MODEL_LOADS"] = loads

    with Client(dask_cluster.address, timeout="30s") as client:  # the workers' environment
        client.run(prepare_worker, str(folder), str(loads))
    rule = replace(config.rules[0], model="countmodel:CountingModel", outputs=("seg",))
    rules = tuple(replace(rule, name=f"r{i}") for i in range(3))
    gateway = Gateway(
        replace(
            config,
            rules=rules,
            data_dir=tmp_path / "gw",
            executor=dask_cluster.address.replace("tcp://", "dask://"),
        )
    )
    try:
        receive(gateway, sorted(phantom_study.dicom_dir.glob("*.dcm")))
        wait_done(gateway, 3)
    finally:
        gateway.close()
    pids = loads.read_text().split()
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids), pids  # once per worker


def test_deidentified_jobs_on_dask_deliver_what_plain_local_jobs_do(
    config, phantom_study, dask_cluster, tmp_path
):
    """The worker gets the pseudonyms with the job; what reaches the archive is the same
    bytes as a plain local run (nothing derived from a pseudonym survives)."""
    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    deidentify = (replace(config.rules[0], deidentify=True),)
    plain = Gateway(replace(config, data_dir=tmp_path / "plain"))
    remote = Gateway(
        replace(
            config,
            data_dir=tmp_path / "remote",
            rules=deidentify,
            executor=dask_cluster.address.replace("tcp://", "dask://"),
        )
    )
    try:
        for gateway in (plain, remote):
            receive(gateway, files)
            wait_done(gateway, 1)
        assert query(remote, "SELECT COUNT(*) AS n FROM deid_uids")[0]["n"] > len(files)
        archived = {
            name: sorted(map(undated, (tmp_path / name / "archive").rglob("*.dcm")))
            for name in ("plain", "remote")
        }
        assert len(archived["plain"]) == 3 and archived["plain"] == archived["remote"]
    finally:
        plain.close()
        remote.close()
