"""``verify_package``: raw bytes in, a verdict out (async, pure of mail and database).

The steps (issue "verification engine", checklist §6 A1–A8):

1. read the package once with the hardened parser and check its envelope signature; business
   fields come from the signed tree when the signature is valid (off the event loop: parsing
   and XML canonicalisation are CPU work);
2. ask the examiner about the envelope signer (path and revocation now: the envelope carries
   no timestamp) and about every PDF attachment (each signature: integrity, changes after
   signing, timestamp, signer path and revocation at the signing time);
3. run every rule over those facts, give each finding its action from the policy, and decide.

The examiner is reached through the two-method ``Examining`` protocol (HOUSE.md rule 3), so
unit tests can feed facts directly while integration tests use the real pyHanko examiner
against the test PKI. The policy is read once at the start of a verification: a reload
(SIGHUP) swaps ``Verifier.policy`` for the next package and never mixes two policies in one
verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cryptography import x509

from gateway.clock import Clock, SystemClock, to_utc, to_vn
from gateway.edxml.attachments import sniff
from gateway.edxml.lean import Streamed
from gateway.edxml.model import Attachment, DocumentPackage, StatusPackage
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, XMLLimits
from gateway.settings import IdentitySettings
from gateway.verify.certs import certificate_facts
from gateway.verify.directory import Directory
from gateway.verify.envelope import ReadPackage, read_package
from gateway.verify.facts import CertificateFacts, PdfFacts, TrustFacts
from gateway.verify.policy import Policy
from gateway.verify.report import (
    EnvelopeSummary,
    PackageSummary,
    PolicyRef,
    SignatureSummary,
    VerificationReport,
    indication_for,
    judge,
    verdict_for,
)
from gateway.verify.rules import Context, run_rules
from gateway.verify.rules.base import signature_where
from gateway.verify.signers import document_roles
from gateway.verify.trust import ExamSettings, Purpose

__all__ = ["Examining", "Verified", "Verifier", "exam_settings", "verify_and_read", "verify_package"]

_PDF = "application/pdf"


class Examining(Protocol):
    """What the verdict needs from the examiner (``gateway.verify.pdf.Examiner`` or a test twin)."""

    async def examine_pdf(
        self,
        data: bytes,
        *,
        name: str,
        content_id: str,
        is_main: bool,
        settings: ExamSettings,
        at: datetime | None = None,
    ) -> PdfFacts:
        """Facts about one PDF and its signatures (untimestamped ones judged at ``at``)."""
        ...

    async def examine_certificate(
        self,
        cert: x509.Certificate,
        *,
        at: datetime | None = None,
        purpose: Purpose = "signing",
        settings: ExamSettings,
        extra_certs: Sequence[x509.Certificate] = (),
    ) -> TrustFacts:
        """Path validation of one certificate at ``at``."""
        ...


def exam_settings(policy: Policy, request_timeout: float) -> ExamSettings:
    """What the examiner needs from the admin's policy for one verification."""
    return ExamSettings(
        revocation_mode=policy.revocation_mode,
        time_tolerance=policy.clock_skew,
        request_timeout=request_timeout,
    )


@dataclass
class Verifier:
    """The long-lived things a verification needs, built once per process."""

    examiner: Examining
    policy: Policy
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    directory: Directory = field(default_factory=Directory)
    limits: XMLLimits = DEFAULT_LIMITS
    max_attachment_bytes: int = 48 * 1024 * 1024
    request_timeout: float = 20.0
    """Deadline of one OCSP/CRL request, seconds."""
    clock: Clock = field(default_factory=SystemClock)

    def replace_policy(self, policy: Policy) -> None:
        """Use ``policy`` for every verification that starts from now on."""
        self.policy = policy


def _is_pdf(attachment: Attachment) -> bool:
    return attachment.data is not None and sniff(attachment.data) == _PDF


def _package_summary(read: ReadPackage) -> PackageSummary | None:
    package = read.parsed.package
    if isinstance(package, DocumentPackage):
        header = package.header
        return PackageSummary(
            kind="edoc",
            document_id=header.document_id,
            code=str(header.code) or None,
            sender=header.from_.organ_id or None,
            recipients=tuple(t.organ_id for t in header.to),
            subject=header.subject or None,
        )
    if isinstance(package, StatusPackage):
        return PackageSummary(
            kind="status",
            document_id=package.response_for.document_id,
            code=package.response_for.code,
            sender=package.from_.organ_id or None,
            recipients=(),
            subject=package.description,
            status_code=package.status_code,
        )
    return None


def _signature_summaries(pdfs: tuple[PdfFacts, ...], policy: Policy) -> tuple[SignatureSummary, ...]:
    summaries = []
    for pdf in pdfs:
        roles = document_roles(pdf, policy.signers)
        for s in pdf.signatures:
            trust, stamp = s.trust, s.timestamp
            summaries.append(
                SignatureSummary(
                    where=signature_where(pdf, s),
                    document=pdf.name,
                    index=s.index,
                    field_name=s.field_name,
                    signer=None if s.signer is None else s.signer.subject,
                    signer_sha256=None if s.signer is None else s.signer.sha256,
                    signer_not_after=None if s.signer is None else s.signer.not_after,
                    role=roles.get(s.index, "unknown"),
                    signing_time=s.signing_time,
                    signing_time_source=s.signing_time_source.value,
                    declared_signing_time=s.declared_signing_time,
                    timestamp_time=None if stamp is None else stamp.gen_time,
                    tsa=None if stamp is None or stamp.tsa is None else stamp.tsa.subject,
                    anchor=None if trust.anchor is None else trust.anchor.subject,
                    revocation_source=None if trust.revocation is None else trust.revocation.source,
                    revocation_status=None if trust.revocation is None else trust.revocation.status,
                    revocation_checked_at=None if trust.revocation is None else trust.revocation.produced_at,
                    trust_detail=trust.detail,
                    indication=s.indication.value,
                    subindication=s.subindication,
                    modification=s.modification.value,
                    digest_algorithm=s.digest_algorithm,
                    signature_mechanism=s.signature_mechanism,
                )
            )
    return tuple(summaries)


@dataclass(frozen=True)
class Verified:
    """A verdict and the package it was reached on (``verify_and_read``)."""

    report: VerificationReport
    package: DocumentPackage | StatusPackage | None
    """Read from what the envelope signature covers when it is valid (HOUSE.md rule 11), else
    from the received tree; ``None`` when the bytes are no package we can read."""


async def verify_package(
    raw: bytes | Callable[[], bytes] | Streamed, verifier: Verifier, *, at: datetime | None = None
) -> VerificationReport:
    """Verify one received package.

    Args:
        raw: the package exactly as received, a function giving it once, or its pieces
            (``read_package``).
        verifier: the process's examiner, policy, identity and directory.
        at: judge as of this time instead of now (rule replay, ``gateway verify --at``).

    Returns:
        The report; a refusal, deferral or acceptance is a value, never an exception.

    Raises:
        Exception: only when the package could not be judged at all (a bug, or the examiner
            failing outside its contract); callers keep the package and retry later.
    """
    return (await verify_and_read(raw, verifier, at=at)).report


async def verify_and_read(
    raw: bytes | Callable[[], bytes] | Streamed, verifier: Verifier, *, at: datetime | None = None
) -> Verified:
    """``verify_package``, also handing back the package as read for it.

    The pipeline acts on the package after the verdict (status notices, trails); reading it
    here once spares a second parse and envelope check of a package that may be tens of MB.

    Args:
        raw: the package exactly as received, a function giving it once (the bytes go once
            read), or its pieces as read from the spooled mail (``read_package``).
        verifier: the process's examiner, policy, identity and directory.
        at: judge as of this time instead of now.

    Returns:
        The report and the package.

    Raises:
        Exception: as ``verify_package``.
    """
    policy = verifier.policy  # one policy for the whole verification, whatever reloads meanwhile
    moment = to_utc(at) if at is not None else verifier.clock.now()
    today = to_vn(moment).date()
    read = await asyncio.to_thread(
        read_package,
        raw,
        limits=verifier.limits,
        max_attachment_bytes=verifier.max_attachment_bytes,
        today=today,
    )
    settings = exam_settings(policy, verifier.request_timeout)
    envelope = read.envelope
    envelope_facts: tuple[CertificateFacts, TrustFacts] | None = None
    if envelope is not None and envelope.valid and envelope.signer is not None:
        chain = [c for c in envelope.certificates if c != envelope.signer]  # KeyInfo may carry the chain
        trust = await verifier.examiner.examine_certificate(
            envelope.signer, at=moment, settings=settings, extra_certs=chain
        )
        envelope_facts = (certificate_facts(envelope.signer), trust)

    attachments = read.parsed.package.attachments if isinstance(read.parsed.package, DocumentPackage) else ()
    pdf_attachments = [a for a in attachments if _is_pdf(a)]
    others = tuple(a for a in attachments if not _is_pdf(a))
    examined = await asyncio.gather(
        *(
            verifier.examiner.examine_pdf(
                a.data or b"",
                name=a.name,
                content_id=a.content_id,
                is_main=index == 0,
                settings=settings,
                at=moment,
            )
            for index, a in enumerate(pdf_attachments)
        )
    )
    pdfs = tuple(examined)
    context = Context(
        parsed=read.parsed,
        envelope=envelope,
        envelope_signer=None if envelope_facts is None else envelope_facts[0],
        envelope_trust=None if envelope_facts is None else envelope_facts[1],
        pdfs=pdfs,
        other_attachments=others,
        identity=verifier.identity,
        directory=verifier.directory,
        policy=policy,
        verified_at=moment,
    )
    findings = judge(run_rules(context), policy)
    indication, subindication = indication_for(findings)
    report = VerificationReport(
        verdict=verdict_for(findings),
        indication=indication,
        subindication=subindication,
        findings=findings,
        signatures=_signature_summaries(pdfs, policy),
        policy=PolicyRef.of(policy),
        verified_at=moment,
        sha256=read.sha256,
        size=read.size,
        envelope=None
        if envelope is None
        else EnvelopeSummary(
            state=envelope.state.value,
            reason=envelope.reason,
            signer=None if envelope.signer is None else envelope.signer.subject.rfc4514_string(),
        ),
        package=_package_summary(read),
    )
    return Verified(report, read.parsed.package)
