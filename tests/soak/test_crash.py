"""Crash safety (issue 5): ``kill -9`` the gateway while 20 clients send it 500 messages.

The gateway runs as a child process (``tests.soak.process``) on a fixed configuration: SQLite
receipt log, spool, the DMS as a Maildir (exactly once by delivery key) and the axis as a
Maildir (the status 01 notices). Its OCSP, CRL and TSA are the session's development PKI,
served by this test process, which outlives every kill.

What happens:

1. 500 distinct mails, each carrying the same really signed edXML package (accepted by the real
   verifier) but with its own ``Message-ID`` and ``X-Soak-Seq`` header, so each has its own
   SHA-256 and can be recognised in the DMS.
2. 20 aiosmtplib clients send them in parallel, paced so that sending lasts through most of the
   rounds. A client whose attempt gets no 250 (connection refused, dropped, a 4xx) retries the
   same bytes after a short pause, as an MTA would. Each 250's ``queued as <id>`` is recorded.
3. A killer sends SIGKILL at a random moment, waits a random short down time, and restarts the
   gateway on the same configuration: five rounds. Kills land in SMTP dialogues, group commits,
   verifications, deliveries and notices. The moments are seeded: ``GATEWAY_SOAK_SEED=<seed>``
   replays the kill intervals and the clients' pacing (the interleaving with the gateway's own
   work is the OS scheduler's, so a replay comes close, not identical).
4. After the fifth kill the gateway is started once more; the clients finish, the queue drains
   (read from the receipt log, read-only), and SIGTERM stops it: exit status 0.

What must hold:

* every message got a 250 in the end, and every acknowledged id is in the receipt log with the
  bytes that were acknowledged (SHA-256, ``Message-ID``), in the terminal state ``delivered``;
* every inbound row of the log is one of our messages, and is ``delivered``; nothing is left
  ``incoming``, ``active``, ``deferred`` or on ``hold``;
* however often an item was replayed, its journal holds exactly one ``received``, one ``verdict``
  and one ``delivered`` (its last event); each notice exactly one ``sent``;
* the DMS Maildir holds exactly one file per inbound row (``new/<id>-<sha256 prefix>``), each the
  acknowledged mail byte for byte behind the gateway's headers; ``cur/`` and ``tmp/`` are
  empty (a kill between the link into ``new/`` and the cleanup of ``tmp/`` is repaired by the replay);
* ``gateway log verify-chain`` exits 0: the hash chain and the rows agree after five kills.

A 250 lost in a kill. The intake commits the row, then answers 250; a kill in between leaves a
committed receipt whose sender never heard of it. The sender retries (it must: it has no 250)
and the retry is a second receipt of the same bytes, delivered once in its own right: at least
once across a lost 250, as with Postfix. So the test does not require one DMS file per message;
it requires one per *receipt*, every receipt to be one of the messages, and the receipts of a
message beyond the acknowledged one to be no more than that message's attempts whose DATA was
sent but whose reply never came (the only attempts whose outcome the client cannot know). An
attempt that failed before DATA, or got a 4xx/5xx reply, must have left no receipt.

The status 01 notices go to the axis at least once (the Maildir sender writes, then the log
records ``sent``; a kill between them sends it again): each delivered row has exactly one
notice row, ``sent``, found in the axis Maildir at least once, and the copies beyond one are
bounded by the kills times the workers (one per notice in flight at a kill).

Diagnosis: the seed, the gateway's log (all runs, one file) and the working directory are
printed at the start and attached to any failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import aiosmtplib
import pytest

from gateway.clock import SystemClock
from gateway.devpki import DevPKI
from gateway.edxml.build import build
from gateway.pipeline.context import delivery_key
from gateway.store import TERMINAL, MessageView, Store
from tests.pdfs import SignedPdfs
from tests.pipeline.test_receive import carrying, document
from tests.service import OUR_MAIL, write_config
from tests.smtpsink import free_port
from tests.soak.process import GatewayProcess, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]

MESSAGES = 500
CLIENTS = 20
ROUNDS = 5
WORKERS = 2
SEED_VARIABLE = "GATEWAY_SOAK_SEED"

ROUND_SECONDS = (4.0, 12.0)
"""How long the gateway runs before each kill (uniform, seconds after it answered /healthz)."""
DOWN_SECONDS = (0.0, 1.5)
"""How long it stays dead before the restart (clients meet refused connections meanwhile)."""
THINK_SECONDS = (0.0, 3.2)
"""A client's pause between two messages. 20 clients then offer ~12 messages/s, a little more
than the gateway judges and delivers on 2 cores (~9/s measured): sending lasts ~40 s, through
most of the five rounds, and a backlog of verification and delivery is in flight at every kill."""
RETRY_SECONDS = (0.1, 0.5)
"""A client's pause before retrying a message that got no 250."""
SMTP_TIMEOUT = 60.0
DRAIN_SECONDS = 600.0
SENDER = "bounces@chinhphu.vn"
_QUEUED = re.compile(r"queued as (\d+)\s*$")


@dataclass
class Message:
    """One test message and what the clients learnt sending it."""

    seq: int
    mail: bytes
    sha256: str
    message_id: str
    acked: int | None = None
    """The id of ``250 ... queued as <id>``."""
    attempts: int = 0
    unknown: int = 0
    """Attempts whose DATA was sent but whose reply never came (the kill's lost 250s)."""


def _messages(package: bytes) -> list[Message]:
    made = []
    for seq in range(MESSAGES):
        mail = carrying(package, headers={"X-Soak-Seq": str(seq)})
        header = BytesHeaderParser(policy=compat32).parsebytes(mail)
        made.append(Message(seq, mail, hashlib.sha256(mail).hexdigest(), str(header["Message-ID"])))
    assert len({m.sha256 for m in made}) == MESSAGES, "the test messages must be distinct"
    return made


async def _attempt(port: int, message: Message) -> None:
    """One SMTP transaction for ``message``; records its outcome on it."""
    message.attempts += 1
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=SMTP_TIMEOUT, local_hostname="axis.test")
    try:
        try:
            await client.connect()
            await client.ehlo()
            await client.mail(SENDER)
            await client.rcpt(OUR_MAIL)
        except (aiosmtplib.SMTPException, OSError):
            return  # nothing of DATA was sent: the gateway cannot have a receipt
        try:
            reply = await client.data(message.mail)
        except aiosmtplib.SMTPResponseException:
            return  # a definite "no" (4xx/5xx): nothing may have been queued
        except (aiosmtplib.SMTPException, OSError):
            message.unknown += 1  # sent, no reply: committed or not, the client cannot tell
            return
        queued = _QUEUED.search(reply.message)
        assert reply.code == 250, f"unexpected DATA reply {reply}"
        assert queued is not None, f"a 250 without the queued id: {reply}"
        message.acked = int(queued.group(1))
        # The gateway may die right after its 250: the message is acknowledged all the same.
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()
    finally:
        client.close()


async def _client(port: int, queue: asyncio.Queue[Message], rng: random.Random) -> None:
    """Send messages from ``queue`` until it is empty, retrying each until it gets a 250."""
    while not queue.empty():
        message = queue.get_nowait()
        while message.acked is None:
            await _attempt(port, message)
            if message.acked is None:
                await asyncio.sleep(rng.uniform(*RETRY_SECONDS))
        await asyncio.sleep(rng.uniform(*THINK_SECONDS))


async def _items(url: str) -> list[MessageView]:
    """Every work item in the receipt log (read-only: the log is the running gateway's)."""
    store = await Store.open(url, clock=SystemClock(), migrate=False)
    try:
        return list(await store.list(limit=1_000_000))
    finally:
        await store.close()


async def _final(url: str) -> tuple[list[MessageView], dict[int, list[str]]]:
    """Every work item and the journal events of each, from the stopped gateway's log."""
    store = await Store.open(url, clock=SystemClock(), migrate=False)
    try:
        items = list(await store.list(limit=1_000_000))
        return items, {i.id: [e.event for e in await store.history(i.id)] for i in items}
    finally:
        await store.close()


async def _drain(url: str, expected: int, within: float) -> None:
    """Wait until ``expected`` inbound rows exist and nothing is left to do (or something is held)."""
    deadline = time.monotonic() + within
    while True:
        items = await _items(url)
        states = Counter(i.state for i in items)
        inbound = sum(1 for i in items if i.kind == "inbound")
        pending = sum(1 for i in items if i.state not in TERMINAL[i.kind] and i.state != "hold")
        if states["hold"] or (inbound >= expected and not pending):
            return  # a held item fails the checks that follow, with its reason
        if time.monotonic() > deadline:
            raise AssertionError(f"the queue did not drain within {within:g} s: {dict(states)}")
        await asyncio.sleep(0.5)


@contextlib.contextmanager
def _explained(note: str) -> Iterator[None]:
    """Attach ``note`` (seed, log) to any failure inside."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(note)
        raise


def test_kill_9_five_times_under_load_loses_nothing_and_delivers_each_receipt_once(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(2**32))
    ports = {name: free_port() for name in ("smtp", "submission", "http")}
    config = write_config(
        tmp_path,
        dev_pki,
        dms="maildir:dms",
        axis="maildir:axis",
        smtp_listen=f"127.0.0.1:{ports['smtp']}",
        submission_listen=f"127.0.0.1:{ports['submission']}",
        http_listen=f"127.0.0.1:{ports['http']}",
        workers=WORKERS,
        retry_initial_seconds=1.0,
        retry_max_seconds=2.0,
    )
    log = tmp_path / "gateway.log"
    note = f"soak seed {seed} ({SEED_VARIABLE}={seed} replays it); gateway log {log}; directory {tmp_path}"
    print(note)
    messages = _messages(build(document(("cong-van.pdf", signed_pdfs.main))))
    by_sha = {m.sha256: m for m in messages}
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    gateway = GatewayProcess(config, http=("127.0.0.1", ports["http"]), log=log)
    rng = random.Random(seed)  # noqa: S311 - kill moments, not secrets
    client_rngs = [random.Random(rng.getrandbits(64)) for _ in range(CLIENTS)]  # noqa: S311 - pacing
    timeline: list[str] = []

    async def killer(clients: asyncio.Future[list[None]]) -> None:
        acked_at, active_at = [], []
        for round_ in range(1, ROUNDS + 1):
            await asyncio.sleep(rng.uniform(*ROUND_SECONDS))
            acked_at.append(sum(m.acked is not None for m in messages))
            assert gateway.kill() == -9, f"the gateway had died before kill {round_}"
            # What the dead process left half done (``active``): the work the restart must recover.
            active_at.append(sum(i.state == "active" for i in await _items(url)))
            timeline.append(
                f"kill {round_} at {time.monotonic() - began:.1f} s: {acked_at[-1]} acked, {active_at[-1]} left active"
            )
            await asyncio.sleep(rng.uniform(*DOWN_SECONDS))
            await gateway.start()
        timeline.append(f"clients done before the last kill: {clients.done()}")
        # The soak proves something only if kills hit both the intake and the pipeline.
        assert acked_at[0] < MESSAGES, "the first kill came after the clients had finished: pace them"
        assert any(active_at), "no kill caught a work item in progress"

    async def go() -> None:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        for message in messages:
            queue.put_nowait(message)
        await gateway.start()
        clients = asyncio.gather(*(_client(ports["smtp"], queue, r) for r in client_rngs))
        try:
            await killer(clients)
            await asyncio.wait_for(clients, timeout=DRAIN_SECONDS)
        finally:
            clients.cancel()
        timeline.append(f"all acked at {time.monotonic() - began:.1f} s")
        await _drain(url, MESSAGES, DRAIN_SECONDS)
        timeline.append(f"drained at {time.monotonic() - began:.1f} s")
        assert gateway.alive(), "the gateway died on its own"
        assert await gateway.stop() == 0, "a graceful stop (SIGTERM) must exit 0"
        _check(*await _final(url))

    def _check(items: list[MessageView], events: dict[int, list[str]]) -> None:
        # Every acknowledged id is in the log with the acknowledged bytes, delivered.
        assert all(m.acked is not None for m in messages)
        by_id = {i.id: i for i in items}
        for m in messages:
            assert m.acked is not None
            row = by_id.get(m.acked)
            assert row is not None, f"message {m.seq}: acked as {m.acked}, missing from the log"
            assert (row.kind, row.sha256, row.message_id_header) == ("inbound", m.sha256, m.message_id), m.seq
        inbound = [i for i in items if i.kind == "inbound"]
        notices = [i for i in items if i.kind == "notice"]
        assert {i.kind for i in items} <= {"inbound", "notice"}
        # Every receipt is one of ours and reached exactly one terminal state: delivered.
        for row in inbound:
            assert row.sha256 in by_sha, f"inbound {row.id} is no message of this test"
            assert (row.state, row.verdict) == ("delivered", "accepted"), (row.id, row.state, row.last_error)
        # Exactly one decision and one terminal step each in the journal, however often replayed.
        for row in inbound:
            trail = Counter(events[row.id])
            assert (trail["received"], trail["verdict"], trail["delivered"]) == (1, 1, 1), (row.id, events[row.id])
            assert events[row.id][-1] == "delivered", (row.id, events[row.id])
        for notice in notices:
            assert Counter(events[notice.id])["sent"] == 1, (notice.id, events[notice.id])
            assert events[notice.id][-1] == "sent", (notice.id, events[notice.id])
        timeline.append(f"{len(inbound)} receipts of {MESSAGES} messages, {len(notices)} notices")
        # Receipts beyond the acknowledged one come only from attempts whose reply was lost.
        receipts = Counter(by_sha[row.sha256].seq for row in inbound)
        for m in messages:
            assert 1 <= receipts[m.seq] <= 1 + m.unknown, (m.seq, receipts[m.seq], m)
        # The DMS has each receipt exactly once, byte for byte, and nothing else.
        dms = tmp_path / "dms"
        delivered = {p.name: p.read_bytes() for p in (dms / "new").iterdir()}
        assert set(delivered) == {delivery_key(r.id, r.sha256) for r in inbound}
        for row in inbound:
            data = delivered[delivery_key(row.id, row.sha256)]
            head, _, _ = data.partition(b"\r\n\r\n")
            assert data.endswith(by_sha[row.sha256].mail), f"inbound {row.id}: not the acknowledged bytes"
            assert f"X-Gateway-Report: {row.id};".encode() in head
        # A kill between the link to new/ and the unlink of tmp/ leaves tmp/<key> behind; the
        # replay of that item (it was not yet recorded delivered) removes it: nothing may remain.
        assert not list((dms / "tmp").iterdir()), "DMS tmp/ holds what a kill left"
        assert not list((dms / "cur").iterdir())
        # One status 01 per receipt, sent at least once, duplicates bounded by the kills.
        assert sorted(n.parent_id or 0 for n in notices) == sorted(r.id for r in inbound)
        assert all(n.state == "sent" for n in notices), Counter(n.state for n in notices)
        told = Counter(
            int(found.group(1))
            for p in (tmp_path / "axis" / "new").iterdir()
            if (found := re.search(rb"(?m)^X-Gateway-Notice: (\d+); status-01\r?$", p.read_bytes()))
        )
        assert set(told) == {r.id for r in inbound}
        assert sum(told.values()) - len(told) <= ROUNDS * WORKERS, told.most_common(3)
        timeline.append(f"axis: {sum(told.values())} status 01 mails for {len(told)} notices")
        # The hash chain survived every kill.
        chain = run_cli("log", "verify-chain", "--config", str(config))
        assert chain.returncode == 0, chain.stdout + chain.stderr

    began = time.monotonic()
    with _explained(note):
        try:
            asyncio.run(go())
        finally:
            gateway.close()
            attempts, lost = sum(m.attempts for m in messages), sum(m.unknown for m in messages)
            timeline.append(f"{attempts} attempts, {lost} with a lost reply, {time.monotonic() - began:.0f} s")
            print("\n".join(timeline))
