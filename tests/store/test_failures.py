"""When things go wrong: a locked or full database, cancelled work, and the PostgreSQL lock clauses."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Dialect, make_url

from gateway.clock import FixedClock
from gateway.errors import TransientError
from gateway.store import StorageFull, Store, db
from gateway.store.journal import head_lock_query
from gateway.store.writes import claim_query
from tests.store.helpers import T0, db_url, intake, open_store, raw_sql

NOW = datetime(2025, 3, 14, tzinfo=UTC)


def _dialect(name: str) -> Dialect:
    # Only compiles statements: no driver (asyncpg need not be installed) is loaded.
    return make_url(f"{name}://").get_dialect()()


def test_the_claim_and_the_chain_lock_rows_on_postgresql_only() -> None:
    claim_pg = str(claim_query(["inbound"], NOW, 5).compile(dialect=_dialect("postgresql")))
    claim_lite = str(claim_query(["inbound"], NOW, 5).compile(dialect=_dialect("sqlite")))
    # NO KEY UPDATE: the journal's foreign-key checks (KEY SHARE) on a claimed row never wait.
    assert claim_pg.rstrip().endswith("FOR NO KEY UPDATE SKIP LOCKED")
    assert "FOR UPDATE" not in claim_lite
    head_pg = str(head_lock_query().compile(dialect=_dialect("postgresql")))
    assert head_pg.rstrip().endswith("FOR UPDATE")
    assert "SKIP" not in head_pg, "appenders must wait for the head, never skip it"
    assert "FOR UPDATE" not in str(head_lock_query().compile(dialect=_dialect("sqlite")))


def test_a_database_locked_past_the_timeout_is_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_open_and_close(tmp_path))
    short = tuple(p.replace("5000", "200") for p in db.SQLITE_PRAGMAS)
    monkeypatch.setattr(db, "SQLITE_PRAGMAS", short)

    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            with closing(sqlite3.connect(tmp_path / "gateway.db", isolation_level=None)) as other:
                other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
                with pytest.raises(TransientError, match="database is locked") as caught:
                    await store.record_intake(intake(1))
                assert caught.value.smtp_reply.startswith("451 ")
                other.execute("ROLLBACK")
            await store.record_intake(intake(1))  # and it works again once the lock is gone

    asyncio.run(scenario())


def test_a_full_database_is_storage_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_open_and_close(tmp_path))
    ((pages,),) = raw_sql(tmp_path, "PRAGMA page_count")
    monkeypatch.setattr(db, "SQLITE_PRAGMAS", (*db.SQLITE_PRAGMAS, f"PRAGMA max_page_count={pages}"))

    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            with pytest.raises(StorageFull, match="full") as caught:
                await _fill_until_full(store)
            assert caught.value.smtp_reply.startswith("452 ")
            assert (await store.verify_chain()).ok

    asyncio.run(scenario())


def test_cancelled_writes_leave_no_half_change(tmp_path: Path) -> None:
    # The SMTP edge may be cancelled mid-intake (client gone, shutdown): the transaction is
    # whole or absent, the chain verifies, and the store keeps working.
    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            for round_ in range(20):
                tasks = [asyncio.create_task(store.record_intake(intake(f"{round_}-{n}"))) for n in range(5)]
                await asyncio.sleep(0.001 * (round_ % 4))
                for task in tasks[::2]:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await store.record_intake(intake("after"))
        # close() waited for the transactions whose callers were cancelled; now one snapshot:
        ((messages, events),) = raw_sql(
            tmp_path, "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM journal)"
        )
        assert messages == events, "one journal row per message, no more, no less"
        async with open_store(tmp_path) as store:
            check = await store.verify_chain()
            assert check.ok, check.detail

    asyncio.run(scenario())


def test_an_unusable_url_is_a_config_error() -> None:
    from gateway.errors import ConfigError

    async def scenario(url: str) -> None:
        await Store.open(url, clock=FixedClock(T0))

    with pytest.raises(ConfigError, match="not a database URL"):
        asyncio.run(scenario("not a url"))
    with pytest.raises(ConfigError, match="cannot be used"):
        asyncio.run(scenario("nosuchdb+nodriver://x/y"))


def test_resolve_url_relative_to_the_configuration(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    assert db.resolve_url("sqlite+aiosqlite:///var/g.db", etc) == f"sqlite+aiosqlite:///{etc}/var/g.db"
    assert db.resolve_url("sqlite+aiosqlite:////srv/g.db", etc) == "sqlite+aiosqlite:////srv/g.db"
    assert db.resolve_url("sqlite+aiosqlite://", etc) == "sqlite+aiosqlite://"
    pg = "postgresql+asyncpg://gw:secret@db.example/gateway"
    assert db.resolve_url(pg, etc) == pg


async def _fill_until_full(store: Store) -> None:
    for n in range(1000):
        await store.record_intake(intake(n, mail_from="x" * 1000))


async def _open_and_close(tmp_path: Path) -> None:
    store = await Store.open(db_url(tmp_path), clock=FixedClock(T0))
    await store.close()
