"""The spool: durable (fsync of the file and of its directory), idempotent, never wrong bytes."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path

import pytest

from gateway.errors import TransientError
from gateway.store import Spool, SpoolCorrupted, SpoolMissing, StorageFull

MAIL = b"From: vanthu@haiphong.gov.vn\r\nSubject: =?utf-8?b?Q8O0bmcgdsSDbg==?=\r\n\r\nbody\r\n"
SHA = hashlib.sha256(MAIL).hexdigest()


class FsyncLog:
    """Records what ``os.fsync`` was called on: regular files and directories."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            self.calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


def test_put_writes_the_bytes_under_their_hash(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert asyncio.run(spool.put(MAIL)) == SHA
    path = tmp_path / "spool" / SHA[:2] / SHA
    assert spool.path(SHA) == path
    assert path.read_bytes() == MAIL
    assert spool.exists(SHA)
    assert stat.S_IMODE(path.stat().st_mode) == 0o440
    assert asyncio.run(spool.get(SHA)) == MAIL
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_put_fsyncs_the_file_then_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(b"warm-up"))  # the one-time layout (256 folders) is fsynced too
    log = FsyncLog(monkeypatch)
    asyncio.run(spool.put(MAIL))
    assert log.calls == ["file", "dir"]


def test_put_is_idempotent_and_still_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool", mode=0o640)
    asyncio.run(spool.put(MAIL))
    before = spool.path(SHA).stat()
    log = FsyncLog(monkeypatch)
    assert asyncio.run(spool.put(MAIL)) == SHA
    after = spool.path(SHA).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns), "the existing file is kept"
    assert log.calls == ["dir"], "a concurrent writer's rename may not be durable yet"
    assert stat.S_IMODE(after.st_mode) == 0o640


def test_the_same_bytes_put_concurrently(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")

    async def scenario() -> list[str]:
        return list(await asyncio.gather(*(spool.put(MAIL) for _ in range(8))))

    assert asyncio.run(scenario()) == [SHA] * 8
    assert asyncio.run(spool.get(SHA)) == MAIL


def test_a_damaged_copy_is_replaced_on_put(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(MAIL))
    path = spool.path(SHA)
    path.chmod(0o640)
    path.write_bytes(MAIL.replace(b"body", b"BODY"))  # same size, other bytes
    assert asyncio.run(spool.put(MAIL)) == SHA
    assert asyncio.run(spool.get(SHA)) == MAIL


def test_get_refuses_corrupted_or_missing_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(MAIL))
    path = spool.path(SHA)
    path.chmod(0o640)
    path.write_bytes(MAIL + b"appended")
    with pytest.raises(SpoolCorrupted, match="corrupted"):
        asyncio.run(spool.get(SHA))
    with pytest.raises(SpoolMissing):
        asyncio.run(spool.get("0" * 64))


def test_names_that_are_not_hashes_never_become_paths(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for bad in ("../../etc/passwd", SHA.upper(), SHA[:-1], ""):
        with pytest.raises(ValueError, match="64 lowercase hex"):
            spool.path(bad)
        with pytest.raises(ValueError, match="64 lowercase hex"):
            asyncio.run(spool.get(bad))


@pytest.mark.parametrize(("code", "kind"), [(errno.ENOSPC, StorageFull), (errno.EIO, TransientError)])
def test_disk_errors_are_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, kind: type[TransientError]
) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(b"warm-up"))

    def failing_write(fd: int, data: object) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(kind, match="spool: cannot write") as caught:
        asyncio.run(spool.put(MAIL))
    assert type(caught.value) is kind
    if kind is StorageFull:
        assert caught.value.smtp_reply.startswith("452 ")
    else:
        assert caught.value.smtp_reply.startswith("451 ")
    monkeypatch.undo()
    assert not spool.exists(SHA)
    assert not [p for p in spool.path(SHA).parent.iterdir() if p.name.startswith(".tmp-")], "no temp file left"


def test_a_failed_fsync_is_not_an_ack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(b"warm-up"))

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(TransientError, match="Input/output error"):
        asyncio.run(spool.put(MAIL))


def test_an_unwritable_spool_is_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: the tests may run as root, which ignores directory permissions.
    spool = Spool(tmp_path / "spool")
    asyncio.run(spool.put(b"warm-up"))

    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(TransientError, match="Permission denied"):
        asyncio.run(spool.put(MAIL))
