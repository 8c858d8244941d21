"""The spool: original mail bytes, unaltered, addressed by SHA-256 (Hải Phòng Art. 14).

``put`` and ``SpoolWriter.commit`` are the durability promise behind every 250 (HOUSE.md rule
13, the Postfix way): when they return, the bytes and the directory entry that names them are on
disk. Layout::

    <directory>/<sha[:2]>/<sha>      read-only files (0o440 by default)
    <directory>/<sha[:2]>/.tmp-*     a ``put`` in progress (or left by a crash: harmless)
    <directory>/.tmp-*               a streamed write in progress (its name is known only at
                                     the end; left by a crash: harmless)

A mail arriving over SMTP is streamed (``Spool.writer``): each chunk is hashed and written as it
comes, in a worker thread, so a 90 MB mail never sits in memory whole (issue 7, P4); at the end
the file is fsynced, renamed to its SHA-256 and its directory fsynced. Readers that should not
load a whole mail use ``open`` (a checked file object) or ``path``.

The 256 fan-out directories are made (and fsynced into the root) once, before the first write,
so a put never creates a directory whose own entry might not be durable yet.

Disk trouble is ``TransientError`` (``StorageFull`` for ENOSPC/EDQUOT: SMTP 452); a missing or
corrupted file is a ``SpoolError``: wrong bytes are never returned.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Self

from gateway.errors import GatewayError, TransientError
from gateway.files import fsync_directory, write_fully
from gateway.store.records import SHA256_RE, StorageFull

__all__ = ["HEAD_BYTES", "Spool", "SpoolCorrupted", "SpoolError", "SpoolMissing", "SpoolWriter", "Spooled"]

_FULL: Final = (errno.ENOSPC, errno.EDQUOT)
_DIR_MODE: Final = 0o750
HEAD_BYTES: Final = 64 * 1024
"""How much of a streamed mail ``Spooled.head`` keeps (its header block, for the Message-ID)."""


class SpoolError(GatewayError):
    """A spooled mail cannot be given back as it was stored (needs an admin)."""


class SpoolMissing(SpoolError):
    """No file for that SHA-256."""


class SpoolCorrupted(SpoolError):
    """The file's bytes no longer hash to its name."""


def _disk_error(action: str, path: Path, exc: OSError) -> TransientError:
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


class Spool:
    """A content-addressed directory of original mails.

    Args:
        directory: the spool root (``[store] spool``, already resolved); created when missing.
        mode: permissions of stored files (read-only: evidence is never edited in place).
    """

    def __init__(self, directory: Path, *, mode: int = 0o440) -> None:
        self.directory = Path(directory)
        self.mode = mode
        self._ready = False
        self._ready_lock = threading.Lock()

    def path(self, sha256: str) -> Path:
        """Where the mail with this SHA-256 lives (whether or not it exists).

        Raises:
            ValueError: not 64 lowercase hex digits (nothing else may become a path).
        """
        if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256):
            raise ValueError("a spool name is 64 lowercase hex digits")
        return self.directory / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether the mail is in the spool (a cheap check; ``get`` verifies the bytes)."""
        return self.path(sha256).is_file()

    async def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its SHA-256 (hex).

        Idempotent: storing the same bytes again keeps the existing file.

        Raises:
            StorageFull: the disk or quota is full (SMTP 452).
            TransientError: any other disk trouble (SMTP 451).
        """
        return await asyncio.to_thread(self._put, bytes(data))

    def writer(self) -> SpoolWriter:
        """A new streamed write: ``write`` chunks as they arrive, then ``commit`` (or ``abort``)."""
        return SpoolWriter(self)

    async def open(self, sha256: str) -> BinaryIO:
        """Open a mail for reading without loading it, after checking that it hashes to ``sha256``.

        The check reads the file once, in a thread, in constant memory. The caller closes the
        file (it is an ordinary binary file object, positioned at the start).

        Raises:
            ValueError: ``sha256`` is not a spool name.
            SpoolMissing: no such file.
            SpoolCorrupted: the bytes changed.
            TransientError: the disk cannot be read now.
        """
        return await asyncio.to_thread(self._open, sha256)

    async def get(self, sha256: str) -> bytes:
        """Read a mail back, checking that its bytes still hash to ``sha256``.

        Raises:
            ValueError: ``sha256`` is not a spool name.
            SpoolMissing: no such file.
            SpoolCorrupted: the bytes changed.
            TransientError: the disk cannot be read now.
        """
        return await asyncio.to_thread(self._get, sha256)

    # The work, in a thread (HOUSE.md rule 4: the event loop never waits for a disk).

    def _prepare(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            root = self.directory
            try:
                root.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
                for index in range(256):
                    (root / f"{index:02x}").mkdir(exist_ok=True, mode=_DIR_MODE)
                fsync_directory(root)
                fsync_directory(root.resolve().parent)
            except OSError as exc:
                raise _disk_error("prepare", root, exc) from exc
            self._ready = True

    def _put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self._prepare()
        final = self.path(sha)
        folder = final.parent
        try:
            if self._already(final, sha):
                return sha
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        except OSError as exc:
            raise _disk_error("write to", folder, exc) from exc
        try:
            try:
                os.fchmod(fd, self.mode)
                write_fully(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise _disk_error("write", final, exc) from exc
        self._publish(Path(tmp), final)
        return sha

    def _already(self, final: Path, sha256: str) -> bool:
        """Whether an intact copy is stored already (then made durable: its rename may not be yet)."""
        if not self._intact(final, sha256):
            return False
        fsync_directory(final.parent)
        return True

    def _publish(self, tmp: Path, final: Path) -> None:
        """Rename a written, fsynced temp file to its final name and make the name durable."""
        try:
            os.replace(tmp, final)
            fsync_directory(final.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _disk_error("write", final, exc) from exc

    @staticmethod
    def _intact(path: Path, sha256: str) -> bool:
        # Same bytes again is rare (a client retrying after a lost 250), so checking the old copy
        # costs little; a damaged one is replaced by the fresh copy instead of being acked.
        try:
            with path.open("rb") as existing:
                return hashlib.file_digest(existing, "sha256").hexdigest() == sha256
        except FileNotFoundError:
            return False

    def _open(self, sha256: str) -> BinaryIO:
        path = self.path(sha256)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise SpoolMissing(f"spool: no mail {sha256} (expected at {path})") from None
        except OSError as exc:
            raise _disk_error("read", path, exc) from exc
        try:
            actual = hashlib.file_digest(file, "sha256").hexdigest()
            file.seek(0)
        except OSError as exc:
            file.close()
            raise _disk_error("read", path, exc) from exc
        if actual != sha256:
            file.close()
            raise SpoolCorrupted(f"spool: {path} is corrupted (its bytes hash to {actual})")
        return file

    def _get(self, sha256: str) -> bytes:
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SpoolMissing(f"spool: no mail {sha256} (expected at {path})") from None
        except OSError as exc:
            raise _disk_error("read", path, exc) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise SpoolCorrupted(f"spool: {path} is corrupted (its bytes hash to {actual})")
        return data


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
            raise _disk_error("write", tmp, exc) from exc

    def _create(self) -> None:
        spool = self.spool
        spool._prepare()
        try:
            fd, name = tempfile.mkstemp(prefix=".tmp-", dir=spool.directory)
        except OSError as exc:
            raise _disk_error("write to", spool.directory, exc) from exc
        self._fd, self._tmp = fd, Path(name)
        try:
            os.fchmod(fd, spool.mode)
        except OSError as exc:
            raise _disk_error("write", self._tmp, exc) from exc

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
            raise _disk_error("write", where, exc) from exc
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
