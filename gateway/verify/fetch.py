"""OCSP, CRL and issuer-certificate fetching: one HTTP session per process, deadlines, a safe cache.

``HttpFetchers`` is built once per process (HOUSE.md anti-pattern: a new client per request)
and owns one ``aiohttp.ClientSession``, created lazily inside the running loop and closed by
``aclose()``. ``backend(...)`` hands pyhanko-certvalidator a ``FetcherBackend``; each
``get_fetchers()`` call starts one *check* (one certificate judged at one time) with its own
deadline and request budget.

Cache invariants (issue 3, "cached until nextUpdate, never past it"):

* an OCSP response is keyed by what it answers for: the certificate's issuer name and serial
  plus the issuing authority's key; a CRL and a caIssuers answer by their URL. A cached answer
  is never trusted for being cached: certvalidator checks its signature and freshness at every
  use, exactly as for a fresh one;
* an answer is served from the cache only while ``clock.now() < expiry``, where expiry is its
  earliest nextUpdate, or ``fetched + max_age_without_next_update`` when it has none, and in
  any case at most ``fetched + max_age``; an answer already past its nextUpdate is never kept;
* failures are never cached across checks (within one check they are remembered, so a dead
  responder costs one timeout, not one per path link);
* ``evict(fetchers)`` drops what one check was served: the trust checker calls it when that
  check could not use the answers (a forged or broken answer must not block refetching).

Deadlines: every request waits at most ``request_timeout`` seconds and never past the check's
total deadline; after it, fetches fail at once. A failure is the fetch error type certvalidator
expects, so an unreachable responder becomes "no answer", never "good" and never a hang.
Concurrent checks share in-flight requests for the same key (a burst of mail from one agency
asks its OCSP responder once).
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from pyhanko_certvalidator.fetchers.api import FetcherBackend, Fetchers
from pyhanko_certvalidator.fetchers.common_utils import FetchKind

from gateway.clock import Clock
from gateway.verify.sources import CertSource, Check, CRLSource, OCSPSource

__all__ = ["CachePolicy", "FetchStats", "HttpFetchers"]

T = TypeVar("T")


@dataclass(frozen=True)
class CachePolicy:
    """How long fetched material may be reused (the nextUpdate rule always applies on top)."""

    max_age_without_next_update: timedelta = timedelta(minutes=5)
    """For OCSP responses and CRLs that carry no nextUpdate."""
    max_age: timedelta = timedelta(hours=24)
    """Ceiling even when nextUpdate is later: bounds what a forged far-future answer can block."""
    certificate_max_age: timedelta = timedelta(hours=24)
    """caIssuers answers: untrusted path-building helpers, re-checked at every use."""
    max_entries: int = 4096
    max_response_bytes: int = 32 * 1024 * 1024
    """A CRL URL comes from a certificate in an untrusted PDF: never read an unbounded body."""


@dataclass(frozen=True)
class FetchStats:
    """Counters since the fetchers were built, by kind (``ocsp``, ``crl``, ``cert``)."""

    requests: dict[str, int]
    """Network requests made (each URL tried counts once)."""
    cache_hits: dict[str, int]
    errors: dict[str, int] = field(default_factory=dict)
    """Requests that failed (unreachable, HTTP error, deadline, oversized answer): ``/metrics``."""


@dataclass
class _Entry:
    value: Any
    expires: datetime


class HttpFetchers:
    """The process's fetchers: one HTTP session, one cache, per-check deadlines.

    Build it once (the composition layer does) and ``await aclose()`` on shutdown. The session
    belongs to the event loop that first used it; using the object from another loop while the
    session is open is a programming error (``RuntimeError``).
    """

    def __init__(self, clock: Clock, policy: CachePolicy | None = None, *, user_agent: str = "edxml-gateway") -> None:
        self._clock = clock
        self._policy = policy or CachePolicy()
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cache: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._requests: Counter[str] = Counter()
        self._hits: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self.evictions = 0
        """How many times ``evict`` ran: whoever keeps judgements made from cached answers
        (``TrustChecker``) drops them when this moves."""

    # ------------------------------------------------------------------ public surface
    def backend(self, *, request_timeout: float, total_timeout: float) -> FetcherBackend:
        """A certvalidator ``FetcherBackend`` whose every ``get_fetchers()`` starts one check.

        Args:
            request_timeout: seconds one HTTP request may take.
            total_timeout: seconds all fetching of one check may take.

        Returns:
            The backend; closing it is a no-op (the session is this object's).
        """
        return _Backend(self, request_timeout, total_timeout)

    def evict(self, fetchers: Fetchers) -> None:
        """Forget every cached answer ``fetchers`` served (see the module docstring)."""
        self.evictions += 1
        fetcher = fetchers.ocsp_fetcher
        if isinstance(fetcher, OCSPSource):  # its Check is shared with the CRL and cert sources
            for key in fetcher.check.served:
                self._cache.pop(key, None)

    @property
    def policy(self) -> CachePolicy:
        """The cache policy in force."""
        return self._policy

    @property
    def stats(self) -> FetchStats:
        """A snapshot of the request and cache-hit counters."""
        return FetchStats(requests=dict(self._requests), cache_hits=dict(self._hits), errors=dict(self._errors))

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent; a later fetch opens a new one)."""
        session, self._session, self._loop = self._session, None, None
        if session is not None:
            await session.close()

    # ------------------------------------------------------------------ cache
    def cached(self, key: Hashable, kind: str) -> Any:
        """The cached answer for ``key`` while it is current, else ``None`` (counted as a hit of ``kind``)."""
        entry = self._cache.get(key)
        if entry is None:
            return None
        if not self._clock.now() < entry.expires:
            del self._cache[key]  # never past nextUpdate (or the max age)
            return None
        self._cache.move_to_end(key)
        self._hits[kind] += 1
        return entry.value

    def store(
        self, key: Hashable, value: Any, next_update: datetime | None, *, max_age: timedelta | None = None
    ) -> None:
        """Keep ``value`` until ``next_update`` (or the policy's max ages); never if already past it."""
        now = self._clock.now()
        policy = self._policy
        ceiling = now + (max_age or policy.max_age)
        expires = min(ceiling, next_update if next_update is not None else now + policy.max_age_without_next_update)
        if expires <= now:
            return  # already stale: certvalidator may still judge it in this check, nobody later
        self._cache[key] = _Entry(value, expires)
        self._cache.move_to_end(key)
        while len(self._cache) > policy.max_entries:
            self._cache.popitem(last=False)

    # ------------------------------------------------------------------ network
    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed:
            if self._loop is not loop:
                raise RuntimeError("HttpFetchers is bound to another event loop; use one per loop")
            return self._session
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=32, limit_per_host=8),
            headers={"User-Agent": self._user_agent},
        )
        self._loop = loop
        return self._session

    async def request(
        self, check: Check, kind: FetchKind, url: str, *, body: bytes | None = None, headers: dict[str, str]
    ) -> tuple[bytes, str | None]:
        """One GET (or POST with ``body``), bounded in time and size; errors become ``kind``'s."""
        timeout = check.timeout(kind)
        check.budget.charge(kind)
        self._requests[kind.name.lower()] += 1
        limit = self._policy.max_response_bytes
        try:
            async with asyncio.timeout(timeout):
                method = "POST" if body is not None else "GET"
                async with self._client().request(
                    method, url, data=body, headers=headers, raise_for_status=True
                ) as response:
                    if (response.content_length or 0) > limit:
                        raise ValueError(f"the answer is larger than {limit} bytes")
                    data = bytearray()
                    async for chunk in response.content.iter_chunked(65536):
                        data += chunk
                        if len(data) > limit:
                            raise ValueError(f"the answer is larger than {limit} bytes")
                    return bytes(data), response.headers.get("Content-Type")
        except TimeoutError:
            self._errors[kind.name.lower()] += 1
            raise kind.value(f"no answer from {url} within {timeout:.1f} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            self._errors[kind.name.lower()] += 1
            raise kind.value(f"cannot fetch {url}: {exc}") from exc

    async def shared(self, key: Hashable, kind: FetchKind, check: Check, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make`` once for concurrent callers asking for the same ``key``."""
        pending = self._inflight.get(key)
        if pending is not None:
            timeout = check.timeout(kind)
            try:
                async with asyncio.timeout(timeout):
                    result: T = await asyncio.shield(pending)
                    return result
            except TimeoutError:
                raise kind.value(f"no answer within {timeout:.1f} s") from None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # Mark the outcome retrieved even when no other caller waited for it.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._inflight[key] = future
        try:
            value = await make()
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
            else:  # cancelled: waiters get a fetch failure, not our cancellation
                future.set_exception(kind.value("the fetch was abandoned"))
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._inflight.pop(key, None)


class _Backend(FetcherBackend):
    def __init__(self, owner: HttpFetchers, request_timeout: float, total_timeout: float) -> None:
        self._owner = owner
        self._request_timeout = request_timeout
        self._total_timeout = total_timeout

    def get_fetchers(self) -> Fetchers:
        check = Check(self._request_timeout, self._total_timeout)
        return Fetchers(
            ocsp_fetcher=OCSPSource(self._owner, check),
            crl_fetcher=CRLSource(self._owner, check),
            cert_fetcher=CertSource(self._owner, check),
        )
