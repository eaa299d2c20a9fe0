"""``radbridge demo``: the README's first command runs this.

It plays a hospital in one process: a phantom CT study is written, the gateway
starts on a free local port with the embedded default configuration, the study
is sent to it over C-STORE like a PACS would, and the demo waits for the job,
prints ``radbridge gateway status`` and where the results are, and stops.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radbridge.cli import app
from radbridge.cli.output import say

if TYPE_CHECKING:
    from radbridge.gateway import GatewayConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path(
        "demo-output"
    ),
    slices: Annotated[int, typer.Option(help="Phantom slices.")] = 100,
    size: Annotated[int, typer.Option(help="Phantom matrix size.")] = 512,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the results.")] = 600.0,
) -> None:
    """Send a phantom CT study through the gateway and show the results (and a PNG)."""
    from radbridge.cli.info import print_table
    from radbridge.gateway import load_gateway_config
    from radbridge.io.describe import describe
    from radbridge.io.phantom import write_phantom

    say(f"1. writing the phantom CT study to {workdir / 'phantom'}")
    files = write_phantom(workdir / "phantom", slices=slices, size=size, seed=0)
    print_table(describe(files.dicom_dir))

    shutil.rmtree(workdir / "gateway", ignore_errors=True)  # each demo starts afresh
    config = load_gateway_config(None, data_dir=workdir / "gateway")
    config = replace(config, port=_free_port(), quiet_period_s=1.0)
    done = _send_through_gateway(config, files.dicom_dir, files.series_instance_uid, timeout)
    _show_status(config, done, timeout)
    _show_archive(config, files.dicom_dir, workdir / "snapshot")


def _send_through_gateway(
    config: GatewayConfig, folder: Path, series_uid: str, timeout: float
) -> bool:
    """Serve the gateway, C-STORE the folder to it, wait for the results; stop it."""
    from radbridge.gateway import Gateway
    from radbridge.net import Peer, send

    say(
        f"2. starting the gateway ({config.ae_title} on 127.0.0.1:{config.port}, "
        f"data in {config.data_dir})"
    )
    gateway = Gateway(config)
    stop = threading.Event()
    serving = threading.Thread(target=gateway.serve, args=(stop,), name="radbridge-demo")
    serving.start()
    try:
        say("3. sending the study to it over C-STORE, as a PACS would")
        _wait_for_port(config.port)
        report = send([folder], Peer(config.ae_title, "127.0.0.1", config.port))
        say(f"   {len(report.sent)} instances acknowledged in {report.seconds:.1f} s")
        say("4. waiting for the model and the delivery ...")
        return _wait_for_results(config.database, series_uid, timeout)
    finally:
        stop.set()
        serving.join()


def _show_status(config: GatewayConfig, done: bool, timeout: float) -> None:
    from radbridge.cli.gateway import print_status
    from radbridge.errors import GatewayError
    from radbridge.gateway.status import status
    from radbridge.gateway.store import Store

    store = Store(config.database)
    try:
        summary = status(store)
    finally:
        store.close()
    say("5. radbridge gateway status:")
    print_status(summary)
    if not done:
        raise GatewayError(
            f"no results within {timeout:g} s",
            path=config.data_dir,
            hint="see `radbridge gateway status --data-dir ...` and audit.jsonl",
        )


def _show_archive(config: GatewayConfig, source: Path, snapshot: Path) -> None:
    from pydicom import dcmread

    say(f"6. results in the archive ({config.archive_dir}):")
    seg_path = None
    for path in sorted(config.archive_dir.rglob("*.dcm")):
        modality = dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).Modality
        say(f"   {modality:<4} {path}")
        seg_path = path if modality == "SEG" else seg_path
    if seg_path is not None:
        from radbridge.cli.render import render

        say("7. a PNG snapshot of the SEG over the CT, for a quick look:")
        typer.echo("   ", nl=False)
        render(seg_path, source, snapshot)


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)


def _wait_for_results(database: Path, series_uid: str, timeout: float) -> bool:
    """Wait until every job of the series is done (delivered) or one is dead."""
    from radbridge.gateway.store import JobState, Store

    store = Store(database)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            states = store.job_states(series_uid)
            if states == {JobState.DONE}:
                return True
            if JobState.DEAD in states:
                return False
            time.sleep(0.2)
    finally:
        store.close()
    return False
