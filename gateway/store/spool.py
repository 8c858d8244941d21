"""The spool: original mail bytes, unaltered, addressed by SHA-256 (Hải Phòng Art. 14).

``put`` and ``SpoolWriter.commit`` are the durability promise behind every 250 (HOUSE.md rule
13, the Postfix way): when they return, the bytes and the directory entry that names them are on
disk. Layout::

    <directory>/<sha[:2]>/<sha>      read-only files (0o440 by default)
    <directory>/<sha[:2]>/.tmp-*     a ``put`` in progress (or left by a crash: harmless)
    <directory>/.tmp-*               a streamed write in progress (its name is known only at
                                     the end; left by a crash: harmless)

A mail arriving over SMTP is streamed (``Spool.writer``, ``gateway.store.spoolwriter``): each
chunk is hashed and written as it comes, so a 90 MB mail never sits in memory whole (issue 7,
P4). Readers that should not load a whole mail use ``open`` (a checked file object) or ``path``.
The temp files a crash leaves are removed by ``sweep`` (``gateway.store.spoolsweep``) once they
are a day old: never a write in progress, even one of another instance sharing the spool.

The 256 fan-out directories are made (and fsynced into the root) once, before the first write,
so a put never creates a directory whose own entry might not be durable yet.

Disk trouble is ``TransientError`` (``StorageFull`` for ENOSPC/EDQUOT: SMTP 452); a missing or
corrupted file is a ``SpoolError``: wrong bytes are never returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final

from gateway.errors import GatewayError
from gateway.files import fsync_directory, write_fully
from gateway.store.records import SHA256_RE
from gateway.store.spoolsweep import STALE_AFTER, SweepResult, sweep_temporaries
from gateway.store.spoolwriter import HEAD_BYTES, TMP_PREFIX, Spooled, SpoolWriter, disk_error

__all__ = [
    "HEAD_BYTES",
    "Spool",
    "SpoolCorrupted",
    "SpoolError",
    "SpoolMissing",
    "SpoolWriter",
    "Spooled",
    "SweepResult",
]

_DIR_MODE: Final = 0o750


class SpoolError(GatewayError):
    """A spooled mail cannot be given back as it was stored (needs an admin)."""


class SpoolMissing(SpoolError):
    """No file for that SHA-256."""


class SpoolCorrupted(SpoolError):
    """The file's bytes no longer hash to its name."""


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

    async def sweep(self, now: datetime, *, older_than: timedelta = STALE_AFTER) -> SweepResult:
        """Remove the ``.tmp-*`` files crashed writes left, once older than ``older_than`` by mtime.

        Safe while other processes write to the same spool: a write in progress is never that
        old (``gateway.store.spoolsweep``). Each removal is logged at INFO.

        Args:
            now: the current time (aware), from the service's clock.
            older_than: the age limit (default: a day).

        Returns:
            What was removed (and left).

        Raises:
            ValueError: ``now`` is naive or ``older_than`` not positive.
            OSError: the spool root cannot be listed.
        """
        return await asyncio.to_thread(sweep_temporaries, self.directory, now=now, older_than=older_than)

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
                raise disk_error("prepare", root, exc) from exc
            self._ready = True

    def _put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self._prepare()
        final = self.path(sha)
        folder = final.parent
        try:
            if self._already(final, sha):
                return sha
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
        except OSError as exc:
            raise disk_error("write to", folder, exc) from exc
        try:
            try:
                os.fchmod(fd, self.mode)
                write_fully(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise disk_error("write", final, exc) from exc
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
            raise disk_error("write", final, exc) from exc

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
            raise disk_error("read", path, exc) from exc
        try:
            actual = hashlib.file_digest(file, "sha256").hexdigest()
            file.seek(0)
        except OSError as exc:
            file.close()
            raise disk_error("read", path, exc) from exc
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
            raise disk_error("read", path, exc) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise SpoolCorrupted(f"spool: {path} is corrupted (its bytes hash to {actual})")
        return data
