"""The intake's IMAP dedupe by content, with the in-memory twins.

A server that renumbers a mailbox (a new UIDVALIDITY) between our commit and our MOVE hands us
the same message under a new ``imap_key``. The intake must recognise it by the SHA-256 of its
bytes, taken from the same mailbox under another UIDVALIDITY, and return that item (``new``
false) instead of recording it twice; anything else keeps its old meaning.
"""

from __future__ import annotations

import logging

import pytest

from gateway.inbound.intake import Intake, imap_key, same_mailbox
from gateway.smtpserver import ItemRef
from tests.inbound.client import mail, run
from tests.inbound.twins import MemorySpool, MemoryStore

RAW = mail("Công văn 1", message_id="<1@axis.test>")


async def take(intake: Intake, key: str, raw: bytes = RAW, channel: str = "imap") -> ItemRef:
    return await intake.accept(raw, kind="inbound", channel=channel, mail_from="", rcpt_to=["vanthu"], imap_key=key)


def test_the_same_bytes_under_a_new_uidvalidity_are_the_item_taken_before(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        store, spool = MemoryStore(), MemorySpool()
        intake = Intake(store, spool)
        first = await take(intake, "INBOX/7/42")
        caplog.set_level(logging.INFO, logger="gateway.inbound.intake")
        again = await take(intake, "INBOX/9/1")
        assert (first.id, first.new) == (1, True)
        assert (again.id, again.new, again.sha256, again.size) == (1, False, first.sha256, len(RAW))
        assert again.message_id == "<1@axis.test>"
        assert [row.imap_key for row in store.rows.values()] == ["INBOX/7/42"]
        assert spool.calls == ["put"]  # nothing spooled the second time
        (line,) = [r.getMessage() for r in caplog.records if "recognised by content" in r.getMessage()]
        assert line.startswith("INBOX/9/1 recognised by content as item 1 (INBOX/7/42")
        assert "UIDVALIDITY changed" in line

    run(main)


@pytest.mark.parametrize(
    ("earlier", "now"),
    [
        ("INBOX/7/42", "inbox/9/1"),  # INBOX is case-insensitive (RFC 3501)
        ("Lưu trữ/Đến/7/42", "Lưu trữ/Đến/8/3"),  # a hierarchical name holds "/" itself
    ],
)
def test_the_mailbox_is_compared_as_imap_names_are(earlier: str, now: str) -> None:
    async def main() -> None:
        store = MemoryStore()
        intake = Intake(store, MemorySpool())
        await take(intake, earlier)
        assert not (await take(intake, now)).new
        assert len(store.rows) == 1

    run(main)


@pytest.mark.parametrize(
    ("earlier", "now", "channel"),
    [
        ("INBOX/7/42", "Archive/9/1", "imap"),  # another mailbox: another delivery
        ("INBOX/7/42", "INBOX/7/43", "imap"),  # the same UIDVALIDITY: a second copy in the mailbox
        ("INBOX/7/42", None, "smtp"),  # only IMAP intake is deduplicated by content
    ],
)
def test_other_repeats_are_new_items(earlier: str, now: str | None, channel: str) -> None:
    async def main() -> None:
        store = MemoryStore()
        intake = Intake(store, MemorySpool())
        await take(intake, earlier)
        again = await intake.accept(RAW, kind="inbound", channel=channel, mail_from="", rcpt_to=[], imap_key=now)
        assert (again.id, again.new) == (2, True)

    run(main)


def test_an_smtp_item_with_the_same_bytes_is_not_an_imap_one() -> None:
    async def main() -> None:
        store = MemoryStore()
        intake = Intake(store, MemorySpool())
        await intake.accept(RAW, kind="inbound", channel="smtp", mail_from="", rcpt_to=[])
        assert (await take(intake, "INBOX/9/1")).new
        assert len(store.rows) == 2

    run(main)


def test_new_bytes_are_not_looked_up() -> None:
    """The spool has never seen them, so no item can hold them: the store is not asked."""

    async def main() -> None:
        store = MemoryStore()
        intake = Intake(store, MemorySpool())
        await take(intake, "INBOX/7/1", mail("one"))
        await take(intake, "INBOX/8/1", mail("two"))
        assert "find_imap_by_sha256" not in store.calls
        await take(intake, "INBOX/7/1", mail("one"))  # a plain replay: same key, same UIDVALIDITY
        assert store.calls.count("find_imap_by_sha256") == 1
        assert len(store.rows) == 2

    run(main)


def test_the_key_helpers() -> None:
    assert imap_key("Lưu trữ/Đến", 7, 42) == "Lưu trữ/Đến/7/42"
    assert same_mailbox("INBOX", "Inbox")
    assert not same_mailbox("Archive", "archive")
