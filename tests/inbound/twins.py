"""In-memory twins of the store and the spool (HOUSE.md rule 3), and small SMTP test helpers.

The twins behave like ``gateway.store`` where the edges can see it: ``record_intake`` commits
and returns a view, ``put`` is content-addressed and idempotent, trouble is a ``TransientError``.
Integration tests use the real store (``tests/inbound/test_intake_store.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.errors import TransientError
from gateway.store import Spooled
from gateway.store.records import AlreadyRecorded, Intake, MessageView, StorageFull
from gateway.store.spool import HEAD_BYTES

__all__ = ["MemorySpool", "MemoryStore", "MemoryWriter", "disk_full"]


@dataclass
class MemorySpool:
    """``gateway.store.Spool`` in memory; ``fail`` makes the next puts raise like a full disk."""

    files: dict[str, bytes] = field(default_factory=dict)
    fail: Exception | None = None
    calls: list[str] = field(default_factory=list)

    async def put(self, data: bytes) -> str:
        self.calls.append("put")
        if self.fail is not None:
            raise self.fail
        sha = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        self.files.setdefault(sha, bytes(data))
        return sha

    def writer(self) -> MemoryWriter:
        return MemoryWriter(self)

    def exists(self, sha256: str) -> bool:
        return sha256 in self.files


@dataclass
class MemoryWriter:
    """``gateway.store.SpoolWriter`` in memory: ``fail`` of its spool fails the commit."""

    spool: MemorySpool
    parts: list[bytes] = field(default_factory=list)
    state: str = "open"

    async def write(self, data: bytes) -> None:
        assert self.state == "open"
        self.parts.append(data)

    async def commit(self) -> Spooled:
        assert self.state == "open"
        self.state = "closed"
        data = b"".join(self.parts)
        self.spool.calls.append("commit")
        if self.spool.fail is not None:
            raise self.spool.fail
        sha = hashlib.sha256(data).hexdigest()
        self.spool.files.setdefault(sha, data)
        return Spooled(sha256=sha, size=len(data), head=data[:HEAD_BYTES])

    async def abort(self) -> None:
        if self.state == "open":
            self.state = "aborted"
            self.spool.calls.append("abort")


@dataclass
class MemoryStore:
    """The intake part of ``gateway.store.Store`` in memory."""

    rows: dict[int, MessageView] = field(default_factory=dict)
    fail: Exception | None = None
    calls: list[str] = field(default_factory=list)
    delay: float = 0.0

    async def record_intake(self, intake: Intake) -> MessageView:
        self.calls.append("record_intake")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        if intake.imap_key is not None:
            for row in self.rows.values():
                if row.imap_key == intake.imap_key:
                    raise AlreadyRecorded("imap_key", intake.imap_key, row.id)
        now = datetime.now(UTC)
        values: dict[str, Any] = dict.fromkeys(MessageView.__dataclass_fields__)
        values.update(
            id=len(self.rows) + 1,
            kind=intake.kind,
            direction=intake.direction,
            state="incoming",
            channel=intake.channel,
            mail_from=intake.mail_from,
            rcpt_to=intake.rcpt_to,
            message_id_header=intake.message_id_header,
            sha256=intake.sha256,
            size=intake.size,
            received_at=now,
            attempts=0,
            state_changed_at=now,
            imap_key=intake.imap_key,
        )
        view = MessageView(**values)
        self.rows[view.id] = view
        return view

    async def get(self, id: int) -> MessageView | None:
        return self.rows.get(id)

    async def find_imap_by_sha256(self, sha256: str) -> list[MessageView]:
        self.calls.append("find_imap_by_sha256")
        return [row for row in self.rows.values() if row.sha256 == sha256 and row.channel == "imap" and row.imap_key]


def disk_full() -> TransientError:
    """What the real spool raises on ENOSPC (a 452)."""
    return StorageFull("no space left on device")
