"""Sending to the axis: ``SmtpSender`` against a real SMTP sink on loopback, ``MaildirSender`` on disk.

The error mapping is what the outbound queue's retry rules stand on: 4xx and network trouble
are ``TransientError`` (retry), 5xx is ``PermanentError`` (failed at once), and nothing is sent
to some recipients but not others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from email import message_from_bytes
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.outbound.send import MaildirSender, SmtpSender, sender_from
from gateway.settings import AxisSettings
from tests.smtpsink import SilentServer, SmtpSink, free_port

T = TypeVar("T")

MAIL = b"From: vanthu@tayninh.gov.vn\r\nTo: vanthu@chauthanh.gov.vn\r\nSubject: edXML\r\n\r\nbody\r\n.dot\r\n"
FROM = "vanthu@tayninh.gov.vn"
TO = "vanthu@chauthanh.gov.vn"


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await factory()

    return asyncio.run(go())


def sender(sink: SmtpSink | SilentServer, timeout: float = 5.0) -> SmtpSender:
    return SmtpSender(sink.host, sink.port, timeout=timeout, starttls=None, local_hostname="gateway.test")


def test_sends_and_returns_the_servers_reply() -> None:
    async def go() -> tuple[str, SmtpSink]:
        async with SmtpSink(data=["250 2.0.0 Ok: queued as 4Xk2"]) as sink:
            return await sender(sink).send(MAIL, mail_from=FROM, rcpt_to=[TO]), sink

    reply, sink = run(go)
    assert reply == "250 2.0.0 Ok: queued as 4Xk2"
    [captured] = sink.messages
    assert (captured.mail_from, captured.rcpt_to, captured.data) == (FROM, (TO,), MAIL)


def test_421_then_250_is_sent_once() -> None:
    """The outage drill at the port level: the first attempt is transient, the second sends."""

    async def go() -> SmtpSink:
        async with SmtpSink(data=["421 4.3.2 Service not available, closing channel"]) as sink:
            with pytest.raises(TransientError, match=r"421 4\.3\.2"):
                await sender(sink).send(MAIL, mail_from=FROM, rcpt_to=[TO])
            assert sink.messages == []
            await sender(sink).send(MAIL, mail_from=FROM, rcpt_to=[TO])
            return sink

    sink = run(go)
    assert len(sink.messages) == 1
    assert sink.data_commands == 2


@pytest.mark.parametrize(
    ("script", "error", "text"),
    [
        ({"mail": ["421 4.7.0 too many connections"]}, TransientError, "421 4.7.0"),
        ({"mail": ["550 5.7.1 relay denied"]}, PermanentError, "550 5.7.1"),
        ({"rcpt": ["450 4.2.0 greylisted"]}, TransientError, f"{TO}: 450 4.2.0"),
        ({"rcpt": ["550 5.1.1 user unknown"]}, PermanentError, f"{TO}: 550 5.1.1"),
        ({"data": ["451 4.3.0 local error"]}, TransientError, "451 4.3.0"),
        ({"data": ["552 5.3.4 message too big"]}, PermanentError, "552 5.3.4"),
    ],
)
def test_replies_map_to_transient_or_permanent(script: dict[str, list[str]], error: type[Exception], text: str) -> None:
    async def go() -> SmtpSink:
        sink = SmtpSink()
        sink.script(**script)
        async with sink:
            with pytest.raises(error, match=text):
                await sender(sink).send(MAIL, mail_from=FROM, rcpt_to=[TO])
            return sink

    assert run(go).messages == []


def test_nothing_is_sent_unless_every_recipient_is_accepted() -> None:
    async def go() -> SmtpSink:
        async with SmtpSink(rcpt=["250 ok", "550 5.1.1 unknown", "250 ok", "450 4.2.0 later"]) as sink:
            with pytest.raises(PermanentError):
                await sender(sink).send(MAIL, mail_from=FROM, rcpt_to=["a@x.test", "b@x.test"])
            with pytest.raises(TransientError, match=r"b@x\.test: 450"):
                await sender(sink).send(MAIL, mail_from=FROM, rcpt_to=["a@x.test", "b@x.test"])
            return sink

    sink = run(go)
    assert sink.messages == []
    assert sink.data_commands == 0


def test_network_failures_are_transient_and_bounded_in_time() -> None:
    with pytest.raises(TransientError, match="SMTPConnectError"):
        run(lambda: SmtpSender("127.0.0.1", free_port(), timeout=2).send(MAIL, mail_from=FROM, rcpt_to=[TO]))

    async def silent() -> float:
        async with SilentServer() as server:
            start = time.monotonic()
            with pytest.raises(TransientError, match="Timeout"):
                await sender(server, timeout=0.3).send(MAIL, mail_from=FROM, rcpt_to=[TO])
            return time.monotonic() - start

    assert run(silent) < 3

    async def hangs() -> SmtpSink:
        async with SmtpSink(hang="DATA") as sink:
            with pytest.raises(TransientError):
                await sender(sink, timeout=0.3).send(MAIL, mail_from=FROM, rcpt_to=[TO])
            return sink

    # The server has the whole mail but never said 250: we must retry, so the axis may get it
    # twice. This is the one at-least-once window of SMTP itself (RFC 5321 §6.1 allows it).
    assert run(hangs).data_commands == 1


def test_starttls_required_but_not_offered_is_transient() -> None:
    async def go() -> SmtpSink:
        async with SmtpSink() as sink:
            required = SmtpSender(sink.host, sink.port, timeout=5, starttls=True)
            with pytest.raises(TransientError, match="STARTTLS"):
                await required.send(MAIL, mail_from=FROM, rcpt_to=[TO])
            return sink

    assert run(go).messages == []


def test_unsendable_envelopes_are_permanent() -> None:
    plain = SmtpSender("127.0.0.1", free_port(), timeout=1)
    for mail_from, rcpt_to in ((FROM, []), (FROM, ["a@x.test\r\nDATA"]), ("người@x.test", [TO]), (FROM, ["<a@x>"])):
        with pytest.raises(PermanentError):
            run(lambda f=mail_from, r=rcpt_to: plain.send(MAIL, mail_from=f, rcpt_to=r))  # type: ignore[misc]


# --------------------------------------------------------------------------- the local sink


def test_maildir_sender_writes_each_mail_with_its_envelope(tmp_path: Path) -> None:
    axis = MaildirSender(tmp_path / "axis")

    async def go() -> list[str]:
        return [
            await axis.send(MAIL, mail_from=FROM, rcpt_to=[TO]),
            await axis.send(MAIL, mail_from=FROM, rcpt_to=[TO, "b@x.test"]),
        ]

    replies = run(go)
    assert all(r.startswith("250 2.0.0 delivered to maildir") for r in replies)
    files = sorted((tmp_path / "axis" / "new").iterdir())
    assert len(files) == 2
    assert list((tmp_path / "axis" / "tmp").iterdir()) == []
    contents = {p.read_bytes() for p in files}
    assert f"Return-Path: <{FROM}>\r\nX-Envelope-To: {TO}\r\n".encode() + MAIL in contents
    assert any(message_from_bytes(c)["X-Envelope-To"] == f"{TO}, b@x.test" for c in contents)


def test_maildir_sender_disk_trouble_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(TransientError, match="cannot write to the Maildir"):
        run(lambda: MaildirSender(blocker / "axis").send(MAIL, mail_from=FROM, rcpt_to=[TO]))


# --------------------------------------------------------------------------- from settings


def test_sender_from_settings(tmp_path: Path) -> None:
    local = sender_from(AxisSettings(relay="maildir:var/axis"), tmp_path)
    assert isinstance(local, MaildirSender)
    assert local.path == tmp_path / "var" / "axis"
    relay = sender_from(AxisSettings(relay="smtp://relay.tayninh.gov.vn"), tmp_path, starttls=False)
    assert isinstance(relay, SmtpSender)
    assert (relay.host, relay.port, relay.starttls) == ("relay.tayninh.gov.vn", 25, False)


@pytest.mark.parametrize(
    ("relay", "text"),
    [
        ("lmtp://relay:24", "unknown kind of relay"),
        ("maildir:", "names no Maildir path"),
        ("smtp://relay:x", "port is not a number"),
        ("smtp://user@relay:25", "expected smtp://host:port"),
    ],
)
def test_bad_relays_are_config_errors(relay: str, text: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=text):
        sender_from(AxisSettings(relay=relay), tmp_path)
