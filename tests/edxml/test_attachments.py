"""Attachments: matching, base64, the zip rule and its bomb defences, sniffing, writing.

Covers ``gateway.edxml.attachments`` (vocabulary, sniffing, writing) and the reading side in
``gateway.edxml.parse_attachments``.
"""

from __future__ import annotations

import base64
import io
import struct
import zipfile
import zlib
from collections.abc import Callable

import pytest

from gateway.edxml.attachments import (
    attachment_from_file,
    bare_content_id,
    mime_type_for,
    sniff,
    travels_zipped,
    wire_bytes,
)
from gateway.edxml.findings import Finding
from gateway.edxml.model import Attachment
from gateway.edxml.parse_attachments import ManifestEntry, PayloadEntry, merge

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
LIMIT = 1024 * 1024


def _zip(*entries: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _ref(cid: str | None, name: str = "a.pdf", ctype: str | None = "application/pdf") -> ManifestEntry:
    return ManifestEntry(cid, name, ctype, None, "edXMLBody/edXMLManifest/Reference[1]")


def _payload(
    cid: str | None, data: bytes | str | None, name: str = "a.pdf", ctype: str | None = "application/pdf"
) -> PayloadEntry:
    text = data if isinstance(data, str) or data is None else base64.b64encode(data).decode()
    return PayloadEntry(cid, name, ctype, None, "AttachmentEncoded/Attachment[1]", lambda: text)


def _one(
    data: bytes | str | None, *, name: str = "a.pdf", ctype: str = "application/pdf", limit: int = LIMIT
) -> tuple[Attachment, set[str], tuple[Finding, ...]]:
    (attachment,), found = merge([_ref("cid:1", name, ctype)], [_payload("cid:1", data, name, ctype)], max_bytes=limit)
    return attachment, {f.code for f in found}, found


# --------------------------------------------------------------------------- matching


def test_content_ids_match_with_or_without_cid_and_brackets() -> None:
    assert bare_content_id("cid:209") == "209"
    assert bare_content_id(" <cid:209> ") == "209"
    assert bare_content_id("cid:<209>") == "209"
    assert bare_content_id("CID:abc") == "abc"
    assert bare_content_id(None) == ""
    attachments, found = merge([_ref("cid:abc")], [_payload("abc", PDF)], max_bytes=LIMIT)
    assert found == ()
    assert attachments[0].content_id == "abc"
    assert attachments[0].data == PDF


def test_manifest_order_then_payload_only_attachments() -> None:
    manifest = [_ref("cid:2", "two.pdf"), _ref("cid:1", "one.pdf"), _ref("cid:9", "nine.pdf")]
    payloads = [_payload("1", PDF, "one.pdf"), _payload("7", PDF, "seven.pdf"), _payload("2", PDF, "two.pdf")]
    attachments, found = merge(manifest, payloads, max_bytes=LIMIT)
    assert [a.content_id for a in attachments] == ["2", "1", "9", "7"]
    assert attachments[2].data is None  # manifest-only
    assert attachments[3].data == PDF  # payload-only, still decoded
    assert [(f.code, f.where) for f in found] == [
        ("edxml-attachment-mismatch", 'attachment "nine.pdf" (cid:9)'),
        ("edxml-attachment-mismatch", 'attachment "seven.pdf" (cid:7)'),
    ]


def test_duplicate_content_ids_are_mismatches_and_the_first_is_read() -> None:
    manifest = [_ref("cid:1", "a.pdf"), _ref("cid:1", "b.pdf")]
    payloads = [_payload("1", PDF, "a.pdf"), _payload("1", b"%PDF-other", "a.pdf")]
    attachments, found = merge(manifest, payloads, max_bytes=LIMIT)
    assert len(attachments) == 1
    assert attachments[0].data == PDF
    assert [f.code for f in found] == ["edxml-attachment-mismatch"] * 2


def test_name_and_type_disagreements_are_mismatches() -> None:
    attachments, found = merge(
        [_ref("cid:1", "a.pdf", "application/pdf")],
        [_payload("1", PDF, "b.pdf", "application/PDF; name=b.pdf")],
        max_bytes=LIMIT,
    )
    assert [f.code for f in found] == ["edxml-attachment-mismatch"]
    assert "b.pdf" in found[0].message_en
    assert attachments[0].name == "a.pdf"  # the manifest's
    attachments, found = merge(
        [_ref("cid:1", "a.pdf", "application/pdf")], [_payload("1", PDF, "a.pdf", "image/png")], max_bytes=LIMIT
    )
    assert [f.code for f in found] == ["edxml-attachment-mismatch"]
    assert "image/png" in found[0].message_en
    assert attachments[0].content_type == "application/pdf"


def test_missing_fields_on_one_side_are_taken_from_the_other() -> None:
    # edoc.edxml: the manifest's ContentType is commented out.
    attachments, found = merge([_ref("cid:1", "a.pdf", None)], [_payload("1", PDF)], max_bytes=LIMIT)
    assert found == ()
    assert attachments[0].content_type == "application/pdf"


# --------------------------------------------------------------------------- base64


def test_base64_with_line_breaks_and_spaces_is_read() -> None:
    encoded = base64.encodebytes(PDF * 20).decode().replace("\n", "\r\n  ")
    attachment, codes, _ = _one(encoded)
    assert codes == set()
    assert attachment.data == PDF * 20


@pytest.mark.parametrize(
    "text",
    [
        "${__StringFromFile(test.txt,,,)}",  # the JMeter placeholder of edoc.edxml
        "QUJD*RA==",
        "QQ==QQ==",  # padding in the middle
        "QUJDR",  # impossible length
        "QUJD\u00e9",
    ],
)
def test_bad_base64_is_a_decode_finding(text: str) -> None:
    attachment, codes, found = _one(text)
    assert codes == {"edxml-attachment-decode"}
    assert attachment.data is None
    assert found[0].where == 'attachment "a.pdf" (cid:1)'


def test_missing_payload_element_is_a_decode_finding() -> None:
    attachment, codes, _ = _one(None)
    assert codes == {"edxml-attachment-decode"}
    assert attachment.data is None


def test_empty_payload_is_an_empty_file() -> None:
    attachment, codes, _ = _one("", name="empty.txt", ctype="text/plain")
    assert codes == set()
    assert attachment.data == b""


def test_size_is_checked_before_decoding() -> None:
    # Not base64 at all, but too long: refused for its size, so it was never decoded.
    attachment, codes, found = _one("!" * 4000, limit=2000)
    assert codes == {"edxml-attachment-too-large"}
    assert attachment.data is None
    assert "2000" in found[0].message_en


def test_size_limit_ignores_line_breaks_and_is_exact() -> None:
    data = b"x" * 3000
    wrapped = base64.encodebytes(data).decode()  # 76 columns plus newlines
    assert _one(wrapped, name="x.txt", ctype="text/plain", limit=3000)[0].data == data
    assert _one(wrapped, name="x.txt", ctype="text/plain", limit=2999)[1] == {"edxml-attachment-too-large"}


def test_the_payload_text_is_fetched_once() -> None:
    calls: list[int] = []
    text = base64.b64encode(PDF).decode()

    def fetch() -> str:
        calls.append(1)
        return text

    merge([_ref("cid:1")], [PayloadEntry("1", "a.pdf", "application/pdf", None, "x", fetch)], max_bytes=LIMIT)
    assert calls == [1]


# --------------------------------------------------------------------------- the zip rule


def test_sdk_zip_is_unwrapped() -> None:
    attachment, codes, _ = _one(_zip(("3f2a.rtf", b"{\\rtf1 x}")), name="To trinh.rtf", ctype="application/zip")
    assert codes == set()
    assert attachment.zipped
    assert attachment.data == b"{\\rtf1 x}"


@pytest.mark.parametrize("name", ["ho so.zip", "bao cao.docx", "so lieu.xlsx", "trinh bay.odt"])
def test_zips_that_are_files_in_their_own_right_stay_zipped(name: str) -> None:
    blob = _zip(("a", b"1"), ("b", b"2"))
    attachment, codes, _ = _one(blob, name=name, ctype="application/zip")
    assert not attachment.zipped
    assert attachment.data == blob
    assert "edxml-attachment-decode" not in codes


def test_zip_declared_as_something_else_is_not_unwrapped() -> None:
    blob = _zip(("a.txt", b"1"))
    attachment, _, _ = _one(blob, name="a.txt", ctype="application/octet-stream")
    assert not attachment.zipped
    assert attachment.data == blob


def test_more_than_one_entry_is_a_decode_finding() -> None:
    attachment, codes, found = _one(_zip(("a.txt", b"1"), ("b.txt", b"2")), name="a.txt", ctype="application/zip")
    assert codes == {"edxml-attachment-decode"}
    assert "2 entries" in found[0].message_en
    assert attachment.data is None


def test_a_broken_zip_is_a_decode_finding() -> None:
    blob = _zip(("a.txt", b"hello" * 100))
    broken = blob[:40] + bytes(len(blob) - 80) + blob[-40:]
    attachment, codes, _ = _one(broken, name="a.txt", ctype="application/zip")
    assert codes == {"edxml-attachment-decode"}
    assert attachment.data is None


def test_an_entry_that_declares_a_huge_size_is_too_large() -> None:
    attachment, codes, _ = _one(_zip(("a.txt", b"0" * 5000)), name="a.txt", ctype="application/zip", limit=4000)
    assert codes == {"edxml-attachment-too-large"}
    assert attachment.data is None


def _lying_zip(content: bytes, declared: int) -> bytes:
    """A single stored-as-deflate entry whose headers claim ``declared`` bytes uncompressed."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(content) + compressor.flush()
    crc = zlib.crc32(content)
    name = b"bomb.txt"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(body), declared, len(name), 0)
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(body), declared, len(name), 0, 0, 0, 0, 0, 0
    )
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), len(local) + len(name) + len(body), 0
    )
    return local + name + body + central + name + end


def test_zip_bomb_that_lies_about_its_size_costs_at_most_the_limit() -> None:
    # 50 MB of zeros deflate to ~50 kB; the headers claim 100 bytes, under the limit. The
    # read stops at the limit, and the entry then fails its own size/CRC check.
    blob = _lying_zip(bytes(50 * 1024 * 1024), declared=100)
    assert len(blob) < 100_000
    attachment, codes, found = _one(blob, name="bomb.txt", ctype="application/zip", limit=200_000)
    assert codes == {"edxml-attachment-decode"}
    assert "broken zip" in found[0].message_en
    assert attachment.data is None


def test_zip_bomb_with_honest_huge_size_is_refused_before_inflating() -> None:
    blob = _lying_zip(bytes(20 * 1024 * 1024), declared=20 * 1024 * 1024)
    attachment, codes, _ = _one(blob, name="bomb.txt", ctype="application/zip", limit=LIMIT)
    assert codes == {"edxml-attachment-too-large"}
    assert attachment.data is None


# --------------------------------------------------------------------------- sniffing


def _ooxml(marker: str) -> bytes:
    return _zip(("[Content_Types].xml", b"<Types/>"), (marker, b"<x/>"))


def _odf() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", b"<x/>", zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF, "application/pdf"),
        (b"garbage before\n" + PDF, "application/pdf"),
        (OLE2, "application/x-ole-storage"),
        (_zip(("a.txt", b"1")), "application/zip"),
        (_ooxml("word/document.xml"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (_ooxml("xl/workbook.xml"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (_ooxml("ppt/presentation.xml"), "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
        (_odf(), "application/vnd.oasis.opendocument.text"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "image/png"),
        (b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg"),
        (b"GIF89a" + bytes(20), "image/gif"),
        (b"II*\x00" + bytes(20), "image/tiff"),
        (b"MM\x00*" + bytes(20), "image/tiff"),
        (b"{\\rtf1\\ansi}", "application/rtf"),
        (b"\xef\xbb\xbf  <?xml version='1.0'?><a/>", "application/xml"),
        (b"<!DOCTYPE html><html></html>", "text/html"),
        (b"\x1f\x8b\x08" + bytes(20), "application/gzip"),
        (b"7z\xbc\xaf\x27\x1c" + bytes(20), "application/x-7z-compressed"),
        (b"Rar!\x1a\x07\x00", "application/vnd.rar"),
        (b"PK\x03\x04 not really a zip", "application/zip"),
        ("Công văn số 1".encode(), None),
        (b"", None),
    ],
)
def test_sniff(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected


@pytest.mark.parametrize(
    ("name", "ctype", "data", "contradiction"),
    [
        ("a.pdf", "application/pdf", PDF, False),
        ("a.pdf", "application/pdf", OLE2, True),  # declared PDF, bytes are not
        ("a.doc", "application/doc", OLE2, False),  # the SDK's fake types are fine for their extension
        ("a.doc", "application/msword", b"{\\rtf1}", False),  # Word saves RTF under .doc
        ("a.xls", "application/xsl", OLE2, False),
        ("a.docx", "application/docx", _ooxml("word/document.xml"), False),
        ("a.xlsx", "application/xslx", _ooxml("xl/workbook.xml"), False),
        ("a.pdf", "application/octet-stream", PDF, False),  # an unknown declaration judges nothing
        ("scan", "image/png", PDF, True),
        ("a.png", "application/octet-stream", PDF, True),  # the extension contradicts
        ("a.txt", "text/plain", b"plain text", False),
        ("a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", OLE2, True),
        ("a.odt", "application/vnd.oasis.opendocument.text", _odf(), False),
    ],
)
def test_type_contradictions(name: str, ctype: str, data: bytes, contradiction: bool) -> None:
    _, codes, _ = _one(data, name=name, ctype=ctype)
    assert ("edxml-attachment-type" in codes) is contradiction


def test_after_unzipping_the_extension_is_the_declaration() -> None:
    _, codes, found = _one(_zip(("x.doc", b"<?xml version='1.0'?><edXML/>")), name="a.doc", ctype="application/zip")
    assert codes == {"edxml-attachment-type"}
    assert "application/msword (a.doc)" in found[0].message_en
    assert "application/xml" in found[0].message_en


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("name", "content_type", "zipped"),
    [
        ("Công văn.pdf", "application/pdf", False),
        ("QĐ.doc", "application/msword", False),
        ("QĐ.DOCX", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", False),
        ("a.xls", "application/vnd.ms-excel", False),
        ("a.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False),
        ("a.odt", "application/vnd.oasis.opendocument.text", False),
        ("a.zip", "application/zip", False),
        ("a.rtf", "application/zip", True),
        ("a.png", "application/zip", True),
        ("no-extension", "application/zip", True),
    ],
)
def test_attachment_from_file_types(name: str, content_type: str, zipped: bool) -> None:
    attachment = attachment_from_file(name, b"data")
    assert attachment.content_type == content_type
    assert attachment.zipped is zipped
    assert attachment.data == b"data"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.pdf", PDF),
        ("a.doc", OLE2),
        ("a.xls", OLE2),
        ("a.ppt", OLE2),
        ("a.docx", _ooxml("word/document.xml")),
        ("a.xlsx", _ooxml("xl/workbook.xml")),
        ("a.pptx", _ooxml("ppt/presentation.xml")),
        ("a.odt", _odf()),
        ("a.zip", _zip(("x", b"1"))),
        ("a.rtf", b"{\\rtf1}"),
        ("a.png", b"\x89PNG\r\n\x1a\n"),
        ("a.jpg", b"\xff\xd8\xff\xe0"),
        ("a.xml", b"<?xml version='1.0'?><a/>"),
        ("a.html", b"<html></html>"),
    ],
)
def test_the_types_we_write_agree_with_the_sniffer(name: str, data: bytes) -> None:
    attachment = attachment_from_file(name, data, zip_other_files=False)
    _, codes, _ = _one(data, name=name, ctype=attachment.content_type)
    assert codes == set()


def test_attachment_from_file_without_zipping_uses_the_real_type() -> None:
    attachment = attachment_from_file("a.png", b"\x89PNG", zip_other_files=False)
    assert (attachment.content_type, attachment.zipped) == ("image/png", False)
    assert mime_type_for("x.unknown") == "application/octet-stream"


def test_attachment_from_file_is_deterministic() -> None:
    first = attachment_from_file(" Tờ trình.rtf ", b"{\\rtf1}", description="  Tờ trình ")
    second = attachment_from_file("Tờ trình.rtf", b"{\\rtf1}", description="Tờ trình")
    assert first == second
    assert first.name == "Tờ trình.rtf"
    assert len(first.content_id) == 32
    assert first.content_id != attachment_from_file("Tờ trình.rtf", b"{\\rtf2}").content_id
    assert wire_bytes(first) == wire_bytes(second)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: attachment_from_file("  ", b""), "file name is empty"),
        (lambda: attachment_from_file("a.pdf", b"", content_id="cid:1"), "bare id"),
        (lambda: attachment_from_file("a.pdf", b"", content_id="a b"), "bare id"),
        (lambda: attachment_from_file("a.pdf", b"", content_id=""), "bare id"),
    ],
)
def test_attachment_from_file_refuses(make: Callable[[], Attachment], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_wire_bytes_zip_is_the_sdk_shape() -> None:
    attachment = attachment_from_file("Tờ trình.rtf", b"{\\rtf1 x}")
    blob = wire_bytes(attachment)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        (entry,) = archive.infolist()
        assert entry.filename.endswith(".rtf")
        assert len(entry.filename) == 36 + 4  # <uuid>.rtf
        assert entry.date_time == (1980, 1, 1, 0, 0, 0)
        assert archive.read(entry) == b"{\\rtf1 x}"
    assert travels_zipped(attachment.name, attachment.content_type)
    assert wire_bytes(attachment_from_file("a.pdf", PDF)) == PDF
    with pytest.raises(ValueError, match="no data"):
        wire_bytes(Attachment(content_id="1", name="a.pdf", content_type="application/pdf"))
