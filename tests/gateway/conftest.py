"""Gateway test helpers: put studies into a gateway's spool as the receiver would."""

from __future__ import annotations

import io
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from radbridge.gateway import Gateway, GatewayConfig
from radbridge.io.part10 import dataset_offset
from radbridge.io.phantom import write_phantom
from radbridge.net.receiver import StoredInstance, store_instance

#: Turns a new state database back into schema 5 (before retention), for upgrade tests.
BEFORE_RETENTION = (
    "DROP TABLE purge_files; ALTER TABLE versions DROP COLUMN purged_at; "
    "ALTER TABLE series DROP COLUMN retention_from; "
    + " ".join(
        f"ALTER TABLE series DROP COLUMN purged_{name};"
        for name in ("at", "version", "instances", "results", "bytes")
    )
)


def query(gateway: Gateway | Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Read the gateway's state database from outside, as an observer (read-only)."""
    database = gateway if isinstance(gateway, Path) else gateway.config.database
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        db.row_factory = sqlite3.Row
        return list(db.execute(sql, args))


#: What a result's job time sets (Job.results_time): two gateways queue a job at two times.
JOB_TIME = (
    "InstanceCreationDate",
    "InstanceCreationTime",
    "SeriesDate",
    "SeriesTime",
    "ContentDate",
    "ContentTime",
)


def undated(path: Path) -> bytes:
    """Return the result file ``path`` re-encoded with its job-time attributes emptied.

    Two gateways given the same series write the same bytes but for when each queued
    its job; this compares everything else, byte for byte.
    """
    ds = dcmread(path)
    assert all(ds.get(keyword) for keyword in JOB_TIME), path  # dated, as every result is
    for keyword in JOB_TIME:
        ds[keyword].value = ""
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def files_of(study: Any) -> list[Path]:
    """The DICOM files of a phantom study, in order."""
    return sorted(study.dicom_dir.glob("*.dcm"))


def run_until_idle(gateway: Gateway, rounds: int = 50) -> None:
    """Step the gateway until a round does nothing."""
    for _ in range(rounds):
        if not gateway.step():
            return
    raise AssertionError("gateway did not become idle")


def spool(gateway: Gateway, path: Path) -> StoredInstance:
    """Write ``path`` into the spool as the receiver does (durable, not yet recorded)."""
    ds = dcmread(path, stop_before_pixels=True)
    data = path.read_bytes()
    offset = dataset_offset(data)
    return store_instance(
        gateway.config.spool_dir,
        data[:offset],
        data[offset:],
        study=str(ds.StudyInstanceUID),
        series=str(ds.SeriesInstanceUID),
        sop=str(ds.SOPInstanceUID),
        sop_class=str(ds.SOPClassUID),
        unique_contents=True,
    )


def receive_open(gateway: Gateway, files: list[Path], transfer: str) -> None:
    """Spool files and report them as instances of the open transfer ``transfer``."""
    for path in files:
        gateway.instance_stored(spool(gateway, path), transfer)


def receive(
    gateway: Gateway, files: list[Path], transfer: str = "a1", outcome: str = "released"
) -> None:
    """Spool files and report them through the receiver contract, like the C-STORE SCP."""
    gateway.transfer_opened(transfer)
    receive_open(gateway, files, transfer)
    gateway.transfer_ended(transfer, outcome)


@pytest.fixture(scope="session")
def phantom_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("gw-phantom")
    return write_phantom(out, slices=24, size=96, seed=1)


@pytest.fixture
def config(tmp_path):
    return replace(GatewayConfig.default(tmp_path / "data"), quiet_period_s=0.0, retry_base_s=0.01)


@pytest.fixture
def gateway(config):
    gw = Gateway(config)
    yield gw
    gw.close()


from tests.batch.conftest import dask_cluster  # noqa: E402,F401  (a real Dask cluster)
