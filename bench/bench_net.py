"""Network benchmark: C-STORE receive and send throughput on loopback.

Usage: .venv/bin/python bench/bench_net.py [--slices 500] [--size 512] [--repeat 3]

Receivers (each fed by DCMTK ``storescu`` on one association, ``TCP_NODELAY=1``):
``radbridge listen`` (writes, fsyncs and renames every file before answering),
DCMTK ``storescp`` (no fsync) and pynetdicom's ``storescp`` app. Senders (into DCMTK
``storescp``): ``radbridge send`` and DCMTK ``storescu``. Every program runs as its
own process, started the way a user would. Medians of ``--repeat`` runs. Not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TCP_NODELAY": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def receivers(out: Path, port: int) -> dict[str, list[str]]:
    return {
        "radbridge listen (fsync)": [
            str(BIN / "radbridge"),
            "listen",
            "--out",
            str(out),
            "--port",
            str(port),
            "--ae",
            "BENCH",
        ],
        "DCMTK storescp": [
            "/usr/bin/storescp",
            "-aet",
            "BENCH",
            "-od",
            str(out),
            "+xa",
            str(port),
        ],
        "pynetdicom storescp app": [
            sys.executable,
            "-m",
            "pynetdicom",
            "storescp",
            str(port),
            "-aet",
            "BENCH",
            "-od",
            str(out),
        ],
    }


def storescu(folder: Path, port: int) -> list[str]:
    return ["/usr/bin/storescu", "-aec", "BENCH", "+sd", "-R", "127.0.0.1", str(port), str(folder)]


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def time_receive(name: str, folder: Path, expected: int, work: Path) -> float:
    out = work / "in"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    port = free_port()
    server = subprocess.Popen(
        receivers(out, port)[name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    try:
        wait_port(port)
        started = time.perf_counter()
        subprocess.run(storescu(folder, port), check=True, env=ENV, capture_output=True)
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    got = count_files(out)
    if got != expected:
        raise RuntimeError(f"{name}: {got} of {expected} files arrived")
    return seconds


def time_send(name: str, folder: Path, expected: int, work: Path) -> float:
    out = work / "in"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    port = free_port()
    server = subprocess.Popen(
        receivers(out, port)["DCMTK storescp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    command = {
        "radbridge send": [
            str(BIN / "radbridge"),
            "send",
            str(folder),
            "--to",
            f"BENCH@127.0.0.1:{port}",
        ],
        "radbridge send --associations 4": [
            str(BIN / "radbridge"),
            "send",
            str(folder),
            "--to",
            f"BENCH@127.0.0.1:{port}",
            "--associations",
            "4",
        ],
        "DCMTK storescu": storescu(folder, port),
    }[name]
    try:
        wait_port(port)
        started = time.perf_counter()
        subprocess.run(command, check=True, env=ENV, capture_output=True)
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    if count_files(out) != expected:
        raise RuntimeError(f"{name}: {count_files(out)} of {expected} files arrived")
    return seconds


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from radbridge.io.phantom import write_phantom

    work = Path(tempfile.mkdtemp(prefix="bench-net-", dir=HERE / "results"))
    try:
        study = write_phantom(work / "study", slices=args.slices, size=args.size, nifti=False)
        folder = study.dicom_dir
        megabytes = sum(p.stat().st_size for p in folder.glob("*.dcm")) / 1e6
        n = args.slices
        print(
            f"{n} CT slices {args.size}x{args.size} 16-bit, {megabytes:.0f} MB, loopback, "
            f"median of {args.repeat}, TCP_NODELAY=1"
        )
        rows: list[tuple[str, str, float]] = []
        for name in receivers(work, 0):
            seconds = median_of(args.repeat, lambda name=name: time_receive(name, folder, n, work))
            rows.append(("receive", name, seconds))
        for name in ("radbridge send", "radbridge send --associations 4", "DCMTK storescu"):
            seconds = median_of(args.repeat, lambda name=name: time_send(name, folder, n, work))
            rows.append(("send", name, seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = {
        kind: next(s for k, name, s in rows if k == kind and name.startswith("radbridge"))
        for kind in ("receive", "send")
    }
    print(
        f"| {'direction':<9} | {'program':<32} | {'seconds':>7} | {'files/s':>7} | "
        f"{'MB/s':>6} | {'time vs radbridge':>18} |"
    )
    print(f"|{'-' * 11}|{'-' * 34}|{'-' * 9}|{'-' * 9}|{'-' * 8}|{'-' * 20}|")
    for kind, name, seconds in rows:
        ratio = seconds / base[kind]
        print(
            f"| {kind:<9} | {name:<32} | {seconds:7.2f} | {n / seconds:7.0f} | "
            f"{megabytes / seconds:6.0f} | {ratio:17.2f}x |"
        )


if __name__ == "__main__":
    main()
