"""The IMAP poller's parts that need no mail server, and its deadlines against servers that misbehave.

Modified UTF-7 (RFC 3501 §5.1.3), the backoff, the sender read from the headers, the settings
it refuses, and: a server that accepts the connection and never greets, and a port nobody
listens on — the poller retries with backoff, never hangs, and stops promptly.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.clock import SystemClock
from gateway.errors import ConfigError
from gateway.inbound.imap import Backoff, ImapPoller, envelope_sender
from gateway.inbound.imapsession import decode_mailbox, encode_mailbox, quote
from gateway.settings import ImapSettings
from tests.dovecot import running, until
from tests.smtpsink import SilentServer, free_port

SETTINGS = ImapSettings(host="127.0.0.1", port=143, security="none", user="vanthu", timeout_seconds=0.3)


class NoIntake:
    """An intake these tests never reach."""

    async def accept(self, raw: bytes, **fields: Any) -> Any:
        raise AssertionError("no mail can arrive here")


def poller(settings: ImapSettings) -> ImapPoller:
    return ImapPoller(
        settings,
        NoIntake(),
        password="x",
        clock=SystemClock(),
        backoff_initial=0.05,
        backoff_max=0.2,
        rng=random.Random(5),  # noqa: S311 - jitter
    )


# ---------------------------------------------------------------------- modified UTF-7
@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", "INBOX"),
        ("Đã xử lý", "&ARAA4w- x&Hu0- l&AP0-"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 §5.1.3's example
        ("A&B", "A&-B"),
        ("Văn bản đến", "V&AQM-n b&HqM-n &AREevw-n"),
    ],
)
def test_mailbox_names_in_modified_utf7(name: str, wire: str) -> None:
    assert encode_mailbox(name) == wire
    assert decode_mailbox(wire) == name


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
def test_modified_utf7_round_trips_and_is_printable_ascii(name: str) -> None:
    wire = encode_mailbox(name)
    assert all(0x20 <= ord(char) <= 0x7E for char in wire)
    assert decode_mailbox(wire) == name


def test_quoting() -> None:
    assert quote('Đã "xử" \\ lý') == '"Đã \\"xử\\" \\\\ lý"'


# ---------------------------------------------------------------------- backoff
def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(1.0, 30.0, random.Random(1))  # noqa: S311 - jitter
    delays = [backoff.next() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        ceiling = min(30.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 30.0
    assert delays[-1] >= 15.0
    backoff.reset()
    assert backoff.next() <= 1.0
    for _ in range(200):  # no overflow however long the outage
        assert backoff.next() <= 30.0


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="initial <= maximum"):
        Backoff(5.0, 1.0)


# ---------------------------------------------------------------------- the sender
@pytest.mark.parametrize(
    ("raw", "sender"),
    [
        (b"Return-Path: <vanthu@axis.test>\r\nFrom: Other <o@x.test>\r\n\r\nbody", "vanthu@axis.test"),
        (b"Return-Path: <>\r\nFrom: o@x.test\r\n\r\nbody", ""),  # a bounce: the null sender
        (b"From: =?utf-8?q?V=C4=83n_th=C6=B0?= <vanthu@axis.test>\r\n\r\nbody", "vanthu@axis.test"),
        (b"Subject: none\r\n\r\nbody", ""),
        (b"\xff\xfe garbage without headers", ""),
    ],
)
def test_the_sender_is_the_return_path_else_the_from_address(raw: bytes, sender: str) -> None:
    assert envelope_sender(raw) == sender


# ---------------------------------------------------------------------- settings refused
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"host": None}, "needs host and user"),
        ({"user": None}, "needs host and user"),
        ({"done_mailbox": "INBOX"}, "both 'INBOX'"),
        ({"done_mailbox": "inbox"}, "both 'INBOX'"),
        ({"done_mailbox": "Done\r\nA1 DELETE INBOX"}, "NUL, CR or LF"),
        ({"idle_renew_seconds": 29 * 60.0}, "RFC 2177"),
        ({"idle_renew_seconds": 0.0}, "RFC 2177"),
        ({"timeout_seconds": 0.0}, "timeout_seconds must be positive"),
    ],
)
def test_settings_that_cannot_work_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        poller(replace(SETTINGS, **changes))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- misbehaving servers
def test_a_server_that_never_greets_times_out_backs_off_and_stops_promptly() -> None:
    async def main() -> None:
        async with SilentServer() as silent:
            imap = poller(replace(SETTINGS, port=silent.port))
            async with running(imap):
                await until(lambda: imap.status.reconnects >= 3, "three attempts", seconds=5)
                started = time.monotonic()
            assert time.monotonic() - started < 1.0  # stop() does not wait for a deadline
            assert imap.status.state == "stopped"
            assert "greeting: no answer within 0.3 s" in (imap.status.last_error or "")

    asyncio.run(main())


def test_a_closed_port_is_retried_with_backoff() -> None:
    async def main() -> None:
        imap = poller(replace(SETTINGS, port=free_port()))
        async with running(imap):
            await until(lambda: imap.status.reconnects >= 3, "three attempts", seconds=5)
        assert "ConnectionRefusedError" in (imap.status.last_error or "")
        assert not imap.status.connected

    asyncio.run(main())


def test_a_cancelled_poller_closes_its_connection() -> None:
    async def main() -> None:
        async with SilentServer() as silent:
            imap = poller(replace(SETTINGS, port=silent.port, timeout_seconds=30.0))
            task = asyncio.create_task(imap.run())
            await until(lambda: imap.status.state == "connecting", "connecting")
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert imap.status.state == "stopped"

    asyncio.run(main())  # filterwarnings=error: an unclosed transport or socket would fail here
