"""The old home of query/retrieve: use :mod:`radbridge.net` (``find``, ``get``, ``move``).

The DIMSE roles live in :mod:`radbridge.net.dimse`; this module keeps
``from radbridge.net.qr import find`` working, with a DeprecationWarning.
"""

from radbridge._lazy import moved

__getattr__ = moved(
    __name__,
    {name: "radbridge.net" for name in ("RetrieveReport", "find", "get", "move")},
)
