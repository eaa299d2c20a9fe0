"""The old home of the peer table: use :mod:`radbridge.net` (``Peer``, ``load_peers``, ...).

Peers are part of the networking layer (:mod:`radbridge.net.peers`); this module
keeps ``from radbridge.config import Peer`` working, with a DeprecationWarning.
"""

from radbridge._lazy import moved

__getattr__ = moved(
    __name__,
    {
        "Peer": "radbridge.net",
        "TLSConfig": "radbridge.net",
        "load_peers": "radbridge.net",
        "parse_peer": "radbridge.net",
        "resolve_peer": "radbridge.net",
        "peer_from_mapping": "radbridge.net.peers",
        "tls_from_mapping": "radbridge.net.peers",
    },
)
