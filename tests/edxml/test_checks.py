"""Semantic checks: one test (or parametrised case) per rule, each failing if its rule goes.

Packages are built directly from the model: a clean document and a clean status package,
then one field changed at a time. Every assertion names the code *and* the ``where`` path,
so a rule that fires at the wrong place fails too.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from gateway.edxml import findings
from gateway.edxml.checks import LENGTH_LIMITS, check_package, default_document_id
from gateway.edxml.findings import Finding, Severity
from gateway.edxml.model import (
    Business,
    BusinessDocumentInfo,
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StatusPackage,
    TraceHeader,
    TraceHeaderList,
)

TODAY = date(2025, 3, 14)

HEADER = MessageHeader(
    from_=Organization("000.00.01.H53", organ_name="Văn phòng UBND tỉnh Tây Ninh", email="vp@tayninh.gov.vn"),
    to=(Organization("000.00.32.H53", organ_name="UBND huyện Châu Thành"), Organization("000.01.32.H53")),
    code=DocumentCode("123", "UBND-VP"),
    promulgation=PromulgationInfo("Tây Ninh", date(2025, 3, 14)),
    document_type=DocumentType(2, 18, "Công văn"),
    subject="V/v triển khai văn bản điện tử",
    signer=SignerInfo("KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Nguyễn Văn An"),
    other_info=OtherInfo(priority=1, appendixes=("Phụ lục I",)),
    steering_type=0,
)
TRACE = TraceHeaderList(
    traces=(TraceHeader("000.00.01.H53", datetime(2025, 3, 14, 2, 0, tzinfo=UTC)),),
    business=Business(doc_type=0, paper=0),
)
DOC = DocumentPackage(HEADER, TRACE)
STATUS = StatusPackage(
    from_=Organization("000.00.32.H53"),
    response_for=ResponseFor("000.00.01.H53", "123/UBND-VP", date(2025, 3, 14), "000.00.01.H53,2025/03/14,123/UBND-VP"),
    status_code="03",
    timestamp=datetime(2025, 3, 14, 3, 0, tzinfo=UTC),
)


def doc(trace: TraceHeaderList | None = TRACE, **header: Any) -> DocumentPackage:
    return DocumentPackage(replace(HEADER, **header), trace)


def business(**changes: Any) -> DocumentPackage:
    assert TRACE.business is not None
    return DocumentPackage(HEADER, replace(TRACE, business=replace(TRACE.business, **changes)))


def codes_at(found: tuple[Finding, ...]) -> set[tuple[str, str]]:
    return {(f.code, f.where) for f in found}


def test_clean_packages_have_no_findings() -> None:
    assert check_package(DOC, today=TODAY) == ()
    assert check_package(STATUS, today=TODAY) == ()
    assert check_package(DocumentPackage(HEADER), today=TODAY) == ()


# ------------------------------------------------------------------ required fields

MISSING_DOC: list[tuple[Callable[[], DocumentPackage], str]] = [
    (lambda: doc(from_=Organization("")), "MessageHeader/From/OrganId"),
    (lambda: doc(to=()), "MessageHeader/To"),
    (lambda: doc(to=(Organization("000.00.32.H53"), Organization(""))), "MessageHeader/To[2]/OrganId"),
    (lambda: doc(code=DocumentCode("", "UBND-VP")), "MessageHeader/Code/CodeNumber"),
    (lambda: doc(code=DocumentCode("123", "")), "MessageHeader/Code/CodeNotation"),
    (
        lambda: doc(promulgation=PromulgationInfo("Tây Ninh")),
        "MessageHeader/PromulgationInfo/PromulgationDate",
    ),
    (lambda: doc(document_type=DocumentType(type_detail=18)), "MessageHeader/DocumentType"),
    (lambda: doc(subject=""), "MessageHeader/Subject"),
    (lambda: doc(signer=SignerInfo("KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH")), "MessageHeader/SignerInfo/FullName"),
    (
        lambda: doc(trace=TraceHeaderList(traces=(TraceHeader("000.00.01.H53"), TraceHeader("")))),
        "TraceHeaderList/TraceHeader[2]/OrganId",
    ),
    (
        lambda: business(doc_type=2, document_info=BusinessDocumentInfo(receivers=(Receiver(""),))),
        "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver[1]/OrganId",
    ),
    (
        lambda: business(doc_type=3, replacements=(ReplacementInfo("", ("000.00.32.H53",)),)),
        "TraceHeaderList/Bussiness/ReplacementInfoList/ReplacementInfo[1]/DocumentId",
    ),
]


@pytest.mark.parametrize(("build", "where"), MISSING_DOC, ids=[w for _, w in MISSING_DOC])
def test_missing_required_document_field(build: Callable[[], DocumentPackage], where: str) -> None:
    found = check_package(build(), today=TODAY)
    assert codes_at(found) == {("edxml-missing-field", where)}
    assert found[0].severity is Severity.ERROR
    assert where in found[0].message_en
    assert where in found[0].message_vi


def test_document_type_with_only_a_name_or_only_a_number_is_enough() -> None:
    assert check_package(doc(document_type=DocumentType(type_name="Công văn"))) == ()
    assert check_package(doc(document_type=DocumentType(type=2))) == ()


MISSING_STATUS: list[tuple[StatusPackage, str]] = [
    (replace(STATUS, from_=Organization("")), "MessageHeader/From/OrganId"),
    (replace(STATUS, response_for=ResponseFor("000.00.01.H53")), "MessageHeader/ResponseFor"),
    (replace(STATUS, response_for=ResponseFor(code="123/UBND-VP")), "MessageHeader/ResponseFor"),
    (replace(STATUS, status_code=""), "MessageHeader/StatusCode"),
    (replace(STATUS, timestamp=None), "MessageHeader/Timestamp"),
]


@pytest.mark.parametrize(("package", "where"), MISSING_STATUS)
def test_missing_required_status_field(package: StatusPackage, where: str) -> None:
    assert codes_at(check_package(package)) == {("edxml-missing-field", where)}


def test_status_response_for_by_code_and_organ_id_is_enough() -> None:
    package = replace(STATUS, response_for=ResponseFor("000.00.01.H53", "123/UBND-VP"))
    assert check_package(package) == ()


# ------------------------------------------------------------------ organisation ids

BAD_IDS: list[tuple[Callable[[str], DocumentPackage | StatusPackage], str]] = [
    (lambda v: doc(from_=Organization(v)), "MessageHeader/From/OrganId"),
    (lambda v: doc(to=(Organization("000.00.32.H53"), Organization(v))), "MessageHeader/To[2]/OrganId"),
    (lambda v: doc(response_for=(ResponseFor(v, "1/X"),)), "MessageHeader/ResponseFor[1]/OrganId"),
    (
        lambda v: doc(trace=TraceHeaderList(traces=(TraceHeader(v),))),
        "TraceHeaderList/TraceHeader[1]/OrganId",
    ),
    (
        lambda v: business(doc_type=2, document_info=BusinessDocumentInfo(receivers=(Receiver(v, 1),))),
        "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver[1]/OrganId",
    ),
    (
        lambda v: business(doc_type=3, replacements=(ReplacementInfo("x", ("000.00.32.H53", v)),)),
        "TraceHeaderList/Bussiness/ReplacementInfoList/ReplacementInfo[1]/OrganIdList/OrganId[2]",
    ),
    (lambda v: replace(STATUS, from_=Organization(v)), "MessageHeader/From/OrganId"),
    (
        lambda v: replace(STATUS, response_for=ResponseFor(v, document_id="d")),
        "MessageHeader/ResponseFor/OrganId",
    ),
]


@pytest.mark.parametrize(("build", "where"), BAD_IDS, ids=[w for _, w in BAD_IDS])
def test_bad_organ_id_everywhere(build: Callable[[str], DocumentPackage | StatusPackage], where: str) -> None:
    found = check_package(build("000.1137.H53"))
    assert codes_at(found) == {("edxml-bad-org-id", where)}
    assert found[0].severity is Severity.ERROR
    assert "000.1137.H53" in found[0].message_vi
    # Format B, system ids and test ids are accepted (the test id is noted, not refused).
    assert check_package(build("G14.27")) == ()
    assert check_package(build("00.53.W00")) == ()
    assert codes_at(check_package(build("vxp.saas.03"))) == {("edxml-test-org-id", where)}
    assert check_package(build("vxp.saas.03"))[0].severity is Severity.INFO


# ------------------------------------------------------------------ value sets

BAD_VALUES: list[tuple[Callable[[int], DocumentPackage], str, tuple[int, ...], tuple[int, ...]]] = [
    (lambda v: doc(other_info=OtherInfo(priority=v)), "MessageHeader/OtherInfo/Priority", (0, 4), (-1, 5)),
    (lambda v: business(doc_type=v), "TraceHeaderList/Bussiness/BussinessDocType", (0,), (-1, 4)),
    (lambda v: doc(steering_type=v), "MessageHeader/SteeringType", (0, 1, 2), (-1, 3)),
    (lambda v: business(paper=v), "TraceHeaderList/Bussiness/Paper", (0, 1), (-1, 2)),
    (
        lambda v: business(doc_type=2, document_info=BusinessDocumentInfo(receivers=(Receiver("000.00.32.H53", v),))),
        "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver[1]/ReceiverType",
        (0, 1),
        (-1, 2),
    ),
    (lambda v: doc(other_info=OtherInfo(page_amount=v)), "MessageHeader/OtherInfo/PageAmount", (0, 7), (-1,)),
    (
        lambda v: doc(other_info=OtherInfo(promulgation_amount=v)),
        "MessageHeader/OtherInfo/PromulgationAmount",
        (0, 30),
        (-2,),
    ),
]


@pytest.mark.parametrize(("build", "where", "good", "bad"), BAD_VALUES, ids=[c[1] for c in BAD_VALUES])
def test_value_sets(
    build: Callable[[int], DocumentPackage], where: str, good: tuple[int, ...], bad: tuple[int, ...]
) -> None:
    for value in good:
        assert check_package(build(value)) == (), value
    for value in bad:
        found = check_package(build(value))
        assert codes_at(found) == {("edxml-bad-value", where)}, value
        assert found[0].severity is Severity.ERROR
        assert f'"{value}"' in found[0].message_en


def test_status_code_set() -> None:
    for code in ("01", "02", "03", "04", "05", "06", "13", "15", "16", "14"):
        assert check_package(replace(STATUS, status_code=code)) == (), code
    for code in ("00", "07", "1", "100", "done"):
        found = check_package(replace(STATUS, status_code=code))
        assert codes_at(found) == {("edxml-bad-value", "MessageHeader/StatusCode")}, code


def test_document_type_outside_one_two_is_only_a_warning() -> None:
    assert check_package(doc(document_type=DocumentType(1, 0, "Thông tư"))) == ()
    found = check_package(doc(document_type=DocumentType(18, 0, "Công văn")))
    assert codes_at(found) == {("edxml-unusual-value", "MessageHeader/DocumentType/Type")}
    assert found[0].severity is Severity.WARNING


# ------------------------------------------------------------------ lengths (§1.9)


def _org(**fields: str) -> DocumentPackage:
    return doc(to=(replace(HEADER.to[0], **fields),))


LENGTHS: list[tuple[Callable[[str], DocumentPackage], str, str]] = [
    (lambda t: doc(subject=t), "MessageHeader/Subject", "Subject"),
    (lambda t: doc(content=t), "MessageHeader/Content", "Content"),
    (lambda t: doc(to_places=("UBND tỉnh", t)), "MessageHeader/ToPlaces/Place[2]", "ToPlaces/Place"),
    (
        lambda t: doc(other_info=OtherInfo(appendixes=(t,))),
        "MessageHeader/OtherInfo/Appendixes/Appendix[1]",
        "Appendix",
    ),
    (lambda t: _org(organ_name=t), "MessageHeader/To[1]/OrganName", "OrganName"),
    (lambda t: _org(organ_add=t), "MessageHeader/To[1]/OrganAdd", "OrganAdd"),
    (lambda t: doc(from_=replace(HEADER.from_, email=t)), "MessageHeader/From/Email", "Email"),
    (lambda t: _org(telephone=t), "MessageHeader/To[1]/Telephone", "Telephone"),
    (lambda t: _org(fax=t), "MessageHeader/To[1]/Fax", "Fax"),
    (lambda t: doc(code=DocumentCode(t, "UBND-VP")), "MessageHeader/Code/CodeNumber", "CodeNumber"),
    (lambda t: doc(code=DocumentCode("1", t)), "MessageHeader/Code/CodeNotation", "CodeNotation"),
    (
        lambda t: doc(promulgation=PromulgationInfo(t, TODAY)),
        "MessageHeader/PromulgationInfo/Place",
        "PromulgationInfo/Place",
    ),
    (lambda t: doc(document_type=DocumentType(2, 0, t)), "MessageHeader/DocumentType/TypeName", "TypeName"),
    (
        lambda t: doc(signer=SignerInfo(competence=t, full_name="A")),
        "MessageHeader/SignerInfo/Competence",
        "Competence",
    ),
    (
        lambda t: doc(signer=SignerInfo(position=t, full_name="A")),
        "MessageHeader/SignerInfo/Position",
        "Position",
    ),
    (lambda t: doc(signer=SignerInfo(full_name=t)), "MessageHeader/SignerInfo/FullName", "FullName"),
    (
        lambda t: doc(other_info=OtherInfo(sphere_of_promulgation=t)),
        "MessageHeader/OtherInfo/SphereOfPromulgation",
        "SphereOfPromulgation",
    ),
    (
        lambda t: doc(other_info=OtherInfo(typer_notation=t)),
        "MessageHeader/OtherInfo/TyperNotation",
        "TyperNotation",
    ),
]


def test_length_table_covers_every_limit_of_the_spec() -> None:
    assert {key for _, _, key in LENGTHS} == set(LENGTH_LIMITS)
    assert LENGTH_LIMITS["Subject"] == 500
    assert LENGTH_LIMITS["CodeNumber"] == 11
    assert LENGTH_LIMITS["FullName"] == 50
    assert LENGTH_LIMITS["TyperNotation"] == 10


@pytest.mark.parametrize(("build", "where", "key"), LENGTHS, ids=[c[1] for c in LENGTHS])
def test_length_limit_counts_vietnamese_characters(
    build: Callable[[str], DocumentPackage], where: str, key: str
) -> None:
    limit = LENGTH_LIMITS[key]
    at_limit = "ệ" * limit  # 3 bytes each in UTF-8: a byte count would fire here
    assert len(at_limit.encode()) > limit
    assert check_package(build(at_limit)) == ()
    found = check_package(build(at_limit + "ư"))
    assert codes_at(found) == {("edxml-field-too-long", where)}
    assert found[0].severity is Severity.WARNING
    assert f"{limit + 1} " in found[0].message_en


def test_decomposed_vietnamese_counts_as_composed() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Phượng Hằng Nguyễn Thị Phượng Hằng Vũ Tố"[:50])
    composed_length = len(unicodedata.normalize("NFC", decomposed))
    assert composed_length <= 50 < len(decomposed)
    assert check_package(doc(signer=SignerInfo(full_name=decomposed))) == ()


def test_legacy_document_id_limit_is_not_applied() -> None:
    assert check_package(doc(document_id="000.00.01.H53,2025/03/14,123/UBND-VP")) == ()


# ------------------------------------------------------------------ dates


def test_promulgation_date_in_the_future() -> None:
    where = "MessageHeader/PromulgationInfo/PromulgationDate"
    tomorrow = doc(promulgation=PromulgationInfo("Tây Ninh", date(2025, 3, 15)))
    found = check_package(tomorrow, today=TODAY)
    assert codes_at(found) == {("edxml-date-in-future", where)}
    assert found[0].severity is Severity.WARNING
    assert "2025/03/15" in found[0].message_vi
    assert check_package(tomorrow) == ()  # no today, no comparison
    assert check_package(tomorrow, today=date(2025, 3, 15)) == ()


def test_response_for_date_in_the_future() -> None:
    later = ResponseFor("000.00.32.H53", "9/UBND", date(2026, 1, 1))
    assert codes_at(check_package(doc(response_for=(later,)), today=TODAY)) == {
        ("edxml-date-in-future", "MessageHeader/ResponseFor[1]/PromulgationDate")
    }
    status = replace(STATUS, response_for=replace(STATUS.response_for, promulgation_date=date(2026, 1, 1)))
    assert codes_at(check_package(status, today=TODAY)) == {
        ("edxml-date-in-future", "MessageHeader/ResponseFor/PromulgationDate")
    }


# ------------------------------------------------------------------ business consistency

WHERE_TYPE = "TraceHeaderList/Bussiness/BussinessDocType"


@pytest.mark.parametrize(
    ("doc_type", "complete"),
    [
        (1, doc(response_for=(ResponseFor("000.00.01.H53", "100/UBND-VP"),))),
        (2, business(document_info=BusinessDocumentInfo(document_info=True))),
        (3, business(replacements=(ReplacementInfo("000.00.01.H53,2025/03/01,100/UBND-VP"),))),
    ],
)
def test_business_type_needs_its_block(doc_type: int, complete: DocumentPackage) -> None:
    found = check_package(business(doc_type=doc_type))
    assert codes_at(found) == {("edxml-business-inconsistent", WHERE_TYPE)}
    assert found[0].severity is Severity.WARNING
    assert complete.trace is not None
    assert complete.trace.business is not None
    fixed = replace(
        complete, trace=replace(complete.trace, business=replace(complete.trace.business, doc_type=doc_type))
    )
    assert check_package(fixed) == ()


# ------------------------------------------------------------------ shape of the output


def test_findings_come_in_document_order() -> None:
    package = doc(from_=Organization("bad"), subject="", steering_type=9)
    wheres = [f.where for f in check_package(package)]
    assert wheres == ["MessageHeader/From/OrganId", "MessageHeader/Subject", "MessageHeader/SteeringType"]


def test_new_kinds_are_catalogued() -> None:
    for kind in (findings.UNUSUAL_VALUE, findings.BUSINESS_INCONSISTENT, findings.TEST_ORG_ID):
        assert findings.CATALOGUE[kind.code] is kind


# ------------------------------------------------------------------ default DocumentId


def test_default_document_id_has_the_sdk_shape() -> None:
    assert default_document_id(HEADER) == "000.00.01.H53,2025/03/14,123/UBND-VP"
    header = replace(HEADER, from_=Organization("000.00.00.G22"), code=DocumentCode("7816", "VPCP-TTĐT"))
    header = replace(header, promulgation=PromulgationInfo(date=date(2015, 9, 30)))
    assert default_document_id(header) == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"


@pytest.mark.parametrize(
    "header",
    [
        replace(HEADER, from_=Organization("")),
        replace(HEADER, promulgation=PromulgationInfo("Tây Ninh")),
        replace(HEADER, code=DocumentCode("", "UBND-VP")),
    ],
)
def test_default_document_id_needs_its_parts(header: MessageHeader) -> None:
    with pytest.raises(ValueError, match="DocumentId needs"):
        default_document_id(header)
