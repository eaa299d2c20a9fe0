"""The audit log: one JSON object per line for every receive, job and delivery.

Only UIDs, counts, states and timings — never patient names, IDs or dates. The
log is a record for people; the database is the state. A write that fails (full
disk) is logged once and dropped, never raised into the receiver or the loops.

Examples
--------
>>> import tempfile, pathlib, json
>>> path = pathlib.Path(tempfile.mkdtemp()) / "audit.jsonl"
>>> log = AuditLog(path)
>>> log.write("received", sop_instance_uid="1.2.3", series_instance_uid="1.2")
>>> json.loads(path.read_text())["event"]
'received'
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["AuditLog"]

log = logging.getLogger(__name__)


class AuditLog:
    """Append-only JSON-lines file, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._failing = False

    def write(self, event: str, **fields: Any) -> None:
        """Append one event with a UTC timestamp."""
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "event": event,
            **fields,
        }
        line = json.dumps(record, sort_keys=True, default=str)
        with self._lock:
            try:
                with self.path.open("a") as handle:
                    handle.write(line + "\n")
            except OSError as exc:  # a full disk must not turn a stored instance into a refusal
                if not self._failing:
                    log.error("cannot write the audit log (%s); events are lost", exc.strerror)
                self._failing = True
                return
            if self._failing:
                log.warning("audit log writable again")
            self._failing = False
