"""The gateway store: arrivals, versions, the queues, and what ``gateway status`` reads."""

from __future__ import annotations

from pathlib import Path

from radbridge.errors import GatewayError
from radbridge.gateway.store._retention import Retention
from radbridge.gateway.store.records import DeliveryState, Job, JobState, SeriesState

__all__ = ["Store"]


def _seconds(value: float | None) -> float:
    return float("nan") if value is None else float(value)


class Store(Retention):
    """Thread-safe access to the gateway database (see :mod:`radbridge.gateway.store`).

    ``Store(path)`` opens or creates the SQLite file (and its folder); it raises
    :class:`~radbridge.errors.GatewayError` when the file holds the tables of an
    older radbridge.
    """

    @classmethod
    def open_existing(cls, path: str | Path, *, data_dir: Path | None = None) -> Store:
        """Open the database of a gateway that has run (never create one).

        Raises
        ------
        GatewayError
            There is no database at ``path``.
        """
        path = Path(path)
        folder = data_dir or path.parent
        if not path.is_file():
            raise GatewayError(
                f"{folder} is not a gateway data directory (no {path.name})",
                path=folder,
                attribute="data_dir",
                hint="give the --data-dir (or --config) of a gateway that has run",
            )
        return cls(path)

    # -- what `gateway status` reports -----------------------------------------

    def job_counts(self) -> dict[str, int]:
        """Return the number of jobs in each state."""
        return self._state_counts("jobs")

    def delivery_counts(self) -> dict[str, int]:
        """Return the number of deliveries in each state."""
        return self._state_counts("deliveries")

    def series_counts(self) -> dict[str, int]:
        """Return the series ``held`` now, and the versions assembled ``complete``/``incomplete``.

        A version is one frozen input set of a series (a series re-sent with other
        content, or re-run with ``--force``, gets another).
        """
        (held,) = self._rows("SELECT COUNT(*) AS n FROM series WHERE held_reason IS NOT NULL")
        rows = self._rows("SELECT complete, COUNT(*) AS n FROM versions GROUP BY complete")
        counts = {"held": int(held["n"]), "complete": 0, "incomplete": 0}
        for row in rows:
            counts["complete" if row["complete"] else "incomplete"] += int(row["n"])
        return counts

    def refused_count(self) -> int:
        """Return how many instances the receivers refused (over every transfer)."""
        (row,) = self._rows("SELECT COALESCE(SUM(refused), 0) AS n FROM transfers")
        return int(row["n"])

    def recent_deliveries(self, limit: int) -> list[DeliveryState]:
        """Return the newest ``limit`` deliveries (result file and destination), newest first."""
        rows = self._rows("SELECT * FROM deliveries ORDER BY rowid DESC LIMIT ?", limit)
        return [DeliveryState.from_row(row) for row in rows]

    def received_counts(self) -> tuple[int, int]:
        """Return how many series and instances were received (purged ones too)."""
        (row,) = self._rows(
            "SELECT COUNT(*) AS series, "
            "COALESCE(SUM(instance_count + purged_instances), 0) AS n FROM series"
        )
        return int(row["series"]), int(row["n"])

    def recent_jobs(self, limit: int, *, state: str | None = None) -> list[Job]:
        """Return the newest ``limit`` jobs (of one ``state``), newest first."""
        if state is None:
            rows = self._rows("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", limit)
        else:
            rows = self._rows(
                "SELECT * FROM jobs WHERE state = ? ORDER BY id DESC LIMIT ?", state, limit
            )
        return [Job.from_row(row) for row in rows]

    def held_series(self, limit: int) -> list[SeriesState]:
        """Return the series on hold, the most recently held first."""
        return self._series(
            "SELECT * FROM series WHERE held_reason IS NOT NULL ORDER BY held_at DESC LIMIT ?",
            limit,
        )

    def arriving_series(self, limit: int) -> list[SeriesState]:
        """Return the series with content not yet assembled and not on hold, newest first."""
        return self._series(
            "SELECT * FROM series WHERE revision > assembled_revision AND held_reason IS NULL "
            "ORDER BY last_received_at DESC LIMIT ?",
            limit,
        )

    def done_latencies(self) -> list[tuple[float, float]]:
        """Return ``(last instance -> done, started -> done)`` seconds of every done job.

        From the last instance of the version the job ran on (later arrivals are
        another version), so a latency is never negative.
        """
        rows = self._rows(
            "SELECT j.finished_at - v.last_received_at AS total, "
            "j.finished_at - j.started_at AS run FROM jobs j JOIN versions v "
            "ON v.series_instance_uid = j.series_instance_uid AND v.version = j.version "
            "WHERE j.state = ? AND j.finished_at IS NOT NULL",
            JobState.DONE,
        )
        return [(_seconds(row["total"]), _seconds(row["run"])) for row in rows]
