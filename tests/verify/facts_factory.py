"""Hand-made facts for unit tests of the rules, the report and verify_package.

Each builder returns the facts of a *good* case; tests spoil one thing with ``dataclasses.replace``.
Integration tests get real facts from the pyHanko examiner instead.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.edxml.parse import ParseResult
from gateway.settings import IdentitySettings
from gateway.verify.directory import Directory
from gateway.verify.facts import (
    AdESIndication,
    CertificateFacts,
    Coverage,
    Modification,
    PdfFacts,
    RevocationFacts,
    SignatureFacts,
    SigningTimeSource,
    TimestampFacts,
    TrustFacts,
    TrustOutcome,
)
from gateway.verify.policy import Policy, SignerPolicy
from gateway.verify.rules import Context

__all__ = [
    "NOW",
    "ORG_OID",
    "PERSON_OID",
    "SIGNED_AT",
    "certificate",
    "context",
    "pdf",
    "signature",
    "signer_policy",
    "timestamp",
    "trusted",
]

NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
SIGNED_AT = NOW - timedelta(days=2)
ORG_OID = "2.25.1.1"
PERSON_OID = "2.25.1.2"
ROOT = "CN=Test RootCA chuyên dùng Chính phủ G2,O=Ban Cơ yếu Chính phủ (TEST),C=VN"


def certificate(cn: str = "Nguyễn Văn Test", *, oid: str = PERSON_OID, **changes: object) -> CertificateFacts:
    cert = CertificateFacts(
        subject=f"CN={cn},O=UBND tỉnh Test,C=VN",
        issuer="CN=Test CA phục vụ các cơ quan Nhà nước G2,C=VN",
        serial="0A1B",
        sha256=f"{abs(hash(cn)):064X}"[:64],
        not_before=NOW - timedelta(days=365),
        not_after=NOW + timedelta(days=3 * 365),
        key_algorithm="rsa",
        key_bits=2048,
        signature_hash="sha256",
        is_ca=False,
        key_usage=frozenset({"digital_signature", "non_repudiation"}),
        policy_oids=frozenset({oid}),
    )
    return replace(cert, **changes)  # type: ignore[arg-type]


def trusted(at: datetime = SIGNED_AT, **changes: object) -> TrustFacts:
    facts = TrustFacts(
        outcome=TrustOutcome.TRUSTED,
        checked_at=at,
        detail="path to a pinned anchor",
        anchor=certificate("Test RootCA chuyên dùng Chính phủ G2", oid="", is_ca=True, self_signed=True),
        revocation=RevocationFacts(source="ocsp", status="good", produced_at=NOW),
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def timestamp(at: datetime = SIGNED_AT, **changes: object) -> TimestampFacts:
    tsa = certificate(
        "Test Dịch vụ cấp dấu thời gian G2",
        oid="",
        key_usage=frozenset({"digital_signature"}),
        extended_key_usage=frozenset({"1.3.6.1.5.5.7.3.8"}),
    )
    stamp = TimestampFacts(gen_time=at, intact=True, tsa=tsa, trust=trusted(at))
    return replace(stamp, **changes)  # type: ignore[arg-type]


def signature(index: int = 1, *, signer: CertificateFacts | None = None, **changes: object) -> SignatureFacts:
    facts = SignatureFacts(
        index=index,
        field_name=f"Signature{index}",
        subfilter="/ETSI.CAdES.detached",
        signer=signer or certificate(),
        intact=True,
        crypto_valid=True,
        coverage=Coverage.ENTIRE_FILE,
        modification=Modification.NONE,
        modification_detail=None,
        digest_algorithm="sha256",
        signature_mechanism="rsassa_pkcs1v15",
        declared_signing_time=SIGNED_AT,
        timestamp=timestamp(),
        signing_time=SIGNED_AT,
        signing_time_source=SigningTimeSource.TIMESTAMP,
        trust=trusted(),
        indication=AdESIndication.TOTAL_PASSED,
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def pdf(*signatures: SignatureFacts, name: str = "cong-van.pdf", is_main: bool = True, **changes: object) -> PdfFacts:
    if not signatures:
        signatures = (
            # As pyHanko sees a Decree 30 document: the organisation's signature, added after the
            # person's, is "form filling" for the person's signature.
            signature(
                1,
                signer=certificate("Nguyễn Văn Test", oid=PERSON_OID),
                coverage=Coverage.ENTIRE_REVISION,
                modification=Modification.FORM_FILLING,
            ),
            signature(2, signer=certificate("UBND TỈNH TEST", oid=ORG_OID)),
        )
    facts = PdfFacts(
        name=name, content_id=name, sha256="00" * 32, readable=True, signatures=signatures, is_main=is_main
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def signer_policy() -> SignerPolicy:
    return SignerPolicy(organisation_policy_oids=(ORG_OID,), person_policy_oids=(PERSON_OID,))


def context(
    *pdfs: PdfFacts,
    parsed: ParseResult | None = None,
    policy: Policy | None = None,
    identity: IdentitySettings | None = None,
    directory: Directory | None = None,
    **changes: object,
) -> Context:
    built = Context(
        parsed=parsed if parsed is not None else ParseResult(package=None, findings=()),
        envelope=None,
        envelope_signer=None,
        envelope_trust=None,
        pdfs=pdfs or (pdf(),),
        other_attachments=(),
        identity=identity or IdentitySettings(),
        directory=directory or Directory(),
        policy=policy or Policy(signers=signer_policy()),
        verified_at=NOW,
    )
    return replace(built, **changes)  # type: ignore[arg-type]
