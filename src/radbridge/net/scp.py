"""The old home of the Storage SCP: use :mod:`radbridge.net` (``StorageSCP``).

The DIMSE roles live in :mod:`radbridge.net.dimse`; this module keeps
``from radbridge.net.scp import StorageSCP`` working, with a DeprecationWarning.
"""

from radbridge._lazy import moved

__getattr__ = moved(
    __name__,
    {"StorageSCP": "radbridge.net", "ReceiverStats": "radbridge.net.dimse.scp"},
)
