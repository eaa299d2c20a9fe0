"""Gateway benchmark: latency from the last instance to results in the PACS, and throughput.

Usage: .venv/bin/python bench/bench_gateway.py [--slices 200] [--size 512] [--studies 4]
       [--latency-only | --receive-only]

A real Orthanc is the PACS; `radbridge gateway run` (a separate process, quiet period
1 s) receives a CT series from DCMTK ``storescu`` and delivers its SEG to Orthanc by
C-STORE. Latency = time the SEG is in Orthanc - time the last instance was
acknowledged; *overhead* = latency - quiet period - job time (read series, model,
encode, as the gateway's audit log records it). The latency run's rule also finds the
phantom's result urgent (a lung nodule present) and alerts a webhook (an HTTP server in
this process, the alert HMAC-signed): *alert latency* = time the webhook has the alert -
time the last instance was acknowledged; *alert overhead* = alert latency - quiet
period - job time (goal: at most 0.5 s). For comparison, in the same run:
Orthanc's own StableAge forwarding (StableAge = 1 s, a Lua ``OnStableSeries`` that
sends the series on to DCMTK ``storescp``): time from the last instance received to the
last one forwarded, minus StableAge. Throughput: ``--studies`` phantom studies sent at
once (2 runner workers), studies per minute and results (SEGs) delivered per second.
Receiving: instances per second the gateway acknowledges (file, folder and SQLite
commit durable before each Success) from DCMTK ``storescu`` on 1 and 4 associations,
beside ``radbridge listen`` (the same receiver without the database) and DCMTK
``storescp`` (no fsync) on the same files; best of ``--repeat`` (``--receive-only``:
only this part, without Orthanc). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.gateway.alert_receivers import HttpReceiver  # noqa: E402
from tests.peers._common import free_port, wait_for_port  # noqa: E402
from tests.peers.dcmtk import start_storescp  # noqa: E402
from tests.peers.orthanc import OrthancConfig, start_orthanc  # noqa: E402

ENV = {**os.environ, "TCP_NODELAY": "1"}
QUIET_S = 1.0
HOOK_SECRET_ENV = "RADBRIDGE_BENCH_HOOK_SECRET"


def storescu(folder: Path, aet: str, port: int) -> float:
    """Send a folder on one association; return the time the last response arrived."""
    subprocess.run(
        ["/usr/bin/storescu", "-aec", aet, "+sd", "-R", "127.0.0.1", str(port), str(folder)],
        check=True,
        capture_output=True,
        env=ENV,
    )
    return time.time()


def alert_tables(hook_url: str | None) -> tuple[str, str]:
    """The rule's alert keys and the webhook table (empty without a webhook)."""
    if hook_url is None:
        return "", ""
    rule = '[rules.urgent]\nfindings = ["lung nodule: present"]\n'
    table = f'[alerts.webhook.bench]\nurl = "{hook_url}"\nsecret_env = "{HOOK_SECRET_ENV}"\n'
    return rule, table


def gateway_config(
    folder: Path,
    port: int,
    pacs_port: int,
    workers: int,
    quiet_s: float = QUIET_S,
    hook_url: str | None = None,
) -> Path:
    config = folder / "gateway.toml"
    alert_rule, alert_table = alert_tables(hook_url)
    config.write_text(
        f"""
[gateway]
data_dir = "data"
port = {port}
quiet_period_s = {quiet_s}
workers = {workers}
poll_s = 0.05

[[rules]]
name = "ct"
model = "reference-ct"
outputs = ["seg"]
destinations = ["pacs"]
alert = {'["bench"]' if hook_url else "[]"}
[rules.match]
modality = ["CT"]
{alert_rule}
[peers.pacs]
ae_title = "ORTHANC"
host = "127.0.0.1"
port = {pacs_port}

{alert_table}
"""
    )
    return config


def seg_arrival(orthanc, study_uid: str, timeout: float = 600.0) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for series in orthanc.get("/series?expand"):
            tags = series["MainDicomTags"]
            if tags.get("Modality") == "SEG":
                parent = orthanc.get(f"/studies/{series['ParentStudy']}")
                if parent["MainDicomTags"]["StudyInstanceUID"] == study_uid:
                    return time.time()
        time.sleep(0.02)
    raise TimeoutError("no SEG in Orthanc")


def job_seconds(data: Path) -> list[float]:
    lines = (data / "audit.jsonl").read_text().splitlines()
    return [e["seconds"] for e in map(json.loads, lines) if e.get("event") == "job encoded"]


def run_gateway(
    work: Path,
    pacs_port: int,
    workers: int,
    quiet_s: float = QUIET_S,
    hook_url: str | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = gateway_config(work, port, pacs_port, workers, quiet_s, hook_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "radbridge", "gateway", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, HOOK_SECRET_ENV: "bench-secret"},
    )
    wait_for_port("127.0.0.1", port, timeout=60, proc=proc)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)


def alert_arrival(hook: HttpReceiver, timeout: float = 600.0) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if hook.requests:
            return hook.requests[0].at
        time.sleep(0.01)
    raise TimeoutError("no alert at the webhook")


def latency(work: Path, study, orthanc) -> tuple[float, float, float]:
    """Seconds from the last instance to the SEG in Orthanc and to the alert; the job's."""
    hook = HttpReceiver()
    proc, port = run_gateway(work, orthanc.dicom_port, workers=1, hook_url=hook.url)
    try:
        last = storescu(study.dicom_dir, "RADBRIDGE", port)
        arrived = seg_arrival(orthanc, study.study_instance_uid)
        alerted = alert_arrival(hook)
    finally:
        stop(proc)
        hook.stop()
    (seconds,) = job_seconds(work / "data")
    return arrived - last, alerted - last, seconds


def orthanc_forwarding(work: Path, study) -> float:
    target = start_storescp(work / "forwarded", aet="FWD")
    lua = work / "forward.lua"
    lua.write_text(
        "function OnStableSeries(seriesId, tags, metadata)\n"
        "  RestApiPost('/modalities/fwd/store', seriesId)\n"
        "end\n"
    )
    router = start_orthanc(
        work / "router",
        OrthancConfig(
            stable_age=1,
            modalities={"fwd": ("FWD", "127.0.0.1", target.port)},
            dicomweb=False,
            extra={"LuaScripts": [str(lua)]},
        ),
    )
    try:
        last = storescu(study.dicom_dir, "ORTHANC", router.dicom_port)
        expected = len(list(study.dicom_dir.glob("*.dcm")))
        target.wait_for_files(expected, timeout=600)
        return time.time() - last
    finally:
        router.stop()
        target.stop()


def throughput(work: Path, studies, orthanc) -> float:
    proc, port = run_gateway(work, orthanc.dicom_port, workers=2)
    try:
        started = time.time()
        senders = [
            subprocess.Popen(
                [
                    "/usr/bin/storescu",
                    "-aec",
                    "RADBRIDGE",
                    "+sd",
                    "-R",
                    "127.0.0.1",
                    str(port),
                    str(s.dicom_dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=ENV,
            )
            for s in studies
        ]
        for sender in senders:
            sender.wait(600)
        for s in studies:
            seg_arrival(orthanc, s.study_instance_uid)
        return time.time() - started
    finally:
        stop(proc)


def send_parts(files: list[Path], port: int, associations: int, aet: str) -> float:
    """Send ``files`` on ``associations`` storescu processes at once; seconds until all end."""
    parts = [files[k::associations] for k in range(associations)]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["/usr/bin/storescu", "-aec", aet, "-R", "127.0.0.1", str(port), *map(str, part)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        for part in parts
    ]
    if any(proc.wait(600) != 0 for proc in procs):
        raise RuntimeError("a storescu failed")
    return time.perf_counter() - started


def receive_rates(work: Path, study, pacs_port: int, repeat: int) -> dict[tuple[str, int], float]:
    """Instances per second acknowledged by the gateway, radbridge listen and storescp."""
    files = sorted(study.dicom_dir.glob("*.dcm"))
    rates: dict[tuple[str, int], float] = {}
    for associations in (1, 4):
        for name in ("radbridge gateway run", "radbridge listen", "DCMTK storescp (no fsync)"):
            best = float("inf")
            for attempt in range(repeat):
                folder = work / f"rx-{associations}-{attempt}-{name.split()[1]}"
                folder.mkdir(parents=True)
                if name.startswith("radbridge gateway"):
                    # quiet period 60 s: no job starts while the series arrives
                    proc, port = run_gateway(folder, pacs_port, workers=1, quiet_s=60)
                    aet = "RADBRIDGE"
                elif name == "radbridge listen":
                    port, aet = free_port(), "RADBRIDGE"
                    command = ["listen", "--out", str(folder / "in"), "--port", str(port)]
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "radbridge", *command],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    wait_for_port("127.0.0.1", port, timeout=60, proc=proc)
                else:
                    scp = start_storescp(folder / "in", aet="STORESCP")
                    proc, port, aet = scp.proc, scp.port, "STORESCP"
                try:
                    best = min(best, send_parts(files, port, associations, aet))
                finally:
                    stop(proc)
                shutil.rmtree(folder, ignore_errors=True)
            rates[(name, associations)] = len(files) / best
            print(f"  {name} x{associations}: {rates[(name, associations)]:.0f}/s", file=sys.stderr)
    return rates


def print_latency(args: argparse.Namespace, seconds: float, alert: float, job: float) -> None:
    overhead = seconds - QUIET_S - job
    print(f"{args.slices} CT slices {args.size}x{args.size}; quiet period / StableAge 1 s")
    print("| measure | seconds |")
    print("|---|---|")
    print(f"| gateway: last instance -> SEG stored in Orthanc | {seconds:.2f} |")
    print(f"| gateway: job (read series, reference model, encode SEG) | {job:.2f} |")
    print(f"| **gateway overhead** (latency - quiet period - job) | **{overhead:.2f}** |")
    print(f"| gateway: last instance -> critical-finding alert at the webhook | {alert:.2f} |")
    print(
        f"| **alert overhead** (alert latency - quiet period - job; goal <= 0.5) | "
        f"**{alert - QUIET_S - job:.2f}** |"
    )


def print_others(args: argparse.Namespace, forwarded: float, total: float, rates: dict) -> None:
    print(f"| Orthanc StableAge forwarding: last instance -> last forwarded | {forwarded:.2f} |")
    print(f"| Orthanc forwarding overhead (minus StableAge) | {forwarded - 1.0:.2f} |")
    print(
        f"| throughput: {args.studies} studies of 60x256x256 at once, 2 workers | "
        f"{total:.2f} ({60 * args.studies / total:.1f} studies/min, "
        f"{args.studies / total:.2f} results delivered/s) |"
    )
    print()
    print_rates(args, rates)


def print_rates(args: argparse.Namespace, rates: dict) -> None:
    print(f"Receiving {args.slices} CT slices {args.size}x{args.size}, best of {args.repeat}")
    print("| receiver | associations | instances/s | vs storescp |")
    print("|---|---:|---:|---:|")
    for (name, associations), rate in rates.items():
        base = rates[("DCMTK storescp (no fsync)", associations)]
        print(f"| {name} | {associations} | {rate:.0f} | {rate / base:.2f}x |")


def receive_only(args: argparse.Namespace) -> None:
    """Print only the receiving table (the gateway's PACS is a port nobody listens on)."""
    from radbridge.io.phantom import write_phantom

    (HERE / "results").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-", dir=HERE / "results"))
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    try:
        study = write_phantom(work / "study", slices=args.slices, size=args.size, nifti=False)
        rates = receive_rates(work / "receive", study, free_port(), args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print_rates(args, rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--latency-only", action="store_true", help="only the latency run (SEG and alert)"
    )
    parser.add_argument(
        "--receive-only", action="store_true", help="only the receiving rates (no Orthanc)"
    )
    args = parser.parse_args()
    if args.receive_only:
        receive_only(args)
        return
    from radbridge.io.phantom import write_phantom

    (HERE / "results").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-", dir=HERE / "results"))
    try:
        study = write_phantom(work / "study", slices=args.slices, size=args.size, nifti=False)
        pacs = start_orthanc(work / "pacs", OrthancConfig(dicomweb=False))
        try:
            (work / "latency").mkdir()
            seconds, alert, job = latency(work / "latency", study, pacs)
            if not args.latency_only:
                small = [
                    write_phantom(work / f"s{i}", slices=60, size=256, seed=10 + i, nifti=False)
                    for i in range(args.studies)
                ]
                (work / "throughput").mkdir()
                total = throughput(work / "throughput", small, pacs)
                rates = receive_rates(work / "receive", study, pacs.dicom_port, args.repeat)
        finally:
            pacs.stop()
        if not args.latency_only:
            (work / "orthanc").mkdir()
            forwarded = orthanc_forwarding(work / "orthanc", study)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_latency(args, seconds, alert, job)
    if not args.latency_only:
        print_others(args, forwarded, total, rates)


if __name__ == "__main__":
    main()
