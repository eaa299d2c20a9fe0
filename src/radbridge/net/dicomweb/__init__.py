"""DICOMweb: the client (STOW-RS, QIDO-RS, WADO-RS to a peer).

See :mod:`radbridge.net.dicomweb.client`.
"""

from radbridge.net.dicomweb.client import StowReport, qido, stow, wado

__all__ = ["StowReport", "qido", "stow", "wado"]
