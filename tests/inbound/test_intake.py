"""The intake service with in-memory twins: order, idempotency, errors, the Message-ID."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from gateway.errors import TransientError
from gateway.inbound.intake import Intake, IntakePort, message_id_of
from gateway.store import StorageFull
from tests.inbound.client import RCPT, mail, run
from tests.inbound.twins import MemorySpool, MemoryStore


class Recorder:
    """Spool and store twins that note the order of calls in one shared list."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.spool = MemorySpool(calls=self.order)
        self.store = MemoryStore(calls=self.order)


def test_spool_first_then_row_then_wake() -> None:
    async def main() -> None:
        r = Recorder()
        intake: IntakePort = Intake(r.store, r.spool, wake=lambda: r.order.append("wake"))
        raw = mail("a", message_id="<a@axis.test>")
        item = await intake.accept(raw, kind="inbound", channel="smtp", mail_from="a@axis.test", rcpt_to=[RCPT])
        assert r.order == ["put", "record_intake", "wake"]
        assert item.id == 1
        assert item.sha256 == hashlib.sha256(raw).hexdigest()
        assert item.size == len(raw)
        assert item.message_id == "<a@axis.test>"
        assert item.new
        assert item.received_at == r.store.rows[1].received_at
        assert item.received_at.tzinfo is not None

    run(main)


def test_a_spool_failure_writes_no_row_and_wakes_nobody() -> None:
    async def main() -> None:
        for error in (StorageFull("disk full"), OSError(28, "No space left on device")):
            r = Recorder()
            r.spool.fail = error
            woken = asyncio.Event()
            with pytest.raises(TransientError):
                await Intake(r.store, r.spool, wake=woken.set).accept(
                    mail(), kind="inbound", channel="smtp", mail_from="", rcpt_to=[]
                )
            assert r.order == ["put"]
            assert not woken.is_set()

    run(main)


def test_a_database_failure_passes_its_reply_through() -> None:
    async def main() -> None:
        r = Recorder()
        r.store.fail = StorageFull("database full")
        with pytest.raises(StorageFull) as error:
            await Intake(r.store, r.spool).accept(
                mail(), kind="submission", channel="submission", mail_from="", rcpt_to=[]
            )
        assert error.value.smtp_reply.startswith("452 4.3.1")

    run(main)


def test_an_imap_replay_returns_the_first_item() -> None:
    async def main() -> None:
        r = Recorder()
        intake = Intake(r.store, r.spool)
        first = await intake.accept(
            mail(), kind="inbound", channel="imap", mail_from="", rcpt_to=[], imap_key="INBOX/7/42"
        )
        again = await intake.accept(
            mail(), kind="inbound", channel="imap", mail_from="", rcpt_to=[], imap_key="INBOX/7/42"
        )
        assert (first.id, first.new) == (1, True)
        assert (again.id, again.new) == (1, False)
        assert len(r.store.rows) == 1

    run(main)


def test_kind_and_channel_are_checked() -> None:
    async def main() -> None:
        r = Recorder()
        with pytest.raises(ValueError, match="kind"):
            await Intake(r.store, r.spool).accept(mail(), kind="send", channel="smtp", mail_from="", rcpt_to=[])
        assert r.order == []

    run(main)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody", "<a@b>"),
        (b"Subject: x\nMessage-Id:\n  <folded@b>\n\nMessage-ID: <in-body@b>\n", "<folded@b>"),
        (b"Subject: x\r\n\r\nMessage-ID: <in-body@b>\r\n", None),
        (b"Message-ID: \r\n\r\n", None),
        (b"Message-ID: <\xff\x00ctl@b>\r\n\r\n", "< ctl@b>"),
        (b"no headers at all", None),
        (b"", None),
        (b"Message-ID: <" + b"x" * 2000 + b">\r\n\r\n", "<" + "x" * 997),
    ],
)
def test_message_id_of(raw: bytes, expected: str | None) -> None:
    assert message_id_of(raw) == expected


def test_message_id_of_reads_only_the_header_block() -> None:
    huge = b"Message-ID: <m@b>\r\n\r\n" + b"x" * (50 * 1024 * 1024)
    assert message_id_of(huge) == "<m@b>"
