"""Nothing changed after a signature beyond what the policy allows (the shadow-attack family).

Decree 30 has the organisation sign *after* the authorised person, and pyHanko classifies an
added signature as "form filling" for the earlier one. Such a change is accepted when a later
signature that holds covers it: the later signer attests everything before it, and what comes
after that signer is judged on its own signature. Page content changed after a signature
(level "other") is reported even when somebody signed over it.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import PDF_MODIFIED
from gateway.verify.facts import Coverage, Modification
from gateway.verify.rules.base import Context, Rule, signature_where
from gateway.verify.signers import signature_holds

__all__ = ["RULE"]

_WORDS = {
    Modification.LTA_UPDATES: "validation data added",
    Modification.FORM_FILLING: "form fields filled or signatures added",
    Modification.ANNOTATIONS: "annotations added",
    Modification.OTHER: "page content or structure changed",
}


def check(context: Context) -> Iterable[Finding]:
    allowed = context.policy.allowed_modifications
    for pdf, signature in context.signatures():
        if signature.modification is Modification.NONE and signature.coverage is Coverage.ENTIRE_REVISION:
            # Something follows the signed revision, yet the diff analysis saw no new revision:
            # bytes were appended after %%EOF (spec G1.10a). pyHanko calls that "no change".
            where = signature_where(pdf, signature)
            yield PDF_MODIFIED(where, field=where, detail="bytes appended after the signed revision")
            continue
        if signature.modification is Modification.NONE or signature.modification in allowed:
            continue
        if signature.modification is Modification.FORM_FILLING and any(
            later.index > signature.index and signature_holds(later) for later in pdf.signatures
        ):
            continue
        detail = _WORDS[signature.modification]
        if signature.modification_detail:
            detail = f"{detail}: {signature.modification_detail}"
        where = signature_where(pdf, signature)
        yield PDF_MODIFIED(where, field=where, detail=detail)


RULE = Rule(
    name="pdf-modified-after-signing",
    codes=frozenset({PDF_MODIFIED.code}),
    description="Changes after each signature stay within [modifications] allowed (diff analysis, never skipped).",
    check=check,
)
