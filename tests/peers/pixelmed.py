"""PixelMed validators (Debian ``libpixelmed-java``): SR templates and SEG instances.

``DicomSRValidator`` checks SR/KOS content against the DICOM templates (TID 1500, 1501,
1410, 1411, 1419, 300, 2010, ...); ``DicomInstanceValidator`` checks BINARY/FRACTIONAL
SEG instances (it does not know Label Map SEG and reports "IOD (SOP Class) unrecognized").

A JVM start plus the XSLT compile costs seconds to tens of seconds, so both functions
take MANY files and validate them in one JVM through ``java/BatchValidate.java`` (a
single-file source program; needs a JDK's ``jdk.compiler`` module). Without a JDK they
fall back to one official ``main`` call per file. The exit code is always 0: results come
from ``^Error:`` / ``^Warning:`` lines. A file the validator does not recognise counts as
an error, so a test cannot pass by validating nothing.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ._common import (
    PeerCommandError,
    PeerMissingError,
    ValidationResult,
    classify_lines,
    require_file,
    run,
)

__all__ = ["PIXELMED_JAR", "java_command", "validate_instances", "validate_sr"]

PIXELMED_JAR = Path("/usr/share/java/pixelmed.jar")
_BATCH_SOURCE = Path(__file__).with_name("java") / "BatchValidate.java"
# Without these the XSLT compile fails on JDK 17 (see ../shared/PEERS.md).
_JAVA_FLAGS = (
    "-Djdk.xml.xpathExprGrpLimit=0",
    "-Djdk.xml.xpathExprOpLimit=0",
    "-Djdk.xml.xpathTotalOpLimit=0",
    "-Djava.awt.headless=true",
)
_ERROR = re.compile(r"^(Error:|IOD \(SOP Class\) unrecognized)")
_WARNING = re.compile(r"^Warning:")
_BEGIN = "@@@ BEGIN "
_END = "@@@ END "


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise PeerMissingError(
            "java not found on PATH; scripts/install-system.sh installs a headless JDK"
        )
    return java


def java_command() -> list[str]:
    """Return ``java <flags> -cp pixelmed.jar`` (raises if java or the jar is missing)."""
    require_file(PIXELMED_JAR, what="PixelMed (Debian package libpixelmed-java)")
    return [_java(), *_JAVA_FLAGS, "-cp", str(PIXELMED_JAR)]


@functools.cache
def _can_launch_source() -> bool:
    done = subprocess.run(
        [_java(), "--list-modules"], capture_output=True, text=True, check=False, timeout=60
    )
    return "jdk.compiler" in done.stdout


def _files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    files = [Path(p).absolute() for p in paths]
    if not files:
        raise ValueError("give at least one file to validate")
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"no such file to validate: {f}")
    return files


def _result(path: Path, text: str) -> ValidationResult:
    errors, warnings = classify_lines(text, error=_ERROR, warning=_WARNING)
    return ValidationResult(errors=errors, warnings=warnings, output=text, path=path)


def _run_batch(mode: str, files: list[Path], timeout: float) -> dict[Path, ValidationResult]:
    cmd = java_command()
    done = run(cmd[0], [*cmd[1:], _BATCH_SOURCE, mode, *files], timeout=timeout)
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in done.stdout.splitlines():
        if line.startswith(_BEGIN):
            current = blocks.setdefault(line[len(_BEGIN) :], [])
        elif line.startswith(_END):
            current = None
        elif current is not None:
            current.append(line)
    missing = [f for f in files if str(f) not in blocks]
    if done.returncode != 0 or missing:
        raise PeerCommandError(
            f"PixelMed batch validation failed (exit {done.returncode}); no report for "
            f"{[str(m) for m in missing]}\n--- stderr ---\n{done.stderr[-4000:]}"
        )
    return {f: _result(f, "\n".join(blocks[str(f)]) + "\n") for f in files}


def _run_each(main_class: str, files: list[Path], timeout: float) -> dict[Path, ValidationResult]:
    cmd = java_command()
    results: dict[Path, ValidationResult] = {}
    for f in files:
        done = run(cmd[0], [*cmd[1:], main_class, f], timeout=timeout)
        if "Exception" in done.stderr and not done.stdout.strip():
            raise PeerCommandError(f"{main_class} failed on {f}:\n{done.stderr[-4000:]}")
        results[f] = _result(f, done.stdout)
    return results


def validate_sr(
    paths: Sequence[str | os.PathLike[str]], *, timeout: float = 900.0
) -> dict[Path, ValidationResult]:
    """Validate SR/KOS files against their IOD and root template with PixelMed.

    Returns one result per file, keyed by its absolute path, in input order. The
    output names the root template found (e.g. ``Found Root Template TID_1500``).
    """
    files = _files(paths)
    if _can_launch_source():
        return _run_batch("sr", files, timeout)
    return _run_each("com.pixelmed.validate.DicomSRValidator", files, timeout)


def validate_instances(
    paths: Sequence[str | os.PathLike[str]], *, timeout: float = 900.0
) -> dict[Path, ValidationResult]:
    """Validate instances (BINARY/FRACTIONAL SEG, ...) with ``DicomInstanceValidator``."""
    files = _files(paths)
    if _can_launch_source():
        return _run_batch("instance", files, timeout)
    return _run_each("com.pixelmed.validate.DicomInstanceValidator", files, timeout)
