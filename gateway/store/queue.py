"""The work queue and receipt log: :class:`Store` (design note §3 and §4).

Every change runs inside a write transaction that also appends its journal events (``journal``),
so a crash leaves either the change and its record or neither. Within a process all writes go
through one writer task that commits whatever is waiting together (``session``: group commit);
between processes, writers are serialised by SQLite's ``BEGIN IMMEDIATE``, or on PostgreSQL by
the row lock of the chain head (and the claim's ``FOR UPDATE SKIP LOCKED``). Each claim is
leased to this store's instance (``lease``): several instances share one queue on PostgreSQL.

Reads (``get``, ``list``, ``verify_chain``) use a deferred transaction: in WAL mode they see a
consistent snapshot and never wait for a writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.clock import Clock, require_aware
from gateway.errors import ConfigError
from gateway.store import lease, writes
from gateway.store.db import create_engine, is_memory, prepare_sqlite_file
from gateway.store.migrate import current_revision, head_revision, upgrade
from gateway.store.reading import Reads
from gateway.store.records import Intake, MessageView, StatusEventView, check_text
from gateway.store.session import Transactions
from gateway.store.tables import KINDS

__all__ = ["Store"]

Views: TypeAlias = list[MessageView]


class Store(Reads):
    """The receipt log and work queue (one per process; every method is a coroutine).

    Build it with :meth:`open`; close it with :meth:`close` (or ``async with``). The reads
    (``get``, ``list``, ``search``, ``verify_chain``…) come from :class:`~gateway.store.reading.Reads`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock,
        memory: bool = False,
        owner: str | None = None,
        lease_seconds: float = lease.DEFAULT_LEASE_SECONDS,
        name: lease.InstanceName | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, not {lease_seconds}")
        owner = owner or lease.tool_owner()
        self._tx = Transactions(engine, clock=clock, memory=memory, owner=owner, lease=timedelta(seconds=lease_seconds))
        self._name = name

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Clock,
        migrate: bool = True,
        instance: str | None = None,
        lease_seconds: float = lease.DEFAULT_LEASE_SECONDS,
    ) -> Store:
        """Connect to ``url`` and (by default) upgrade the schema to head.

        Args:
            url: a SQLAlchemy async URL, already resolved (see ``db.resolve_url``).
            clock: the time source for every recorded time.
            migrate: ``False`` for read-only tools, which then refuse a database not at head.
            instance: the name this process claims work under (``[store] instance``), held
                exclusively while the store is open (``lease.InstanceName``); ``None``: a name
                of its own for this store (tools, tests).
            lease_seconds: how long a claim is leased before other instances may take it back.

        Raises:
            ConfigError: the URL is unusable, the database refuses us, (``migrate=False``) there
                is no database file or its schema is not at head, or another running process
                holds ``instance``.
            TransientError: the database cannot be reached or upgraded now.
        """
        if instance is not None:
            lease.check_instance(instance, lease_seconds)
        prepare_sqlite_file(url, create=migrate)
        engine = create_engine(url)
        name = None if instance is None else lease.InstanceName(instance)
        try:
            if migrate:
                await upgrade(engine)
            else:
                await _require_head(engine)
            if name is not None:
                await name.acquire(engine)
        except BaseException:
            await engine.dispose()
            raise
        options: dict[str, Any] = {"owner": instance, "lease_seconds": lease_seconds, "name": name}
        return cls(engine, clock=clock, memory=is_memory(url), **options)

    async def close(self) -> None:
        """Let running transactions finish, give the instance name back, close every connection.

        (SQLite checkpoints the WAL.)
        """
        await self._tx.settle()
        if self._name is not None:
            await self._name.release()
        await self._tx.close()

    @property
    def owner(self) -> str:
        """The instance this store claims work for (``MessageView.owner`` of its claims)."""
        return self._tx.owner

    @property
    def lease_seconds(self) -> float:
        """How long a claim is leased (the scheduler renews every third of it)."""
        return self._tx.lease.total_seconds()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        """The engine (for tools and tests; the API above is the contract)."""
        return self._tx.engine

    # ------------------------------------------------------------------ writes

    async def record_intake(self, intake: Intake) -> MessageView:
        """Record a new work item in state ``incoming`` (journal ``received``); committed on return.

        ``received_at`` is the system receive time, taken now (design note §4).

        Raises:
            AlreadyRecorded: its ``imap_key`` or (``document_id``, ``recipient``) send key exists.
            NotFound: ``parent_id`` names no work item.
            TransientError: the database is unavailable (``StorageFull``: full).
        """

        async def work(tx: writes.Tx) -> MessageView:
            return await writes.insert_intake(tx, intake)

        return await self._tx.write(work, urgent=True)  # a client may wait for its 250

    async def claim(self, kinds: Iterable[str], now: datetime | None = None, limit: int = 1) -> Views:
        """Take due work: ``incoming``, and ``deferred`` whose ``next_attempt_at <= now``, to ``active``.

        Atomic: each item goes to exactly one claimer, however many claim at once. Each claim
        counts one attempt and is journaled.

        Args:
            kinds: work item kinds to take.
            now: the due time (default: the clock's now).
            limit: at most this many items, oldest first.

        Returns:
            The claimed items, as they are now (``active``).
        """
        wanted = sorted(set(kinds))
        unknown = [k for k in wanted if k not in KINDS]
        if unknown or limit < 1:
            raise ValueError(f"claim needs known kinds and a positive limit (got {unknown or limit})")
        if now is not None:
            require_aware(now)

        async def work(tx: writes.Tx) -> Views:
            return await writes.claim(tx, wanted, tx.at if now is None else now, limit)

        return await self._tx.write(work)

    async def transition(
        self,
        id: int,
        to_state: str,
        *,
        reason: str,
        event: str = "transition",
        expect: str | Iterable[str] | None = None,
        children: Sequence[Intake] = (),
        **fields: Any,
    ) -> MessageView:
        """Move a work item to ``to_state`` and set columns, journaling both.

        Args:
            id: the work item.
            to_state: one of the states of design note §3 (terminal ones by kind).
            reason: why, for the journal and operators.
            event: the journal event (``transition``, or ``delivered``/``sent``/``released``).
            expect: the state(s) the item must be in now (a worker passes ``"active"``).
            children: new work items created in the same transaction (a sealed submission's
                sends, a verdict's notices); their ``parent_id`` is ``id``.
            fields: columns to set (``records.UPDATABLE``), validated.

        Raises:
            NotFound: no such item.
            InvalidTransition: from a terminal state, to a terminal state of another kind, or
                not in ``expect``.
            AlreadyRecorded: a child's unique key exists (nothing is changed).
            ValueError: an unknown state, event or column, or a bad value.
        """

        async def work(tx: writes.Tx) -> MessageView:
            await writes.change(tx, id, to_state, reason=reason, event=event, expect=expect, fields=fields)
            await writes.spawn(tx, id, children)
            return await writes.fetch(tx.conn, id)

        return await self._tx.write(work)

    async def record_verdict(
        self,
        id: int,
        report: Mapping[str, Any],
        *,
        verdict: str,
        indication: str | None = None,
        findings: Sequence[Mapping[str, Any]] = (),
        policy_sha256: str | None = None,
        to_state: str | None = None,
        reason: str = "verdict",
        children: Sequence[Intake] = (),
        **fields: Any,
    ) -> MessageView:
        """Store a verification verdict (journal ``verdict`` with the report's SHA-256).

        Optionally moves the item (``to_state``) and creates the notices the verdict causes
        (``children``) in the same transaction (design note §3).

        Args:
            id: the work item.
            report: ``VerificationReport.to_json()``, kept whole in ``report``.
            verdict: the bottom line; ``indication``, ``findings``, ``policy_sha256`` the summary.
            to_state: where the item goes now, if anywhere (``reason`` says why).
            children: notices to create, as in :meth:`transition`.
            fields: further summary columns (``document_id``, ``from_organ``, ``code``…).

        Raises:
            Like :meth:`transition`.
        """
        check_text("verdict", verdict, limit=32)
        summary = {"verdict": verdict, "indication": indication, "findings": list(findings), "report": dict(report)}
        summary["policy_sha256"] = policy_sha256

        async def work(tx: writes.Tx) -> MessageView:
            await writes.verdict(tx, id, {**summary, **fields})
            if to_state is not None:
                await writes.change(tx, id, to_state, reason=reason, event="transition", expect=None, fields={})
            await writes.spawn(tx, id, children)
            return await writes.fetch(tx.conn, id)

        return await self._tx.write(work)

    async def defer(self, id: int, until: datetime, error: str) -> MessageView:
        """Park an item until ``until`` (infrastructure trouble); ``claim`` takes it again then.

        Raises:
            Like :meth:`transition`.
        """
        return await self.transition(id, "deferred", reason=error, next_attempt_at=until, last_error=error)

    async def hold(self, id: int, reason: str) -> MessageView:
        """Stop an item for an admin (HOUSE.md rule 13: never to the floor).

        Raises:
            Like :meth:`transition`.
        """
        return await self.transition(id, "hold", reason=reason, last_error=reason)

    async def recover_active(self) -> int:
        """At start: put ``active`` items back to ``incoming`` (a crash left them half done).

        Takes this instance's own items and those whose lease expired (a dead instance's),
        never a live instance's (``lease.py``).

        Returns:
            How many were recovered.
        """
        return await self._tx.write(lambda tx: lease.recover(tx, own=True))

    async def recover_expired(self) -> int:
        """While running: put other instances' ``active`` items whose lease expired back to ``incoming``.

        Returns:
            How many were recovered.
        """
        return await self._tx.write(lambda tx: lease.recover(tx, own=False))

    async def renew(self, ids: Iterable[int]) -> list[int]:
        """Extend this instance's leases on ``ids`` (the items its handlers are running).

        Returns:
            The ids it still holds; any other was taken over after its lease expired.
        """
        wanted = sorted(set(ids))
        return await self._tx.write(lambda tx: lease.renew(tx, wanted))

    async def add_status_event(
        self,
        message_id: int,
        status_code: str,
        *,
        description: str | None = None,
        reported_at: datetime | None = None,
        from_organ: str | None = None,
        inbound_id: int | None = None,
    ) -> StatusEventView:
        """Add a step to an outbound document's status trail (journal ``status``).

        Raises:
            NotFound: ``message_id`` or ``inbound_id`` names no work item.
            ValueError: a bad value.
        """

        async def work(tx: writes.Tx) -> StatusEventView:
            return await writes.status_event(
                tx,
                message_id,
                status_code,
                description=description,
                reported_at=reported_at,
                from_organ=from_organ,
                inbound_id=inbound_id,
            )

        return await self._tx.write(work)


async def _require_head(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        found = "an empty database" if current is None else f"revision {current}"
        raise ConfigError(f"the store is {found}, this gateway needs {head}", hint="run `gateway db upgrade`")
