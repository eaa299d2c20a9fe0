"""Batch benchmark: rows/s with 1 and 2 Dask workers, and scheduler overhead per task.

Usage: .venv/bin/python bench/bench_batch.py [--rows 16] [--slices 80] [--size 256]

Starts a real `dask scheduler` and `dask worker` processes on 127.0.0.1 (one thread
each, imports done before timing, as in a long-lived cluster), runs the same manifest
with 1 then 2 workers, and times 2,000 no-op tasks for the per-task overhead. The
client and scheduler share the machine's 2 cores with the workers. Not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DASK = Path(sys.executable).parent / "dask"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_manifest(root: Path, rows: int, slices: int, size: int) -> Path:
    from radbridge.io.phantom import write_phantom

    labels = {
        str(k): {
            "label": f"organ {k}",
            "category": {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"},
            "type": {"value": "10200004", "scheme": "SCT", "meaning": "Liver"},
        }
        for k in range(1, 8)
    }
    (root / "labels.json").write_text(json.dumps(labels))
    lines = ["id,source,kind,input,labels"]
    for index in range(rows):
        write_phantom(root / f"s{index}", slices=slices, size=size, seed=index, nifti=False)
        lines.append(f"s{index},s{index}/dicom,seg,s{index}/labels.npy,labels.json")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def cluster(workers: int, logs: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    port = free_port()
    procs = [
        subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
                "--no-show",
            ],
            stdout=(logs / "s.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    ]
    address = f"tcp://127.0.0.1:{port}"
    time.sleep(1.0)
    for index in range(workers):
        procs.append(
            subprocess.Popen(
                [
                    DASK,
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--memory-limit",
                    "0",
                ],
                stdout=(logs / f"w{index}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(workers, timeout=60)
        # Long-lived workers have their imports done: do them before timing.
        client.run(warm_up)
    return address, procs


def warm_up() -> None:
    import radbridge.batch.tasks
    import radbridge.io.series
    import radbridge.iods.seg.writer  # noqa: F401


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):  # workers first, then the scheduler
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def noop(value: int) -> int:
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--slices", type=int, default=120)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    from distributed import Client

    from radbridge.batch import read_manifest, run_batch

    root = HERE / "results" / "batch"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rows = read_manifest(make_manifest(root, args.rows, args.slices, args.size))
    results = {}
    for workers in (1, 2):
        address, procs = cluster(workers, root)
        try:
            out = root / f"out-{workers}"
            summary = run_batch(rows, out, scheduler=address)
            assert summary.failed == 0, summary.results
            results[workers] = summary.done / summary.seconds
            if workers == 1:
                with Client(address) as client:
                    client.gather(client.map(noop, range(200)))  # warm up
                    start = time.perf_counter()
                    client.gather(client.map(noop, range(2000)))
                    overhead_ms = (time.perf_counter() - start) / 2000 * 1000
        finally:
            stop(procs)
    print(f"rows: {args.rows} SEG rows, phantom {args.slices}x{args.size}x{args.size}")
    print("| workers | rows/s | speed-up |")
    print("|---:|---:|---:|")
    for workers, rate in results.items():
        print(f"| {workers} | {rate:.2f} | {rate / results[1]:.2f} |")
    print(f"\nscheduler overhead per task (2,000 no-op tasks, 1 worker): {overhead_ms:.2f} ms")


if __name__ == "__main__":
    main()
