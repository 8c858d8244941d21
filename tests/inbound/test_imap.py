"""The IMAP poller against a real Dovecot (tests/dovecot.py), with an intake that records its calls.

What is proved here: every mail is taken once and moved, unread, to a done folder with a
Vietnamese name; new mail is noticed during IDLE; a kicked, a silently dead and a refused
connection are replaced without losing or doubling a mail; a crash on either side of the commit
neither loses nor doubles; a failing intake leaves the mail where it is; IDLE is renewed; the
MOVE fallbacks work on a server without MOVE or UIDPLUS; TLS and STARTTLS, and a certificate we
do not trust is refused before the password is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.clock import SystemClock
from gateway.errors import PermanentError, TransientError
from gateway.inbound.imap import ImapPoller
from gateway.settings import ImapSettings
from gateway.store import AlreadyRecorded
from tests.dovecot import Dovecot, MailUser, imap_settings, running, shared_dovecot, until

DONE = "Đã xử lý"


class Crash(BaseException):
    """The process dies here (like SystemExit: no ``except Exception`` catches it)."""


@dataclass(frozen=True)
class Ref:
    """The part of ``ItemRef`` the poller reads."""

    new: bool = True


@dataclass(frozen=True)
class Call:
    raw: bytes
    kind: str
    channel: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    imap_key: str | None


@dataclass
class FakeIntake:
    """Records calls; ``recorded`` survives a "restart" (a new poller given the same intake).

    ``failures`` are raised by the next calls, before anything is recorded; ``crash_after``
    raises ``Crash`` right after the commit (before the poller can MOVE).
    """

    failures: list[BaseException] = field(default_factory=list)
    crash_after: bool = False
    calls: list[Call] = field(default_factory=list)
    recorded: dict[str, bytes] = field(default_factory=dict)

    async def accept(
        self,
        raw: bytes,
        *,
        kind: str,
        channel: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        imap_key: str | None = None,
    ) -> Ref:
        self.calls.append(Call(raw, kind, channel, mail_from, tuple(rcpt_to), imap_key))
        if self.failures:
            raise self.failures.pop(0)
        assert imap_key is not None
        if imap_key in self.recorded:
            raise AlreadyRecorded("imap_key", imap_key, None)
        self.recorded[imap_key] = raw
        if self.crash_after:
            self.crash_after = False
            raise Crash
        return Ref()


@pytest.fixture
def dovecot(request: pytest.FixtureRequest) -> Dovecot:
    return shared_dovecot(request.config)


@pytest.fixture
def user(dovecot: Dovecot) -> Iterator[MailUser]:
    """A fresh mailbox; Dovecot's log of the test is printed (pytest shows it when the test fails)."""
    mark = dovecot.log_mark()
    yield dovecot.add_user()
    print(dovecot.log_since(mark))


def mail(n: int, *, sender: str = "vanthu@axis.test") -> bytes:
    return (
        f"Return-Path: <{sender}>\r\n"
        "From: =?utf-8?b?VsSDbiB0aMawIFRy4bqhaQ==?= <ignored@axis.test>\r\n"
        f"Subject: =?utf-8?q?C=C3=B4ng_v=C4=83n_{n}?=\r\n"
        f"Message-ID: <{n}@axis.test>\r\n\r\n"
        f"Nội dung {n}\r\n"
    ).encode()


def poller(settings: ImapSettings, intake: Any, user: MailUser, **kwargs: Any) -> ImapPoller:
    kwargs.setdefault("backoff_initial", 0.1)
    kwargs.setdefault("backoff_max", 0.5)
    return ImapPoller(settings, intake, password=user.password, clock=SystemClock(), **kwargs)


def run(main: Callable[[], Any]) -> None:
    asyncio.run(main())


async def dies(imap: ImapPoller) -> None:
    """Run ``imap`` until ``run()`` ends by itself (a ``Crash`` from the intake), within 10 s."""
    async with asyncio.timeout(10):
        await imap.run()


# ---------------------------------------------------------------------- the happy path
def test_every_mail_is_taken_once_and_moved_unread_to_a_vietnamese_folder(dovecot: Dovecot, user: MailUser) -> None:
    uids = [dovecot.append(user, mail(n)) for n in range(3)]
    uidvalidity = dovecot.uidvalidity(user)
    intake = FakeIntake()

    async def main() -> None:
        imap = poller(imap_settings(dovecot, user), intake, user)
        async with running(imap):
            await until(lambda: imap.status.moved == 3 and imap.status.state == "idle", "three mails moved")

    run(main)
    assert [c.imap_key for c in intake.calls] == [f"INBOX/{uidvalidity}/{uid}" for uid in uids]
    assert [c.raw for c in intake.calls] == [mail(n) for n in range(3)]  # the stored bytes, unaltered
    assert {(c.kind, c.channel, c.mail_from, c.rcpt_to) for c in intake.calls} == {
        ("inbound", "imap", "vanthu@axis.test", (user.name,))
    }
    assert dovecot.messages(user) == {}
    done = dovecot.messages(user, DONE)
    assert sorted(raw for raw, _ in done.values()) == sorted(mail(n) for n in range(3))
    assert not any("\\Seen" in flags for _, flags in done.values())  # BODY.PEEK: nobody "read" them
    assert dovecot.mailboxes(user) == ["INBOX", DONE]  # Dovecot decodes our modified UTF-7 to this


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls(dovecot: Dovecot, user: MailUser, security: Any) -> None:
    dovecot.append(user, mail(1))
    intake = FakeIntake()
    mark = dovecot.log_mark()

    async def main() -> None:
        imap = poller(
            imap_settings(dovecot, user, security=security), intake, user, ssl_context=dovecot.tls.client_context()
        )
        async with running(imap):
            await until(lambda: imap.status.moved == 1, "the mail moved")

    run(main)
    assert len(intake.calls) == 1
    logins = [line for line in dovecot.log_since(mark).splitlines() if f"Login: user=<{user.name}>" in line]
    assert len(logins) == 1
    assert ", TLS," in logins[0]


def test_an_untrusted_certificate_is_refused_before_login(dovecot: Dovecot, user: MailUser) -> None:
    dovecot.append(user, mail(1))
    mark = dovecot.log_mark()

    async def main() -> None:
        imap = poller(imap_settings(dovecot, user, security="tls"), FakeIntake(), user)  # the system's CAs
        async with running(imap):
            await until(lambda: imap.status.reconnects >= 2, "two failed attempts")
        assert "CERTIFICATE_VERIFY_FAILED" in (imap.status.last_error or "")

    run(main)
    assert f"user=<{user.name}>" not in dovecot.log_since(mark)


def test_a_wrong_password_backs_off_and_is_never_logged(
    dovecot: Dovecot, user: MailUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # aioimaplib logs every line it sends at DEBUG
    password = 'wr"ong\\secret'  # escaped on the wire: a mask of the raw text would miss it

    async def main() -> None:
        imap = ImapPoller(
            imap_settings(dovecot, user), FakeIntake(), password=password, clock=SystemClock(), backoff_initial=0.05
        )
        async with running(imap):
            await until(lambda: imap.status.reconnects >= 2, "two failed logins")
        assert "LOGIN refused: NO" in (imap.status.last_error or "")

    run(main)
    assert any("LOGIN" in record.getMessage() for record in caplog.records)
    assert not any("secret" in record.getMessage() for record in caplog.records)


# ---------------------------------------------------------------------- IDLE
def test_mail_arriving_during_idle_is_taken_promptly(dovecot: Dovecot, user: MailUser) -> None:
    intake = FakeIntake()

    async def main() -> None:
        imap = poller(imap_settings(dovecot, user), intake, user)
        async with running(imap):
            await until(lambda: imap.status.state == "idle", "idle")
            await asyncio.sleep(0.2)  # IDLE is under way at the server
            await asyncio.to_thread(dovecot.append, user, mail(7))
            took = await until(lambda: imap.status.moved == 1, "the new mail moved", seconds=5)
        assert took < 3.0
        assert imap.status.reconnects == 0

    run(main)
    assert [c.raw for c in intake.calls] == [mail(7)]


def test_idle_is_renewed_on_time(dovecot: Dovecot, user: MailUser, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.inbound.imap")

    async def main() -> None:
        imap = poller(imap_settings(dovecot, user, idle_renew_seconds=0.3), FakeIntake(), user)
        async with running(imap):
            await asyncio.sleep(1.5)
        assert imap.status.reconnects == 0

    run(main)
    renewals = [r for r in caplog.records if r.getMessage() == "imap: IDLE ended (renew)"]
    assert 3 <= len(renewals) <= 6


# ---------------------------------------------------------------------- dropped connections
def test_a_kick_during_idle_reconnects_without_loss_or_double(dovecot: Dovecot, user: MailUser) -> None:
    dovecot.append(user, mail(1))
    intake = FakeIntake()

    async def main() -> None:
        imap = poller(imap_settings(dovecot, user), intake, user)
        async with running(imap):
            await until(lambda: imap.status.moved == 1 and imap.status.state == "idle", "first mail moved")
            await asyncio.sleep(0.2)
            assert "kicked" in await asyncio.to_thread(dovecot.kick, user)
            await until(lambda: imap.status.reconnects == 1 and imap.status.state == "idle", "back in IDLE")
            await asyncio.to_thread(dovecot.append, user, mail(2))
            await until(lambda: imap.status.moved == 2, "second mail moved")
        assert "BYE" in (imap.status.last_error or "")

    run(main)
    assert [c.raw for c in intake.calls] == [mail(1), mail(2)]
    assert len(dovecot.messages(user, DONE)) == 2


class BlackHole:
    """A TCP relay to Dovecot; ``freeze()`` silently drops all traffic of the live connections.

    That is a network path that died without a FIN or RST: nothing tells the client, only a
    deadline can. Connections opened after ``freeze()`` work.
    """

    def __init__(self, port: int) -> None:
        self._target = port
        self._frozen: set[asyncio.StreamWriter] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0

    async def __aenter__(self) -> BlackHole:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            with_suppressed = asyncio.ensure_future(writer.wait_closed())
            await asyncio.wait([with_suppressed], timeout=1)
            if with_suppressed.done() and not with_suppressed.cancelled():
                with_suppressed.exception()
        await self._server.wait_closed()

    def freeze(self) -> None:
        self._frozen.update(self._writers)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers += [writer, up_writer]
        for source, sink, mark in ((reader, up_writer, writer), (up_reader, writer, writer)):
            task = asyncio.create_task(self._pump(source, sink, mark))
            self._tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, mark: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if mark not in self._frozen:
                sink.write(data)


def test_a_silently_dead_connection_is_replaced_at_the_idle_renewal(dovecot: Dovecot, user: MailUser) -> None:
    intake = FakeIntake()

    async def main() -> None:
        async with BlackHole(dovecot.port) as hole:
            settings = imap_settings(dovecot, user, port=hole.port, idle_renew_seconds=0.5, timeout_seconds=1.0)
            imap = poller(settings, intake, user)
            async with running(imap):
                await until(lambda: imap.status.state == "idle", "idle")
                hole.freeze()
                await asyncio.to_thread(dovecot.append, user, mail(1))
                took = await until(lambda: imap.status.moved == 1, "the mail moved over a new connection")
            assert took < 4.0
            assert "DONE: no answer within 1 s" in (imap.status.last_error or "")
            assert hole.connections == 2

    run(main)
    assert [c.raw for c in intake.calls] == [mail(1)]


# ---------------------------------------------------------------------- crashes and failures
def test_a_crash_after_the_commit_is_finished_by_a_move_without_a_second_record(
    dovecot: Dovecot, user: MailUser
) -> None:
    dovecot.append(user, mail(1))
    intake = FakeIntake(crash_after=True)

    async def first_life() -> None:
        imap = poller(imap_settings(dovecot, user), intake, user)
        with pytest.raises(Crash):
            await dies(imap)

    run(first_life)
    assert list(intake.recorded.values()) == [mail(1)]
    assert [raw for raw, _ in dovecot.messages(user).values()] == [mail(1)]  # committed, not moved

    async def second_life() -> None:
        imap = poller(imap_settings(dovecot, user), intake, user)
        async with running(imap):
            await until(lambda: imap.status.moved == 1, "moved after the restart")
        assert imap.status.accepted == 0  # already recorded: moved, not recorded again

    run(second_life)
    assert len(intake.calls) == 2
    assert len(intake.recorded) == 1
    assert dovecot.messages(user) == {}
    assert [raw for raw, _ in dovecot.messages(user, DONE).values()] == [mail(1)]


def test_a_crash_before_the_commit_takes_the_mail_again(dovecot: Dovecot, user: MailUser) -> None:
    dovecot.append(user, mail(1))
    intake = FakeIntake(failures=[Crash()])

    async def life(expect_crash: bool) -> None:
        imap = poller(imap_settings(dovecot, user), intake, user)
        if expect_crash:
            with pytest.raises(Crash):
                await dies(imap)
        else:
            async with running(imap):
                await until(lambda: imap.status.moved == 1, "moved after the restart")
            assert imap.status.accepted == 1

    run(lambda: life(expect_crash=True))
    assert intake.recorded == {}
    assert len(dovecot.messages(user)) == 1
    run(lambda: life(expect_crash=False))
    assert list(intake.recorded.values()) == [mail(1)]
    assert len(dovecot.messages(user, DONE)) == 1
    assert dovecot.messages(user) == {}


def test_a_transient_intake_failure_leaves_the_mail_and_retries_with_backoff(dovecot: Dovecot, user: MailUser) -> None:
    dovecot.append(user, mail(1))
    intake = FakeIntake(failures=[TransientError("database is locked"), TransientError("disk full")])

    async def main() -> None:
        imap = poller(imap_settings(dovecot, user), intake, user)
        async with running(imap):
            await until(lambda: len(intake.calls) == 1, "first attempt")
            assert len(await asyncio.to_thread(dovecot.messages, user)) == 1  # still in INBOX
            await until(lambda: imap.status.moved == 1, "moved once the intake recovers")
        assert imap.status.reconnects == 0  # the IMAP connection was never the problem

    run(main)
    assert len(intake.calls) == 3
    assert list(intake.recorded.values()) == [mail(1)]


def test_a_permanent_intake_failure_is_left_for_an_admin_and_the_rest_flows(dovecot: Dovecot, user: MailUser) -> None:
    first, second = dovecot.append(user, mail(1)), dovecot.append(user, mail(2))
    intake = FakeIntake(failures=[PermanentError("too big")])

    async def main() -> None:
        imap = poller(imap_settings(dovecot, user, idle_renew_seconds=0.2), intake, user)
        async with running(imap):
            await until(lambda: imap.status.moved == 1, "the good mail moved")
            await asyncio.sleep(0.6)  # a few renewals and rescans: the bad one is not tried again

    run(main)
    assert [c.raw for c in intake.calls] == [mail(1), mail(2)]
    assert list(dovecot.messages(user)) == [first]
    assert second not in dovecot.messages(user)


# ---------------------------------------------------------------------- servers without MOVE / UIDPLUS
@pytest.mark.parametrize("host", ["127.0.0.2", "127.0.0.3"], ids=["no-move", "no-move-no-uidplus"])
def test_the_move_fallbacks(dovecot: Dovecot, user: MailUser, host: str) -> None:
    for n in range(2):
        dovecot.append(user, mail(n))
    intake = FakeIntake()

    async def main() -> None:
        imap = poller(imap_settings(dovecot, user, host=host), intake, user)
        async with running(imap):
            await until(lambda: imap.status.moved == 2, "both mails moved by COPY + STORE + EXPUNGE")

    run(main)
    assert dovecot.messages(user) == {}
    assert sorted(raw for raw, _ in dovecot.messages(user, DONE).values()) == [mail(0), mail(1)]
    assert len(intake.recorded) == 2


def test_a_server_without_idle_is_polled_and_wake_polls_at_once(dovecot: Dovecot, user: MailUser) -> None:
    intake, wake = FakeIntake(), asyncio.Event()

    async def main() -> None:
        settings = imap_settings(dovecot, user, host=dovecot.no_idle_host, idle_renew_seconds=0.3)
        imap = poller(settings, intake, user, wake=wake)
        async with running(imap):
            await until(lambda: imap.status.state == "idle", "waiting")
            await asyncio.to_thread(dovecot.append, user, mail(1))
            await until(lambda: imap.status.moved == 1, "polled", seconds=3)
        slow = poller(
            imap_settings(dovecot, user, host=dovecot.no_idle_host, idle_renew_seconds=600), intake, user, wake=wake
        )
        async with running(slow):
            await until(lambda: slow.status.state == "idle", "waiting")
            await asyncio.to_thread(dovecot.append, user, mail(2))
            wake.set()
            took = await until(lambda: slow.status.moved == 1, "woken", seconds=3)
        assert took < 1.0

    run(main)
    assert [c.raw for c in intake.calls] == [mail(1), mail(2)]
