"""Status packages answer a document; refusals must say why (Decree 30 Art. 21.2.b, checklist A9)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.edxml.model import (
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StatusCode,
    StatusPackage,
)
from gateway.edxml.status import make_status, response_for

US = Organization("000.00.01.H53", organ_name="Văn phòng UBND tỉnh Tây Ninh")
AT = datetime(2025, 3, 14, 2, 5, 7, 123456, tzinfo=UTC)


def document(document_id: str | None = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT") -> DocumentPackage:
    header = MessageHeader(
        from_=Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
        to=(US,),
        code=DocumentCode("7816", "VPCP-TTĐT"),
        promulgation=PromulgationInfo("Hà Nội", date(2015, 9, 30)),
        document_type=DocumentType(1, 0, "Công văn"),
        subject="V/v kết nối, liên thông phần mềm quản lý văn bản",
        signer=SignerInfo(full_name="Nguyễn Văn A"),
        document_id=document_id,
    )
    return DocumentPackage(header=header)


def test_refusal_points_at_the_document_and_carries_the_reason() -> None:
    status = make_status(document(), "02", sender=US, at=AT, description="cert-revoked: Chứng thư số đã bị thu hồi")
    assert status.status_code == StatusCode.REJECTED
    assert status.response_for == ResponseFor(
        organ_id="000.00.00.G22",
        code="7816/VPCP-TTĐT",
        promulgation_date=date(2015, 9, 30),
        document_id="000.00.00.G22,2015/09/30,7816/VPCP-TTĐT",
    )
    assert status.description == "cert-revoked: Chứng thư số đã bị thu hồi"
    assert status.timestamp == AT.replace(microsecond=0)


@pytest.mark.parametrize("code", ["02", "13", "16"])
def test_codes_that_must_say_why_refuse_an_empty_reason(code: str) -> None:
    with pytest.raises(ValueError, match="must say why"):
        make_status(document(), code, sender=US, at=AT, description="   ")


def test_arrival_gets_the_standard_wording_when_no_text_is_given() -> None:
    status = make_status(document(), StatusCode.ARRIVED, sender=US, at=AT)
    assert status.description == "Đã đến"


def test_unknown_code_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="01, 02, 03"):
        make_status(document(), "99", sender=US, at=AT)


def test_sender_needs_an_organ_id() -> None:
    with pytest.raises(ValueError, match="OrganId"):
        make_status(document(), "01", sender=Organization(""), at=AT)


def test_document_id_is_derived_when_the_package_has_none() -> None:
    target = response_for(document(document_id=None))
    assert target.document_id == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"


def test_answering_a_status_keeps_its_document() -> None:
    first = make_status(document(), "01", sender=US, at=AT)
    second = make_status(first, "03", sender=US, at=AT)
    assert isinstance(second, StatusPackage)
    assert second.response_for == first.response_for
