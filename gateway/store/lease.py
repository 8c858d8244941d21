"""Leases: several gateway instances on one queue, none stealing another's live work.

Each process that claims work has an **instance** name (``[store] instance``; default: the
host name). A claim sets the item's ``owner`` to it and ``lease_until`` to now + the lease
(``[store] lease_seconds``, 30 s by default); the scheduler renews the leases of the items its
handlers are running (:func:`renew`, every third of the lease). Invariants:

* an ``active`` item whose lease has not expired belongs to its owner: only the owner may move
  it on (``writes.change`` refuses anyone else), and nobody else recovers it;
* an ``active`` item whose lease has expired is abandoned (its instance died, or has not reached
  the database for a whole lease): any instance puts it back to ``incoming``
  (:func:`recover`, journaled with the old owner's name), and the next claim takes it. A slow
  owner that comes back later finds the item claimed by another and its writes refused
  (``InvalidTransition``): the work is not recorded twice;
* at start an instance also takes back its own ``active`` items at once, whatever their lease
  says: the process that claimed them under this name is gone. This is only safe because a name
  is held by one process at a time: on PostgreSQL :class:`InstanceName` holds a session advisory
  lock on it while the store is open, and a second process with the same name is refused at
  start. (SQLite is one instance by design: it has no such lock.)

The lease time itself is not evidence: renewals are not journaled, and the replay of
``verify_chain`` skips the column. The owner is journaled with every claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Sequence
from typing import Final

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import ConfigError
from gateway.store.tables import messages_table
from gateway.store.writes import Tx

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "InstanceName",
    "check_instance",
    "default_instance",
    "recover",
    "renew",
    "tool_owner",
]

M = messages_table
DEFAULT_LEASE_SECONDS: Final = 30.0
_NAME_LIMIT: Final = 255
"""The ``owner`` column's width."""
_NAME_WAIT_SECONDS: Final = 10.0
"""How long a start waits for its name: a killed predecessor's session may take a moment to end."""
_NAME_LOCK: Final = text("SELECT pg_try_advisory_lock(hashtextextended(:name, 0))")
_NAME_UNLOCK: Final = text("SELECT pg_advisory_unlock(hashtextextended(:name, 0))")


def check_instance(name: str, lease_seconds: float) -> None:
    """Refuse an unusable ``[store] instance`` or ``lease_seconds``.

    Raises:
        ConfigError: naming the key and what would do.
    """
    if not name or len(name) > _NAME_LIMIT or not name.isprintable():
        raise ConfigError(
            f"[store] instance {name!r} cannot be used", hint=f"a printable name of 1 to {_NAME_LIMIT} characters"
        )
    if not lease_seconds > 0:
        raise ConfigError(f"[store] lease_seconds must be positive, not {lease_seconds}", hint="e.g. 30.0")


def default_instance() -> str:
    """The instance name when ``[store] instance`` is not set: this host's name."""
    return socket.gethostname() or "gateway"


def tool_owner() -> str:
    """A name of its own for a store that never claims under a fixed name (CLI tools, tests)."""
    return f"{default_instance()}:{os.getpid()}:{secrets.token_hex(3)}"


async def renew(tx: Tx, ids: Sequence[int]) -> list[int]:
    """Extend the leases of ``ids`` that this instance still holds (not journaled).

    Returns:
        The ids still held (active, owned by ``tx.owner``); the others were taken over.
    """
    if not ids:
        return []
    query = (
        update(M)
        .where(M.c.id.in_(list(ids)), M.c.state == "active", M.c.owner == tx.owner)
        .values(lease_until=tx.at + tx.lease)
        .returning(M.c.id)
    )
    return sorted((await tx.conn.execute(query)).scalars())


async def recover(tx: Tx, *, own: bool) -> int:
    """Put abandoned ``active`` items back to ``incoming``, journaling each.

    Args:
        tx: the write transaction (its owner is this instance).
        own: also this instance's own items, whatever their lease (at start only).

    Returns:
        How many.
    """
    expired = or_(M.c.owner.is_(None), M.c.lease_until.is_(None), M.c.lease_until <= tx.at)
    if own:
        expired = or_(expired, M.c.owner == tx.owner)
    else:
        # A renewal of our own that failed for a while is not abandonment: the handler still runs.
        expired = and_(expired, or_(M.c.owner.is_(None), M.c.owner != tx.owner))
    query = (
        select(M.c.id, M.c.owner)
        .where(M.c.state == "active", expired)
        .order_by(M.c.id)
        .with_for_update(skip_locked=True, key_share=True)
    )
    found = (await tx.conn.execute(query)).all()
    if found:
        ids = [row.id for row in found]
        await tx.conn.execute(
            update(M).where(M.c.id.in_(ids)).values(state="incoming", state_changed_at=tx.at, lease_until=None)
        )
    for row in found:
        reason = "recovered at start" if row.owner in (None, tx.owner) else f"lease of {row.owner} expired"
        tx.record(row.id, "transition", {"from": "active", "to": "incoming", "reason": reason, "fields": {}})
    return len(found)


class InstanceName:
    """Holds an instance name for one process while its store is open (PostgreSQL).

    A session advisory lock keyed by the name, on a connection kept for the purpose: the
    database releases it when the process ends, however it ends (a killed process's connection
    closes; a vanished host's is cut by TCP keepalive, see ``db.POSTGRES_SESSION``).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._conn: AsyncConnection | None = None

    async def acquire(self, engine: AsyncEngine) -> None:
        """Take the name, waiting a few seconds for a predecessor's session to end.

        Raises:
            ConfigError: another running process holds the name.
        """
        if engine.dialect.name != "postgresql":
            return
        conn = await engine.connect()
        deadline = time.monotonic() + _NAME_WAIT_SECONDS
        try:
            while not (await conn.execute(_NAME_LOCK, {"name": self.name})).scalar():
                await conn.rollback()
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"[store] instance {self.name!r} is in use by another running gateway on this database",
                        hint="give each instance its own [store] instance name",
                    )
                await asyncio.sleep(0.5)
            await conn.commit()  # the lock is the session's; end the transaction that took it
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def release(self) -> None:
        """Give the name back (closing the store does; a killed process's session does too)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # A connection lost meanwhile (a server restart) took the lock with it.
            with contextlib.suppress(DBAPIError, OSError):
                await conn.execute(_NAME_UNLOCK, {"name": self.name})
                await conn.commit()
        finally:
            with contextlib.suppress(DBAPIError, OSError):
                await conn.close()
