"""Two ``gateway serve`` processes on one PostgreSQL and one shared spool; one is killed with SIGKILL.

Issue 7's acceptance test. Two instances (``gw-a``, ``gw-b``), each its own configuration and
ports, share the receipt log and work queue (a database of the session's PostgreSQL), the spool
directory, the DMS Maildir and the axis Maildir. Their OCSP, CRL and TSA are the session's
development PKI, served by this test process.

1. Clients send really signed mails (each its own ``X-Seq`` header, so its own SHA-256) to both
   instances' SMTP listeners, alternating. A client whose attempt gets no 250 retries the same
   bytes at the other instance, as an MTA with two MX hosts would.
2. Once ``gw-a`` has delivered a few items and holds claimed work (an ``active`` item it owns,
   seen while the process is stopped with SIGSTOP), it is killed with SIGKILL and left dead: its
   half-done items keep their lease until it expires.
3. ``gw-b`` takes those items back once the lease (``[store] lease_seconds = 4``) has expired
   (journal: ``lease of gw-a expired``), claims and finishes them, and everything else.

What must hold: every acknowledged mail is in the log, ``delivered``; every receipt is delivered
to the DMS exactly once (one file ``new/<id>-<sha256 prefix>``, the mail byte for byte behind
the gateway's headers); each receipt's journal has one ``received``, one ``verdict`` and one
``delivered``, and no claim of an item that was still ``active`` (each item worked on by one
instance at a time); some item was claimed by ``gw-a`` and finished by ``gw-b``; both instances
did work; the hash chain and the rows verify (``gateway log verify-chain``), and the survivor
stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import pytest

from gateway.clock import SystemClock
from gateway.devpki import DevPKI
from gateway.edxml.build import build
from gateway.pipeline.context import delivery_key
from gateway.store import TERMINAL, JournalView, MessageView, Store
from tests.pdfs import SignedPdfs
from tests.pipeline.test_receive import carrying, document
from tests.postgres import PgDatabase
from tests.service import OUR_MAIL, write_config
from tests.smtpsink import free_port
from tests.soak.process import GatewayProcess, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]

MESSAGES = 60
CLIENTS = 6
LEASE_SECONDS = 4.0
KILL_AFTER = 5
THINK_SECONDS = 0.5
"""A client's pause between two mails: sending lasts past the kill (~10 mails/s offered)."""
"""gw-a is killed once it has delivered this many items and holds claimed work."""
DRAIN_SECONDS = 240.0
_QUEUED = re.compile(r"queued as (\d+)\s*$")


@dataclass
class Instance:
    """One gateway process and where it listens."""

    name: str
    config: Path
    smtp: int
    process: GatewayProcess


@dataclass
class Message:
    """One test mail and what the clients learnt sending it."""

    seq: int
    mail: bytes
    sha256: str
    acked: int | None = None
    unknown: int = 0
    """Attempts whose DATA was sent but whose reply never came (a 250 lost in the kill)."""


def _instance(root: Path, name: str, pki: DevPKI, url: str, shared: Path) -> Instance:
    ports = {key: free_port() for key in ("smtp", "submission", "http")}
    home = root / name
    home.mkdir()
    config = write_config(
        home,
        pki,
        dms=f"maildir:{shared / 'dms'}",
        axis=f"maildir:{shared / 'axis'}",
        smtp_listen=f"127.0.0.1:{ports['smtp']}",
        submission_listen=f"127.0.0.1:{ports['submission']}",
        http_listen=f"127.0.0.1:{ports['http']}",
        workers=2,
    )
    text = config.read_text(encoding="utf-8")
    ours = f'url = "{url}"\nspool = "{shared / "spool"}"\ninstance = "{name}"\nlease_seconds = {LEASE_SECONDS}\n'
    text, replaced = re.subn(r'(?m)^url = "sqlite[^\n]*\nspool = [^\n]*\n', ours, text)
    assert replaced == 1, "the [store] table of write_config changed: adapt this test"
    config.write_text(text, encoding="utf-8")
    process = GatewayProcess(config, http=("127.0.0.1", ports["http"]), log=home / "gateway.log")
    return Instance(name, config, ports["smtp"], process)


async def _attempt(port: int, message: Message) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30, local_hostname="axis.test")
    try:
        try:
            await client.connect()
            await client.ehlo()
            await client.mail("bounces@chinhphu.vn")
            await client.rcpt(OUR_MAIL)
        except (aiosmtplib.SMTPException, OSError):
            return
        try:
            reply = await client.data(message.mail)
        except aiosmtplib.SMTPResponseException:
            return
        except (aiosmtplib.SMTPException, OSError):
            message.unknown += 1
            return
        found = _QUEUED.search(reply.message)
        assert reply.code == 250, reply
        assert found is not None, reply
        message.acked = int(found.group(1))
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()
    finally:
        client.close()


async def _client(ports: list[int], queue: asyncio.Queue[Message], first: int) -> None:
    turn = first
    while not queue.empty():
        message = queue.get_nowait()
        while message.acked is None:
            await _attempt(ports[turn % len(ports)], message)
            turn += 1  # the next attempt (or mail) goes to the other instance
            if message.acked is None:
                await asyncio.sleep(0.2)
        await asyncio.sleep(THINK_SECONDS)


async def _snapshot(url: str, *, events: bool = False) -> tuple[list[MessageView], dict[int, list[JournalView]]]:
    store = await Store.open(url, clock=SystemClock(), migrate=False)
    try:
        items = list(await store.list(limit=100_000))
        return items, ({i.id: await store.history(i.id) for i in items} if events else {})
    finally:
        await store.close()


async def _until(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {within:g} s"
        await asyncio.sleep(0.2)


async def _freeze_while_working(instance: Instance, working: Callable[[], Awaitable[bool]]) -> None:
    """Stop ``instance`` (SIGSTOP) at a moment it holds claimed work, seen while it is stopped.

    Seen while it runs, the work could be finished between the look and the kill (it happened
    under load in CI): a stopped process changes nothing, so the second look is the state the
    kill leaves. SIGKILL ends a stopped process like a running one.
    """
    deadline = time.monotonic() + 60
    while True:
        if await working():
            pid = instance.process.pid
            assert pid is not None, f"{instance.name} is not running"
            os.kill(pid, signal.SIGSTOP)
            if await working():
                return
            os.kill(pid, signal.SIGCONT)
        assert time.monotonic() < deadline, f"{instance.name} claimed no work within 60 s"
        await asyncio.sleep(0.2)


def test_two_instances_share_the_queue_and_the_survivor_finishes_a_killed_ones_work(
    tmp_path: Path, pg_db: PgDatabase, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    """A dead instance's claims come back after the lease; nothing is lost or done twice (A10)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    a, b = (_instance(tmp_path, name, dev_pki, pg_db.url, shared) for name in ("gw-a", "gw-b"))
    package = build(document(("cong-van.pdf", signed_pdfs.main)))
    messages = []
    for seq in range(MESSAGES):
        mail = carrying(package, headers={"X-Seq": str(seq)})
        messages.append(Message(seq, mail, hashlib.sha256(mail).hexdigest()))
    by_sha = {m.sha256: m for m in messages}
    timeline: list[str] = []

    async def a_is_working() -> bool:
        # Killed in the middle of things: gw-a has finished some work and holds some now.
        items, _ = await _snapshot(pg_db.url)
        done = sum(i.state == "delivered" and i.owner == "gw-a" for i in items)
        return done >= KILL_AFTER and any(i.state == "active" and i.owner == "gw-a" for i in items)

    async def drained() -> bool:
        items, _ = await _snapshot(pg_db.url)
        inbound = [i for i in items if i.kind == "inbound"]
        acked = all(m.acked is not None for m in messages)
        held = [i for i in items if i.state == "hold"]
        assert not held, [(i.id, i.last_error) for i in held]
        return acked and bool(inbound) and all(i.state in TERMINAL[i.kind] for i in items)

    async def go() -> None:
        await asyncio.gather(a.process.start(), b.process.start())
        began = time.monotonic()
        queue: asyncio.Queue[Message] = asyncio.Queue()
        for message in messages:
            queue.put_nowait(message)
        clients = asyncio.gather(*(_client([a.smtp, b.smtp], queue, n) for n in range(CLIENTS)))
        try:
            await _freeze_while_working(a, a_is_working)
            assert a.process.kill() == -9
            acked = sum(m.acked is not None for m in messages)
            timeline.append(f"gw-a killed at {time.monotonic() - began:.1f} s, {acked} acked")
            await asyncio.wait_for(clients, timeout=DRAIN_SECONDS)
        finally:
            clients.cancel()
        await _until(drained, DRAIN_SECONDS, "the queue did not drain")
        timeline.append(f"drained at {time.monotonic() - began:.1f} s")
        assert b.process.alive(), "the survivor died"
        assert await b.process.stop() == 0, "a graceful stop (SIGTERM) exits 0"

    try:
        asyncio.run(go())
    except BaseException as exc:
        exc.add_note(f"logs: {a.process.log}, {b.process.log}; " + "; ".join(timeline))
        raise
    finally:
        a.process.close()
        b.process.close()
        print("\n".join(timeline))
    items, events = asyncio.run(_snapshot(pg_db.url, events=True))
    _check(messages, by_sha, items, events, shared)
    chain = run_cli("log", "verify-chain", "--config", str(b.config))
    assert chain.returncode == 0, chain.stdout + chain.stderr


def _check(
    messages: list[Message],
    by_sha: dict[str, Message],
    items: list[MessageView],
    events: dict[int, list[JournalView]],
    shared: Path,
) -> None:
    by_id = {i.id: i for i in items}
    inbound = [i for i in items if i.kind == "inbound"]
    for m in messages:
        assert m.acked is not None
        row = by_id.get(m.acked)
        assert row is not None, f"message {m.seq}: acked as {m.acked}, missing from the log"
        assert (row.kind, row.sha256) == ("inbound", m.sha256)
    receipts = Counter(by_sha[row.sha256].seq for row in inbound)
    for m in messages:  # a second receipt only where a 250 was lost in the kill
        assert 1 <= receipts[m.seq] <= 1 + m.unknown, (m.seq, receipts[m.seq])
    taken_over = 0
    owners: Counter[str] = Counter()
    for row in inbound:
        assert (row.state, row.verdict) == ("delivered", "accepted"), (row.id, row.state, row.last_error)
        trail = events[row.id]
        names = Counter(e.event for e in trail)
        assert (names["received"], names["verdict"], names["delivered"]) == (1, 1, 1), (row.id, trail)
        claims = [e for e in trail if e.data.get("reason") == "claimed"]
        assert claims, row.id
        assert all(e.data["from"] != "active" for e in claims), "an item claimed while another worked on it"
        owners.update(e.data["fields"]["owner"] for e in claims)
        if any(e.data.get("reason") == "lease of gw-a expired" for e in trail):
            assert claims[-1].data["fields"]["owner"] == "gw-b"
            taken_over += 1
    assert set(owners) == {"gw-a", "gw-b"}, f"both instances claimed work: {owners}"
    assert taken_over >= 1, "the killed instance's work was finished by the survivor after its lease"
    print(f"{len(inbound)} receipts, claims by instance {dict(owners)}, {taken_over} taken over from gw-a")
    delivered = {p.name: p.read_bytes() for p in (shared / "dms" / "new").iterdir()}
    assert set(delivered) == {delivery_key(r.id, r.sha256) for r in inbound}, "each receipt in the DMS once"
    for row in inbound:
        assert delivered[delivery_key(row.id, row.sha256)].endswith(by_sha[row.sha256].mail)
    assert not list((shared / "dms" / "tmp").iterdir())
    notices = [i for i in items if i.kind == "notice"]
    assert sorted(n.parent_id or 0 for n in notices) == sorted(r.id for r in inbound)
    assert all(n.state == "sent" for n in notices)
