"""What every rule sees and what every rule is.

A rule is data plus one pure function (HOUSE.md rule 10, after Mailman's ``rules/``): a name,
the codes it can emit, a sentence saying what it checks, and ``check(context)`` returning
findings. Rules never do I/O and never decide actions: the examiners gathered the facts
beforehand, and the admin's policy turns each code into an action afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from gateway.clock import iso_vn
from gateway.edxml.attachments import label
from gateway.edxml.findings import Finding
from gateway.edxml.model import Attachment, DocumentPackage, StatusPackage
from gateway.edxml.parse import ParseResult
from gateway.settings import IdentitySettings
from gateway.verify.directory import Directory
from gateway.verify.facts import CertificateFacts, PdfFacts, SignatureFacts, TrustFacts
from gateway.verify.policy import Policy
from gateway.verify.xmldsig import EnvelopeSignature

__all__ = ["CheckedCertificate", "Context", "Rule", "brief", "show_time", "signature_where"]


@dataclass(frozen=True)
class CheckedCertificate:
    """A certificate that was path-validated, with where it was used and for what."""

    where: str
    purpose: str
    """``signing`` (a document or envelope signer) or ``timestamping`` (a TSA)."""
    certificate: CertificateFacts
    trust: TrustFacts


@dataclass(frozen=True)
class Context:
    """The facts about one package, as the rules see them."""

    parsed: ParseResult
    envelope: EnvelopeSignature | None
    envelope_signer: CertificateFacts | None
    envelope_trust: TrustFacts | None
    pdfs: tuple[PdfFacts, ...]
    other_attachments: tuple[Attachment, ...]
    identity: IdentitySettings
    directory: Directory
    policy: Policy
    verified_at: datetime

    @property
    def package(self) -> DocumentPackage | StatusPackage | None:
        return self.parsed.package

    def signatures(self) -> Iterator[tuple[PdfFacts, SignatureFacts]]:
        """Every signature of every readable PDF, with its document."""
        for pdf in self.pdfs:
            for signature in pdf.signatures:
                yield pdf, signature

    def certificates(self) -> Iterator[CheckedCertificate]:
        """Every certificate the checklist judges: each PDF signer and its TSA, the envelope signer."""
        for pdf, signature in self.signatures():
            where = signature_where(pdf, signature)
            if signature.signer is not None:
                yield CheckedCertificate(where, "signing", signature.signer, signature.trust)
            stamp = signature.timestamp
            if stamp is not None and stamp.tsa is not None and stamp.trust is not None:
                yield CheckedCertificate(f"{where}, timestamp", "timestamping", stamp.tsa, stamp.trust)
        if self.envelope_signer is not None and self.envelope_trust is not None:
            yield CheckedCertificate("envelope", "signing", self.envelope_signer, self.envelope_trust)


@dataclass(frozen=True)
class Rule:
    """One check: its name, the codes it may emit, what it checks, and the check itself."""

    name: str
    codes: frozenset[str]
    description: str
    check: Callable[[Context], Iterable[Finding]]


def signature_where(pdf: PdfFacts, signature: SignatureFacts) -> str:
    """``attachment "x.pdf" (cid:1), signature 2 (Signature2)``: where a clerk finds it."""
    return f"{label(pdf.name, pdf.content_id)}, signature {signature.index} ({signature.field_name})"


def show_time(value: datetime | None) -> str:
    """A time as clerks read it: ISO 8601 in Vietnam time."""
    return "-" if value is None else iso_vn(value)


def brief(text: str, limit: int = 160) -> str:
    """The first sentence of a validator's message, at most ``limit`` characters.

    Clerks read the finding's sentence; the full technical text stays in the report's
    signature details (``trust_detail``) and the logs.
    """
    first = text.strip().split("; ", 1)[0]
    for stop in (". ", ": "):
        if stop in first[:limit]:
            first = first.split(stop, 1)[0]
            break
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
