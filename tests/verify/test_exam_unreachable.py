"""Unreachable OCSP responders and CRL servers: never "good", never a hang (spec G1.13a, A5).

Two extra development PKIs whose certificates name responders that do not answer:

* *black hole*: the port listens (the kernel completes the TCP handshake) but nobody ever
  reads or answers, the worst case for deadlines;
* *refused*: the port is closed, so every connection is refused at once.

Nothing is served for either; their certificates are checked against their own pinned root.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import SystemClock
from gateway.devpki import DevPKI, bind_listener, fingerprint, write_bundle
from gateway.verify.chain import TrustCheck, TrustChecker
from gateway.verify.facts import TrustOutcome
from gateway.verify.fetch import HttpFetchers
from gateway.verify.trust import ExamSettings, RevocationMode, TrustStore
from tests.pdfs import run
from tests.pki import KEY_CACHE


def _dead_pki(factory: pytest.TempPathFactory, config: pytest.Config, *, listening: bool) -> Iterator[DevPKI]:
    listener = bind_listener("127.0.0.1", 0)
    try:
        directory = factory.mktemp("dead-pki")
        cache = getattr(config, "cache", None)
        pki = DevPKI.generate(
            directory,
            base_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
            anchor=SystemClock().now().replace(microsecond=0),
            key_cache=None if cache is None else Path(cache.mkdir(KEY_CACHE)),
        )
        write_bundle(pki, directory)
        if not listening:
            listener.close()
        yield pki
    finally:
        listener.close()


@pytest.fixture(scope="module")
def black_hole_pki(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[DevPKI]:
    yield from _dead_pki(tmp_path_factory, pytestconfig, listening=True)


@pytest.fixture(scope="module")
def refused_pki(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[DevPKI]:
    yield from _dead_pki(tmp_path_factory, pytestconfig, listening=False)


def _check(pki: DevPKI, settings: ExamSettings) -> tuple[TrustCheck, float, dict[str, int]]:
    store = TrustStore.load(
        [pki.layout.anchor("root")], [fingerprint(pki.certificate("root"))], [pki.layout.intermediate("intermediate")]
    )

    async def go() -> tuple[TrustCheck, float, dict[str, int]]:
        clock = SystemClock()
        fetchers = HttpFetchers(clock)
        try:
            started = time.monotonic()
            check = await TrustChecker(store, fetchers, clock).check(
                pki.certificate("person"), at=clock.now(), purpose="signing", settings=settings
            )
            return check, time.monotonic() - started, fetchers.stats.requests
        finally:
            await fetchers.aclose()

    return run(go())


def _settings(mode: RevocationMode, request: float = 0.3, total: float = 1.0) -> ExamSettings:
    return ExamSettings(revocation_mode=mode, request_timeout=request, total_timeout=total)


def test_hard_fail_without_an_answer_is_revocation_unavailable_within_the_deadline(black_hole_pki: DevPKI) -> None:
    check, elapsed, requests = _check(black_hole_pki, _settings("hard-fail"))
    assert check.facts.outcome is TrustOutcome.REVOCATION_UNAVAILABLE
    assert check.subindication == "TRY_LATER"
    assert check.facts.revocation is not None
    assert (check.facts.revocation.source, check.facts.revocation.status) == ("none", "unknown")
    assert "no answer" in check.facts.detail
    assert requests["ocsp"] >= 1
    assert requests["crl"] >= 1
    assert elapsed < 1.0 + 1.0  # the total deadline, plus scheduling slack


def test_soft_fail_without_an_answer_is_trusted_and_says_so(black_hole_pki: DevPKI) -> None:
    check, elapsed, _ = _check(black_hole_pki, _settings("soft-fail"))
    assert check.facts.outcome is TrustOutcome.TRUSTED
    assert check.facts.revocation is not None
    assert (check.facts.revocation.source, check.facts.revocation.status) == ("none", "unknown")
    assert "soft-fail" in check.facts.detail
    assert elapsed < 2.0


def test_off_never_asks(black_hole_pki: DevPKI) -> None:
    check, elapsed, requests = _check(black_hole_pki, _settings("off"))
    assert check.facts.outcome is TrustOutcome.TRUSTED
    assert check.facts.revocation is not None
    assert check.facts.revocation.source == "none"
    assert requests == {}
    assert elapsed < 0.5


def test_the_total_deadline_bounds_slow_requests(black_hole_pki: DevPKI) -> None:
    # Each request alone could wait 30 s; the check as a whole may wait 0.5 s.
    check, elapsed, _ = _check(black_hole_pki, _settings("hard-fail", request=30, total=0.5))
    assert check.facts.outcome is TrustOutcome.REVOCATION_UNAVAILABLE
    assert "deadline" in check.facts.detail or "within" in check.facts.detail
    assert elapsed < 1.5


def test_a_refused_connection_fails_at_once(refused_pki: DevPKI) -> None:
    check, elapsed, _ = _check(refused_pki, _settings("hard-fail", request=10, total=30))
    assert check.facts.outcome is TrustOutcome.REVOCATION_UNAVAILABLE
    assert "cannot fetch" in check.facts.detail
    assert elapsed < 5  # no request waited for its 10 s timeout
