"""``radbridge gateway``: run the AI gateway, show its state, retry jobs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from radbridge.cli import JsonOption, command_group
from radbridge.cli.output import emit, say

if TYPE_CHECKING:
    from radbridge.gateway import GatewayConfig
    from radbridge.gateway.store import Store

gateway_app = command_group("gateway", "The AI gateway: run, status, retry.")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="gateway.toml (default: embedded default).")
]
DataOption = Annotated[Path | None, typer.Option("--data-dir", help="Override the data directory.")]


def _config(config: Path | None, data_dir: Path | None) -> GatewayConfig:
    from radbridge.gateway import load_gateway_config

    return load_gateway_config(config, data_dir=data_dir)


def _existing_store(settings: GatewayConfig) -> Store:
    """Open the state database of an existing data directory (never create one)."""
    from radbridge.gateway.store import Store

    return Store.open_existing(settings.database, data_dir=settings.data_dir)


@gateway_app.command("status")
def status_command(
    config: ConfigOption = None,
    data_dir: DataOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the queue, recent jobs, latencies and failures (UIDs only)."""
    from radbridge.gateway.status import status

    store = _existing_store(_config(config, data_dir))
    try:
        report = status(store)
    finally:
        store.close()
    if as_json:
        emit(report)
        return
    print_status(report)


def print_status(report: dict[str, Any]) -> None:
    """Print a :func:`radbridge.gateway.status.status` report for people."""
    queue = ", ".join(f"{k} {v}" for k, v in sorted(report["queue"].items())) or "empty"
    say(
        f"received: {report['received']['series']} series, "
        f"{report['received']['instances']} instances"
    )
    purged = report.get("purged") or {}
    if purged.get("series") or purged.get("files_left"):
        say(
            f"purged (spool_retention_h): {purged['series']} series, {purged['instances']} "
            f"instances, {purged['results']} results, {purged['bytes'] / 2**20:.1f} MB"
            + (f" ({purged['files_left']} files still to remove)" if purged["files_left"] else "")
        )
    swept = report.get("swept") or {}
    if swept.get("unrecorded") or swept.get("partial"):
        say(
            f"swept: {swept['unrecorded']} unrecorded spool files (never acknowledged), "
            f"{swept['partial']} partial files, "
            f"{(swept['unrecorded_bytes'] + swept['partial_bytes']) / 2**20:.1f} MB"
        )
    say(f"jobs: {queue}")
    if report["latency_s"]:
        lat = report["latency_s"]
        say(
            f"latency (last instance -> delivered): median {lat['median']} s, "
            f"p95 {lat['p95']} s over {lat['count']} jobs"
        )
    _print_alerts(report)
    for series in report["held_series"][:10]:
        say(
            f"  held series {series['series_instance_uid']} ({series['instances']} instances): "
            f"{series['reason']}"
        )
    for job in report["recent_jobs"][:10]:
        line = (
            f"  job {job['id']:>4}  {job['state']:<10} v{job['version']} {job['rule']:<12} "
            f"series {job['series_instance_uid']}"
        )
        say(line + (f"  ({job['error'][:80]})" if job["error"] else ""))


def _print_alerts(report: dict[str, Any]) -> None:
    """Print the critical-finding alert lines of a status report (none without alerts)."""
    if not report["alerts"]:
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report["alerts"].items()))
    say(f"alerts: {counts}")
    if report["alert_latency_s"]:
        lat = report["alert_latency_s"]
        say(
            f"alert latency (last instance -> alert taken): median {lat['median']} s, "
            f"max {lat['max']} s over {lat['count']} alerts"
        )
    for alert in report["alert_failures"][:10]:
        say(
            f"  alert of job {alert['job']} to {alert['destination']} failed after "
            f"{alert['attempts']} attempts: {(alert['error'] or '')[:80]}"
        )


@gateway_app.command("retry")
def retry_command(
    job: Annotated[int, typer.Argument(metavar="JOB", help="Job id (see `gateway status`).")],
    config: ConfigOption = None,
    data_dir: DataOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Run it again as a new version of the series (new result UIDs)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Retry a dead-lettered job (failed deliveries re-send the same bytes).

    Dead-lettered critical-finding alerts of the job are queued again too (same
    idempotency key), also for a job whose DICOM results were delivered.

    A done job is refused unless --force, which runs its frozen inputs again as a
    new version: new result UIDs, the delivered results stay as they are.
    """
    from radbridge.errors import GatewayError

    store = _existing_store(_config(config, data_dir))
    try:
        retried = store.retry_job(job, force=force)
    except KeyError:
        raise GatewayError(
            f"no job {job}", attribute="job", hint="list jobs with `radbridge gateway status`"
        ) from None
    finally:
        store.close()
    if as_json:
        emit(
            {
                "job": retried.id,
                "retried_job": job,
                "state": str(retried.state),
                "version": retried.version,
                "series_instance_uid": retried.series_instance_uid,
            }
        )
        return
    if retried.id != job:
        say(
            f"job {retried.id} queued: version {retried.version} of series "
            f"{retried.series_instance_uid} (a re-run of job {job}, new result UIDs)"
        )
        return
    say(f"job {retried.id} {retried.state} again (series {retried.series_instance_uid})")


@gateway_app.command("run")
def run_command(
    config: ConfigOption = None,
    data_dir: DataOption = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Listen on this address (C-STORE and STOW-RS); 0.0.0.0: all."),
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Override the DIMSE port.")] = None,
    stow_port: Annotated[
        int | None, typer.Option("--stow-port", help="Also receive STOW-RS on this port.")
    ] = None,
) -> None:
    """Run the gateway until SIGTERM or Ctrl-C: receive, run models, deliver."""
    import dataclasses
    import signal
    import threading

    from radbridge.gateway import Gateway

    settings = _config(config, data_dir)
    overrides = {"host": host, "port": port, "stow_port": stow_port}
    given = {key: value for key, value in overrides.items() if value is not None}
    settings = dataclasses.replace(settings, **given)  # type: ignore[arg-type]
    settings.check()
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    gateway = Gateway(settings)
    say(
        f"gateway {settings.ae_title} on {settings.host}:{settings.port}"
        + (
            f", STOW-RS, status page and metrics on port {settings.stow_port}"
            if settings.stow_port
            else ""
        )
        + f"; data in {settings.data_dir}"
    )
    try:
        gateway.serve(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        signal.signal(signal.SIGTERM, previous)
    say("gateway stopped")
