"""No revocation answer is not a good answer: defer (hard-fail) or warn (soft-fail), never accept blind."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import REVOCATION_UNAVAILABLE
from gateway.verify.facts import TrustFacts, TrustOutcome
from gateway.verify.rules.base import Context, Rule

__all__ = ["RULE"]


def _why(trust: TrustFacts) -> str:
    if trust.revocation is not None and trust.revocation.status == "unknown" and trust.outcome is TrustOutcome.TRUSTED:
        return "no OCSP or CRL answer; accepted under soft-fail"
    return "no usable answer from the OCSP responder or the CRL server"


def check(context: Context) -> Iterable[Finding]:
    for checked in context.certificates():
        trust = checked.trust
        unavailable = trust.outcome is TrustOutcome.REVOCATION_UNAVAILABLE or (
            trust.outcome is TrustOutcome.TRUSTED
            and trust.revocation is not None
            and trust.revocation.status == "unknown"
        )
        if unavailable:
            yield REVOCATION_UNAVAILABLE(checked.where, subject=checked.certificate.subject, detail=_why(trust))


RULE = Rule(
    name="revocation-status",
    codes=frozenset({REVOCATION_UNAVAILABLE.code}),
    description="An OCSP or CRL answer was obtained for every link ([revocation] mode decides what a missing "
    "one means; checklist A5).",
    check=check,
)
