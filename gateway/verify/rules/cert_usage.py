"""A signing certificate's key usage must allow signing (Decree 68 Art. 31.1.b: scope of use)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import CERT_KEY_USAGE
from gateway.verify.rules.base import Context, Rule

__all__ = ["RULE"]

_SIGNING = frozenset({"digital_signature", "non_repudiation"})


def check(context: Context) -> Iterable[Finding]:
    for checked in context.certificates():
        usage = checked.certificate.key_usage
        # An absent keyUsage extension restricts nothing (RFC 5280 §4.2.1.3).
        if usage and not usage & _SIGNING:
            yield CERT_KEY_USAGE(checked.where, subject=checked.certificate.subject, usage=", ".join(sorted(usage)))


RULE = Rule(
    name="certificate-key-usage",
    codes=frozenset({CERT_KEY_USAGE.code}),
    description="Signer and TSA certificates allow digitalSignature or nonRepudiation (checklist A4).",
    check=check,
)
