"""A destination that stalls: a real DCMTK ``storescp`` sleeping inside every C-STORE.

``storescp --sleep-during N`` accepts the association and the C-STORE request, then
waits N seconds before it answers: to the gateway it is a PACS that hangs. It must
delay only its own deliveries (one sender thread per destination), and closing the
gateway while a send to it is under way must neither hang nor close the database
under that send.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest

from radbridge.gateway import Gateway
from radbridge.gateway.routing import Match, Rule
from radbridge.net import Peer

from .conftest import query, receive

pytestmark = pytest.mark.peer


def _gateway(config, port, *, timeout_s):
    rule = Rule(
        "ct",
        model="reference-ct",
        match=Match(modality=("CT",)),
        outputs=("seg", "sr", "ko"),
        destinations=("pacs", "archive"),  # the stalled PACS's rows come first in the queue
    )
    peer = Peer("STORESCP", "127.0.0.1", port, name="pacs", timeout_s=timeout_s)
    return Gateway(replace(config, rules=(rule,), peers={"pacs": peer}, retry_base_s=60.0))


def _rows(gateway, destination):
    sql = "SELECT state, attempts, error FROM deliveries WHERE destination = ?"
    return [dict(row) for row in query(gateway, sql, destination)]


def _wait(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.mark.timeout(180)
def test_a_stalled_pacs_delays_only_its_own_deliveries(config, phantom_study, storescp_factory):
    stalled = storescp_factory(extra_args=("--sleep-during", "120"))
    gateway = _gateway(config, stalled.port, timeout_s=20)
    gateway.start()
    try:
        receive(gateway, sorted(phantom_study.dicom_dir.glob("*.dcm")))

        def archived():
            rows = _rows(gateway, "archive")
            return rows and all(r["state"] == "delivered" for r in rows)

        _wait(archived, 60, "every result in the archive")
        # every archive copy was written while the first send to the PACS still waited
        # for its answer: no PACS attempt has ended (each ends only after 20 s)
        pacs = _rows(gateway, "pacs")
        assert len(pacs) == len(_rows(gateway, "archive")) == 3
        assert all(r["state"] == "pending" and r["error"] is None for r in pacs), pacs
        assert sum(r["attempts"] for r in pacs) == 1  # one file at a time to one destination
    finally:
        gateway.close(timeout=0.1)


@pytest.mark.timeout(180)
def test_closing_during_a_stalled_send_records_its_outcome_then_closes(
    config, phantom_study, storescp_factory, caplog
):
    stalled = storescp_factory(extra_args=("--sleep-during", "120"))
    gateway = _gateway(config, stalled.port, timeout_s=3)
    gateway.start()
    receive(gateway, sorted(phantom_study.dicom_dir.glob("*.dcm")))
    _wait(lambda: any(r["attempts"] for r in _rows(gateway, "pacs")), 60, "a send to the PACS")
    with caplog.at_level(logging.WARNING, logger="radbridge.gateway"):
        started = time.monotonic()
        gateway.close(timeout=0.2)
        assert time.monotonic() - started < 2  # close does not wait out the peer's timeout
        assert "still busy" in caplog.text and "sender" in caplog.text
        # the send ends by its 3 s timeout; its failure is recorded, then the store closes
        _wait(lambda: any(r["error"] for r in _rows(gateway, "pacs")), 30, "the failure recorded")
        (failed,) = [r for r in _rows(gateway, "pacs") if r["error"]]
        assert "sent nothing within 3 s" in failed["error"] and failed["state"] == "pending"
        _wait(lambda: not gateway._threads[0].is_alive(), 30, "the busy loop to end")
    assert "closed database" not in caplog.text
    with pytest.raises(Exception, match="closed database"):
        gateway.store.claim_delivery()
