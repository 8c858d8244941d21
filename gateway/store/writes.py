"""The statements behind :class:`gateway.store.queue.Store`, each run inside one write transaction.

Every function takes a :class:`Tx` (connection, the transaction's time, the journal events it
will append) and checks its inputs before writing. What each change records in the journal is
decided here, so that the journal alone tells the whole history of a row: every changed column
is in its event's data (large JSON values by their SHA-256).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import folding, journal
from gateway.store.records import (
    AlreadyRecorded,
    Intake,
    InvalidTransition,
    MessageView,
    NotFound,
    StatusEventView,
    StoreError,
    check_fields,
    check_text,
)
from gateway.store.tables import STATES, TERMINAL, messages_table, status_events_table

__all__ = [
    "TRANSITION_EVENTS",
    "Tx",
    "change",
    "claim",
    "claim_query",
    "fetch",
    "insert_intake",
    "spawn",
    "status_event",
    "summarise",
    "verdict",
]

M = messages_table
S = status_events_table
TRANSITION_EVENTS = ("transition", "delivered", "sent", "released")
"""The journal events a state change may be recorded as."""
_ALL_TERMINAL = frozenset().union(*TERMINAL.values())
_LARGE = ("report", "findings")
_INSERT_ITEM = insert(M).returning(*M.c)
"""Built once: the values go as parameters, so each intake skips building and keying a statement."""


@dataclass
class Tx:
    """One open write transaction: its connection, its time, who writes, the events it will journal.

    ``owner`` is the writing instance (``lease.py``): claims are leased to it for ``lease``.
    """

    conn: AsyncConnection
    at: datetime
    owner: str
    lease: timedelta
    events: list[journal.PendingEvent] = field(default_factory=list)

    def record(self, message_id: int | None, event: str, data: Mapping[str, Any]) -> None:
        """Journal ``event`` when the transaction ends (in the same transaction).

        Raises:
            ValueError: an unknown event, or data without a canonical JSON form.
        """
        self.events.append(journal.PendingEvent(message_id, event, self.at, data))


def _new_id(key: Any) -> int:
    if key is None or key[0] is None:  # pragma: no cover - every insert here has an integer key
        raise StoreError("the database returned no id for a new row")
    return int(key[0])


def summarise(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values as the journal keeps them: times in ISO UTC, reports by their SHA-256."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, datetime):
            out[name] = journal.iso_utc(value)
        elif name in _LARGE and value is not None:
            out[f"{name}_sha256"] = journal.json_sha256(value)
        else:
            out[name] = value
    return out


async def fetch(conn: AsyncConnection, id: int) -> MessageView:
    """Read one work item.

    Raises:
        NotFound: no such item.
    """
    row = (await conn.execute(select(M).where(M.c.id == id))).mappings().first()
    if row is None:
        raise NotFound(f"no work item {id}")
    return MessageView.from_row(row)


async def _require(conn: AsyncConnection, id: int, what: str) -> None:
    if (await conn.execute(select(M.c.id).where(M.c.id == id))).first() is None:
        raise NotFound(f"{what} {id} names no work item")


def _integrity(exc: IntegrityError) -> StoreError:
    # SQLite names the columns, PostgreSQL the constraint: either way we know which key it was.
    text = str(exc.orig)
    if "imap_key" in text:
        return AlreadyRecorded("imap_key", "?", None)
    if "uq_messages_send" in text or "document_id" in text:
        return AlreadyRecorded("send", "?", None)
    return StoreError(f"the database refused the change ({text})")


async def insert_intake(tx: Tx, intake: Intake) -> MessageView:
    """Insert a validated intake as ``incoming`` and journal ``received``.

    Returns:
        The new row (read back by ``RETURNING``: one statement, SQLite 3.35+ and PostgreSQL).

    Raises:
        AlreadyRecorded: the IMAP key or the send key is taken (``existing_id`` says by whom).
        NotFound: ``parent_id`` names no work item.
    """
    conn = tx.conn
    if intake.parent_id is not None:
        await _require(conn, intake.parent_id, "parent_id")
    # Looked up first for a clear error naming the holder; the unique indexes stay the guard
    # against a concurrent writer on PostgreSQL (see _integrity).
    if intake.imap_key is not None:
        held = (await conn.execute(select(M.c.id).where(M.c.imap_key == intake.imap_key))).scalar()
        if held is not None:
            raise AlreadyRecorded("imap_key", intake.imap_key, held)
    if intake.kind == "send":
        query = select(M.c.id).where(
            M.c.kind == "send", M.c.document_id == intake.document_id, M.c.recipient == intake.recipient
        )
        held = (await conn.execute(query)).scalar()
        if held is not None:
            raise AlreadyRecorded("send", f"{intake.document_id} to {intake.recipient}", held)
    values: dict[str, Any] = {
        "kind": intake.kind,
        "direction": intake.direction,
        "state": "incoming",
        "channel": intake.channel,
        "mail_from": intake.mail_from,
        "rcpt_to": list(intake.rcpt_to),
        "message_id_header": intake.message_id_header,
        "sha256": intake.sha256,
        "size": intake.size,
        "received_at": tx.at,
        "document_id": intake.document_id,
        "attempts": 0,
        "state_changed_at": tx.at,
        "parent_id": intake.parent_id,
        "recipient": intake.recipient,
        "imap_key": intake.imap_key,
    }
    if intake.status_code is not None:
        # Only when set (a notice's): the ``received`` data of every other item keeps its shape,
        # and the replay reads an absent column as ``None`` (``replay.expected_row``), so rows
        # journaled before notices carried a code and rows journaled after both verify.
        values["status_code"] = intake.status_code
    try:
        row = (await conn.execute(_INSERT_ITEM, values)).mappings().one()
    except IntegrityError as exc:
        raise _integrity(exc) from exc
    view = MessageView.from_row(row)
    await folding.refresh(conn, view.id, values, new=True)
    tx.record(view.id, "received", summarise({k: v for k, v in values.items() if k not in ("state_changed_at",)}))
    return view


def claim_query(kinds: Sequence[str], due_at: datetime, limit: int) -> Select[Any]:
    """The claim's selection: due work of ``kinds``, oldest first, rows locked for this claimer.

    The one query that differs between one process and several: ``SKIP LOCKED`` lets
    PostgreSQL claimers pass rows another transaction has locked instead of waiting or taking
    them twice (``NO KEY UPDATE``: the journal's foreign-key checks on the row do not wait);
    SQLite renders no ``FOR UPDATE`` at all (its ``BEGIN IMMEDIATE`` already makes the claimer
    the only writer). Active items whose lease expired are not claimed here: ``lease.recover``
    first puts them back to ``incoming``, journaled.
    """
    due = or_(M.c.state == "incoming", and_(M.c.state == "deferred", M.c.next_attempt_at <= due_at))
    return (
        select(M.c.id, M.c.state, M.c.attempts)
        .where(M.c.kind.in_(kinds), due)
        .order_by(M.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, key_share=True)
    )


async def claim(tx: Tx, kinds: Sequence[str], due_at: datetime, limit: int) -> list[MessageView]:
    """Move due items to ``active`` (one attempt more each), leased to ``tx.owner``, journaling each claim.

    Returns:
        The claimed items as they are now.
    """
    found = (await tx.conn.execute(claim_query(kinds, due_at, limit))).all()
    if not found:
        return []
    ids = [row.id for row in found]
    lease = {"owner": tx.owner, "lease_until": tx.at + tx.lease}
    await tx.conn.execute(
        update(M)
        .where(M.c.id.in_(ids))
        .values(state="active", state_changed_at=tx.at, attempts=M.c.attempts + 1, **lease)
    )
    for row in found:
        fields = {"attempts": row.attempts + 1, "owner": tx.owner}
        tx.record(row.id, "transition", {"from": row.state, "to": "active", "reason": "claimed", "fields": fields})
    rows = (await tx.conn.execute(select(M).where(M.c.id.in_(ids)).order_by(M.c.id))).mappings()
    return [MessageView.from_row(r) for r in rows]


async def _lock_item(tx: Tx, id: int) -> Any:
    """Read and lock an item about to change; refuse an ``active`` one leased to another instance.

    ``NO KEY UPDATE`` (PostgreSQL): an admin's retry and a worker's finish do not interleave,
    while foreign-key checks on the row (journal rows, children) need not wait.

    Raises:
        NotFound: no such item.
        InvalidTransition: another instance holds it (this one's lease was taken over).
    """
    query = select(M.c.kind, M.c.state, M.c.owner).where(M.c.id == id).with_for_update(key_share=True)
    row = (await tx.conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no work item {id}")
    if row.state == "active" and row.owner not in (None, tx.owner):
        raise InvalidTransition(
            f"work item {id} is active under instance {row.owner}, not {tx.owner} (its lease was taken over)"
        )
    return row


def _check_move(view_kind: str, current: str, to_state: str) -> None:
    if to_state not in STATES:
        raise ValueError(f"unknown state {to_state!r}; known: {', '.join(STATES)}")
    if current in TERMINAL[view_kind]:
        raise InvalidTransition(f"the {view_kind} item is {current} (finished) and cannot become {to_state}")
    if to_state in _ALL_TERMINAL and to_state not in TERMINAL[view_kind]:
        ends = " or ".join(sorted(TERMINAL[view_kind]))
        raise InvalidTransition(f"a {view_kind} item ends {ends}, not {to_state}")


async def change(
    tx: Tx,
    id: int,
    to_state: str,
    *,
    reason: str,
    event: str,
    expect: str | Iterable[str] | None,
    fields: Mapping[str, Any],
) -> None:
    """Move ``id`` to ``to_state`` and set ``fields``, journaling ``event``.

    Raises:
        NotFound, InvalidTransition, AlreadyRecorded, ValueError: see ``Store.transition``.
    """
    check_text("reason", reason)
    if event not in TRANSITION_EVENTS:
        raise ValueError(f"a state change is journaled as one of {', '.join(TRANSITION_EVENTS)}, not {event!r}")
    values = check_fields(fields)
    row = await _lock_item(tx, id)
    _check_move(row.kind, row.state, to_state)
    if expect is not None:
        allowed = {expect} if isinstance(expect, str) else set(expect)
        if row.state not in allowed:
            raise InvalidTransition(f"work item {id} is {row.state}, not {' or '.join(sorted(allowed))}")
    changed = dict(values)
    if to_state != row.state:
        changed.update(state=to_state, state_changed_at=tx.at)
        if row.state == "active":
            changed.update(lease_until=None)  # not evidence: not journaled (lease.py)
    if changed:
        try:
            await tx.conn.execute(update(M).where(M.c.id == id).values(**changed))
        except IntegrityError as exc:
            raise _integrity(exc) from exc
        await folding.refresh(tx.conn, id, changed)
    tx.record(id, event, {"from": row.state, "to": to_state, "reason": reason, "fields": summarise(values)})


async def verdict(tx: Tx, id: int, fields: Mapping[str, Any]) -> None:
    """Store a verdict's summary columns and journal ``verdict``.

    Raises:
        NotFound: no such item.
        InvalidTransition: the item is finished, or active under another instance.
        ValueError: a bad column or value.
    """
    values = check_fields(fields)
    row = await _lock_item(tx, id)
    if row.state in TERMINAL[row.kind]:
        raise InvalidTransition(f"work item {id} is {row.state} (finished): its verdict is final")
    try:
        await tx.conn.execute(update(M).where(M.c.id == id).values(**values))
    except IntegrityError as exc:
        raise _integrity(exc) from exc
    await folding.refresh(tx.conn, id, values)
    tx.record(id, "verdict", summarise(values))


async def spawn(tx: Tx, parent_id: int, children: Sequence[Intake]) -> list[int]:
    """Create ``children`` of ``parent_id`` in the caller's transaction.

    Raises:
        ValueError: a child names another parent.
        AlreadyRecorded: a child's unique key is taken.
    """
    made = []
    for child in children:
        if child.parent_id not in (None, parent_id):
            raise ValueError(f"a child of {parent_id} names parent {child.parent_id}")
        made.append((await insert_intake(tx, replace(child, parent_id=parent_id))).id)
    return made


async def status_event(
    tx: Tx,
    message_id: int,
    status_code: str,
    *,
    description: str | None,
    reported_at: datetime | None,
    from_organ: str | None,
    inbound_id: int | None,
) -> StatusEventView:
    """Insert one status-trail step and journal ``status`` on the outbound item.

    Raises:
        NotFound: ``message_id`` or ``inbound_id`` names no work item.
        ValueError: a bad value.
    """
    check_text("status_code", status_code, limit=16)
    check_text("description", description, optional=True)
    check_text("from_organ", from_organ, limit=255, optional=True)
    if reported_at is not None and (reported_at.tzinfo is None or reported_at.utcoffset() is None):
        raise ValueError("reported_at is a naive datetime; the store takes aware times")
    await _require(tx.conn, message_id, "message_id")
    if inbound_id is not None:
        await _require(tx.conn, inbound_id, "inbound_id")
    values: dict[str, Any] = {
        "message_id": message_id,
        "status_code": status_code,
        "description": description,
        "reported_at": reported_at,
        "received_at": tx.at,
        "from_organ": from_organ,
        "inbound_id": inbound_id,
    }
    result = await tx.conn.execute(insert(S).values(**values))
    new_id = _new_id(result.inserted_primary_key)
    tx.record(message_id, "status", summarise({"status_event_id": new_id, **values}))
    row = (await tx.conn.execute(select(S).where(S.c.id == new_id))).mappings().one()
    return StatusEventView(**row)
