"""Replaying the journal against the ``messages`` table: the receipt log's rows are evidence too.

The hash chain protects the journal. Each work item's row is protected through it: every change
to a row is journaled with all the columns it set (``writes.summarise``), so folding an item's
events in order must give back its row exactly. ``verify_chain`` runs this after the chain walk;
an edited ``received_at``, verdict or state, or a row inserted behind the store's back, is
reported with the item's id and the column.

Large JSON columns (``report``, ``findings``) are compared by the SHA-256 of their canonical
JSON, times by their ISO UTC spelling. The lease time is the one column not compared: it is
renewed while an item is worked on and is not part of the record (the owner is, with each
claim). Work items are read in id order, in batches, with their events
(``ix_journal_message_id``), so memory stays small on a log of millions of rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.journal import iso_utc, json_sha256
from gateway.store.records import ChainCheck
from gateway.store.tables import journal_table, messages_table

__all__ = ["RowsCheck", "check_rows", "combine", "expected_row"]

M = messages_table
J = journal_table
_BATCH: Final = 500
_MAX_PROBLEMS: Final = 20
_LARGE: Final = ("report", "findings")
_NOT_EVIDENCE: Final = ("id", "lease_until")
"""Not replayed: the key, and the lease time (renewed without a journal event, see ``lease.py``)."""
_COLUMNS: Final = tuple(c.name for c in M.columns if c.name not in _NOT_EVIDENCE)


def _normal(column: str, value: Any) -> Any:
    """A column value in the journal's spelling."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso_utc(value)
    if column in _LARGE:
        return json_sha256(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _apply(expected: dict[str, Any], fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        column = name.removesuffix("_sha256") if name in ("report_sha256", "findings_sha256") else name
        expected[column] = value


def expected_row(events: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Fold one item's events ``(event, at ISO UTC, data)`` into the row they describe.

    Returns:
        The expected columns (journal spelling), or ``None`` when there is no ``received``.
    """
    if not events or events[0][0] != "received":
        return None
    expected: dict[str, Any] = dict.fromkeys(_COLUMNS)
    _, at, data = events[0]
    _apply(expected, data)
    expected["state_changed_at"] = at
    for event, at, data in events[1:]:
        if event == "verdict":
            _apply(expected, data)
        elif event != "status":  # transition, delivered, sent, released: a state change
            _apply(expected, data.get("fields", {}))
            if data["to"] != expected["state"]:
                expected["state"] = data["to"]
                expected["state_changed_at"] = at
    return expected


@dataclass
class RowsCheck:
    """What the replay found."""

    count: int = 0
    first: int | None = None
    problems: list[str] = field(default_factory=list)
    broken: int = 0

    def flag(self, message_id: int, problem: str) -> None:
        """Remember one disagreement."""
        self.broken += 1
        if self.first is None:
            self.first = message_id
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"message {message_id}: {problem}")


def _compare(check: RowsCheck, row: Any, events: list[tuple[str, str, dict[str, Any]]]) -> None:
    expected = expected_row(events)
    if expected is None:
        check.flag(row.id, "has no 'received' journal event (inserted behind the store's back?)")
        return
    for column in _COLUMNS:
        actual = _normal(column, row[column])
        if actual != expected[column]:
            check.flag(row.id, f"{column} is {actual!r} but the journal says {expected[column]!r}")
            return


async def check_rows(conn: AsyncConnection) -> RowsCheck:
    """Compare every work item with the fold of its journal events."""
    check = RowsCheck()
    last_id = 0
    while True:
        rows = (await conn.execute(select(M).where(M.c.id > last_id).order_by(M.c.id).limit(_BATCH))).mappings().all()
        if not rows:
            return check
        first_id, last_id = int(rows[0]["id"]), int(rows[-1]["id"])
        query = (
            select(J.c.message_id, J.c.event, J.c.at, J.c.data)
            .where(J.c.message_id >= first_id, J.c.message_id <= last_id)
            .order_by(J.c.message_id, J.c.seq)
        )
        events: dict[int, list[tuple[str, str, dict[str, Any]]]] = {}
        for event in await conn.execute(query):
            try:
                data = json.loads(event.data)
            except ValueError:
                data = {}  # the chain walk reports the broken row itself
            events.setdefault(int(event.message_id), []).append((event.event, iso_utc(event.at), data))
        for row in rows:
            check.count += 1
            try:
                _compare(check, row, events.get(int(row["id"]), []))
            except (KeyError, TypeError, AttributeError) as exc:
                check.flag(int(row["id"]), f"its journal events cannot be replayed ({exc!r})")


def combine(chain: ChainCheck, rows: RowsCheck) -> ChainCheck:
    """One verdict for the chain walk and the replay (the chain's problems first)."""
    problems = (*chain.problems, *rows.problems)[:_MAX_PROBLEMS]
    ok = chain.ok and rows.first is None
    detail = chain.detail if not chain.ok or ok else rows.problems[0]
    if ok:
        detail = f"{chain.count} journal rows and {rows.count} work items verified"
    return ChainCheck(
        ok=ok,
        count=chain.count,
        first_broken_seq=chain.first_broken_seq,
        detail=detail,
        broken=chain.broken + rows.broken,
        problems=problems,
        messages=rows.count,
        first_broken_message=rows.first,
    )
