"""Whole-process SEG times: what a user waits for, start-up and file I/O included.

Used by bench_seg.py (``--only whole``). highdicom runs as a user's program of its
own (seg_cases.py's create case; ``seg_whole.py highdicom read SEG OUT.npy``), so it
pays its own start-up just as ``radbridge`` and dcmqi's executables do.

Every case is one process, timed from the outside (best of ``repeats``):

* radbridge: the CLI a user runs, ``radbridge seg encode`` (NRRD mask + labels JSON)
  and ``radbridge seg decode`` (label map to NRRD).
* dcmqi 1.5.7: ``itkimage2segimage`` (the same NRRD + its metadata JSON) and
  ``segimage2itkimage --mergeSegments -t nrrd``.
* highdicom 0.28: a short program (imports, read the source headers, ``np.load`` the
  label map -- its cheapest input -- build and save; or ``segread``, ``get_volume``,
  ``np.save``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
JPEGLS = "1.2.840.10008.1.2.4.80"

#: (task, tool) -> goal as (ratio, against tool) or (seconds, None), from issue 15.
GOALS: dict[tuple[str, str], tuple[float, str | None]] = {
    ("BINARY write", "highdicom"): (0.2, "highdicom"),
    ("BINARY write", "dcmqi"): (0.33, "dcmqi"),
    ("BINARY read", "highdicom"): (0.2, "highdicom"),
    ("LABELMAP write", "dcmqi"): (1.0, "dcmqi"),
    ("LABELMAP read", "dcmqi"): (1.0, "dcmqi"),
    ("import radbridge.iods.seg", "-"): (0.2, None),
    ("radbridge --help", "-"): (0.15, None),
}


def best_of(command: list[str | Path], repeats: int) -> float:
    """Best wall time of ``repeats`` runs of ``command`` (it must exit 0)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"{command[0]} failed: {tail[-1:] or '?'}")
        best = min(best, seconds)
    return best


def cases(data: Path, out: Path, count: int) -> list[tuple[str, str, list[str | Path]]]:
    """(task, tool, command) for every whole-process case, in running order."""
    rb = BIN / "radbridge"
    py = sys.executable
    me = Path(__file__).resolve()
    dq_out = out / "dcmqi-read"
    encode = [rb, "seg", "encode", "--source", data / "dicom", "--mask"]
    mask, labels = data / f"labels_{count}.nrrd", data / f"labels_{count}.json"
    dq_write = [
        BIN / "itkimage2segimage",
        "--inputImageList",
        mask,
        "--inputDICOMDirectory",
        data / "dicom",
        "--inputMetadata",
        data / f"meta_{count}.json",
        "--skip",
        "1",
    ]

    # seg_cases.py's highdicom case is the whole highdicom program (its own timing is ignored)
    def hd_create(kind: str, name: str) -> list[str | Path]:
        case = f"highdicom:create:{kind}:explicit"
        return [py, HERE / "seg_cases.py", case, data, str(count), out / name]

    lm_encode = [*encode, mask, "--labels", labels, "--type", "labelmap"]
    dq_read = [BIN / "segimage2itkimage", "--outputDirectory", dq_out, "-t", "nrrd"]
    binary, labelmap, compact = out / "rb-binary.dcm", out / "rb-labelmap.dcm", out / "rb-lm-ls.dcm"
    return [
        ("start-up", "python -c pass", [py, "-c", "pass"]),
        ("import radbridge.iods.seg", "-", [py, "-c", "import radbridge.iods.seg"]),
        ("radbridge --help", "-", [rb, "--help"]),
        ("BINARY write", "radbridge", [*encode, mask, "--labels", labels, "-o", binary]),
        ("BINARY write", "highdicom", hd_create("binary", "hd-b.dcm")),
        ("BINARY write", "dcmqi", [*dq_write, "--outputDICOM", out / "dq-binary.dcm"]),
        ("LABELMAP write", "radbridge", [*lm_encode, "-o", labelmap]),
        (
            "LABELMAP write",
            "radbridge --profile compact",
            [*lm_encode, "--profile", "compact", "-o", compact],
        ),
        ("LABELMAP write", "highdicom", hd_create("labelmap", "hd-l.dcm")),
        (
            "LABELMAP write",
            "dcmqi",
            [*dq_write, "--segmentationType", "labelmap", "--outputDICOM", out / "dq-lm.dcm"],
        ),
        ("BINARY read", "radbridge", [rb, "seg", "decode", binary, "-o", out / "rb-b.nrrd"]),
        ("BINARY read", "highdicom", [py, me, "highdicom", "read", binary, out / "hd-b.npy"]),
        ("BINARY read", "dcmqi", [*dq_read, "--inputDICOM", binary, "--mergeSegments"]),
        ("LABELMAP read", "radbridge", [rb, "seg", "decode", labelmap, "-o", out / "rb-l.nrrd"]),
        ("LABELMAP read", "highdicom", [py, me, "highdicom", "read", labelmap, out / "hd-l.npy"]),
        ("LABELMAP read", "dcmqi", [*dq_read, "--inputDICOM", labelmap, "--mergeSegments"]),
        (
            "LABELMAP read (compact, JPEG-LS)",
            "radbridge",
            [rb, "seg", "decode", compact, "-o", out / "rb-ls.nrrd"],
        ),
        (
            "LABELMAP read (compact, JPEG-LS)",
            "highdicom",
            [py, me, "highdicom", "read", compact, out / "hd-ls.npy"],
        ),
    ]


def compile_radbridge() -> None:
    """Write radbridge's bytecode, as ``pip install`` does for an installed package.

    An editable install (this checkout) has none until a run writes it, and with
    ``PYTHONDONTWRITEBYTECODE`` set no run does: every process would compile
    radbridge's ~100 modules again (0.1-0.15 s), which no installed radbridge does.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("radbridge")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        compileall.compile_dir(folder, quiet=1)


def run_whole(data: Path, out: Path, count: int, repeats: int) -> list[tuple[str, str, float]]:
    """Run every case (writes first: the reads use radbridge's files); return the times."""
    compile_radbridge()
    shutil.rmtree(out, ignore_errors=True)
    (out / "dcmqi-read").mkdir(parents=True)
    rows = []
    for task, tool, command in cases(data, out, count):
        rows.append((task, tool, best_of(command, repeats)))
        print(f"  {task} / {tool}: {rows[-1][2]:.3f} s", file=sys.stderr, flush=True)
    return rows


def print_whole(rows: list[tuple[str, str, float]]) -> None:
    """Print the table: each tool's time, radbridge's time over it, and the goal."""
    ours = {task: s for task, tool, s in rows if tool == "radbridge"}
    print("| task | program | seconds | radbridge time ÷ this | goal | met |")
    print("|---|---|---:|---:|---|---|")
    for task, tool, seconds in rows:
        ratio, goal, met = "", "", ""
        if task in ours and not tool.startswith("radbridge"):
            ratio = f"{ours[task] / seconds:.2f}"
        target = GOALS.get((task, tool))
        if target is not None:
            limit, against = target
            value = ours[task] / seconds if against else seconds
            goal = f"≤ {limit:g}×" if against else f"≤ {limit:g} s"
            met = "yes" if value <= limit else "**no**"
        print(f"| {task} | {tool} | {seconds:.3f} | {ratio} | {goal} | {met} |")


# -- the highdicom user's program -------------------------------------------------------


def highdicom_read(path: Path, out: Path) -> None:
    """Read a SEG into one label volume and save it as .npy."""
    import highdicom as hd
    import numpy as np

    volume = hd.seg.segread(path).get_volume(combine_segments=True)
    np.save(out, volume.array)


def main() -> None:
    tool, action, *args = sys.argv[1:]
    if (tool, action) == ("highdicom", "read"):
        highdicom_read(Path(args[0]), Path(args[1]))
    else:
        raise SystemExit(f"unknown case {tool} {action}")


if __name__ == "__main__":
    main()
