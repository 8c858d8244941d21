"""The scheduler on the real store: recovery at start, N workers, holds, graceful stop, wake-ups.

Handlers here are small test handlers that move their item on (or misbehave on purpose); the
real handlers have their own tests. Also the retry delay (``backoff``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.devpki import DevPKI
from gateway.pipeline.context import Handler, PipelineContext, backoff, delivery_key
from gateway.pipeline.scheduler import Scheduler
from gateway.settings import QueueSettings
from gateway.store import Intake, MessageView
from tests.pipeline.test_receive import World, world


async def add(w: World, count: int = 1) -> list[int]:
    ids = []
    for n in range(count):
        sha256 = await w.spool.put(f"Subject: {n}\r\n\r\nitem {n}\r\n".encode())
        row = await w.store.record_intake(Intake(kind="inbound", channel="smtp", sha256=sha256, size=20))
        ids.append(row.id)
    return ids


async def refuse(item: MessageView, ctx: PipelineContext) -> None:
    await ctx.store.transition(item.id, "refused", reason="test handler")


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def states(w: World, ids: list[int]) -> list[str]:
    rows = [await w.store.get(i) for i in ids]
    return [r.state if r is not None else "missing" for r in rows]


def scheduler(w: World, handler: Handler, **options: float) -> tuple[Scheduler, asyncio.Event]:
    wake = asyncio.Event()
    workers = int(options.pop("workers", 2))
    return Scheduler(w.ctx, {"inbound": handler}, workers=workers, wake=wake, **options), wake


def test_items_left_active_by_a_crash_are_recovered_at_start(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            ids = await add(w, 2)
            assert [c.id for c in await w.store.claim(["inbound"], w.clock.now())] == ids[:1]  # then "crash"
            s, _ = scheduler(w, refuse, poll_seconds=0.05)
            running = asyncio.create_task(s.run())
            await until(lambda: _all(w, ids, "refused"))
            await s.stop(grace=1.0)
            await running
            journal = await w.store.history(ids[0])
            assert any(e.data.get("reason") == "recovered at start" for e in journal)

    asyncio.run(go())


async def _all(w: World, ids: list[int], state: str) -> bool:
    return await states(w, ids) == [state] * len(ids)


def test_n_workers_run_at_most_n_items_at_once(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            gate = asyncio.Event()
            seen: list[int] = []

            async def slow(item: MessageView, ctx: PipelineContext) -> None:
                seen.append(len(s.in_flight))
                await gate.wait()
                await refuse(item, ctx)

            ids = await add(w, 5)
            s, _ = scheduler(w, slow, workers=3, poll_seconds=0.05)
            running = asyncio.create_task(s.run())

            async def three_busy() -> bool:
                return len(s.in_flight) == 3

            await until(three_busy)
            await asyncio.sleep(0.2)  # give a fourth worker every chance to appear
            assert len(s.in_flight) == 3
            gate.set()
            await until(lambda: _all(w, ids, "refused"))
            await s.stop(grace=1.0)
            await running
            assert max(seen) <= 3
            assert len(seen) == 5

    asyncio.run(go())


def test_misbehaving_handlers_hold_their_items(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            raises, lazy, slow, own_timeout, fine = await add(w, 5)

            async def handler(item: MessageView, ctx: PipelineContext) -> None:
                if item.id == raises:
                    raise RuntimeError("a bug")
                if item.id == slow:
                    await asyncio.sleep(30)
                if item.id == own_timeout:
                    raise TimeoutError("a handler's own deadline, uncaught")
                if item.id != lazy:
                    await refuse(item, ctx)

            s, _ = scheduler(w, handler, poll_seconds=0.05, deadline_seconds=0.3)
            running = asyncio.create_task(s.run())
            ids = [raises, lazy, slow, own_timeout, fine]
            expected = ["hold", "hold", "hold", "hold", "refused"]

            async def settled() -> bool:
                return await states(w, ids) == expected

            await until(settled)
            await s.stop(grace=1.0)
            await running
            errors = [(await w.store.get(i)) for i in ids]
            assert [e.last_error if e else None for e in errors] == [
                "unexpected: RuntimeError",
                "handler left the item active",
                "deadline exceeded (0.3 s)",
                "unexpected: TimeoutError",
                None,
            ]

    asyncio.run(go())


def test_graceful_stop_finishes_in_flight_work_or_leaves_it_for_the_next_start(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            quick, stuck = await add(w, 2)
            started: set[int] = set()

            async def handler(item: MessageView, ctx: PipelineContext) -> None:
                started.add(item.id)
                await asyncio.sleep(0.2 if item.id == quick else 3600)
                await refuse(item, ctx)

            s, _ = scheduler(w, handler, workers=2, poll_seconds=0.05)
            running = asyncio.create_task(s.run())

            async def both_started() -> bool:
                return started == {quick, stuck}

            await until(both_started)
            begun = time.monotonic()
            await s.stop(grace=1.0)
            await running
            assert time.monotonic() - begun < 2.0
            assert await states(w, [quick, stuck]) == ["refused", "active"]
            assert s.in_flight == frozenset()
            # The next start recovers the stuck item and finishes it.
            again, _ = scheduler(w, refuse, poll_seconds=0.05)
            running = asyncio.create_task(again.run())
            await until(lambda: _all(w, [stuck], "refused"))
            await again.stop(grace=1.0)
            await running

    asyncio.run(go())


def test_a_wake_up_beats_the_poll_interval(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            handled = asyncio.Event()

            async def handler(item: MessageView, ctx: PipelineContext) -> None:
                await refuse(item, ctx)
                handled.set()

            s, wake = scheduler(w, handler, workers=3, poll_seconds=30.0)
            running = asyncio.create_task(s.run())
            await asyncio.sleep(0.1)  # every worker is idle now, for 30 s
            begun = time.monotonic()
            await add(w)
            wake.set()  # what the intake edge does after committing
            await asyncio.wait_for(handled.wait(), timeout=5.0)
            assert time.monotonic() - begun < 1.0
            await s.stop(grace=1.0)
            await running

    asyncio.run(go())


def test_deferred_items_are_taken_again_when_due(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            [item] = await add(w)
            attempts: list[int] = []

            async def handler(row: MessageView, ctx: PipelineContext) -> None:
                attempts.append(row.attempts)
                if len(attempts) == 1:
                    await ctx.store.defer(row.id, until=ctx.clock.now() + timedelta(minutes=1), error="OCSP down")
                else:
                    await refuse(row, ctx)

            s, _ = scheduler(w, handler, poll_seconds=0.05)
            running = asyncio.create_task(s.run())
            await until(lambda: _all(w, [item], "deferred"))
            await asyncio.sleep(0.2)
            assert attempts == [1]  # not due: left alone
            w.clock.advance(timedelta(minutes=1))
            await until(lambda: _all(w, [item], "refused"))
            await s.stop(grace=1.0)
            await running
            assert attempts == [1, 2]

    asyncio.run(go())


def test_the_scheduler_needs_handlers_and_workers(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            with pytest.raises(ValueError, match="handler"):
                Scheduler(w.ctx, {}, workers=1, wake=asyncio.Event())
            with pytest.raises(ValueError, match="workers"):
                Scheduler(w.ctx, {"inbound": refuse}, workers=0, wake=asyncio.Event())

    asyncio.run(go())


# --------------------------------------------------------------------------- backoff


def test_backoff_doubles_up_to_the_ceiling_with_bounded_jitter() -> None:
    queue = QueueSettings(retry_initial_seconds=60, retry_max_seconds=3600)
    rng = random.Random(5)  # noqa: S311 (jitter, not secrecy)
    for attempts, base in [(0, 60), (1, 60), (2, 120), (3, 240), (6, 1920)]:
        delay = backoff(attempts, queue, rng=rng).total_seconds()
        assert base * 0.9 <= delay <= base * 1.1, (attempts, delay)
    for attempts in (7, 8, 50, 10_000):
        delay = backoff(attempts, queue, rng=rng).total_seconds()
        assert 3600 * 0.9 <= delay <= 3600, (attempts, delay)
    spread = {backoff(3, queue, rng=rng) for _ in range(20)}
    assert len(spread) > 1  # jitter: items that failed together do not return together
    tiny = QueueSettings(retry_initial_seconds=0, retry_max_seconds=0)
    assert backoff(1, tiny) == timedelta(seconds=1)


def test_delivery_key() -> None:
    assert delivery_key(42, "ab" * 32) == "42-abababababababab"
