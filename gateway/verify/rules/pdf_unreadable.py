"""A PDF attachment pyHanko cannot read (corrupt, encrypted, not a PDF after all)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.attachments import label
from gateway.edxml.findings import Finding
from gateway.verify.codes import PDF_UNREADABLE
from gateway.verify.rules.base import Context, Rule

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for pdf in context.pdfs:
        if not pdf.readable:
            yield PDF_UNREADABLE(label(pdf.name, pdf.content_id), field=f'"{pdf.name}"', detail=pdf.detail or "-")


RULE = Rule(
    name="pdf-unreadable",
    codes=frozenset({PDF_UNREADABLE.code}),
    description="Every PDF attachment can be read.",
    check=check,
)
