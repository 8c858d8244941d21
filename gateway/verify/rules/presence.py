"""Decree 30/2020 Art. 5: the main document carries the authorised person's and the organisation's signature.

Separate attachment files carry the organisation's signature (Appendix I); the person's is
expected only on the main document.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.attachments import label
from gateway.edxml.findings import Finding
from gateway.verify.codes import ORG_MISSING, PERSON_MISSING
from gateway.verify.rules.base import Context, Rule
from gateway.verify.signers import document_roles, signature_holds

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for pdf in context.pdfs:
        if not pdf.readable or not pdf.signatures:
            continue  # unreadable and unsigned documents have their own findings
        roles = document_roles(pdf, context.policy.signers)
        present = {roles[s.index] for s in pdf.signatures if signature_holds(s)}
        where = label(pdf.name, pdf.content_id)
        if pdf.is_main and "person" not in present:
            yield PERSON_MISSING(where, field=f'"{pdf.name}"')
        if "organisation" not in present:
            yield ORG_MISSING(where, field=f'"{pdf.name}"')


RULE = Rule(
    name="decree-30-signatures",
    codes=frozenset({PERSON_MISSING.code, ORG_MISSING.code}),
    description="The main document bears a person's and an organisation's signature; separate attachments an "
    "organisation's (checklist A8). Recognition per [signers], else the signing order.",
    check=check,
)
