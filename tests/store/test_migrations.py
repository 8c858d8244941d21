"""Migrations: head equals the tables in code, upgrades are idempotent, the pragmas hold."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from gateway.clock import FixedClock
from gateway.errors import ConfigError
from gateway.store import Store, db
from gateway.store.db import create_engine
from gateway.store.migrate import SCRIPTS, current_revision, head_revision, upgrade
from gateway.store.tables import foreign_to_metadata, metadata
from tests.store.helpers import T0, db_url, open_store


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    return not (type_ == "table" and foreign_to_metadata(name))


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": _include_name})
    return list(compare_metadata(context, metadata))


def _pragmas(connection: Connection) -> dict[str, Any]:
    names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
    return {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in names}


def test_the_migrated_schema_equals_the_tables_in_code(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        engine = create_engine(db_url(tmp_path))
        try:
            assert await current_revision(engine) is None
            assert await upgrade(engine) == head_revision()
            async with engine.connect() as conn:
                return await conn.run_sync(_diff)
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == []


def test_upgrade_is_idempotent_and_store_open_applies_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path):
            pass
        engine = create_engine(db_url(tmp_path))
        try:
            assert await upgrade(engine) == head_revision()
            assert await current_revision(engine) == head_revision()
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_two_openers_at_once_migrate_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        stores = await asyncio.gather(*(Store.open(db_url(tmp_path), clock=FixedClock(T0)) for _ in range(4)))
        for store in stores:
            await store.close()

    asyncio.run(scenario())


def test_connections_racing_to_switch_a_fresh_database_to_wal_all_succeed(tmp_path: Path) -> None:
    """A connection switching a fresh file to WAL while others open and write it: SQLite answers
    "database is locked" at once, without the busy handler (CI saw it in the test above)."""
    failures: list[str] = []

    def connect(path: Path) -> None:
        try:
            with closing(sqlite3.connect(path, isolation_level=None)) as connection:
                db._on_connect(connection, None)
                connection.execute("BEGIN IMMEDIATE")  # what a migration does next
                connection.execute("CREATE TABLE IF NOT EXISTS t (x)")
                connection.execute("COMMIT")
        except Exception as exc:  # collected and asserted below
            failures.append(repr(exc))

    for round_ in range(40):
        path = tmp_path / f"fresh-{round_}.db"
        threads = [threading.Thread(target=connect, args=(path,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


def test_every_connection_has_the_durability_pragmas(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, Any]]:
        # Two connections at once: the pool opens a second one, which must be set up too.
        async with open_store(tmp_path) as store, store.engine.connect() as one, store.engine.connect() as two:
            return [await one.run_sync(_pragmas), await two.run_sync(_pragmas)]

    expected = {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000, "foreign_keys": 1}
    assert asyncio.run(scenario()) == [expected, expected]


def test_read_only_open_refuses_a_missing_or_old_database(tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(ConfigError, match="no receipt log"):
            await Store.open(db_url(tmp_path), clock=FixedClock(T0), migrate=False)
        (tmp_path / "gateway.db").touch()
        with pytest.raises(ConfigError, match="empty database"):
            await Store.open(db_url(tmp_path), clock=FixedClock(T0), migrate=False)

    asyncio.run(scenario())


def test_the_migrations_ship_as_package_data() -> None:
    assert (SCRIPTS / "env.py").is_file()
    assert (SCRIPTS / "script.py.mako").is_file()
    assert sorted(p.name for p in (SCRIPTS / "versions").glob("*.py"))[:2] == ["0001_initial.py", "0002_search.py"]
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"store/migrations/versions/*.py"' in pyproject
