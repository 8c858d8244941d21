"""The read side of :class:`gateway.store.queue.Store`: lookups, lists, the search, the chain check.

Every method runs one read transaction (``session.Transactions.read``): a deferred
transaction, so in WAL mode it sees a consistent snapshot and never waits for a writer. The
queries themselves live in ``reads``, ``search``, ``journal`` and ``replay``; these methods
only give them a connection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import journal, reads, replay, search
from gateway.store.records import ChainCheck, JournalView, MessageView, StatusEventView
from gateway.store.session import Transactions

__all__ = ["Reads"]

Views: TypeAlias = list[MessageView]


class Reads:
    """The read methods of the store; a subclass sets ``_tx`` (the store's transactions)."""

    _tx: Transactions

    async def get(self, id: int) -> MessageView | None:
        """The work item ``id``, or ``None``."""
        return await self._tx.read(lambda conn: reads.get(conn, id))

    async def find_outbound(self, document_id: str) -> MessageView | None:
        """Our outbound document with this DocumentId: its submission, else its first send."""
        return await self._tx.read(lambda conn: reads.find_outbound(conn, document_id))

    async def find_imap_by_sha256(self, sha256: str) -> Views:
        """The items taken over IMAP whose bytes hash to ``sha256``, oldest first (the intake's dedupe)."""
        return await self._tx.read(lambda conn: reads.find_imap_by_sha256(conn, sha256))

    async def status_events(self, message_id: int) -> list[StatusEventView]:
        """The status trail of one outbound item, oldest first."""
        return await self._tx.read(lambda conn: reads.status_trail(conn, message_id))

    async def history(self, id: int) -> list[JournalView]:
        """Every journal row about one work item, in order."""
        return await self._tx.read(lambda conn: journal.history(conn, id))

    async def verify_chain(self) -> ChainCheck:
        """Recompute the journal's hash chain, then replay it against every work item's row.

        One read transaction: the chain and the rows are checked in the same snapshot
        (``gateway log verify-chain``).
        """

        async def work(conn: AsyncConnection) -> ChainCheck:
            return replay.combine(await journal.verify(conn), await replay.check_rows(conn))

        return await self._tx.read(work)

    async def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        direction: str | None = None,
        state: str | None = None,
        kind: str | None = None,
        parent_id: int | None = None,
        limit: int = 100,
    ) -> Views:
        """Work items, newest first, filtered by receive time (``since <= received_at < until``).

        Raises:
            ValueError: an unknown state or kind, a naive time, or a limit below 1.
        """
        query = reads.list_query(
            since=since, until=until, direction=direction, state=state, kind=kind, parent_id=parent_id, limit=limit
        )
        return await self._tx.read(lambda conn: reads.list_messages(conn, query))

    async def search(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        sender: str | None = None,
        recipient: str | None = None,
        code: str | None = None,
        verdict: str | None = None,
        direction: str | None = None,
        text: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> Views:
        """The archivist's search: work items matching every given filter, newest first.

        See ``search.search_query`` for the filters (``text``: words that must all occur).

        Raises:
            ValueError: a naive time, an unknown verdict or direction, or a limit below 1.
            NotFound: ``before_id`` names no work item.
        """
        filters: dict[str, Any] = dict(since=since, until=until, sender=sender, recipient=recipient, code=code)
        filters.update(verdict=verdict, direction=direction, text_query=text, before_id=before_id, limit=limit)
        return await self._tx.read(lambda conn: search.run_search(conn, **filters))

    async def count_by_state(self) -> dict[tuple[str, str], int]:
        """How many work items there are of each (kind, state) (``/metrics``)."""
        return await self._tx.read(search.count_by_state)
