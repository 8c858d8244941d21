"""The spool's streamed writer: one mail written piece by piece, named by its SHA-256 at the end.

Part of ``gateway.store.spool`` (see its docstring for the layout and the durability promise),
kept apart because it is a state machine of its own. A mail arriving over SMTP is streamed
(``Spool.writer``): each chunk is hashed and written as it comes, in a worker thread, so a 90 MB
mail never sits in memory whole (issue 7, P4); at the end the file is fsynced, renamed to its
SHA-256 and its directory fsynced, exactly as ``Spool.put`` does for bytes in hand.

Also here, because the writer and the spool share them: the temp-file prefix (the sweep of
``gateway.store.spoolsweep`` removes only names that start with it), what ``Spooled`` keeps of a
mail's head, and how a disk error becomes a ``TransientError``.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from gateway.errors import TransientError
from gateway.store.records import StorageFull

if TYPE_CHECKING:
    from gateway.store.spool import Spool

__all__ = ["HEAD_BYTES", "TMP_PREFIX", "SpoolWriter", "Spooled", "disk_error"]

_FULL: Final = (errno.ENOSPC, errno.EDQUOT)
HEAD_BYTES: Final = 64 * 1024
"""How much of a streamed mail ``Spooled.head`` keeps (its header block, for the Message-ID)."""
TMP_PREFIX: Final = ".tmp-"
"""The name prefix of every file the spool is still writing (``put`` and ``SpoolWriter``)."""


def disk_error(action: str, path: Path, exc: OSError) -> TransientError:
    """The spool's disk trouble as a ``TransientError`` (``StorageFull`` for ENOSPC/EDQUOT: SMTP 452).

    Args:
        action: what failed, for the message (``"write"``, ``"read"``...).
        path: the file or directory concerned.
        exc: the error from the operating system.

    Returns:
        The error to raise (chained to ``exc`` by the caller).
    """
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return StorageFull(f"spool: cannot {action} {path}: {reason} (disk full)")
    return TransientError(f"spool: cannot {action} {path}: {reason}")


@dataclass(frozen=True)
class Spooled:
    """A mail stored by :class:`SpoolWriter`: durable once this exists."""

    sha256: str
    size: int
    head: bytes
    """The first ``HEAD_BYTES`` of the mail (or all of it when shorter)."""


class SpoolWriter:
    """One mail streamed into the spool (``Spool.writer``); use it once.

    ``write`` hands each chunk to a worker thread, which hashes it and appends it to a temp file
    in the spool root, and returns without waiting for that thread: the caller reads the next
    chunk from the network while the previous one is written (one chunk in flight at most; a
    write error surfaces at the next ``write`` or at ``commit``). ``commit`` fsyncs the file,
    renames it to its SHA-256 and fsyncs the directory (``Spool.put``'s promise); ``abort`` (or
    leaving ``async with`` without a commit) removes the temp file.

    States: open (writing) → closing (``commit`` running: it alone finishes or removes the
    file, whatever happens to its caller) → closed. ``abort`` acts on an open writer only, so
    it is safe to call whenever (e.g. in a ``finally`` next to a shielded commit).

    Args:
        spool: where the mail goes.
    """

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.size = 0
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self._fd: int | None = None
        self._tmp: Path | None = None
        self._pending: asyncio.Future[None] | None = None
        self._state = "open"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.abort()

    async def write(self, data: bytes) -> None:
        """Append ``data`` (written in a thread while the caller goes on).

        Raises:
            StorageFull: the disk or quota is full (SMTP 452), for this or the previous chunk.
            TransientError: any other disk trouble (SMTP 451).
            RuntimeError: the writer is committed or aborted already.
        """
        self._check_open()
        await self._settle()
        if not data:
            return
        self.size += len(data)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self._pending = asyncio.ensure_future(asyncio.to_thread(self._append, data))

    async def commit(self) -> Spooled:
        """Make the mail durable under its SHA-256 and return what was stored.

        Idempotent with ``put``: bytes stored already keep the existing file. When it raises
        (or its caller is cancelled), nothing is stored and the temp file is removed.

        Raises:
            StorageFull: the disk or quota is full (SMTP 452).
            TransientError: any other disk trouble (SMTP 451).
            RuntimeError: the writer is committed or aborted already.
        """
        self._check_open()
        self._state = "closing"
        try:
            await self._settle()
            # Shielded: once started, the rename happens or the file is removed, in the thread.
            sha = await asyncio.shield(asyncio.to_thread(self._finish))
        except BaseException:
            await self._close()
            raise
        self._state = "closed"
        return Spooled(sha256=sha, size=self.size, head=bytes(self._head))

    async def abort(self) -> None:
        """Drop what was written (nothing is stored). Does nothing unless the writer is open."""
        if self._state == "open":
            await self._close()

    def _check_open(self) -> None:
        if self._state != "open":
            raise RuntimeError("this spool writer is committed or aborted already")

    async def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def _close(self) -> None:
        self._state = "closed"
        pending, self._pending = self._pending, None
        if pending is not None:
            # The thread cannot be stopped: let it end before its file is closed under it.
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()
        if self._fd is not None or self._tmp is not None:
            await asyncio.to_thread(self._discard)

    # In a worker thread (HOUSE.md rule 4: the event loop never waits for a disk or a hash).

    def _append(self, data: bytes) -> None:
        if self._fd is None:
            self._create()
        fd, tmp = self._opened()
        self._hash.update(data)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            raise disk_error("write", tmp, exc) from exc

    def _create(self) -> None:
        spool = self.spool
        spool._prepare()
        try:
            fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=spool.directory)
        except OSError as exc:
            raise disk_error("write to", spool.directory, exc) from exc
        self._fd, self._tmp = fd, Path(name)
        try:
            os.fchmod(fd, spool.mode)
        except OSError as exc:
            raise disk_error("write", self._tmp, exc) from exc

    def _opened(self) -> tuple[int, Path]:
        if self._fd is None or self._tmp is None:  # pragma: no cover - _create sets both or raises
            raise RuntimeError("the spool writer has no open file")
        return self._fd, self._tmp

    def _finish(self) -> str:
        sha = self._hash.hexdigest()
        final = self.spool.path(sha)
        try:
            if self._fd is None:
                self._create()  # an empty mail is stored too
            fd, tmp = self._opened()
            if self.spool._already(final, sha):  # a retry after a lost 250: keep the old file
                self._discard()
                return sha
            os.fsync(fd)
            self._fd = None
            os.close(fd)
        except OSError as exc:
            where = self._tmp or self.spool.directory
            self._discard()
            raise disk_error("write", where, exc) from exc
        except BaseException:
            self._discard()
            raise
        self._tmp = None
        self.spool._publish(tmp, final)
        return sha

    def _discard(self) -> None:
        fd, self._fd = self._fd, None
        tmp, self._tmp = self._tmp, None
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
