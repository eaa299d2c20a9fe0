"""DIMSE: the classic DICOM network services, by role (behind :mod:`radbridge.net`).

Roles:

- :mod:`~radbridge.net.dimse.scu` — storage SCU: :func:`send` files and folders
  (one association per batch, per-instance results, retries), :func:`store_file`
  (one file, once), and the ``dimse`` transport's sender;
- :mod:`~radbridge.net.dimse.scp` — storage SCP: :class:`StorageSCP`, which
  answers Success only after an instance is durable;
- :mod:`~radbridge.net.dimse.qr` — query/retrieve SCU: C-FIND, C-GET, C-MOVE.

Storage (C-ECHO, C-STORE) runs on radbridge's own lean upper layer:
:mod:`~radbridge.net.dimse.pdu` (PDUs), :mod:`~radbridge.net.dimse.commands` (DIMSE
command sets), :mod:`~radbridge.net.dimse.link` (a connection),
:mod:`~radbridge.net.dimse.client` (an association as requestor) and
:mod:`~radbridge.net.dimse.server` (as acceptor), with
:mod:`~radbridge.net.dimse.status` for statuses. pynetdicom's reactor threads poll
with 1 ms sleeps and decode every PDU in Python: measured in bench/bench_net.py,
sending was 7x slower than DCMTK's storescu and receiving 9x slower than storescp
(bench/README.md has the numbers). This path reads and writes PDUs on blocking
sockets, one thread per association, and moves data set bytes without parsing them.
Query/retrieve stays on pynetdicom (:mod:`~radbridge.net.dimse.qr_association`).
"""
