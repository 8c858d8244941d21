"""Each signature's digest and value hold, and /ByteRange covers its whole revision (A2)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import PDF_SIGNATURE_INVALID
from gateway.verify.facts import Coverage
from gateway.verify.rules.base import Context, Rule, signature_where

__all__ = ["RULE"]

_COVERS_REVISION = {Coverage.ENTIRE_FILE, Coverage.ENTIRE_REVISION}


def check(context: Context) -> Iterable[Finding]:
    for pdf, signature in context.signatures():
        where = signature_where(pdf, signature)
        problems = []
        if not signature.intact:
            problems.append("the signed bytes do not match their digest")
        elif not signature.crypto_valid:
            problems.append("the signature value does not verify with the signer's key")
        if signature.coverage not in _COVERS_REVISION:
            problems.append(f"/ByteRange does not cover the whole signed revision ({signature.coverage.value})")
        if signature.signer is None:
            problems.append("the signer's certificate is not in the signature")
        if problems:
            yield PDF_SIGNATURE_INVALID(where, field=where, detail="; ".join(problems))


RULE = Rule(
    name="pdf-signature-integrity",
    codes=frozenset({PDF_SIGNATURE_INVALID.code}),
    description="Digest over /ByteRange, signature value, and coverage of the whole revision.",
    check=check,
)
