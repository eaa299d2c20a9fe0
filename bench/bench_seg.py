"""SEG benchmark: radbridge vs highdicom, dcmqi, pydicom-seg and the NumPy floor.

Usage: .venv/bin/python bench/bench_seg.py [--repeats 3] [--counts 10 100] [--size 512]
       [--only whole|inprocess] [--whole-repeats 5]

Two tables. Whole processes (seg_whole.py): the CLI or program a user runs, start-up,
imports and file I/O included, best of ``--whole-repeats``, with issue 15's goals.
In-process (seg_cases.py): each case in its own process, the median wall time of the
timed part only, the peak RSS of that process, and ratios against radbridge.
pydicom-seg needs pydicom < 3, so it runs from bench/.venvs/pydicom-seg (created here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PYSEG_VENV = HERE / ".venvs" / "pydicom-seg"


def ensure_pydicom_seg() -> Path:
    python = PYSEG_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", PYSEG_VENV], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "pydicom-seg", "pydicom<3"], check=True
        )
    return python


def run(command: list[str | Path], repeats: int) -> dict[str, object]:
    runs = []
    for _ in range(repeats):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
            return {"error": tail[0][:120]}
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = sorted(runs, key=lambda r: float(r["seconds"]))[len(runs) // 2]
    best["seconds"] = statistics.median(float(r["seconds"]) for r in runs)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--only", choices=("whole", "inprocess"))
    parser.add_argument("--whole-repeats", type=int, default=5)
    args = parser.parse_args()
    data = RESULTS / f"seg-data-{args.slices}x{args.size}"
    if not (data / "labels_100.json").exists():
        subprocess.run(
            [
                sys.executable,
                HERE / "seg_data.py",
                data,
                "--slices",
                str(args.slices),
                "--size",
                str(args.size),
            ],
            check=True,
        )
    if args.only != "inprocess":
        from seg_whole import print_whole, run_whole

        count = max(args.counts)
        print(f"Whole processes, {args.slices}x{args.size}x{args.size}, {count} organs:")
        print_whole(run_whole(data, RESULTS / "seg-whole", count, args.whole_repeats))
    if args.only == "whole":
        return
    pyseg = ensure_pydicom_seg()
    cases = HERE / "seg_cases.py"
    rows: list[tuple[int, str, str, dict[str, object]]] = []
    for count in args.counts:
        out = RESULTS / f"seg-{count}"
        out.mkdir(parents=True, exist_ok=True)

        def case(task: str, tool: str, spec: str, target: Path, *, count: int = count) -> None:
            result = run([sys.executable, cases, spec, data, str(count), target], args.repeats)
            rows.append((count, task, tool, result))

        for kind, syntax in (
            ("binary", "explicit"),
            ("labelmap", "explicit"),
            ("labelmap", "jpegls"),
        ):
            task = f"create {kind.upper()} {'JPEG-LS' if syntax == 'jpegls' else 'native'}"
            for tool in ("radbridge", "highdicom"):
                case(
                    task,
                    tool,
                    f"{tool}:create:{kind}:{syntax}",
                    out / f"{tool}-{kind}-{syntax}.dcm",
                )
        case("create BINARY native", "dcmqi", "dcmqi:create", out / "dcmqi-binary.dcm")
        rows.append(
            (
                count,
                "create BINARY native",
                "pydicom-seg",
                run(
                    [
                        pyseg,
                        HERE / "seg_cases_pydicom_seg.py",
                        "create",
                        data,
                        str(count),
                        out / "pyseg-binary.dcm",
                    ],
                    args.repeats,
                ),
            )
        )
        case("create BINARY native", "numpy floor", "floor:create", out / "floor.bin")
        binary = out / "radbridge-binary-explicit.dcm"
        for tool in ("radbridge", "highdicom", "dcmqi"):
            case("read BINARY native", tool, f"{tool}:read", binary)
        rows.append(
            (
                count,
                "read BINARY native",
                "pydicom-seg",
                run(
                    [pyseg, HERE / "seg_cases_pydicom_seg.py", "read", data, str(count), binary],
                    args.repeats,
                ),
            )
        )
        case("read BINARY native", "numpy floor", "floor:read", binary)
        for syntax, label in (("explicit", "native"), ("jpegls", "JPEG-LS")):
            path = out / f"radbridge-labelmap-{syntax}.dcm"
            tools = (
                ("radbridge", "highdicom", "dcmqi")
                if syntax == "explicit"
                else ("radbridge", "highdicom")
            )
            for tool in tools:
                case(f"read LABELMAP {label}", tool, f"{tool}:read", path)
    print_table(rows)
    (RESULTS / "seg.json").write_text(json.dumps(rows, indent=1))


def print_table(rows: list[tuple[int, str, str, dict[str, object]]]) -> None:
    base = {(c, t): r for c, t, tool, r in rows if tool == "radbridge" and "seconds" in r}
    print("| segments | task | tool | seconds | x radbridge time | peak RSS MB | file MB |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for count, task, tool, result in rows:
        if "error" in result:
            print(f"| {count} | {task} | {tool} | failed: {result['error']} | | | |")
            continue
        ref = base.get((count, task))
        ratio = f"{float(result['seconds']) / float(ref['seconds']):.2f}" if ref else "-"
        print(
            f"| {count} | {task} | {tool} | {float(result['seconds']):.3f} | {ratio} | "
            f"{result['peak_rss_mb']} | {int(result['bytes']) / 1e6:.1f} |"
        )


if __name__ == "__main__":
    main()
