"""Where jobs run: in the gateway process, or on a Dask distributed cluster.

With ``executor = "dask://HOST:8786"`` the heavy part of a job (read the series,
run the model, encode the results) runs on a Dask worker; the gateway keeps the
SQLite state and the spool and writes the outbox, so it stays the source of truth.
A worker that dies mid-job is retried by Dask, and if the job still fails it goes
back to the gateway's queue with backoff like any failure: no job is lost.
Workers read the spool by path, so it must be on storage they share with the
gateway (as for `radbridge batch`). Each worker keeps the models its jobs load in a
:class:`~radbridge.gateway.runner.ModelCache` owned by a worker plugin the executor
registers (``radbridge.gateway._dask_plugin.WorkerModels``), which closes them when
the worker stops; gateways sharing a cluster share its workers' models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from radbridge._optional import require
from radbridge.errors import ConfigError, GatewayError

__all__ = ["MODELS_PLUGIN", "DaskExecutor", "make_executor", "worker_models"]

#: The name of the worker plugin that owns a Dask worker's model cache.
MODELS_PLUGIN = "radbridge-models"


def worker_models() -> Any:
    """Return the model cache of the Dask worker running this task, or None elsewhere."""
    import sys

    distributed = sys.modules.get("distributed")  # a worker has it; elsewhere it is absent
    if distributed is None:
        return None
    try:
        worker = distributed.get_worker()
    except ValueError:  # not inside a task on a worker
        return None
    plugin = worker.plugins.get(MODELS_PLUGIN)
    return getattr(plugin, "models", None)


class DaskExecutor:
    """Run functions on a Dask distributed cluster.

    Parameters
    ----------
    address
        The scheduler, e.g. ``tcp://10.0.0.5:8786``.
    timeout_s
        Longest a job may take on the cluster.
    """

    def __init__(self, address: str, *, timeout_s: float = 3600.0) -> None:
        distributed = require("distributed", "dask", purpose="run gateway jobs on Dask")
        self.address = address
        self.timeout_s = timeout_s
        try:
            self._client = distributed.Client(address, timeout="20s")
        except OSError as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address} ({exc})",
                attribute="executor",
                hint="start `dask scheduler` and `dask worker`s, or use executor = 'local'",
            ) from exc
        from radbridge.gateway._dask_plugin import WorkerModels

        self._client.register_plugin(WorkerModels(), name=MODELS_PLUGIN)

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` on a worker and return its result."""
        future = self._client.submit(function, *args, pure=False, retries=1)
        try:
            return future.result(timeout=self.timeout_s)
        except Exception as exc:  # a killed worker or lost scheduler: the job is retried later
            if isinstance(exc, GatewayError) or type(exc).__module__.startswith("radbridge"):
                raise
            raise GatewayError(
                f"the Dask cluster did not finish the job ({type(exc).__name__}: {exc})",
                attribute="executor",
                hint="the job is queued again; check the workers",
            ) from exc

    def close(self) -> None:
        """Disconnect from the scheduler (the workers keep their models until they stop)."""
        self._client.close()


def make_executor(spec: str) -> DaskExecutor | None:
    """``"local"`` gives ``None`` (run in process); ``"dask://HOST:PORT"`` a Dask executor."""
    if spec in ("", "local"):
        return None
    if spec.startswith("dask://"):
        return DaskExecutor("tcp://" + spec[len("dask://") :])
    if spec.startswith("tcp://"):
        return DaskExecutor(spec)
    raise ConfigError(
        f"unknown executor {spec!r}", attribute="executor", hint='use "local" or "dask://HOST:8786"'
    )
