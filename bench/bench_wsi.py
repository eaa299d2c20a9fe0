"""Slide microscopy: a TILED_FULL SEG of a 50,000 x 50,000 level, and a million annotations.

Usage: .venv/bin/python bench/bench_wsi.py [--data DIR] [--no-highdicom]

Prepares (not timed) a blank 50,000 x 50,000 slide (tiles of 256, one level) and a
mask with 10% foreground (ten discs) as a .npy, then runs each case in its own
process: radbridge and highdicom writing the BINARY SEG (TILED_FULL, every tile) and
reading it back to a mask on the level (radbridge into a memory-mapped .npy,
highdicom's get_total_pixel_matrix), and writing and reading 1,000,000 polygon
annotations with one measurement. Each read is checked against the input. Prints one
table (copied into bench/README.md). Set BENCH_WSI_SIZE / BENCH_WSI_ANNOTATIONS for a
smaller smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(case: str, data: Path, out: Path | None = None, timeout: float = 7200) -> dict[str, object]:
    command = [sys.executable, str(HERE / "wsi_cases.py"), case, str(data)]
    if out is not None:
        command.append(str(out))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:120]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("/tmp/radbridge-bench-wsi"))
    parser.add_argument("--no-highdicom", action="store_true")
    args = parser.parse_args()
    data: Path = args.data
    if not (data / "mask.npy").exists():
        print("prepare:", run("prepare", data), flush=True)
    rows = []
    plan = [
        ("SEG write TILED_FULL", "radbridge", "rb-seg-write", "rb.seg.dcm"),
        ("SEG read to mask (memory-mapped .npy)", "radbridge", "rb-seg-read", "rb.seg.dcm"),
        ("SEG read to mask (in memory)", "radbridge", "rb-seg-read-memory", "rb.seg.dcm"),
        ("SEG write TILED_FULL", "highdicom", "hd-seg-write", "hd.seg.dcm"),
        ("SEG read to mask (in memory)", "highdicom", "hd-seg-read", "hd.seg.dcm"),
        (
            "SEG write, empty tiles omitted (TILED_SPARSE)",
            "radbridge",
            "rb-seg-write-sparse",
            "rb-sparse.seg.dcm",
        ),
        ("SEG read to mask (TILED_SPARSE)", "radbridge", "rb-seg-read", "rb-sparse.seg.dcm"),
        ("1,000,000 annotations write", "radbridge", "rb-ann-write", "rb.ann.dcm"),
        ("1,000,000 annotations read", "radbridge", "rb-ann-read", "rb.ann.dcm"),
        ("1,000,000 annotations write", "highdicom", "hd-ann-write", "hd.ann.dcm"),
        ("1,000,000 annotations read", "highdicom", "hd-ann-read", "hd.ann.dcm"),
    ]
    for task, tool, case, name in plan:
        if args.no_highdicom and tool == "highdicom":
            continue
        result = run(case, data, data / name)
        print(task, tool, result, flush=True)
        rows.append((task, tool, result))
    size = os.environ.get("BENCH_WSI_SIZE", "50000")
    print(f"\n{size} x {size} level, tiles of 256, 10% foreground; 1 process per row")
    print("| task | tool | seconds | peak anon MB | peak RSS MB (incl. mapped) | file MB | check |")
    print("|---|---|---|---|---|---|---|")
    for task, tool, r in rows:
        if "error" in r:
            print(f"| {task} | {tool} | - | - | - | - | {r['error']} |")
            continue
        check = "exact" if r.get("exact") else ("" if "exact" not in r else "DIFFERS")
        check = check or (f"checksum {r['checksum']}" if "checksum" in r else "")
        size_mb = f"{int(r['bytes']) / 1e6:.0f}" if "bytes" in r else ""
        print(
            f"| {task} | {tool} | {r['seconds']} | {r['peak_anon_mb']} | {r['peak_rss_mb']} "
            f"| {size_mb} | {check} |"
        )


if __name__ == "__main__":
    main()
