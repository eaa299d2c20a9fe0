"""Deliver outbox files: to the local archive, or to a PACS through a transport's sender.

Every copy of a result the gateway sends is the outbox file's bytes, checked
against the digest recorded when the job finished: one SOP Instance UID, one
content, however often it is sent.

A PACS destination is a peer; its ``transport`` names the
:class:`~radbridge.net.Sender` that sends to it (:func:`radbridge.net.sender_for`:
``dimse``, ``dicomweb``, or one registered by name). Every sender fails the same
way, with a :class:`~radbridge.errors.SendError` that says whether the failure is
permanent, so delivery has no code per transport. Failures are sorted into two
kinds (:func:`is_permanent`):

- **permanent** — retrying cannot help, the delivery is dead-lettered at once
  with the reason: what the sender calls permanent (DIMSE ``0xA9xx``,
  ``0xCxxx``, ``0x0122`` or no presentation context for the SOP class; DICOMweb
  4xx other than 408 and 429; see :mod:`radbridge.net.senders`); an outbox file
  that changed or is not DICOM; a destination not configured.
- **temporary** — backed off and retried (``delivery_attempts`` times): what
  the sender calls temporary (DIMSE ``0xA7xx`` and every other failure status,
  no association, no answer, DICOMweb 5xx, 408, 429, or a STOW-RS refusal whose
  reasons are all out-of-resources), and anything unexpected.

Warnings (``0x0001``, ``0xBxxx``, ``0x0107``, ``0x0116``) count as delivered; the
status is logged and audited.

Examples
--------
>>> from radbridge.errors import SendError
>>> is_permanent(SendError("PACS answered 0xA900"))
False
>>> err = SendError("PACS answered 0xA900"); err.permanent = True
>>> is_permanent(err)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from pydicom import dcmread

from radbridge.errors import (
    ConfigError,
    DicomReadError,
    DicomWebError,
    DimseStatusError,
    GatewayError,
    NetworkError,
    OptionalDependencyError,
    PresentationContextError,
    SendError,
)
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.store import Delivery
from radbridge.io.storage import write_durably
from radbridge.net import Peer, Sender, sender_for

__all__ = [
    "DestinationSender",
    "OutboxChangedError",
    "archive_path",
    "deliver",
    "is_permanent",
    "network_sender",
    "status_class",
]

#: Sends one file to a named destination; returns the peer's status (0 or a warning)
#: or raises (a :class:`~radbridge.errors.SendError` from a transport).
DestinationSender = Callable[[str, Path], "int | None"]


class OutboxChangedError(GatewayError):
    """An outbox file no longer has the bytes recorded for it: it is never sent."""


def is_permanent(exc: BaseException) -> bool:
    """Tell whether a delivery or alert failure is permanent (see the module docstring).

    A transport's or an alert destination's :class:`~radbridge.errors.SendError` says
    so itself; a missing optional package (the ``alerts`` extra) is permanent too.
    """
    if isinstance(exc, SendError):
        return exc.permanent
    return isinstance(
        exc, OutboxChangedError | ConfigError | DicomReadError | OptionalDependencyError
    )


def status_class(exc: BaseException) -> str:
    """Name the class of a delivery failure (the ``status_class`` label of the metrics).

    ``dimse_a7xx``, ``dimse_a9xx``, ``dimse_cxxx``, ... by the DIMSE status's high
    byte; ``no_context`` (no presentation context); ``http_4xx``/``http_5xx``
    (DICOMweb); ``network`` (no association, no answer); ``outbox_changed``,
    ``config``, ``unreadable`` (the file is not DICOM), ``other``.

    Examples
    --------
    >>> from radbridge.errors import DimseStatusError
    >>> err = DimseStatusError("refused"); err.status = 0xC211
    >>> status_class(err), status_class(TimeoutError())
    ('dimse_cxxx', 'other')
    """
    if isinstance(exc, SendError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, DimseStatusError):
        status = exc.status
        if status is None:
            return "dimse"
        return "dimse_cxxx" if 0xC000 <= status <= 0xCFFF else f"dimse_{status >> 8:02x}xx"
    if isinstance(exc, PresentationContextError):
        return "no_context"
    if isinstance(exc, DicomWebError) and exc.http_status is not None:
        return f"http_{exc.http_status // 100}xx"
    classes: tuple[tuple[type[BaseException], str], ...] = (
        (NetworkError, "network"),
        (OutboxChangedError, "outbox_changed"),
        (ConfigError, "config"),
        (DicomReadError, "unreadable"),
    )
    return next((name for kind, name in classes if isinstance(exc, kind)), "other")


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
    delivery: Delivery,
    config: GatewayConfig,
    sender: DestinationSender | None,
    *,
    sha256: str | None = None,
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


def network_sender(peers: Mapping[str, Peer], *, ae_title: str) -> DestinationSender:
    """Return a :data:`DestinationSender` that sends to ``peers`` by their transports.

    Each call sends one file once with the :class:`~radbridge.net.Sender` of the
    peer's ``transport`` (one sender per transport, made on first use) and raises
    its :class:`~radbridge.errors.SendError` unless the peer acknowledged the
    file; the gateway's delivery queue does the retrying. ``ae_title`` is the
    gateway's own (the calling AE title of C-STORE).
    """
    senders: dict[str, Sender] = {}

    def send_one(destination: str, path: Path) -> int:
        peer = peers.get(destination)
        if peer is None:
            raise ConfigError(f"no peer named {destination!r}", attribute="destinations")
        sender = senders.get(peer.transport)
        if sender is None:
            sender = senders[peer.transport] = sender_for(peer.transport)
        return sender.send(path, peer, ae_title=ae_title)

    return send_one
