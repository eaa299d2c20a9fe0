"""One STOW-RS request is made durable and recorded in batches, before its response.

Real clients (requests with a chunked body, a raw socket that goes away) send
hundreds of 512x512 CT slices to the gateway's STOW-RS endpoint. A failed
batched commit is injected into the store's own SQLite connection as in
tests/gateway/test_group_commit.py; the order of the system calls is checked
with strace in tests/gateway/test_durability.py.
"""

from __future__ import annotations

import math
import socket
import time
from pathlib import Path

import pydicom
import pytest
import requests

from radbridge.gateway import Gateway
from radbridge.io.phantom import write_phantom
from radbridge.net.dicomweb.batch import BATCH_PARTS

from .conftest import query
from .stow_bodies import CONTENT_TYPE, parts_of
from .test_group_commit import failing_instance_commits, recorded_sops

pytestmark = pytest.mark.slow

SLICES = 150  # three batches


@pytest.fixture(scope="module")
def ct_slices(tmp_path_factory) -> list[Path]:
    study = write_phantom(tmp_path_factory.mktemp("stow-batches"), slices=SLICES, size=512, seed=7)
    return sorted(study.dicom_dir.glob("*.dcm"))


@pytest.fixture(scope="module")
def sops(ct_slices) -> list[str]:
    return [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in ct_slices]


def post(url: str, files: list[Path]) -> requests.Response:
    return requests.post(
        f"{url}/studies", data=parts_of(files), headers={"Content-Type": CONTENT_TYPE}, timeout=300
    )


def failures(response: requests.Response) -> list[int]:
    return [i["00081197"]["Value"][0] for i in response.json().get("00081198", {}).get("Value", [])]


def stored_uids(response: requests.Response) -> list[str]:
    items = response.json().get("00081199", {}).get("Value", [])
    return [item["00081155"]["Value"][0] for item in items]


def test_a_failed_batched_commit_refuses_its_parts_and_a_retry_stores_all(config, ct_slices, sops):
    gateway = Gateway(config)
    server = gateway.stow_server().start()
    try:
        with failing_instance_commits(gateway.store):
            refused = post(server.url, ct_slices)
        assert refused.status_code == 409, refused.text[:300]
        assert failures(refused) == [0xA700] * SLICES  # every part of every failed batch
        assert recorded_sops(gateway) == set()
        failed = gateway.store.commit_counts
        batches = math.ceil(SLICES / BATCH_PARTS)
        assert failed.commits == failed.failed == batches and failed.units == SLICES
        (transfer,) = query(gateway, "SELECT outcome, refused FROM transfers")
        assert (transfer["outcome"], transfer["refused"]) == ("released", SLICES)
        # the same request again, the database healthy: all stored, one commit per batch
        retried = post(server.url, ct_slices)
        assert retried.status_code == 200, retried.text[:300]
        assert stored_uids(retried) == sops and failures(retried) == []
        assert recorded_sops(gateway) == set(sops)
        counts = gateway.store.commit_counts
        assert counts.commits - failed.commits == batches and counts.failed == failed.failed
    finally:
        server.stop()
        gateway.close()


def _send_and_go_away(port: int, files: list[Path], stop_after: int) -> None:
    """Declare the whole body, send it up to the middle of a part, close the connection."""
    length = sum(len(piece) for piece in parts_of(files))
    raw = socket.create_connection(("127.0.0.1", port), timeout=60)
    raw.sendall(
        b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n"
        + f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {length}\r\n\r\n".encode()
    )
    for piece in parts_of(files, stop_after=stop_after):
        raw.sendall(piece)
    time.sleep(0.5)
    raw.close()


def _wait_for_outcomes(gateway: Gateway, count: int) -> list[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ended = query(gateway, "SELECT outcome FROM transfers WHERE outcome IS NOT NULL")
        if len(ended) >= count:
            return sorted(row["outcome"] for row in ended)
        time.sleep(0.1)
    raise AssertionError("the transfer never ended")


def test_a_request_cut_midway_records_nothing_of_its_unfinished_batch(config, ct_slices, sops):
    gateway = Gateway(config)
    server = gateway.stow_server().start()
    first, second = ct_slices[:20], ct_slices[20:]
    cut = BATCH_PARTS + 30  # whole parts sent of the second request: one batch and 30 more
    try:
        assert post(server.url, first).status_code == 200
        _send_and_go_away(server.port, second, stop_after=cut)
        assert _wait_for_outcomes(gateway, 2) == ["aborted", "released"]
        # what the first request recorded is intact; of the second, only its first batch
        assert recorded_sops(gateway) == set(sops[: 20 + BATCH_PARTS])
        spooled = {p.name.split(".dcm")[0].rsplit(".", 1)[0] for p in _spool(gateway)}
        assert spooled == set(sops[: 20 + BATCH_PARTS])  # the unfinished batch left no file
        assert not list(gateway.config.spool_dir.rglob(".rb-tmp-*"))
        (aborted,) = query(gateway, "SELECT refused FROM transfers WHERE outcome = 'aborted'")
        assert aborted["refused"] == 30 + 1  # the unfinished batch and the part cut in two
        # the gateway still serves: the whole second request again, stored and recorded
        again = post(server.url, second)
        assert again.status_code == 200 and stored_uids(again) == sops[20:]
        assert recorded_sops(gateway) == set(sops)
    finally:
        server.stop()
        gateway.close()


def _spool(gateway: Gateway) -> list[Path]:
    return list(gateway.config.spool_dir.rglob("*.dcm"))
