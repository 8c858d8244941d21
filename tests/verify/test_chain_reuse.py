"""``TrustChecker`` reuses a good revocation answer judged now, until the answer's nextUpdate.

At most for the cache policy's shortest age (five minutes), and never across an eviction.

Judging the same link again with the same cached OCSP answer can only give the same result, so
the checker keeps good answers by the path's fingerprints (issue 7, P1: about 10 ms of
certvalidator work per link and package). Never kept: revoked or unknown answers, answers
judged as of the signing time, and anything past its nextUpdate (spec §6 A2: revocation).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from pyhanko_certvalidator import CertificateValidator

from gateway.clock import FixedClock, SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.verify.chain import TrustCheck, TrustChecker
from gateway.verify.facts import TrustOutcome
from gateway.verify.fetch import HttpFetchers
from gateway.verify.revocation import LinkStatus, RevocationProbe
from gateway.verify.trust import ExamSettings, TrustStore
from tests.pdfs import run


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[LinkStatus]:
    """Every answer ``RevocationProbe.link_status`` really worked out, in order."""
    made: list[LinkStatus] = []
    original = RevocationProbe.link_status

    async def counted(self: RevocationProbe, *args: Any, **kwargs: Any) -> LinkStatus:
        status = await original(self, *args, **kwargs)
        made.append(status)
        return status

    monkeypatch.setattr(RevocationProbe, "link_status", counted)
    return made


def _checks(
    pki: DevPKI, label: str, clock: FixedClock, *, later: timedelta, expire: bool = False
) -> tuple[TrustCheck, TrustCheck]:
    """The same certificate checked twice by one checker, ``later`` apart (judged at the first time).

    ``expire``: between the two, every kept answer's end of reuse is moved to the clock's now, as
    if its nextUpdate had passed (the served responders answer on the real clock, so it cannot
    really pass).
    """

    async def go() -> tuple[TrustCheck, TrustCheck]:
        store = TrustStore.load(
            [pki.layout.anchor("root")],
            [fingerprint(pki.certificate("root"))],
            [pki.layout.intermediate("intermediate")],
        )
        fetchers = HttpFetchers(clock)
        try:
            checker = TrustChecker(store, fetchers, clock)
            at = clock.now()
            first = await checker.check(pki.certificate(label), at=at, purpose="signing", settings=ExamSettings())
            clock.advance(later)
            if expire:
                kept = checker._good
                for key, (_, status) in kept.items():
                    kept[key] = (clock.now(), status)
            second = await checker.check(pki.certificate(label), at=at, purpose="signing", settings=ExamSettings())
            return first, second
        finally:
            await fetchers.aclose()

    return run(go())


def test_a_good_answer_is_reused_while_fresh(dev_pki: DevPKI, probes: list[LinkStatus]) -> None:
    first, second = _checks(dev_pki, "org", FixedClock(SystemClock().now()), later=timedelta(seconds=1))
    assert first.facts.outcome is second.facts.outcome is TrustOutcome.TRUSTED
    assert first.facts.revocation == second.facts.revocation
    assert len(probes) == 2  # intermediate and leaf, once each
    assert all(p.status == "good" and p.fresh_until is not None for p in probes)


def test_past_its_next_update_the_link_is_judged_again(dev_pki: DevPKI, probes: list[LinkStatus]) -> None:
    first, second = _checks(dev_pki, "org", FixedClock(SystemClock().now()), later=timedelta(seconds=1), expire=True)
    assert first.facts.outcome is second.facts.outcome is TrustOutcome.TRUSTED, second.facts.detail
    assert len(probes) == 4  # both links judged again the second time


def test_a_revoked_answer_is_never_reused(dev_pki: DevPKI, probes: list[LinkStatus]) -> None:
    first, second = _checks(dev_pki, "revoked", FixedClock(SystemClock().now()), later=timedelta(seconds=1))
    assert first.facts.outcome is second.facts.outcome is TrustOutcome.REVOKED
    leaf = [p for p in probes if p.status == "revoked"]
    assert len(leaf) == 2  # the leaf judged both times
    assert all(p.fresh_until is None for p in leaf)


def test_an_eviction_drops_every_kept_answer(dev_pki: DevPKI, probes: list[LinkStatus]) -> None:
    """The fetch cache forgetting an answer (a broken one somewhere) means judging afresh."""

    async def go() -> None:
        clock = FixedClock(SystemClock().now())
        store = TrustStore.load(
            [dev_pki.layout.anchor("root")],
            [fingerprint(dev_pki.certificate("root"))],
            [dev_pki.layout.intermediate("intermediate")],
        )
        fetchers = HttpFetchers(clock)
        try:
            checker = TrustChecker(store, fetchers, clock)
            for evict in (False, True):
                if evict:
                    fetchers.evict(fetchers.backend(request_timeout=5, total_timeout=10).get_fetchers())
                check = await checker.check(
                    dev_pki.certificate("org"), at=clock.now(), purpose="signing", settings=ExamSettings()
                )
                assert check.facts.outcome is TrustOutcome.TRUSTED
        finally:
            await fetchers.aclose()

    run(go())
    assert len(probes) == 4


def _two_times(pki: DevPKI, label: str, first_at: datetime, second_at: datetime) -> tuple[TrustCheck, TrustCheck]:
    """One checker, the same certificate judged at two times."""

    async def go() -> tuple[TrustCheck, TrustCheck]:
        clock = SystemClock()
        store = TrustStore.load(
            [pki.layout.anchor("root")],
            [fingerprint(pki.certificate("root"))],
            [pki.layout.intermediate("intermediate")],
        )
        fetchers = HttpFetchers(clock)
        try:
            checker = TrustChecker(store, fetchers, clock)
            cert = pki.certificate(label)
            first = await checker.check(cert, at=first_at, purpose="signing", settings=ExamSettings())
            second = await checker.check(cert, at=second_at, purpose="signing", settings=ExamSettings())
            return first, second
        finally:
            await fetchers.aclose()

    return run(go())


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every full path validation (step 1) that ran."""
    ran: list[object] = []
    original = CertificateValidator.async_validate_path

    async def counted(self: CertificateValidator) -> Any:
        ran.append(self)
        return await original(self)

    monkeypatch.setattr(CertificateValidator, "async_validate_path", counted)
    return ran


def test_a_validated_path_is_reused_at_another_time_inside_every_validity(
    dev_pki: DevPKI, validations: list[object]
) -> None:
    now = SystemClock().now()
    first, second = _two_times(dev_pki, "org", now - timedelta(hours=1), now)
    assert first.facts.outcome is second.facts.outcome is TrustOutcome.TRUSTED
    assert first.facts.path == second.facts.path
    assert len(validations) == 1


def test_a_kept_path_is_validated_in_full_at_a_time_outside_a_validity(
    dev_pki: DevPKI, validations: list[object]
) -> None:
    """Spec G1.11: the expired certificate is trusted inside its validity, expired after it."""
    inside = dev_pki.certificate("expired").not_valid_after_utc - timedelta(days=1)
    first, second = _two_times(dev_pki, "expired", inside, SystemClock().now())
    assert first.facts.outcome is TrustOutcome.TRUSTED, first.facts.detail
    assert second.facts.outcome is TrustOutcome.EXPIRED
    assert second.subindication == "OUT_OF_BOUNDS_NO_POE"
    assert len(validations) == 2
