"""The hash chain: its canonical form, and tampering of every kind reported at the first broken row."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.clock import FixedClock
from gateway.store import ChainCheck
from gateway.store.journal import GENESIS, canonical_json, entry_hash, iso_utc
from tests.store.helpers import T0, intake, open_store, raw_sql


def _fill(tmp_path: Path, items: int = 3) -> None:
    """Three items, each received, claimed and delivered: journal seqs 1..9."""

    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            for n in range(items):
                await store.record_intake(intake(n))
            for item in await store.claim(["inbound"], limit=items):
                await store.transition(item.id, "delivered", reason="accepted", event="delivered")

    asyncio.run(scenario())


def _verify(tmp_path: Path) -> ChainCheck:
    async def scenario() -> ChainCheck:
        async with open_store(tmp_path) as store:
            return await store.verify_chain()

    return asyncio.run(scenario())


def test_the_canonical_form_is_pinned() -> None:
    at = datetime(2025, 3, 14, 2, 5, 7, tzinfo=UTC)
    data = {"to": "active", "from": "incoming", "reason": "Đã nhận"}
    body = '{"at":"2025-03-14T02:05:07.000000Z","data":{"from":"incoming","reason":"Đã nhận","to":"active"},'
    body += '"event":"transition","message_id":7,"seq":1}'
    assert canonical_json({"seq": 1, "message_id": 7, "event": "transition", "at": iso_utc(at), "data": data}) == body
    expected = hashlib.sha256((GENESIS + body).encode("utf-8")).hexdigest()
    assert entry_hash(GENESIS, seq=1, message_id=7, event="transition", at=at, data=data) == expected
    with pytest.raises(ValueError, match="Out of range float"):
        canonical_json({"x": float("nan")})


def test_an_untouched_chain_verifies(tmp_path: Path) -> None:
    _fill(tmp_path)
    check = _verify(tmp_path)
    assert check.ok
    assert check.count == 9
    assert check.first_broken_seq is None
    # Each row links to the one before, starting from 64 zeros.
    rows = raw_sql(tmp_path, "SELECT prev_hash, hash FROM journal ORDER BY seq")
    assert rows[0][0] == GENESIS
    assert all(rows[i][0] == rows[i - 1][1] for i in range(1, len(rows)))


def test_an_empty_chain_verifies(tmp_path: Path) -> None:
    check = _verify(tmp_path)
    assert check.ok
    assert check.count == 0


def test_changed_data_is_reported_at_its_row(tmp_path: Path) -> None:
    _fill(tmp_path)
    (data,) = raw_sql(tmp_path, "SELECT data FROM journal WHERE seq = 5")[0]
    forged = json.loads(data) | {"reason": "accepted by nobody"}
    raw_sql(tmp_path, "UPDATE journal SET data = ? WHERE seq = 5", json.dumps(forged))
    check = _verify(tmp_path)
    assert not check.ok
    assert check.first_broken_seq == 5
    assert check.broken == 1
    assert "changed" in check.detail


def test_a_changed_time_is_reported(tmp_path: Path) -> None:
    _fill(tmp_path)
    raw_sql(tmp_path, "UPDATE journal SET at = '2025-03-13 02:05:07.123456' WHERE seq = 2")
    assert _verify(tmp_path).first_broken_seq == 2


def test_a_recomputed_hash_still_breaks_the_next_link(tmp_path: Path) -> None:
    # A careful forger recomputes the edited row's hash; the next row's prev_hash betrays it.
    _fill(tmp_path)
    seq, message_id, event, data, prev = raw_sql(
        tmp_path, "SELECT seq, message_id, event, data, prev_hash FROM journal WHERE seq = 4"
    )[0]
    (at,) = raw_sql(tmp_path, "SELECT at FROM journal WHERE seq = 4")[0]
    moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
    forged = json.loads(data) | {"size": 1}
    digest = entry_hash(prev, seq=seq, message_id=message_id, event=event, at=moment, data=forged)
    raw_sql(tmp_path, "UPDATE journal SET data = ?, hash = ? WHERE seq = 4", canonical_json(forged), digest)
    check = _verify(tmp_path)
    assert check.first_broken_seq == 5
    assert "prev_hash" in check.detail


def test_a_deleted_row_is_reported(tmp_path: Path) -> None:
    _fill(tmp_path)
    raw_sql(tmp_path, "DELETE FROM journal WHERE seq = 3")
    check = _verify(tmp_path)
    assert check.first_broken_seq == 4
    assert "expected seq 3" in check.detail


def test_reordered_rows_are_reported(tmp_path: Path) -> None:
    # Swap the content of rows 6 and 7 (seqs kept): both the links and the hashes break at 6.
    _fill(tmp_path)
    read = "SELECT message_id, event, at, data, prev_hash, hash FROM journal WHERE seq = ?"
    write = "UPDATE journal SET message_id = ?, event = ?, at = ?, data = ?, prev_hash = ?, hash = ? WHERE seq = ?"
    six, seven = raw_sql(tmp_path, read, 6)[0], raw_sql(tmp_path, read, 7)[0]
    raw_sql(tmp_path, write, *seven, 6)
    raw_sql(tmp_path, write, *six, 7)
    check = _verify(tmp_path)
    assert check.first_broken_seq == 6
    assert check.broken >= 2


def test_renumbered_rows_are_reported(tmp_path: Path) -> None:
    _fill(tmp_path)
    raw_sql(tmp_path, "UPDATE journal SET seq = 100 WHERE seq = 8")
    raw_sql(tmp_path, "UPDATE journal SET seq = 8 WHERE seq = 9")
    raw_sql(tmp_path, "UPDATE journal SET seq = 9 WHERE seq = 100")
    assert _verify(tmp_path).first_broken_seq == 8


def test_rows_cut_from_the_end_are_reported(tmp_path: Path) -> None:
    _fill(tmp_path)
    raw_sql(tmp_path, "DELETE FROM journal WHERE seq >= 8")
    check = _verify(tmp_path)
    assert check.first_broken_seq == 8
    assert "head records seq 9" in check.detail


def test_a_new_store_continues_the_chain(tmp_path: Path) -> None:
    _fill(tmp_path, items=1)
    _fill(tmp_path, items=1)  # a restart: the head row carries the chain on
    check = _verify(tmp_path)
    assert check.ok
    assert check.count == 6


def test_edited_work_items_are_reported_by_the_replay(tmp_path: Path) -> None:
    _fill(tmp_path)
    raw_sql(tmp_path, "UPDATE messages SET received_at = '2025-03-13 02:05:07.123456' WHERE id = 2")
    raw_sql(tmp_path, "UPDATE messages SET state = 'refused' WHERE id = 3")
    check = _verify(tmp_path)
    assert not check.ok
    assert check.first_broken_seq is None, "the journal itself is intact"
    assert check.first_broken_message == 2
    assert check.messages == 3
    assert check.problems == (
        "message 2: received_at is '2025-03-13T02:05:07.123456Z' but the journal says '2025-03-14T02:05:07.123456Z'",
        "message 3: state is 'refused' but the journal says 'delivered'",
    )


def test_an_edited_report_is_reported(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            row = await store.record_intake(intake(1))
            await store.record_verdict(row.id, {"verdict": "refused", "n": 1}, verdict="refused", to_state="refused")

    asyncio.run(scenario())
    assert _verify(tmp_path).ok
    raw_sql(tmp_path, """UPDATE messages SET report = '{"verdict": "accepted", "n": 1}'""")
    check = _verify(tmp_path)
    assert check.first_broken_message == 1
    assert "report is" in check.detail


def test_a_row_inserted_behind_the_stores_back_is_reported(tmp_path: Path) -> None:
    _fill(tmp_path, items=1)
    raw_sql(
        tmp_path,
        "INSERT INTO messages (kind, direction, state, channel, mail_from, rcpt_to, sha256, size, attempts,"
        " state_changed_at) SELECT kind, direction, state, channel, mail_from, rcpt_to, sha256, size, attempts,"
        " state_changed_at FROM messages WHERE id = 1",
    )
    check = _verify(tmp_path)
    assert check.first_broken_message == 2
    assert "no 'received' journal event" in check.detail


def test_the_replay_follows_every_kind_of_change(tmp_path: Path) -> None:
    # Claims, deferrals, holds, retries, verdicts, children, status events, recovery: all replayed.
    clock = FixedClock(T0)

    async def scenario() -> None:
        async with open_store(tmp_path, clock) as store:
            sub = await store.record_intake(intake(1, kind="submission", channel="submission"))
            item = await store.record_intake(intake(2, channel="imap", imap_key="INBOX/1/2"))
            clock.advance(timedelta(seconds=1))
            await store.claim(["inbound", "submission"], limit=5)
            await store.defer(item.id, T0 + timedelta(minutes=1), "OCSP unreachable")
            clock.advance(timedelta(minutes=2))
            await store.claim(["inbound"], limit=5)
            await store.record_verdict(item.id, {"v": 1}, verdict="deferred", findings=[{"code": "x"}])
            await store.hold(item.id, "too old")
            await store.transition(item.id, "incoming", reason="retry", event="released")
            send = intake(3, kind="send", channel="internal", document_id="D", recipient="a@b")
            await store.transition(sub.id, "sealed", reason="sealed", children=[send], subject="Công văn")
            (made,) = await store.list(kind="send")
            await store.claim(["send"], limit=1)
            await store.transition(made.id, "sent", reason="250", event="sent", sent_at=T0 + timedelta(hours=1))
            await store.add_status_event(sub.id, "01", reported_at=T0)
            await store.claim(["inbound"], limit=1)
            await store.recover_active()

    asyncio.run(scenario())
    check = _verify(tmp_path)
    assert check.ok, check.problems
    assert check.messages == 3
