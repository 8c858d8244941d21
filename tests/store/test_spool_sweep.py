"""The spool's sweep: what crashed writes leave behind goes once stale; nothing else ever does.

The leftovers here are made by the spool's own code, interrupted the way a crash interrupts it
(between the fsync and the rename of a ``put``; in the middle of a streamed write), so the sweep
is tested on the names and places the spool really uses.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.clock import FixedClock
from gateway.store import Spool, spoolsweep
from gateway.store.spoolsweep import STALE_AFTER, SweepResult, keep_swept, sweep_temporaries
from tests.dovecot import until
from tests.store.test_spool import MAIL, SHA

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


class Crash(BaseException):
    """The process dies here (no ``except Exception`` catches it)."""


def age(path: Path, old: timedelta, now: datetime = NOW) -> Path:
    """Give ``path`` (not what a link points to) an mtime ``old`` before ``now``."""
    stamp = (now - old).timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


def temps(spool: Spool) -> list[Path]:
    return sorted(spool.directory.rglob(".tmp-*"))


def crashed_put(spool: Spool, data: bytes, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``put`` that dies after the fsync, before the rename: its temp file stays in the fan-out folder."""

    def dies(src: object, dst: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", dies)
        with pytest.raises(Crash):
            asyncio.run(spool.put(data))
    (left,) = [p for p in temps(spool) if p.parent != spool.directory]
    return left


def crashed_stream(spool: Spool, data: bytes) -> Path:
    """A streamed write that dies mid-mail: its temp file stays in the spool root."""

    async def main() -> None:
        writer = spool.writer()
        await writer.write(data)
        await writer._settle()
        assert writer._fd is not None
        os.close(writer._fd)  # the process is gone: no abort, no commit

    asyncio.run(main())
    (left,) = [p for p in temps(spool) if p.parent == spool.directory]
    return left


def test_stale_leftovers_of_crashed_writes_go_and_each_removal_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(MAIL))
    stored = age(spool.path(SHA), 30 * DAY)
    put_left = age(crashed_put(spool, b"a put cut short" * 10, monkeypatch), DAY + timedelta(minutes=1))
    stream_left = age(crashed_stream(spool, b"a stream cut short" * 100), 3 * DAY)
    assert put_left.parent.parent == spool.directory  # in a fan-out folder
    assert stream_left.parent == spool.directory

    caplog.set_level(logging.INFO, logger="gateway.store.spool")
    result = asyncio.run(spool.sweep(NOW))

    assert result == SweepResult(removed=2, removed_bytes=150 + 1800, young=0, skipped=0, failed=0)
    assert temps(spool) == []
    assert stored.read_bytes() == MAIL  # the stored mail, older still, is untouched
    assert asyncio.run(spool.get(SHA)) == MAIL
    removals = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert sorted(removals) == sorted(
        [
            f"spool sweep: removed stale temporary file {put_left} (150 bytes, 24.0 h old)",
            f"spool sweep: removed stale temporary file {stream_left} (1800 bytes, 72.0 h old)",
        ]
    )


def test_young_temp_files_are_writes_that_may_be_in_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    young_put = age(crashed_put(spool, b"maybe still being written", monkeypatch), DAY - timedelta(minutes=1))
    young_stream = age(crashed_stream(spool, b"another instance is streaming this"), timedelta(seconds=5))
    assert asyncio.run(spool.sweep(NOW)) == SweepResult(young=2)
    assert temps(spool) == sorted([young_put, young_stream])
    # A day later they are stale.
    assert asyncio.run(spool.sweep(NOW + DAY)).removed == 2
    assert temps(spool) == []


def test_a_write_in_progress_is_never_swept(tmp_path: Path) -> None:
    """Another instance streams a mail into the shared spool while this one sweeps."""
    spool = Spool(tmp_path / "spool")

    async def main() -> None:
        async with Spool(spool.directory).writer() as writer:
            await writer.write(b"first half, ")
            await writer.write(b"second half")  # waits until the first half is on disk
            assert await spool.sweep(datetime.now(UTC)) == SweepResult(young=1)
            stored = await writer.commit()
        assert await spool.get(stored.sha256) == b"first half, second half"

    asyncio.run(main())


def test_a_file_written_in_the_future_is_young(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(MAIL))
    ahead = spool.directory / ".tmp-ahead"
    ahead.write_bytes(b"x")
    age(ahead, -timedelta(hours=2))
    assert asyncio.run(spool.sweep(NOW)) == SweepResult(young=1)
    assert ahead.exists()


def test_only_regular_temp_files_are_removed_and_no_link_is_followed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(MAIL))
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / ".tmp-not-the-spools"
    target.write_bytes(b"someone else's file")
    age(target, 9 * DAY)
    # Old files that are not temp files, in the root and in a fan-out folder.
    keep = [spool.directory / "NOTES", spool.directory / "ab" / "tmp-without-the-dot", spool.path(SHA)]
    for path in keep[:2]:
        path.write_bytes(b"keep me")
    for path in keep:
        age(path, 9 * DAY)
    # A .tmp-* link to that file, and a fan-out folder that is a link to the outside folder.
    link = spool.directory / "cd" / ".tmp-link"
    link.symlink_to(target)
    age(link, 9 * DAY)
    (spool.directory / "ef").rmdir()
    (spool.directory / "ef").symlink_to(outside, target_is_directory=True)
    # A directory with a temp name.
    (spool.directory / ".tmp-folder").mkdir()
    age(spool.directory / ".tmp-folder", 9 * DAY)

    result = asyncio.run(spool.sweep(NOW))

    assert result == SweepResult(skipped=2)  # the link and the folder; the linked fan-out is not entered
    assert target.read_bytes() == b"someone else's file"
    assert link.is_symlink()
    assert (spool.directory / ".tmp-folder").is_dir()
    assert all(path.exists() for path in keep)


def test_a_file_vanishing_mid_sweep_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another instance sweeps the same file between our look and our unlink (or before our look)."""
    spool = Spool(tmp_path / "spool")
    spool.directory.mkdir()
    for n in range(3):
        path = spool.directory / f".tmp-{n}"
        path.write_bytes(b"x" * (n + 1))
        age(path, 2 * DAY)
    real_unlink, real_stat = os.unlink, os.stat

    def unlink_after_the_other(path: str, *, dir_fd: int | None = None) -> None:
        if path == ".tmp-0":
            real_unlink(path, dir_fd=dir_fd)  # the other instance was faster
        real_unlink(path, dir_fd=dir_fd)

    def stat_after_the_other(path: str, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> os.stat_result:
        if path == ".tmp-1":
            real_unlink(path, dir_fd=dir_fd)
        return real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(os, "unlink", unlink_after_the_other)
    monkeypatch.setattr(os, "stat", stat_after_the_other)
    result = sweep_temporaries(spool.directory, now=NOW)
    monkeypatch.undo()
    assert result == SweepResult(removed=1, removed_bytes=3)
    assert temps(spool) == []


def test_two_instances_sweeping_at_once_remove_each_file_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(MAIL))
    made = []
    for n in range(600):
        folder = spool.directory if n % 3 == 0 else spool.directory / f"{n % 256:02x}"
        made.append(folder / f".tmp-{n:04d}")
    for path in made:
        path.write_bytes(b"y")
        age(path, 2 * DAY)

    async def both() -> list[SweepResult]:
        one, other = Spool(spool.directory), Spool(spool.directory)
        return list(await asyncio.gather(one.sweep(NOW), other.sweep(NOW)))

    results = asyncio.run(both())
    assert sum(r.removed for r in results) == 600
    assert sum(r.failed + r.skipped for r in results) == 0
    assert temps(spool) == []
    assert spool.path(SHA).read_bytes() == MAIL


def test_a_spool_root_that_is_a_link_is_swept(tmp_path: Path) -> None:
    """``[store] spool`` may name a link the admin made (e.g. to a mounted volume)."""
    real = Spool(tmp_path / "volume")
    asyncio.run(real.put(MAIL))
    stale = real.directory / SHA[:2] / ".tmp-left"
    stale.touch()
    age(stale, 2 * DAY)
    (tmp_path / "spool").symlink_to(real.directory, target_is_directory=True)
    assert asyncio.run(Spool(tmp_path / "spool").sweep(NOW)) == SweepResult(removed=1)
    assert not stale.exists()
    assert real.path(SHA).read_bytes() == MAIL


def test_a_spool_never_written_has_nothing_to_sweep(tmp_path: Path) -> None:
    assert asyncio.run(Spool(tmp_path / "nothing-here").sweep(NOW)) == SweepResult()


def test_nonsense_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="naive"):
        sweep_temporaries(tmp_path, now=datetime(2026, 11, 21))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="positive"):
        sweep_temporaries(tmp_path, now=NOW, older_than=timedelta(0))
    assert STALE_AFTER == DAY


def test_the_service_keeps_the_spool_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """At once, then every ``every``; a failed sweep is logged and the next one still runs."""
    spool = Spool(tmp_path / "spool")
    clock = FixedClock(NOW)
    real = spoolsweep.sweep_temporaries
    calls: list[str] = []

    def sweep(directory: Path, *, now: datetime, older_than: timedelta) -> SweepResult:
        calls.append("sweep")
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied")
        return real(directory, now=now, older_than=older_than)

    monkeypatch.setattr("gateway.store.spool.sweep_temporaries", sweep)
    caplog.set_level(logging.INFO, logger="gateway.store.spool")

    left = age(crashed_stream(spool, b"left by the last crash"), 2 * DAY)

    async def main() -> None:
        task = asyncio.create_task(keep_swept(spool, clock, every=timedelta(seconds=0.05)))
        try:
            await until(lambda: not left.exists(), "the sweep at start", seconds=5)
            later = spool.directory / ".tmp-later"
            later.write_bytes(b"later")
            age(later, 2 * DAY)
            await until(lambda: len(calls) >= 3 and not later.exists(), "a sweep after a failed one", seconds=5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed; trying again" in m for m in messages)
    assert sum("1 stale temporary file(s) removed" in m for m in messages) == 2
