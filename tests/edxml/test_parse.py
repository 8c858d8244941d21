"""The tolerant parser: structure, namespaces, variants, duplicates, typed values, never a crash."""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.edxml.build import build
from gateway.edxml.findings import Severity
from gateway.edxml.model import DocumentPackage, StatusPackage
from gateway.edxml.names import DSIG_NS, QCVN_NS
from gateway.edxml.parse import ParseResult, parse, parse_tree
from gateway.edxml.xmlsafe import XMLLimits, parse_untrusted
from tests.edxml.strategies import TODAY, example_document, example_status

DOC = build(example_document()).decode()
STATUS = build(example_status()).decode()
SIGNATURE = '      <Signature xmlns="{ns}"><SignedInfo/><SignatureValue>AA==</SignatureValue></Signature>\n'


def _parse(text: str) -> ParseResult:
    return parse(text.encode(), today=TODAY)


def _edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


def _doc(result: ParseResult) -> DocumentPackage:
    assert isinstance(result.package, DocumentPackage), [str(f) for f in result.findings]
    return result.package


# --------------------------------------------------------------------------- result object


def test_a_clean_package_has_no_findings() -> None:
    result = _parse(DOC)
    assert result.findings == ()
    assert result.ok
    assert result.parseable
    assert result.root is not None
    assert result.package == example_document()


def test_parse_result_equality_ignores_the_tree() -> None:
    first, second = _parse(DOC), _parse(DOC)
    assert first.root is not second.root
    assert first == second
    assert "root" not in repr(first)


def test_parse_tree_reads_the_given_tree_without_changing_it() -> None:
    root = parse_untrusted(DOC.encode())
    before = [(node.tag, node.text) for node in root.iter()]
    result = parse_tree(root, today=TODAY)
    assert result.root is root
    assert result.package == example_document()
    assert [(node.tag, node.text) for node in root.iter()] == before


# --------------------------------------------------------------------------- unreadable input


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "xml-malformed"),
        (b"not xml at all", "xml-malformed"),
        (b"<edXML><unclosed></edXML>", "xml-malformed"),
        (b'<!DOCTYPE edXML [<!ENTITY x "y">]><edXML>&x;</edXML>', "xml-forbidden-construct"),
    ],
)
def test_bytes_that_are_not_acceptable_xml(raw: bytes, code: str) -> None:
    result = parse(raw)
    assert [f.code for f in result.findings] == [code]
    assert result.package is None
    assert result.root is None
    assert not result.ok


def test_limits_are_passed_to_the_xml_door() -> None:
    result = parse(DOC.encode(), limits=XMLLimits(max_bytes=100))
    assert [f.code for f in result.findings] == ["xml-too-large"]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<Envelope/>", "the root element is <Envelope>"),
        (f'<edXML xmlns="{QCVN_NS}"/>', "no edXMLEnvelope"),
        (f'<edXML xmlns="{QCVN_NS}"><edXMLEnvelope/></edXML>', "no edXMLHeader"),
        (f'<edXML xmlns="{QCVN_NS}"><edXMLEnvelope><edXMLHeader/></edXMLEnvelope></edXML>', "no MessageHeader"),
    ],
)
def test_xml_that_is_not_an_edxml_package(text: str, detail: str) -> None:
    result = _parse(text)
    assert result.package is None
    assert result.root is not None
    (finding,) = result.findings
    assert finding.code == "edxml-not-edxml"
    assert detail in finding.message_en


def test_a_root_in_another_namespace_is_read_and_reported() -> None:
    other = "http://www.mic.gov.vn/TBT/QCVN_102_2016/"  # a trailing slash too many
    result = _parse(DOC.replace(QCVN_NS, other))
    assert [(f.code, f.where) for f in result.findings] == [("edxml-foreign-namespace", "edXML")]
    assert result.package == example_document()


# --------------------------------------------------------------------------- kind detection


def test_status_code_in_a_package_with_body_is_a_document() -> None:
    text = _edit(
        DOC, "        <edXML:Subject>", "        <edXML:StatusCode>01</edXML:StatusCode>\n        <edXML:Subject>"
    )
    result = _parse(text)
    assert isinstance(result.package, DocumentPackage)
    assert "edxml-unknown-element" in result.codes


def test_status_package_with_a_trace_list_reports_it() -> None:
    text = _edit(STATUS, "    </edXML:edXMLHeader>", "      <edXML:TraceHeaderList/>\n    </edXML:edXMLHeader>")
    result = _parse(text)
    assert isinstance(result.package, StatusPackage)
    assert [f.code for f in result.findings] == ["edxml-misplaced-element"]


def test_status_package_round_values() -> None:
    result = _parse(STATUS)
    assert result.findings == ()
    assert result.package == example_status()


# --------------------------------------------------------------------------- namespaces


def test_no_namespace_at_all_is_accepted() -> None:
    text = DOC.replace(f' xmlns="{QCVN_NS}"', "").replace(f' xmlns:edXML="{QCVN_NS}"', "").replace("edXML:", "")
    result = _parse(text)
    assert result.findings == ()
    assert result.package == example_document()


def test_legacy_namespace_is_reported_once() -> None:
    text = DOC.replace(QCVN_NS, "http://www.e-doc.vn/Schema/")
    result = _parse(text)
    assert [f.code for f in result.findings] == ["edxml-legacy-namespace"]
    assert result.package == example_document()


def test_foreign_namespace_is_read_and_reported_once_per_namespace() -> None:
    text = _edit(DOC, "<edXML:Subject>", '<x:Subject xmlns:x="urn:foreign">')
    text = _edit(text, "</edXML:Subject>", "</x:Subject>")
    text = _edit(text, "<edXML:Content>", '<x:Content xmlns:x="urn:foreign">')
    text = _edit(text, "</edXML:Content>", "</x:Content>")
    result = _parse(text)
    assert [(f.code, f.where) for f in result.findings] == [("edxml-foreign-namespace", "MessageHeader/Subject")]
    assert result.package == example_document()


# --------------------------------------------------------------------------- signature


def _with_signature(text: str, signature: str) -> str:
    return _edit(text, "    </edXML:edXMLHeader>", signature + "    </edXML:edXMLHeader>")


def test_signature_in_the_xmldsig_namespace_at_the_end_is_quiet() -> None:
    result = _parse(_with_signature(DOC, SIGNATURE.format(ns=DSIG_NS)))
    assert result.findings == ()


@pytest.mark.parametrize("namespace", [QCVN_NS, ""])
def test_signature_in_the_wrong_namespace_is_the_sdk_quirk(namespace: str) -> None:
    signature = SIGNATURE.format(ns=namespace) if namespace else SIGNATURE.replace(' xmlns="{ns}"', "")
    text = _with_signature(DOC, signature)
    if not namespace:  # no default namespace at all
        text = text.replace(f' xmlns="{QCVN_NS}"', "").replace(f' xmlns:edXML="{QCVN_NS}"', "").replace("edXML:", "")
    result = _parse(text)
    assert [(f.code, f.severity) for f in result.findings] == [("edxml-signature-namespace", Severity.INFO)]


def test_signature_not_last_in_the_header_is_misplaced() -> None:
    text = _edit(DOC, "      <edXML:TraceHeaderList>", SIGNATURE.format(ns=DSIG_NS) + "      <edXML:TraceHeaderList>")
    result = _parse(text)
    assert [(f.code, f.where) for f in result.findings] == [("edxml-misplaced-element", "Signature")]


def test_signature_outside_the_header_is_misplaced() -> None:
    text = _edit(DOC, "  </edXML:edXMLEnvelope>", SIGNATURE.format(ns=DSIG_NS) + "  </edXML:edXMLEnvelope>")
    result = _parse(text)
    assert [(f.code, f.where) for f in result.findings] == [("edxml-misplaced-element", "Signature")]


def test_two_signatures_are_duplicates() -> None:
    signature = SIGNATURE.format(ns=DSIG_NS)
    result = _parse(_with_signature(DOC, signature + signature))
    # The first is the one read, and it is not the last child of the header.
    assert [f.code for f in result.findings] == ["edxml-duplicate-element", "edxml-misplaced-element"]


# --------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize(
    ("element", "where"),
    [
        ("edXML:From", "MessageHeader/From"),
        ("edXML:Code", "MessageHeader/Code"),
        ("edXML:Subject", "MessageHeader/Subject"),
        ("edXML:OtherInfo", "MessageHeader/OtherInfo"),
        ("edXML:TraceHeaderList", "TraceHeaderList"),
        ("edXML:Bussiness", "TraceHeaderList/Bussiness"),
        ("edXML:edXMLHeader", "edXMLHeader"),
        ("edXML:edXMLBody", "edXMLBody"),
        ("edXML:edXMLEnvelope", "edXMLEnvelope"),
        ("AttachmentEncoded", "AttachmentEncoded"),
    ],
)
def test_a_second_single_valued_element_is_an_error_and_the_first_is_read(element: str, where: str) -> None:
    start = DOC.index(f"<{element}>") if f"<{element}>" in DOC else DOC.index(f"<{element} ")
    end = DOC.index(f"</{element}>", start) + len(f"</{element}>")
    block = DOC[start:end]
    # The copy says something else wherever it can: the reader must not pick it up.
    forged = block.replace("000.00.00.G22", "000.00.00.G99").replace("V/v", "Chuyển tiền").replace("7816", "9999")
    text = DOC[:end] + forged + DOC[end:]
    result = _parse(text)
    duplicates = [f for f in result.findings if f.code == "edxml-duplicate-element"]
    assert [(f.where, f.severity) for f in duplicates] == [(where, Severity.ERROR)]
    assert "2 times" in duplicates[0].message_en
    assert result.package == example_document()


def test_duplicates_are_reported_even_where_the_model_reads_nothing() -> None:
    text = _edit(
        DOC,
        "<ContentType>application/pdf</ContentType>",
        "<FieldName/><FieldName/><ContentType>application/pdf</ContentType>",
    )
    result = _parse(text)
    assert [(f.code, f.where) for f in result.findings] == [
        ("edxml-duplicate-element", "AttachmentEncoded/Attachment[1]/FieldName")
    ]


def test_a_second_status_code_is_a_duplicate_and_the_first_is_read() -> None:
    text = _edit(
        STATUS,
        "<edXML:StatusCode>01</edXML:StatusCode>",
        "<edXML:StatusCode>01</edXML:StatusCode><edXML:StatusCode>02</edXML:StatusCode>",
    )
    result = _parse(text)
    assert [(f.code, f.where) for f in result.findings] == [("edxml-duplicate-element", "MessageHeader/StatusCode")]
    assert result.package == example_status()


def test_variant_and_standard_spelling_together_are_duplicates() -> None:
    text = _edit(DOC, "        </edXML:Bussiness>", "        </edXML:Bussiness>\n        <edXML:Business/>")
    result = _parse(text)
    assert [f.code for f in result.findings] == ["edxml-variant-spelling", "edxml-duplicate-element"]


# --------------------------------------------------------------------------- tolerance


def test_unknown_elements_are_reported_and_skipped() -> None:
    text = _edit(DOC, "<edXML:Subject>", "<edXML:Urgency>cao</edXML:Urgency>\n        <edXML:Subject>")
    text = _edit(
        text, "<edXML:OrganId>000.00.00.H41", "<edXML:Nickname>NA</edXML:Nickname><edXML:OrganId>000.00.00.H41"
    )
    result = _parse(text)
    assert [(f.code, f.where, f.severity) for f in result.findings] == [
        ("edxml-unknown-element", "MessageHeader/Urgency", Severity.INFO),
        ("edxml-unknown-element", "MessageHeader/To[1]/Nickname", Severity.INFO),
    ]
    assert result.package == example_document()


def test_comments_and_processing_instructions_do_not_change_the_reading() -> None:
    text = _edit(DOC, "<edXML:Subject>V/v kết nối", "<edXML:Subject><!-- c -->V/v kết<?pi x?> nối")
    text = _edit(text, "<edXML:From>", "<edXML:From><!-- note -->")
    result = _parse(text)
    assert result.findings == ()
    assert result.package == example_document()


def test_an_element_inside_a_text_field_is_reported() -> None:
    text = _edit(DOC, "<edXML:Subject>V/v", "<edXML:Subject><b>x</b>V/v")
    result = _parse(text)
    assert [(f.code, f.where) for f in result.findings] == [("edxml-unknown-element", "MessageHeader/Subject/b")]
    assert _doc(result).header.subject == example_document().header.subject


def test_variant_spellings_are_read() -> None:
    text = DOC.replace("edXML:SignerInfo>", "edXML:Author>").replace("edXML:Position>", "edXML:Function>")
    text = text.replace("edXML:Bussiness>", "edXML:Business>").replace("edXML:Timestamp>", "edXML:TimeStamp>")
    result = _parse(text)
    found = [(f.code, f.where) for f in result.findings]
    assert found == [
        ("edxml-variant-spelling", "MessageHeader/Author"),
        ("edxml-variant-spelling", "MessageHeader/Author/Function"),
        ("edxml-variant-spelling", "TraceHeaderList/Business"),
        ("edxml-variant-spelling", "TraceHeaderList/TraceHeader[1]/TimeStamp"),
    ]
    assert result.package == example_document()


def test_missing_required_parts_become_empty_values_for_the_checks() -> None:
    start, end = DOC.index("        <edXML:Code>"), DOC.index("</edXML:Code>\n") + len("</edXML:Code>\n")
    result = _parse(DOC[:start] + DOC[end:])
    package = _doc(result)
    assert (package.header.code.number, package.header.code.notation) == ("", "")
    assert {f.code for f in result.findings} == {"edxml-missing-field"}


def test_attachment_encoded_inside_the_envelope_is_misplaced() -> None:
    start = DOC.index("  <AttachmentEncoded>")
    end = DOC.index("</AttachmentEncoded>\n") + len("</AttachmentEncoded>\n")
    text = DOC[:start] + DOC[end:]
    text = _edit(text, "  </edXML:edXMLEnvelope>", DOC[start:end] + "  </edXML:edXMLEnvelope>")
    result = _parse(text)
    assert [f.code for f in result.findings] == [
        "edxml-misplaced-element",
        "edxml-attachment-mismatch",
        "edxml-attachment-mismatch",
    ]
    assert all(a.data is None for a in _doc(result).attachments)


def test_xlink_href_stands_in_for_a_missing_content_id() -> None:
    text = _edit(
        DOC,
        "<edXML:Reference>\n          <edXML:ContentId>cid:7816</edXML:ContentId>",
        '<edXML:Reference xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:7816">',
    )
    result = _parse(text)
    assert result.findings == ()
    assert result.package == example_document()


# --------------------------------------------------------------------------- typed values


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("<edXML:Priority>1</edXML:Priority>", "<edXML:Priority>một</edXML:Priority>", "OtherInfo/Priority"),
        ("<edXML:SteeringType>1</edXML:SteeringType>", "<edXML:SteeringType>1.5</edXML:SteeringType>", "SteeringType"),
        ("<edXML:Type>2</edXML:Type>", "<edXML:Type>99999999999999999999</edXML:Type>", "DocumentType/Type"),
        ("<edXML:Direction>false</edXML:Direction>", "<edXML:Direction>no</edXML:Direction>", "OtherInfo/Direction"),
    ],
)
def test_unreadable_numbers_and_booleans(old: str, new: str, field: str) -> None:
    result = _parse(_edit(DOC, old, new))
    bad = [f for f in result.findings if f.code == "edxml-bad-value"]
    assert [f.where for f in bad] == [f"MessageHeader/{field}"]
    assert result.package is not None


@pytest.mark.parametrize(("wire", "value"), [("True", True), ("FALSE", False), ("1", True), ("0", False)])
def test_boolean_spellings(wire: str, value: bool) -> None:
    result = _parse(_edit(DOC, "<edXML:Direction>false<", f"<edXML:Direction>{wire}<"))
    other = _doc(result).header.other_info
    assert other is not None
    assert other.direction is value
    assert result.findings == ()


def test_signed_integers_are_read() -> None:
    result = _parse(_edit(DOC, "<edXML:TypeDetail>18<", "<edXML:TypeDetail>-3<"))
    assert _doc(result).header.document_type.type_detail == -3


def test_empty_optional_elements_read_as_absent() -> None:
    text = _edit(
        DOC,
        "<edXML:Content>Đề nghị các đơn vị &lt;khẩn&gt; &amp; đúng hạn</edXML:Content>",
        "<edXML:Content>  </edXML:Content>",
    )
    result = _parse(text)
    assert _doc(result).header.content is None
    assert result.findings == ()


def test_status_code_14_reads_as_15() -> None:
    result = _parse(_edit(STATUS, "<edXML:StatusCode>01<", "<edXML:StatusCode>14<"))
    assert isinstance(result.package, StatusPackage)
    assert result.package.status_code == "15"
    assert [(f.code, f.where) for f in result.findings] == [("edxml-status-code-alias", "MessageHeader/StatusCode")]


def test_unknown_status_code_is_kept_for_the_checks() -> None:
    result = _parse(_edit(STATUS, "<edXML:StatusCode>01<", "<edXML:StatusCode>00<"))
    assert isinstance(result.package, StatusPackage)
    assert result.package.status_code == "00"
    assert [f.code for f in result.findings] == ["edxml-bad-value"]


def test_a_big_attachment_over_the_limit_is_reported_not_decoded() -> None:
    package = example_document()
    big = replace(package.attachments[0], data=b"%PDF-" + bytes(300_000))
    raw = build(replace(package, attachments=(big,)))
    result = parse(raw, max_attachment_bytes=100_000, today=TODAY)
    assert [f.code for f in result.findings] == ["edxml-attachment-too-large"]
    assert _doc(result).attachments[0].data is None
    assert parse(raw, today=TODAY).ok


# --------------------------------------------------------------------------- robustness


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_packages_never_raise(data: st.DataObject) -> None:
    source = (DOC if data.draw(st.booleans()) else STATUS).encode()
    start = data.draw(st.integers(0, len(source) - 1))
    length = data.draw(st.integers(0, 40))
    insert = data.draw(st.sampled_from([b"", b"<", b">", b"</edXML:To>", b"<edXML:To>", b"&amp;", b"\xff", b"x"]))
    mangled = source[:start] + insert + source[start + length :]
    result = parse(mangled, today=TODAY)
    assert result.package is not None or result.findings


def test_reading_a_big_attachment_keeps_one_copy_of_its_base64() -> None:
    # Python-side peak while reading a parsed tree: the attachment's base64 text (as big as the
    # package) plus its decoded bytes (3/4 of it). Another copy of either would cross 1.9x.
    package = example_document()
    data = b"%PDF-1.7\n" + bytes(range(256)) * (24 * 1024)
    raw = build(replace(package, attachments=(replace(package.attachments[0], data=data),)))
    root = parse_untrusted(raw)
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        result = parse_tree(root, today=TODAY)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert _doc(result).attachments[0].data == data
    assert peak < 1.9 * len(raw), peak / len(raw)
