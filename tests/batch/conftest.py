"""A real Dask cluster on 127.0.0.1 and a small manifest of phantom studies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.peers import free_port, wait_for_port

LIVER = {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}
ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}
DASK = Path(sys.executable).parent / "dask"


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path | None = None

    def kill_worker(self, index: int = 0) -> None:
        os.kill(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait(timeout=10)


SRC = Path(__file__).resolve().parents[2] / "src"


def start_process(
    args: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a Dask process; a worker runs in a folder of its own, as on another host."""
    handle = log.open("wb")
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, **(env or {}), "PYTHONPATH": path}
    if cwd is not None:
        cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd
    )


@pytest.fixture
def dask_cluster(tmp_path) -> Iterator[Cluster]:
    """`dask scheduler` and two `dask worker` processes (no nanny, one thread each)."""
    port = free_port()
    scheduler = start_process(
        [
            str(DASK),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
            "--no-show",
        ],
        tmp_path / "scheduler.log",
    )
    cluster = Cluster(f"tcp://127.0.0.1:{port}", scheduler, log_dir=tmp_path)
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        for index in range(2):
            cluster.workers.append(
                start_process(
                    [
                        str(DASK),
                        "worker",
                        cluster.address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--memory-limit",
                        "0",
                        "--local-directory",
                        str(tmp_path / f"w{index}"),
                    ],
                    tmp_path / f"worker{index}.log",
                    cwd=tmp_path / f"w{index}",
                )
            )
        from distributed import Client

        with Client(cluster.address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield cluster
    finally:
        for process in [*cluster.workers, scheduler]:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for process in [*cluster.workers, scheduler]:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def manifest_factory(tmp_path_factory):
    """Write phantom studies, their masks and a manifest (one row deliberately bad)."""
    from radbridge.io.phantom import write_phantom

    def make(count: int, *, slices: int = 6, size: int = 32, bad_row: bool = True) -> Path:
        root = tmp_path_factory.mktemp("batch")
        labels = {
            str(k): {"label": f"organ {k}", "category": ANATOMY, "type": LIVER} for k in range(1, 8)
        }
        (root / "labels.json").write_text(json.dumps(labels))
        lines = ["id,source,kind,input,labels,options"]
        for index in range(count):
            files = write_phantom(root / f"s{index}", slices=slices, size=size, seed=index)
            seg_type = "labelmap" if index % 2 else "binary"
            lines.append(
                f"s{index},s{index}/dicom,seg,s{index}/labels.npy,labels.json,"
                f'"{{""type"": ""{seg_type}"", ""compression"": ""explicit""}}"'
            )
            del files
        if bad_row:
            np.save(root / "wrong.npy", np.zeros((2, 2, 2), np.uint8))
            lines.append("bad,s0/dicom,seg,wrong.npy,labels.json,")
        (root / "manifest.csv").write_text("\n".join(lines) + "\n")
        return root / "manifest.csv"

    return make
