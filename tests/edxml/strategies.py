"""Hypothesis strategies for every edXML model type.

By default the values are *valid*: they satisfy the model's invariants, ``gateway.edxml.build``
accepts them and ``gateway.edxml.checks`` finds no error in them (well-formed OrganIds, §1.9
lengths, known code values, promulgation dates not after ``TODAY``). Text is Vietnamese with
diacritics plus the characters XML must escape (``& < > " '``) and inner line breaks, tabs and
carriage returns. Every optional field is sometimes present and sometimes absent.

Other tests reuse these: e.g. ``document_packages(min_recipients=0)`` also makes packages the
builder must refuse.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import TypeVar

from hypothesis import strategies as st

from gateway.clock import VN_TZ
from gateway.edxml.attachments import mime_type_for
from gateway.edxml.model import (
    Attachment,
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
    StaffInfo,
    StatusCode,
    StatusPackage,
    TraceHeader,
    TraceHeaderList,
)

__all__ = [
    "TODAY",
    "attachments",
    "business_document_infos",
    "businesses",
    "dates",
    "document_codes",
    "document_packages",
    "document_types",
    "example_document",
    "example_status",
    "message_headers",
    "organ_ids",
    "organizations",
    "other_infos",
    "packages",
    "promulgation_infos",
    "receivers",
    "replacement_infos",
    "response_fors",
    "signer_infos",
    "staff_infos",
    "status_packages",
    "texts",
    "timestamps",
    "trace_header_lists",
    "trace_headers",
]

_T = TypeVar("_T")

TODAY = date(2025, 3, 14)
"""The ``today`` the tests pass to the parser: every generated PromulgationDate is on or before it."""

_VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxy"
    "AĂÂBCDĐEÊGHIKLMNOÔƠPQRSTUƯVXY"
    "áàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
    "ÁÀẢÃẠẮẰẲẴẶẤẦẨẪẬÉÈẺẼẸẾỀỂỄỆÍÌỈĨỊÓÒỎÕỌỐỒỔỖỘỚỜỞỠỢÚÙỦŨỤỨỪỬỮỰÝỲỶỸỴ"
    "0123456789 .,;:/-()"
)
_MARKUP = "&<>\"'"
_INNER_SPACE = "\n\t\r"


def texts(max_size: int = 60, *, multiline: bool = False) -> st.SearchStrategy[str]:
    """Non-empty stripped Vietnamese text of at most ``max_size`` characters (NFC, precomposed).

    Args:
        max_size: the §1.9 limit of the field, or any bound.
        multiline: also put line breaks, tabs and carriage returns inside the text.
    """
    alphabet = _VIETNAMESE + _MARKUP + (_INNER_SPACE if multiline else "")
    plain = st.text(alphabet=alphabet, min_size=1, max_size=max_size).map(str.strip).filter(bool)
    if not multiline or max_size < 6:
        return plain
    # Random characters rarely put a line break between two words; make it common.
    half = texts((max_size - 2) // 2)
    joined = st.builds(lambda a, sep, b: f"{a}{sep}{b}", half, st.sampled_from(["\n", "\r\n", "\r", "\t"]), half)
    return plain | joined


def _optional(strategy: st.SearchStrategy[_T]) -> st.SearchStrategy[_T | None]:
    return st.none() | strategy


def organ_ids() -> st.SearchStrategy[str]:
    """Valid OrganIds: mostly QCVN format A (``000.00.32.H53``), sometimes format B (``G14.27``)."""
    letter = st.sampled_from("GHADW")
    format_a = st.builds(
        lambda l4, l3, l2, l1, n: f"{l4:03d}.{l3:02d}.{l2:02d}.{l1}{n:02d}",
        st.integers(0, 999),
        st.integers(0, 99),
        st.integers(0, 99),
        letter,
        st.integers(1, 99),
    )
    format_b = st.builds(
        lambda l1, n, rest: f"{l1}{n:02d}" + "".join(f".{g}" for g in rest),
        letter,
        st.integers(1, 99),
        st.lists(st.integers(1, 999), max_size=3),
    )
    return st.one_of(format_a, format_a, format_b)


def dates(*, max_value: date = date(2030, 12, 31)) -> st.SearchStrategy[date]:
    """Calendar days from 1990 to ``max_value``."""
    return st.dates(min_value=date(1990, 1, 1), max_value=max_value)


def timestamps() -> st.SearchStrategy[datetime]:
    """Aware whole-second instants in UTC, Vietnam time or another zone (the model keeps any)."""
    zones = st.sampled_from([UTC, VN_TZ, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9, minutes=30))])
    return st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by design
        max_value=datetime(2030, 12, 31),  # noqa: DTZ001
        timezones=zones,
    ).map(lambda value: value.replace(microsecond=0))


def organizations() -> st.SearchStrategy[Organization]:
    """Organization blocks (``From``/``To``) with every optional field sometimes present."""
    return st.builds(
        Organization,
        organ_id=organ_ids(),
        organization_in_charge=_optional(texts(200)),
        organ_name=_optional(texts(200)),
        organ_add=_optional(texts(250)),
        email=_optional(st.emails(domains=st.just("gov.vn")).filter(lambda e: len(e) <= 100)),
        telephone=_optional(st.from_regex(r"\(0[0-9]{2}\) [0-9]{7}", fullmatch=True)),
        fax=_optional(st.from_regex(r"0[0-9]{9}", fullmatch=True)),
        website=_optional(st.sampled_from(["vpcp.vn", "www.nghean.vn", "https://caobang.gov.vn"])),
    )


def document_codes() -> st.SearchStrategy[DocumentCode]:
    """``Code``: number ≤ 11 and notation ≤ 30 characters (§1.9)."""
    return st.builds(
        DocumentCode,
        number=st.integers(1, 99999).map(str),
        notation=st.sampled_from(["VPCP-TTĐT", "UBND-VX", "QĐ-TTg", "BC-BTTTT", "TTr-SNV"]) | texts(30),
    )


def promulgation_infos() -> st.SearchStrategy[PromulgationInfo]:
    """Place ≤ 50 characters and a date not after ``TODAY``."""
    return st.builds(PromulgationInfo, place=_optional(texts(50)), date=dates(max_value=TODAY))


def document_types() -> st.SearchStrategy[DocumentType]:
    """Type 1/2 (or absent with a name), TypeDetail from the Decree 30 list, TypeName ≤ 100."""
    return st.one_of(
        st.builds(
            DocumentType,
            type=st.sampled_from([1, 2]),
            type_detail=_optional(st.integers(0, 29)),
            type_name=_optional(texts(100)),
        ),
        st.builds(DocumentType, type=st.none(), type_detail=st.none(), type_name=texts(100)),
    )


def signer_infos() -> st.SearchStrategy[SignerInfo]:
    """Competence and Position ≤ 100, FullName (required by the checks) ≤ 50."""
    return st.builds(
        SignerInfo,
        competence=_optional(st.sampled_from(["TL. BỘ TRƯỞNG", "KT. CHỦ TỊCH", "TM. ỦY BAN NHÂN DÂN"])),
        position=_optional(texts(100)),
        full_name=texts(50),
    )


def response_fors() -> st.SearchStrategy[ResponseFor]:
    """References to an earlier document; a status needs DocumentId or Code + OrganId."""
    return st.builds(
        ResponseFor,
        organ_id=_optional(organ_ids()),
        code=_optional(
            st.builds(lambda n, s: f"{n}/{s}", st.integers(1, 9999), st.sampled_from(["VPCP-TTĐT", "UBND"]))
        ),
        promulgation_date=_optional(dates(max_value=TODAY)),
        document_id=_optional(texts(80)),
    )


def other_infos() -> st.SearchStrategy[OtherInfo]:
    """OtherInfo, including the all-``None`` block (written as an empty element)."""
    return st.builds(
        OtherInfo,
        priority=_optional(st.integers(0, 4)),
        sphere_of_promulgation=_optional(texts(100)),
        typer_notation=_optional(texts(10)),
        promulgation_amount=_optional(st.integers(0, 500)),
        page_amount=_optional(st.integers(0, 500)),
        direction=_optional(st.booleans()),
        reply_fors=_optional(texts(40)),
        reference_codes=_optional(texts(40)),
        appendixes=st.lists(texts(250, multiline=True), max_size=3).map(tuple),
    )


def message_headers(*, min_recipients: int = 1) -> st.SearchStrategy[MessageHeader]:
    """Document headers with 0–3 recipients (at least ``min_recipients``) and every field covered."""
    return st.builds(
        MessageHeader,
        from_=organizations(),
        to=st.lists(organizations(), min_size=min_recipients, max_size=3).map(tuple),
        code=document_codes(),
        promulgation=promulgation_infos(),
        document_type=document_types(),
        subject=texts(500, multiline=True),
        signer=signer_infos(),
        content=_optional(texts(500, multiline=True)),
        due_date=_optional(dates()),
        to_places=st.lists(texts(150), max_size=3).map(tuple),
        other_info=_optional(other_infos()),
        response_for=st.lists(response_fors(), max_size=2).map(tuple),
        steering_type=_optional(st.integers(0, 2)),
        document_id=_optional(texts(80)),
        response_for_task=st.lists(texts(20), max_size=2).map(tuple),
        application_type=_optional(st.sampled_from(["1", "2", "VBĐT"])),
    )


def trace_headers() -> st.SearchStrategy[TraceHeader]:
    """One hop: who and when."""
    return st.builds(TraceHeader, organ_id=organ_ids(), timestamp=_optional(timestamps()))


def staff_infos() -> st.SearchStrategy[StaffInfo]:
    """The clerk who acted (all fields optional)."""
    return st.builds(
        StaffInfo,
        department=_optional(texts(60)),
        department_id=_optional(st.from_regex(r"[A-Z]{2,4}[0-9]{1,3}", fullmatch=True)),
        staff=_optional(texts(50)),
        staff_id=_optional(st.from_regex(r"[0-9]{1,6}", fullmatch=True)),
        email=_optional(st.emails(domains=st.just("gov.vn"))),
        mobile=_optional(st.from_regex(r"0[0-9]{9}", fullmatch=True)),
    )


def receivers() -> st.SearchStrategy[Receiver]:
    """A recipient changed by an update."""
    return st.builds(Receiver, organ_id=organ_ids(), receiver_type=_optional(st.integers(0, 1)))


def business_document_infos() -> st.SearchStrategy[BusinessDocumentInfo]:
    """The update sub-block (BussinessDocType 2)."""
    return st.builds(
        BusinessDocumentInfo,
        document_info=_optional(st.booleans()),
        document_receiver=_optional(st.booleans()),
        receivers=st.lists(receivers(), max_size=3).map(tuple),
    )


def replacement_infos() -> st.SearchStrategy[ReplacementInfo]:
    """A replaced document and who had it (BussinessDocType 3)."""
    return st.builds(
        ReplacementInfo,
        document_id=texts(80),
        organ_ids=st.lists(organ_ids(), max_size=3).map(tuple),
    )


def businesses() -> st.SearchStrategy[Business]:
    """``Bussiness`` of every type 0–3, with the update/replacement sub-blocks sometimes present."""
    return st.builds(
        Business,
        doc_type=_optional(st.integers(0, 3)),
        document_id=_optional(texts(80)),
        doc_reason=_optional(texts(100)),
        paper=_optional(st.integers(0, 1)),
        staff=_optional(staff_infos()),
        document_info=_optional(business_document_infos()),
        replacements=st.lists(replacement_infos(), max_size=2).map(tuple),
    )


def trace_header_lists() -> st.SearchStrategy[TraceHeaderList]:
    """TraceHeaderList with 0–3 hops and an optional business block."""
    return st.builds(
        TraceHeaderList,
        traces=st.lists(trace_headers(), max_size=3).map(tuple),
        business=_optional(businesses()),
    )


_PLAIN_NAMES = st.sampled_from(
    ["Công văn 7816.pdf", "QĐ 1896.doc", "Báo cáo.docx", "Số liệu.xlsx", "Phụ lục.xls", "Hồ sơ.zip", "Trình bày.odt"]
)
_ZIPPED_NAMES = st.sampled_from(["Tờ trình.rtf", "Ảnh chụp.png", "ghi chú.txt", "biểu mẫu.xml", "README"])


def _content_ids() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,35}", fullmatch=True).filter(
        lambda cid: not cid.lower().startswith("cid:")
    )


def attachments() -> st.SearchStrategy[Attachment]:
    """Attachments with data, both as they are and wrapped by the SDK's zip rule.

    Unzipped ones get their real MIME type or the SDK's fake one; their data never starts
    with a zip header under an unzipping name/type (the reader would unzip it).
    """
    data = st.binary(max_size=2048)
    plain = st.builds(
        lambda cid, name, sdk_type, payload, description: Attachment(
            content_id=cid,
            name=name,
            content_type=sdk_type or mime_type_for(name),
            data=payload,
            description=description,
        ),
        _content_ids(),
        _PLAIN_NAMES,
        st.sampled_from([None, None, "application/octet-stream", "application/doc", "application/xslx"]),
        data.filter(lambda payload: not payload.startswith(b"PK\x03\x04")),
        _optional(texts(100)),
    )
    zipped = st.builds(
        lambda cid, name, payload, description: Attachment(
            content_id=cid,
            name=name,
            content_type="application/zip",
            data=payload,
            description=description,
            zipped=True,
        ),
        _content_ids(),
        _ZIPPED_NAMES,
        data,
        _optional(texts(100)),
    )
    return plain | zipped


def document_packages(*, min_recipients: int = 1) -> st.SearchStrategy[DocumentPackage]:
    """Document packages: header, optional trace, 0–3 attachments with unique content ids."""
    return st.builds(
        DocumentPackage,
        header=message_headers(min_recipients=min_recipients),
        trace=_optional(trace_header_lists()),
        attachments=st.lists(attachments(), max_size=3, unique_by=lambda a: a.content_id).map(tuple),
    )


def status_packages() -> st.SearchStrategy[StatusPackage]:
    """Status packages with every §2.2 code; ResponseFor always names its document."""
    return st.builds(
        StatusPackage,
        from_=organizations(),
        response_for=response_fors().filter(lambda r: r.document_id is not None or (r.code and r.organ_id)),
        status_code=st.sampled_from([code.value for code in StatusCode]),
        description=_optional(texts(300, multiline=True)),
        timestamp=timestamps(),
        staff=_optional(staff_infos()),
    )


def packages() -> st.SearchStrategy[DocumentPackage | StatusPackage]:
    """Either kind."""
    return document_packages() | status_packages()


# --------------------------------------------------------------------------- fixed examples

_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def example_document() -> DocumentPackage:
    """One realistic, valid document package (new document, two recipients, a PDF and a zipped RTF)."""
    return DocumentPackage(
        header=MessageHeader(
            from_=Organization(organ_id="000.00.00.G22", organ_name="Văn phòng Chính phủ", email="vpcp@gov.vn"),
            to=(
                Organization(organ_id="000.00.00.H41", organ_name="UBND Tỉnh Nghệ An"),
                Organization(organ_id="000.00.32.H53", organ_name="UBND huyện Châu Thành"),
            ),
            code=DocumentCode(number="7816", notation="VPCP-TTĐT"),
            promulgation=PromulgationInfo(place="Hà Nội", date=date(2025, 3, 10)),
            document_type=DocumentType(type=2, type_detail=18, type_name="Công văn"),
            subject="V/v kết nối, liên thông phần mềm quản lý văn bản",
            signer=SignerInfo(competence="KT. BỘ TRƯỞNG", position="Thứ trưởng", full_name="Nguyễn Văn A"),
            content="Đề nghị các đơn vị <khẩn> & đúng hạn",
            due_date=date(2025, 3, 31),
            to_places=("Như trên", "Lưu: VT"),
            other_info=OtherInfo(priority=1, direction=False, appendixes=("Phụ lục I",)),
            steering_type=1,
            document_id="000.00.00.G22,2025/03/10,7816/VPCP-TTĐT",
        ),
        trace=TraceHeaderList(
            traces=(TraceHeader(organ_id="000.00.00.G22", timestamp=datetime(2025, 3, 10, 2, 30, tzinfo=UTC)),),
            business=Business(doc_type=0, doc_reason="Văn bản điện tử mới", paper=0),
        ),
        attachments=(
            Attachment(content_id="7816", name="7816-VPCP-TTĐT.pdf", content_type="application/pdf", data=_PDF),
            Attachment(
                content_id="7816-2",
                name="Tờ trình.rtf",
                content_type="application/zip",
                data=b"{\\rtf1\\ansi T\\u7901?\\par}",
                description="Tờ trình kèm theo",
                zipped=True,
            ),
        ),
    )


def example_status(code: str = "01") -> StatusPackage:
    """One realistic, valid status package about ``example_document()``."""
    return StatusPackage(
        from_=Organization(organ_id="000.00.00.H41", organ_name="UBND Tỉnh Nghệ An"),
        response_for=ResponseFor(
            organ_id="000.00.00.G22",
            code="7816/VPCP-TTĐT",
            promulgation_date=date(2025, 3, 10),
            document_id="000.00.00.G22,2025/03/10,7816/VPCP-TTĐT",
        ),
        status_code=code,
        description="Đã đến",
        timestamp=datetime(2025, 3, 11, 1, 2, 3, tzinfo=UTC),
        staff=StaffInfo(department="Văn thư", staff="Trần Thị B"),
    )
