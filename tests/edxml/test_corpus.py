"""Corpus: every real SDK package and every crafted variant parses as expected and round-trips.

The table states, for each file, whether it parses, its kind, its business type or status
code, and the exact set of finding codes (parser and checks together). Then every parseable
package goes through ``build`` and ``parse`` again and must come back equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.edxml.build import build
from gateway.edxml.model import DocumentPackage, StatusPackage
from gateway.edxml.parse import ParseResult, parse
from tests.edxml.strategies import TODAY

DATA = Path(__file__).parents[1] / "data" / "edxml"
SDK_QUIRKS = frozenset({"edxml-signature-namespace", "edxml-attachment-type"})


@dataclass(frozen=True)
class Expected:
    path: str
    kind: str | None
    """``edoc``, ``status`` or ``None`` when the file must not parse."""
    subtype: int | str | None
    """BussinessDocType of a document, StatusCode of a status."""
    codes: frozenset[str]


def _e(path: str, kind: str | None, subtype: int | str | None, *codes: str) -> Expected:
    return Expected(path, kind, subtype, frozenset(codes))


CORPUS = [
    # ---- real packages from the VNPT SDK (tests/data/edxml/sdk/README.md)
    _e("sdk/edoc.edxml", None, None, "xml-malformed"),
    _e("sdk/edoc_new.edxml", "edoc", 0, *SDK_QUIRKS, "edxml-bad-org-id"),
    _e("sdk/edoc_replacement.edxml", "edoc", 3, *SDK_QUIRKS),
    _e("sdk/edoc_revocation.edxml", "edoc", 1, *SDK_QUIRKS),
    _e("sdk/dc0bdef0-c7a3-4aaf-b717-777303442973.edxml", "edoc", 0, *SDK_QUIRKS),
    _e("sdk/status.edxml", "status", "01"),
    _e("sdk/status_inbox_01.edxml", "status", "01"),
    _e("sdk/status_rejection_02.edxml", "status", "02"),
    _e("sdk/status_acceptance_03.edxml", "status", "03"),
    _e("sdk/status_assignment_04.edxml", "status", "04"),
    _e("sdk/status_processing_05.edxml", "status", "05"),
    _e("sdk/status_finish_06.edxml", "status", "06"),
    _e("sdk/status_cancellation_13.edxml", "status", "13"),
    _e("sdk/status_change-acceptance_15.edxml", "status", "15"),
    # ---- crafted variants (tests/data/edxml/crafted/README.md)
    _e("crafted/edoc_update_02.edxml", "edoc", 2, "edxml-signature-namespace"),
    _e("crafted/status_refusal_16.edxml", "status", "16"),
    _e("crafted/status_alias_14.edxml", "status", "15", "edxml-status-code-alias"),
    _e("crafted/status_bkav_wrapper.edxml", "status", "03", "edxml-variant-spelling"),
    _e("crafted/edoc_no_prefix.edxml", "edoc", 0),
    _e("crafted/edoc_shuffled.edxml", "edoc", 0),
    _e("crafted/edoc_legacy_namespace.edxml", "edoc", 0, "edxml-legacy-namespace", "edxml-variant-spelling"),
    _e("crafted/edoc_business_spelling.edxml", "edoc", 0, "edxml-variant-spelling"),
    _e("crafted/edoc_lenient_dates.edxml", "edoc", 0, "edxml-lenient-date", "edxml-bad-date"),
    _e("crafted/edoc_dotnet_cid.edxml", "edoc", 0, "edxml-unusual-value"),
    _e("crafted/edoc_zipped_rtf.edxml", "edoc", 0),
    _e("crafted/edoc_two_message_headers.edxml", "edoc", 0, "edxml-duplicate-element"),
]


def _parse(name: str) -> ParseResult:
    return parse((DATA / name).read_bytes(), today=TODAY)


def test_the_table_covers_every_file() -> None:
    on_disk = {str(path.relative_to(DATA)) for path in DATA.rglob("*.edxml")}
    assert on_disk == {entry.path for entry in CORPUS}


@pytest.mark.parametrize("expected", CORPUS, ids=lambda e: e.path)
def test_parses_as_expected(expected: Expected) -> None:
    result = _parse(expected.path)
    assert result.codes == expected.codes, [str(f) for f in result.findings]
    if expected.kind is None:
        assert result.package is None
        assert not result.parseable
        return
    package = result.package
    assert package is not None
    assert package.kind == expected.kind
    if isinstance(package, DocumentPackage):
        assert package.business_type == expected.subtype
        assert all(a.data is not None for a in package.attachments)
    else:
        assert package.status_code == expected.subtype


@pytest.mark.parametrize("expected", [e for e in CORPUS if e.kind], ids=lambda e: e.path)
def test_round_trips(expected: Expected) -> None:
    first = _parse(expected.path).package
    assert first is not None
    again = parse(build(first), today=TODAY)
    assert again.package == first
    # What the build adds can only be what the content already carried (bad ids, unusual values).
    structural = {"edxml-duplicate-element", "edxml-variant-spelling", "edxml-lenient-date", "edxml-bad-date"}
    assert not again.codes & structural


def test_the_malformed_sample_says_where() -> None:
    result = _parse("sdk/edoc.edxml")
    (finding,) = result.findings
    assert finding.where.startswith("line ")
    assert "not well-formed XML" in finding.message_en
    assert result.root is None


def test_sdk_attachment_is_the_zipped_file() -> None:
    package = _parse("sdk/edoc_new.edxml").package
    assert isinstance(package, DocumentPackage)
    (attachment,) = package.attachments
    assert attachment.content_id == "209"
    assert attachment.zipped
    assert attachment.content_type == "application/zip"
    assert attachment.size == 388347
    assert attachment.data is not None
    assert attachment.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_sdk_generated_package_reads_every_field() -> None:
    package = _parse("sdk/dc0bdef0-c7a3-4aaf-b717-777303442973.edxml").package
    assert isinstance(package, DocumentPackage)
    header = package.header
    assert [to.organ_id for to in header.to] == ["000.00.00.H41", "000.00.00.H14", "000.00.00.G17"]
    assert str(header.code) == "7816/VPCP-TTĐT"
    assert header.promulgation.date == date(2019, 4, 11)
    assert header.document_type.type_name == "Công văn"
    assert header.signer.full_name == "Nguyen Thanh Phuc"
    assert header.other_info is not None
    assert header.other_info.direction is False
    assert header.to_places == ("Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP")
    assert package.trace is not None
    assert package.trace.traces[0].timestamp == datetime(2019, 4, 10, 17, 0, tzinfo=UTC)
    assert package.trace.business is not None
    assert package.trace.business.staff is not None
    assert package.trace.business.staff.staff == "Nguyễn Thị Ngọc Trâm"


def test_replacement_and_revocation_details() -> None:
    replacement = _parse("sdk/edoc_replacement.edxml").package
    assert isinstance(replacement, DocumentPackage)
    assert replacement.trace is not None
    assert replacement.trace.business is not None
    infos = replacement.trace.business.replacements
    assert [info.organ_ids for info in infos] == [("000.00.00.H41", "000.00.00.H14")] * 2
    revocation = _parse("sdk/edoc_revocation.edxml").package
    assert isinstance(revocation, DocumentPackage)
    assert revocation.header.response_for[0].code == "267/VPCP-TTĐT"


def test_update_package_reads_its_receiver_list() -> None:
    package = _parse("crafted/edoc_update_02.edxml").package
    assert isinstance(package, DocumentPackage)
    assert package.trace is not None
    assert package.trace.business is not None
    info = package.trace.business.document_info
    assert info is not None
    assert (info.document_info, info.document_receiver) == (True, True)
    assert [(r.organ_id, r.receiver_type) for r in info.receivers] == [("000.00.32.H53", 1), ("000.00.00.H14", 0)]


def test_shuffled_package_reads_like_the_ordered_one() -> None:
    assert _parse("crafted/edoc_shuffled.edxml").package == _parse("crafted/edoc_no_prefix.edxml").package


def test_status_alias_and_bkav_wrapper() -> None:
    alias = _parse("crafted/status_alias_14.edxml")
    assert isinstance(alias.package, StatusPackage)
    assert alias.package.status_code == "15"
    wrapper = _parse("crafted/status_bkav_wrapper.edxml").package
    assert isinstance(wrapper, StatusPackage)
    assert wrapper.timestamp == datetime(2019, 1, 17, 7, 2, 33, tzinfo=UTC)


def test_legacy_author_function_is_the_signer_position() -> None:
    package = _parse("crafted/edoc_legacy_namespace.edxml").package
    assert isinstance(package, DocumentPackage)
    assert package.header.signer.position == "Phó Chủ nhiệm"
    assert package.attachments[0].data is not None


def test_lenient_dates_are_read() -> None:
    package = _parse("crafted/edoc_lenient_dates.edxml").package
    assert isinstance(package, DocumentPackage)
    assert package.header.promulgation.date == date(2019, 1, 16)
    assert package.header.due_date == date(2019, 1, 30)
    assert [r.promulgation_date for r in package.header.response_for] == [date(2018, 9, 28), None]
    assert package.trace is not None
    assert package.trace.traces[0].timestamp == datetime(2019, 1, 16, 2, 30, tzinfo=UTC)


def test_dotnet_bare_payload_id_matches_the_cid_manifest() -> None:
    package = _parse("crafted/edoc_dotnet_cid.edxml").package
    assert isinstance(package, DocumentPackage)
    (attachment,) = package.attachments
    assert attachment.content_id == "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    assert attachment.data is not None
    assert attachment.data.startswith(b"%PDF-")


def test_zipped_rtf_is_unwrapped() -> None:
    package = _parse("crafted/edoc_zipped_rtf.edxml").package
    assert isinstance(package, DocumentPackage)
    (attachment,) = package.attachments
    assert attachment.zipped
    assert attachment.name == "To trinh 215.rtf"
    assert attachment.data is not None
    assert attachment.data.startswith(b"{\\rtf1")


def test_of_two_message_headers_the_first_is_read() -> None:
    result = _parse("crafted/edoc_two_message_headers.edxml")
    assert isinstance(result.package, DocumentPackage)
    assert result.package.header.subject == "V/v tổ chức hội nghị trực tuyến"
    assert not result.ok
