"""``radbridge listen``, ``send`` and ``echo``: a Storage SCP and SCU from the shell."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from radbridge.cli import app
from radbridge.cli.output import emit, say

PeerArgument = Annotated[
    str, typer.Option("--to", help="AE@HOST:PORT, or a peer name from --config.")
]
PeerConfig = Annotated[
    Path | None, typer.Option("--config", help="TOML file with [peers.NAME] tables.")
]
AeOption = Annotated[str, typer.Option("--ae", help="Our AE title.")]


def _positive_seconds(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value:g} is not a positive number of seconds")
    return value


def _tls(cert: Path | None, key: Path | None, ca: Path | None) -> Any:
    from radbridge.net import TLSConfig

    if cert is None and ca is None:
        return None
    return TLSConfig(ca_file=ca, cert_file=cert, key_file=key)


@app.command("listen")
def listen_command(
    out: Annotated[Path, typer.Option("--out", help="Where received instances are stored.")],
    ae: AeOption = "RADBRIDGE",
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 11112,
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="Allowed calling AE title (repeat).")
    ] = None,
    any_called_ae: Annotated[
        bool, typer.Option("--any-called-ae", help="Accept associations to any called AE.")
    ] = False,
    max_associations: Annotated[
        int, typer.Option("--max-associations", help="Concurrent associations.")
    ] = 20,
    timeout: Annotated[float, typer.Option("--timeout", help="Network timeout (s).")] = 60.0,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Server certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Server key.")] = None,
    tls_ca: Annotated[
        Path | None, typer.Option("--tls-ca", help="CA for client certificates (mutual TLS).")
    ] = None,
    tls_handshake_timeout: Annotated[
        float,
        typer.Option(
            "--tls-handshake-timeout",
            callback=_positive_seconds,
            help="A TLS client must finish its handshake within this (s); the gateway's "
            "tls_handshake_timeout_s.",
        ),
    ] = 10.0,
) -> None:
    """Receive C-STORE into OUT/<study>/<series>/<sop>.dcm (fsynced before Success)."""
    from radbridge.net import StorageSCP

    scp = StorageSCP(
        out,
        ae_title=ae,
        host=host,
        port=port,
        allowed_calling_aets=allow or (),
        require_called_ae=not any_called_ae,
        max_associations=max_associations,
        timeout_s=timeout,
        tls=_tls(tls_cert, tls_key, tls_ca),
        tls_handshake_timeout_s=tls_handshake_timeout,
    ).start()
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    say(f"listening as {scp.ae_title} on {host}:{scp.port}, storing into {out}")
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        scp.stop()
        stats = scp.stats
        say(f"stored {stats.stored} instances ({stats.bytes} bytes), {stats.failed} failed")


@app.command("send")
def send_command(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Files and folders to send.")],
    to: PeerArgument,
    config: PeerConfig = None,
    ae: AeOption = "RADBRIDGE",
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Retries of transient failures.")
    ] = 3,
    associations: Annotated[
        int, typer.Option("--associations", min=1, help="Send on N associations at once.")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Send files/folders with C-STORE; exit 1 if any instance was not stored."""
    from radbridge.cli.output import progress
    from radbridge.net import resolve_peer, send

    peer = resolve_peer(to, config)
    with progress("send") as advance:
        report = send(
            paths,
            peer,
            ae_title=ae,
            retries=retries,
            associations=associations,
            progress=advance,
        )
    if as_json:
        emit(_send_json(report))
    else:
        _print_failures(report)
        say(
            f"sent {len(report.sent)} of {len(report.results)} instances to {report.peer} "
            f"in {report.seconds:.2f} s"
        )
    if not report.ok:
        raise typer.Exit(1)


def _send_json(report: Any) -> dict[str, Any]:
    return {
        "peer": report.peer,
        "sent": len(report.sent),
        "failed": len(report.failed),
        "associations": report.associations,
        "seconds": round(report.seconds, 3),
        "results": [
            {
                "path": str(r.path),
                "sop_instance_uid": r.sop_instance_uid,
                "status": r.status,
                "error": r.error,
                "transcoded": r.transcoded,
            }
            for r in report.results
        ],
    }


def _print_failures(report: Any) -> None:
    """One line per distinct reason: a peer that is down is one line, not one per file."""
    by_reason: dict[str, list[Path]] = {}
    for r in report.failed:
        by_reason.setdefault(str(r.error), []).append(r.path)
    for reason, failed in by_reason.items():
        where = str(failed[0]) if len(failed) == 1 else f"{len(failed)} instances"
        typer.echo(f"error: {where} not stored: {reason}", err=True)


@app.command("echo")
def echo_command(
    to: PeerArgument,
    config: PeerConfig = None,
    ae: AeOption = "RADBRIDGE",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """C-ECHO a peer and print the round-trip time."""
    from radbridge.net import echo, resolve_peer

    peer = resolve_peer(to, config)
    seconds = echo(peer, ae_title=ae)
    if as_json:
        emit({"peer": str(peer), "ok": True, "milliseconds": round(1e3 * seconds, 3)})
        return
    say(f"{peer}: echo OK in {1e3 * seconds:.1f} ms")
