"""A CA certificate must not sign documents (spec G1.3)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import CERT_IS_CA
from gateway.verify.rules.base import Context, Rule

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for checked in context.certificates():
        if checked.certificate.is_ca:
            yield CERT_IS_CA(checked.where, subject=checked.certificate.subject)


RULE = Rule(
    name="certificate-not-ca",
    codes=frozenset({CERT_IS_CA.code}),
    description="No signer or TSA certificate is a CA certificate (basicConstraints CA=true) (checklist A4).",
    check=check,
)
