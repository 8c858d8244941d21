"""Shared pieces of the store tests: a real SQLite file in a temp dir, intakes, raw SQL access."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.clock import Clock, FixedClock
from gateway.store import Intake, Store

__all__ = ["T0", "db_url", "intake", "open_store", "raw_sql", "sha"]

T0 = datetime(2025, 3, 14, 2, 5, 7, 123456, tzinfo=UTC)


def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def intake(n: int | str = 0, **changes: Any) -> Intake:
    values: dict[str, Any] = {
        "kind": "inbound",
        "channel": "smtp",
        "sha256": sha(f"mail {n}"),
        "size": 100 + (n if isinstance(n, int) else 0),
        "mail_from": "vanthu@haiphong.gov.vn",
        "rcpt_to": ("vanthu@tayninh.gov.vn",),
        "message_id_header": f"<{n}@haiphong.gov.vn>",
    }
    values.update(changes)
    return Intake(**values)


@asynccontextmanager
async def open_store(tmp_path: Path, clock: Clock | None = None) -> AsyncIterator[Store]:
    store = await Store.open(db_url(tmp_path), clock=clock or FixedClock(T0))
    try:
        yield store
    finally:
        await store.close()


def raw_sql(tmp_path: Path, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run SQL behind the store's back (the tamperer's view, or a plain reader's)."""
    with closing(sqlite3.connect(tmp_path / "gateway.db")) as conn, conn:
        return list(conn.execute(statement, params).fetchall())
