"""Verdict and indication: refused on any reject, deferred on any defer, ETSI terms alongside."""

from __future__ import annotations

import pytest

from gateway.edxml.findings import Severity
from gateway.verify.codes import kind
from gateway.verify.facts import AdESIndication
from gateway.verify.policy import Action, Policy
from gateway.verify.report import ReportFinding, Verdict, indication_for, judge, verdict_for


def finding(code: str, action: Action) -> ReportFinding:
    return ReportFinding(code, action, Severity.ERROR, "here", "vi", "en")


@pytest.mark.parametrize(
    ("actions", "verdict"),
    [
        ([], Verdict.ACCEPTED),
        ([Action.WARN, Action.IGNORE], Verdict.ACCEPTED),
        ([Action.WARN, Action.DEFER], Verdict.DEFERRED),
        ([Action.DEFER, Action.REJECT, Action.WARN], Verdict.REFUSED),
    ],
)
def test_verdict(actions: list[Action], verdict: Verdict) -> None:
    assert verdict_for(tuple(finding("cert-revoked", a) for a in actions)) is verdict


@pytest.mark.parametrize(
    ("code", "action", "expected"),
    [
        ("cert-revoked", Action.REJECT, (AdESIndication.TOTAL_FAILED, "REVOKED")),
        ("pdf-signature-invalid", Action.REJECT, (AdESIndication.TOTAL_FAILED, "HASH_FAILURE")),
        ("xml-malformed", Action.REJECT, (AdESIndication.TOTAL_FAILED, "FORMAT_FAILURE")),
        ("cert-untrusted", Action.REJECT, (AdESIndication.INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND")),
        ("cert-expired", Action.REJECT, (AdESIndication.INDETERMINATE, "OUT_OF_BOUNDS_NO_POE")),
        ("revocation-unavailable", Action.DEFER, (AdESIndication.INDETERMINATE, "TRY_LATER")),
        ("timestamp-absent", Action.WARN, (AdESIndication.TOTAL_PASSED, None)),
    ],
)
def test_indication(code: str, action: Action, expected: tuple[AdESIndication, str | None]) -> None:
    assert indication_for((finding(code, action),)) == expected


def test_a_definitive_failure_outranks_a_missing_proof() -> None:
    found = (finding("cert-untrusted", Action.REJECT), finding("cert-revoked", Action.REJECT))
    assert indication_for(found) == (AdESIndication.TOTAL_FAILED, "REVOKED")


def test_judge_gives_actions_and_drops_checks_that_are_off() -> None:
    revoked = kind("cert-revoked")("sig 1", subject="CN=x", revoked="-", time="-")
    unavailable = kind("revocation-unavailable")("sig 1", subject="CN=x", detail="ocsp down")
    judged = judge((revoked, unavailable), Policy(revocation_mode="off"))
    assert [(f.code, f.action) for f in judged] == [("cert-revoked", Action.REJECT)]
    judged = judge((unavailable,), Policy())
    assert judged[0].action is Action.DEFER
    assert judged[0].message_vi.startswith("Chưa kiểm tra được tình trạng thu hồi")


def test_a_refused_package_shows_its_refusal_not_a_deferral() -> None:
    found = (finding("revocation-unavailable", Action.DEFER), finding("pdf-unsigned", Action.REJECT))
    assert indication_for(found) == (AdESIndication.INDETERMINATE, "SIGNED_DATA_NOT_FOUND")
    unmapped = (finding("revocation-unavailable", Action.DEFER), finding("misaddressed", Action.REJECT))
    assert indication_for(unmapped) == (AdESIndication.INDETERMINATE, "GENERIC")
