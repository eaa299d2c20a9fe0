"""radbridge's lean DICOM upper layer for storage: C-ECHO and C-STORE, SCU and SCP.

pynetdicom stays for query/retrieve (:mod:`radbridge.net.qr`). Storage runs here
because pynetdicom's reactor threads poll with 1 ms sleeps and decode every PDU in
Python: measured in bench/bench_net.py, sending was 7x slower than DCMTK's storescu
and receiving 9x slower than storescp (bench/README.md has the numbers). This path
reads and writes PDUs on blocking sockets, one thread per association, and moves
data set bytes without parsing them.

Modules: :mod:`~radbridge.net.dimse.pdu` (PDUs), :mod:`~radbridge.net.dimse.commands`
(DIMSE command sets), :mod:`~radbridge.net.dimse.link` (a connection),
:mod:`~radbridge.net.dimse.client` (SCU) and :mod:`~radbridge.net.dimse.server` (SCP).
"""
