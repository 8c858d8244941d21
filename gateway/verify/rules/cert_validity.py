"""Certificates must be within their validity period at the signing time (Decree 68 Art. 31.1.a)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import CERT_EXPIRED, CERT_NOT_YET_VALID
from gateway.verify.facts import TrustOutcome
from gateway.verify.rules.base import Context, Rule, show_time

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for checked in context.certificates():
        cert, trust = checked.certificate, checked.trust
        if trust.outcome is TrustOutcome.EXPIRED:
            yield CERT_EXPIRED(
                checked.where, subject=cert.subject, time=show_time(trust.checked_at), until=show_time(cert.not_after)
            )
        elif trust.outcome is TrustOutcome.NOT_YET_VALID:
            yield CERT_NOT_YET_VALID(
                checked.where, subject=cert.subject, time=show_time(trust.checked_at), since=show_time(cert.not_before)
            )


RULE = Rule(
    name="certificate-validity-period",
    codes=frozenset({CERT_EXPIRED.code, CERT_NOT_YET_VALID.code}),
    description="Every certificate on the path was in its validity period at the signing time (checklist A4, A6).",
    check=check,
)
