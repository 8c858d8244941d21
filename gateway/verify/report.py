"""The verdict as a value: findings with their actions, an ETSI-style indication, the details.

A ``VerificationReport`` is what every consumer reads: the CLI (human and ``--json``), the mail
gateway (SMTP reply, status package 02, receipt log), the archivist's evidence bundle. It is
frozen and carries everything needed to explain itself later: each finding in Vietnamese and
English with where it was seen, every signature's signer and times (and where each time came
from), and the policy's name, version and hash.

Verdict: ``refused`` if any finding's action is ``reject``, else ``deferred`` if any is ``defer``,
else ``accepted``. The indication summarises the same findings in ETSI EN 319 102-1 terms:
TOTAL_FAILED for a definitive failure (altered document, revoked certificate, malformed
package), INDETERMINATE when the proof is missing or could not be obtained (no path to an
anchor, out of validity, revocation status unknown), TOTAL_PASSED otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.clock import iso_vn, iso_vn_or_none
from gateway.edxml.findings import Finding, Severity
from gateway.verify.facts import AdESIndication
from gateway.verify.policy import Action, Policy

__all__ = [
    "EnvelopeSummary",
    "PackageSummary",
    "PolicyRef",
    "ReportFinding",
    "SignatureSummary",
    "Verdict",
    "VerificationReport",
    "indication_for",
    "judge",
    "verdict_for",
]


class Verdict(StrEnum):
    """The bottom line for a package."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    DEFERRED = "deferred"


@dataclass(frozen=True)
class ReportFinding:
    """A finding with the action the policy gave it."""

    code: str
    action: Action
    severity: Severity
    where: str
    message_vi: str
    message_en: str


@dataclass(frozen=True)
class PolicyRef:
    """Which rules the verdict was made under."""

    name: str
    version: str
    sha256: str

    @classmethod
    def of(cls, policy: Policy) -> PolicyRef:
        return cls(policy.name, policy.version, policy.sha256)


@dataclass(frozen=True)
class SignatureSummary:
    """One signature as the report shows it (all times aware UTC; rendered +07:00)."""

    where: str
    document: str
    index: int
    field_name: str
    signer: str | None
    signer_sha256: str | None
    role: str
    """``person``, ``organisation`` or ``unknown``."""
    signing_time: datetime
    signing_time_source: str
    declared_signing_time: datetime | None
    timestamp_time: datetime | None
    tsa: str | None
    anchor: str | None
    revocation_source: str | None
    revocation_status: str | None
    revocation_checked_at: datetime | None
    trust_detail: str
    """The validator's own account of the signer's path and revocation check (technical)."""
    indication: str
    subindication: str | None
    modification: str
    digest_algorithm: str
    signature_mechanism: str
    signer_not_after: datetime | None = None
    """When the signer's certificate expires (``None``: no signer certificate found)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready view with times in ISO 8601 +07:00."""

        return {
            "where": self.where,
            "document": self.document,
            "index": self.index,
            "field": self.field_name,
            "signer": self.signer,
            "signer_sha256": self.signer_sha256,
            "signer_not_after": iso_vn_or_none(self.signer_not_after),
            "role": self.role,
            "signing_time": iso_vn_or_none(self.signing_time),
            "signing_time_source": self.signing_time_source,
            "declared_signing_time": iso_vn_or_none(self.declared_signing_time),
            "timestamp_time": iso_vn_or_none(self.timestamp_time),
            "tsa": self.tsa,
            "anchor": self.anchor,
            "revocation": {
                "source": self.revocation_source,
                "status": self.revocation_status,
                "time": iso_vn_or_none(self.revocation_checked_at),
            },
            "trust_detail": self.trust_detail,
            "indication": self.indication,
            "subindication": self.subindication,
            "modification": self.modification,
            "digest_algorithm": self.digest_algorithm,
            "signature_mechanism": self.signature_mechanism,
        }


@dataclass(frozen=True)
class EnvelopeSummary:
    """The envelope signature's state."""

    state: str
    reason: str
    signer: str | None


@dataclass(frozen=True)
class PackageSummary:
    """What the package says it is (read from the signed tree when the envelope is valid)."""

    kind: str
    document_id: str | None
    code: str | None
    sender: str | None
    recipients: tuple[str, ...]
    subject: str | None
    status_code: str | None = None


@dataclass(frozen=True)
class VerificationReport:
    """Everything the gateway concluded about one package."""

    verdict: Verdict
    indication: AdESIndication
    subindication: str | None
    findings: tuple[ReportFinding, ...]
    signatures: tuple[SignatureSummary, ...]
    policy: PolicyRef
    verified_at: datetime
    sha256: str
    size: int
    envelope: EnvelopeSummary | None = None
    package: PackageSummary | None = None

    @property
    def decisive(self) -> tuple[ReportFinding, ...]:
        """The findings that made the verdict (rejects for refused, defers for deferred)."""
        wanted = {Verdict.REFUSED: Action.REJECT, Verdict.DEFERRED: Action.DEFER}.get(self.verdict)
        return tuple(f for f in self.findings if f.action is wanted)

    def to_json(self, file: str | None = None) -> dict[str, Any]:
        """The ``gateway verify --json`` object (a contract other tools rely on)."""
        return {
            "file": file,
            "verdict": self.verdict.value,
            "indication": self.indication.value,
            "subindication": self.subindication,
            "findings": [
                {
                    "code": f.code,
                    "action": f.action.value,
                    "where": f.where,
                    "message_vi": f.message_vi,
                    "message_en": f.message_en,
                }
                for f in self.findings
            ],
            "signatures": [s.to_json() for s in self.signatures],
            "policy": {"name": self.policy.name, "version": self.policy.version, "sha256": self.policy.sha256},
            "envelope_signature": None
            if self.envelope is None
            else {"state": self.envelope.state, "reason": self.envelope.reason, "signer": self.envelope.signer},
            "package": None
            if self.package is None
            else {
                "kind": self.package.kind,
                "document_id": self.package.document_id,
                "code": self.package.code,
                "sender": self.package.sender,
                "recipients": list(self.package.recipients),
                "subject": self.package.subject,
                "status_code": self.package.status_code,
            },
            "verified_at": iso_vn(self.verified_at),
            "sha256": self.sha256,
            "size": self.size,
        }


def judge(findings: list[Finding] | tuple[Finding, ...], policy: Policy) -> tuple[ReportFinding, ...]:
    """Give each finding its action; drop findings whose check the policy turned off."""
    judged = []
    for finding in findings:
        action = policy.action_for(finding.code)
        if action is None:
            continue
        judged.append(
            ReportFinding(
                code=finding.code,
                action=action,
                severity=finding.severity,
                where=finding.where,
                message_vi=finding.message_vi,
                message_en=finding.message_en,
            )
        )
    return tuple(judged)


def verdict_for(findings: tuple[ReportFinding, ...]) -> Verdict:
    """``refused`` on any reject, else ``deferred`` on any defer, else ``accepted``."""
    actions = {f.action for f in findings}
    if Action.REJECT in actions:
        return Verdict.REFUSED
    if Action.DEFER in actions:
        return Verdict.DEFERRED
    return Verdict.ACCEPTED


# Codes whose failure is definitive in ETSI terms, with their sub-indication.
_FAILED = {
    "xml-malformed": "FORMAT_FAILURE",
    "xml-forbidden-construct": "FORMAT_FAILURE",
    "xml-too-large": "FORMAT_FAILURE",
    "edxml-not-edxml": "FORMAT_FAILURE",
    "edxml-duplicate-element": "FORMAT_FAILURE",
    "edxml-attachment-decode": "FORMAT_FAILURE",
    "edxml-attachment-mismatch": "FORMAT_FAILURE",
    "pdf-unreadable": "FORMAT_FAILURE",
    "envelope-signature-invalid": "HASH_FAILURE",
    "pdf-signature-invalid": "HASH_FAILURE",
    "pdf-modified-after-signing": "HASH_FAILURE",
    "cert-revoked": "REVOKED",
    "cert-not-yet-valid": "NOT_YET_VALID",
}
# Codes that mean "the proof is missing or could not be obtained".
_INDETERMINATE = {
    "cert-untrusted": "NO_CERTIFICATE_CHAIN_FOUND",
    "cert-expired": "OUT_OF_BOUNDS_NO_POE",
    "cert-key-usage": "CHAIN_CONSTRAINTS_FAILURE",
    "cert-is-ca": "CHAIN_CONSTRAINTS_FAILURE",
    "algorithm-weak": "CRYPTO_CONSTRAINTS_FAILURE",
    "revocation-unavailable": "TRY_LATER",
    "pdf-unsigned": "SIGNED_DATA_NOT_FOUND",
    "person-signature-missing": "SIG_CONSTRAINTS_FAILURE",
    "org-signature-missing": "SIG_CONSTRAINTS_FAILURE",
}


def indication_for(findings: tuple[ReportFinding, ...]) -> tuple[AdESIndication, str | None]:
    """ETSI indication and sub-indication summarising the findings that count (reject/defer)."""
    rejects = [f for f in findings if f.action is Action.REJECT]
    for f in rejects:
        if f.code in _FAILED:
            return AdESIndication.TOTAL_FAILED, _FAILED[f.code]
    # A refused package shows why it was refused; a signature-related reason before any other.
    for f in rejects:
        if f.code in _INDETERMINATE:
            return AdESIndication.INDETERMINATE, _INDETERMINATE[f.code]
    if rejects:
        return AdESIndication.INDETERMINATE, "GENERIC"
    if any(f.action is Action.DEFER for f in findings):
        return AdESIndication.INDETERMINATE, "TRY_LATER"
    return AdESIndication.TOTAL_PASSED, None
