"""What a retrieve brought, by either standard (C-GET, C-MOVE, WADO-RS).

Examples
--------
>>> report = RetrieveReport("PACS@127.0.0.1:104")
>>> report.files, report.failed
([], 0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RetrieveProgress", "RetrieveReport"]

#: Called with (instances written, None) as a retrieve goes on (the total is not known).
RetrieveProgress = Callable[[int, int | None], None]


@dataclass
class RetrieveReport:
    """What a retrieve brought: files written, failures, sub-operation counts."""

    peer: str
    files: list[Path] = field(default_factory=list)
    failed: int = 0
    warnings: int = 0
    seconds: float = 0.0
    progress: RetrieveProgress | None = field(default=None, repr=False, compare=False)

    def add(self, path: Path) -> None:
        """Record an instance written to ``path`` (and tell ``progress``)."""
        self.files.append(path)
        if self.progress is not None:
            self.progress(len(self.files), None)
