"""The store on a real PostgreSQL: schema, the API of design note §4, contention, leases, errors.

The SQLite tests of this directory prove the behaviour; these prove that the same code keeps
it on PostgreSQL, where several instances share one database (issue 7): the migrations (0002's
PostgreSQL branch included) give exactly the tables of ``tables.py``; times are ``timestamptz``
and come back aware UTC; the claim hands each item to exactly one of many concurrent claimers
in separate connection pools; the chain stays linear and its times in order under concurrent
writers; tampering is found; a deadlock with another client is retried; leases keep a live
instance's work its own and give a dead one's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway.clock import VN_TZ, Clock, FixedClock, SystemClock
from gateway.errors import ConfigError, TransientError
from gateway.store import AlreadyRecorded, InvalidTransition, NotFound, Store, lease
from gateway.store.migrate import current_revision, head_revision
from gateway.store.session import Transactions
from gateway.store.tables import metadata
from tests.postgres import PgDatabase, PostgresServer
from tests.store.claimer import claim_all
from tests.store.helpers import T0, intake

REPO = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def opened(url: str, clock: Clock | None = None, **options: Any) -> AsyncIterator[Store]:
    store = await Store.open(url, clock=clock or FixedClock(T0), **options)
    try:
        yield store
    finally:
        await store.close()


def _ours(name: str | None, type_: str, _parents: Any) -> bool:
    # The text index (revision 0004, on message_search) is an expression index kept by hand.
    return not (type_ == "index" and name == "ix_messages_search")


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": _ours})
    return list(compare_metadata(context, metadata))


def test_migrations_reach_head_and_match_the_tables(pg_db: PgDatabase) -> None:
    async def scenario() -> None:
        async with opened(pg_db.url) as store:
            assert await current_revision(store.engine) == head_revision()
            async with store.engine.connect() as conn:
                assert await conn.run_sync(_diff) == []

    asyncio.run(scenario())
    columns = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'messages'"
    types = {name: kind for name, kind in pg_db.sql(columns)}
    assert types["received_at"] == "timestamp with time zone"
    assert types["rcpt_to"] == "json"
    assert types["lease_until"] == "timestamp with time zone"
    (index,) = pg_db.sql("SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_messages_send'")
    assert "WHERE ((kind)::text = 'send'::text)" in index[0], "the send key is a partial unique index"
    assert pg_db.sql("SELECT seq, hash FROM journal_head") == [("0", "0" * 64)]


def test_two_instances_starting_together_upgrade_once(pg_db: PgDatabase) -> None:
    async def scenario() -> None:
        stores = await asyncio.gather(*(Store.open(pg_db.url, clock=SystemClock()) for _ in range(4)))
        for store in stores:
            await store.close()

    asyncio.run(scenario())  # the advisory lock: no "relation already exists"
    assert pg_db.sql("SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_the_api_round_trip(pg_db: PgDatabase) -> None:
    # Intake, claim, verdict with a notice, children, status trail, lists: design note §4.
    local = datetime(2025, 3, 14, 9, 30, 0, 654321, tzinfo=VN_TZ)
    clock = FixedClock(local)
    report = {"verdict": "refused", "findings": [{"code": "pdf-signature-invalid", "message_vi": "Chữ ký sai"}]}

    async def scenario() -> None:
        async with opened(pg_db.url, clock) as store:
            row = await store.record_intake(intake(1, rcpt_to=("a@x.vn", "b@x.vn")))
            assert row.received_at == local
            assert row.received_at is not None
            assert row.received_at.tzinfo is UTC
            assert row.rcpt_to == ("a@x.vn", "b@x.vn")
            with pytest.raises(ValueError, match="naive"):
                await store.defer(row.id, datetime(2025, 3, 14, 10, 0), "later")  # noqa: DTZ001
            clock.advance(timedelta(seconds=2))
            (claimed,) = await store.claim(["inbound"], limit=5)
            assert (claimed.state, claimed.attempts, claimed.owner) == ("active", 1, store.owner)
            assert claimed.lease_until == local + timedelta(seconds=2 + lease.DEFAULT_LEASE_SECONDS)
            notice = intake(2, kind="notice", channel="internal", recipient="vanthu@haiphong.gov.vn")
            done = await store.record_verdict(
                row.id,
                report,
                verdict="refused",
                indication="FAILED",
                findings=report["findings"],  # type: ignore[arg-type]
                to_state="refused",
                children=[notice],
                document_id="000.00.00.H53",
                to_organs=["000.00.01.H53", "000.00.02.H53"],
            )
            assert (done.state, done.report, done.lease_until) == ("refused", report, None)
            assert done.findings == tuple(report["findings"])
            (made,) = await store.list(kind="notice")
            assert made.parent_id == row.id
            sub = await store.record_intake(intake(3, kind="submission", channel="submission", document_id="D1"))
            send = intake(4, kind="send", channel="internal", document_id="D1", recipient="vt@hanoi.gov.vn")
            await store.transition(sub.id, "sealed", reason="sealed", children=[send])
            with pytest.raises(AlreadyRecorded) as caught:
                await store.record_intake(dataclasses.replace(send, sha256="0" * 64))
            assert caught.value.key == "send"
            event = await store.add_status_event(sub.id, "03", description="Đã tiếp nhận", reported_at=local)
            assert await store.status_events(sub.id) == [event]
            found = await store.find_outbound("D1")
            assert found is not None
            assert found.id == sub.id
            assert [v.id for v in await store.list(direction="out", limit=10)] == [4, 3, 2]
            with pytest.raises(NotFound):
                await store.transition(999, "hold", reason="?")
            check = await store.verify_chain()
            assert check.ok, check.problems
            assert (check.count, check.messages) == (9, 4)

    asyncio.run(scenario())
    assert pg_db.sql("SELECT organ FROM message_recipients ORDER BY organ") == [("000.00.01.H53",), ("000.00.02.H53",)]


def test_the_database_itself_guards_the_send_key(pg_db: PgDatabase) -> None:
    async def scenario() -> None:
        async with opened(pg_db.url) as store:
            a = await store.record_intake(intake(1, kind="send", channel="internal", document_id="D", recipient="x@a"))
            await store.record_intake(intake(2, kind="send", channel="internal", document_id="D", recipient="y@a"))
            with pytest.raises(AlreadyRecorded) as caught:  # no pre-check here: the partial index answers
                await store.transition(a.id, "incoming", reason="readdress", recipient="y@a")
            assert caught.value.key == "send"
            assert await store.get(a.id) == a
            assert (await store.verify_chain()).ok

    asyncio.run(scenario())


def test_many_claimers_in_separate_pools_take_each_item_once(pg_db: PgDatabase) -> None:
    """Four stores (four pools, as four instances), two claimers each, 200 items: each once (A10)."""
    items = 200

    async def scenario() -> list[list[int]]:
        async with opened(pg_db.url, SystemClock()) as store:
            await asyncio.gather(*(store.record_intake(intake(n)) for n in range(items)))
        stores = [await Store.open(pg_db.url, clock=SystemClock()) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(claim_all(s, batch=2, work=0.001) for s in stores for _ in range(2))))
        finally:
            for s in stores:
                await s.close()

    taken = asyncio.run(scenario())
    counts = Counter(i for ids in taken for i in ids)
    assert sorted(counts) == list(range(1, items + 1)), "every item claimed"
    assert set(counts.values()) == {1}, "no item claimed twice"
    assert sum(1 for ids in taken if ids) >= 4, "the claimers really ran together"
    assert pg_db.sql("SELECT state, count(*) FROM messages GROUP BY state") == [("delivered", str(items))]
    _assert_linear(pg_db, items * 3)


def _assert_linear(pg_db: PgDatabase, rows: int) -> None:
    seqs = [int(s) for (s,) in pg_db.sql("SELECT seq FROM journal ORDER BY seq")]
    assert seqs == list(range(1, rows + 1)), "one linear chain"
    backwards = pg_db.sql("SELECT count(*) FROM journal a JOIN journal b ON b.seq = a.seq + 1 WHERE b.at < a.at")
    assert backwards == [("0",)], "journal times never go backwards, whoever wrote"
    assert pg_db.sql("SELECT seq FROM journal_head") == [(str(rows),)]


def test_concurrent_writers_of_two_stores_keep_one_chain(pg_db: PgDatabase) -> None:
    async def scenario() -> None:
        async with opened(pg_db.url, SystemClock()) as one, opened(pg_db.url, SystemClock()) as two:
            await asyncio.gather(*(s.record_intake(intake(n)) for n in range(80) for s in [(one, two)[n % 2]]))
            check = await two.verify_chain()
            assert check.ok, check.problems
            assert check.count == 80

    asyncio.run(scenario())
    _assert_linear(pg_db, 80)


def test_two_processes_claim_each_item_once(pg_db: PgDatabase, tmp_path: Path) -> None:
    async def fill() -> None:
        async with opened(pg_db.url, SystemClock()) as store:
            for n in range(120):
                await store.record_intake(intake(n))

    asyncio.run(fill())
    outs = [tmp_path / f"taken-{n}.json" for n in range(2)]
    gate = tmp_path / "go"
    command = [sys.executable, "-m", "tests.store.claimer", pg_db.url]
    workers = [subprocess.Popen([*command, str(out), str(gate)], cwd=REPO) for out in outs]
    deadline = time.monotonic() + 60
    while not all(out.with_suffix(".ready").exists() for out in outs):
        assert time.monotonic() < deadline, "claimers did not start"
        time.sleep(0.01)
    gate.touch()
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    taken = [json.loads(out.read_text(encoding="utf-8")) for out in outs]
    counts = Counter(i for ids in taken for i in ids)
    assert sorted(counts) == list(range(1, 121))
    assert set(counts.values()) == {1}
    assert all(taken), "both processes got work"
    _assert_linear(pg_db, 360)


def test_tampering_is_found(pg_db: PgDatabase) -> None:
    async def fill() -> None:
        async with opened(pg_db.url) as store:
            for n in range(3):
                await store.record_intake(intake(n))
            for item in await store.claim(["inbound"], limit=3):
                await store.transition(item.id, "delivered", reason="accepted", event="delivered")

    async def verify() -> Any:
        async with opened(pg_db.url) as store:
            return await store.verify_chain()

    asyncio.run(fill())
    assert asyncio.run(verify()).ok
    pg_db.sql("UPDATE journal SET data = replace(data, 'accepted', 'refused') WHERE seq = 7")
    pg_db.sql("UPDATE messages SET state = 'refused' WHERE id = 3")
    check = asyncio.run(verify())
    assert (check.first_broken_seq, check.first_broken_message) == (7, 3)
    pg_db.sql("DELETE FROM journal WHERE seq = 9")
    assert any("head records seq 9" in problem for problem in asyncio.run(verify()).problems)


def test_a_deadlock_with_another_client_is_run_again(pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another client locks the item, then waits for the chain head our transition holds: a real
    # deadlock. Our session detects it first (deadlock_timeout 1 s against the other's 30 s),
    # PostgreSQL rolls our transaction back, and the writer runs it again once the other is gone.
    runs: list[int] = []
    real = Transactions._attempt

    async def counted(self: Transactions, pending: list[Any], **options: Any) -> Any:
        runs.append(len(pending))
        return await real(self, pending, **options)

    monkeypatch.setattr(Transactions, "_attempt", counted)

    async def scenario() -> None:
        async with opened(pg_db.url) as store:
            row = await store.record_intake(intake(1))
            other = await store.engine.connect()
            try:
                await other.execute(text("SET deadlock_timeout = '30s'"))
                await other.execute(text("SELECT id FROM messages WHERE id = :id FOR UPDATE"), {"id": row.id})
                runs.clear()
                moving = asyncio.create_task(store.hold(row.id, "admin look"))
                await asyncio.sleep(0.5)  # our transaction holds the head and waits for the row
                blocked = asyncio.create_task(other.execute(text("SELECT seq FROM journal_head FOR UPDATE")))
                await asyncio.sleep(2.0)  # our deadlock check fires: we are the victim
                await other.rollback()
                with contextlib.suppress(Exception):
                    await blocked
            finally:
                await other.close()
            held = await asyncio.wait_for(moving, timeout=30)
            assert held.state == "hold"
            assert len(runs) >= 2, "the batch ran again after the deadlock"
            assert (await store.verify_chain()).ok

    asyncio.run(scenario())


def test_a_live_instances_lease_is_kept_and_a_dead_ones_taken_back(pg_db: PgDatabase) -> None:
    clock_a, clock_b = FixedClock(T0), FixedClock(T0)

    async def scenario() -> None:
        async with (
            opened(pg_db.url, clock_a, instance="gw-a", lease_seconds=30) as a,
            opened(pg_db.url, clock_b, instance="gw-b", lease_seconds=30) as b,
        ):
            first, second = [await a.record_intake(intake(n)) for n in range(2)]
            assert [c.id for c in await a.claim(["inbound"], limit=2)] == [first.id, second.id]
            clock_b.advance(timedelta(seconds=20))
            assert await b.recover_active() == 0, "a live instance's items are not recovered at start"
            assert await b.recover_expired() == 0
            clock_a.advance(timedelta(seconds=20))
            assert await a.renew([first.id]) == [first.id]  # gw-a works on the first only
            clock_b.advance(timedelta(seconds=15))  # 35 s: the second's lease expired
            assert await b.recover_expired() == 1
            (taken,) = await b.claim(["inbound"], limit=5)
            assert (taken.id, taken.owner, taken.attempts) == (second.id, "gw-b", 2)
            with pytest.raises(InvalidTransition, match="active under instance gw-b"):
                await a.transition(second.id, "delivered", reason="late", event="delivered")
            assert await a.renew([second.id]) == []
            await b.transition(second.id, "delivered", reason="done", event="delivered")
            await a.transition(first.id, "delivered", reason="done", event="delivered", expect="active")
            events = [(e.event, e.data.get("reason")) for e in await b.history(second.id)]
            assert ("transition", "lease of gw-a expired") in events
            claims = [
                e.data["fields"]["owner"] for e in await b.history(second.id) if e.data.get("reason") == "claimed"
            ]
            assert claims == ["gw-a", "gw-b"], "each claim names its instance in the journal"
            check = await b.verify_chain()
            assert check.ok, check.problems

    asyncio.run(scenario())


def test_an_instance_name_is_held_by_one_process(pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease, "_NAME_WAIT_SECONDS", 0.5)

    async def scenario() -> None:
        async with opened(pg_db.url, instance="gw-1") as store:
            with pytest.raises(ConfigError, match="'gw-1' is in use"):
                await Store.open(pg_db.url, clock=SystemClock(), instance="gw-1")
            async with opened(pg_db.url, instance="gw-2"):
                pass
            await store.record_intake(intake(1))
        async with opened(pg_db.url, instance="gw-1"):  # given back on close
            pass
        with pytest.raises(ConfigError, match="instance"):
            await Store.open(pg_db.url, clock=SystemClock(), instance="bad\nname")

    asyncio.run(scenario())


def test_an_unreachable_or_refusing_database(pg_server: PostgresServer) -> None:
    async def scenario(url: str) -> None:
        await Store.open(url, clock=SystemClock())

    with pytest.raises(TransientError, match="cannot reach the database"):
        asyncio.run(scenario(f"postgresql+asyncpg://postgres@127.0.0.1:1/{'gateway'}"))
    with pytest.raises(ConfigError, match=r"refused us.*does not exist"):
        asyncio.run(scenario(pg_server.url("no_such_database")))
    with pytest.raises(ConfigError, match="cannot be used"):
        asyncio.run(scenario(f"postgresql://postgres@127.0.0.1:{pg_server.port}/postgres"))


def test_a_server_restart_is_transient_then_forgotten(pg_db: PgDatabase) -> None:
    # Every connection is cut (as by a server restart): the pool notices on its pre-ping.
    async def scenario() -> None:
        async with opened(pg_db.url) as store:
            await store.record_intake(intake(1))
            cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            pg_db.sql(f"{cut} WHERE datname = current_database() AND pid <> pg_backend_pid()")
            await store.record_intake(intake(2))
            assert len(await store.list()) == 2

    asyncio.run(scenario())
