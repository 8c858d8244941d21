"""The journal: the legal record, append-only and hash-chained (design note §4).

Canonical form (stable across versions; changing it breaks every stored chain)::

    hash = SHA-256( prev_hash                      # 64 lowercase hex ASCII, "0"*64 for seq 1
                    + canonical_json({"seq": int, "message_id": int | null, "event": str,
                                      "at": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "data": {...}}) )

``canonical_json`` is UTF-8 JSON with sorted keys, no whitespace, non-ASCII kept as is, no NaN
or infinity. The ``data`` column holds ``canonical_json(data)``; the hash is recomputed from the
parsed value, so only a change of meaning breaks it.

Invariants:

* rows are only inserted, with ``seq`` = head + 1 assigned here (never by the database);
* every write transaction locks the head row **first** (:func:`lock_head`, ``FOR UPDATE``:
  a no-op on SQLite, whose ``BEGIN IMMEDIATE`` already excludes other writers; a row lock on
  PostgreSQL, held to the commit), before it takes its time or touches an item: the writers of
  all instances take turns, so the chain stays linear, its times never go backwards, and there
  is one lock order (the head, then items), hence no deadlock between writers;
* :func:`append` is the **last** thing a write transaction does (it reads the head again, under
  the same lock);
* the head row (``journal_head``) always equals the last journal row, so rows cut from the end
  are noticed too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.records import ChainCheck, JournalView
from gateway.store.tables import EVENTS, journal_head_table, journal_table

__all__ = [
    "GENESIS",
    "PendingEvent",
    "append",
    "canonical_json",
    "entry_hash",
    "head_lock_query",
    "history",
    "iso_utc",
    "json_sha256",
    "lock_head",
    "verify",
]

GENESIS: Final = "0" * 64
"""The ``prev_hash`` of the first row."""
_BATCH: Final = 1000
_MAX_PROBLEMS: Final = 20

journal = journal_table
head = journal_head_table


def canonical_json(value: Any) -> str:
    """The one JSON spelling of ``value`` that the hash covers.

    Raises:
        ValueError: NaN or infinity (no canonical spelling).
        TypeError: a value JSON cannot hold.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_sha256(value: Any) -> str:
    """SHA-256 (hex) of ``canonical_json(value)``: how big values (reports) enter the chain."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def iso_utc(at: datetime) -> str:
    """Fixed-width ISO 8601 UTC with microseconds: ``2025-03-14T02:05:07.000000Z``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("journal times must be aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, *, seq: int, message_id: int | None, event: str, at: datetime, data: Any) -> str:
    """The hash of one journal row (see the module docstring for the canonical form)."""
    body = canonical_json({"seq": seq, "message_id": message_id, "event": event, "at": iso_utc(at), "data": data})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingEvent:
    """An event a write transaction will append when it ends."""

    message_id: int | None
    event: str
    at: datetime
    data: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown journal event {self.event!r}; known: {', '.join(EVENTS)}")
        iso_utc(self.at)
        canonical_json(self.data)  # fail now, inside the transaction, not in a half-written chain


def head_lock_query() -> Select[Any]:
    """Read the chain head, locking it until the transaction ends.

    The isolated, dialect-specific step of every write: ``FOR UPDATE`` on PostgreSQL queues
    concurrent writers here (every instance, every worker), so no two read the same head;
    SQLite renders no lock clause, its ``BEGIN IMMEDIATE`` transaction already excludes writers.
    """
    return select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()


async def lock_head(conn: AsyncConnection) -> None:
    """Take the chain head's lock: the first statement of every write transaction (see above)."""
    (await conn.execute(head_lock_query())).one()


async def append(conn: AsyncConnection, events: Sequence[PendingEvent]) -> int:
    """Append ``events`` to the chain inside the caller's write transaction.

    Returns:
        The ``seq`` of the last row appended (the head), or the unchanged head when ``events``
        is empty.
    """
    found = (await conn.execute(head_lock_query())).one()
    seq, prev = int(found.seq), str(found.hash)
    if not events:
        return seq
    rows = []
    for ev in events:
        seq += 1
        data = dict(ev.data)
        digest = entry_hash(prev, seq=seq, message_id=ev.message_id, event=ev.event, at=ev.at, data=data)
        rows.append(
            {
                "seq": seq,
                "message_id": ev.message_id,
                "event": ev.event,
                "at": ev.at,
                "data": canonical_json(data),
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    await conn.execute(insert(journal), rows)
    await conn.execute(update(head).where(head.c.id == 1).values(seq=seq, hash=prev))
    return seq


def _view(row: Any) -> JournalView:
    return JournalView(
        seq=row.seq,
        message_id=row.message_id,
        event=row.event,
        at=row.at,
        data=json.loads(row.data),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


async def history(conn: AsyncConnection, message_id: int) -> list[JournalView]:
    """Every journal row about one work item, in order."""
    result = await conn.execute(select(journal).where(journal.c.message_id == message_id).order_by(journal.c.seq))
    return [_view(row) for row in result]


class _Checker:
    """Walks the rows in ``seq`` order and remembers what is wrong."""

    def __init__(self) -> None:
        self.count = 0
        self.expected_seq = 1
        self.prev = GENESIS
        self.first: int | None = None
        self.broken = 0
        self.problems: list[str] = []

    def flag(self, seq: int, problem: str) -> None:
        self.broken += 1
        if self.first is None:
            self.first = seq
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"seq {seq}: {problem}")

    def row(self, row: Any) -> None:
        self.count += 1
        seq = int(row.seq)
        wrong: list[str] = []
        if seq != self.expected_seq:
            missing = "missing" if seq > self.expected_seq else "out of order"
            wrong.append(f"expected seq {self.expected_seq} here (rows {missing})")
        if row.prev_hash != self.prev:
            wrong.append("prev_hash is not the previous row's hash (a row was removed, inserted or reordered)")
        try:
            data = json.loads(row.data)
            digest = entry_hash(
                row.prev_hash, seq=seq, message_id=row.message_id, event=row.event, at=row.at, data=data
            )
        except (ValueError, TypeError) as exc:
            wrong.append(f"cannot recompute the hash ({exc})")
        else:
            if digest != row.hash:
                wrong.append("hash does not match the row's content (the row was changed)")
        if wrong:
            self.flag(seq, "; ".join(wrong))
        # Continue from what is stored so one edit is reported once, not for every later row.
        self.expected_seq = seq + 1
        self.prev = str(row.hash)


async def verify(conn: AsyncConnection) -> ChainCheck:
    """Recompute every hash in ``seq`` order and compare the head.

    Reads in batches, so a journal of millions of rows needs little memory.
    """
    check = _Checker()
    last_seq = 0
    while True:
        result = await conn.execute(
            select(journal).where(journal.c.seq > last_seq).order_by(journal.c.seq).limit(_BATCH)
        )
        rows = result.all()
        if not rows:
            break
        for row in rows:
            check.row(row)
        last_seq = int(rows[-1].seq)
    found = (await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1))).one_or_none()
    if found is None:
        check.flag(last_seq + 1, "the journal head row is missing")
    elif int(found.seq) != last_seq or (last_seq and found.hash != check.prev):
        check.flag(
            min(int(found.seq), last_seq) + 1 if int(found.seq) != last_seq else last_seq,
            f"the head records seq {found.seq} but the journal ends at seq {last_seq} (rows cut from the end?)",
        )
    if check.first is None:
        return ChainCheck(ok=True, count=check.count, detail=f"{check.count} rows verified")
    return ChainCheck(
        ok=False,
        count=check.count,
        first_broken_seq=check.first,
        detail=check.problems[0],
        broken=check.broken,
        problems=tuple(check.problems),
    )
