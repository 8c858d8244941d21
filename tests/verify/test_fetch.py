"""``HttpFetchers``: one HTTP session, answers cached until nextUpdate and never past it.

The served dev PKI's OCSP answers carry nextUpdate = thisUpdate + 10 minutes and its CRLs
nextUpdate = thisUpdate + 1 day. A ``FixedClock`` that the tests move stands for the passing
time; ``stats`` counts the requests that really went over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
import pytest
from pyhanko_certvalidator.authority import AuthorityWithCert

from gateway.clock import FixedClock, SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.verify.chain import TrustChecker
from gateway.verify.facts import TrustOutcome
from gateway.verify.fetch import CachePolicy, HttpFetchers
from gateway.verify.trust import ExamSettings, TrustStore
from tests.pdfs import run

T = TypeVar("T")
SETTINGS = ExamSettings()


def _store(pki: DevPKI) -> TrustStore:
    return TrustStore.load(
        [pki.layout.anchor("root")], [fingerprint(pki.certificate("root"))], [pki.layout.intermediate("intermediate")]
    )


def _with(
    pki: DevPKI,
    clock: FixedClock,
    body: Callable[[HttpFetchers, TrustChecker], Awaitable[T]],
    fetchers: HttpFetchers | None = None,
) -> T:
    async def go() -> T:
        own = fetchers or HttpFetchers(clock)
        try:
            return await body(own, TrustChecker(_store(pki), own, clock))
        finally:
            await own.aclose()

    return run(go())


async def _trusted(checker: TrustChecker, pki: DevPKI, clock: FixedClock, label: str = "person") -> None:
    facts = await checker.check_certificate(
        pki.certificate(label), at=clock.now(), purpose="signing", settings=SETTINGS
    )
    assert facts.outcome is TrustOutcome.TRUSTED, facts.detail


def test_ocsp_answers_are_reused_until_next_update_then_fetched_again(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())

    async def body(fetchers: HttpFetchers, checker: TrustChecker) -> list[int]:
        seen = []
        for step in (timedelta(0), timedelta(minutes=9), timedelta(minutes=2)):
            clock.advance(step)
            await _trusted(checker, dev_pki, clock)
            seen.append(fetchers.stats.requests["ocsp"])
        return seen

    # Two answers per check (the intermediate's, from the root's responder, and the leaf's):
    # fetched once, reused 9 minutes later, fetched again once 11 minutes > nextUpdate passed.
    assert _with(dev_pki, clock, body) == [2, 2, 4]


def test_crls_are_reused_until_next_update(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())
    person = dev_pki.certificate_asn1("person")

    async def body(fetchers: HttpFetchers, _: TrustChecker) -> list[int]:
        backend = fetchers.backend(request_timeout=5, total_timeout=10)
        seen = []
        (first,) = await backend.get_fetchers().crl_fetcher.fetch(person)
        seen.append(fetchers.stats.requests["crl"])
        await backend.get_fetchers().crl_fetcher.fetch(person)  # a new check: from the cache
        seen.append(fetchers.stats.requests["crl"])
        clock.at = first["tbs_cert_list"]["next_update"].native  # at nextUpdate: no longer current
        await backend.get_fetchers().crl_fetcher.fetch(person)
        seen.append(fetchers.stats.requests["crl"])
        return seen

    assert _with(dev_pki, clock, body) == [1, 1, 2]


def _cache_roundtrip(policy: CachePolicy, next_update: timedelta | None, waits: list[timedelta]) -> list[bool]:
    clock = FixedClock(SystemClock().now())
    fetchers = HttpFetchers(clock, policy)  # the cache alone: no session is ever opened
    fetchers.store("key", "answer", None if next_update is None else clock.now() + next_update)
    found = []
    for wait in waits:
        clock.advance(wait)
        found.append(fetchers.cached("key", "test") == "answer")
    return found


def test_an_answer_without_next_update_lives_the_short_max_age() -> None:
    found = _cache_roundtrip(CachePolicy(), None, [timedelta(minutes=4, seconds=59), timedelta(seconds=1)])
    assert found == [True, False]


def test_a_far_next_update_is_capped_by_max_age() -> None:
    policy = CachePolicy(max_age=timedelta(hours=1))
    found = _cache_roundtrip(policy, timedelta(days=10), [timedelta(minutes=59), timedelta(minutes=1)])
    assert found == [True, False]


@pytest.mark.parametrize("next_update", [timedelta(0), timedelta(seconds=-1)])
def test_an_answer_at_or_past_next_update_is_never_kept(next_update: timedelta) -> None:
    assert _cache_roundtrip(CachePolicy(), next_update, [timedelta(0)]) == [False]


def test_concurrent_checks_share_one_request_per_answer(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())

    async def body(fetchers: HttpFetchers, checker: TrustChecker) -> int:
        await asyncio.gather(*(_trusted(checker, dev_pki, clock) for _ in range(4)))
        return fetchers.stats.requests["ocsp"]

    assert _with(dev_pki, clock, body) == 2


def test_evict_forgets_what_one_check_was_served(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())

    async def body(fetchers: HttpFetchers, checker: TrustChecker) -> list[int]:
        await _trusted(checker, dev_pki, clock)
        check = fetchers.backend(request_timeout=5, total_timeout=10).get_fetchers()
        issuer = AuthorityWithCert(dev_pki.certificate_asn1("intermediate"))
        await check.ocsp_fetcher.fetch(dev_pki.certificate_asn1("person"), issuer)  # served from the cache
        before = fetchers.stats.requests["ocsp"]
        fetchers.evict(check)
        await _trusted(checker, dev_pki, clock)  # the leaf's answer is fetched again, the CA's is not
        return [before, fetchers.stats.requests["ocsp"]]

    assert _with(dev_pki, clock, body) == [2, 3]


def test_one_session_serves_every_check_and_the_cache_outlives_a_loop(
    dev_pki: DevPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[Any] = []
    real = aiohttp.ClientSession

    def counting(*args: Any, **kwargs: Any) -> Any:
        created.append(real(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(aiohttp, "ClientSession", counting)
    clock = FixedClock(SystemClock().now())
    fetchers = HttpFetchers(clock)

    def body(*labels: str) -> Callable[[HttpFetchers, TrustChecker], Awaitable[int]]:
        async def checks(_: HttpFetchers, checker: TrustChecker) -> int:
            for label in labels:
                await _trusted(checker, dev_pki, clock, label)
            return len(created)

        return checks

    assert _with(dev_pki, clock, body("person", "org", "ecdsa", "person"), fetchers) == 1
    requests = fetchers.stats.requests["ocsp"]
    # After aclose(), another loop: cached answers need no session at all ...
    assert _with(dev_pki, clock, body("person", "org"), fetchers) == 1
    assert fetchers.stats.requests["ocsp"] == requests
    # ... and a new answer opens one new session on that loop.
    assert _with(dev_pki, clock, body("person", "rsa1024"), fetchers) == 2
    assert fetchers.stats.requests["ocsp"] == requests + 1
