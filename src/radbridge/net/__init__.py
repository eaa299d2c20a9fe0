"""DICOM networking, DIMSE and DICOMweb: the public face.

- **Peers**: :class:`Peer` (``AE@HOST:PORT``, a ``[peers.NAME]`` table, DICOMweb
  URL, TLS), :func:`parse_peer`, :func:`load_peers`, :func:`resolve_peer`.
- **DIMSE** (:mod:`radbridge.net.dimse`): storage on radbridge's own upper layer —
  :func:`send` and :func:`store_file` (SCU), :class:`StorageSCP`, :func:`echo` —
  and query/retrieve on pynetdicom — :func:`find`, :func:`get`, :func:`move`.
- **DICOMweb** (:mod:`radbridge.net.dicomweb`): :func:`stow`, :func:`qido`,
  :func:`wado` (client) and :class:`StowServer` (the STOW-RS receiver).
- **Receivers** report to a :class:`ReceiverSink` (the receiver contract,
  :mod:`radbridge.net.receiver`).
- **Transports**: a :class:`Sender` per peer ``transport``, found with
  :func:`sender_for`; :func:`register_transport` adds one
  (:mod:`radbridge.net.senders`).
- **Critical-finding alerts** (:mod:`radbridge.net.alerts`): an
  :class:`AlertMessage` sent by :func:`send_alert` to a :class:`WebhookTarget`
  (signed JSON), a :class:`FhirTarget` (a DiagnosticReport) or an
  :class:`Hl7Target` (ORU^R01 over MLLP), named in :class:`AlertTargets`.

Names load on first use, so importing this face loads neither pydicom nor
pynetdicom. The modules behind it may be renamed or split; import from here.

Examples
--------
>>> import tempfile
>>> from radbridge.net import StorageSCP, echo, parse_peer
>>> with StorageSCP(tempfile.mkdtemp(), port=0) as scp:
...     seconds = echo(parse_peer(f"{scp.ae_title}@127.0.0.1:{scp.port}"))
>>> seconds < 5
True
"""

import typing as _typing

from radbridge import _lazy

if _typing.TYPE_CHECKING:
    from radbridge.net.alerts import (
        AlertMessage,
        AlertPatient,
        AlertReason,
        AlertTarget,
        AlertTargets,
        FhirTarget,
        Hl7Target,
        WebhookTarget,
        send_alert,
    )
    from radbridge.net.dicomweb.client import StowReport, qido, stow, wado
    from radbridge.net.dicomweb.server import StowServer
    from radbridge.net.dicomweb.settings import StowAuth, StowLimits
    from radbridge.net.dimse.client import echo
    from radbridge.net.dimse.qr import find, get, move
    from radbridge.net.dimse.quiet import quiet_pynetdicom
    from radbridge.net.dimse.scp import StorageSCP
    from radbridge.net.dimse.scu import InstanceResult, SendReport, send, store_file
    from radbridge.net.peers import Peer, TLSConfig, load_peers, parse_peer, resolve_peer
    from radbridge.net.receiver import NullSink, ReceiverSink, StoredInstance, TransferOutcome
    from radbridge.net.retrieved import RetrieveReport
    from radbridge.net.senders import (
        Sender,
        register_transport,
        sender_for,
        transports,
        unregister_transport,
    )

#: Public name -> the module that defines it.
_HOMES = {
    **dict.fromkeys(
        (
            "AlertMessage",
            "AlertPatient",
            "AlertReason",
            "AlertTarget",
            "AlertTargets",
            "FhirTarget",
            "Hl7Target",
            "WebhookTarget",
            "send_alert",
        ),
        "radbridge.net.alerts",
    ),
    **dict.fromkeys(
        ("Peer", "TLSConfig", "load_peers", "parse_peer", "resolve_peer"), "radbridge.net.peers"
    ),
    **dict.fromkeys(
        ("InstanceResult", "SendReport", "send", "store_file"), "radbridge.net.dimse.scu"
    ),
    "echo": "radbridge.net.dimse.client",
    "StorageSCP": "radbridge.net.dimse.scp",
    **dict.fromkeys(("find", "get", "move"), "radbridge.net.dimse.qr"),
    "RetrieveReport": "radbridge.net.retrieved",
    "quiet_pynetdicom": "radbridge.net.dimse.quiet",
    **dict.fromkeys(("StowReport", "qido", "stow", "wado"), "radbridge.net.dicomweb.client"),
    "StowServer": "radbridge.net.dicomweb.server",
    **dict.fromkeys(("StowAuth", "StowLimits"), "radbridge.net.dicomweb.settings"),
    **dict.fromkeys(
        ("NullSink", "ReceiverSink", "StoredInstance", "TransferOutcome"), "radbridge.net.receiver"
    ),
    **dict.fromkeys(
        ("Sender", "register_transport", "sender_for", "transports", "unregister_transport"),
        "radbridge.net.senders",
    ),
}

__all__ = [
    "AlertMessage",
    "AlertPatient",
    "AlertReason",
    "AlertTarget",
    "AlertTargets",
    "FhirTarget",
    "Hl7Target",
    "InstanceResult",
    "NullSink",
    "Peer",
    "ReceiverSink",
    "RetrieveReport",
    "SendReport",
    "Sender",
    "StorageSCP",
    "StoredInstance",
    "StowAuth",
    "StowLimits",
    "StowReport",
    "StowServer",
    "TLSConfig",
    "TransferOutcome",
    "WebhookTarget",
    "echo",
    "find",
    "get",
    "load_peers",
    "move",
    "parse_peer",
    "qido",
    "quiet_pynetdicom",
    "register_transport",
    "resolve_peer",
    "send",
    "send_alert",
    "sender_for",
    "store_file",
    "stow",
    "transports",
    "unregister_transport",
    "wado",
]


__getattr__, __dir__ = _lazy.lazy(__name__, _HOMES, globals())
