"""Running the store's transactions: one writer, group commit, whole or not at all, even when cancelled.

Rules every transaction follows:

* writes go through one writer task per process. It takes every write request waiting (up to
  ``MAX_BATCH``) and runs them one after the other in ONE transaction, then appends all their
  journal events and commits once: one ``BEGIN``/``COMMIT``/``fsync`` and one chain append for
  many SMTP intakes ("group commit", as databases do for their own logs). Urgent requests
  (intakes: a client waits for its 250) form batches of their own, ahead of the rest, unless
  the oldest other request has waited ``URGENT_LEAD`` already (no starvation under a stream of
  intakes). When a request fails (bad input, a taken key), the transaction is rolled back, that
  caller gets the error and the others run again without it: they commit exactly as if each had
  run alone, in order. Database trouble fails the whole batch;
* a write transaction starts with ``BEGIN IMMEDIATE`` on SQLite (``db.py``), then locks the
  chain head (``journal.lock_head``: a row lock on PostgreSQL, which makes the writers of every
  instance take turns exactly as SQLite's write lock does) and only then takes its time, and
  ends by appending its journal events (``journal.append``): a change and its record commit
  together, the chain stays linear, and journal times never go backwards across instances.
  One lock order for every writer (the head, then items): writers never deadlock each other;
* on PostgreSQL a deadlock or serialization failure (with some other client of the database)
  rolls the transaction back and the writer runs the same batch again, up to ``RETRIES``
  times; each attempt starts from scratch, like the re-runs after a failed request;
* once queued, a write runs to its end whatever happens to its caller: cancelling the caller
  (an SMTP client gone, shutdown) cannot leave a connection half way through a statement holding
  the database's write lock. The caller sees ``CancelledError``; the change commits or not as it
  would have. ``close`` waits for the writer and for reads still running;
* driver errors become what the edges understand: ``TransientError`` (``StorageFull`` when the
  disk is full), ``StoreError`` for a refused constraint, ``ValueError`` for a refused value.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.clock import Clock
from gateway.errors import TransientError
from gateway.store import journal
from gateway.store.db import BEGIN_OPTION, retryable, translate_db_error
from gateway.store.records import StoreError
from gateway.store.writes import Tx

__all__ = ["MAX_BATCH", "RETRIES", "URGENT_LEAD", "Transactions", "translate"]

T = TypeVar("T")
MAX_BATCH = 64
"""Most write requests committed together (bounds the time a batch holds the write lock)."""
RETRIES: Final = 3
"""Runs of a batch after a deadlock or serialization failure, before its callers get the error."""
_RETRY_PAUSE: Final = 0.05
URGENT_LEAD: Final = 0.5
"""Seconds an urgent batch may keep other waiting writes back; then they go first."""


def _unwrap(exc: StatementError) -> Exception:
    # A value refused while binding (a naive datetime, UTCDateTime): the caller's mistake, as is.
    if isinstance(exc.orig, ValueError | TypeError):
        return exc.orig
    return StoreError(f"the statement failed ({exc.orig})")


def translate(exc: BaseException) -> BaseException:
    """The error a caller should see for ``exc`` (driver errors translated, others as they are)."""
    new: BaseException
    if isinstance(exc, IntegrityError):
        new = StoreError(f"the database refused the change ({exc.orig})")
    elif isinstance(exc, DBAPIError):
        new = translate_db_error(exc)
    elif isinstance(exc, StatementError):
        new = _unwrap(exc)
    elif isinstance(exc, OSError):
        new = TransientError(f"database unavailable: {exc}")
    else:
        return exc
    if new is not exc:
        new.__cause__ = exc
    return new


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except (StatementError, OSError) as exc:
        raise translate(exc) from exc


@dataclass
class _Request:
    work: Callable[[Tx], Awaitable[Any]]
    future: asyncio.Future[Any]
    queued: float
    """When it was queued (the loop's clock)."""


class _RollBack(Exception):
    """One request of a batch failed: roll the transaction back and run the others again."""


class _Again(Exception):
    """The database rolled the batch back (deadlock, serialization failure): run it all again."""


def _broken(exc: Exception) -> bool:
    # Database trouble spoils the whole transaction; a request's own failure (bad input, a
    # taken key, a refused constraint) spoils only that request.
    return isinstance(exc, DBAPIError | OSError) and not isinstance(exc, IntegrityError)


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # pragma: no cover - each request is settled once
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Mark the outcome as seen: a cancelled caller no longer will, and asyncio would complain.
    if not future.cancelled():
        future.exception()


class Transactions:
    """Runs read and write transactions on one engine (see the module docstring).

    Args:
        engine: the store's engine.
        clock: gives each write transaction its time.
        memory: an in-memory SQLite database (one shared connection: readers queue too).
        owner: the instance writing (``Tx.owner``: claims are leased to it).
        lease: how long a claim is leased for.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Clock, memory: bool, owner: str, lease: timedelta) -> None:
        self.engine = engine
        self.owner = owner
        self.lease = lease
        self._clock = clock
        # An in-memory database is one shared connection: the writer and readers take turns.
        self._connection_lock = asyncio.Lock() if memory else None
        self._waiting: deque[_Request] = deque()
        self._urgent: deque[_Request] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._reads: set[asyncio.Task[Any]] = set()

    async def write(self, work: Callable[[Tx], Awaitable[T]], *, urgent: bool = False) -> T:
        """Run ``work`` in a write transaction (possibly shared with other requests, see above).

        Args:
            work: the statements, given the open transaction.
            urgent: someone waits on the wire for this (an SMTP client for its 250): the next
                batch takes only urgent requests while there are any, so an intake never
                waits behind, or shares a transaction with, the pipeline's own work.

        Raises:
            Whatever ``work`` raises (none of its changes is committed), or the translated
            driver errors.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        request = _Request(work, future, asyncio.get_running_loop().time())
        (self._urgent if urgent else self._waiting).append(request)
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._urgent or self._waiting:
                queue = self._next_queue()
                batch = [queue.popleft() for _ in range(min(MAX_BATCH, len(queue)))]
                try:
                    await self._commit(batch)
                except Exception as exc:  # pragma: no cover - a bug here must not leave callers waiting
                    for request in batch:
                        _settle(request.future, error=exc)
        finally:
            # No await between the last emptiness check and this: a new request starts a new writer.
            self._writer = None

    def _next_queue(self) -> deque[_Request]:
        """Where the next batch comes from: the urgent requests, unless others waited too long."""
        if not self._urgent:
            return self._waiting
        if self._waiting and asyncio.get_running_loop().time() - self._waiting[0].queued > URGENT_LEAD:
            return self._waiting
        return self._urgent

    async def _commit(self, batch: list[_Request]) -> None:
        # Optimistic: no savepoints (two statements each). When a request fails, the whole
        # transaction is rolled back, that request gets its error, and the rest run again.
        pending = list(batch)
        runs = 0
        while pending:
            try:
                failed = await self._attempt(pending, last=runs >= RETRIES)
            except _Again:
                runs += 1
                await self._pause(pending, runs)
                continue
            if failed is None:
                return
            pending.remove(failed)

    @staticmethod
    async def _pause(pending: list[_Request], runs: int) -> None:
        try:
            await asyncio.sleep(_RETRY_PAUSE * runs)
        except BaseException:
            for request in pending:  # the writer is cancelled between two runs: so are its requests
                request.future.cancel()
            raise

    async def _attempt(self, pending: list[_Request], *, last: bool) -> _Request | None:
        results: list[Any] = []
        culprit: tuple[_Request, Exception] | None = None
        try:
            async with self._connection_lock or nullcontext(), self.engine.connect() as conn:
                await conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
                async with conn.begin():
                    await journal.lock_head(conn)
                    # The time is taken with the write lock held: journal times never go backwards.
                    at = self._clock.now()
                    events: list[journal.PendingEvent] = []
                    for request in pending:
                        tx = Tx(conn, at, self.owner, self.lease)
                        try:
                            results.append(await request.work(tx))
                        except Exception as exc:
                            if _broken(exc):
                                raise
                            culprit = (request, exc)
                            raise _RollBack from exc
                        events.extend(tx.events)
                    await journal.append(conn, events)  # last: see journal.py's invariants
        except _RollBack:
            assert culprit is not None  # noqa: S101 - set right before _RollBack
            request, error = culprit
            _settle(request.future, error=translate(error))
            return request
        except Exception as exc:
            if retryable(exc) and not last:
                raise _Again from exc
            failure = translate(exc)
            for request in pending:
                _settle(request.future, error=failure)
            return None
        except BaseException:
            # The writer itself is cancelled (the loop is shutting down): so are its requests.
            for request in pending:
                request.future.cancel()
            raise
        for request, result in zip(pending, results, strict=True):
            _settle(request.future, result=result)
        return None

    async def read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in a read transaction (a consistent snapshot; never waits for writers in WAL).

        Raises:
            Whatever ``work`` raises, or the translated driver errors.
        """

        async def run() -> T:
            lock = self._connection_lock or nullcontext()
            async with lock, _translated(), self.engine.connect() as conn, conn.begin():
                return await work(conn)

        task = asyncio.ensure_future(run())
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def settle(self) -> None:
        """Wait until no write is queued and no read runs."""
        while self._writer is not None or self._reads:
            await asyncio.gather(*filter(None, (self._writer, *self._reads)), return_exceptions=True)

    async def close(self) -> None:
        """Let queued writes and running reads finish, then close every connection."""
        await self.settle()
        await self.engine.dispose()
