"""``read_lean``: the tree without its big base64 payloads, and nothing else changed (issue 7, P4).

Every case compares with the plain reading of the same bytes (``parse_untrusted``, ``parse``):
the same refusal (code, detail, line) whatever the pieces the bytes come in, the same package
and findings, and the payloads out of the tree only where their text is canonical one-line
base64 outside the Signature.
"""

from __future__ import annotations

import base64
import copy
import os
import tracemalloc
from collections.abc import Iterator

import pytest
from lxml import etree

from gateway.edxml.lean import OFFLOAD_MIN, read_lean
from gateway.edxml.names import local_name
from gateway.edxml.parse import parse, parse_tree
from gateway.edxml.xmlsafe import XMLLimits, XMLRejected, parse_untrusted
from gateway.verify.envelope import read_package
from tests.samples import unsigned_package

LIMITS = XMLLimits()


def payload_texts(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str) and local_name(e.tag) == "ContentTransferEncoded"]


def package_with(*texts: str) -> bytes:
    """The SDK sample with one Attachment per text (copies of its own), holding that text."""
    root = parse_untrusted(unsigned_package())
    first = payload_texts(root)[0].getparent()
    assert first is not None
    holder = first.getparent()
    assert holder is not None
    attachments = [first] + [copy.deepcopy(first) for _ in texts[1:]]
    for number, (attachment, text) in enumerate(zip(attachments, texts, strict=True)):
        if attachment is not first:
            holder.append(attachment)
            for child in attachment:
                if local_name(str(child.tag)) == "ContentId":
                    child.text = f"cid:extra{number}"
        payload_texts(attachment)[0].text = text
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def pieces_of(raw: bytes, size: int) -> Iterator[bytes]:
    return (raw[at : at + size] for at in range(0, len(raw), size))


def canonical(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode("ascii")


def same_as_plain(raw: bytes) -> None:
    lean = read_lean(lambda: (raw,), LIMITS)
    assert lean.root is not None
    assert parse_tree(lean.root, payloads=lean.payloads) == parse(raw)


def test_a_big_canonical_payload_leaves_the_tree_and_reads_the_same() -> None:
    data = os.urandom(100_000)
    raw = package_with(base64.b64encode(data).decode("ascii"))
    lean = read_lean(lambda: (raw,), LIMITS)
    assert lean.root is not None
    assert list(lean.payloads.values()) == [data]
    (text,) = payload_texts(lean.root)
    assert text.text in lean.payloads
    assert len(etree.tostring(lean.root)) < len(raw) - len(data)
    same_as_plain(raw)


@pytest.mark.parametrize("size", [1, 3, 1000, 4096, 1 << 20])
def test_pieces_of_any_size_read_the_same(size: int) -> None:
    raw = package_with(canonical(30_000), canonical(50_000))
    whole = read_lean(lambda: (raw,), LIMITS)
    lean = read_lean(lambda: pieces_of(raw, size), LIMITS)
    assert lean.sha256 == whole.sha256
    assert lean.size == len(raw)
    assert sorted(lean.payloads.values()) == sorted(whole.payloads.values())
    assert len(lean.payloads) == 2
    assert lean.root is not None
    assert parse_tree(lean.root, payloads=lean.payloads) == parse(raw)


@pytest.mark.parametrize(
    "text",
    [
        "\n".join(canonical(60_000)[i : i + 76] for i in range(0, 80_000, 76)),  # line breaks
        canonical(30_000) + "&#65;",  # a character reference
        canonical(30_000)[:-1],  # not a multiple of 4
        canonical(30_001)[:-2] + "R=",  # padding bits set
        "A" * (OFFLOAD_MIN - 4),  # short
    ],
    ids=["wrapped", "reference", "length", "padding-bits", "short"],
)
def test_other_texts_stay_in_the_tree(text: str) -> None:
    raw = package_with(text)
    lean = read_lean(lambda: pieces_of(raw, 1000), LIMITS)
    assert lean.payloads == {}
    same_as_plain(raw)


def test_a_bad_text_keeps_the_later_ones_but_not_the_earlier_ones_in_the_tree() -> None:
    """Never more than two filter passes: after a text that proves not canonical, every later
    text stays in the tree; the earlier ones stay out of it."""
    first, bad, last = canonical(20_000), canonical(20_000) + "!", canonical(20_000)
    raw = package_with(first, bad, last)
    lean = read_lean(lambda: pieces_of(raw, 4096), LIMITS)
    assert list(lean.payloads.values()) == [base64.b64decode(first)]
    same_as_plain(raw)


def test_a_text_with_a_comment_or_inside_a_signature_stays() -> None:
    text = canonical(20_000)
    raw = package_with(text).replace(text.encode(), text[:100].encode() + b"<!-- x -->" + text[100:].encode())
    assert read_lean(lambda: (raw,), LIMITS).payloads == {}
    same_as_plain(raw)
    wrapped = package_with(canonical(20_000)).replace(
        b"<AttachmentEncoded", b"<ds:Signature xmlns:ds='urn:s'><AttachmentEncoded"
    )
    wrapped = wrapped.replace(b"</AttachmentEncoded>", b"</AttachmentEncoded></ds:Signature>")
    assert read_lean(lambda: (wrapped,), LIMITS).payloads == {}


def test_an_attribute_holding_a_quote_and_a_closing_bracket_is_read_past() -> None:
    text = canonical(20_000)
    raw = package_with(text).replace(
        b"<edXML:ContentTransferEncoded ", b"<edXML:ContentTransferEncoded a='\">' b=\"'>\" "
    )
    lean = read_lean(lambda: pieces_of(raw, 7), LIMITS)
    assert list(lean.payloads.values()) == [base64.b64decode(text)]
    same_as_plain(raw)


HOSTILE = [
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
    b"<a>" * 50 + b"</a>" * 50,
    b"<edXML><x></edXML>",
    b"<edXML>" + b"Q" * 10_000 + b"</edXML",
    b"",
    b"\xff\xfe<\x00a\x00>\x00",
]


@pytest.mark.parametrize("raw", HOSTILE)
@pytest.mark.parametrize("size", [1, 5, 4096, 1 << 30])
def test_refusals_are_those_of_parse_untrusted(raw: bytes, size: int) -> None:
    with pytest.raises(XMLRejected) as plain:
        parse_untrusted(raw)
    lean = read_lean(lambda: pieces_of(raw, size), LIMITS)
    assert lean.root is None
    assert lean.rejected is not None
    refused = lean.rejected
    assert (refused.code, refused.detail, refused.line) == (plain.value.code, plain.value.detail, plain.value.line)


def test_too_large_is_counted_on_every_piece_before_anything_else() -> None:
    raw = b"<edXML><x></edXML>" + b" " * 200
    limits = XMLLimits(max_bytes=100)
    with pytest.raises(XMLRejected) as plain:
        parse_untrusted(raw, limits)
    lean = read_lean(lambda: pieces_of(raw, 10), limits)
    assert lean.rejected is not None
    assert lean.rejected.code == "xml-too-large"
    assert lean.rejected.detail == plain.value.detail
    assert lean.size == len(raw)


def test_reading_a_package_costs_about_its_decoded_attachment() -> None:
    """Python-side peak while reading a package with one 8 MB attachment (libxml2's own memory
    is not traced: the tree and the canonical form cost more again before this change)."""
    data = os.urandom(8 << 20)
    raw = package_with(base64.b64encode(data).decode("ascii"))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        read = read_package(raw, max_attachment_bytes=16 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read.parsed.package is not None
    assert peak < 1.3 * len(data), f"peak {peak / len(data):.2f}x the attachment"
