"""What the examiners established about a package, before anybody judges it.

Verification runs in two steps (HOUSE.md rules 5 and 10):

1. *examining*: the PDF examiner (pyHanko) and the trust checker (pyhanko-certvalidator)
   establish facts — who signed, when (and from which source), whether the bytes are intact,
   what changed after signing, whether each certificate chains to a pinned anchor and was
   unrevoked at the signing time;
2. *judging*: the rules in ``gateway.verify.rules`` turn facts into findings with stable codes,
   and the admin's policy turns codes into actions.

This module is the contract between the two. It holds plain values only: no pyHanko,
asn1crypto or lxml objects, so rules are pure functions that unit tests can feed directly.
Times are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "AdESIndication",
    "CertificateFacts",
    "Coverage",
    "Modification",
    "PdfFacts",
    "RevocationFacts",
    "SignatureFacts",
    "SigningTimeSource",
    "TimestampFacts",
    "TrustFacts",
    "TrustOutcome",
]


class AdESIndication(StrEnum):
    """ETSI EN 319 102-1 main indication."""

    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


@dataclass(frozen=True)
class CertificateFacts:
    """One X.509 certificate, as the rules need to see it."""

    subject: str
    """RFC 4514 string."""
    issuer: str
    serial: str
    """Hex, upper case."""
    sha256: str
    """Hex fingerprint of the DER encoding, upper case."""
    not_before: datetime
    not_after: datetime
    key_algorithm: str
    """``rsa``, ``ec``, ``ed25519``, ``dsa``..."""
    key_bits: int
    signature_hash: str
    """Hash of the issuer's signature on this certificate (``sha256``, ``sha1``...)."""
    is_ca: bool
    key_usage: frozenset[str] = frozenset()
    """asn1crypto names: ``digital_signature``, ``non_repudiation``, ``key_cert_sign``..."""
    extended_key_usage: frozenset[str] = frozenset()
    """Dotted OIDs (``1.3.6.1.5.5.7.3.8`` is time stamping)."""
    policy_oids: frozenset[str] = frozenset()
    self_signed: bool = False


class TrustOutcome(StrEnum):
    """How path validation of one certificate at one time ended."""

    TRUSTED = "trusted"
    """A path to a pinned anchor, every link valid and unrevoked at the time."""
    UNTRUSTED = "untrusted"
    """No path to a pinned anchor (or a link's signature does not verify)."""
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    REVOKED = "revoked"
    """Some link was revoked at or before the time."""
    REVOCATION_UNAVAILABLE = "revocation-unavailable"
    """No usable OCSP or CRL answer for some link (unreachable, unknown, stale)."""
    BAD_USAGE = "bad-usage"
    """The certificate's key usage / extended key usage does not allow this use."""


@dataclass(frozen=True)
class RevocationFacts:
    """The revocation answer used for the end-entity certificate.

    When the outcome is REVOKED or REVOCATION_UNAVAILABLE because of an issuing CA, it is that
    CA's answer instead (``TrustFacts.detail`` names the certificate).
    """

    source: str
    """``ocsp``, ``crl``, or ``none`` when no answer was used (checking off, or no usable answer)."""
    status: str
    """``good``, ``revoked`` or ``unknown``. ``revoked`` with a TRUSTED outcome means revoked
    *after* the time judged at (``revocation_time`` > ``TrustFacts.checked_at``): still valid."""
    produced_at: datetime | None = None
    revocation_time: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class TrustFacts:
    """Path validation of one certificate at one point in time."""

    outcome: TrustOutcome
    checked_at: datetime
    """The time the certificate was judged at (the signing time, or now)."""
    detail: str
    """One English sentence from the validator, for logs and the report."""
    anchor: CertificateFacts | None = None
    """The pinned anchor the path reached."""
    path: tuple[CertificateFacts, ...] = ()
    """Anchor first, end entity last; empty when no path was found."""
    revocation: RevocationFacts | None = None


class SigningTimeSource(StrEnum):
    """Where the signing time used for judgement came from (checklist A3)."""

    TIMESTAMP = "timestamp"
    """genTime of a valid, trusted RFC 3161 signature timestamp."""
    VERIFICATION_TIME = "verification-time"
    """No trustworthy timestamp: judged conservatively at verification time."""


@dataclass(frozen=True)
class TimestampFacts:
    """The RFC 3161 signature-timestamp token of a signature (unsigned attribute)."""

    gen_time: datetime | None
    intact: bool
    """Message imprint matches the signature value and the token's own signature verifies."""
    tsa: CertificateFacts | None
    trust: TrustFacts | None
    """Path validation of the TSA certificate (EKU time stamping checked)."""
    detail: str = ""

    @property
    def valid(self) -> bool:
        """Usable as proof of time: intact and issued by a trusted TSA."""
        return self.intact and self.trust is not None and self.trust.outcome is TrustOutcome.TRUSTED


class Coverage(StrEnum):
    """What the signature's /ByteRange covers (pyHanko's SignatureCoverageLevel)."""

    ENTIRE_FILE = "entire-file"
    ENTIRE_REVISION = "entire-revision"
    """The file continues after the signed revision (incremental updates follow)."""
    CONTIGUOUS_BLOCK = "contiguous-block"
    """A block from the start that does not end at a revision boundary: malformed."""
    UNCLEAR = "unclear"


class Modification(StrEnum):
    """What changed after a signature (pyHanko's ModificationLevel), least to most."""

    NONE = "none"
    LTA_UPDATES = "lta-updates"
    """Only validation data (DSS) and document timestamps were added."""
    FORM_FILLING = "form-filling"
    """Form fields were filled or later signatures added."""
    ANNOTATIONS = "annotations"
    """Comments or other annotations were added."""
    OTHER = "other"
    """Anything else, including page content: the shadow-attack family."""


@dataclass(frozen=True)
class SignatureFacts:
    """One signature embedded in a PDF."""

    index: int
    """1-based, in the order of the signatures in the file."""
    field_name: str
    subfilter: str
    """``/ETSI.CAdES.detached``, ``/adbe.pkcs7.detached``..."""
    signer: CertificateFacts | None
    """``None`` when the signer's certificate is not in the signature."""
    intact: bool
    """The digest over /ByteRange matches the signed digest."""
    crypto_valid: bool
    """The signature value verifies with the signer's key."""
    coverage: Coverage
    modification: Modification
    """The worst change made after this signature."""
    modification_detail: str | None
    digest_algorithm: str
    """Message digest: ``sha256``, ``sha1``..."""
    signature_mechanism: str
    """``rsassa_pkcs1v15``, ``rsassa_pss``, ``ecdsa``..."""
    declared_signing_time: datetime | None
    """The CMS signingTime attribute: self-declared, shown to people, never trusted."""
    timestamp: TimestampFacts | None
    signing_time: datetime
    """The time the signer's certificate was judged at."""
    signing_time_source: SigningTimeSource
    trust: TrustFacts
    """Path validation of the signer's certificate at ``signing_time``."""
    indication: AdESIndication
    subindication: str | None = None
    """ETSI sub-indication name (``REVOKED_NO_POE``...), ``None`` when passed."""
    detail: str = ""


@dataclass(frozen=True)
class PdfFacts:
    """One PDF attachment and its signatures."""

    name: str
    content_id: str
    sha256: str
    readable: bool
    """``False`` when the file is not a PDF pyHanko can read (``detail`` says why)."""
    signatures: tuple[SignatureFacts, ...] = ()
    detail: str = ""
    is_main: bool = False
    """The main document of the package (the first PDF); others are separate attachments."""
