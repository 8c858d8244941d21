"""The IMAP poller with the real intake, the real store (a temporary SQLite file) and the real spool.

One process "dies" right after the second mail is committed (before its MOVE); a new process
opens the same database and spool: every mail ends up as exactly one ``inbound`` row on channel
``imap``, its spooled bytes are the mailbox's bytes, and the mailbox is empty.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gateway.clock import SystemClock
from gateway.inbound.imap import ImapPoller
from gateway.inbound.intake import Intake
from gateway.smtpserver import ItemRef
from gateway.store import Spool, Store
from tests.dovecot import Dovecot, MailUser, imap_settings, running, shared_dovecot, until

DONE = "Đã xử lý"


class Crash(BaseException):
    """The process dies here."""


class DiesAfterCommit:
    """The real intake; the ``nth`` mail it commits kills the "process" before the poller can MOVE it."""

    def __init__(self, intake: Intake, nth: int) -> None:
        self._intake = intake
        self._left = nth

    async def accept(
        self,
        raw: bytes,
        *,
        kind: str,
        channel: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        imap_key: str | None = None,
    ) -> ItemRef:
        item = await self._intake.accept(
            raw, kind=kind, channel=channel, mail_from=mail_from, rcpt_to=rcpt_to, imap_key=imap_key
        )
        self._left -= 1
        if self._left == 0:
            raise Crash
        return item


@pytest.fixture
def user(request: pytest.FixtureRequest) -> Iterator[MailUser]:
    dovecot = shared_dovecot(request.config)
    mark = dovecot.log_mark()
    yield dovecot.add_user()
    print(dovecot.log_since(mark))  # shown when the test fails


def mail(n: int) -> bytes:
    return (
        f"Return-Path: <vanthu@axis.test>\r\nMessage-ID: <{n}@axis.test>\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode()
    )


def test_restart_between_commit_and_move_gives_one_row_per_mail(
    request: pytest.FixtureRequest, user: MailUser, tmp_path: Path
) -> None:
    dovecot: Dovecot = shared_dovecot(request.config)
    uids = [dovecot.append(user, mail(n)) for n in range(3)]
    keys = [f"INBOX/{dovecot.uidvalidity(user)}/{uid}" for uid in uids]
    url, spool = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", Spool(tmp_path / "spool")
    settings = imap_settings(dovecot, user)

    async def first_life() -> None:
        async with await Store.open(url, clock=SystemClock()) as store:
            intake = DiesAfterCommit(Intake(store, spool), nth=2)
            imap = ImapPoller(settings, intake, password=user.password, clock=SystemClock())
            with pytest.raises(Crash):
                async with asyncio.timeout(10):
                    await imap.run()

    asyncio.run(first_life())
    assert sorted(raw for raw, _ in dovecot.messages(user).values()) == [mail(1), mail(2)]  # 2nd: committed

    async def second_life() -> None:
        async with await Store.open(url, clock=SystemClock()) as store:
            imap = ImapPoller(settings, Intake(store, spool), password=user.password, clock=SystemClock())
            async with running(imap):
                await until(lambda: imap.status.moved == 2, "both left mails moved")
            assert imap.status.accepted == 1  # the 2nd was found recorded: moved, not recorded again
            rows = sorted(await store.list(kind="inbound"), key=lambda row: row.id)
            assert [row.imap_key for row in rows] == keys
            assert {(row.channel, row.direction, row.state, row.rcpt_to) for row in rows} == {
                ("imap", "in", "incoming", (user.name,))
            }
            assert [row.sha256 for row in rows] == [hashlib.sha256(mail(n)).hexdigest() for n in range(3)]
            assert [await spool.get(row.sha256) for row in rows] == [mail(n) for n in range(3)]
            assert [row.message_id_header for row in rows] == [f"<{n}@axis.test>" for n in range(3)]

    asyncio.run(second_life())
    assert dovecot.messages(user) == {}
    assert sorted(raw for raw, _ in dovecot.messages(user, DONE).values()) == [mail(n) for n in range(3)]
