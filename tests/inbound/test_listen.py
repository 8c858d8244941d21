"""The listener machinery shared by both edges: addresses, TLS files, graceful stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from gateway.errors import ConfigError
from gateway.inbound.smtp import InboundSmtp
from gateway.settings import SmtpSettings
from gateway.smtpserver import ItemRef, MailSink, parse_listen, server_tls_context
from tests.inbound.client import CLIENT_NAME, mail, run, send
from tests.inbound.twins import MemorySpool, MemoryStore
from tests.mailtls import make_loopback_tls

SETTINGS = SmtpSettings(listen="127.0.0.1:0", hostname="gw.test")


class GatedIntake:
    """An intake that waits for ``gate`` before it makes the mail durable (in-memory)."""

    def __init__(self) -> None:
        from gateway.inbound.intake import Intake

        self.inner = Intake(MemoryStore(), MemorySpool())
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.done: list[int] = []

    def open_mail(self) -> MailSink:
        return self.inner.open_mail()

    async def accept(self, raw: bytes | MailSink, **kwargs: object) -> ItemRef:
        self.entered.set()
        await self.gate.wait()
        item = await self.inner.accept(raw, **kwargs)  # type: ignore[arg-type]
        self.done.append(item.id)
        return item


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:2525", ("127.0.0.1", 2525)), ("[::1]:25", ("::1", 25)), ("localhost:0", ("localhost", 0))],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["2525", ":25", "host:", "host:port", "host:70000", "::1:25", "[::1]x:25"])
def test_parse_listen_refuses(value: str) -> None:
    with pytest.raises(ConfigError, match="host:port"):
        parse_listen(value)


def test_a_bad_listen_names_its_setting() -> None:
    """A listen value that is a string but not host:port names the table it came from."""
    with pytest.raises(ConfigError, match=r"\[smtp\] listen = '25' is not host:port"):
        InboundSmtp(SmtpSettings(listen="25", hostname="gw.test"), GatedIntake())


def test_tls_files_both_or_neither(tmp_path: Path) -> None:
    tls = make_loopback_tls(tmp_path)
    assert server_tls_context(None, None, section="smtp") is None
    assert server_tls_context(tls.cert, tls.key, section="smtp") is not None
    with pytest.raises(ConfigError, match="both"):
        server_tls_context(tls.cert, None, section="smtp")
    with pytest.raises(ConfigError, match="cannot load"):
        server_tls_context(tls.key, tls.cert, section="smtp")


def test_address_before_start_and_double_stop() -> None:
    async def main() -> None:
        server = InboundSmtp(SETTINGS, GatedIntake())
        with pytest.raises(RuntimeError, match="not started"):
            _ = server.address
        await server.start()
        await server.stop(1)
        await server.stop(1)

    run(main)


def test_stop_lets_data_in_flight_finish() -> None:
    async def main() -> None:
        intake = GatedIntake()
        server = InboundSmtp(SETTINGS, intake)
        await server.start()
        port = server.address[1]
        idle = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname=CLIENT_NAME)
        await idle.connect()
        await idle.ehlo()
        sending = asyncio.create_task(send(port, mail()))
        await intake.entered.wait()
        stopping = asyncio.create_task(server.stop(grace=10))
        await asyncio.sleep(0.1)
        assert not stopping.done()  # waiting for the DATA in flight
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)  # no longer accepting
        intake.gate.set()
        assert await sending == "2.0.0 Ok: queued as 1"
        await stopping
        # The idle session was told 421 and closed.
        with pytest.raises((aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException)):
            await idle.noop()
        idle.close()

    run(main)


def test_after_the_grace_period_data_is_cut_but_the_intake_call_completes() -> None:
    async def main() -> None:
        intake = GatedIntake()
        server = InboundSmtp(SETTINGS, intake)
        await server.start()
        sending = asyncio.create_task(send(server.address[1], mail()))
        await intake.entered.wait()
        asyncio.get_running_loop().call_later(0.5, intake.gate.set)
        await server.stop(grace=0.1)
        # The client got no 250 (it will send again); the intake call was not cut in half.
        with pytest.raises(aiosmtplib.SMTPException):
            await sending
        assert intake.done == [1]

    run(main)


def test_stop_tells_a_client_between_commands_421() -> None:
    async def main() -> None:
        server = InboundSmtp(SETTINGS, GatedIntake())
        await server.start()
        reader, writer = await asyncio.open_connection(*server.address)
        assert (await reader.readline()).startswith(b"220 gw.test")
        writer.write(b"EHLO client.test\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        await server.stop(grace=1)
        assert await reader.readline() == b"421 4.3.2 Service shutting down; try again later\r\n"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()

    run(main)
