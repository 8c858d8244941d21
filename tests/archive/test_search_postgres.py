"""The archivist's search on a real PostgreSQL: the same answers as on SQLite (revision 0004).

The cases are ``test_search.py``'s, expected results included: diacritics optional ("ha noi"
finds "Hà Nội", ``đ`` = ``d``), one word one phrase, hostile text as words, filters, pages.
Read-only cases share one seeded database (seeded through the Store API, as on SQLite); the
tests that change rows or the schema get their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from gateway.archive.search import build_filter, search
from gateway.clock import FixedClock
from gateway.store import Store
from gateway.store import search as store_search
from gateway.store.migrate import alembic_config, upgrade
from tests.archive.test_search import FILTER_CASES, HOSTILE, T0, TN, WORD_CASES, WORDS_WITH_FILTERS, seed
from tests.postgres import PgDatabase, PostgresServer, pg_db, pg_server

__all__ = ["pg_db", "pg_server"]  # fixtures

T = TypeVar("T")
NOW = T0 + timedelta(days=30)
Seeded = tuple[str, list[int]]


async def _seed(url: str) -> list[int]:
    clock = FixedClock(T0)
    async with await Store.open(url, clock=clock) as store:
        return await seed(store, clock)


@pytest.fixture(scope="module")
def seeded_pg(pg_server: PostgresServer) -> Seeded:
    """One database with DOCS, for the cases that only read: its URL and the ids in DOCS order."""
    url = pg_server.url(pg_server.create_database("search"))
    return url, asyncio.run(_seed(url))


def on(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    async def scenario() -> T:
        async with await Store.open(url, clock=FixedClock(NOW)) as store:
            return await work(store)

    return asyncio.run(scenario())


def found(seeded: Seeded, **options: Any) -> list[int]:
    """Positions in DOCS a search with these (string) options finds, newest first."""
    url, ids = seeded

    async def work(store: Store) -> list[int]:
        return [ids.index(v.id) for v in (await search(store, build_filter(now=NOW, **options))).items]

    return on(url, work)


@pytest.mark.parametrize(("words", "expected"), WORD_CASES)
def test_text_search_words(seeded_pg: Seeded, words: str, expected: list[int]) -> None:
    assert found(seeded_pg, text=words) == expected


@pytest.mark.parametrize(("options", "expected"), WORDS_WITH_FILTERS)
def test_words_with_filters(seeded_pg: Seeded, options: dict[str, Any], expected: list[int]) -> None:
    assert found(seeded_pg, **options) == expected


@pytest.mark.parametrize(("options", "expected"), FILTER_CASES)
def test_each_filter_and_combinations(seeded_pg: Seeded, options: dict[str, Any], expected: list[int]) -> None:
    assert found(seeded_pg, **options) == expected


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_is_words_not_syntax(seeded_pg: Seeded, hostile: str) -> None:
    assert found(seeded_pg, text=hostile) == []
    assert found(seeded_pg, text=f"kiểm {hostile}") in ([], [3, 0])


def test_operator_words_in_a_subject_are_found_as_words(seeded_pg: Seeded) -> None:
    assert found(seeded_pg, text='OR NEAR "an toàn"') == [4]
    assert found(seeded_pg, text="100%") == [4]


def test_pages_with_words_continue_exactly(seeded_pg: Seeded) -> None:
    url, ids = seeded_pg

    async def work(store: Store) -> list[list[int]]:
        pages, before = [], None
        while True:
            page = await search(store, build_filter(text="UBND", limit="2", before_id=before, now=T0))
            pages.append([ids.index(v.id) for v in page.items])
            if page.next_before_id is None:
                return pages
            before = str(page.next_before_id)

    assert on(url, work) == [[6, 5], [1, 0]]


def test_the_search_uses_the_gin_index(seeded_pg: Seeded, pg_server: PostgresServer) -> None:
    url, _ = seeded_pg
    query = store_search.search_query("postgresql", text_query="hà nội UBND-VP", limit=5)
    sql = str(query.compile(dialect=make_url("postgresql://").get_dialect()(), compile_kwargs={"literal_binds": True}))
    plan = pg_server.sql(f"SET enable_seqscan = off; EXPLAIN {sql}", database=url.rsplit("/", 1)[1])
    assert "ix_messages_search" in "\n".join(line[0] for line in plan)


def test_the_folded_text_follows_updates(pg_db: PgDatabase) -> None:
    async def work() -> tuple[list[int], list[int], list[int]]:
        clock = FixedClock(T0)
        async with await Store.open(pg_db.url, clock=clock) as store:
            ids = await seed(store, clock)
            await store.transition(ids[2], "active", reason="claimed", subject="Thư mời dự hội nghị", to_organs=[TN])
            await store.transition(ids[3], "active", reason="claimed", subject=None)
            old = await search(store, build_filter(text="quan ly dat dai", now=NOW))
            new = await search(store, build_filter(text="hoi nghi", now=NOW))
            gone = await search(store, build_filter(text="huong dan", now=NOW))
            return [v.id for v in old.items], [ids.index(v.id) for v in new.items], [v.id for v in gone.items]

    assert asyncio.run(work()) == ([], [2], [])


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


def test_revision_0004_folds_the_rows_already_there_and_goes_back(pg_db: PgDatabase) -> None:
    """Rows written before 0004 (here: at 0004, then downgraded) are found without diacritics after it."""

    async def scenario() -> list[int]:
        ids = await _seed(pg_db.url)
        store = await Store.open(pg_db.url, clock=FixedClock(NOW))
        try:
            async with store.engine.begin() as conn:
                await conn.run_sync(_downgrade, "0003")
                assert (await conn.execute(text("SELECT to_regclass('message_search')"))).scalar() is None
                back = text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messages_search'")
                assert "ON public.messages USING gin" in (await conn.execute(back)).scalar_one()
            await upgrade(store.engine)
            return [ids.index(v.id) for v in (await search(store, build_filter(text="ha noi", now=NOW))).items]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [1]
    (index,) = pg_db.sql("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messages_search'")
    assert "ON public.message_search USING gin (to_tsvector('simple'::regconfig, folded))" in index[0]
    assert pg_db.sql("SELECT count(*) FROM message_search") == [("7",)]
