"""The archivist's search over the receipt log: one query builder, bound parameters only.

Every value reaches the database as a bound parameter; no SQL is assembled from what a user
typed. Free text is cut into words here and each word becomes one quoted FTS5 phrase (its
``"`` doubled), so ``OR``, ``NEAR``, ``*``, ``"``, ``%`` and ``_`` are words like any other,
never syntax. All words must match (FTS5 joins phrases with AND). PostgreSQL answers the same:
each word becomes a ``phraseto_tsquery`` of its tokens folded as FTS5 folds them
(``folding.py``: diacritics optional, ``đ`` = ``d``), all ANDed, over each item's folded text.

The indexes behind each filter come from revision 0002: ``ix_messages_from_organ`` (sender and
receive time), ``ix_messages_code``, ``message_recipients`` (one row per recipient OrganId) and
the text index (SQLite ``messages_fts``; PostgreSQL, since revision 0004, a GIN index on
:data:`PG_DOCUMENT` over ``message_search``). Results are newest first, and ``before_id`` (the
last id of the previous page) pages backwards: keyset pagination, so a page never shifts when
new mail arrives.

"Newest first" means by receive time, then id (the indexes on ``received_at`` and on sender and
receive time give that order without sorting). A search with words is the exception: the FTS5
index yields rows in id order and is walked newest first, stopping after ``limit`` matches (a
sort of every match of a common word would not), so words come newest first by id: the order
items were recorded in, the same but for items recorded in the same instant by two gateway
instances. Either way the order is total and ``before_id`` continues exactly where the previous
page stopped.

Words with other filters (SQLite): the filters go into the FTS query too, as *facet* tokens
(revision 0002 indexes them in the ``facets`` column): a date range becomes the fewest
year/month/day tokens whose Vietnam days cover it (:func:`date_facets`), a sender, recipient,
verdict or number/notation its own token (:func:`facet`). FTS5 intersects them with the words
inside the index, so the walk newest first only meets rows that can match, however far back the
range or however rare the sender. The exact filters still apply (a token covers whole days; two
OrganIds could in principle share a token): the tokens only narrow. Every token is made here from
validated values (digits of a date, hex of a value's UTF-8), never from what a user typed.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Boolean, ColumnElement, Select, column, false, func, literal_column, select, table, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import require_aware, to_vn
from gateway.store.folding import fold_d, tokens
from gateway.store.records import MessageView, NotFound
from gateway.store.tables import (
    DIRECTIONS,
    FTS_FACETS,
    FTS_TABLE,
    FTS_WORD_COLUMNS,
    message_recipients_table,
    message_search_table,
    messages_table,
)

__all__ = [
    "FACET_PREFIXES",
    "PG_DOCUMENT",
    "VERDICTS",
    "count_by_state",
    "date_facets",
    "facet",
    "fts_query",
    "match_expression",
    "pg_match",
    "run_search",
    "search_query",
    "words",
]

M = messages_table
R = message_recipients_table
T = message_search_table
VERDICTS: Final = ("accepted", "refused", "deferred")
"""The verdicts a search can ask for (``gateway.verify.report.Verdict``)."""

PG_DOCUMENT: Final = "to_tsvector('simple'::regconfig, folded)"
"""The searched text on PostgreSQL (``message_search.folded``): exactly the expression of the GIN
index ``ix_messages_search`` (revision 0004), or the planner cannot use the index."""

FACET_PREFIXES: Final = {"sender": "s", "recipient": "r", "verdict": "v", "code": "c"}
"""The first letter of each filter's facet token (revision 0002's triggers use the same)."""

_FTS = table(FTS_TABLE, column("rowid"), column(FTS_TABLE))
_SIMPLE: Final[ColumnElement[Any]] = literal_column("'simple'::regconfig")
_WORD = re.compile(r"[^\W_]")  # a letter or digit: what the tokenizer keeps
_TICK = timedelta(microseconds=1)


def words(text: str) -> list[str]:
    """The words of a free-text query: split on white space, ``đ`` folded like the index does.

    A "word" without a letter or digit (``%``, ``"``, ``*``) indexes to nothing and is dropped.
    """
    return [w for w in fold_d(text).split() if _WORD.search(w)]


def pg_match(text: str) -> ColumnElement[bool]:
    """PostgreSQL's condition for the words of ``text``: each word a phrase of its folded tokens, all ANDed.

    The same as the FTS5 query (:func:`fts_query`): ``13/UBND-VP`` must occur as ``13 ubnd vp``
    in that order, ``ha noi`` finds ``Hà Nội``. Each phrase is a bound parameter. No words: false.
    """
    phrases = [func.phraseto_tsquery(_SIMPLE, " ".join(tokens(w))) for w in words(text)]
    if not phrases:
        return false()
    query: ColumnElement[Any] = phrases[0]
    for phrase in phrases[1:]:
        query = query.op("&&")(phrase)
    return literal_column(PG_DOCUMENT).op("@@", return_type=Boolean)(query)


def _phrase(word: str) -> str:
    """One FTS5 phrase: the word in double quotes, its own ``"`` doubled (never syntax)."""
    return '"' + word.replace('"', '""') + '"'


def fts_query(text: str) -> str | None:
    """An FTS5 query in which every word of ``text`` is a quoted phrase; ``None`` if no words."""
    found = words(text)
    return " ".join(_phrase(w) for w in found) if found else None


def facet(name: str, value: str) -> str:
    """The facet token of one filter value: its prefix (:data:`FACET_PREFIXES`) and the hex of its UTF-8.

    Hex keeps any value one token of letters and digits, as ``unicode61`` reads it.
    """
    return FACET_PREFIXES[name] + value.encode("utf-8").hex()


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def date_facets(since: datetime, until: datetime) -> list[str]:
    """The fewest facet tokens whose Vietnam days together cover ``[since, until)``.

    Whole years become ``y2024``, whole months ``m202406``, the other days ``d20240615``: at
    most about 80 tokens whatever the range (a partial month at each end, partial years). The
    first and last day may hold receive times outside the range: the exact filter removes them.

    Returns:
        The tokens, oldest first; empty when the range is empty.
    """
    first, last = to_vn(require_aware(since)).date(), to_vn(require_aware(until) - _TICK).date()
    tokens: list[str] = []
    day = first
    while day <= last:
        if (day.month, day.day) == (1, 1) and day.replace(month=12, day=31) <= last:
            tokens.append(f"y{day.year:04d}")
            end = day.replace(month=12, day=31)
        elif day.day == 1 and _month_end(day) <= last:
            tokens.append(f"m{day.year:04d}{day.month:02d}")
            end = _month_end(day)
        else:
            tokens.append(f"d{day.year:04d}{day.month:02d}{day.day:02d}")
            end = day
        if end == date.max:
            break
        day = end + timedelta(days=1)
    return tokens


def match_expression(text: str, facets: Sequence[Sequence[str]] = ()) -> str | None:
    """The FTS5 query: every word (in the word columns only) and, of each facet group, one token.

    Args:
        text: what the user typed (each word becomes a quoted phrase: :func:`fts_query`).
        facets: groups of tokens made by :func:`facet`/:func:`date_facets`; a row must hold one
            token of every group.

    Returns:
        The query, or ``None`` when ``text`` has no words or a group is empty (nothing matches).
    """
    phrases = fts_query(text)
    if phrases is None or any(not group for group in facets):
        return None
    parts = [f"{{{' '.join(FTS_WORD_COLUMNS)}}} : ({phrases})"]
    parts.extend(f"{FTS_FACETS} : ({' OR '.join(_phrase(t) for t in group)})" for group in facets)
    return " AND ".join(parts)


def search_query(
    dialect: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    sender: str | None = None,
    recipient: str | None = None,
    code: str | None = None,
    verdict: str | None = None,
    direction: str | None = None,
    text_query: str | None = None,
    before_id: int | None = None,
    before_received_at: datetime | None = None,
    span: tuple[datetime, datetime] | None = None,
    limit: int = 50,
) -> Select[Any]:
    """Work items matching every given filter, newest first (highest id first).

    Args:
        dialect: ``sqlite`` or ``postgresql`` (which text index to use).
        since, until: receive time in ``[since, until)`` (aware).
        sender: ``from_organ`` equals this OrganId.
        recipient: ``to_organs`` contains this OrganId.
        code: the number/notation equals this (``123/UBND-VP``).
        verdict: ``accepted``, ``refused`` or ``deferred``.
        direction: ``in`` or ``out``.
        text_query: words that must all occur in the subject, code, DocumentId, OrganIds or findings.
        before_id: the last id of the previous page: only rows after it in the order.
        before_received_at: that row's receive time (the order's first key, without text).
        span: the receive times of the oldest and the newest work item: with words on SQLite,
            an open or wide date range is closed to it before it becomes facet tokens.
        limit: at most this many rows.

    Raises:
        ValueError: a naive time, an unknown verdict or direction, or a limit below 1.
    """
    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; known: {', '.join(VERDICTS)}")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; known: {', '.join(DIRECTIONS)}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = select(M).limit(limit)
    for name, value in (("from_organ", sender), ("code", code), ("verdict", verdict), ("direction", direction)):
        if value is not None:
            query = query.where(M.c[name] == value)
    if text_query is not None:
        facets = _facets(dialect, since, until, span, sender=sender, recipient=recipient, verdict=verdict, code=code)
        return _text(_exact(query, since, until, recipient), dialect, text_query, facets, before_id)
    # With a recipient, its side table (and its copy of the receive time) leads: its index is in order.
    received_at, id_ = (M.c.received_at, M.c.id) if recipient is None else (R.c.received_at, R.c.message_id)
    if recipient is not None:
        query = query.join(R, R.c.message_id == M.c.id).where(R.c.organ == recipient)
    if since is not None:
        query = query.where(received_at >= require_aware(since))
    if until is not None:
        query = query.where(received_at < require_aware(until))
    if before_id is not None:
        if before_received_at is None:
            raise ValueError("before_id needs that row's receive time (before_received_at)")
        query = query.where(tuple_(received_at, id_) < tuple_(require_aware(before_received_at), before_id))
    return query.order_by(received_at.desc(), id_.desc())


def _exact(query: Select[Any], since: datetime | None, until: datetime | None, recipient: str | None) -> Select[Any]:
    """The date range and recipient as exact conditions on each row (with words: the index drives)."""
    if recipient is not None:
        query = query.where(select(R.c.message_id).where(R.c.message_id == M.c.id, R.c.organ == recipient).exists())
    if since is not None:
        query = query.where(M.c.received_at >= require_aware(since))
    if until is not None:
        query = query.where(M.c.received_at < require_aware(until))
    return query


def _facets(
    dialect: str,
    since: datetime | None,
    until: datetime | None,
    span: tuple[datetime, datetime] | None,
    **values: str | None,
) -> list[list[str]]:
    """The facet groups of these filters (SQLite; none on PostgreSQL, whose planner combines indexes).

    An open end of the date range is closed by ``span``; without ``span`` such a range gets no
    date tokens (still exact, only slower). A range outside ``span`` gives an empty group: nothing.
    """
    if dialect != "sqlite":
        return []
    groups = [[facet(name, value)] for name, value in values.items() if value is not None]
    low, high = since, until
    if span is not None and (since is not None or until is not None):
        low = span[0] if since is None else max(require_aware(since), span[0])
        high = span[1] + _TICK if until is None else min(require_aware(until), span[1] + _TICK)
    if low is not None and high is not None:
        groups.append(date_facets(low, high) if low < high else [])
    return groups


def _text(
    query: Select[Any], dialect: str, text_query: str, facets: list[list[str]], before_id: int | None
) -> Select[Any]:
    """Words, with any other filters: newest first by id.

    On SQLite the FTS table drives the join, walked newest first with the filters' facet tokens,
    so a common word stops after ``limit`` matching rows instead of sorting every match.
    """
    if not words(text_query):
        return query.where(false()).order_by(M.c.id.desc())
    if dialect == "postgresql":
        query = query.join(T, T.c.message_id == M.c.id).where(pg_match(text_query))
    else:
        expression = match_expression(text_query, facets)
        if expression is None:  # an empty facet group: the range holds no work item
            return query.where(false()).order_by(M.c.id.desc())
        query = query.join(_FTS, _FTS.c.rowid == M.c.id).where(_FTS.c[FTS_TABLE].match(expression))
    key = M.c.id if dialect == "postgresql" else _FTS.c.rowid
    if before_id is not None:
        query = query.where(key < before_id)
    return query.order_by(key.desc())


async def run_search(conn: AsyncConnection, **filters: Any) -> list[MessageView]:
    """Build and run a :func:`search_query` for this connection's database.

    Raises:
        NotFound: ``before_id`` names no work item.
    """
    before_id = filters.get("before_id")
    if before_id is not None and filters.get("text_query") is None:
        anchor = (await conn.execute(select(M.c.received_at).where(M.c.id == before_id))).first()
        if anchor is None:
            raise NotFound(f"before_id {before_id} names no work item")
        filters["before_received_at"] = anchor.received_at
    if filters.get("text_query") is not None and (filters.get("since") or filters.get("until")):
        filters["span"] = await _span(conn)
    query = search_query(conn.dialect.name, **filters)
    return [MessageView.from_row(r) for r in (await conn.execute(query)).mappings()]


async def _span(conn: AsyncConnection) -> tuple[datetime, datetime] | None:
    """The receive times of the oldest and the newest work item (two index lookups), or ``None``."""
    oldest = select(func.min(M.c.received_at)).scalar_subquery()
    newest = select(func.max(M.c.received_at)).scalar_subquery()
    row = (await conn.execute(select(oldest, newest))).first()
    return None if row is None or row[0] is None or row[1] is None else (row[0], row[1])


async def count_by_state(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """How many work items there are of each (kind, state)."""
    query = select(M.c.kind, M.c.state, func.count(literal_column("*"))).group_by(M.c.kind, M.c.state)
    return {(kind, state): int(n) for kind, state, n in (await conn.execute(query)).all()}
