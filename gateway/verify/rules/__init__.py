"""The rules: one module each, listed here in the order their findings appear in a report.

Every catalogued code is emitted by exactly the rules that declare it (a test checks that the
rules' codes cover the whole catalogue), so ``[actions]`` in the policy can name any of them.
"""

from __future__ import annotations

from gateway.edxml.findings import Finding
from gateway.verify.rules import (
    algorithms,
    attachments,
    cert_ca,
    cert_revoked,
    cert_untrusted,
    cert_usage,
    cert_validity,
    envelope,
    format,
    misaddressed,
    pdf_integrity,
    pdf_modified,
    pdf_unreadable,
    pdf_unsigned,
    presence,
    revocation,
    sender,
    timestamp,
)
from gateway.verify.rules.base import CheckedCertificate, Context, Rule

__all__ = ["RULES", "CheckedCertificate", "Context", "Rule", "run_rules"]

RULES: tuple[Rule, ...] = tuple(
    module.RULE
    for module in (
        format,
        misaddressed,
        envelope,
        attachments,
        pdf_unreadable,
        pdf_unsigned,
        pdf_integrity,
        pdf_modified,
        cert_validity,
        cert_revoked,
        cert_untrusted,
        revocation,
        cert_usage,
        cert_ca,
        algorithms,
        timestamp,
        presence,
        sender,
    )
)


def run_rules(context: Context) -> list[Finding]:
    """Every rule's findings, in rule order; a finding repeated word for word is kept once."""
    seen: set[Finding] = set()
    findings: list[Finding] = []
    for rule in RULES:
        for finding in rule.check(context):
            if finding not in seen:
                seen.add(finding)
                findings.append(finding)
    return findings
