"""The format layer's findings (``xml-*``, ``edxml-*``) enter the verdict like any other."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import CATALOGUE, Finding
from gateway.verify.rules.base import Context, Rule

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    return context.parsed.findings


RULE = Rule(
    name="format",
    codes=frozenset(CATALOGUE),
    description="The package is well-formed, hardened-parser-safe edXML with consistent attachments (spec §1-§3).",
    check=check,
)
