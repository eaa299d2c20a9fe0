"""`kill -9` of a real gateway between a result and its alert: the alert still goes out,
exactly once per idempotency key.

A harness parks the gateway's alerter at a stage (printing ``STAGE <name>``): ``queued``
— the job's results and its alert are recorded, the alerter never claims it; ``claimed``
— the alerter took it and is about to send; ``sent`` — the webhook took it, the store
does not know yet. After the kill a plain `radbridge gateway run` restarts. The webhook
receiver (an HTTP server in this test) checks each request's HMAC; for ``queued`` and
``claimed`` it must see exactly one request, for ``sent`` the same alert twice (same
body, same Idempotency-Key): sending is at-least-once, the key makes it one alert.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys

import pytest

from tests.gateway.processes import (
    GatewayProcess,
    Storescu,
    db_rows,
    jobs_done,
    wait_until,
)
from tests.peers import free_port

from .alert_receivers import HttpReceiver

pytestmark = [pytest.mark.peer, pytest.mark.slow]

SECRET = "kill-9-secret"

HARNESS = """
import sys, time
import radbridge.gateway.service as service

stage, config = sys.argv[1], sys.argv[-1]  # argv: STAGE --config FILE

def park():
    print("STAGE " + stage, flush=True)
    while True:
        time.sleep(3600)

if stage == "queued":  # the alert is in the store; the alerter never takes it
    def alert_once(self):
        if self.store.alert_counts():
            park()
        return False
    service.Gateway.alert_once = alert_once
elif stage == "claimed":  # taken (one attempt counted), not sent
    def send(*args, **kwargs):
        park()
    service.send_queued_alert = send
elif stage == "sent":  # the destination has it; the store does not know yet
    real_send = service.send_queued_alert
    def send(*args, **kwargs):
        real_send(*args, **kwargs)
        park()
    service.send_queued_alert = send

from radbridge.cli import main
sys.exit(main(["gateway", "run", "--config", config]))
"""


def write_config(folder, *, port, hook_url):
    config = folder / "gateway.toml"
    config.write_text(
        f"""
[gateway]
data_dir = "data"
port = {port}
quiet_period_s = 0.5
retry_base_s = 0.2

[[rules]]
name = "ct"
model = "reference-ct"
outputs = ["seg", "sr"]
destinations = ["archive"]
alert = ["oncall"]
[rules.match]
modality = ["CT"]
[rules.urgent]
findings = ["lung nodule: present"]

[alerts.webhook.oncall]
url = "{hook_url}"
secret_env = "RADBRIDGE_TEST_HOOK_SECRET"
timeout_s = 5
"""
    )
    return config


def alert_rows(data):
    return db_rows(data, "SELECT state, attempts, idempotency_key FROM alerts")


@pytest.mark.parametrize("stage", ["queued", "claimed", "sent"])
def test_kill_9_between_result_and_alert_sends_one_alert(tmp_path, phantom_study, stage):
    hook = HttpReceiver()
    port = free_port()
    config = write_config(tmp_path, port=port, hook_url=hook.url)
    data = tmp_path / "data"
    env = {"RADBRIDGE_TEST_HOOK_SECRET": SECRET}
    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    command = [sys.executable, "-c", HARNESS, stage]
    gateway = GatewayProcess(config, port, command=command, env=env)
    try:
        assert Storescu(files, port).wait(120) == 0
        wait_until(lambda: f"STAGE {stage}" in gateway.log.read_text(), 120, f"parked: {stage}")
        ((state, attempts, key),) = alert_rows(data)
        assert state == "pending" and attempts == (0 if stage == "queued" else 1)
        assert len(hook.requests) == (1 if stage == "sent" else 0)
    finally:
        gateway.kill9()
    restarted = GatewayProcess(config, port, env=env)
    try:
        wait_until(lambda: alert_rows(data)[0][0] == "sent", 120, "the alert sent")
        wait_until(lambda: jobs_done(data), 120, "the job done")
    finally:
        restarted.stop()
        hook.stop()
    ((state, _, again),) = alert_rows(data)
    assert again == key  # the store kept one alert for the job version
    bodies = [r.body for r in hook.requests]
    assert len(bodies) == (2 if stage == "sent" else 1)
    assert len(set(bodies)) == 1  # a re-send is the same alert, byte for byte
    assert {r.headers["Idempotency-Key"] for r in hook.requests} == {key}
    for request in hook.requests:
        expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Radbridge-Signature"] == f"sha256={expected}"
    assert json.loads(bodies[0])["idempotency_key"] == key
    assert db_rows(data, "SELECT COUNT(*), MAX(version) FROM jobs") == [(1, 1)]
