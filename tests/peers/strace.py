"""strace (Debian package ``strace``): the system calls a real process makes, in order.

Used to check durability where ``kill -9`` cannot: a process killed after an fsync it
never made loses nothing on a healthy disk, so only the order of the calls shows that
an acknowledgement waited for the data to be on disk.

``strace -f -yy`` prints one call per line, prefixed by the thread id, with file
descriptors annotated by their path (``fsync(8</data/spool/a/b>)``) or socket
(``sendto(7<TCP:[127.0.0.1:11112->127.0.0.1:5555]>, ...)``). A call interrupted by
another thread's is split into ``<unfinished ...>`` and ``<... name resumed>`` lines;
:func:`parse_trace` joins them into one :class:`Call` with a start and an end position.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ._common import require_file

__all__ = ["Call", "parse_trace", "stop_traced", "strace_command"]

STRACE = Path("/usr/bin/strace")

_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<rest>.*)$")
_START = re.compile(r"^(?P<name>\w+)\((?P<args>.*)$")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>(?P<args>.*)$")


@dataclass(frozen=True)
class Call:
    """One system call: thread, name, argument text (with its result), start and end order."""

    pid: int
    name: str
    text: str
    start: int
    end: int


def strace_command(output: Path, syscalls: Iterable[str], *, string_limit: int = 16) -> list[str]:
    """Return the strace prefix that traces ``syscalls`` of a program and its threads.

    ``string_limit``: how many bytes of each buffer strace prints (``-s``).
    """
    program = require_file(STRACE, what="strace (Debian package strace)")
    return [
        str(program),
        "-f",
        "--seccomp-bpf",  # stop only at the traced calls: the program runs near full speed
        "-yy",
        "-s",
        str(string_limit),
        "-e",
        "trace=" + ",".join(syscalls),
        "-o",
        str(output),
    ]


def parse_trace(text: str) -> list[Call]:
    """Return the calls of an ``strace -f -yy`` log in the order they started."""
    calls: list[Call] = []
    pending: dict[tuple[int, str], tuple[int, str]] = {}
    for index, line in enumerate(text.splitlines()):
        match = _LINE.match(line)
        if match is None:
            continue
        pid, rest = int(match["pid"]), match["rest"]
        resumed = _RESUMED.match(rest)
        if resumed is not None:
            start, args = pending.pop((pid, resumed["name"]), (index, ""))
            calls.append(Call(pid, resumed["name"], args + resumed["args"], start, index))
            continue
        started = _START.match(rest)
        if started is None:  # signals, exits
            continue
        if rest.endswith("<unfinished ...>"):
            pending[(pid, started["name"])] = (index, started["args"])
            continue
        calls.append(Call(pid, started["name"], started["args"], index, index))
    return sorted(calls, key=lambda call: call.start)


def stop_traced(strace: subprocess.Popen[bytes], *, grace: float = 30.0) -> None:
    """SIGTERM the program strace runs (not strace: it would detach and leave it running)."""
    children = Path(f"/proc/{strace.pid}/task/{strace.pid}/children")
    try:
        pids = [int(p) for p in children.read_text().split()]
    except OSError:  # strace already exited
        pids = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        strace.wait(timeout=grace)  # strace exits when its program does
    except subprocess.TimeoutExpired:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        strace.kill()
        strace.wait(timeout=10)
