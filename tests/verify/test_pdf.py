"""The PDF examiner on the factory's signed and attacked PDFs (tests/pdfs), with the served PKI.

One test per fact: who signed and whether the bytes are intact, what the signature covers, what
changed after it, which algorithms, when it was signed and from which source, whether the
signer and the TSA chain to the pinned root and were unrevoked then, and the ETSI indication.
"""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import timedelta
from io import BytesIO

import pytest
from asn1crypto import cms
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer

from gateway.clock import FixedClock, SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.verify.facts import (
    AdESIndication,
    Coverage,
    Modification,
    PdfFacts,
    SignatureFacts,
    SigningTimeSource,
    TrustFacts,
    TrustOutcome,
)
from gateway.verify.pdf import Examiner
from gateway.verify.trust import ExamSettings, TrustStore
from tests.pdfs import SignedPdfs, cong_van, run
from tests.pdfs.signing import sign_with_local_tsa

PASSED, FAILED, INDETERMINATE = AdESIndication.TOTAL_PASSED, AdESIndication.TOTAL_FAILED, AdESIndication.INDETERMINATE


def _store(pki: DevPKI) -> TrustStore:
    return TrustStore.load(
        [pki.layout.anchor("root")], [fingerprint(pki.certificate("root"))], [pki.layout.intermediate("intermediate")]
    )


def _examine(
    pki: DevPKI,
    data: bytes,
    *,
    settings: ExamSettings | None = None,
    clock: FixedClock | None = None,
    executor: Executor | None = None,
) -> PdfFacts:
    async def go() -> PdfFacts:
        examiner = Examiner(_store(pki), clock or FixedClock(SystemClock().now()), executor=executor)
        try:
            return await examiner.examine_pdf(
                data, name="cong-van.pdf", content_id="cid:1", is_main=True, settings=settings or ExamSettings()
            )
        finally:
            await examiner.aclose()

    return run(go())


def _only(facts: PdfFacts) -> SignatureFacts:
    assert facts.readable, facts.detail
    (signature,) = facts.signatures
    return signature


def _subject(pki: DevPKI, label: str) -> str:
    return pki.certificate(label).subject.rfc4514_string()


# ---------------------------------------------------------------------- good documents
def test_the_main_document_person_then_organisation(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    data = signed_pdfs.main
    facts = _examine(dev_pki, data)
    assert (facts.name, facts.content_id, facts.is_main, facts.readable) == ("cong-van.pdf", "cid:1", True, True)
    assert facts.sha256 == hashlib.sha256(data).hexdigest().upper()
    person, org = facts.signatures
    assert (person.index, person.field_name, org.index, org.field_name) == (1, "NguoiKy", 2, "DauCoQuan")
    assert person.signer is not None
    assert person.signer.subject == _subject(dev_pki, "person")
    assert org.signer is not None
    assert org.signer.subject == _subject(dev_pki, "org")
    # The organisation signed after the person: a later signature is form filling for the first.
    assert (person.coverage, person.modification) == (Coverage.ENTIRE_REVISION, Modification.FORM_FILLING)
    assert (org.coverage, org.modification) == (Coverage.ENTIRE_FILE, Modification.NONE)
    root = fingerprint(dev_pki.certificate("root")).replace(":", "")
    for signature in (person, org):
        assert signature.subfilter == "/ETSI.CAdES.detached"
        assert signature.intact
        assert signature.crypto_valid
        assert (signature.digest_algorithm, signature.signature_mechanism) == ("sha256", "rsassa_pkcs1v15")
        stamp = signature.timestamp
        assert stamp is not None
        assert stamp.valid
        assert stamp.gen_time is not None
        assert stamp.tsa is not None
        assert stamp.tsa.subject == _subject(dev_pki, "tsa")
        assert stamp.trust is not None
        assert stamp.trust.outcome is TrustOutcome.TRUSTED
        assert (signature.signing_time, signature.signing_time_source) == (stamp.gen_time, SigningTimeSource.TIMESTAMP)
        assert signature.declared_signing_time is not None
        assert signature.declared_signing_time.utcoffset() == timedelta(0)
        assert abs(signature.declared_signing_time - stamp.gen_time) < timedelta(minutes=1)
        trust = signature.trust
        assert trust.outcome is TrustOutcome.TRUSTED
        assert trust.checked_at == signature.signing_time
        assert trust.anchor is not None
        assert trust.anchor.sha256 == root
        assert trust.revocation is not None
        assert (trust.revocation.source, trust.revocation.status) == ("ocsp", "good")
        assert (signature.indication, signature.subindication) == (PASSED, None)


def test_without_a_timestamp_the_signer_is_judged_at_verification_time(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    clock = FixedClock(SystemClock().now())
    for signature in _examine(dev_pki, signed_pdfs.main_without_timestamps, clock=clock).signatures:
        assert signature.timestamp is None
        assert (signature.signing_time, signature.signing_time_source) == (
            clock.at,
            SigningTimeSource.VERIFICATION_TIME,
        )
        assert signature.trust.checked_at == clock.at
        assert (signature.trust.outcome, signature.indication) == (TrustOutcome.TRUSTED, PASSED)


def test_revoked_after_the_timestamp_is_accepted(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    signature = _only(_examine(dev_pki, signed_pdfs.revoked_before_revocation))
    assert signature.signing_time_source is SigningTimeSource.TIMESTAMP
    assert signature.signing_time == dev_pki.revocation_time - timedelta(hours=1)
    assert signature.trust.outcome is TrustOutcome.TRUSTED, signature.trust.detail
    assert signature.trust.revocation is not None
    assert (signature.trust.revocation.status, signature.trust.revocation.revocation_time) == (
        "revoked",
        dev_pki.revocation_time,
    )
    assert signature.indication is PASSED


def test_revoked_before_the_timestamp_is_refused(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    signature = _only(_examine(dev_pki, signed_pdfs.revoked_after_revocation))
    assert signature.signing_time == dev_pki.revocation_time + timedelta(hours=1)
    assert signature.trust.outcome is TrustOutcome.REVOKED
    assert (signature.indication, signature.subindication) == (FAILED, "REVOKED")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("expired", (TrustOutcome.EXPIRED, INDETERMINATE, "EXPIRED")),
        ("not-yet-valid", (TrustOutcome.NOT_YET_VALID, FAILED, "NOT_YET_VALID")),
        ("impostor-leaf", (TrustOutcome.UNTRUSTED, INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND")),
    ],
)
def test_bad_signers(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs, label: str, expected: tuple[TrustOutcome, AdESIndication, str]
) -> None:
    signature = _only(_examine(dev_pki, signed_pdfs.signed_by(label)))
    assert signature.intact
    assert signature.crypto_valid
    assert signature.signing_time_source is SigningTimeSource.TIMESTAMP
    assert (signature.trust.outcome, signature.indication, signature.subindication) == expected


@pytest.mark.parametrize(
    ("artefact", "attribute", "expected"),
    [
        ("sha1_digest", "digest_algorithm", "sha1"),
        ("rsassa_pss", "signature_mechanism", "rsassa_pss"),
        ("pkcs7_subfilter", "subfilter", "/adbe.pkcs7.detached"),
        ("signed-by:ecdsa", "signature_mechanism", "ecdsa"),
        ("signed-by:ecdsa", "signer.key_bits", 256),
        ("signed-by:rsa1024", "signer.key_bits", 1024),
        ("signed-by:sha1", "signer.signature_hash", "sha1"),
        ("leaf_only_chain", "trust.path.length", 3),  # the intermediate came from the store
    ],
)
def test_algorithms_and_formats_verify_and_are_reported(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs, artefact: str, attribute: str, expected: object
) -> None:
    data = signed_pdfs.signed_by(artefact.split(":")[1]) if ":" in artefact else signed_pdfs.get(artefact)
    signature = _only(_examine(dev_pki, data))
    assert signature.intact
    assert signature.crypto_valid
    assert (signature.trust.outcome, signature.indication) == (TrustOutcome.TRUSTED, PASSED)
    value: object = signature
    for name in attribute.split("."):
        value = len(value) if name == "length" else getattr(value, name)  # type: ignore[arg-type]
    assert value == expected


# ---------------------------------------------------------------------- attacks
def test_bytes_changed_inside_the_signed_range(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    for signature in _examine(dev_pki, signed_pdfs.tampered).signatures:
        assert not signature.intact
        assert (signature.indication, signature.subindication) == (FAILED, "HASH_FAILURE")


@pytest.mark.parametrize("attack", ["shadow_hide", "shadow_replace", "shadow_hide_replace"])
def test_shadow_attacks_leave_intact_signatures_over_modified_documents(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs, attack: str
) -> None:
    facts = _examine(dev_pki, signed_pdfs.get(attack))
    assert len(facts.signatures) == 2
    for signature in facts.signatures:
        assert signature.intact
        assert signature.crypto_valid
        assert signature.coverage is Coverage.ENTIRE_REVISION
        assert signature.modification is Modification.OTHER
        assert signature.modification_detail


@pytest.mark.parametrize(
    ("artefact", "coverage"),
    [("uncovered_tail", Coverage.CONTIGUOUS_BLOCK), ("uncovered_gap", Coverage.UNCLEAR)],
)
def test_a_byte_range_that_misses_part_of_the_revision(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs, artefact: str, coverage: Coverage
) -> None:
    signature = _only(_examine(dev_pki, signed_pdfs.get(artefact)))
    assert signature.crypto_valid  # valid over what it claims to cover ...
    assert signature.coverage is coverage  # ... which is not its revision
    assert (signature.modification, signature.indication, signature.subindication) == (
        Modification.OTHER,
        FAILED,
        "FORMAT_FAILURE",
    )


def test_bytes_after_the_last_revision_leave_the_last_signature_short_of_the_file(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    # No revision was added, so nothing was *modified*; the coverage is what reveals it (G1.10a).
    org = _examine(dev_pki, signed_pdfs.trailing_bytes).signatures[1]
    assert (org.coverage, org.modification) == (Coverage.ENTIRE_REVISION, Modification.NONE)


@pytest.mark.parametrize(
    ("artefact", "person", "org"),
    [
        ("form_filled", Modification.FORM_FILLING, Modification.FORM_FILLING),
        ("lta_updates", Modification.FORM_FILLING, Modification.LTA_UPDATES),
        # pyHanko 0.38 has no diff rule that grades a revision ANNOTATIONS: a comment is OTHER,
        # so a policy allowing "annotations" still sees comments as unexplained changes.
        ("comment_added", Modification.OTHER, Modification.OTHER),
    ],
)
def test_later_revisions_are_graded_for_the_policy(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs, artefact: str, person: Modification, org: Modification
) -> None:
    facts = _examine(dev_pki, signed_pdfs.get(artefact))
    assert [s.modification for s in facts.signatures] == [person, org]  # the document time stamp is no signature
    # The indication covers the signature itself; which modifications are fine is policy.
    assert all(s.intact and s.indication is PASSED for s in facts.signatures)


def test_embedded_validation_data_is_used_when_the_responders_are_out_of_reach(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    # A deadline that has passed before the first request: nothing can be fetched.
    offline = ExamSettings(total_timeout=1e-6)
    for signature in _examine(dev_pki, signed_pdfs.lta_updates, settings=offline).signatures:
        assert signature.signing_time_source is SigningTimeSource.TIMESTAMP  # the TSA's status is in the DSS too
        assert signature.trust.outcome is TrustOutcome.TRUSTED, signature.trust.detail
        assert "embedded" in signature.trust.detail
    # The same signatures without a DSS cannot be judged offline.
    for signature in _examine(dev_pki, signed_pdfs.main, settings=offline).signatures:
        assert signature.trust.outcome is TrustOutcome.REVOCATION_UNAVAILABLE
        assert (signature.indication, signature.subindication) == (INDETERMINATE, "TRY_LATER")


# ---------------------------------------------------------------------- time stamps
@pytest.mark.parametrize(
    ("tsa", "outcome"), [("impostor-leaf", TrustOutcome.UNTRUSTED), ("person", TrustOutcome.BAD_USAGE)]
)
def test_a_timestamp_from_an_untrusted_tsa_proves_no_time(dev_pki: DevPKI, tsa: str, outcome: TrustOutcome) -> None:
    clock = FixedClock(SystemClock().now())
    signature = _only(
        _examine(dev_pki, run(sign_with_local_tsa(dev_pki, signer_label="person", tsa_label=tsa)), clock=clock)
    )
    stamp = signature.timestamp
    assert stamp is not None
    assert stamp.intact
    assert stamp.tsa is not None
    assert stamp.tsa.subject == _subject(dev_pki, tsa)
    assert stamp.trust is not None
    assert stamp.trust.outcome is outcome
    assert not stamp.valid
    assert stamp.detail
    assert (signature.signing_time, signature.signing_time_source) == (clock.at, SigningTimeSource.VERIFICATION_TIME)
    assert (signature.trust.outcome, signature.indication) == (TrustOutcome.TRUSTED, PASSED)


def test_a_timestamp_dated_in_the_future_proves_no_time(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())
    data = run(
        sign_with_local_tsa(dev_pki, signer_label="person", tsa_label="tsa", at=clock.at + timedelta(days=1))
    )  # the real TSA key
    signature = _only(_examine(dev_pki, data, clock=clock))
    assert signature.timestamp is not None
    assert not signature.timestamp.valid
    assert "future" in signature.timestamp.detail
    assert (signature.signing_time, signature.signing_time_source) == (clock.at, SigningTimeSource.VERIFICATION_TIME)


def test_a_timestamp_taken_from_another_signature_proves_no_time(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    # Move the person's signature time stamp into the organisation's unsigned attributes: the
    # token itself is genuine, but its imprint is over the other signature's value.
    data = bytearray(signed_pdfs.main)
    person, org = PdfFileReader(BytesIO(bytes(data))).embedded_signatures
    content = cms.ContentInfo.load(org.pkcs7_content)
    content["content"]["signer_infos"][0]["unsigned_attrs"] = person.signer_info["unsigned_attrs"]
    replacement = content.dump(force=True).hex().encode()
    start, end = org.byte_range[1] + 1, org.byte_range[2] - 1  # inside the <...> of /Contents
    assert len(replacement) <= end - start
    data[start:end] = replacement.ljust(end - start, b"0")
    forged = _examine(dev_pki, bytes(data)).signatures[1]
    assert forged.intact  # /Contents is outside the signed bytes, and the signed attributes hold
    assert forged.timestamp is not None
    assert not forged.timestamp.intact
    assert "imprint" in forged.timestamp.detail
    assert forged.signing_time_source is SigningTimeSource.VERIFICATION_TIME


# ---------------------------------------------------------------------- files that cannot be judged
def test_garbage_is_not_readable(dev_pki: DevPKI) -> None:
    facts = _examine(dev_pki, b"%PDF-1.7\nthis is not a PDF\n")
    assert not facts.readable
    assert facts.signatures == ()
    assert "not a PDF" in facts.detail
    assert facts.sha256 == hashlib.sha256(b"%PDF-1.7\nthis is not a PDF\n").hexdigest().upper()


def test_an_encrypted_pdf_is_not_readable(dev_pki: DevPKI) -> None:
    writer = copy_into_new_writer(PdfFileReader(BytesIO(cong_van())))
    writer.encrypt("owner", "user")  # type: ignore[no-untyped-call]
    output = BytesIO()
    writer.write(output)  # type: ignore[no-untyped-call]
    facts = _examine(dev_pki, output.getvalue())
    assert not facts.readable
    assert "encrypted" in facts.detail


def test_an_unsigned_pdf_has_no_signatures(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    facts = _examine(dev_pki, signed_pdfs.unsigned)
    assert facts.readable
    assert facts.signatures == ()


def test_a_signature_whose_cms_cannot_be_parsed_is_a_failed_signature(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    data = bytearray(signed_pdfs.signed_by("person"))
    found = re.search(rb"/Contents\s*<", data)
    assert found is not None
    data[found.end() : found.end() + 16] = b"0" * 16  # /Contents lies outside the /ByteRange
    signature = _only(_examine(dev_pki, bytes(data)))
    assert signature.signer is None
    assert not signature.intact
    assert (signature.indication, signature.subindication) == (FAILED, "FORMAT_FAILURE")
    assert "cannot be read" in signature.detail


# ---------------------------------------------------------------------- the examiner's other duties
def test_examine_certificate_judges_an_envelope_signer_now(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())

    async def go() -> TrustFacts:
        examiner = Examiner(_store(dev_pki), clock)
        try:
            return await examiner.examine_certificate(dev_pki.certificate("org"), settings=ExamSettings())
        finally:
            await examiner.aclose()

    facts = run(go())
    assert (facts.outcome, facts.checked_at) == (TrustOutcome.TRUSTED, clock.at)


def test_reading_can_run_in_a_process_pool(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    def summary(facts: PdfFacts) -> list[tuple[object, ...]]:
        return [(s.intact, s.coverage, s.modification, s.trust.outcome, s.indication) for s in facts.signatures]

    with ProcessPoolExecutor(max_workers=1) as pool:
        in_pool = _examine(dev_pki, signed_pdfs.shadow_replace, executor=pool)
    assert summary(in_pool) == summary(_examine(dev_pki, signed_pdfs.shadow_replace))
