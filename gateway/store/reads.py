"""The queries behind the store's read methods (each runs inside a read transaction).

Reads never lock: in WAL mode they see the last committed state as of their first statement.
``list_query`` serves both the operators' ``gateway log list`` and the admin's queue listing;
its filters are the indexed columns (``received_at``, ``state``/``kind``, ``document_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import require_aware
from gateway.store.records import MessageView, NotFound, StatusEventView
from gateway.store.tables import KINDS, STATES, messages_table, status_events_table
from gateway.store.writes import fetch

__all__ = ["find_imap_by_sha256", "find_outbound", "get", "list_messages", "list_query", "status_trail"]

M = messages_table
S = status_events_table


async def get(conn: AsyncConnection, id: int) -> MessageView | None:
    """One work item, or ``None``."""
    try:
        return await fetch(conn, id)
    except NotFound:
        return None


async def find_outbound(conn: AsyncConnection, document_id: str) -> MessageView | None:
    """Our outbound document with this DocumentId: its submission, else its first send."""
    query = (
        select(M)
        .where(M.c.document_id == document_id, M.c.kind.in_(("submission", "send")))
        .order_by((M.c.kind == "submission").desc(), M.c.id)
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else MessageView.from_row(row)


async def find_imap_by_sha256(conn: AsyncConnection, sha256: str) -> list[MessageView]:
    """The items taken from a mailbox (channel ``imap``) whose bytes hash to ``sha256``, oldest first.

    No index covers ``sha256`` (yet): this reads the whole table, so callers ask only when the
    spool already holds these bytes (a rare event: the same mail taken again).
    """
    query = select(M).where(M.c.sha256 == sha256, M.c.channel == "imap", M.c.imap_key.is_not(None)).order_by(M.c.id)
    return [MessageView.from_row(r) for r in (await conn.execute(query)).mappings()]


async def status_trail(conn: AsyncConnection, message_id: int) -> list[StatusEventView]:
    """The status events of one outbound item, oldest first."""
    rows = (await conn.execute(select(S).where(S.c.message_id == message_id).order_by(S.c.id))).mappings()
    return [StatusEventView(**r) for r in rows]


def list_query(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    direction: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    parent_id: int | None = None,
    limit: int = 100,
) -> Select[Any]:
    """Work items, newest first, received in ``[since, until)`` and matching the other filters.

    Raises:
        ValueError: an unknown state or kind, a naive time, or a limit below 1.
    """
    if state is not None and state not in STATES:
        raise ValueError(f"unknown state {state!r}; known: {', '.join(STATES)}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = select(M).order_by(M.c.id.desc()).limit(limit)
    for column, value in (("direction", direction), ("state", state), ("kind", kind), ("parent_id", parent_id)):
        if value is not None:
            query = query.where(M.c[column] == value)
    if since is not None:
        query = query.where(M.c.received_at >= require_aware(since))
    if until is not None:
        query = query.where(M.c.received_at < require_aware(until))
    return query


async def list_messages(conn: AsyncConnection, query: Select[Any]) -> list[MessageView]:
    """Run a :func:`list_query`."""
    return [MessageView.from_row(r) for r in (await conn.execute(query)).mappings()]
