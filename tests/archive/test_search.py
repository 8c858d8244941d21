"""The archivist's search: every filter, combinations, pages, bad values, hostile text (issue 6).

The store is real (SQLite file, migrated to head, with revision 0002's indexes and triggers);
rows are seeded through the Store API as the pipeline writes them (``record_intake`` then
``record_verdict`` with the package summary).
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from sqlalchemy.engine import Connection

from gateway.archive.search import FilterError, SearchFilter, build_filter, parse_when, search
from gateway.clock import FixedClock
from gateway.store import Intake, Store
from gateway.store import search as store_search
from gateway.store.migrate import SCRIPTS, alembic_config
from gateway.store.tables import FTS_FACETS, FTS_WORD_COLUMNS
from tests.store.helpers import db_url, sha

T = TypeVar("T")
T0 = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam
HN, HP, TN, BTC = "000.00.00.H26", "000.00.00.H31", "000.00.00.H53", "000.00.00.G09"
FINDING = {
    "code": "pdf-signature-invalid",
    "action": "reject",
    "where": "main.pdf",
    "message_vi": "Chữ ký số không hợp lệ: tài liệu đã bị sửa đổi",
    "message_en": "Invalid signature: the document was altered",
}
# (day offset, sender, recipients, code, subject, verdict, findings)
DOCS: list[tuple[int, str, list[str], str, str, str, list[dict[str, Any]]]] = [
    (0, HN, [HP], "12/UBND-VP", "Kiểm tra công tác phòng cháy chữa cháy", "accepted", []),
    (1, HN, [TN, HP], "13/UBND-VP", "Báo cáo ngân sách nhà nước quý I của Hà Nội", "accepted", []),
    (2, HP, [HN], "45/STNMT-QLĐĐ", "Đề nghị phối hợp quản lý đất đai", "refused", [FINDING]),
    (3, BTC, [HN], "7/BTC-NSNN", "Hướng dẫn kiểm tra ngân sách", "deferred", []),
    (4, TN, [HN, HP], "99/SYT-NV", 'Tăng cường "an toàn" thực phẩm 100% OR NEAR *', "accepted", []),
    (5, HN, [BTC], "14/UBND-VP", "Đôn đốc thực hiện chuyển đổi số", "accepted", []),
]


async def seed(store: Store, clock: FixedClock) -> list[int]:
    """Write DOCS (and one outbound submission) through the Store API; their ids, in DOCS order."""
    ids = []
    for n, (day, sender, to, code, subject, verdict, findings) in enumerate(DOCS):
        clock.at = T0 + timedelta(days=day)
        item = await store.record_intake(Intake(kind="inbound", channel="smtp", sha256=sha(f"m{n}"), size=100))
        await store.record_verdict(
            item.id,
            {"verdict": verdict, "findings": findings},
            verdict=verdict,
            findings=findings,
            document_id=f"{sender},2025-03-{10 + day:02d}T08:00:00+07:00,{code}",
            from_organ=sender,
            to_organs=to,
            code=code,
            subject=subject,
        )
        ids.append(item.id)
    clock.at = T0 + timedelta(days=6)  # one of ours: a submission, direction out
    out = await store.record_intake(Intake(kind="submission", channel="submission", sha256=sha("out"), size=9))
    await store.transition(out.id, "active", reason="claimed")
    await store.transition(
        out.id, "sealed", reason="sealed", from_organ=HP, to_organs=[HN], code="5/UBND-VP", subject="Giấy mời họp"
    )
    ids.append(out.id)
    return ids


@asynccontextmanager
async def seeded(tmp_path: Path) -> AsyncIterator[tuple[Store, list[int]]]:
    clock = FixedClock(T0)
    store = await Store.open(db_url(tmp_path), clock=clock)
    try:
        yield store, await seed(store, clock)
    finally:
        await store.close()


def run(tmp_path: Path, work: Callable[[Store, list[int]], Awaitable[T]]) -> T:
    """Seed a fresh receipt log (its own directory under ``tmp_path``) and run ``work`` on it."""
    here = Path(tempfile.mkdtemp(dir=tmp_path))

    async def scenario() -> T:
        async with seeded(here) as (store, ids):
            return await work(store, ids)

    return asyncio.run(scenario())


def found(tmp_path: Path, **options: Any) -> list[int]:
    """Ids a search with these (string) options finds, newest first, as positions in DOCS (6 = ours)."""

    async def work(store: Store, ids: list[int]) -> list[int]:
        page = await search(store, build_filter(now=T0 + timedelta(days=30), **options))
        return [ids.index(v.id) for v in page.items]

    return run(tmp_path, work)


def test_no_filter_finds_everything_newest_first(tmp_path: Path) -> None:
    assert found(tmp_path) == [6, 5, 4, 3, 2, 1, 0]


FILTER_CASES: list[tuple[dict[str, Any], list[int]]] = [
    ({"sender": HN}, [5, 1, 0]),
    ({"recipient": HP}, [4, 1, 0]),
    ({"recipient": BTC}, [5]),
    ({"code": "45/STNMT-QLĐĐ"}, [2]),
    ({"code": "45/STNMT"}, []),  # exact, not a prefix
    ({"verdict": "refused"}, [2]),
    ({"verdict": "DEFERRED"}, [3]),
    ({"direction": "out"}, [6]),
    ({"direction": "in", "sender": HP}, [2]),
    # Vietnam dates: 2025-03-11 is 10 Mar 17:00 UTC .. 11 Mar 17:00 UTC; --to includes the day.
    ({"from_": "2025-03-11", "to": "2025-03-12"}, [2, 1]),
    ({"from_": "2025-03-11T08:00:00", "to": "2025-03-11T08:00:01"}, [1]),
    ({"from_": "2025-03-11T01:00:00Z", "to": "2025-03-11T01:00:00.000001+00:00"}, [1]),
    ({"sender": HN, "from_": "2025-03-11", "recipient": TN}, [1]),
    ({"sender": HN, "verdict": "refused"}, []),
]
"""Every filter alone and combined: (``build_filter`` options, positions in DOCS found, newest first)."""


@pytest.mark.parametrize(("options", "expected"), FILTER_CASES)
def test_each_filter_and_combinations(tmp_path: Path, options: dict[str, Any], expected: list[int]) -> None:
    """Issue 6: dates (Vietnam days), sender, recipient, number/notation, verdict, direction."""
    assert found(tmp_path, **options) == expected


WORD_CASES: list[tuple[str, list[int]]] = [
    ("kiểm tra", [3, 0]),
    ("kiem tra", [3, 0]),  # without diacritics
    ("KIỂM TRA ngân", [3]),  # every word must occur; case does not matter
    ("don doc chuyen doi so", [5]),  # đ folded to d
    ("Đôn đốc", [5]),
    ("13/UBND-VP", [1]),  # the number/notation as words
    ("UBND", [6, 5, 1, 0]),
    ("pdf-signature-invalid", [2]),  # a finding's code
    ("altered", [2]),  # its English text
    ("sửa đổi", [2]),  # its Vietnamese text
    (BTC, [5, 3]),  # an OrganId as sender or recipient
    ("2025-03-12T08", [2]),  # part of a DocumentId
    ("trời", []),
    ("ha noi", [1]),  # without diacritics (PostgreSQL too: revision 0004)
    ("HÀ NỘI", [1]),
    (unicodedata.normalize("NFD", "hà nội"), [1]),  # typed decomposed
    ("dat dai", [2]),  # đ = d both ways
    ("ĐẤT ĐAI", [2]),
    ("QLĐĐ", [2]),  # đ = d in the number/notation too (SQLite: revision 0005)
    ("45/stnmt-qldd", [2]),
    ("UBND-VP", [6, 5, 1, 0]),  # one word is one phrase: its parts in order ...
    ("VP-UBND", []),  # ... not merely all present
    ("noi-13", []),  # nor across two fields (doc 1: subject "... Hà Nội", then code "13/UBND-VP")
]
"""Words: (what the archivist typed, positions in DOCS found, newest first); the same on both databases."""


@pytest.mark.parametrize(("words", "expected"), WORD_CASES)
def test_text_search_words(tmp_path: Path, words: str, expected: list[int]) -> None:
    assert found(tmp_path, text=words) == expected


HOSTILE = ['"', '""', "'", "' OR 1=1 --", "%", "_", "%%", "*", "AND NOT", "a NEAR/2 b", "kiể*", "(", ")",
           "subject:kiểm", "^kiể", "{subject} : x", "+", "-", "\\", "; DROP TABLE messages; --"]  # fmt: skip
"""Free text that is syntax somewhere (SQL, FTS5, tsquery): words here, or nothing."""


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_is_words_not_syntax(tmp_path: Path, hostile: str) -> None:
    """Quotes, %, _, FTS operators: never an error, never syntax (they match as words or not at all)."""

    async def work(store: Store, ids: list[int]) -> tuple[list[int], list[int], int]:
        now = T0 + timedelta(days=30)
        alone = await search(store, build_filter(text=hostile, now=now))
        both = await search(store, build_filter(text=f"kiểm {hostile}", now=now))
        other = await search(store, build_filter(sender=hostile, recipient=hostile, code=hostile, now=now))
        everything = await search(store, build_filter(now=now))
        return (
            [ids.index(v.id) for v in alone.items],
            [ids.index(v.id) for v in both.items],
            len(other.items) + len(everything.items),
        )

    alone, both, counted = run(tmp_path, work)
    assert alone == []  # no row holds these as words
    assert both in ([], [3, 0])  # a word with no letters is no constraint; an operator is a word nobody wrote
    assert counted == 7  # the table is intact, the exact filters matched nothing


def test_operator_words_in_a_subject_are_found_as_words(tmp_path: Path) -> None:
    assert found(tmp_path, text='OR NEAR "an toàn"') == [4]
    assert found(tmp_path, text="100%") == [4]


def test_pages_continue_exactly(tmp_path: Path) -> None:
    """Keyset pages: no row twice, none missed, with and without words."""

    async def work(store: Store, ids: list[int]) -> list[list[list[int]]]:
        results = []
        for options in ({}, {"text": "UBND"}, {"recipient": HN}):
            pages, before = [], None
            while True:
                flt = build_filter(limit="2", before_id=before, now=T0, **options)
                page = await search(store, flt)
                pages.append([ids.index(v.id) for v in page.items])
                if page.next_before_id is None:
                    break
                before = str(page.next_before_id)
            results.append(pages)
        return results

    plain, words, recipient = run(tmp_path, work)
    assert plain == [[6, 5], [4, 3], [2, 1], [0]]
    assert words == [[6, 5], [1, 0]]
    assert recipient == [[6, 4], [3, 2]]


def test_a_full_last_page_says_there_is_no_next(tmp_path: Path) -> None:
    assert found(tmp_path, sender=HN, limit=3) == [5, 1, 0]

    async def work(store: Store, ids: list[int]) -> int | None:
        return (await search(store, build_filter(sender=HN, limit=3, now=T0))).next_before_id

    assert run(tmp_path, work) is None


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"from_": "yesterday"}, "from", "an age (30d"),
        ({"to": "2025-13-01"}, "to", "2025-03-14"),
        ({"from_": "2025-03-12", "to": "2025-03-11"}, "to", "not after from"),
        ({"verdict": "maybe"}, "verdict", "accepted, refused, deferred"),
        ({"direction": "sideways"}, "direction", "in, out"),
        ({"limit": "0"}, "limit", "1..500"),
        ({"limit": "501"}, "limit", "1..500"),
        ({"limit": "ten"}, "limit", "1..500"),
        ({"before_id": "-3"}, "before_id", "from 1"),
        ({"sender": "x" * 300}, "sender", "at most 255"),
        ({"text": "a\x00b"}, "text", "control character"),
    ],
)
def test_bad_values_name_the_field_the_value_and_the_forms(options: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(FilterError) as caught:
        build_filter(now=T0, **options)
    assert caught.value.field == field
    assert field in str(caught.value)
    assert says in str(caught.value)


def test_a_before_id_that_names_nothing_is_a_filter_error(tmp_path: Path) -> None:
    async def work(store: Store, ids: list[int]) -> str:
        with pytest.raises(FilterError) as caught:
            await search(store, build_filter(before_id="999", now=T0))
        return caught.value.field

    assert run(tmp_path, work) == "before_id"


def test_parse_when_forms() -> None:
    now = datetime(2025, 3, 14, 2, 0, tzinfo=UTC)
    assert parse_when("30d", now) == now - timedelta(days=30)
    assert parse_when("90m", now) == now - timedelta(minutes=90)
    assert parse_when("2w", now) == now - timedelta(weeks=2)
    assert parse_when("2025-03-14", now) == datetime(2025, 3, 13, 17, 0, tzinfo=UTC)
    assert parse_when("2025-03-14", now, end=True) == datetime(2025, 3, 14, 17, 0, tzinfo=UTC)
    assert parse_when("2025-03-14T09:00:00", now) == datetime(2025, 3, 14, 2, 0, tzinfo=UTC)
    assert parse_when("2025-03-14T09:00:00+00:00", now) == datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    assert parse_when("2025-03-14T09:00:00+07:00", now).tzinfo is UTC
    with pytest.raises(ValueError, match="not an age"):
        parse_when("tomorrow", now)


def test_the_filter_describes_itself_in_vietnam_time() -> None:
    flt = build_filter(from_="2025-03-14", sender=HN, now=T0)
    assert flt.describe() == f"from 2025-03-14T00:00:00+07:00, sender '{HN}'"
    assert SearchFilter().describe() == "everything"


def test_store_search_refuses_naive_times_and_unknown_values() -> None:
    with pytest.raises(ValueError, match="naive"):
        store_search.search_query("sqlite", since=datetime(2025, 3, 14))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="verdict"):
        store_search.search_query("sqlite", verdict="maybe")
    with pytest.raises(ValueError, match="limit"):
        store_search.search_query("sqlite", limit=0)


def test_words_become_quoted_phrases() -> None:
    assert store_search.fts_query('kiểm "tra" OR') == '"kiểm" """tra""" "OR"'
    assert store_search.fts_query("% _ *") is None
    assert store_search.words("Đôn đốc") == ["Dôn", "dốc"]
    words_only = '{subject code document_id organs findings} : ("a""b" "OR")'
    assert store_search.match_expression('a"b OR', [["y2024", "m202501"], ["s30"]]) == (
        f'{words_only} AND facets : ("y2024" OR "m202501") AND facets : ("s30")'
    )
    assert store_search.match_expression("kiểm", [[]]) is None  # an empty range: nothing, not everything


def test_the_postgresql_search_expression_is_the_migrations_index() -> None:
    """The planner uses the GIN index only for the very expression it indexes (revision 0004's)."""
    spec = importlib.util.spec_from_file_location("revision_0004", SCRIPTS / "versions" / "0004_folded_search.py")
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.PG_DOCUMENT == store_search.PG_DOCUMENT
    assert f"ON message_search USING gin (({store_search.PG_DOCUMENT}))" in migration.PG_UP[-1]


def test_the_index_follows_updates_of_the_searched_columns(tmp_path: Path) -> None:
    """The triggers of revision 0002: a changed subject is found by its new words only."""

    async def work(store: Store, ids: list[int]) -> tuple[list[int], list[int], list[int]]:
        await store.transition(ids[2], "active", reason="claimed", subject="Thư mời dự hội nghị", to_organs=[TN])
        now = T0 + timedelta(days=30)
        old = await search(store, build_filter(text="quản lý đất đai", now=now))
        new = await search(store, build_filter(text="hội nghị", now=now))
        to = await search(store, build_filter(recipient=TN, now=now))
        return [v.id for v in old.items], [v.id for v in new.items], [ids.index(v.id) for v in to.items]

    old, new, to = run(tmp_path, work)
    assert old == []
    assert len(new) == 1
    assert to == [2, 1]


def _migrate(connection: Connection, revision: str) -> None:
    if revision == "0004":
        command.downgrade(alembic_config(connection), revision)
    else:
        command.upgrade(alembic_config(connection), revision)


def test_revision_0005_reindexes_the_rows_already_there_with_d_folded_everywhere(tmp_path: Path) -> None:
    """Down to 0004 (revision 0002's folding: a notation's Đ is not found), up to 0005: found; the
    triggers and the index agree afterwards (an update removes exactly the text it indexed)."""

    async def work(store: Store, ids: list[int]) -> list[list[int]]:
        now = T0 + timedelta(days=30)
        answers = []
        for revision in ("0004", "0005"):
            async with store.engine.begin() as conn:
                await conn.run_sync(_migrate, revision)
            answers.append([ids.index(v.id) for v in (await search(store, build_filter(text="QLĐĐ", now=now))).items])
        document_id = f"{HP},2025-03-12T08:00:00+07:00,46/QĐ-UBND"
        await store.transition(ids[2], "active", reason="claimed", code="46/QĐ-UBND", document_id=document_id)
        for words in ("QLĐĐ", "qd-ubnd", "46/QĐ-UBND"):
            answers.append([ids.index(v.id) for v in (await search(store, build_filter(text=words, now=now))).items])
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
        return answers

    assert run(tmp_path, work) == [[], [2], [], [2], [2]]


def test_count_by_state(tmp_path: Path) -> None:
    async def work(store: Store, ids: list[int]) -> dict[tuple[str, str], int]:
        return await store.count_by_state()

    assert run(tmp_path, work) == {("inbound", "incoming"): 6, ("submission", "sealed"): 1}


WORDS_WITH_FILTERS: list[tuple[dict[str, Any], list[int]]] = [
    ({"text": "kiểm tra", "from_": "2025-03-13"}, [3]),
    ({"text": "kiểm tra", "to": "2025-03-12"}, [0]),
    ({"text": "kiem tra", "from_": "2025-03-10", "to": "2025-03-13"}, [3, 0]),
    ({"text": "kiểm tra", "from_": "2025-03-11", "to": "2025-03-12"}, []),
    ({"text": "ngân sách", "sender": BTC}, [3]),
    ({"text": "ngân sách", "recipient": HP}, [1]),
    ({"text": "UBND", "verdict": "accepted"}, [5, 1, 0]),
    ({"text": "UBND", "code": "5/UBND-VP"}, [6]),
    ({"text": "UBND", "direction": "out"}, [6]),
    ({"text": "UBND", "from_": "2026-01-01"}, []),  # after every row
    ({"text": "UBND", "to": "2024-01-01"}, []),  # before every row
    ({"text": "UBND", "from_": "2020-01-01", "to": "2030-12-31"}, [6, 5, 1, 0]),  # clipped to the data
    ({"text": "UBND", "sender": HN, "from_": "2025-03-11", "recipient": TN}, [1]),
    ({"text": "ngân sách", "verdict": "deferred", "from_": "2025-03-13", "to": "2025-03-13"}, [3]),
    ({"text": "ha noi", "sender": HN, "recipient": TN, "from_": "2025-03-11", "to": "2025-03-11"}, [1]),
]
"""Words with other filters: (options, positions in DOCS found, newest first)."""


@pytest.mark.parametrize(("options", "expected"), WORDS_WITH_FILTERS)
def test_words_with_filters(tmp_path: Path, options: dict[str, Any], expected: list[int]) -> None:
    """Words and filters meet in the text index (revision 0002's facet tokens): same answers as the filters."""
    assert found(tmp_path, **options) == expected


def test_hostile_filter_values_with_words_are_values_not_syntax(tmp_path: Path) -> None:
    """A filter value becomes a hex token, never FTS syntax: a quote or an operator finds nothing, errs never."""
    for hostile in ('"', '" OR "', "*", "x) OR (y", "NEAR"):
        assert found(tmp_path, text="kiểm", sender=hostile, recipient=hostile, code=hostile) == []


def test_date_facets_cover_the_range_with_the_fewest_tokens() -> None:
    vn = timezone(timedelta(hours=7))
    assert store_search.date_facets(datetime(2024, 1, 1, tzinfo=vn), datetime(2025, 1, 1, tzinfo=vn)) == ["y2024"]
    assert store_search.date_facets(datetime(2024, 6, 29, tzinfo=vn), datetime(2024, 8, 2, 9, tzinfo=vn)) == [
        "d20240629",
        "d20240630",
        "m202407",
        "d20240801",
        "d20240802",
    ]
    # Vietnam days, whatever the offset of the bounds: 16:59:59 UTC is still the same Vietnam day.
    assert store_search.date_facets(
        datetime(2024, 3, 9, 17, 0, tzinfo=UTC), datetime(2024, 3, 10, 17, 0, tzinfo=UTC)
    ) == ["d20240310"]
    assert store_search.date_facets(datetime(2024, 3, 10, tzinfo=vn), datetime(2024, 3, 10, tzinfo=vn)) == []
    many = store_search.date_facets(datetime(2023, 1, 15, tzinfo=vn), datetime(2025, 12, 16, tzinfo=vn))
    assert len(many) == 55
    assert "y2024" in many
    assert store_search.facet("sender", "Sở Đ") == "s" + "Sở Đ".encode().hex()


def test_a_receive_time_at_the_last_instant_of_a_vietnam_day_is_found_on_that_day(tmp_path: Path) -> None:
    """The triggers date a row by its Vietnam day (seconds truncated, never rounded to the next day)."""
    last = datetime(2025, 3, 10, 16, 59, 59, 999999, tzinfo=UTC)  # 23:59:59.999999 on 10 March in Vietnam
    sender = "Sở Đ.1"  # not ASCII: its token is the hex of its UTF-8, in Python and in SQLite alike

    async def scenario() -> list[list[int]]:
        clock = FixedClock(last)
        async with await Store.open(db_url(tmp_path), clock=clock) as store:
            for n, at in enumerate((last, last + timedelta(microseconds=1))):
                clock.at = at
                item = await store.record_intake(Intake(kind="inbound", channel="smtp", sha256=sha(f"e{n}"), size=1))
                await store.record_verdict(
                    item.id, {}, verdict="accepted", findings=[], from_organ=sender, subject="Ranh giới ngày"
                )
            answers = []
            for day in ("2025-03-10", "2025-03-11"):
                flt = build_filter(text="ranh gioi", from_=day, to=day, sender=sender, now=last)
                answers.append([v.id for v in (await search(store, flt)).items])
            return answers

    assert asyncio.run(scenario()) == [[1], [2]]


def test_the_migration_indexes_the_columns_the_search_names() -> None:
    spec = importlib.util.spec_from_file_location("revision_0002", SCRIPTS / "versions" / "0002_search.py")
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert f"USING fts5({', '.join((*FTS_WORD_COLUMNS, FTS_FACETS))}, content=''" in migration.SQLITE_UP[0]
