"""What a retrieve brought, by either standard (C-GET, C-MOVE, WADO-RS).

Examples
--------
>>> report = RetrieveReport("PACS@127.0.0.1:104")
>>> report.files, report.failed
([], 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RetrieveReport"]


@dataclass
class RetrieveReport:
    """What a retrieve brought: files written, failures, sub-operation counts."""

    peer: str
    files: list[Path] = field(default_factory=list)
    failed: int = 0
    warnings: int = 0
    seconds: float = 0.0
