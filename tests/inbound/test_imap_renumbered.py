"""A crash between commit and MOVE, then the server renumbers the mailbox: still one row per mail.

Real Dovecot (tests/dovecot.py), the real intake, store (a SQLite file) and spool. The first
"process" dies right after committing the first mail, before its MOVE. Then the mailbox is
renumbered the way a server migration or a rebuilt index does it: every message expunged, a new
UIDVALIDITY, the same bytes appended again (new UIDs). The second process sees both mails under
keys it has never recorded; the first must be recognised by its bytes and only moved.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import pytest

from gateway.clock import SystemClock
from gateway.inbound.imap import ImapPoller
from gateway.inbound.intake import Intake
from gateway.store import Spool, Store
from tests.dovecot import Dovecot, MailUser, imap_settings, running, shared_dovecot, until
from tests.inbound import test_imap_store
from tests.inbound.test_imap_store import DONE, Crash, DiesAfterCommit, mail

user = test_imap_store.user
"""A fresh mailbox (the fixture of test_imap_store)."""


def renumber(dovecot: Dovecot, user: MailUser) -> int:
    """Expunge INBOX, give it a new UIDVALIDITY and append the same bytes again; the new UIDVALIDITY."""
    before = dovecot.messages(user)
    old = dovecot.uidvalidity(user)
    done = dovecot.doveadm("expunge", "-u", user.name, "mailbox", "INBOX", "all")
    assert done.returncode == 0, done.stderr
    done = dovecot.doveadm("mailbox", "update", "-u", user.name, "--uid-validity", str(old + 1000), "INBOX")
    assert done.returncode == 0, done.stderr
    for raw, _ in sorted(before.values()):
        dovecot.append(user, raw)
    new = dovecot.uidvalidity(user)
    assert new != old
    assert not set(dovecot.messages(user)) & set(before)  # every UID is new too
    return new


def test_a_renumbered_mailbox_after_a_crash_before_the_move_records_each_mail_once(
    request: pytest.FixtureRequest, user: MailUser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot: Dovecot = shared_dovecot(request.config)
    first_uid = dovecot.append(user, mail(1))
    dovecot.append(user, mail(2))
    old_key = f"INBOX/{dovecot.uidvalidity(user)}/{first_uid}"
    url, spool = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", Spool(tmp_path / "spool")
    settings = imap_settings(dovecot, user)

    def poller(store: Store, *, dies: bool = False) -> ImapPoller:
        intake = DiesAfterCommit(Intake(store, spool), nth=1) if dies else Intake(store, spool)
        return ImapPoller(settings, intake, password=user.password, clock=SystemClock())

    async def first_life() -> None:  # commits mail 1, then dies before its MOVE
        async with await Store.open(url, clock=SystemClock()) as store:
            with pytest.raises(Crash):
                await asyncio.wait_for(poller(store, dies=True).run(), 10)

    asyncio.run(first_life())
    assert sorted(raw for raw, _ in dovecot.messages(user).values()) == [mail(1), mail(2)]  # 1st: committed

    uidvalidity = renumber(dovecot, user)
    new_uids = {raw: uid for uid, (raw, _) in dovecot.messages(user).items()}
    caplog.set_level(logging.INFO, logger="gateway.inbound")

    async def second_life() -> None:
        async with await Store.open(url, clock=SystemClock()) as store:
            imap = poller(store)
            async with running(imap):
                await until(lambda: imap.status.moved == 2, "both mails moved")
            assert imap.status.accepted == 1  # only the 2nd is new; the 1st was recognised by its bytes
            rows = sorted(await store.list(kind="inbound"), key=lambda row: row.id)
            assert [row.imap_key for row in rows] == [old_key, f"INBOX/{uidvalidity}/{new_uids[mail(2)]}"]
            assert [row.sha256 for row in rows] == [hashlib.sha256(mail(n)).hexdigest() for n in (1, 2)]
            assert [await spool.get(row.sha256) for row in rows] == [mail(1), mail(2)]

    asyncio.run(second_life())
    assert dovecot.messages(user) == {}
    assert sorted(raw for raw, _ in dovecot.messages(user, DONE).values()) == [mail(1), mail(2)]
    recognised = [r.getMessage() for r in caplog.records if "recognised by content" in r.getMessage()]
    assert recognised == [
        f"INBOX/{uidvalidity}/{new_uids[mail(1)]} recognised by content as item 1 ({old_key}, sha256 "
        f"{hashlib.sha256(mail(1)).hexdigest()}): the mailbox's UIDVALIDITY changed after it was taken; "
        "not recorded again"
    ]
