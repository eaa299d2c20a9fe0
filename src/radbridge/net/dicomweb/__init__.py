"""DICOMweb, by role (behind :mod:`radbridge.net`).

- :mod:`~radbridge.net.dicomweb.client` — STOW-RS, QIDO-RS and WADO-RS to a peer
  over dicomweb-client, and the ``dicomweb`` transport's sender;
- :mod:`~radbridge.net.dicomweb.server` — the STOW-RS receiver
  (:class:`~radbridge.net.dicomweb.server.StowServer`) on Hypercorn, with
  :mod:`~radbridge.net.dicomweb.parts` (each part spooled durably),
  :mod:`~radbridge.net.dicomweb.multipart` (the streaming parser) and
  :mod:`~radbridge.net.dicomweb.settings` (credentials and limits).
"""
