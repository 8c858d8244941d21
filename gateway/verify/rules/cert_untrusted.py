"""Trust comes only from a path to a pinned anchor; names never decide (Decree 68 Art. 32, G1.14)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import CERT_UNTRUSTED
from gateway.verify.facts import TrustOutcome
from gateway.verify.rules.base import Context, Rule, brief

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for checked in context.certificates():
        if checked.trust.outcome is TrustOutcome.UNTRUSTED:
            yield CERT_UNTRUSTED(checked.where, subject=checked.certificate.subject, detail=brief(checked.trust.detail))


RULE = Rule(
    name="certificate-path",
    codes=frozenset({CERT_UNTRUSTED.code}),
    description="Every signer and TSA certificate chains to a trust anchor pinned by SHA-256 (checklist A6).",
    check=check,
)
