"""Attachments that are not PDF cannot carry checkable signatures."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.attachments import label
from gateway.edxml.findings import Finding
from gateway.verify.codes import ATTACHMENT_NOT_PDF
from gateway.verify.rules.base import Context, Rule

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    for attachment in context.other_attachments:
        if attachment.data is not None:  # undecodable ones are reported by the format rule
            where = label(attachment.name, attachment.content_id)
            yield ATTACHMENT_NOT_PDF(where, field=f'"{attachment.name}"')


RULE = Rule(
    name="attachment-not-pdf",
    codes=frozenset({ATTACHMENT_NOT_PDF.code}),
    description="Every attachment is a PDF whose signatures can be checked.",
    check=check,
)
