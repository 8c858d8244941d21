"""Every document must be signed (PM directive: 100 % of axis documents digitally signed)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.attachments import label
from gateway.edxml.findings import Finding
from gateway.verify.codes import PDF_UNSIGNED
from gateway.verify.rules.base import Context, Rule

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for pdf in context.pdfs:
        if pdf.readable and not pdf.signatures:
            yield PDF_UNSIGNED(label(pdf.name, pdf.content_id), field=f'"{pdf.name}"')


RULE = Rule(
    name="pdf-unsigned",
    codes=frozenset({PDF_UNSIGNED.code}),
    description="Every PDF attachment carries at least one signature (checklist A2).",
    check=check,
)
