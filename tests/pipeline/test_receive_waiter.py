"""The inline-verdict waiter: what the SMTP edge sees, and that no future outlives its wait."""

from __future__ import annotations

import asyncio

from gateway.inbound.smtp import InlineVerdict as EdgeVerdict
from gateway.inbound.smtp import VerdictWaiter as EdgeWaiter
from gateway.inbound.smtp import refusal_reply
from gateway.pipeline.waiter import InlineVerdict, VerdictWaiter
from gateway.verify.report import Verdict

REFUSED = InlineVerdict(Verdict.REFUSED, "cert-revoked", "The signer's certificate has been revoked.")


def test_a_verdict_resolved_while_waiting_is_returned() -> None:
    async def go() -> tuple[InlineVerdict | None, int]:
        waiter = VerdictWaiter()
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, waiter.resolve, 7, REFUSED)
        outcome = await waiter.wait(7, 5.0)
        return outcome, waiter.pending

    outcome, pending = asyncio.run(go())
    assert outcome == REFUSED
    assert pending == 0


def test_timeout_gives_none_and_leaves_nothing_behind() -> None:
    async def go() -> tuple[InlineVerdict | None, int]:
        waiter = VerdictWaiter()
        outcome = await waiter.wait(8, 0.01)
        return outcome, waiter.pending

    assert asyncio.run(go()) == (None, 0)


def test_a_cancelled_wait_leaves_nothing_behind() -> None:
    async def go() -> int:
        waiter = VerdictWaiter()
        task = asyncio.create_task(waiter.wait(9, 10.0))
        await asyncio.sleep(0)
        assert waiter.pending == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        waiter.resolve(9, REFUSED)  # nobody waits any more: harmless
        return waiter.pending

    assert asyncio.run(go()) == 0


def test_a_verdict_that_came_before_the_wait_is_still_seen() -> None:
    async def go() -> InlineVerdict | None:
        waiter = VerdictWaiter()
        waiter.resolve(10, REFUSED)  # the worker was faster than the edge
        return await waiter.wait(10, 0.5)

    assert asyncio.run(go()) == REFUSED


def test_several_waiters_on_one_item_all_get_it() -> None:
    async def go() -> list[InlineVerdict | None]:
        waiter = VerdictWaiter()
        tasks = [asyncio.create_task(waiter.wait(11, 5.0)) for _ in range(3)]
        await asyncio.sleep(0)
        waiter.resolve(11, REFUSED)
        results = await asyncio.gather(*tasks)
        assert waiter.pending == 0
        return list(results)

    assert asyncio.run(go()) == [REFUSED] * 3


def test_memory_of_recent_verdicts_is_bounded() -> None:
    async def go() -> tuple[InlineVerdict | None, InlineVerdict | None]:
        waiter = VerdictWaiter(remember=2)
        for item in (1, 2, 3):
            waiter.resolve(item, InlineVerdict(Verdict.ACCEPTED))
        return await waiter.wait(1, 0), await waiter.wait(3, 0)

    assert asyncio.run(go()) == (None, InlineVerdict(Verdict.ACCEPTED))


def test_only_a_refusal_is_refused() -> None:
    assert REFUSED.refused
    assert not InlineVerdict(Verdict.ACCEPTED).refused
    assert not InlineVerdict(Verdict.DEFERRED, "revocation-unavailable", "later").refused
    assert (InlineVerdict(Verdict.ACCEPTED).code, InlineVerdict(Verdict.ACCEPTED).reason) == ("", "")


def test_the_smtp_edge_can_inject_the_waiter() -> None:
    """The edge's ``verdict_waiter`` and ``InlineVerdict`` types accept ours (checked by mypy too)."""
    waiter = VerdictWaiter()
    injected: EdgeWaiter = waiter.wait
    as_edge: EdgeVerdict = REFUSED
    assert refusal_reply(as_edge.code, as_edge.reason) == (
        "550 5.7.1 cert-revoked: The signer's certificate has been revoked."
    )

    async def go() -> object:
        return await injected(1, 0)

    assert asyncio.run(go()) is None
