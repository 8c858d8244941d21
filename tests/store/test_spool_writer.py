"""The spool's streamed writer and reader: the same promise as ``put``, without the mail in memory.

A mail arriving over SMTP is written piece by piece (``Spool.writer``) and named by its SHA-256
only at ``commit``; what a 250 promises (HOUSE.md rule 13, spec checklist A1: the original bytes
kept unaltered) must hold exactly as for ``put``.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.errors import TransientError
from gateway.store import Spool, SpoolCorrupted, Spooled, SpoolMissing, StorageFull
from gateway.store.spool import HEAD_BYTES
from tests.store.test_spool import MAIL, SHA, FsyncLog

BIG = b"".join(b"Line %06d of a long base64 attachment, padded to look like one.\r\n" % n for n in range(4000))


def temp_files(spool: Spool) -> list[Path]:
    """Temp files left anywhere in the spool (root or fan-out folders)."""
    return [p for p in spool.directory.rglob(".tmp-*")]


async def stream(spool: Spool, pieces: Sequence[bytes]) -> Spooled:
    async with spool.writer() as writer:
        for piece in pieces:
            await writer.write(piece)
        return await writer.commit()


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [97, 4096, 1 << 20])
def test_a_streamed_mail_is_stored_as_put_would(tmp_path: Path, size: int) -> None:
    spool = Spool(tmp_path / "spool")
    spooled = asyncio.run(stream(spool, cut(BIG, size)))
    sha = hashlib.sha256(BIG).hexdigest()
    assert spooled == Spooled(sha256=sha, size=len(BIG), head=BIG[:HEAD_BYTES])
    assert len(spooled.head) == HEAD_BYTES < len(BIG)
    path = spool.path(sha)
    assert path.read_bytes() == BIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o440
    assert asyncio.run(spool.get(sha)) == BIG
    assert temp_files(spool) == []


def test_commit_fsyncs_the_file_then_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(b"warm-up"))  # the one-time layout (256 folders) is fsynced too
    log = FsyncLog(monkeypatch)
    asyncio.run(stream(spool, cut(MAIL, 1)))
    assert log.calls == ["file", "dir"]
    assert spool.path(SHA).read_bytes() == MAIL


def test_the_same_bytes_again_keep_the_stored_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(MAIL))
    before = spool.path(SHA).stat()
    log = FsyncLog(monkeypatch)
    assert asyncio.run(stream(spool, [MAIL])).sha256 == SHA
    after = spool.path(SHA).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert log.calls == ["dir"], "a concurrent writer's rename may not be durable yet"
    assert temp_files(spool) == []


def test_writers_of_the_same_bytes_at_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")

    async def scenario() -> list[Spooled]:
        return list(await asyncio.gather(*(stream(spool, cut(MAIL, 5)) for _ in range(8))))

    assert {s.sha256 for s in asyncio.run(scenario())} == {SHA}
    assert asyncio.run(spool.get(SHA)) == MAIL
    assert temp_files(spool) == []


def test_an_empty_mail_is_stored(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spooled = asyncio.run(stream(spool, []))
    assert (spooled.size, spooled.head) == (0, b"")
    assert spool.path(spooled.sha256).read_bytes() == b""


def test_abort_and_leaving_without_commit_store_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")

    async def scenario() -> None:
        writer = spool.writer()
        await writer.write(MAIL)
        await writer.write(MAIL)
        await writer.abort()
        with pytest.raises(RuntimeError, match="committed or aborted"):
            await writer.write(b"more")
        with pytest.raises(RuntimeError, match="committed or aborted"):
            await writer.commit()
        await writer.abort()  # harmless again

    async def broken_session() -> None:
        async with spool.writer() as other:
            await other.write(MAIL)
            raise KeyError("the session broke")

    asyncio.run(scenario())
    with pytest.raises(KeyError):
        asyncio.run(broken_session())
    assert not spool.exists(SHA)
    assert temp_files(spool) == []


def test_abort_after_commit_keeps_the_mail(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")

    async def scenario() -> None:
        writer = spool.writer()
        await writer.write(MAIL)
        await writer.commit()
        await writer.abort()

    asyncio.run(scenario())
    assert spool.path(SHA).read_bytes() == MAIL


@pytest.mark.parametrize(("code", "kind"), [(errno.ENOSPC, StorageFull), (errno.EIO, TransientError)])
def test_a_failed_write_is_transient_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, kind: type[TransientError]
) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(b"warm-up"))
    real = os.write
    written: list[int] = []

    def failing_write(fd: int, data: bytes) -> int:
        if written:  # the first piece goes through, the disk fills up after it
            raise OSError(code, os.strerror(code))
        written.append(len(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(kind, match="spool: cannot write") as caught:
        asyncio.run(stream(spool, [MAIL, MAIL, MAIL]))  # raised at the next write or at commit
    assert type(caught.value) is kind
    assert caught.value.smtp_reply.startswith("452 " if kind is StorageFull else "451 ")
    monkeypatch.undo()
    assert temp_files(spool) == []
    assert not spool.exists(hashlib.sha256(MAIL * 3).hexdigest())


def test_a_failed_fsync_is_not_an_ack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(b"warm-up"))

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(TransientError, match="Input/output error"):
        asyncio.run(stream(spool, [MAIL]))
    monkeypatch.undo()
    assert not spool.exists(SHA)
    assert temp_files(spool) == []


def test_a_spool_that_cannot_be_made_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("the spool cannot live under a file")
    with pytest.raises(TransientError, match="spool: cannot prepare"):
        asyncio.run(stream(Spool(blocker / "spool"), [MAIL]))


def test_open_checks_the_bytes_and_reads_from_the_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    sha = asyncio.run(stream(spool, cut(BIG, 1000))).sha256

    async def read_back() -> bytes:
        with await spool.open(sha) as file:
            return file.read()

    assert asyncio.run(read_back()) == BIG
    path = spool.path(sha)
    path.chmod(0o640)
    path.write_bytes(BIG[:-1] + b"!")
    with pytest.raises(SpoolCorrupted, match="corrupted"):
        asyncio.run(spool.open(sha))
    with pytest.raises(SpoolMissing):
        asyncio.run(spool.open("0" * 64))
    with pytest.raises(ValueError, match="64 lowercase hex"):
        asyncio.run(spool.open("../etc/passwd"))
