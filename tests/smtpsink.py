"""A real SMTP (or LMTP) server on loopback that captures what it is sent and answers as scripted.

Runs on the test's own event loop (aiosmtpd's protocol served by ``loop.create_server``; no
thread, no ``Controller``), so a test can drive a client and the sink in one ``asyncio.run``.

* ``SmtpSink()`` answers ``250`` to everything and keeps each message it accepted in
  ``sink.messages`` (envelope sender, accepted recipients, the raw bytes);
* scripted replies: ``SmtpSink(data=["421 4.3.2 busy", "250 2.0.0 ok"])`` answers the first DATA
  with 421 and the second with 250 (likewise ``mail=`` and ``rcpt=``); when a queue is empty the
  answer is 250. A message counts as accepted (captured) only when its DATA reply is 2xx;
* ``SmtpSink(lmtp=True)`` speaks LMTP (LHLO; after DATA one reply per accepted recipient, each
  taken from the ``data`` queue in recipient order);
* ``SmtpSink(hang="DATA")`` never answers the end of DATA (the client must time out);
  ``SilentServer`` accepts connections and never says anything (not even a greeting);
* ``free_port()`` is a loopback port where nothing listens (connection refused).

Use it as ``async with SmtpSink() as sink: ... sink.port ...``: leaving the block closes the
listener and every connection it accepted.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["Captured", "SilentServer", "SmtpSink", "free_port"]

OK = "250 2.0.0 OK"


@dataclass(frozen=True)
class Captured:
    """One message the sink accepted."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes


@dataclass
class _Handler:
    """aiosmtpd handler hooks answering from the scripts."""

    sink: SmtpSink
    mail: deque[str] = field(default_factory=deque)
    rcpt: deque[str] = field(default_factory=deque)
    data: deque[str] = field(default_factory=deque)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.mail.popleft() if self.mail else OK
        if reply.startswith("2"):
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt.popleft() if self.rcpt else OK
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.sink.data_commands += 1
        if self.sink.hang == "DATA":
            await self.sink.closing.wait()
            return "421 4.3.2 shutting down"
        content = envelope.original_content or b""
        if not self.sink.lmtp:
            reply = self.data.popleft() if self.data else OK
            if reply.startswith("2"):
                self.sink.messages.append(Captured(envelope.mail_from or "", tuple(envelope.rcpt_tos), content))
            return reply
        # LMTP (RFC 2033 §4.2): one reply per accepted recipient, in RCPT order. aiosmtpd sends
        # what we return as it is, so several CRLF-separated lines are several replies.
        replies = [self.data.popleft() if self.data else OK for _ in envelope.rcpt_tos]
        accepted = tuple(r for r, reply in zip(envelope.rcpt_tos, replies, strict=True) if reply.startswith("2"))
        if accepted:
            self.sink.messages.append(Captured(envelope.mail_from or "", accepted, content))
        return "\r\n".join(replies)


class SmtpSink:
    """A capturing SMTP/LMTP server on ``127.0.0.1`` (see the module docstring)."""

    def __init__(
        self,
        *,
        lmtp: bool = False,
        mail: Iterable[str] = (),
        rcpt: Iterable[str] = (),
        data: Iterable[str] = (),
        hang: Literal["DATA"] | None = None,
    ) -> None:
        self.lmtp = lmtp
        self.hang = hang
        self.messages: list[Captured] = []
        self.data_commands = 0
        """How many DATA transactions reached their end (accepted or not)."""
        self.handler = _Handler(self, deque(mail), deque(rcpt), deque(data))
        self.closing = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._protocols: list[SMTP] = []
        self.host = "127.0.0.1"
        self.port = 0

    def script(self, *, mail: Iterable[str] = (), rcpt: Iterable[str] = (), data: Iterable[str] = ()) -> None:
        """Queue more scripted replies (after those already queued)."""
        self.handler.mail.extend(mail)
        self.handler.rcpt.extend(rcpt)
        self.handler.data.extend(data)

    def _protocol(self) -> SMTP:
        kind = LMTP if self.lmtp else SMTP
        protocol = kind(self.handler, hostname="sink.test", loop=asyncio.get_running_loop(), timeout=30)
        self._protocols.append(protocol)
        return protocol

    async def start(self) -> None:
        """Listen on a free loopback port (``self.port``)."""
        self._server = await asyncio.get_running_loop().create_server(self._protocol, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and close every accepted connection; wait for their tasks."""
        self.closing.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks: list[asyncio.Task[None]] = []
        for protocol in self._protocols:
            if protocol.transport is not None:
                protocol.transport.close()
            task = protocol._handler_coroutine
            if task is not None:
                tasks.append(task)
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def __aenter__(self) -> SmtpSink:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()


class SilentServer:
    """Accepts connections and never sends a byte: a client must time out on the greeting."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.host = "127.0.0.1"
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
            await writer.wait_closed()
        await self._server.wait_closed()


def free_port() -> int:
    """A loopback port nobody listens on (bound and released: connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
