"""The pinned trust store and path validation at a point in time, against the served dev PKI.

Every outcome of ``TrustChecker`` is driven by a real certificate of ``vgca-test.yml`` and real
OCSP/CRL answers over loopback HTTP (HOUSE.md rule 14). Unreachable responders are covered in
``test_exam_unreachable.py``, the cache in ``test_fetch.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.clock import SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.errors import ConfigError
from gateway.verify.chain import TrustCheck, TrustChecker
from gateway.verify.facts import TrustOutcome
from gateway.verify.fetch import HttpFetchers
from gateway.verify.trust import ExamSettings, Purpose, TrustStore, normalise_fingerprint
from tests.pdfs import run


def _pin(pki: DevPKI, label: str = "root") -> str:
    return fingerprint(pki.certificate(label))


def _store(pki: DevPKI) -> TrustStore:
    return TrustStore.load([pki.layout.anchor("root")], [_pin(pki)], [pki.layout.intermediate("intermediate")])


def _check(
    pki: DevPKI,
    label: str,
    *,
    at: datetime | None = None,
    purpose: Purpose = "signing",
    settings: ExamSettings | None = None,
) -> TrustCheck:
    async def go() -> TrustCheck:
        clock = SystemClock()
        fetchers = HttpFetchers(clock)
        try:
            checker = TrustChecker(_store(pki), fetchers, clock)
            when = at or clock.now()
            return await checker.check(
                pki.certificate(label), at=when, purpose=purpose, settings=settings or ExamSettings()
            )
        finally:
            await fetchers.aclose()

    return run(go())


# ---------------------------------------------------------------------- the store
def test_store_holds_the_pinned_anchor_and_the_untrusted_intermediate(dev_pki: DevPKI) -> None:
    store = _store(dev_pki)
    assert [a.sha256 for a in store.anchor_facts] == [_pin(dev_pki).replace(":", "")]
    assert [c.dump() for c in store.intermediates] == [dev_pki.certificate("intermediate").public_bytes(Encoding.DER)]


@pytest.mark.parametrize(
    "style",
    [
        lambda fp: fp,
        lambda fp: fp.replace(":", ""),
        lambda fp: fp.replace(":", "").lower(),
        lambda fp: f"SHA256 Fingerprint={fp}",
    ],
    ids=["colons", "bare", "lower-case", "openssl"],
)
def test_pins_are_accepted_in_the_usual_spellings(dev_pki: DevPKI, style: object) -> None:
    assert callable(style)
    store = TrustStore.load([dev_pki.layout.anchor("root")], [style(_pin(dev_pki))])
    assert len(store.anchors) == 1


def test_the_bundle_fingerprint_file_is_a_valid_pin(dev_pki: DevPKI) -> None:
    text = dev_pki.layout.anchor_fingerprint("root").read_text(encoding="utf-8")
    assert normalise_fingerprint(text) == _pin(dev_pki).replace(":", "")


def test_an_anchor_that_matches_no_pin_is_refused_naming_both_fingerprints(dev_pki: DevPKI) -> None:
    wrong = _pin(dev_pki, "intermediate")
    with pytest.raises(ConfigError) as caught:
        TrustStore.load([dev_pki.layout.anchor("root")], [wrong])
    message = str(caught.value)
    assert str(dev_pki.layout.anchor("root")) in message
    assert _pin(dev_pki) in message  # found
    assert wrong in message  # pinned


def test_an_empty_store_is_refused(dev_pki: DevPKI) -> None:
    with pytest.raises(ConfigError, match="empty"):
        TrustStore.load([], [_pin(dev_pki)])
    with pytest.raises(ConfigError, match="empty"):
        TrustStore.load([dev_pki.layout.anchor("root")], [])


def test_an_unreadable_anchor_file_is_refused_naming_it(tmp_path: Path, dev_pki: DevPKI) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConfigError, match="cannot read") as caught:
        TrustStore.load([missing], [_pin(dev_pki)])
    assert caught.value.path == missing


def test_a_file_that_is_no_certificate_is_refused(tmp_path: Path, dev_pki: DevPKI) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="not a PEM or DER") as caught:
        TrustStore.load([junk], [_pin(dev_pki)])
    assert caught.value.path == junk


def test_a_non_ca_anchor_is_refused_even_when_pinned(dev_pki: DevPKI) -> None:
    with pytest.raises(ConfigError, match="not a CA"):
        TrustStore.load([dev_pki.layout.cert("person")], [_pin(dev_pki, "person")])


def test_a_pin_without_an_anchor_file_is_refused(dev_pki: DevPKI) -> None:
    with pytest.raises(ConfigError, match="match no anchor"):
        TrustStore.load([dev_pki.layout.anchor("root")], [_pin(dev_pki), _pin(dev_pki, "intermediate")])


def test_a_malformed_pin_is_refused(dev_pki: DevPKI) -> None:
    with pytest.raises(ConfigError, match="not a SHA-256 fingerprint"):
        TrustStore.load([dev_pki.layout.anchor("root")], ["AB:CD"])


def test_a_non_ca_intermediate_is_refused(dev_pki: DevPKI) -> None:
    with pytest.raises(ConfigError, match="not a CA") as caught:
        TrustStore.load([dev_pki.layout.anchor("root")], [_pin(dev_pki)], [dev_pki.layout.cert("org")])
    assert caught.value.path == dev_pki.layout.cert("org")


@pytest.mark.parametrize(
    "kwargs",
    [{"revocation_mode": "sometimes"}, {"time_tolerance": timedelta(seconds=-1)}, {"request_timeout": 0}],
)
def test_exam_settings_refuse_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"mode|negative|positive"):
        ExamSettings(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- outcomes
@pytest.mark.parametrize("label", ["person", "org"])
def test_good_signers_are_trusted_to_the_pinned_root_with_an_ocsp_answer(dev_pki: DevPKI, label: str) -> None:
    at = SystemClock().now()
    check = _check(dev_pki, label, at=at)
    facts = check.facts
    assert facts.outcome is TrustOutcome.TRUSTED, facts.detail
    assert check.subindication is None
    assert facts.checked_at == at
    assert facts.anchor is not None
    assert facts.anchor.sha256 == _pin(dev_pki).replace(":", "")
    assert [c.subject for c in facts.path] == [
        dev_pki.certificate(x).subject.rfc4514_string() for x in ("root", "intermediate", label)
    ]
    assert facts.revocation is not None
    assert (facts.revocation.source, facts.revocation.status) == ("ocsp", "good")
    assert facts.revocation.produced_at is not None


@pytest.mark.parametrize(
    ("label", "outcome"), [("expired", TrustOutcome.EXPIRED), ("not-yet-valid", TrustOutcome.NOT_YET_VALID)]
)
def test_validity_period_is_judged_at_the_time_given(dev_pki: DevPKI, label: str, outcome: TrustOutcome) -> None:
    check = _check(dev_pki, label)
    assert check.facts.outcome is outcome
    assert check.subindication == "OUT_OF_BOUNDS_NO_POE"
    assert check.facts.path[-1].subject == dev_pki.certificate(label).subject.rfc4514_string()


def test_an_expired_certificate_is_trusted_at_a_time_inside_its_validity(dev_pki: DevPKI) -> None:
    at = dev_pki.certificate("expired").not_valid_after_utc - timedelta(days=1)
    check = _check(dev_pki, "expired", at=at)
    # Valid then; its status is established as of then (it has expired since). The OCSP
    # responder's certificate did not exist yet at that time, so the CRL answers.
    assert check.facts.outcome is TrustOutcome.TRUSTED, check.facts.detail
    assert check.facts.revocation is not None
    assert (check.facts.revocation.source, check.facts.revocation.status) == ("crl", "good")


def test_revoked_now_is_revoked_with_the_time_and_reason(dev_pki: DevPKI) -> None:
    check = _check(dev_pki, "revoked")
    facts = check.facts
    assert facts.outcome is TrustOutcome.REVOKED
    assert check.subindication == "REVOKED_NO_POE"
    assert check.revoked_link_is_end_entity
    assert facts.revocation is not None
    assert facts.revocation.status == "revoked"
    assert facts.revocation.revocation_time == dev_pki.revocation_time
    assert facts.revocation.reason == "key_compromise"


@pytest.mark.parametrize(
    ("offset", "outcome"),
    [
        (timedelta(hours=-1), TrustOutcome.TRUSTED),  # signed before the revocation: Art. 31, G1.12
        (timedelta(0), TrustOutcome.REVOKED),  # "at or before"
        (timedelta(hours=1), TrustOutcome.REVOKED),
    ],
    ids=["before", "at", "after"],
)
def test_revocation_counts_only_at_or_before_the_signing_time(
    dev_pki: DevPKI, offset: timedelta, outcome: TrustOutcome
) -> None:
    check = _check(dev_pki, "revoked", at=dev_pki.revocation_time + offset)
    assert check.facts.outcome is outcome, check.facts.detail
    assert check.facts.checked_at == dev_pki.revocation_time + offset
    # The answer itself is reported either way: revoked, and when.
    assert check.facts.revocation is not None
    assert check.facts.revocation.revocation_time == dev_pki.revocation_time


@pytest.mark.parametrize("label", ["impostor-leaf", "impostor-root"])
def test_names_never_decide_trust(dev_pki: DevPKI, label: str) -> None:
    check = _check(dev_pki, label)
    assert check.facts.outcome is TrustOutcome.UNTRUSTED
    assert check.subindication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert check.facts.anchor is None
    assert check.facts.path == ()


@pytest.mark.parametrize("label", ["sha1", "rsa1024", "ecdsa", "ca-flagged", "wrong-key-usage"])
def test_algorithms_key_usage_and_ca_flag_are_left_to_the_policy(dev_pki: DevPKI, label: str) -> None:
    # The facts show them (test_exam_certs.py); the validator must not refuse them itself.
    assert _check(dev_pki, label).facts.outcome is TrustOutcome.TRUSTED


def test_a_tsa_needs_the_time_stamping_eku(dev_pki: DevPKI) -> None:
    assert _check(dev_pki, "tsa", purpose="timestamping").facts.outcome is TrustOutcome.TRUSTED
    refused = _check(dev_pki, "person", purpose="timestamping")
    assert refused.facts.outcome is TrustOutcome.BAD_USAGE
    assert refused.subindication == "CHAIN_CONSTRAINTS_FAILURE"
    assert "timeStamping" in refused.facts.detail


def test_revocation_off_checks_the_path_and_fetches_nothing(dev_pki: DevPKI) -> None:
    async def go() -> tuple[TrustCheck, dict[str, int]]:
        clock = SystemClock()
        fetchers = HttpFetchers(clock)
        try:
            checker = TrustChecker(_store(dev_pki), fetchers, clock)
            settings = ExamSettings(revocation_mode="off")
            check = await checker.check(
                dev_pki.certificate("revoked"), at=clock.now(), purpose="signing", settings=settings
            )
            return check, fetchers.stats.requests
        finally:
            await fetchers.aclose()

    check, requests = run(go())
    assert check.facts.outcome is TrustOutcome.TRUSTED  # nobody asked whether it was revoked
    assert check.facts.revocation is not None
    assert (check.facts.revocation.source, check.facts.revocation.status) == ("none", "unknown")
    assert requests == {}
