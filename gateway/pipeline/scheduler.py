"""The scheduler: claims due work items and runs their handlers, like Postfix's qmgr.

Invariants (design note §3, HOUSE.md rule 13):

* on start, every item a crash of this instance left ``active`` goes back to ``incoming``
  (``recover_active``) before any worker claims: nothing is half done and forgotten;
* while running, the lease keeper renews the leases of the items in flight every third of
  ``[store] lease_seconds`` and puts back to ``incoming`` the items of other instances whose
  lease expired (``recover_expired``: an instance died), then wakes the workers. Several
  instances on one PostgreSQL thus share the queue, and a dead one's work is finished by the
  others (``gateway.store.lease``);
* a worker claims one item at a time (``store.claim`` is atomic: two workers never get the same
  item) and runs the handler for its kind under a deadline;
* a handler moves its item on (terminal, ``deferred`` or ``hold``). One that raises, overruns
  its deadline or returns with the item still ``active`` gets it held for an admin: never to
  the floor, never retried in a tight loop;
* a graceful stop claims nothing more, lets in-flight handlers finish for ``grace`` seconds
  (their leases still renewed), then cancels them; their items stay ``active`` and are
  recovered at the next start, or by another instance once the lease expires (the handlers'
  steps are idempotent, so a replay changes nothing).

Latency: an intake edge sets ``wake`` after committing a row, which wakes idle workers at once;
without a wake-up, idle workers look again every ``poll_seconds`` (deferred items coming due).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from gateway.pipeline.context import Handler, PipelineContext

if TYPE_CHECKING:
    from gateway.store import MessageView

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


class Scheduler:
    """N workers over the store's queue (one scheduler per process)."""

    def __init__(
        self,
        ctx: PipelineContext,
        handlers: Mapping[str, Handler],
        *,
        workers: int,
        wake: asyncio.Event,
        poll_seconds: float = 2.0,
        deadline_seconds: float = 1800.0,
    ) -> None:
        """Args:
        ctx: the pipeline context handed to every handler.
        handlers: the handler for each kind it claims (``{"inbound": process_inbound, ...}``);
            kinds without a handler are never claimed.
        workers: how many items may be in progress at once (``[queue] workers``).
        wake: set by the intake edges when new work is committed.
        poll_seconds: the longest an idle worker waits before looking again.
        deadline_seconds: the longest one handler may run (generous: a TSA measured at 131 s,
            retried; a big package's verification); an item that overruns is held.

        Raises:
            ValueError: no handlers, or fewer than one worker.
        """
        if not handlers:
            raise ValueError("the scheduler needs at least one handler")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self._ctx = ctx
        self._handlers = dict(handlers)
        self._kinds = tuple(self._handlers)
        self._workers = workers
        self._wake = wake
        self._poll = poll_seconds
        self._deadline = deadline_seconds
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[int] = set()

    @property
    def in_flight(self) -> frozenset[int]:
        """The ids of the items whose handlers are running now (health, tests)."""
        return frozenset(self._busy)

    async def run(self) -> None:
        """Recover what a crash left active, then run the workers until ``stop``.

        Raises:
            TransientError: the store could not recover the active items (the service should
                not start half-blind: the composition layer reports it and exits).
        """
        recovered = await self._ctx.store.recover_active()
        if recovered:
            log.warning("recovered %d item(s) left active by an earlier run", recovered)
        self._tasks = [asyncio.create_task(self._worker(n), name=f"worker-{n}") for n in range(self._workers)]
        keeper = asyncio.create_task(self._keep_leases(), name="leases")
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _keep_leases(self) -> None:
        """Renew the leases in flight and take back abandoned items, every third of the lease."""
        store = self._ctx.store
        interval = store.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                busy = sorted(self._busy)
                held = set(await store.renew(busy))
                for lost in (i for i in busy if i not in held and i in self._busy):
                    await self._report_lost(lost)
                recovered = await store.recover_expired()
            except Exception:  # the database is away for a moment: try again next round
                log.exception("renewing leases failed; retrying in %.1f s", interval)
                continue
            if recovered:
                log.warning("took back %d item(s) whose instance's lease expired", recovered)
                self._wake.set()

    async def _report_lost(self, id: int) -> None:
        # Not returned by the renewal: finished meanwhile, or taken over by another instance.
        item = await self._ctx.store.get(id)
        if item is not None and item.state == "active" and item.owner != self._ctx.store.owner:
            log.error(
                "item %d: its lease expired and %s took it over; this handler's result will be refused", id, item.owner
            )

    async def stop(self, grace: float) -> None:
        """Stop claiming; wait up to ``grace`` seconds for handlers in flight, then cancel them.

        Args:
            grace: seconds to let in-flight items finish.
        """
        self._stopping = True
        self._wake.set()  # idle workers notice the stop at once
        tasks = [t for t in self._tasks if not t.done()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=max(grace, 0.0))
        if pending:
            log.warning("stopping: cancelling %d handler(s); their items are recovered at the next start", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _worker(self, number: int) -> None:
        while not self._stopping:
            # Clear before claiming: a wake-up set after this point is seen by the wait below,
            # one set before it is covered by this claim.
            self._wake.clear()
            try:
                items = await self._ctx.store.claim(self._kinds, self._ctx.clock.now(), limit=1)
            except Exception:  # the database is away for a moment: keep the worker alive
                log.exception("worker %d: claiming failed; retrying in %.1f s", number, self._poll)
                await self._idle()
                continue
            if not items:
                await self._idle()
                continue
            for item in items:
                await self._run_one(item)

    async def _idle(self) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    async def _run_one(self, item: MessageView) -> None:
        # Every line logged while this item is handled names it (HOUSE.md rule 15).
        with structlog.contextvars.bound_contextvars(item=item.id, kind=item.kind):
            await self._run_bound(item)

    async def _run_bound(self, item: MessageView) -> None:
        handler = self._handlers[item.kind]
        self._busy.add(item.id)
        timer = asyncio.timeout(self._deadline)
        try:
            async with timer:
                await handler(item, self._ctx)
        except TimeoutError as exc:
            if not timer.expired():  # a handler's own TimeoutError escaped: a bug, not a deadline
                log.exception("%s %s: unexpected TimeoutError; held", item.kind, item.id)
                await self._hold(item, f"unexpected: {type(exc).__name__}")
                return
            log.error("%s %s: handler overran %g s; held", item.kind, item.id, self._deadline)
            await self._hold(item, f"deadline exceeded ({self._deadline:g} s)")
            return
        except Exception as exc:  # HOUSE.md rule 13: a person looks at it
            log.exception("%s %s: unexpected %s; held", item.kind, item.id, type(exc).__name__)
            await self._hold(item, f"unexpected: {type(exc).__name__}")
            return
        finally:
            self._busy.discard(item.id)
        await self._check_moved_on(item)

    async def _check_moved_on(self, item: MessageView) -> None:
        try:
            after = await self._ctx.store.get(item.id)
        except Exception:
            log.exception("%s %s: cannot read the item back", item.kind, item.id)
            return
        if after is not None and after.state == "active":
            log.error("%s %s: the handler left the item active; held", item.kind, item.id)
            await self._hold(item, "handler left the item active")

    async def _hold(self, item: MessageView, reason: str) -> None:
        try:
            await self._ctx.store.hold(item.id, reason)
        except Exception:
            # The item stays active: recover_active brings it back at the next start.
            log.exception("%s %s: could not hold the item (%s)", item.kind, item.id, reason)
