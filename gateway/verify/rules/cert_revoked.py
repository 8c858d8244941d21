"""No certificate on the path was revoked at or before the signing time (Decree 68 Art. 31.1.c)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import CERT_REVOKED
from gateway.verify.facts import TrustOutcome
from gateway.verify.rules.base import Context, Rule, show_time

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for checked in context.certificates():
        trust = checked.trust
        if trust.outcome is TrustOutcome.REVOKED:
            revoked = trust.revocation.revocation_time if trust.revocation else None
            yield CERT_REVOKED(
                checked.where,
                subject=checked.certificate.subject,
                revoked=show_time(revoked),
                time=show_time(trust.checked_at),
            )


RULE = Rule(
    name="certificate-revocation",
    codes=frozenset({CERT_REVOKED.code}),
    description="Revoked at or before the signing time refuses; revoked after a trusted timestamp does not "
    "(checklist A5).",
    check=check,
)
