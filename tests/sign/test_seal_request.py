"""``SealRequest``: what a document is sealed as, validated and normalised on construction."""

from __future__ import annotations

import unicodedata

import pytest

from gateway.sign.pdfseal import COPY_TYPES, SealKind, SealRequest
from gateway.sign.refusals import REFUSALS, SealingDeferred, SealingRefused
from gateway.sign.tsa import TsaUnavailable

ORG = "Ủy ban nhân dân tỉnh Test"


def test_a_main_document_needs_only_the_organisation() -> None:
    request = SealRequest(SealKind.MAIN, ORG)
    assert (request.kind, request.organisation_name, request.document_number, request.copy_type) == (
        SealKind.MAIN,
        ORG,
        None,
        None,
    )


def test_the_kind_may_be_given_as_text() -> None:
    assert SealRequest("attachment", ORG, document_number="123/UBND-VP").kind is SealKind.ATTACHMENT  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'seal' is not a valid SealKind"):
        SealRequest("seal", ORG)  # type: ignore[arg-type]


def test_an_attachment_needs_the_main_documents_number() -> None:
    assert SealRequest(SealKind.ATTACHMENT, ORG, document_number=" 123/UBND-VP ").document_number == "123/UBND-VP"
    with pytest.raises(ValueError, match="document_number is required"):
        SealRequest(SealKind.ATTACHMENT, ORG)
    with pytest.raises(ValueError, match="document_number is empty"):
        SealRequest(SealKind.ATTACHMENT, ORG, document_number="  ")


@pytest.mark.parametrize(
    ("given", "expected"), [("SAO Y", "SAO Y"), ("sao lục", "SAO LỤC"), ("Trích  sao", "TRÍCH SAO")]
)
def test_a_copy_names_one_of_the_three_copy_types(given: str, expected: str) -> None:
    assert SealRequest(SealKind.COPY, ORG, copy_type=given).copy_type == expected
    assert expected in COPY_TYPES


def test_a_copy_refuses_other_types_and_needs_one() -> None:
    with pytest.raises(ValueError, match="not one of SAO Y, SAO LỤC, TRÍCH SAO"):
        SealRequest(SealKind.COPY, ORG, copy_type="BẢN CHÍNH")
    with pytest.raises(ValueError, match="copy_type is required"):
        SealRequest(SealKind.COPY, ORG)


def test_a_copy_type_belongs_to_copies_only() -> None:
    with pytest.raises(ValueError, match="copy_type is only for copies"):
        SealRequest(SealKind.MAIN, ORG, copy_type="SAO Y")


def test_texts_are_nfc_single_lines() -> None:
    decomposed = unicodedata.normalize("NFD", ORG)
    assert decomposed != ORG
    assert SealRequest(SealKind.MAIN, decomposed).organisation_name == ORG  # the font maps precomposed letters
    assert SealRequest(SealKind.MAIN, "Ủy ban\n nhân dân").organisation_name == "Ủy ban nhân dân"
    with pytest.raises(ValueError, match="organisation_name is empty"):
        SealRequest(SealKind.MAIN, " ")
    with pytest.raises(ValueError, match="not a plausible single line"):
        SealRequest(SealKind.MAIN, "UBND\x00")
    with pytest.raises(ValueError, match="not a plausible single line"):
        SealRequest(SealKind.MAIN, "U" * 201)


def test_refusals_carry_a_stable_code_and_both_languages() -> None:
    refused = SealingRefused("person-signature-missing", "the PDF has no signature")
    assert refused.code == "person-signature-missing"
    assert str(refused).endswith(": the PDF has no signature")
    assert refused.vietnamese.startswith("Văn bản chưa có chữ ký số")
    assert refused.smtp_reply.startswith("554")  # permanent: refuse
    deferred = TsaUnavailable("http://tsa.example/", 3, "connection refused")
    assert isinstance(deferred, SealingDeferred)
    assert deferred.code == "tsa-unavailable"
    assert deferred.smtp_reply.startswith("451")  # transient: the document waits
    with pytest.raises(KeyError):
        SealingRefused("no-such-code")
    assert all(english and vietnamese for english, vietnamese in REFUSALS.values())
