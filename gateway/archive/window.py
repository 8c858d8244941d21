"""The inbound work items of a time window, read in keyset pages (rule replay, partner report).

Pages follow ``Store.search``'s ``before_id`` (newest first, so a page never shifts when new
mail arrives during the read); the whole window is returned oldest first.
"""

from __future__ import annotations

from datetime import datetime

from gateway.store import MessageView, Store

__all__ = ["PAGE", "inbound_since"]

PAGE = 500
"""Work items per read transaction."""


async def inbound_since(store: Store, since: datetime | None, *, page: int = PAGE) -> list[MessageView]:
    """Every inbound work item received at or after ``since`` (``None``: all), oldest first.

    Raises:
        ValueError: ``since`` is naive, or ``page`` is below 1.
        TransientError: the database cannot be read now.
    """
    found: list[MessageView] = []
    before: int | None = None
    while True:
        batch = await store.search(since=since, direction="in", before_id=before, limit=page)
        found.extend(batch)
        if len(batch) < page:
            return list(reversed(found))
        before = batch[-1].id
