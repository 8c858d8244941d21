"""The Store API of design note §4 on a real SQLite file: intake, claim, transitions, views, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.clock import VN_TZ, FixedClock
from gateway.store import AlreadyRecorded, InvalidTransition, MessageView, NotFound, Store
from tests.store.helpers import T0, intake, open_store, raw_sql, sha


def test_intake_commits_a_row_and_its_journal_event(tmp_path: Path) -> None:
    async def scenario() -> MessageView:
        async with open_store(tmp_path) as store:
            return await store.record_intake(intake(1))

    row = asyncio.run(scenario())
    assert (row.kind, row.direction, row.state, row.channel) == ("inbound", "in", "incoming", "smtp")
    assert row.received_at == T0
    assert row.state_changed_at == T0
    assert row.rcpt_to == ("vanthu@tayninh.gov.vn",)
    # Committed on return: a plain sqlite3 reader sees both the row and the journal event.
    assert raw_sql(tmp_path, "SELECT id, state, sha256 FROM messages") == [(row.id, "incoming", sha("mail 1"))]
    events = raw_sql(tmp_path, "SELECT seq, message_id, event, prev_hash FROM journal")
    assert events == [(1, row.id, "received", "0" * 64)]


def test_views_are_frozen_copies(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            row = await store.record_intake(intake(1))
            with pytest.raises(dataclasses.FrozenInstanceError):
                row.state = "delivered"  # type: ignore[misc]
            assert (await store.get(row.id)) == row
            assert await store.get(999) is None

    asyncio.run(scenario())


def test_times_round_trip_as_aware_utc(tmp_path: Path) -> None:
    # Given in +07:00, stored UTC, read back aware UTC: the same instant.
    local = datetime(2025, 3, 14, 9, 30, 0, 654321, tzinfo=VN_TZ)

    async def scenario() -> MessageView:
        async with open_store(tmp_path, FixedClock(local)) as store:
            row = await store.record_intake(intake(1))
            return await store.defer(row.id, local + timedelta(hours=1), "OCSP unreachable")

    row = asyncio.run(scenario())
    assert row.received_at is not None
    assert row.received_at.tzinfo is UTC
    assert row.received_at == local
    assert row.next_attempt_at == datetime(2025, 3, 14, 3, 30, 0, 654321, tzinfo=UTC)
    assert raw_sql(tmp_path, "SELECT received_at FROM messages") == [("2025-03-14 02:30:00.654321",)]


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            row = await store.record_intake(intake(1))
            with pytest.raises(ValueError, match="naive"):
                await store.defer(row.id, datetime(2025, 3, 14, 10, 0), "later")  # noqa: DTZ001
            with pytest.raises(ValueError, match="naive"):
                await store.claim(["inbound"], datetime(2025, 3, 14, 10, 0), 1)  # noqa: DTZ001
            assert (await store.get(row.id)) == row  # nothing changed

    asyncio.run(scenario())


def test_claim_takes_incoming_and_due_deferred_only(tmp_path: Path) -> None:
    clock = FixedClock(T0)

    async def scenario() -> None:
        async with open_store(tmp_path, clock) as store:
            a = await store.record_intake(intake(1))
            b = await store.record_intake(intake(2))
            sub = await store.record_intake(intake(3, kind="submission", channel="submission"))
            await store.claim(["inbound"], limit=10)
            await store.defer(a.id, T0 + timedelta(minutes=5), "OCSP unreachable")
            await store.defer(b.id, T0 + timedelta(minutes=10), "TSA unreachable")
            # Nothing due yet for inbound; the submission is another kind.
            assert await store.claim(["inbound"], T0 + timedelta(minutes=1), 10) == []
            due = await store.claim(["inbound"], T0 + timedelta(minutes=5), 10)
            assert [v.id for v in due] == [a.id]
            assert due[0].state == "active"
            assert due[0].attempts == 2
            later = await store.claim(["inbound", "submission"], T0 + timedelta(hours=1), 10)
            assert [v.id for v in later] == [b.id, sub.id]
            assert await store.claim(["inbound", "submission"], T0 + timedelta(hours=2), 10) == []

    asyncio.run(scenario())


def test_claim_respects_the_limit_oldest_first(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            ids = [(await store.record_intake(intake(n))).id for n in range(5)]
            first = await store.claim(["inbound"], limit=2)
            second = await store.claim(["inbound"], limit=10)
            assert [v.id for v in first] == ids[:2]
            assert [v.id for v in second] == ids[2:]

    asyncio.run(scenario())


def test_transitions_are_journaled_with_their_times(tmp_path: Path) -> None:
    clock = FixedClock(T0)

    async def scenario() -> None:
        async with open_store(tmp_path, clock) as store:
            row = await store.record_intake(intake(1))
            clock.advance(timedelta(seconds=3))
            (claimed,) = await store.claim(["inbound"], limit=1)
            assert claimed.state_changed_at == T0 + timedelta(seconds=3)
            clock.advance(timedelta(seconds=4))
            done = await store.transition(
                row.id, "delivered", reason="accepted", event="delivered", expect="active", document_id="000.00.00.H53"
            )
            assert done.state == "delivered"
            assert done.document_id == "000.00.00.H53"
            assert done.state_changed_at == T0 + timedelta(seconds=7)
            history = await store.history(row.id)
            assert [(e.event, e.at - T0) for e in history] == [
                ("received", timedelta(0)),
                ("transition", timedelta(seconds=3)),
                ("delivered", timedelta(seconds=7)),
            ]
            assert history[2].data == {
                "from": "active",
                "to": "delivered",
                "reason": "accepted",
                "fields": {"document_id": "000.00.00.H53"},
            }

    asyncio.run(scenario())


def test_terminal_states_are_final_and_kind_specific(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            row = await store.record_intake(intake(1))
            with pytest.raises(InvalidTransition, match="ends delivered or refused"):
                await store.transition(row.id, "sent", reason="wrong kind")
            with pytest.raises(InvalidTransition, match="not active"):
                await store.transition(row.id, "delivered", reason="not claimed", expect="active")
            await store.transition(row.id, "refused", reason="bad signature")
            with pytest.raises(InvalidTransition, match="finished"):
                await store.transition(row.id, "incoming", reason="retry")
            with pytest.raises(InvalidTransition, match="final"):
                await store.record_verdict(row.id, {}, verdict="accepted")
            with pytest.raises(NotFound):
                await store.transition(999, "hold", reason="?")
            with pytest.raises(ValueError, match="unknown state"):
                await store.transition(row.id, "lost", reason="?")
            with pytest.raises(ValueError, match="cannot set sha256"):
                await store.transition(row.id, "hold", reason="?", sha256="0" * 64)

    asyncio.run(scenario())


def test_hold_retry_and_recover_active(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            ids = [(await store.record_intake(intake(n))).id for n in range(3)]
            await store.claim(["inbound"], limit=3)
            held = await store.hold(ids[0], "unexpected KeyError in receive")
            assert held.state == "hold"
            assert held.last_error == "unexpected KeyError in receive"
            assert await store.recover_active() == 2
            assert [v.state for v in await store.list(state="incoming")] == ["incoming", "incoming"]
            assert await store.recover_active() == 0
            back = await store.transition(ids[0], "incoming", reason="gateway queue retry by admin", expect="hold")
            assert back.state == "incoming"
            (last,) = (await store.history(ids[1]))[-1:]
            assert last.data["reason"] == "recovered at start"

    asyncio.run(scenario())


def test_unique_keys_raise_already_recorded_with_the_holder(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            first = await store.record_intake(intake(1, channel="imap", imap_key="INBOX/1700000000/42"))
            with pytest.raises(AlreadyRecorded) as caught:
                await store.record_intake(intake(2, channel="imap", imap_key="INBOX/1700000000/42"))
            assert caught.value.key == "imap_key"
            assert caught.value.existing_id == first.id
            sub = await store.record_intake(intake(3, kind="submission", channel="submission"))
            send = intake(4, kind="send", channel="internal", document_id="H53.1", recipient="vt@hanoi.gov.vn")
            sealed = await store.transition(sub.id, "sealed", reason="sealed", children=[send])
            assert sealed.state == "sealed"
            (made,) = await store.list(kind="send")
            assert made.parent_id == sub.id
            assert made.direction == "out"
            with pytest.raises(AlreadyRecorded) as again:
                await store.record_intake(dataclasses.replace(send, sha256=sha("other")))
            assert again.value.key == "send"
            assert again.value.existing_id == made.id
            # The same document to another recipient, or a notice with the same id, is fine.
            await store.record_intake(dataclasses.replace(send, recipient="vt@hue.gov.vn"))
            await store.record_intake(intake(5, kind="notice", channel="internal", document_id="H53.1"))

    asyncio.run(scenario())


def test_a_failing_child_rolls_back_the_whole_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            sub = await store.record_intake(intake(1, kind="submission", channel="submission"))
            send = intake(2, kind="send", channel="internal", document_id="H53.1", recipient="vt@hanoi.gov.vn")
            with pytest.raises(AlreadyRecorded):
                await store.transition(sub.id, "sealed", reason="sealed", children=[send, send])
            assert (await store.get(sub.id)) == sub
            assert await store.list(kind="send") == []
            assert [e.event for e in await store.history(sub.id)] == ["received"]
            assert (await store.verify_chain()).ok

    asyncio.run(scenario())


def test_verdict_with_state_and_notices_in_one_transaction(tmp_path: Path) -> None:
    report = {"verdict": "refused", "findings": [{"code": "pdf-signature-invalid"}], "ratio": 0.5}

    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            row = await store.record_intake(intake(1))
            await store.claim(["inbound"], limit=1)
            notice = intake(2, kind="notice", channel="internal", recipient="vanthu@haiphong.gov.vn")
            done = await store.record_verdict(
                row.id,
                report,
                verdict="refused",
                indication="FAILED",
                findings=report["findings"],  # type: ignore[arg-type]
                policy_sha256="a" * 64,
                to_state="refused",
                reason="pdf-signature-invalid",
                children=[notice],
                document_id="000.00.00.H53",
                from_organ="000.00.00.H53",
            )
            assert (done.state, done.verdict, done.indication) == ("refused", "refused", "FAILED")
            assert done.report == report
            assert done.findings == ({"code": "pdf-signature-invalid"},)
            (made,) = await store.list(kind="notice")
            assert made.parent_id == row.id
            assert made.state == "incoming"
            events = await store.history(row.id)
            assert [e.event for e in events] == ["received", "transition", "verdict", "transition"]
            assert "report_sha256" in events[2].data
            assert events[2].data["from_organ"] == "000.00.00.H53"

    asyncio.run(scenario())


def test_status_trail_and_find_outbound(tmp_path: Path) -> None:
    reported = datetime(2025, 3, 14, 10, 0, tzinfo=VN_TZ)

    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            sub = await store.record_intake(intake(1, kind="submission", channel="submission", document_id="D1"))
            send = intake(2, kind="send", channel="internal", document_id="D1", recipient="vt@hanoi.gov.vn")
            await store.transition(sub.id, "sealed", reason="sealed", children=[send])
            status = await store.record_intake(intake(3))
            found = await store.find_outbound("D1")
            assert found is not None
            assert found.id == sub.id
            assert await store.find_outbound("D2") is None
            event = await store.add_status_event(
                sub.id, "03", description="Đã tiếp nhận", reported_at=reported, from_organ="H1", inbound_id=status.id
            )
            assert event.reported_at == reported
            assert event.received_at == T0
            assert await store.status_events(sub.id) == [event]
            with pytest.raises(NotFound):
                await store.add_status_event(999, "03")
            assert (await store.history(sub.id))[-1].event == "status"

    asyncio.run(scenario())


def test_list_filters(tmp_path: Path) -> None:
    clock = FixedClock(T0)

    async def scenario() -> None:
        async with open_store(tmp_path, clock) as store:
            old = await store.record_intake(intake(1))
            clock.advance(timedelta(days=2))
            new = await store.record_intake(intake(2, kind="submission", channel="submission"))
            assert [v.id for v in await store.list()] == [new.id, old.id]
            assert [v.id for v in await store.list(since=T0 + timedelta(days=1))] == [new.id]
            assert [v.id for v in await store.list(until=T0 + timedelta(days=1))] == [old.id]
            assert [v.id for v in await store.list(direction="out")] == [new.id]
            assert [v.id for v in await store.list(kind="inbound", limit=1)] == [old.id]
            with pytest.raises(ValueError, match="unknown state"):
                await store.list(state="lost")

    asyncio.run(scenario())


def test_intake_validation_happens_before_any_table_object() -> None:
    with pytest.raises(ValueError, match="sha256"):
        intake(1, sha256="../../etc/passwd")
    with pytest.raises(ValueError, match="kind"):
        intake(1, kind="spam")
    with pytest.raises(ValueError, match="NUL"):
        intake(1, mail_from="a\x00b")
    with pytest.raises(ValueError, match="not valid Unicode"):
        intake(1, message_id_header="<\udcff@x>")
    with pytest.raises(ValueError, match="size"):
        intake(1, size=-1)
    with pytest.raises(ValueError, match="document_id and recipient"):
        intake(1, kind="send", channel="internal")
    with pytest.raises(ValueError, match="list of strings"):
        intake(1, rcpt_to="a@b")


def test_an_in_memory_store_works_for_unit_tests() -> None:
    async def scenario() -> None:
        store = await Store.open("sqlite+aiosqlite://", clock=FixedClock(T0))
        try:
            rows = await asyncio.gather(*(store.record_intake(intake(n)) for n in range(5)))
            assert sorted(r.id for r in rows) == [1, 2, 3, 4, 5]
            assert len(await store.claim(["inbound"], limit=10)) == 5
            assert (await store.verify_chain()).count == 10
        finally:
            await store.close()

    asyncio.run(scenario())


def test_received_at_is_the_clock_time_in_utc(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2025, 12, 31, 23, 59, 59, tzinfo=VN_TZ))

    async def scenario() -> MessageView:
        async with open_store(tmp_path, clock) as store:
            return await store.record_intake(intake(1))

    row = asyncio.run(scenario())
    assert row.received_at == datetime(2025, 12, 31, 16, 59, 59, tzinfo=UTC)


def test_the_database_itself_guards_the_unique_keys(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            a = await store.record_intake(intake(1, kind="send", channel="internal", document_id="D", recipient="x@a"))
            await store.record_intake(intake(2, kind="send", channel="internal", document_id="D", recipient="y@a"))
            # No pre-check on this path: the partial unique index answers, as a domain error.
            with pytest.raises(AlreadyRecorded) as caught:
                await store.transition(a.id, "incoming", reason="readdress", recipient="y@a")
            assert caught.value.key == "send"
            assert (await store.get(a.id)) == a

    asyncio.run(scenario())
    duplicate = "INSERT INTO messages (kind, direction, state, channel, mail_from, rcpt_to, sha256, size, attempts,"
    duplicate += " state_changed_at, document_id, recipient) VALUES (?, 'out', 'incoming', 'internal', '', '[]',"
    duplicate += " '', 0, 0, '2025-01-01 00:00:00.000000', 'D', 'x@a')"
    raw_sql(tmp_path, duplicate, "notice")  # the index is partial: only sends are unique
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        raw_sql(tmp_path, duplicate, "send")
