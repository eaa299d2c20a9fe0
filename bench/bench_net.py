"""Network benchmark: C-STORE send and receive on loopback, whole processes, vs DCMTK.

Usage: .venv/bin/python bench/bench_net.py [--slices 500] [--size 512] [--repeat 3]
       [--only send|receive] [--receivers ...] [--senders ...]

Every program runs as its own process, started the way a user starts it, and is timed
from the outside (interpreter start, imports, reading the files, the transfer, exit);
each cell is the best of ``--repeat`` runs (the machine is shared: the best run is the
one least disturbed). DCMTK and Orthanc run with ``TCP_NODELAY=1`` (Debian's DCMTK
leaves Nagle on without it); radbridge sets TCP_NODELAY itself; pynetdicom's apps do
not set it (that is how their users get them).

* send: each sender sends the whole folder on one association into a fresh receiver:
  DCMTK ``storescp`` (no fsync), Orthanc (fsync, SQLite index), ``radbridge listen``
  (fsync before every Success). Goal (issue 15): ``radbridge send`` <= 1.5x
  ``storescu``'s time into the same receiver.
* receive: DCMTK ``storescu`` feeds each receiver, on one association, then on 4 at
  once (4 ``storescu`` processes, a quarter of the files each). Goal: ``radbridge
  listen`` (fsync) <= 1.2x ``storescp`` (no fsync) on one association, and faster
  than ``storescp`` with 4.

Every run checks that all files arrived. Beside each time, the CPU seconds the
receiver process and the senders spent in that run (user + system, from
``/proc/<pid>/stat`` and the reaped children's rusage): where their sum nears
2 cores x the wall time, the transfer is CPU-bound. Not a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.peers._common import free_port, wait_for_port  # noqa: E402
from tests.peers.orthanc import OrthancConfig, start_orthanc  # noqa: E402

BIN = Path(sys.executable).parent
ENV = {**os.environ, "TCP_NODELAY": "1"}
AET = "BENCH"


@dataclass
class Receiver:
    """A running receiver: where it listens and how many instances it holds."""

    port: int
    count: Callable[[], int]
    stop: Callable[[], None]
    pid: int


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_receiver(command: list[str], port: int, out: Path) -> Receiver:
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=out.parent
    )
    wait_for_port("127.0.0.1", port, timeout=60, proc=proc)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def count() -> int:
        return sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))

    return Receiver(port, count, stop, proc.pid)


def _storescp(out: Path) -> Receiver:
    port = free_port()
    command = ["/usr/bin/storescp", "-aet", AET, "-od", str(out), "+xa", str(port)]
    return _process_receiver(command, port, out)


def _listen(out: Path) -> Receiver:
    port = free_port()
    command = [str(BIN / "radbridge"), "listen", "--out", str(out), "--port", str(port)]
    return _process_receiver([*command, "--ae", AET], port, out)


def _pynetdicom_storescp(out: Path) -> Receiver:
    port = free_port()
    command = [sys.executable, "-m", "pynetdicom", "storescp", str(port), "-aet", AET]
    return _process_receiver([*command, "-od", str(out)], port, out)


def _orthanc(out: Path) -> Receiver:
    config = OrthancConfig(aet=AET, dicomweb=False, sync_storage=True)
    orthanc = start_orthanc(out, config)
    return Receiver(
        orthanc.dicom_port,
        lambda: len(orthanc.sop_instance_uids()),
        lambda: orthanc.stop(),
        orthanc.proc.pid,
    )


RECEIVERS: dict[str, Callable[[Path], Receiver]] = {
    "radbridge listen (fsync)": _listen,
    "DCMTK storescp (no fsync)": _storescp,
    "pynetdicom storescp app (no fsync)": _pynetdicom_storescp,
    "Orthanc (fsync)": _orthanc,
}


def _storescu(files: list[Path], port: int) -> list[str]:
    return ["/usr/bin/storescu", "-aec", AET, "-R", "127.0.0.1", str(port), *map(str, files)]


SENDERS: dict[str, Callable[[Path, int], list[str]]] = {
    "radbridge send": lambda folder, port: [
        str(BIN / "radbridge"),
        "send",
        str(folder),
        "--to",
        f"{AET}@127.0.0.1:{port}",
    ],
    "DCMTK storescu": lambda folder, port: _storescu(sorted(folder.glob("*.dcm")), port),
    "pynetdicom storescu app": lambda folder, port: [
        sys.executable,
        "-m",
        "pynetdicom",
        "storescu",
        "127.0.0.1",
        str(port),
        str(folder),
        "-aec",
        AET,
        "-r",
    ],
}


@contextmanager
def receiving(name: str, work: Path, expected: int) -> Iterator[Receiver]:
    """A fresh receiver in an empty folder (stopped afterwards)."""
    out = work / "in"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    receiver = RECEIVERS[name](out)
    try:
        yield receiver
    finally:
        receiver.stop()


class Timing(NamedTuple):
    """One transfer: wall seconds, and CPU seconds of the receiver and of the senders."""

    seconds: float
    receiver_cpu: float = 0.0
    sender_cpu: float = 0.0


def timed_transfer(
    name: str, work: Path, expected: int, commands: Callable[[int], list], *, strict: bool
) -> Timing:
    """Time ``commands(port)`` delivering ``expected`` instances to a fresh ``name``.

    ``inf`` seconds when some did not arrive and not ``strict`` (pynetdicom's storescu
    app can exit 0 after its reactor took a response); radbridge and DCMTK must
    deliver all.
    """
    with receiving(name, work, expected) as rx:
        before = process_cpu(rx.pid)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = _run_all(commands(rx.port))
        receiver_cpu = process_cpu(rx.pid) - before
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        got = rx.count()
    sender_cpu = (reaped.ru_utime - children.ru_utime) + (reaped.ru_stime - children.ru_stime)
    if got != expected:
        if strict:
            raise RuntimeError(f"{name}: {got} of {expected} instances arrived")
        print(f"  incomplete: {got} of {expected} arrived", file=sys.stderr)
        return Timing(float("inf"))
    return Timing(seconds, receiver_cpu, sender_cpu)


def _run_all(commands: list[list[str]]) -> float:
    """Start the commands at once; return the seconds until the last one exited."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        for c in commands
    ]
    failed = []
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            failed.append(err.decode(errors="replace").strip().splitlines()[-1:])
    seconds = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(commands)} senders failed: {failed}")
    return seconds


def best_of(repeat: int, measure: Callable[[], Timing]) -> Timing:
    """The fastest (least disturbed) of ``repeat`` complete measurements (``inf``: none)."""
    return min((measure() for _ in range(repeat)), key=lambda timing: timing.seconds)


def send_table(folder: Path, work: Path, n: int, args: argparse.Namespace) -> list[tuple]:
    rows = []
    for receiver in args.receivers:
        if receiver.startswith("pynetdicom"):
            continue  # not a receiver users send to in production; see the receive table
        for sender in args.senders:

            def measure(receiver: str = receiver, sender: str = sender) -> Timing:
                return timed_transfer(
                    receiver,
                    work,
                    n,
                    lambda port: [SENDERS[sender](folder, port)],
                    strict=not sender.startswith("pynetdicom"),
                )

            rows.append(("send", receiver, sender, best_of(args.repeat, measure)))
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def receive_table(folder: Path, work: Path, n: int, args: argparse.Namespace) -> list[tuple]:
    files = sorted(folder.glob("*.dcm"))
    rows = []
    for associations in (1, 4):
        parts = [files[k::associations] for k in range(associations)]
        for receiver in args.receivers:

            def measure(receiver: str = receiver, parts: list[list[Path]] = parts) -> Timing:
                return timed_transfer(
                    receiver, work, n, lambda port: [_storescu(p, port) for p in parts], strict=True
                )

            label = f"DCMTK storescu x{associations}"
            rows.append(("receive", receiver, label, best_of(args.repeat, measure)))
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def print_table(rows: list[tuple], n: int, megabytes: float) -> None:
    """One table: each cell's time, rate, and the issue's goal where one applies."""
    times = {(r, s): t.seconds for _, r, s, t in rows}
    print(
        "| direction | receiver | sender | seconds | files/s | MB/s | ratio | goal | met "
        "| receiver CPU s | senders' CPU s |"
    )
    print("|---|---|---|---:|---:|---:|---:|---|---|---:|---:|")
    for kind, receiver, sender, timing in rows:
        seconds = timing.seconds
        if seconds == float("inf"):
            print(f"| {kind} | {receiver} | {sender} | incomplete in every run | | | | | | | |")
            continue
        ratio, goal, met = "", "", ""
        if kind == "send" and sender == "radbridge send":
            base = times.get((receiver, "DCMTK storescu"))
            if base:
                ratio, goal = f"{seconds / base:.2f}x storescu", "<= 1.5x"
                met = "yes" if seconds / base <= 1.5 else "**no**"
        if kind == "receive" and receiver.startswith("radbridge"):
            base = times.get(("DCMTK storescp (no fsync)", sender))
            limit = 1.2 if sender.endswith("x1") else 1.0
            if base:
                ratio, goal = f"{seconds / base:.2f}x storescp", f"<= {limit:g}x"
                if limit == 1.0:
                    goal = "< 1x"
                met = "yes" if seconds / base <= limit else "**no**"
        print(
            f"| {kind} | {receiver} | {sender} | {seconds:.2f} | {n / seconds:.0f} | "
            f"{megabytes / seconds:.0f} | {ratio} | {goal} | {met} | "
            f"{timing.receiver_cpu:.2f} | {timing.sender_cpu:.2f} |"
        )


def disk_floor(folder: Path, count: int = 100, size: int = 524_288) -> tuple[float, float]:
    """Milliseconds per file to write+fsync it, and to also rename it and fsync its folder.

    The floor of a receiver that makes each file durable before answering (one
    association: nothing to share), measured in the same run as the tables.
    """
    folder.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    times = {"file": 0.0, "folder": 0.0}
    for k in range(count):
        temporary = folder / f".t{k}"
        started = time.perf_counter()
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        synced = time.perf_counter()
        os.replace(temporary, folder / f"f{k}.dcm")
        descriptor = os.open(folder, os.O_RDONLY)
        os.fsync(descriptor)
        os.close(descriptor)
        times["file"] += synced - started
        times["folder"] += time.perf_counter() - synced
    shutil.rmtree(folder, ignore_errors=True)
    return 1e3 * times["file"] / count, 1e3 * (times["file"] + times["folder"]) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("send", "receive"))
    parser.add_argument("--receivers", nargs="+", default=list(RECEIVERS), choices=RECEIVERS)
    parser.add_argument("--senders", nargs="+", default=list(SENDERS), choices=SENDERS)
    args = parser.parse_args()

    from radbridge.io.phantom import write_phantom

    (HERE / "results").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-net-", dir=HERE / "results"))
    try:
        study = write_phantom(work / "study", slices=args.slices, size=args.size, nifti=False)
        folder = study.dicom_dir
        megabytes = sum(p.stat().st_size for p in folder.glob("*.dcm")) / 1e6
        n = args.slices
        load = os.getloadavg()[0]
        floor = disk_floor(work / "disk")
        rows = []
        if args.only != "receive":
            rows += send_table(folder, work, n, args)
        if args.only != "send":
            rows += receive_table(folder, work, n, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{n} CT slices {args.size}x{args.size} 16-bit, {megabytes:.0f} MB, loopback, "
        f"best of {args.repeat}, load average at start {load:.1f} (2 cores)"
    )
    print(
        f"Disk in this run: write+fsync of a 512 KB file {floor[0]:.2f} ms; with rename and "
        f"folder fsync {floor[1]:.2f} ms (x{n} = {n * floor[1] / 1e3:.2f} s: the floor of a "
        "durable receiver on one association)"
    )
    print_table(rows, n, megabytes)


if __name__ == "__main__":
    main()
