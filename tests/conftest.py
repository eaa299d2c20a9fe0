"""Shared pytest fixtures: free ports, interop data, and real peers (Orthanc, DCMTK storescp).

Peers started by fixtures are stopped at teardown even when the test fails; when a test
fails, the tail of each peer's log is attached to the report ("orthanc log" section).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests import peers
from tests.peers import (
    Orthanc,
    OrthancConfig,
    StoreSCP,
    interop_dir,
    start_orthanc,
    start_storescp,
)

_P = TypeVar("_P", Orthanc, StoreSCP)

# Peers whose log tails are attached to the report of a failing test.
_PEER_LOGS = pytest.StashKey[list[tuple[str, Callable[[], str]]]]()


def _register_log(request: pytest.FixtureRequest, name: str, tail: Callable[[], str]) -> None:
    request.node.stash.setdefault(_PEER_LOGS, []).append((name, tail))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when in ("call", "setup"):
        for name, tail in item.stash.get(_PEER_LOGS, []):
            try:
                text = tail()
            except Exception as exc:  # the log must never hide the real failure
                text = f"(could not read log: {exc})"
            report.sections.append((f"{name} log (tail)", text))
    return report


@pytest.fixture
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (call ``tests.peers.free_port()`` for more)."""
    return peers.free_port()


@pytest.fixture(scope="session")
def interop() -> Path:
    """``../shared/interop`` beside the checkout (third-party DICOM files, read-only)."""
    return interop_dir()


class _Started:
    """Peers started for one test: their logs go into failure reports; all stop at teardown."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._peers: list[Orthanc | StoreSCP] = []

    def add(self, peer: _P, name: str) -> _P:
        self._peers.append(peer)
        _register_log(self._request, name, peer.log_tail)
        return peer

    def stop_all(self) -> None:
        for peer in reversed(self._peers):
            peer.stop()


@pytest.fixture
def _started_peers(request: pytest.FixtureRequest) -> Iterator[_Started]:
    started = _Started(request)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def orthanc_factory(
    _started_peers: _Started, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Orthanc]:
    """Start real Orthancs with chosen settings; all are stopped at teardown.

    Call it with an :class:`~tests.peers.OrthancConfig` or its fields as keywords::

        def test_x(orthanc_factory, storescp):
            pacs = orthanc_factory(
                auth=("alice", "secret"),
                modalities={"SCP": (storescp.aet, storescp.host, storescp.port)},
                stable_age=1,
            )
    """

    def make(config: OrthancConfig | None = None, **fields: Any) -> Orthanc:
        if config is not None and fields:
            raise TypeError("give an OrthancConfig or keyword fields, not both")
        workdir = tmp_path_factory.mktemp("orthanc")
        orthanc = start_orthanc(workdir, config or OrthancConfig(**fields))
        return _started_peers.add(orthanc, f"orthanc http={orthanc.http_port}")

    return make


@pytest.fixture
def orthanc(orthanc_factory: Callable[..., Orthanc]) -> Orthanc:
    """A fresh real Orthanc (DICOMweb on, no auth, StableAge 2) for one test."""
    return orthanc_factory()


@pytest.fixture
def storescp_factory(
    _started_peers: _Started, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., StoreSCP]:
    """Start DCMTK storescp receivers (``aet=``, ``extra_args=``); all stopped at teardown."""

    def make(*, aet: str = "STORESCP", extra_args: tuple[str, ...] = ()) -> StoreSCP:
        base = tmp_path_factory.mktemp("storescp")
        scp = start_storescp(base / "received", aet=aet, extra_args=extra_args)
        return _started_peers.add(scp, f"storescp port={scp.port}")

    return make


@pytest.fixture
def storescp(storescp_factory: Callable[..., StoreSCP]) -> StoreSCP:
    """A running DCMTK storescp (AET STORESCP) writing into its own tmp directory."""
    return storescp_factory()
