"""Deliver outbox files: to the local archive, or to a PACS through the net layer.

Every copy of a result the gateway sends is the outbox file's bytes, checked
against the digest recorded when the job finished: one SOP Instance UID, one
content, however often it is sent.

Failures are sorted into two kinds (:func:`is_permanent`):

- **permanent** — retrying cannot help, the delivery is dead-lettered at once
  with the reason: DIMSE ``0xA9xx`` (data set does not match the SOP class),
  ``0xCxxx`` (cannot understand), ``0x0122`` (SOP class not supported) or no
  presentation context for it; DICOMweb 4xx other than 408 and 429; an outbox
  file that changed or is not DICOM; a destination not configured.
- **temporary** — backed off and retried (``delivery_attempts`` times): DIMSE
  ``0xA7xx`` (out of resources) and every other failure status, no association,
  no answer, DICOMweb 5xx, 408, 429, or a STOW-RS refusal whose reasons are all
  out-of-resources.

Warnings (``0x0001``, ``0xBxxx``, ``0x0107``, ``0x0116``) count as delivered; the
status is logged and audited.

Examples
--------
>>> from radbridge.errors import DimseStatusError
>>> err = DimseStatusError("refused"); err.status = 0xA900
>>> is_permanent(err)
True
>>> err.status = 0xA702
>>> is_permanent(err)
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from pydicom import dcmread

from radbridge.config import Peer
from radbridge.errors import (
    ConfigError,
    DicomReadError,
    DicomWebError,
    DimseStatusError,
    GatewayError,
    PresentationContextError,
)
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.store import Delivery
from radbridge.net.durable import write_durably

__all__ = [
    "OutboxChangedError",
    "Sender",
    "archive_path",
    "deliver",
    "is_permanent",
    "network_sender",
]

#: Sends one file to a named peer; returns the peer's status (0 or a warning) or
#: raises a radbridge NetworkError on failure.
Sender = Callable[[str, Path], "int | None"]

_TEMPORARY_HTTP = (408, 429)


class OutboxChangedError(GatewayError):
    """An outbox file no longer has the bytes recorded for it: it is never sent."""


def permanent_status(status: int) -> bool:
    """Tell whether a DIMSE failure status is final (``0xA9xx``, ``0xCxxx``, ``0x0122``)."""
    return 0xA900 <= status <= 0xA9FF or 0xC000 <= status <= 0xCFFF or status == 0x0122


def is_permanent(exc: BaseException) -> bool:
    """Tell whether a delivery failure is permanent (see the module docstring)."""
    if isinstance(exc, DimseStatusError):
        return exc.status is not None and permanent_status(exc.status)
    if isinstance(exc, PresentationContextError):
        return True  # the peer does not take the SOP class: 0x0122 by negotiation
    if isinstance(exc, DicomWebError):
        reasons = exc.failure_reasons
        if reasons and all(0xA700 <= r <= 0xA7FF for r in reasons):
            return False
        status = exc.http_status
        return status is not None and 400 <= status < 500 and status not in _TEMPORARY_HTTP
    return isinstance(exc, OutboxChangedError | ConfigError | DicomReadError)


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


def _checked(path: Path, sha256: str | None) -> bytes:
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise OutboxChangedError(
            "the outbox file differs from what the job wrote; it is not sent",
            path=path,
            hint="a result UID must never carry two contents: run the job again with "
            "`radbridge gateway retry JOB --force` (new UIDs)",
        )
    return data


def deliver(
    delivery: Delivery, config: GatewayConfig, sender: Sender | None, *, sha256: str | None = None
) -> int:
    """Deliver one file; return the destination's status (0 or a warning); raise on failure.

    ``sha256`` is the digest recorded for the file: a file that no longer has
    it raises :class:`OutboxChangedError` before anything is sent.
    """
    path = Path(delivery.path)
    data = _checked(path, sha256)
    if delivery.destination == "archive":
        write_durably(data, archive_path(config, path), mode=config.file_mode)
        return 0
    if sender is None:
        raise ConfigError(
            f"no network sender for destination {delivery.destination!r}",
            attribute="destinations",
            hint="the networking layer is required for PACS destinations",
        )
    return sender(delivery.destination, path) or 0


def network_sender(peers: Mapping[str, Peer], *, ae_title: str) -> Sender:
    """Return a :data:`Sender` that delivers to ``peers`` by C-STORE or STOW-RS.

    Each call sends one file once and raises the networking layer's typed error
    (:class:`~radbridge.errors.DimseStatusError` with its status,
    :class:`~radbridge.errors.DicomWebError` with its HTTP status, ...) unless
    the peer acknowledged it; the gateway's delivery queue does the retrying.
    """

    def send_one(destination: str, path: Path) -> int:
        peer = peers.get(destination)
        if peer is None:
            raise ConfigError(f"no peer named {destination!r}", attribute="destinations")
        if peer.transport == "dicomweb":
            from radbridge.net.dicomweb import stow

            stow([path], peer)
            return 0
        from radbridge.net.scu import store_file

        return store_file(path, peer, ae_title=ae_title)

    return send_one
