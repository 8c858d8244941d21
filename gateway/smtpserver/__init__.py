"""SMTP listener machinery shared by the two mail edges (inbound from the axis, submission from the DMS).

``gateway.inbound`` and ``gateway.outbound`` are independent siblings in the layer contract, so
what both listeners need lives here, below them: aiosmtpd's ``SMTP`` protocol served with
``loop.create_server`` on the gateway's one event loop (HOUSE.md rule 4), a chunked DATA reader,
graceful shutdown, and the error discipline of rule 6.

Invariants:

* a 250 after DATA means the intake returned: the raw bytes are spooled (fsynced) and the
  receipt row is committed. Spool or database trouble answers the error's ``smtp_reply``
  (451/452); an unexpected exception answers ``451 4.3.0 Local error`` and is logged with its
  traceback, never shown to the peer;
* an intake call is never cut in half: it runs as its own task, shielded from the SMTP
  session's cancellation (a dropped connection), and ``stop`` waits for it;
* nothing CPU-heavy runs on the loop: DATA is read in chunks and streamed into the spool as it
  arrives (``MailSink``, the spool's writer: hashing and file I/O in a worker thread), so a
  mail is never held in memory whole.
"""

from gateway.smtpserver.data import read_data, stream_data
from gateway.smtpserver.handler import EdgeHandler, IntakePort, ItemRef
from gateway.smtpserver.listen import ListenerEdge, SmtpListener, parse_listen, server_tls_context
from gateway.smtpserver.protocol import (
    LOCAL_ERROR,
    SHUTTING_DOWN,
    TOO_BIG,
    EdgeEnvelope,
    EdgeSMTP,
    MailSink,
    current_session,
)

__all__ = [
    "LOCAL_ERROR",
    "SHUTTING_DOWN",
    "TOO_BIG",
    "EdgeEnvelope",
    "EdgeHandler",
    "EdgeSMTP",
    "IntakePort",
    "ItemRef",
    "ListenerEdge",
    "MailSink",
    "SmtpListener",
    "current_session",
    "parse_listen",
    "read_data",
    "server_tls_context",
    "stream_data",
]
