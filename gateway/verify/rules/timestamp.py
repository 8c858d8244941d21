"""The signing time comes from a valid, trusted RFC 3161 timestamp (checklist A3)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import TIMESTAMP_ABSENT, TIMESTAMP_INVALID
from gateway.verify.rules.base import Context, Rule, signature_where

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for pdf, signature in context.signatures():
        where = signature_where(pdf, signature)
        stamp = signature.timestamp
        if stamp is None:
            yield TIMESTAMP_ABSENT(where, field=where)
        elif not stamp.valid:
            reasons = []
            if not stamp.intact:
                reasons.append("the token does not match the signature or its own signature fails")
            if stamp.trust is not None and stamp.trust.detail and stamp.trust.outcome.value != "trusted":
                reasons.append(f"TSA certificate {stamp.trust.outcome.value}: {stamp.trust.detail}")
            if stamp.detail:
                reasons.append(stamp.detail)
            yield TIMESTAMP_INVALID(where, field=where, detail="; ".join(reasons) or "untrusted timestamp")


RULE = Rule(
    name="signature-timestamp",
    codes=frozenset({TIMESTAMP_ABSENT.code, TIMESTAMP_INVALID.code}),
    description="Each signature carries a signature timestamp from a trusted TSA (EKU timeStamping), whose "
    "genTime is the signing time; otherwise the signature is judged at the verification time.",
    check=check,
)
