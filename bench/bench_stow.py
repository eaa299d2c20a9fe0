"""STOW-RS receiving: peak memory and throughput for a 1 GB upload.

Usage: .venv/bin/python bench/bench_stow.py [--gb 1.0] [--no-orthanc]

`radbridge gateway run` (its own process, STOW-RS on, a rule that matches nothing so
no job runs) receives one STOW-RS request of about ``--gb`` GB, three ways: many CT
slices (512x512 16-bit, 0.5 MB each) sent chunked, the same with a Content-Length, and
one single instance of that size (a multi-frame image) sent chunked. The body is made
as it is sent (the client holds one slice), so the numbers are the server's. Reported:
the gateway process's peak resident memory (``VmHWM`` from /proc, read after each
request in a fresh process), the time and MB/s, and that every instance reached the
spool. For comparison, in the same run, Orthanc 1.10.1's DICOMweb plugin receives the
same many-slices request (its storage without fsync). Goal (issue 13): the gateway
stays under 300 MB. Not a test.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.peers._common import free_port, wait_for_port  # noqa: E402
from tests.peers.orthanc import OrthancConfig, start_orthanc  # noqa: E402

BOUNDARY = b"rb-bench-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY.decode()}'
GOAL_MB = 300


def template_slice(work: Path) -> bytes:
    from radbridge.io.phantom import write_phantom

    study = write_phantom(work / "phantom", slices=2, size=512, seed=11, nifti=False)
    return sorted(study.dicom_dir.glob("*.dcm"))[0].read_bytes()


def renamed(template: bytes, uid: bytes, index: int) -> bytes:
    """The template with its SOP Instance UID replaced by one of the same length."""
    suffix = f"9{index:06d}".encode()
    new = uid[: len(uid) - len(suffix)] + suffix
    return template.replace(uid, new)


def slices_body(template: bytes, count: int) -> tuple[Iterator[bytes], int]:
    """A multipart body of ``count`` distinct slices, made piece by piece, and its length."""
    from io import BytesIO

    import pydicom

    uid = str(pydicom.dcmread(BytesIO(template), stop_before_pixels=True).SOPInstanceUID).encode()
    head = b"--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n"
    tail = b"--" + BOUNDARY + b"--\r\n"

    def pieces() -> Iterator[bytes]:
        for index in range(count):
            yield head + renamed(template, uid, index) + b"\r\n"
        yield tail

    return pieces(), count * (len(head) + len(template) + 2) + len(tail)


def one_big_instance(template: bytes, size: int) -> tuple[Iterator[bytes], int]:
    """One Part 10 instance of about ``size`` bytes: the template's header, big pixel data."""
    from io import BytesIO

    import pydicom

    ds = pydicom.dcmread(BytesIO(template))
    frames = max(1, size // (512 * 512 * 2))
    ds.NumberOfFrames = frames
    del ds.PixelData
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    header = buffer.getvalue()
    pixel_length = frames * 512 * 512 * 2
    element = b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_length.to_bytes(4, "little")
    frame = bytes(range(256)) * (512 * 512 * 2 // 256)
    head = b"--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n"
    tail = b"\r\n--" + BOUNDARY + b"--\r\n"

    def pieces() -> Iterator[bytes]:
        yield head + header + element
        for _ in range(frames):
            yield frame
        yield tail

    return pieces(), len(head) + len(header) + len(element) + pixel_length + len(tail)


def post(port: int, path: str, body: Iterator[bytes], length: int | None) -> tuple[int, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Content-Type": CONTENT_TYPE, "Accept": "application/dicom+json"}
    if length is not None:
        headers["Content-Length"] = str(length)
    started = time.perf_counter()
    connection.request("POST", path, body=body, headers=headers, encode_chunked=length is None)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, time.perf_counter() - started


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def run_gateway(work: Path, case: str, body: Iterator[bytes], length: int | None, total: int):
    folder = work / case
    folder.mkdir()
    port, stow_port = free_port(), free_port()
    (folder / "gateway.toml").write_text(
        f'[gateway]\ndata_dir = "data"\nport = {port}\nstow_port = {stow_port}\n'
        '[[rules]]\nmodel = "reference-ct"\n[rules.match]\nmodality = ["NONE"]\n'
    )
    with (folder / "gateway.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "radbridge", "gateway", "run", "--config", "gateway.toml"],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port("127.0.0.1", stow_port, timeout=60, proc=proc)
        baseline = peak_rss_mb(proc.pid)
        status, seconds = post(stow_port, "/dicom-web/studies", body, length)
        peak = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    stored = sum(1 for _ in (folder / "data" / "spool").rglob("*.dcm"))
    return status, seconds, peak, baseline, stored


def run_orthanc(work: Path, body: Iterator[bytes], length: int) -> tuple[int, float, float]:
    orthanc = start_orthanc(work / "orthanc", OrthancConfig(sync_storage=False))
    try:
        status, seconds = post(orthanc.http_port, "/dicom-web/studies", body, length)
        return status, seconds, peak_rss_mb(orthanc.proc.pid)
    finally:
        orthanc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--no-orthanc", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rb-bench-stow-") as tmp:
        work = Path(tmp)
        template = template_slice(work)
        count = int(args.gb * 2**30 // len(template))
        rows = []
        cases = [
            ("slices, chunked", *slices_body(template, count), True),
            ("slices, Content-Length", *slices_body(template, count), False),
            ("one instance, chunked", *one_big_instance(template, int(args.gb * 2**30)), True),
        ]
        for name, body, length, chunked in cases:
            status, seconds, peak, base, stored = run_gateway(
                work,
                name.replace(" ", "").replace(",", "-"),
                body,
                None if chunked else length,
                length,
            )
            rows.append((f"radbridge gateway: {name}", length, status, seconds, peak, stored))
            print(f"{name}: base {base:.0f} MB", flush=True)
        if not args.no_orthanc:
            body, length = slices_body(template, count)
            status, seconds, peak = run_orthanc(work, body, length)
            rows.append(
                (
                    "Orthanc DICOMweb: slices, Content-Length",
                    length,
                    status,
                    seconds,
                    peak,
                    count if status == 200 else 0,
                )
            )
    print(f"\nSTOW-RS upload of {args.gb:g} GB ({count} slices of {len(template) / 2**20:.2f} MB)")
    print("| receiver: body | MB | HTTP | seconds | MB/s | peak RSS MB | instances stored |")
    print("|---|---|---|---|---|---|---|")
    for name, length, status, seconds, peak, stored in rows:
        mb = length / 2**20
        print(
            f"| {name} | {mb:.0f} | {status} | {seconds:.1f} | {mb / seconds:.0f} | "
            f"{peak:.0f} | {stored} |"
        )
    worst = max(r[4] for r in rows if r[0].startswith("radbridge"))
    print(
        f"\ngoal: gateway peak RSS < {GOAL_MB} MB: {'met' if worst < GOAL_MB else 'NOT met'} "
        f"(worst {worst:.0f} MB)"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
