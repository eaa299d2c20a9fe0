"""Senders: one way to hand a file to a peer, whatever the transport, and a registry of them.

A peer's ``transport`` (``"dimse"``, ``"dicomweb"``, or a name registered with
:func:`register_transport`) names the :class:`Sender` that delivers to it.
Every sender keeps the same contract, so that whoever retries (the gateway's
delivery queue) needs no code per transport:

- :meth:`Sender.send` sends one file once, and returns ``0`` or the peer's
  warning status (e.g. DIMSE ``0xB000``: stored, with a warning);
- every failure raises :class:`~radbridge.errors.SendError`, whose
  ``permanent`` says whether sending the same file again can succeed, with the
  transport's own typed error as its ``__cause__``.

The built-in senders sort their failures so:

============  ====================================  =================================
transport     permanent                             temporary
============  ====================================  =================================
``dimse``     ``0xA9xx``, ``0xCxxx``, ``0x0122``,   ``0xA7xx`` and every other failure
              no presentation context for the SOP   status; no association, no answer,
              class, a file that is not DICOM       a dropped connection
``dicomweb``  HTTP 4xx but 408 and 429, a file      HTTP 5xx, 408, 429, no answer, no
              that is not DICOM                     connection; a refusal whose reasons
                                                    are all out of resources (0xA7xx)
============  ====================================  =================================

Examples
--------
A transport of one's own: a class with ``send``, registered by name.

>>> from pathlib import Path
>>> from radbridge.net import Peer
>>> class Printer:
...     def send(self, path, peer, *, ae_title):
...         print(f"{ae_title} -> {peer.name}: {path.name}")
...         return 0
>>> register_transport("printer", Printer)
>>> "printer" in transports()
True
>>> peer = Peer("PACS", "127.0.0.1", 104, name="pacs", transport="printer")
>>> sender_for(peer.transport).send(Path("seg.dcm"), peer, ae_title="RADBRIDGE")
RADBRIDGE -> pacs: seg.dcm
0
>>> unregister_transport("printer")
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from radbridge.errors import ConfigError, DicomReadError, SendError

if TYPE_CHECKING:
    from radbridge.net.peers import Peer

__all__ = [
    "Sender",
    "SenderFactory",
    "failed",
    "register_transport",
    "sender_for",
    "transports",
    "unregister_transport",
]


@runtime_checkable
class Sender(Protocol):
    """Sends one file to a peer, once; the caller decides about retries."""

    def send(self, path: Path, peer: Peer, *, ae_title: str) -> int:
        """Send the DICOM file ``path`` to ``peer``; return 0 or the peer's warning status.

        ``ae_title`` is who we are (the calling AE title, where the transport has
        one). Raises :class:`~radbridge.errors.SendError` for every failure.
        """


#: Makes a :class:`Sender` (a class, or any callable without arguments).
SenderFactory = Callable[[], Sender]

#: Built-in transports, imported on first use: name -> "module:attribute".
_BUILTIN = {
    "dimse": "radbridge.net.dimse.scu:DimseSender",
    "dicomweb": "radbridge.net.dicomweb.client:DicomWebSender",
}
_factories: dict[str, SenderFactory | str] = dict(_BUILTIN)
_lock = threading.Lock()


def transports() -> tuple[str, ...]:
    """Return the names a peer's ``transport`` may take, sorted."""
    with _lock:
        return tuple(sorted(_factories))


def register_transport(name: str, factory: SenderFactory) -> None:
    """Make ``name`` a transport: peers with ``transport = name`` are sent to by ``factory()``.

    Raises
    ------
    ConfigError
        ``name`` is empty or already registered (built-in names cannot be replaced).
    """
    with _lock:
        if not name or name in _factories:
            raise ConfigError(
                f"transport {name!r} is {'already registered' if name else 'not a name'}",
                attribute="transport",
                hint="register each transport once, under a name of its own",
            )
        _factories[name] = factory


def unregister_transport(name: str) -> None:
    """Forget a transport registered with :func:`register_transport` (built-ins stay)."""
    with _lock:
        if name not in _BUILTIN:
            _factories.pop(name, None)


def sender_for(transport: str) -> Sender:
    """Return a new :class:`Sender` for ``transport``.

    Raises
    ------
    ConfigError
        No transport of that name is registered.
    """
    with _lock:
        factory = _factories.get(transport)
    if factory is None:
        raise ConfigError(
            f"unknown transport {transport!r}",
            attribute="transport",
            hint=f"use one of {', '.join(transports())} (or register it first)",
        )
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module), attribute)
    return factory()


def failed(error: Exception, *, permanent: bool) -> SendError:
    """Return the :class:`~radbridge.errors.SendError` a sender raises for ``error``.

    A file that is not DICOM and a peer configured wrongly are permanent whatever
    ``permanent`` says: sending the same file to the same peer again cannot help.

    >>> from radbridge.errors import NotDicomError
    >>> failed(NotDicomError("no DICM prefix", path="x.dcm"), permanent=False).permanent
    True
    """
    return SendError.wrapping(
        error, permanent=permanent or isinstance(error, DicomReadError | ConfigError)
    )
