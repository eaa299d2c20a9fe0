"""The Dask worker plugin that owns a worker's model cache (imported only with Dask)."""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from radbridge.gateway.runner import ModelCache

__all__ = ["WorkerModels"]


class WorkerModels(WorkerPlugin):
    """Keeps the models a worker's jobs load (one load per spec) and closes them at teardown."""

    idempotent = True  # registered again by another gateway: the loaded models stay

    def __init__(self) -> None:
        self.models: ModelCache | None = None

    def setup(self, worker: Any) -> None:
        """Create the cache when the plugin is installed on a worker."""
        self.models = ModelCache()

    def teardown(self, worker: Any) -> None:
        """Close the worker's models."""
        if self.models is not None:
            self.models.close()
