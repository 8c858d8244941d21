"""The builder writes what the VNPT SDK writes, the same bytes every time, and refuses bad models."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway.edxml.attachments import wire_bytes
from gateway.edxml.build import BuildError, build
from gateway.edxml.model import (
    Business,
    BusinessDocumentInfo,
    DocumentPackage,
    OtherInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    TraceHeader,
)
from gateway.edxml.names import QCVN_NS, local_name
from gateway.edxml.parse import parse
from gateway.edxml.xmlsafe import parse_untrusted
from tests.edxml.strategies import TODAY, example_document, example_status

SDK_GENERATED = Path(__file__).parents[1] / "data/edxml/sdk/dc0bdef0-c7a3-4aaf-b717-777303442973.edxml"


def _children(element: etree._Element) -> list[str]:
    return [local_name(child.tag) for child in element if isinstance(child.tag, str)]


def _find(root: etree._Element, name: str) -> etree._Element:
    found = root.find(f".//{{{QCVN_NS}}}{name}")
    assert found is not None, name
    return found


def test_declaration_root_and_envelope_are_written_like_the_sdk() -> None:
    lines = build(example_document()).split(b"\n")
    assert lines[0] == b'<?xml version="1.0" encoding="UTF-8"?>'
    assert lines[1] == f'<edXML xmlns="{QCVN_NS}">'.encode()
    assert lines[2] == f'  <edXML:edXMLEnvelope xmlns:edXML="{QCVN_NS}">'.encode()
    assert lines[-2:] == [b"</edXML>", b""]


def test_every_element_inside_the_envelope_has_the_edxml_prefix() -> None:
    raw = build(example_document()).decode()
    envelope = raw[raw.index("<edXML:edXMLEnvelope") : raw.index("</edXML:edXMLEnvelope>")]
    tags = re.findall(r"</?([A-Za-z:]+)", envelope)
    assert len(tags) > 50
    assert all(tag.startswith("edXML:") for tag in tags), {t for t in tags if not t.startswith("edXML:")}


def test_attachment_encoded_is_a_root_level_sibling_written_as_the_sdk_does() -> None:
    raw = build(example_document())
    root = parse_untrusted(raw)
    assert _children(root) == ["edXMLEnvelope", "AttachmentEncoded"]
    payload = raw[raw.index(b"  <AttachmentEncoded>") :].decode()
    # Unprefixed children, prefixed ContentTransferEncoded re-declaring the prefix (SDK output).
    assert re.findall(r"<([A-Za-z:]+)", payload) == [
        "AttachmentEncoded",
        *("Attachment", "ContentId", "AttachmentName", "ContentType", "edXML:ContentTransferEncoded"),
        *("Attachment", "ContentId", "AttachmentName", "Description", "ContentType"),
        "edXML:ContentTransferEncoded",
    ]
    assert f'<edXML:ContentTransferEncoded xmlns:edXML="{QCVN_NS}">' in payload
    assert "<ContentId>cid:7816</ContentId>" in payload


def test_base64_is_one_line_and_carries_the_wire_bytes() -> None:
    package = example_document()
    root = parse_untrusted(build(package))
    encoded = root.findall(f".//{{{QCVN_NS}}}ContentTransferEncoded")
    assert len(encoded) == len(package.attachments)
    for element, attachment in zip(encoded, package.attachments, strict=True):
        text = element.text or ""
        assert not re.search(r"\s", text)
        assert base64.b64decode(text, validate=True) == wire_bytes(attachment)


def test_header_holds_message_header_then_trace_and_no_signature() -> None:
    root = parse_untrusted(build(example_document()))
    assert _children(_find(root, "edXMLEnvelope")) == ["edXMLHeader", "edXMLBody"]
    assert _children(_find(root, "edXMLHeader")) == ["MessageHeader", "TraceHeaderList"]


def test_message_header_children_follow_spec_order() -> None:
    package = example_document()
    header = replace(
        package.header,
        response_for=(ResponseFor(code="1/X"),),
        response_for_task=("T-1",),
        application_type="1",
    )
    root = parse_untrusted(build(replace(package, header=header)))
    assert _children(_find(root, "MessageHeader")) == [
        "From",
        "To",
        "To",
        "Code",
        "PromulgationInfo",
        "DocumentType",
        "Subject",
        "Content",
        "SignerInfo",
        "DueDate",
        "ToPlaces",
        "OtherInfo",
        "ResponseFor",
        "SteeringType",
        "DocumentId",
        "ResponseForTask",
        "ApplicationType",
    ]
    assert _children(_find(root, "From")) == ["OrganId", "OrganName", "Email"]


def test_manifest_references_carry_cid_and_sdk_child_order() -> None:
    root = parse_untrusted(build(example_document()))
    manifest = _find(root, "edXMLManifest")
    assert manifest.get("version") == "1.0"
    assert len(manifest.attrib) == 1
    references = [child for child in manifest if isinstance(child.tag, str)]
    assert _children(references[0]) == ["ContentId", "ContentType", "AttachmentName"]
    assert _children(references[1]) == ["ContentId", "ContentType", "Description", "AttachmentName"]
    assert [r.findtext(f"{{{QCVN_NS}}}ContentId") for r in references] == ["cid:7816", "cid:7816-2"]


def test_dates_and_vietnam_timestamps_on_the_wire() -> None:
    raw = build(example_document()).decode()
    assert "<edXML:PromulgationDate>2025/03/10</edXML:PromulgationDate>" in raw
    # 02:30 UTC is 09:30 in Vietnam; the wire carries no zone.
    assert "<edXML:Timestamp>2025/03/10 09:30:00</edXML:Timestamp>" in raw


def test_indentation_is_two_spaces_and_never_inside_text() -> None:
    raw = build(example_document()).decode()
    for line in raw.split("\n")[1:-1]:
        assert re.fullmatch(r"(  )*<[^ ].*", line), line
    root = parse_untrusted(raw.encode())
    for element in root.iter():
        if isinstance(element.tag, str) and len(element) == 0 and element.text:
            assert element.text == element.text.strip()


def test_no_comment_or_processing_instruction_is_written() -> None:
    raw = build(example_document())
    root = parse_untrusted(raw)
    assert all(isinstance(node.tag, str) for node in root.iter())
    assert raw.count(b"<?") == 1
    assert b"<!--" not in raw


def test_status_package_shape() -> None:
    raw = build(example_status())
    root = parse_untrusted(raw)
    assert _children(root) == ["edXMLEnvelope"]
    assert _children(_find(root, "edXMLEnvelope")) == ["edXMLHeader"]
    assert _children(_find(root, "edXMLHeader")) == ["MessageHeader"]
    assert _children(_find(root, "MessageHeader")) == [
        "From",
        "ResponseFor",
        "StaffInfo",
        "StatusCode",
        "Description",
        "Timestamp",
    ]
    assert b"<edXML:StatusCode>01</edXML:StatusCode>" in raw


def test_same_model_same_bytes_even_in_another_process() -> None:
    raw = build(example_document())
    assert build(example_document()) == raw
    script = (
        "import hashlib, sys; from gateway.edxml.build import build; "
        "from tests.edxml.strategies import example_document; "
        "sys.stdout.write(hashlib.sha256(build(example_document())).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env, timeout=60
    )
    assert other.stdout == hashlib.sha256(raw).hexdigest()


def test_an_empty_sub_block_is_written_and_read_back() -> None:
    package = example_document()
    package = replace(package, header=replace(package.header, other_info=OtherInfo()))
    raw = build(package)
    assert b"        <edXML:OtherInfo/>\n" in raw
    assert parse(raw, today=TODAY).package == package


def test_markup_and_carriage_returns_survive() -> None:
    package = example_document()
    subject = "Về việc A & B <khẩn>\r\nDòng 2 ]]> \"trích\" 'yếu'"
    package = replace(package, header=replace(package.header, subject=subject))
    raw = build(package)
    assert b"&amp;" in raw
    assert b"&lt;kh" in raw
    assert b"&#13;\n" in raw
    result = parse(raw, today=TODAY)
    assert result.package == package
    assert result.findings == ()


def _blocks(raw: bytes, *names: str) -> dict[str, str]:
    text = raw.decode().replace("\r\n", "\n")
    text = re.sub(r"(ContentTransferEncoded[^>]*>)[^<]*", r"\1…", text)
    blocks = {}
    for name in names:
        match = re.search(rf"\n( *)<{name}[ >].*?</{name}>\n", text, re.DOTALL)
        assert match, name
        blocks[name] = match.group(0)
    return blocks


def test_blocks_match_the_sdk_generated_package() -> None:
    sdk = SDK_GENERATED.read_bytes()
    package = parse(sdk).package
    assert isinstance(package, DocumentPackage)
    ours = build(package)
    names = ("edXML:From", "edXML:TraceHeaderList", "edXML:edXMLBody", "AttachmentEncoded", "edXML:OtherInfo")
    expected = _blocks(sdk, *names)
    actual = _blocks(ours, *names)
    for name in names:
        assert actual[name] == expected[name], name


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: replace(p, header=replace(p.header, from_=replace(p.header.from_, organ_id=""))), "From/OrganId"),
        (lambda p: replace(p, header=replace(p.header, to=(replace(p.header.to[0], organ_id=""),))), "To[1]/OrganId"),
        (lambda p: replace(p, header=replace(p.header, code=replace(p.header.code, number=""))), "CodeNumber"),
        (lambda p: replace(p, header=replace(p.header, code=replace(p.header.code, notation=""))), "CodeNotation"),
        (
            lambda p: replace(p, header=replace(p.header, promulgation=replace(p.header.promulgation, date=None))),
            "PromulgationDate",
        ),
        (
            lambda p: replace(
                p, header=replace(p.header, document_type=replace(p.header.document_type, type=None, type_name=None))
            ),
            "DocumentType",
        ),
        (lambda p: replace(p, header=replace(p.header, subject="")), "Subject"),
        (lambda p: replace(p, header=replace(p.header, signer=replace(p.header.signer, full_name=None))), "FullName"),
        (lambda p: replace(p, header=replace(p.header, to_places=("Như trên", ""))), "ToPlaces/Place[2]"),
        (lambda p: replace(p, attachments=(replace(p.attachments[0], data=None),)), "has no data"),
        (lambda p: replace(p, attachments=(p.attachments[0], p.attachments[0])), "same content_id"),
        (lambda p: replace(p, attachments=(replace(p.attachments[0], content_id="cid:1"),)), "bare id"),
        (lambda p: replace(p, attachments=(replace(p.attachments[0], content_id="<1>"),)), "bare id"),
        (lambda p: replace(p, attachments=(replace(p.attachments[0], content_id="a b"),)), "bare id"),
        (lambda p: replace(p, attachments=(replace(p.attachments[0], name=""),)), "has no name"),
        (lambda p: replace(p, attachments=(replace(p.attachments[0], content_type=""),)), "no content_type"),
        (lambda p: replace(p, attachments=(replace(p.attachments[1], name="x.docx"),)), "zipped=True needs"),
        (
            lambda p: replace(
                p, attachments=(replace(p.attachments[0], content_type="application/zip", data=b"PK\x03\x04..."),)
            ),
            "readers would unzip it",
        ),
    ],
)
def test_documents_the_builder_refuses(mutate: Callable[[DocumentPackage], DocumentPackage], message: str) -> None:
    package = mutate(example_document())
    with pytest.raises(BuildError, match=re.escape(message)):
        build(package)


def test_trace_parts_the_builder_refuses() -> None:
    package = example_document()
    assert package.trace is not None
    cases = {
        "TraceHeader[1]/OrganId": replace(package.trace, traces=(TraceHeader(organ_id=""),)),
        "Receiver[1]/OrganId": replace(
            package.trace,
            business=Business(doc_type=2, document_info=BusinessDocumentInfo(receivers=(Receiver(organ_id=""),))),
        ),
        "ReplacementInfo[1]/DocumentId": replace(
            package.trace, business=Business(doc_type=3, replacements=(ReplacementInfo(document_id=""),))
        ),
        "BussinessDocType: 4 is not a business type": replace(package.trace, business=Business(doc_type=4)),
    }
    for message, trace in cases.items():
        with pytest.raises(BuildError, match=re.escape(message)):
            build(replace(package, trace=trace))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status_code": "07"}, "not a status code"),
        ({"status_code": "14"}, "not a status code"),
        ({"timestamp": None}, "Timestamp"),
        ({"response_for": ResponseFor(code="1/X")}, "ResponseFor"),
    ],
)
def test_statuses_the_builder_refuses(changes: dict[str, object], message: str) -> None:
    with pytest.raises(BuildError, match=message):
        build(replace(example_status(), **changes))  # type: ignore[arg-type]


def test_status_without_sender_is_refused() -> None:
    status = example_status()
    with pytest.raises(BuildError, match="From/OrganId"):
        build(replace(status, from_=replace(status.from_, organ_id="")))


def test_a_time_vietnam_cannot_express_is_a_build_error() -> None:
    status = replace(example_status(), timestamp=datetime(9999, 12, 31, 20, 0, tzinfo=UTC))
    with pytest.raises(BuildError, match="cannot be written"):
        build(status)


def test_build_error_is_a_value_error() -> None:
    # Callers that validate input generically (CLI, HTTP pre-flight) catch ValueError.
    assert issubclass(BuildError, ValueError)
