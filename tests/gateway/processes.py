"""A real `radbridge gateway run` in a subprocess, and DCMTK storescu feeding it.

Shared by the crash and fault tests: start, kill -9 or stop the gateway; read its
database and audit log; send a series with storescu and cut it after N responses.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pydicom

from tests.net.helpers import dataset_bytes
from tests.peers import wait_for_port

STORESCU = "/usr/bin/storescu"


def write_config(
    folder: Path,
    *,
    port: int,
    pacs_port: int,
    quiet: float = 1.0,
    pacs_ae: str = "PACS",
    outputs: Sequence[str] = ("seg",),
    destinations: Sequence[str] = ("pacs", "archive"),
    extra: str = "",
    data_dir: str = "data",
    model: str = "reference-ct",
    modality: str = "CT",
) -> Path:
    """Write a gateway.toml: one rule (CT, the reference model), a DIMSE peer ``pacs``."""
    config = folder / "gateway.toml"
    config.write_text(
        f"""
[gateway]
data_dir = "{data_dir}"
port = {port}
quiet_period_s = {quiet}
retry_base_s = 0.2
delivery_attempts = 100
{extra}

[[rules]]
name = "{modality.lower()}"
model = "{model}"
outputs = {json.dumps(list(outputs))}
destinations = {json.dumps(list(destinations))}
[rules.match]
modality = ["{modality}"]

[peers.pacs]
ae_title = "{pacs_ae}"
host = "127.0.0.1"
port = {pacs_port}
timeout_s = 5
"""
    )
    return config


class GatewayProcess:
    """`radbridge gateway run --config CONFIG`, optionally behind a command ``prefix``."""

    def __init__(
        self,
        config: Path,
        port: int,
        *,
        prefix: Sequence[str] = (),
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        self.config = config
        self.log = config.parent / "gateway.log"
        argv = list(command or [sys.executable, "-m", "radbridge", "gateway", "run"])
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*prefix, *argv, "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=config.parent,
                env={**os.environ, **(env or {})},
            )
        if wait:
            wait_for_port("127.0.0.1", port, timeout=60, proc=self.proc)

    @property
    def root(self) -> Path:
        """The process's view of ``/`` (its own mounts, e.g. a private tmpfs)."""
        return Path(f"/proc/{self.proc.pid}/root")

    def kill9(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM (jobs in flight finish), SIGKILL after a minute."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the gateway's output."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def db_rows(data: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run a read query on a gateway's database (another process may be writing it)."""
    with sqlite3.connect(f"file:{data / 'gateway.sqlite'}?mode=ro", uri=True, timeout=30) as db:
        return list(db.execute(sql, args))


def audit_events(data: Path, event: str | None = None) -> list[dict[str, Any]]:
    """The gateway's audit log, optionally only one kind of event."""
    path = data / "audit.jsonl"
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return [e for e in events if event is None or e["event"] == event]


def wait_until(
    predicate: Callable[[], Any], timeout: float = 180.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` every 0.2 s until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(what)


def gateway_status(config: Path) -> dict[str, Any]:
    """`radbridge gateway status --json --config CONFIG`, decoded."""
    out = subprocess.run(
        [sys.executable, "-m", "radbridge", "gateway", "status", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def copies_by_uid(folder: Path) -> dict[str, set[bytes]]:
    """Every distinct data set a receiver (storescp +uf keeps each copy) got, by SOP UID."""
    found: dict[str, set[bytes]] = {}
    for path in folder.iterdir():
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        found.setdefault(uid, set()).add(dataset_bytes(path))
    return found


def jobs_done(data: Path) -> bool:
    """Whether there are jobs and every one is done."""
    states = [r[0] for r in db_rows(data, "SELECT state FROM jobs")]
    return bool(states) and all(s == "done" for s in states)


class Storescu:
    """DCMTK storescu sending ``files`` on one association; optionally SIGKILLed after
    ``kill_after`` Success responses (the modality that loses its connection), or
    SIGSTOPped after ``pause_after`` (the association stays open, mid-series, until
    :meth:`resume`; ``paused`` is set then)."""

    def __init__(
        self,
        files: Sequence[Path],
        port: int,
        *,
        kill_after: int | None = None,
        pause_after: int | None = None,
    ):
        self.acked = 0
        self.kill_after = kill_after
        self.pause_after = pause_after
        self.paused = threading.Event()
        self.proc = subprocess.Popen(
            [STORESCU, "-v", "-aec", "RADBRIDGE", "-R", "127.0.0.1", str(port), *map(str, files)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if "Received Store Response (Success)" in line:
                self.acked += 1
                if self.kill_after is not None and self.acked >= self.kill_after:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    return
                if self.pause_after is not None and self.acked == self.pause_after:
                    os.kill(self.proc.pid, signal.SIGSTOP)
                    self.paused.set()

    def resume(self) -> None:
        """Let a paused storescu go on (it finds out then what became of its peer)."""
        os.kill(self.proc.pid, signal.SIGCONT)

    def wait(self, timeout: float = 300.0) -> int:
        """Wait for storescu to end; return its exit code."""
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code
