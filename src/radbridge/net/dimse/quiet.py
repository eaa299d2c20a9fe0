"""pynetdicom's logging, set once by the application that runs radbridge.

pynetdicom logs the identifiers of C-FIND, C-GET and C-MOVE requests and
responses (patient names, IDs, dates of birth) at INFO. radbridge's library
code never changes pynetdicom's settings — they are process-wide and belong to
the application; the ``radbridge`` command calls :func:`quiet_pynetdicom` once
at its start, and a program that queries through radbridge and logs at INFO
should do the same.

Examples
--------
>>> import logging
>>> pynetdicom_log = logging.getLogger("pynetdicom")
>>> before = pynetdicom_log.level
>>> pynetdicom_log.setLevel(logging.DEBUG)  # as a program's own set-up may leave it
>>> quiet_pynetdicom()
>>> logging.getLevelName(pynetdicom_log.getEffectiveLevel())
'WARNING'
>>> pynetdicom_log.setLevel(before)
"""

from __future__ import annotations

import logging

__all__ = ["quiet_pynetdicom"]


def quiet_pynetdicom() -> None:
    """Keep pynetdicom's log at WARNING or above (no identifiers, no PDU dumps).

    Sets the level of the ``pynetdicom`` logger only, without importing
    pynetdicom; radbridge's own loggers keep theirs.
    """
    pynetdicom_log = logging.getLogger("pynetdicom")
    pynetdicom_log.setLevel(max(pynetdicom_log.getEffectiveLevel(), logging.WARNING))
