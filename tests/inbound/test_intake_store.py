"""The inbound listener with the real store and spool: what a 250 promises is on disk."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosmtplib
import pytest

from gateway.clock import SystemClock
from gateway.inbound.intake import Intake
from gateway.inbound.smtp import InboundSmtp
from gateway.settings import SmtpSettings
from gateway.store import Spool, Store
from tests.inbound.client import CLIENT_NAME, RCPT, mail, run, send, serving

SETTINGS = SmtpSettings(listen="127.0.0.1:0", hostname="gw.test", local_recipients=(RCPT,))


def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


@asynccontextmanager
async def gateway(tmp_path: Path, spool_dir: Path | None = None) -> AsyncIterator[tuple[InboundSmtp, Store, Spool]]:
    store = await Store.open(db_url(tmp_path), clock=SystemClock())
    spool = Spool(spool_dir or tmp_path / "spool")
    try:
        async with serving(InboundSmtp(SETTINGS, Intake(store, spool))) as server:
            yield server, store, spool
    finally:
        await store.close()


async def committed_rows(tmp_path: Path) -> list[tuple[int, str, str]]:
    """Read the rows through a connection of its own: only committed rows are visible."""

    def read() -> list[tuple[int, str, str]]:
        with sqlite3.connect(tmp_path / "gateway.db") as conn:
            rows = conn.execute("SELECT id, sha256, state FROM messages ORDER BY id").fetchall()
        conn.close()
        return [(int(i), str(s), str(t)) for i, s, t in rows]

    return await asyncio.to_thread(read)


def test_250_means_spooled_and_committed(tmp_path: Path) -> None:
    async def main() -> None:
        raw = mail("durable", message_id="<durable@axis.test>")
        async with gateway(tmp_path) as (server, store, spool):
            reply = await send(server.address[1], raw)
            # Checked right after the reply, before anything else runs on the loop.
            rows = await committed_rows(tmp_path)
            assert reply == "2.0.0 Ok: queued as 1"
            ((item_id, sha, state),) = rows
            assert (item_id, state) == (1, "incoming")
            assert spool.path(sha).read_bytes() == raw
            view = await store.get(1)
            assert view is not None
            assert view.message_id_header == "<durable@axis.test>"
            assert view.received_at is not None
            assert [j.event for j in await store.history(1)] == ["received"]

    run(main)


def test_spool_trouble_is_451_and_no_row(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("the spool cannot live under a file")

    async def main() -> None:
        async with gateway(tmp_path, spool_dir=blocker / "spool") as (server, _, _):
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await send(server.address[1], mail())
            assert refused.value.code == 451
            assert refused.value.message == "4.3.0 Temporary local problem; try again later"
        assert await committed_rows(tmp_path) == []

    run(main)


def test_database_trouble_is_451_and_no_row(tmp_path: Path) -> None:
    """Another writer holds the database past busy_timeout (5 s): 451, and the row is not there."""

    async def main() -> None:
        async with gateway(tmp_path) as (server, _, spool):
            locked, release = threading.Event(), threading.Event()

            def hold_lock() -> None:
                conn = sqlite3.connect(tmp_path / "gateway.db", isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                locked.set()
                release.wait(30)
                conn.execute("ROLLBACK")
                conn.close()

            holder = asyncio.create_task(asyncio.to_thread(hold_lock))
            await asyncio.to_thread(locked.wait, 10)
            try:
                with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                    await send(server.address[1], mail("locked"))
            finally:
                release.set()
                await holder
            assert refused.value.code == 451
            assert await committed_rows(tmp_path) == []
            # Content-addressed, so the orphan file is harmless: the retry finds and keeps it.
            assert await send(server.address[1], mail("locked")) == "2.0.0 Ok: queued as 1"
            ((_, sha, _),) = await committed_rows(tmp_path)
            assert spool.path(sha).exists()

    run(main)


def test_20_clients_times_5_messages_recorded_exactly_once(tmp_path: Path) -> None:
    async def client(port: int, n: int) -> list[str]:
        replies = []
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname=CLIENT_NAME) as c:
            for k in range(5):
                _, reply = await c.sendmail("a@axis.test", [RCPT], mail(f"c{n}-m{k}", message_id=f"<{n}.{k}@t>"))
                replies.append(reply)
        return replies

    async def main() -> None:
        async with gateway(tmp_path) as (server, store, spool):
            batches = await asyncio.gather(*(client(server.address[1], n) for n in range(20)))
            replies = [r for batch in batches for r in batch]
            assert all(r.startswith("2.0.0 Ok: queued as ") for r in replies)
            ids = sorted(int(r.rsplit(" ", 1)[1]) for r in replies)
            assert ids == list(range(1, 101))
            views = await store.list(limit=1000)
            assert sorted(v.message_id_header or "" for v in views) == sorted(
                f"<{n}.{k}@t>" for n in range(20) for k in range(5)
            )
            assert all(spool.exists(v.sha256) for v in views)
            chain = await store.verify_chain()
            assert chain.ok
            assert chain.count == 100

    run(main)


def test_an_imap_replay_is_recorded_once(tmp_path: Path) -> None:
    async def main() -> None:
        store = await Store.open(db_url(tmp_path), clock=SystemClock())
        try:
            intake = Intake(store, Spool(tmp_path / "spool"))
            items = [
                await intake.accept(
                    mail(), kind="inbound", channel="imap", mail_from="", rcpt_to=[], imap_key="INBOX/1/9"
                )
                for _ in range(2)
            ]
            assert [(i.id, i.new) for i in items] == [(1, True), (1, False)]
            assert items[0].received_at == items[1].received_at
        finally:
            await store.close()
        assert len(await committed_rows(tmp_path)) == 1

    run(main)


def big_mail(lines: int) -> bytes:
    """A mail of ``lines`` base64-like lines, some starting with a dot (stuffed on the wire)."""
    body = "".join(f"{'.' if n % 97 == 0 else ''}{n:08d}{'QUJD' * 17}\r\n" for n in range(lines))
    return mail("big", body=body, message_id="<big@axis.test>")


def test_a_big_mail_is_streamed_to_the_spool_byte_exact(tmp_path: Path) -> None:
    """Spec A1 (original bytes kept): a 5 MB mail arrives in many chunks; the spool holds it exactly."""

    async def main() -> None:
        raw = big_mail(65_000)
        async with gateway(tmp_path) as (server, store, spool):
            assert await send(server.address[1], raw) == "2.0.0 Ok: queued as 1"
            view = await store.get(1)
            assert view is not None
            assert (view.size, view.message_id_header) == (len(raw), "<big@axis.test>")
            assert spool.path(view.sha256).read_bytes() == raw
            assert not list(spool.directory.rglob(".tmp-*"))

    run(main)


def test_a_disk_filling_up_during_data_is_452_and_the_session_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC half way through DATA: the rest is drained, 452 is answered, nothing is kept."""
    real_write = os.write
    full = threading.Event()

    def write(fd: int, data: bytes) -> int:
        if full.is_set() and os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".tmp-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    async def main() -> None:
        async with gateway(tmp_path) as (server, _, spool):
            await send(server.address[1], mail("warm-up"))  # the spool's layout exists
            monkeypatch.setattr(os, "write", write)
            full.set()
            async with aiosmtplib.SMTP(
                hostname="127.0.0.1", port=server.address[1], start_tls=False, local_hostname=CLIENT_NAME
            ) as client:
                await client.mail("a@axis.test")
                await client.rcpt(RCPT)
                with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                    await client.data(big_mail(30_000))
                assert (refused.value.code, refused.value.message) == (
                    452,
                    "4.3.1 Insufficient system storage; try again later",
                )
                full.clear()
                await client.mail("a@axis.test")  # the session goes on: the DATA was drained
                await client.rcpt(RCPT)
                assert (await client.data(mail("after"))).message == "2.0.0 Ok: queued as 2"
            monkeypatch.undo()
            assert [row[0] for row in await committed_rows(tmp_path)] == [1, 2]
            assert not list(spool.directory.rglob(".tmp-*"))

    run(main)
