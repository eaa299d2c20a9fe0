"""What a retrieve brought, by either standard (C-GET, C-MOVE, WADO-RS).

Examples
--------
>>> report = RetrieveReport("PACS@127.0.0.1:104")
>>> report.files, report.failed
([], 0)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from radbridge.io.storage import remove_stale_temporaries
from radbridge.uids import is_valid_uid

__all__ = ["RetrieveProgress", "RetrieveReport", "remove_stale_downloads"]

log = logging.getLogger(__name__)

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


def remove_stale_downloads(
    out_dir: str | os.PathLike[str], study: str, series: str | None = None
) -> int:
    """Remove the partial files earlier retrieves of this study (or series) left; return how many.

    A retrieve killed mid-write (``kill -9``, power loss) leaves a temporary file
    in ``out_dir/<study>/<series>/``; the next retrieve into the same folder
    removes it. A file another retrieve is writing at that moment (in any
    process) is kept (see :func:`~radbridge.io.storage.remove_stale_temporary`).
    """
    if not is_valid_uid(study) or (series is not None and not is_valid_uid(series)):
        return 0  # never a path outside out_dir; the retrieve itself refuses such UIDs
    folder = Path(out_dir) / study
    stale = remove_stale_temporaries(folder / series if series else folder)
    if stale:
        log.info("removed %d partial files an earlier retrieve of %s left", stale, study)
    return stale
