"""One SMTP connection: aiosmtpd's protocol with our replies, our DATA reader and drain bookkeeping."""

from __future__ import annotations

import asyncio
import contextvars
import secrets
from dataclasses import dataclass, field
from typing import Any, AnyStr, Protocol

from aiosmtpd.smtp import MISSING, SMTP, Envelope, syntax

from gateway.errors import GatewayError
from gateway.smtpserver.data import stream_data
from gateway.store import Spooled

__all__ = [
    "LOCAL_ERROR",
    "SHUTTING_DOWN",
    "TOO_BIG",
    "Connections",
    "EdgeEnvelope",
    "EdgeSMTP",
    "MailSink",
    "current_session",
    "trace",
]

LOCAL_ERROR = "451 4.3.0 Local error"
"""The reply to any unexpected exception: never the exception text (aiosmtpd's default leaks it)."""
TOO_BIG = "552 5.3.4 message too big"
SHUTTING_DOWN = "421 4.3.2 Service shutting down; try again later"
_AIOSMTPD_TOO_BIG = frozenset(
    {"552 Error: Too much mail data", "552 Error: message size exceeds fixed maximum message size"}
)

_session_var: contextvars.ContextVar[EdgeSMTP | None] = contextvars.ContextVar("smtp_session", default=None)


class MailSink(Protocol):
    """A mail being received, streamed into the spool as it arrives (``gateway.store.SpoolWriter``)."""

    async def write(self, data: bytes) -> None:
        """Append the next piece (raises the spool's ``TransientError`` on disk trouble)."""
        ...

    async def commit(self) -> Spooled:
        """Make it durable under its SHA-256 (fsync, rename, directory fsync)."""
        ...

    async def abort(self) -> None:
        """Drop it, unless it is committed or being committed."""
        ...


class EdgeEnvelope(Envelope):
    """aiosmtpd's envelope, plus the sink its DATA was streamed into (None before DATA ends)."""

    def __init__(self) -> None:
        super().__init__()
        self.mail: MailSink | None = None


@dataclass
class Connections:
    """The open connections of one listener and how many are inside DATA (for a graceful stop)."""

    open: set[EdgeSMTP] = field(default_factory=set)
    busy: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    draining: bool = False

    def __post_init__(self) -> None:
        self.idle.set()


def current_session() -> EdgeSMTP | None:
    """The SMTP connection whose task is running, if any (for log lines)."""
    return _session_var.get()


def trace() -> str:
    """``[trace-id peer item]`` of the running session, for log lines."""
    session = current_session()
    if session is None:
        return "[-]"
    peer = session.session.peer if session.session is not None else "?"
    item = f" item {session.item_id}" if session.item_id is not None else ""
    return f"[{session.trace} {peer}{item}]"


class EdgeSMTP(SMTP):
    """aiosmtpd's ``SMTP`` protocol as both listeners use it.

    Changes from aiosmtpd: DATA is read in chunks (``read_data``), the 552 replies carry an
    enhanced status code, MAIL and DATA answer 421 while the listener drains, each connection
    has a short trace id for the log, and it registers itself in ``connections``.
    """

    def __init__(self, handler: Any, *, connections: Connections, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.connections = connections
        self.trace = secrets.token_hex(6)
        self.item_id: int | None = None
        """The work item of the last DATA on this connection (log lines)."""
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register the connection (again after STARTTLS: a set, so harmless)."""
        self.connections.open.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        """Forget the connection."""
        self.connections.open.discard(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        _session_var.set(self)  # in this connection's task only
        await super()._handle_client()

    async def push(self, status: AnyStr) -> None:
        """Send a reply; aiosmtpd's own 552 texts are replaced by ``552 5.3.4 message too big``."""
        if isinstance(status, str) and status in _AIOSMTPD_TOO_BIG:
            await super().push(TOO_BIG)
            return
        await super().push(status)

    async def smtp_MAIL(self, arg: str | None) -> None:
        """MAIL, unless the listener is draining for shutdown."""
        if self.connections.draining:
            await self._goodbye()
            return
        await super().smtp_MAIL(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """DATA: read in chunks, counted as in flight so that a graceful stop lets it finish."""
        if self.connections.draining:
            await self._goodbye()
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        if envelope is None or not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        self.in_data = True
        self.connections.busy += 1
        self.connections.idle.clear()
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            status = await self._receive(envelope)
            if status is not None:
                await self.push(status)
        finally:
            self.in_data = False
            self.connections.busy -= 1
            if self.connections.busy == 0:
                self.connections.idle.set()

    async def _receive(self, envelope: Envelope) -> str | None:
        """Stream the DATA into a sink and hand it to the handler; the reply (None: hang up).

        The sink is the handler's once ``handle_DATA`` is called (the intake commits it, or drops
        it when it fails); before that, any way out drops it here.
        """
        sink: MailSink = self.event_handler.open_mail()
        handed = False
        try:
            try:
                size = await stream_data(self._reader, self.data_size_limit, sink.write, progress=self._reset_timeout)
            except asyncio.IncompleteReadError:
                if self.transport is not None:  # the peer left in the middle: nothing to answer
                    self.transport.close()
                return None
            except GatewayError as error:  # the spool failed while the mail came in
                self.event_handler.log.warning("%s spooling DATA failed: %s", trace(), error, exc_info=error)
                return error.smtp_reply
            if size is None:
                return TOO_BIG
            if isinstance(envelope, EdgeEnvelope):
                envelope.mail = sink
            handed = True
            status: Any = await self._call_handler_hook("DATA")
        finally:
            if not handed:
                await sink.abort()
            # A fresh envelope whatever happened (aiosmtpd's _set_post_data_state), so that
            # after a 451 from handle_exception the client can send MAIL again.
            self.envelope = self._create_envelope()
        return "250 OK" if status is MISSING else str(status)

    def _create_envelope(self) -> EdgeEnvelope:
        return EdgeEnvelope()

    async def _goodbye(self) -> None:
        await self.push(SHUTTING_DOWN)
        if self.transport is not None:
            self.transport.close()

    def shut(self) -> None:
        """Close the connection now; an idle one is told 421 first."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self.in_data and isinstance(transport, asyncio.WriteTransport):
            transport.write(SHUTTING_DOWN.encode("ascii") + b"\r\n")
        transport.close()
