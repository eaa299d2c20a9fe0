"""The gateway's durable state: one SQLite database (WAL, synchronous=FULL) beside the spool.

Every SQL statement of the gateway is in this package; the rest of the gateway
and the CLI use :class:`Store`'s typed methods, which return the frozen records of
:mod:`radbridge.gateway.store.records`.

Tables: ``transfers`` (each association or STOW-RS request and how it ended),
``instances`` (every stored content, written after its file is durable),
``series`` (arrival bookkeeping, holds, completeness), ``versions`` and
``version_inputs`` (the frozen input set of each version), ``jobs`` (the
queue), ``results`` (every result object and its digest), ``deliveries``
(one row per result file and destination), ``alerts`` (one row per urgent
job and alert destination), ``purge_files`` (the files the retention sweep
is removing) and ``swept`` (counts of the unrecorded files it removed). A
database of an older schema is upgraded when opened (schema 2 → 3 adds
``alerts``, 3 → 4 the pseudonyms, 4 → 5 ``series.holds``, 5 → 6 what retention
purged: ``series.purged_*``, ``versions.purged_at``, ``purge_files``;
6 → 7 ``series.retention_from``; 7 → 8 ``swept``, what the sweep of unrecorded and
partial files removed).
Every state change is a single committed transaction, so a crash at any point
leaves a state the gateway resumes from; instance records made at the same time
by several receiver threads share one transaction and its fsync (group commit,
:attr:`Store.commit_counts`), each returning only once it is committed.
Only UIDs, digests, counts and timings are stored — no patient data.

Examples
--------
>>> import tempfile, pathlib
>>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "gateway.sqlite")
>>> store.open_transfer("t1", now=1.0)
>>> store.record_instance("1.2.3", "1.2.3.4", "1.2.3.4.5", "ab" * 32, "a.dcm",
...                       transfer="t1", now=2.0)
'new'
>>> store.end_transfer("t1", "aborted", now=3.0)
['1.2.3.4']
>>> store.series_row("1.2.3.4").held_reason
'transfer aborted'

The job queue:

>>> job_id = store.enqueue("1.2.3.4", "1.2.3", version=1, rule="r", model="m", priority=0,
...                        instance_count=10, now=100.0)
>>> store.claim_job(now=100.0).id == job_id
True
>>> store.fail_job(job_id, "boom", Retry(max_attempts=3, base_s=2.0), now=100.0)
'queued'
>>> store.claim_job(now=101.0) is None, store.claim_job(now=102.0).attempts
(True, 2)
"""

from radbridge.gateway.store import records
from radbridge.gateway.store._db import SCHEMA_VERSION
from radbridge.gateway.store._group import CommitCounts
from radbridge.gateway.store._store import Store
from radbridge.gateway.store.records import *  # noqa: F403 - the records, listed once there

__all__ = [*records.__all__, "SCHEMA_VERSION", "CommitCounts", "Store"]
