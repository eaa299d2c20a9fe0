"""Batch conversion of many studies: locally, or on a Dask distributed cluster.

See :func:`radbridge.batch.runner.run_batch` and ``radbridge batch --help``.
"""

from radbridge.batch.manifest import ManifestRow, read_manifest
from radbridge.batch.runner import BatchSummary, run_batch
from radbridge.batch.tasks import RowResult, run_row

__all__ = ["BatchSummary", "ManifestRow", "RowResult", "read_manifest", "run_batch", "run_row"]
