"""Durable file writes: what the spool and the Maildirs promise rests on (a leaf: no gateway import).

A write is durable when the data is ``fsync``-ed before the rename that publishes it and the
directory holding the new name is ``fsync``-ed after (POSIX: a rename is a change of the
directory; without its ``fsync`` a crash can lose the name while keeping the data). Everything
here blocks: callers run it in a worker thread (HOUSE.md rule 4).

Maildir (Maildir(5)): a message is written under ``tmp/``, synced, then moved to ``new/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ensure_maildir", "fsync_directory", "publish_in_maildir", "write_fully"]

_MAILDIR = ("tmp", "new", "cur")


def fsync_directory(path: Path) -> None:
    """Make the entries of ``path`` (new, renamed, removed names) durable.

    Raises:
        OSError: the directory cannot be opened or synced.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_fully(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked) and ``fsync`` it.

    Raises:
        OSError: the disk refused (full, read-only, I/O error).
    """
    _write_all(fd, data)
    os.fsync(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def ensure_maildir(root: Path) -> None:
    """Create ``root/tmp``, ``new`` and ``cur`` (mode 0700) when missing, durably.

    Raises:
        OSError: they cannot be created.
    """
    if all((root / sub).is_dir() for sub in _MAILDIR):
        return
    for sub in _MAILDIR:
        (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    fsync_directory(root)  # the new directories survive a crash with what goes into them
    fsync_directory(root.parent)


def publish_in_maildir(root: Path, name: str, mail: bytes | Iterable[bytes], *, once: bool) -> bool:
    """Write ``mail`` as ``root/new/<name>`` the Maildir way (the Maildir must exist).

    Args:
        root: the Maildir.
        name: the file name (a plain name, chosen by the caller).
        mail: the bytes, or pieces of them in order (a big mail copied without holding it whole).
        once: True: never replace an existing ``new/<name>`` (the name is an idempotency key;
            the link is atomic and fails when the name exists). False: the name is unique
            already (Maildir(5) style) and is renamed into place.

    Returns:
        False when ``once`` and the name was there already (nothing written), else True.

    Raises:
        OSError: the disk refused.
    """
    temporary = root / "tmp" / name
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        if isinstance(mail, bytes):
            write_fully(fd, mail)
        else:
            for piece in mail:
                _write_all(fd, piece)
            os.fsync(fd)
    finally:
        os.close(fd)
    published = True
    try:
        if once:
            try:
                os.link(temporary, root / "new" / name)
            except FileExistsError:
                published = False  # written by an earlier attempt that crashed before cleaning tmp/
        else:
            os.rename(temporary, root / "new" / name)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(root / "new")
    return published
