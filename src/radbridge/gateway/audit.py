"""The audit log: one JSON object per line for every receive, job and delivery.

Only UIDs, counts, states and timings — never patient names, IDs or dates.

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
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["AuditLog"]


class AuditLog:
    """Append-only JSON-lines file, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, event: str, **fields: Any) -> None:
        """Append one event with a UTC timestamp."""
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "event": event,
            **fields,
        }
        line = json.dumps(record, sort_keys=True, default=str)
        with self._lock, self.path.open("a") as handle:
            handle.write(line + "\n")
