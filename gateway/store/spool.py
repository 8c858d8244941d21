"""The spool: original mail bytes, unaltered, addressed by SHA-256 (Hải Phòng Art. 14).

``put`` is the durability promise behind every 250 (HOUSE.md rule 13, the Postfix way): when it
returns, the bytes and the directory entry that names them are on disk. Layout::

    <directory>/<sha[:2]>/<sha>      read-only files (0o440 by default)
    <directory>/<sha[:2]>/.tmp-*     a write in progress (or left by a crash: harmless)

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
from pathlib import Path
from typing import Final

from gateway.errors import GatewayError, TransientError
from gateway.files import fsync_directory, write_fully
from gateway.store.records import SHA256_RE, StorageFull

__all__ = ["Spool", "SpoolCorrupted", "SpoolError", "SpoolMissing"]

_FULL: Final = (errno.ENOSPC, errno.EDQUOT)
_DIR_MODE: Final = 0o750


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
            if self._intact(final, sha):
                # Someone stored these bytes already; its rename may not be durable yet.
                fsync_directory(folder)
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
            os.replace(tmp, final)
            fsync_directory(folder)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise _disk_error("write", final, exc) from exc
        return sha

    @staticmethod
    def _intact(path: Path, sha256: str) -> bool:
        # Same bytes again is rare (a client retrying after a lost 250), so checking the old copy
        # costs little; a damaged one is replaced by the fresh copy instead of being acked.
        try:
            with path.open("rb") as existing:
                return hashlib.file_digest(existing, "sha256").hexdigest() == sha256
        except FileNotFoundError:
            return False

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
