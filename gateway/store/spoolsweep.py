"""The spool's sweep: removes the temp files that crashed writes left behind.

A ``put`` or a streamed write (``gateway.store.spoolwriter``) writes under a ``.tmp-*`` name and
renames the file to its SHA-256 once it is fsynced. A crash in between leaves the temp file
behind, in ``<spool>/<sha[:2]>/`` (a ``put``) or in ``<spool>/`` (a streamed write); nothing else
ever removes it. The sweep does, under these rules:

* only regular files whose name starts with ``.tmp-``, in the spool root and its 256 fan-out
  directories (``00``..``ff``); nothing else is looked at, stored mails are never touched;
* only files older than :data:`STALE_AFTER` by their mtime. A write in progress touches its file
  with every chunk, and no write lasts that long (an SMTP DATA phase times out in minutes), so a
  file that old has no live writer, in this process or in another gateway instance sharing the
  spool;
* no symbolic link below the spool root is followed: each fan-out directory is opened with
  ``O_NOFOLLOW`` and every name is examined and removed relative to its directory, so a link (to
  a directory or a file) is never entered, and a ``.tmp-*`` link is left alone;
* a file that vanishes meanwhile (another instance sweeping at the same moment) is not an error.

Each removal is logged at INFO (path, size, age); the result counts them. The sweep itself blocks:
``Spool.sweep`` runs it in a worker thread (HOUSE.md rule 4). The service runs :func:`keep_swept`
for as long as it serves: a sweep at start, then one every :data:`SWEEP_EVERY`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from gateway.clock import Clock, require_aware
from gateway.store.spoolwriter import TMP_PREFIX

if TYPE_CHECKING:
    from gateway.store.spool import Spool

__all__ = ["STALE_AFTER", "SWEEP_EVERY", "SweepResult", "keep_swept", "sweep_temporaries"]

_log = logging.getLogger("gateway.store.spool")

STALE_AFTER: Final = timedelta(hours=24)
"""How old (by mtime) a ``.tmp-*`` file must be before the sweep removes it. Far beyond the
longest write (an SMTP DATA phase lasts minutes), so it is never one in progress; not a setting:
no deployment needs another value, and a smaller one could only be wrong."""
SWEEP_EVERY: Final = timedelta(hours=6)
"""How often the running service sweeps (besides once at start): a stale file goes within
``STALE_AFTER + SWEEP_EVERY`` of the crash; a sweep lists every spool directory, so not more often."""
_FANOUT: Final = re.compile(r"[0-9a-f]{2}")
_ROOT_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
"""The root may be a link the admin made (``[store] spool`` names it); nothing below it may."""
_DIRECTORY_FLAGS: Final = _ROOT_FLAGS | os.O_NOFOLLOW


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    removed: int = 0
    """Stale temp files removed."""
    removed_bytes: int = 0
    """Their total size."""
    young: int = 0
    """Temp files left because they are younger than the age limit (maybe writes in progress)."""
    skipped: int = 0
    """``.tmp-*`` names that are not regular files (links, directories): left alone."""
    failed: int = 0
    """Stale temp files that could not be removed (logged at WARNING)."""


@dataclass(frozen=True)
class _Ages:
    now: float
    """The sweep's time, in seconds since the epoch (as ``st_mtime``)."""
    limit: float
    """The age limit in seconds."""


def sweep_temporaries(directory: Path, *, now: datetime, older_than: timedelta = STALE_AFTER) -> SweepResult:
    """Remove the stale ``.tmp-*`` files of the spool at ``directory`` (see the module docstring).

    Args:
        directory: the spool root; a missing one has nothing to sweep.
        now: the current time (aware), against which ages are measured: the system's, the clock
            that stamps mtimes.
        older_than: the age limit (default :data:`STALE_AFTER`).

    Returns:
        The counts of what was removed and left.

    Raises:
        ValueError: ``now`` is naive, or ``older_than`` is not positive.
        OSError: the spool root exists but cannot be opened or listed (a fan-out directory that
            cannot be is logged and skipped).
    """
    if older_than <= timedelta(0):
        raise ValueError(f"the sweep's age limit must be positive, not {older_than}")
    ages = _Ages(now=require_aware(now).timestamp(), limit=older_than.total_seconds())
    tally: Counter[str] = Counter()
    try:
        root = os.open(directory, _ROOT_FLAGS)
    except FileNotFoundError:
        return SweepResult()
    try:
        for name in os.listdir(root):
            if name.startswith(TMP_PREFIX):
                _consider(root, directory, name, ages, tally)
            elif _FANOUT.fullmatch(name):
                _sweep_fanout(root, directory / name, name, ages, tally)
    finally:
        os.close(root)
    return SweepResult(**tally)


async def keep_swept(spool: Spool, clock: Clock, *, every: timedelta = SWEEP_EVERY) -> None:
    """Sweep ``spool`` now, then every ``every``, until cancelled (the service's housekeeping).

    A failed sweep is logged and tried again at the next turn: the spool's temp files are
    litter, not a reason to stop serving.

    Args:
        spool: the spool to keep clean.
        clock: gives each sweep its time (the system clock: it stamps the mtimes compared with it).
        every: the pause between sweeps.
    """
    while True:
        try:
            result = await spool.sweep(clock.now())
        except Exception:
            _log.exception("spool sweep of %s failed; trying again in %s", spool.directory, every)
        else:
            level = logging.INFO if result.removed or result.failed else logging.DEBUG
            _log.log(
                level,
                "spool sweep of %s: %d stale temporary file(s) removed (%d bytes), %d failed, %d young left",
                spool.directory,
                result.removed,
                result.removed_bytes,
                result.failed,
                result.young,
            )
        await asyncio.sleep(every.total_seconds())


def _sweep_fanout(root: int, where: Path, name: str, ages: _Ages, tally: Counter[str]) -> None:
    try:
        fd = os.open(name, _DIRECTORY_FLAGS, dir_fd=root)
    except FileNotFoundError:
        return
    except OSError as exc:  # ELOOP/ENOTDIR: a link or a file with a fan-out name: not ours to enter
        _log.warning("spool sweep: %s skipped (%s)", where, exc.strerror or exc)
        return
    try:
        for entry in os.listdir(fd):
            if entry.startswith(TMP_PREFIX):
                _consider(fd, where, entry, ages, tally)
    except OSError as exc:
        _log.warning("spool sweep: cannot list %s (%s)", where, exc.strerror or exc)
    finally:
        os.close(fd)


def _consider(fd: int, where: Path, name: str, ages: _Ages, tally: Counter[str]) -> None:
    """Remove ``name`` (in the directory open at ``fd``) when it is a stale regular temp file."""
    path = where / name
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:  # published or swept meanwhile
        return
    if not stat.S_ISREG(info.st_mode):
        tally["skipped"] += 1
        _log.warning("spool sweep: %s is not a regular file; left alone", path)
        return
    age = ages.now - info.st_mtime
    if age < ages.limit:
        tally["young"] += 1
        return
    try:
        os.unlink(name, dir_fd=fd)  # removes a name, never what a link points to
    except FileNotFoundError:  # another instance swept it first
        return
    except OSError as exc:
        tally["failed"] += 1
        _log.warning("spool sweep: cannot remove %s (%s)", path, exc.strerror or exc)
        return
    tally["removed"] += 1
    tally["removed_bytes"] += info.st_size
    _log.info("spool sweep: removed stale temporary file %s (%d bytes, %.1f h old)", path, info.st_size, age / 3600)
