"""Concurrent claimers and writers on one SQLite file: every item claimed once, the chain linear."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import SystemClock
from gateway.store import AlreadyRecorded, Store, session
from gateway.store.session import Transactions
from tests.store.claimer import claim_all
from tests.store.helpers import db_url, intake, open_store, raw_sql

REPO = Path(__file__).resolve().parents[2]
ITEMS = 120


async def _fill(tmp_path: Path, count: int) -> None:
    async with open_store(tmp_path, SystemClock()) as store:
        for n in range(count):
            await store.record_intake(intake(n))


def _assert_each_once(tmp_path: Path, taken: list[list[int]], *, all_busy: bool) -> None:
    counts = Counter(i for ids in taken for i in ids)
    assert sorted(counts) == list(range(1, ITEMS + 1)), "every item claimed"
    assert set(counts.values()) == {1}, "no item claimed twice"
    if all_busy:
        assert all(ids for ids in taken), "every claimer got work (they really ran together)"
    assert raw_sql(tmp_path, "SELECT state, count(*) FROM messages GROUP BY state") == [("delivered", ITEMS)]
    seqs = [s for (s,) in raw_sql(tmp_path, "SELECT seq FROM journal ORDER BY seq")]
    assert seqs == list(range(1, ITEMS * 3 + 1)), "one linear chain: received, claimed, delivered per item"


def test_two_stores_in_one_process_claim_each_item_once(tmp_path: Path) -> None:
    # Two engines = two connection pools: they contend through SQLite's locks exactly as two
    # processes would, while the asyncio tasks interleave at every await.
    async def scenario() -> list[list[int]]:
        await _fill(tmp_path, ITEMS)
        first = await Store.open(db_url(tmp_path), clock=SystemClock())
        second = await Store.open(db_url(tmp_path), clock=SystemClock())
        try:
            results = await asyncio.gather(claim_all(first), claim_all(second), claim_all(first), claim_all(second))
            assert (await first.verify_chain()).ok
            return list(results)
        finally:
            await first.close()
            await second.close()

    _assert_each_once(tmp_path, asyncio.run(scenario()), all_busy=False)


def test_two_processes_claim_each_item_once(tmp_path: Path) -> None:
    asyncio.run(_fill(tmp_path, ITEMS))
    outs = [tmp_path / f"taken-{n}.json" for n in range(2)]
    gate = tmp_path / "go"
    command = [sys.executable, "-m", "tests.store.claimer", db_url(tmp_path)]
    workers = [subprocess.Popen([*command, str(out), str(gate)], cwd=REPO) for out in outs]
    deadline = time.monotonic() + 60
    while not all(out.with_suffix(".ready").exists() for out in outs):
        assert time.monotonic() < deadline, "claimers did not start"
        time.sleep(0.01)
    gate.touch()  # both open, both start claiming now
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    _assert_each_once(tmp_path, [json.loads(out.read_text(encoding="utf-8")) for out in outs], all_busy=True)


def test_concurrent_intakes_keep_the_chain_linear(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_store(tmp_path, SystemClock()) as store:
            other = await Store.open(db_url(tmp_path), clock=SystemClock())
            try:
                await asyncio.gather(
                    *(s.record_intake(intake(n)) for n in range(60) for s in ([store] if n % 2 else [other]))
                )
            finally:
                await other.close()
            check = await store.verify_chain()
            assert check.ok
            assert check.count == 60

    asyncio.run(scenario())


def test_group_commit_isolates_a_failing_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Many writes at once share one transaction; a request that fails gets its own error and
    # leaves no trace, the others commit exactly as if each had run alone, in order.
    attempts: list[int] = []
    real = Transactions._attempt

    async def counted(self: Transactions, pending: list[Any], **options: Any) -> Any:
        attempts.append(len(pending))
        return await real(self, pending, **options)

    monkeypatch.setattr(Transactions, "_attempt", counted)

    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            first = await store.record_intake(intake("held"))
            jobs = [store.record_intake(intake(n, channel="imap", imap_key=f"INBOX/1/{n % 8}")) for n in range(10)]
            jobs.append(store.transition(first.id, "sent", reason="wrong kind"))
            jobs.append(store.hold(first.id, "admin look"))
            results = await asyncio.gather(*jobs, return_exceptions=True)
            errors = [type(r).__name__ for r in results if isinstance(r, Exception)]
            assert sorted(errors) == ["AlreadyRecorded", "AlreadyRecorded", "InvalidTransition"]
            assert isinstance(results[8], AlreadyRecorded)
            assert results[8].existing_id == results[0].id  # type: ignore[union-attr]
            assert (await store.get(first.id)).state == "hold"  # type: ignore[union-attr]
            assert len(await store.list(limit=100)) == 9
            check = await store.verify_chain()
            assert check.ok
            assert check.count == 1 + 8 + 1
            # One lone write; the ten intakes together (urgent: a batch of their own), retried
            # without each failing one in turn; then the two other writes, without the failing one.
            assert attempts[:6] == [1, 10, 9, 8, 2, 1]

    asyncio.run(scenario())


def test_intakes_are_committed_ahead_of_other_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A client waits for each intake's 250 (issue 7, P3): queued behind the pipeline's own
    # writes, an intake still goes in the next transaction, and not in theirs.
    batches: list[int] = []
    real = Transactions._attempt

    async def counted(self: Transactions, pending: list[Any], **options: Any) -> Any:
        batches.append(len(pending))
        return await real(self, pending, **options)

    monkeypatch.setattr(Transactions, "_attempt", counted)

    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            old = [await store.record_intake(intake(f"old {n}")) for n in range(2)]
            jobs = [store.hold(item.id, "admin look") for item in old]
            jobs += [store.record_intake(intake(n)) for n in range(3)]
            results = await asyncio.gather(*jobs)
            held = [(await store.history(item.id))[-1].seq for item in old]
            received = [(await store.history(item.id))[-1].seq for item in results[2:]]
            assert max(received) < min(held)

    asyncio.run(scenario())
    assert batches == [1, 1, 3, 2]


def test_other_writes_are_not_starved_by_intakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Once the oldest other write has waited URGENT_LEAD, it goes before the intakes.
    batches: list[int] = []
    real = Transactions._attempt

    async def counted(self: Transactions, pending: list[Any], **options: Any) -> Any:
        batches.append(len(pending))
        return await real(self, pending, **options)

    monkeypatch.setattr(Transactions, "_attempt", counted)
    monkeypatch.setattr(session, "URGENT_LEAD", -1.0)  # every other write has waited "too long"

    async def scenario() -> None:
        async with open_store(tmp_path) as store:
            old = [await store.record_intake(intake(f"old {n}")) for n in range(2)]
            jobs = [store.hold(item.id, "admin look") for item in old]
            jobs += [store.record_intake(intake(n)) for n in range(3)]
            results = await asyncio.gather(*jobs)
            held = [(await store.history(item.id))[-1].seq for item in old]
            received = [(await store.history(item.id))[-1].seq for item in results[2:]]
            assert max(held) < min(received)

    asyncio.run(scenario())
    assert batches == [1, 1, 2, 3]
