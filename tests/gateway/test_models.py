"""The gateway's model cache: owned by each Gateway, loaded once per spec, closed with it."""

from __future__ import annotations

import threading
import time

import pytest

from radbridge.errors import GatewayError
from radbridge.gateway import Gateway
from radbridge.gateway.runner import ModelCache

from .conftest import query, receive


class Closable:
    name, version = "closable", "1"

    def __init__(self) -> None:
        self.closed = False

    def __call__(self, volume, series):  # pragma: no cover - never run here
        raise AssertionError


def test_one_load_per_spec_under_concurrent_runners():
    loads: list[str] = []

    def slow_loader(spec: str) -> Closable:
        loads.append(spec)
        time.sleep(0.2)  # long enough for every thread to ask while the first loads
        return Closable()

    cache = ModelCache(slow_loader)
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda s=spec: got.append(cache.get(s)))
        for spec in ("a", "a", "a", "b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(loads) == ["a", "b"]
    assert len({id(m) for m in got}) == 2


def test_close_closes_the_models_and_refuses_more():
    made: list[Closable] = []

    def loader(spec: str) -> Closable:
        model = Closable()
        model.close = lambda m=model: setattr(m, "closed", True)  # type: ignore[method-assign]
        made.append(model)
        return model

    cache = ModelCache(loader)
    cache.get("x")
    cache.close()
    assert made[0].closed
    with pytest.raises(GatewayError, match="closed"):
        cache.get("x")


def test_each_gateway_owns_its_models(config, phantom_study, tmp_path):
    """No process-global cache: two gateways load their own model, and close it."""
    from dataclasses import replace

    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    first = Gateway(config)
    second = Gateway(replace(config, data_dir=tmp_path / "second"))
    try:
        for gateway in (first, second):
            receive(gateway, files)
            while gateway.step():
                pass
            assert [r["state"] for r in query(gateway, "SELECT state FROM jobs")] == ["done"]
        one, two = (g.models.get(config.rules[0].model) for g in (first, second))
        assert one is not two
    finally:
        first.close()
        second.close()
    with pytest.raises(GatewayError, match="closed"):
        first.models.get(config.rules[0].model)
