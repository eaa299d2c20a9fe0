"""Deliver outbox files: to the local archive, or to a PACS through the net layer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from pydicom import dcmread

from radbridge.config import Peer
from radbridge.errors import ConfigError, NetworkError
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.queue import Delivery
from radbridge.net.durable import write_durably

__all__ = ["Sender", "archive_path", "deliver", "network_sender"]

#: Sends one file to a named peer; raises a radbridge NetworkError on failure.
Sender = Callable[[str, Path], None]


def archive_path(config: GatewayConfig, path: Path) -> Path:
    """Where the archive keeps a result: ``archive/<study>/<series>/<sop>.dcm``."""
    ds = dcmread(
        path,
        stop_before_pixels=True,
        specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
    )
    return (
        config.archive_dir
        / str(ds.StudyInstanceUID)
        / str(ds.SeriesInstanceUID)
        / f"{ds.SOPInstanceUID}.dcm"
    )


def deliver(delivery: Delivery, config: GatewayConfig, sender: Sender | None) -> None:
    """Deliver one file; raise on failure (the caller backs off and retries)."""
    path = Path(delivery.path)
    if delivery.destination == "archive":
        write_durably(path.read_bytes(), archive_path(config, path), mode=config.file_mode)
        return
    if sender is None:
        raise ConfigError(
            f"no network sender for destination {delivery.destination!r}",
            attribute="destinations",
            hint="the networking layer is required for PACS destinations",
        )
    sender(delivery.destination, path)


def network_sender(peers: Mapping[str, Peer], *, ae_title: str) -> Sender:
    """Return a :data:`Sender` that delivers to ``peers`` by C-STORE or STOW-RS.

    Each call sends one file and raises :class:`~radbridge.errors.NetworkError`
    unless the peer acknowledged it; the gateway's delivery queue does the
    retrying (with backoff), so the sender itself tries once.
    """

    def send_one(destination: str, path: Path) -> None:
        peer = peers.get(destination)
        if peer is None:
            raise ConfigError(f"no peer named {destination!r}", attribute="destinations")
        if peer.transport == "dicomweb":
            _stow(path, peer)
            return
        from radbridge.net.scu import send

        report = send([path], peer, ae_title=ae_title, retries=0)
        if not report.ok:
            raise NetworkError(report.failed[0].error or "not stored", path=peer.name)

    return send_one


def _stow(path: Path, peer: Peer) -> None:
    """STOW-RS one file to ``peer.dicomweb_url`` (raises DicomWebError unless stored)."""
    from radbridge.net.dicomweb import stow

    stow([path], peer)
