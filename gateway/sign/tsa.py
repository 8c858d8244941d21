"""The RFC 3161 time-stamping client: one HTTP session, deadlines, retries, a concurrency cap.

The VGCA TSA has been measured at 2-131 s per answer (spec §5): a slow, shared, sometimes absent
service. ``TsaClient`` is built once per process (HOUSE.md anti-pattern: a client per request)
and hands pyHanko one ``TimeStamper`` that every signature uses. Its rules:

* **one aiohttp session** for the process (a pyhanko-certvalidator ``LazySession``, opened in
  the running loop on first use, closed by ``aclose()``);
* **a deadline per attempt** (``timeout`` seconds, enforced twice: aiohttp's total timeout and
  an ``asyncio.timeout`` around the whole attempt, so a server that trickles bytes cannot hold
  a caller past it);
* **``attempts`` attempts with exponential backoff** (``backoff``, doubling, at most
  ``max_backoff``) on any failure: unreachable, HTTP error, wrong content type, a malformed or
  refused answer, a bad nonce. Each attempt is a new request with a new nonce. When they are
  spent: ``TsaUnavailable`` (a ``TransientError``), so the outbound queue keeps the document and
  retries later — a signature is never finished without its time stamp;
* **at most ``concurrency`` requests in flight** (a semaphore). A sealer may also hold one of
  those slots for the whole "take the signing time -> sign -> time-stamp" step (``slot()``), so
  that the time painted in an appearance and written in /M is taken only when the TSA is about
  to be asked, not minutes earlier in a queue. The slot is re-entrant within one task (a
  context variable says the task already holds one), so the request inside it does not wait
  for a second slot. Backoff sleeps outside ``slot()`` hold no slot.

pyHanko asks the time stamper for a "dummy" token once per digest algorithm to size the
signature container; the answer is cached on the time stamper, so with one long-lived client
the process pays that request once, and concurrent first callers share it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from asn1crypto import cms
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.util import LazySession

from gateway.sign.refusals import SealingDeferred

__all__ = ["TsaClient", "TsaStats", "TsaUnavailable"]

_log = logging.getLogger(__name__)

# What one failed attempt can raise: aiohttp and socket errors (TimeoutError is an OSError since
# 3.11), pyHanko's wrapper for both and for refused or mismatched answers, and ValueError from
# asn1crypto when the body is not a TimeStampResp at all.
_ATTEMPT_ERRORS = (TimestampRequestError, aiohttp.ClientError, OSError, ValueError)


class TsaUnavailable(SealingDeferred):
    """Every attempt to get a time stamp failed; the document waits and is retried later.

    Args:
        url: the TSA.
        attempts: how many attempts were made.
        last_error: what the last one ended with.
    """

    def __init__(self, url: str, attempts: int, last_error: str) -> None:
        self.url = url
        self.attempts = attempts
        super().__init__("tsa-unavailable", f"{url} failed {attempts} attempt(s); last: {last_error}")


@dataclass(frozen=True)
class TsaStats:
    """Counters since the client was built."""

    requests: int
    """HTTP requests started (each attempt counts once)."""
    failures: int
    """Attempts that failed."""
    max_in_flight: int
    """The most requests that were in flight at once."""


class _TimeStamper(HTTPTimeStamper):
    """pyHanko's HTTP time stamper with the client's retries, deadline and slots around each token."""

    def __init__(self, client: TsaClient, url: str, timeout: float, session: LazySession) -> None:
        super().__init__(url, timeout=timeout, session=session)
        self._client = client
        self._dummy_lock = asyncio.Lock()

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        parent = super().async_timestamp
        token: cms.ContentInfo = await self._client.call(lambda: parent(message_digest, md_algorithm))
        return token

    async def async_dummy_response(self, md_algorithm: str) -> cms.ContentInfo:
        # Concurrent first signatures share one sizing request instead of each sending one.
        async with self._dummy_lock:
            result: cms.ContentInfo = await super().async_dummy_response(md_algorithm)
            return result


class TsaClient:
    """The process's client of one RFC 3161 service (see the module docstring for the rules).

    Args:
        url: the service, e.g. ``http://tsa.ca.gov.vn/``.
        timeout: seconds one attempt may take (the VGCA's: about 180).
        attempts: attempts per token before ``TsaUnavailable`` (at least 1).
        concurrency: requests in flight at most (at least 1; the VGCA's: about 4).
        backoff: seconds before the second attempt; doubles after each failure.
        max_backoff: ceiling of one backoff sleep.

    Raises:
        ValueError: a non-positive timeout, attempts or concurrency, or a negative backoff.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        attempts: int,
        concurrency: int,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
    ) -> None:
        if timeout <= 0 or attempts < 1 or concurrency < 1 or backoff < 0 or max_backoff < 0:
            raise ValueError("the TSA timeout, attempts and concurrency must be positive, backoffs not negative")
        self.url = url
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._slots = asyncio.Semaphore(concurrency)
        self._holding: contextvars.ContextVar[bool] = contextvars.ContextVar(f"tsa-slot-{id(self)}", default=False)
        self._session = LazySession()  # type: ignore[no-untyped-call]
        self._timestamper = _TimeStamper(self, url, timeout, self._session)
        self._requests = self._failures = self._in_flight = self._max_in_flight = 0

    @property
    def timestamper(self) -> HTTPTimeStamper:
        """The pyHanko time stamper to give every ``PdfSigner`` (one per process)."""
        return self._timestamper

    @property
    def stats(self) -> TsaStats:
        """A snapshot of the counters."""
        return TsaStats(self._requests, self._failures, self._max_in_flight)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``concurrency`` request slots for the duration (re-entrant per task)."""
        if self._holding.get():
            yield
            return
        async with self._slots:
            token = self._holding.set(True)
            try:
                yield
            finally:
                self._holding.reset(token)

    async def call(self, request: Callable[[], Awaitable[Any]]) -> Any:
        """Run one TSA exchange with the deadline, the retries and a slot per attempt.

        Args:
            request: makes one attempt (a fresh request each call).

        Returns:
            What the first successful attempt returned.

        Raises:
            TsaUnavailable: every attempt failed.
        """
        last = "no attempt made"
        for attempt in range(1, self._attempts + 1):
            started = time.monotonic()
            try:
                async with self.slot():
                    self._requests += 1
                    self._in_flight += 1
                    self._max_in_flight = max(self._max_in_flight, self._in_flight)
                    try:
                        async with asyncio.timeout(self._timeout):
                            return await request()
                    finally:
                        self._in_flight -= 1
            except _ATTEMPT_ERRORS as exc:
                self._failures += 1
                last = _describe(exc, self._timeout, time.monotonic() - started)
                _log.warning("time stamp attempt %d/%d at %s failed: %s", attempt, self._attempts, self.url, last)
            if attempt < self._attempts:
                await asyncio.sleep(min(self._backoff * 2 ** (attempt - 1), self._max_backoff))
        raise TsaUnavailable(self.url, self._attempts, last)

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent; a later request opens a new one)."""
        await self._session.close()  # type: ignore[no-untyped-call]


def _describe(exc: BaseException, timeout: float, elapsed: float) -> str:
    """One line about a failed attempt, including the cause pyHanko wraps."""
    if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
        # Our deadline or aiohttp's (the same number), whichever fired first.
        return f"no answer within {timeout:g} s ({elapsed:.1f} s elapsed)"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None:
        text += f" ({type(cause).__name__}: {cause})" if str(cause) else f" ({type(cause).__name__})"
    return text
