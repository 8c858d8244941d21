"""Each rule, fed hand-made facts: silent on the good case, exactly its code on the bad one.

These are unit tests of the judging logic. The same codes are produced end to end from real
signed PDFs, the test PKI and live OCSP/CRL/TSA in test_verify_package_pki.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from gateway.edxml.findings import Finding
from gateway.edxml.model import (
    Attachment,
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StatusPackage,
)
from gateway.edxml.parse import ParseResult
from gateway.settings import IdentitySettings
from gateway.verify.codes import ALL_KINDS
from gateway.verify.directory import Agency, Directory
from gateway.verify.facts import Coverage, Modification, RevocationFacts, TrustOutcome
from gateway.verify.policy import AlgorithmPolicy, Policy, SignerPolicy
from gateway.verify.rules import RULES, Context, run_rules
from gateway.verify.xmldsig import EnvelopeSignature, SignatureState
from tests.verify.facts_factory import (
    NOW,
    ORG_OID,
    PERSON_OID,
    SIGNED_AT,
    certificate,
    context,
    pdf,
    signature,
    signer_policy,
    timestamp,
    trusted,
)

OURS = "000.00.01.H53"


def codes(ctx: Context) -> list[str]:
    return [f.code for f in run_rules(ctx)]


def findings(ctx: Context, code: str) -> list[Finding]:
    return [f for f in run_rules(ctx) if f.code == code]


def document(to: str = OURS, sender: str = "000.00.00.G22") -> DocumentPackage:
    header = MessageHeader(
        from_=Organization(sender),
        to=(Organization(to),),
        code=DocumentCode("1", "VPCP"),
        promulgation=PromulgationInfo(date=date(2026, 11, 20)),
        document_type=DocumentType(2, None, "Công văn"),
        subject="V/v thử nghiệm",
        signer=SignerInfo(full_name="Nguyễn Văn Test"),
    )
    return DocumentPackage(header=header)


def test_the_good_case_raises_nothing() -> None:
    assert codes(context()) == []


def test_every_catalogued_code_has_a_rule() -> None:
    declared = set().union(*(rule.codes for rule in RULES))
    assert declared == set(ALL_KINDS)


# --------------------------------------------------------------------------- addressing


def test_misaddressed_when_none_of_our_ids_is_a_recipient() -> None:
    ctx = context(parsed=ParseResult(document(to="000.00.32.H53"), ()), identity=IdentitySettings(organ_ids=(OURS,)))
    (finding,) = findings(ctx, "misaddressed")
    assert OURS in finding.message_vi
    assert "000.00.32.H53" in finding.message_en
    assert codes(replace(ctx, parsed=ParseResult(document(to=OURS), ()))) == []


def test_status_about_another_agencys_document_is_misaddressed() -> None:
    status = StatusPackage(
        from_=Organization("000.00.32.H53"), response_for=ResponseFor(organ_id="000.00.99.H53"), status_code="01"
    )
    ctx = context(parsed=ParseResult(status, ()), identity=IdentitySettings(organ_ids=(OURS,)))
    assert "misaddressed" in codes(ctx)


def test_no_identity_configured_means_no_address_check() -> None:
    assert codes(context(parsed=ParseResult(document(to="000.00.32.H53"), ()))) == []


# --------------------------------------------------------------------------- envelope


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (SignatureState.ABSENT, "envelope-signature-absent"),
        (SignatureState.PLACEHOLDER, "envelope-signature-placeholder"),
        (SignatureState.INVALID, "envelope-signature-invalid"),
    ],
)
def test_envelope_states(state: SignatureState, code: str) -> None:
    assert codes(context(envelope=EnvelopeSignature(state, "because"))) == [code]


def test_valid_envelope_signer_goes_through_certificate_checks() -> None:
    ctx = context(
        envelope=EnvelopeSignature(SignatureState.VALID, "ok"),
        envelope_signer=certificate("UBND TỈNH TEST", oid=ORG_OID),
        envelope_trust=trusted(NOW, outcome=TrustOutcome.UNTRUSTED, detail="no path"),
    )
    (finding,) = findings(ctx, "cert-untrusted")
    assert finding.where == "envelope"


# --------------------------------------------------------------------------- PDFs


def test_non_pdf_attachment_is_noted() -> None:
    other = Attachment("1", "bang-ke.xlsx", "application/vnd.ms-excel", data=b"PK\x03\x04")
    assert codes(context(other_attachments=(other,))) == ["attachment-not-pdf"]


def test_unreadable_pdf() -> None:
    assert codes(context(pdf(readable=False, signatures=(), detail="not a PDF"))) == ["pdf-unreadable"]


def test_unsigned_pdf() -> None:
    assert codes(context(pdf(signatures=()))) == ["pdf-unsigned"]


@pytest.mark.parametrize(
    "spoil",
    [
        {"intact": False},
        {"crypto_valid": False},
        {"coverage": Coverage.CONTIGUOUS_BLOCK},
        {"coverage": Coverage.UNCLEAR},
    ],
)
def test_signature_integrity(spoil: dict[str, Any]) -> None:
    bad = signature(2, signer=certificate("UBND TỈNH TEST", oid=ORG_OID), **spoil)
    found = codes(context(pdf(signature(1), bad)))
    assert "pdf-signature-invalid" in found


@pytest.mark.parametrize("level", [Modification.FORM_FILLING, Modification.ANNOTATIONS, Modification.OTHER])
def test_modification_beyond_the_policy(level: Modification) -> None:
    """Changes after the last signature: nobody attests them."""
    org = signature(2, signer=certificate("UBND", oid=ORG_OID), modification=level, modification_detail="page 1")
    (finding,) = findings(
        context(pdf(signature(1, modification=Modification.FORM_FILLING), org)), "pdf-modified-after-signing"
    )
    assert "signature 2" in finding.where


def test_bytes_appended_after_the_last_revision_are_a_modification() -> None:
    """pyHanko reports coverage "entire revision" with no modification for trailing bytes (G1.10a)."""
    tail = signature(2, signer=certificate("UBND", oid=ORG_OID), coverage=Coverage.ENTIRE_REVISION)
    (finding,) = findings(context(pdf(signature(1), tail)), "pdf-modified-after-signing")
    assert "appended" in finding.message_en


def test_a_later_signature_counts_as_an_attested_change() -> None:
    person = signature(1, modification=Modification.FORM_FILLING, coverage=Coverage.ENTIRE_REVISION)
    org = signature(2, signer=certificate("UBND", oid=ORG_OID))
    assert codes(context(pdf(person, org))) == []
    # ...but not when the later signature does not hold,
    broken_org = replace(org, intact=False)
    assert "pdf-modified-after-signing" in codes(context(pdf(person, broken_org)))
    # ...and never for page content changed before the later signature.
    shadowed = replace(person, modification=Modification.OTHER)
    assert "pdf-modified-after-signing" in codes(context(pdf(shadowed, org)))


def test_modification_the_policy_allows() -> None:
    policy = Policy(signers=signer_policy(), allowed_modifications=frozenset(Modification))
    ctx = context(
        pdf(signature(1, modification=Modification.OTHER), signature(2, signer=certificate("UBND", oid=ORG_OID))),
        policy=policy,
    )
    assert "pdf-modified-after-signing" not in codes(ctx)


# --------------------------------------------------------------------------- certificates


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (TrustOutcome.EXPIRED, "cert-expired"),
        (TrustOutcome.NOT_YET_VALID, "cert-not-yet-valid"),
        (TrustOutcome.REVOKED, "cert-revoked"),
        (TrustOutcome.UNTRUSTED, "cert-untrusted"),
        (TrustOutcome.REVOCATION_UNAVAILABLE, "revocation-unavailable"),
    ],
)
def test_trust_outcomes(outcome: TrustOutcome, code: str) -> None:
    revocation = RevocationFacts("ocsp", "revoked", revocation_time=SIGNED_AT - timedelta(days=1))
    spoiled = signature(1, trust=trusted(outcome=outcome, revocation=revocation))
    ctx = context(pdf(spoiled, signature(2, signer=certificate("UBND", oid=ORG_OID))))
    assert codes(ctx) == [code]


def test_revoked_message_names_both_times() -> None:
    revoked_at = SIGNED_AT - timedelta(days=1)
    spoiled = signature(
        1,
        trust=trusted(
            outcome=TrustOutcome.REVOKED, revocation=RevocationFacts("ocsp", "revoked", revocation_time=revoked_at)
        ),
    )
    (finding,) = findings(context(pdf(spoiled, signature(2, signer=certificate("UBND", oid=ORG_OID)))), "cert-revoked")
    assert "Chứng thư số đã bị thu hồi" in finding.message_vi
    assert "+07:00" in finding.message_vi


def test_soft_fail_unknown_status_is_still_reported() -> None:
    unknown = trusted(revocation=RevocationFacts("none", "unknown"))
    ctx = context(pdf(signature(1, trust=unknown), signature(2, signer=certificate("UBND", oid=ORG_OID))))
    assert codes(ctx) == ["revocation-unavailable"]


def test_tsa_certificate_is_checked_too() -> None:
    bad_tsa = timestamp(trust=trusted(outcome=TrustOutcome.UNTRUSTED, detail="impostor"))
    ctx = context(pdf(signature(1, timestamp=bad_tsa), signature(2, signer=certificate("UBND", oid=ORG_OID))))
    found = run_rules(ctx)
    assert {f.code for f in found} == {"cert-untrusted", "timestamp-invalid"}
    assert any(f.where.endswith("timestamp") for f in found)


def test_key_usage_without_signing() -> None:
    cert = certificate(key_usage=frozenset({"key_encipherment"}))
    ctx = context(pdf(signature(1, signer=cert), signature(2, signer=certificate("UBND", oid=ORG_OID))))
    assert codes(ctx) == ["cert-key-usage"]


def test_absent_key_usage_restricts_nothing() -> None:
    ctx = context(
        pdf(
            signature(1, signer=certificate(key_usage=frozenset())),
            signature(2, signer=certificate("UBND", oid=ORG_OID)),
        )
    )
    assert codes(ctx) == []


def test_ca_certificate_as_signer() -> None:
    ctx = context(
        pdf(signature(1, signer=certificate(is_ca=True)), signature(2, signer=certificate("UBND", oid=ORG_OID)))
    )
    assert codes(ctx) == ["cert-is-ca"]


# --------------------------------------------------------------------------- algorithms


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        ({"digest_algorithm": "sha1"}, "SHA1 message digest"),
        ({"signer": certificate(key_bits=1024)}, "RSA key of 1024 bits"),
        ({"signer": certificate(key_algorithm="ec", key_bits=192)}, "ECDSA key of 192 bits"),
        ({"signer": certificate(signature_hash="sha1")}, "SHA1 in the signer certificate"),
        ({"digest_algorithm": "md5"}, "MD5 message digest"),
    ],
)
def test_weak_algorithms(spoil: dict[str, Any], expected: str) -> None:
    ctx = context(pdf(replace(signature(1), **spoil), signature(2, signer=certificate("UBND", oid=ORG_OID))))
    (finding,) = findings(ctx, "algorithm-weak")
    assert expected in finding.message_en


def test_ecdsa_p256_and_sha384_are_fine() -> None:
    good = signature(1, signer=certificate(key_algorithm="ec", key_bits=256), digest_algorithm="sha384")
    assert codes(context(pdf(good, signature(2, signer=certificate("UBND", oid=ORG_OID))))) == []


def test_sha1_before_the_cutoff_is_legacy_only_with_a_trusted_timestamp() -> None:
    old = SIGNED_AT.replace(year=2018)
    legacy = signature(1, digest_algorithm="sha1", timestamp=timestamp(old))
    policy = Policy(signers=signer_policy(), algorithms=AlgorithmPolicy(sha1_cutoff=date(2019, 1, 1)))
    ctx = context(pdf(legacy, signature(2, signer=certificate("UBND", oid=ORG_OID))), policy=policy)
    assert codes(ctx) == ["algorithm-legacy"]
    untrusted_stamp = replace(legacy, timestamp=timestamp(old, intact=False))
    ctx = context(pdf(untrusted_stamp, signature(2, signer=certificate("UBND", oid=ORG_OID))), policy=policy)
    assert "algorithm-weak" in codes(ctx)


def test_sha1_envelope_is_weak() -> None:
    envelope = EnvelopeSignature(
        SignatureState.VALID,
        "ok",
        signature_method="http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        digest_method="http://www.w3.org/2000/09/xmldsig#sha1",
    )
    ctx = context(envelope=envelope, envelope_signer=certificate("UBND", oid=ORG_OID), envelope_trust=trusted(NOW))
    (finding,) = findings(ctx, "algorithm-weak")
    assert finding.where == "envelope"


# --------------------------------------------------------------------------- timestamps


def test_timestamp_absent() -> None:
    stamped_later = signature(1, timestamp=None)
    assert codes(context(pdf(stamped_later, signature(2, signer=certificate("UBND", oid=ORG_OID))))) == [
        "timestamp-absent"
    ]


def test_timestamp_not_intact() -> None:
    broken = signature(1, timestamp=timestamp(intact=False))
    assert codes(context(pdf(broken, signature(2, signer=certificate("UBND", oid=ORG_OID))))) == ["timestamp-invalid"]


# --------------------------------------------------------------------------- Decree 30 Art. 5


def test_main_document_needs_person_and_organisation() -> None:
    only_person = pdf(signature(1))
    assert codes(context(only_person)) == ["org-signature-missing"]
    only_org = pdf(signature(1, signer=certificate("UBND", oid=ORG_OID)))
    assert codes(context(only_org)) == ["person-signature-missing"]


def test_separate_attachment_needs_only_the_organisation() -> None:
    appendix = pdf(signature(1, signer=certificate("UBND", oid=ORG_OID)), name="phu-luc.pdf", is_main=False)
    assert codes(context(pdf(), appendix)) == []
    person_only = pdf(signature(1), name="phu-luc.pdf", is_main=False)
    assert codes(context(pdf(), person_only)) == ["org-signature-missing"]


def test_a_broken_signature_does_not_count_as_present() -> None:
    broken_org = signature(2, signer=certificate("UBND", oid=ORG_OID), intact=False)
    assert set(codes(context(pdf(signature(1), broken_org)))) == {"pdf-signature-invalid", "org-signature-missing"}


def test_without_recognition_rules_the_signing_order_decides() -> None:
    policy = Policy(signers=SignerPolicy())
    two = pdf(signature(1, signer=certificate("A", oid="")), signature(2, signer=certificate("B", oid="")))
    assert codes(context(two, policy=policy)) == []
    same_key_twice = pdf(signature(1, signer=certificate("A", oid="")), signature(2, signer=certificate("A", oid="")))
    assert codes(context(same_key_twice, policy=policy)) == ["org-signature-missing"]


def test_without_recognition_rules_an_attachment_is_signed_by_the_organisation() -> None:
    policy = Policy(signers=SignerPolicy())
    appendix = pdf(signature(1, signer=certificate("B", oid="")), name="phu-luc.pdf", is_main=False)
    assert codes(context(pdf(), appendix, policy=policy)) == []


def test_organisation_recognised_by_subject_pattern() -> None:
    policy = Policy(signers=SignerPolicy(organisation_subject_patterns=("^CN=UBND ",)))
    doc = pdf(
        signature(1, signer=certificate("Nguyễn Văn Test", oid="")),
        signature(2, signer=certificate("UBND TỈNH TEST", oid="")),
    )
    assert codes(context(doc, policy=policy)) == []


# --------------------------------------------------------------------------- sender identity


def test_organisation_signature_from_another_agency() -> None:
    org = certificate("UBND TỈNH KHÁC", oid=ORG_OID)
    directory = Directory({"000.00.00.G22": Agency("000.00.00.G22", certificates=("AB" * 32,))})
    ctx = context(pdf(signature(1), signature(2, signer=org)), parsed=ParseResult(document(), ()), directory=directory)
    (finding,) = findings(ctx, "sender-mismatch")
    assert "000.00.00.G22" in finding.message_en
    owned = Directory({"000.00.00.G22": Agency("000.00.00.G22", certificates=(org.sha256,))})
    assert codes(replace(ctx, directory=owned)) == []


def test_unknown_sender_certificates_are_not_judged() -> None:
    directory = Directory({"000.00.00.G22": Agency("000.00.00.G22", mail=("vt@x.vn",))})
    ctx = context(parsed=ParseResult(document(), ()), directory=directory)
    assert codes(ctx) == []


def test_format_findings_pass_through() -> None:
    from gateway.edxml.findings import MISSING_FIELD

    missing = MISSING_FIELD("MessageHeader/Subject", field="MessageHeader/Subject")
    assert codes(context(parsed=ParseResult(document(), (missing,)))) == ["edxml-missing-field"]


def test_person_oid_constant_is_distinct() -> None:
    assert PERSON_OID != ORG_OID


def test_brief_keeps_the_first_sentence_only() -> None:
    from gateway.verify.rules.base import brief

    assert brief("no usable answer for CN=x: OCSP (now): failed; CRL (now): failed") == "no usable answer for CN=x"
    assert brief("x" * 300).endswith("…")
    assert len(brief("x" * 300)) == 160
