"""Streamed DATA to the axis: byte for byte, in constant memory, with flow control and early replies.

``SmtpSender`` against real aiosmtpd sinks (in this process for content, in another one for
memory), and against a raw loopback server for what aiosmtpd never does: answer before the end
of the data, hang up in the middle of it, or stop reading.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

import aiosmtplib
import pytest
from aiosmtplib.protocol import normalize_message_line_endings

import gateway.smtpclient
from gateway.errors import PermanentError, TransientError
from gateway.outbound.send import MaildirSender, SmtpSender
from gateway.pipeline.ports import SpooledMail
from gateway.smtpclient import Outgoing, send_data
from tests.inbound.test_streamed_data import MB, PIECE, awkward_mail, write_big
from tests.mailtls import make_loopback_tls
from tests.outbound.farsink import FarSink
from tests.smtpsink import SmtpSink

FROM = "vanthu@tayninh.gov.vn"
TO = "vanthu@chauthanh.gov.vn"

AfterData = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """Just enough SMTP to reach DATA (no extensions), then ``after_data`` has the connection."""

    def __init__(self, after_data: AfterData) -> None:
        self.after_data = after_data
        self.closing = asyncio.Event()
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        writer.write(b"220 raw.test ESMTP\r\n")
        try:
            while line := await reader.readline():
                if line[:4].upper() == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    await self.after_data(reader, writer)
                    return
                writer.write(b"221 bye\r\n" if line[:4].upper() == b"QUIT" else b"250 raw.test\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.closing.set()
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        if self._tasks:  # each session ends on its own (EOF, or ``closing``): none is cut off
            await asyncio.wait(self._tasks, timeout=5)
        await self._server.wait_closed()


def spooled_big(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "big.eml"
    write_big(path, size)
    return path


def test_a_spooled_mail_is_sent_byte_for_byte_in_7_byte_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.smtpclient, "CHUNK", PIECE)
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(awkward_mail())

    async def go() -> tuple[str, SmtpSink]:
        async with SmtpSink(data=["250 2.0.0 Ok: queued as 4Xk2"]) as sink:
            with spooled.open("rb") as file:
                sender = SmtpSender(sink.host, sink.port, timeout=5, starttls=None)
                return await sender.send(SpooledMail(b"", file), mail_from=FROM, rcpt_to=[TO]), sink

    reply, sink = asyncio.run(go())
    assert reply == "250 2.0.0 Ok: queued as 4Xk2"
    [captured] = sink.messages
    assert captured.data == normalize_message_line_endings(awkward_mail())


@pytest.mark.parametrize("kind", ["spooled", "bytes", "spooled-starttls"])
def test_a_40_mb_mail_is_sent_in_constant_memory(tmp_path: Path, kind: str) -> None:
    """A spooled mail costs a few pieces, over TLS too; a mail in memory costs no copy of itself."""
    tls = make_loopback_tls(tmp_path) if kind.endswith("starttls") else None
    spooled = spooled_big(tmp_path, 40 * MB)
    whole = spooled.read_bytes() if kind == "bytes" else None  # allocated before the measure
    size = spooled.stat().st_size
    digest = hashlib.sha256(spooled.read_bytes()).hexdigest()
    with FarSink(tls=tls) as sink, spooled.open("rb") as file:
        context = tls.client_context() if tls else None
        sender = SmtpSender(sink.host, sink.port, timeout=30, starttls=tls is not None, tls_context=context)
        job = sender.send(whole if whole is not None else SpooledMail(b"", file), mail_from=FROM, rcpt_to=[TO])
        tracemalloc.start()
        try:
            reply = asyncio.run(job)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert sink.received() == (digest, size)
    assert reply == f"250 2.0.0 sha256={digest} size={size}"
    assert peak < 10 * MB, f"peak Python allocations {peak / MB:.1f} MiB for a {size / MB:.1f} MiB mail"


def test_a_reply_before_the_end_of_the_data_is_heard(tmp_path: Path) -> None:
    """552 after the first MiB (and the rest read and dropped): refused for good, not 'connection lost'."""
    spooled = spooled_big(tmp_path, 20 * MB)

    async def too_big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(MB)
        writer.write(b"552 5.3.4 message too big\r\n")
        await writer.drain()
        while await reader.read(MB):
            pass

    async def go() -> None:
        async with RawServer(too_big) as server:
            with spooled.open("rb") as file, pytest.raises(PermanentError, match=r"552 5\.3\.4 message too big"):
                await SmtpSender(server.host, server.port, timeout=5, starttls=False).send(
                    SpooledMail(b"", file), mail_from=FROM, rcpt_to=[TO]
                )

    asyncio.run(go())


def test_a_hang_up_in_the_middle_of_the_data_is_transient(tmp_path: Path) -> None:
    spooled = spooled_big(tmp_path, 20 * MB)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(MB)

    async def go() -> None:
        async with RawServer(hang_up) as server:
            with spooled.open("rb") as file, pytest.raises(TransientError):
                await SmtpSender(server.host, server.port, timeout=5, starttls=False).send(
                    SpooledMail(b"", file), mail_from=FROM, rcpt_to=[TO]
                )

    asyncio.run(go())


def test_a_server_that_stops_reading_holds_back_the_writes(tmp_path: Path) -> None:
    """Flow control: the unread data stays in the file, not in the transport's buffer, until the deadline."""
    spooled = spooled_big(tmp_path, 30 * MB)

    async def go() -> float:
        async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.closing.wait()

        server = RawServer(stall)
        async with server:
            client = aiosmtplib.SMTP(hostname=server.host, port=server.port, timeout=5, start_tls=False)
            try:
                await client.connect()
                await client.mail(FROM)
                await client.rcpt(TO)
                with spooled.open("rb") as file, pytest.raises(aiosmtplib.SMTPTimeoutError):
                    await send_data(client, Outgoing.of(SpooledMail(b"", file)), seconds=1.0)
                assert not client.is_connected  # a session cut in the middle of the data is closed
                return tracemalloc.get_traced_memory()[1]
            finally:
                client.close()

    tracemalloc.start()
    try:
        peak = asyncio.run(go())
    finally:
        tracemalloc.stop()
    assert peak < 10 * MB, f"{peak / MB:.1f} MiB buffered for a server that reads nothing"


def test_the_maildir_sink_copies_a_spooled_mail_with_its_envelope(tmp_path: Path) -> None:
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(awkward_mail())

    async def go() -> str:
        with spooled.open("rb") as file:
            return await MaildirSender(tmp_path / "axis").send(SpooledMail(b"", file), mail_from=FROM, rcpt_to=[TO])

    assert asyncio.run(go()).startswith("250 2.0.0 delivered to maildir")
    [written] = (tmp_path / "axis" / "new").iterdir()
    assert written.read_bytes() == f"Return-Path: <{FROM}>\r\nX-Envelope-To: {TO}\r\n".encode() + awkward_mail()
