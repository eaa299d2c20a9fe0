"""Pseudonyms: the seed and UID mapping of each de-identified series version.

Kept in the state database (0600) so that a job run again after a crash
re-identifies its results with the mapping that was fixed before its model
ran. The mapping links pseudonyms to originals: it is never logged and never
leaves the database except to re-identify.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Mapping

from radbridge.errors import GatewayError
from radbridge.gateway.store._queue import Queue

__all__ = ["Pseudonyms"]


class Pseudonyms(Queue):
    """Save and read the pseudonym mapping of a series version (first save wins)."""

    def pseudonyms(self, series_uid: str, version: int) -> tuple[str, dict[str, str]] | None:
        """Return ``(seed, {original UID: pseudonym})`` of a version, or None if never saved."""
        rows = self._rows(
            "SELECT seed FROM deid_seeds WHERE series_instance_uid = ? AND version = ?",
            series_uid,
            version,
        )
        if not rows:
            return None
        uids = self._rows(
            "SELECT original_uid, pseudonym_uid FROM deid_uids "
            "WHERE series_instance_uid = ? AND version = ?",
            series_uid,
            version,
        )
        return str(rows[0]["seed"]), {str(r[0]): str(r[1]) for r in uids}

    def save_pseudonyms(
        self,
        series_uid: str,
        version: int,
        seed: str,
        uids: Mapping[str, str],
        *,
        now: float | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Keep the mapping of a version, in one transaction; return the one kept.

        A version that already has a mapping keeps it (a job run again after a
        crash must re-identify with the pseudonyms its first run fixed).

        Raises
        ------
        GatewayError
            The database file can be read by others than its owner (the mapping
            would be readable: give the gateway ``file_mode = 0o600``).
        """
        self._check_private()
        with self._transaction() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO deid_seeds VALUES (?, ?, ?, ?)",
                (series_uid, version, seed, now or time.time()),
            ).rowcount
            if inserted:
                db.executemany(
                    "INSERT INTO deid_uids VALUES (?, ?, ?, ?)",
                    [(series_uid, version, o, p) for o, p in uids.items()],
                )
        kept = self.pseudonyms(series_uid, version)
        assert kept is not None
        return kept

    def _check_private(self) -> None:
        mode = stat.S_IMODE(os.stat(self.path).st_mode)
        if mode & 0o077:
            raise GatewayError(
                f"the state database is readable by others (mode {mode:#o}), so it cannot "
                "keep the pseudonym mapping of a de-identified series",
                path=self.path,
                attribute="file_mode",
                hint="set file_mode = 0o600 under [gateway] (and chmod 600 the database)",
            )
