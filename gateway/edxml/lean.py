"""Reading a package without its base64 payloads in the tree (issue 7, P4).

A 67 MB package is almost all ``ContentTransferEncoded`` text. Held in an lxml tree, each
payload is one text node of tens of MB, and libxml2 2.14 canonicalises a text node in one
piece (a normalised copy, then the whole of it in its output buffer, then a Python bytes for
our digest sink): the envelope check alone cost about 1.7x the package on top of the tree.
``read_lean`` reads the bytes in two streamed passes instead, and the tree never holds them:

1. **scan**: every piece is hashed, counted and fed to the hardened pre-scan
   (``xmlsafe.prescan``), which also notes where the text of each plain
   ``ContentTransferEncoded`` leaf lies (no attribute, no child, comment, PI or CDATA, not
   inside the Signature);
2. **filter**: the pieces again; each such text of at least ``OFFLOAD_MIN`` bytes that is
   exactly canonical base64 on one line (the SDK's and our builder's form: spec §7.3 "base64
   with no line breaks") is decoded into memory as it passes, and a marker takes its place in
   the document handed to lxml (an unguessable ``nonce`` and a number: hex digits, so still
   base64 text, on the same line). Any other text stays as it is.

The tree is then exactly the received document but for those text nodes, and each of them is
recoverable byte for byte: canonical base64 of the decoded bytes is the text, and being
base64 it is its own canonical form (C14N escapes only ``& < > \\r``). Its consumers know the
markers: the envelope digest re-encodes a payload where its marker is written
(``gateway.verify.digest``), the attachment reader takes the decoded bytes instead of the text
(``gateway.edxml.parse_attachments``). Nothing else reads those text nodes.

The document handed to lxml is parsed by the same parser as ever (``xmlsafe.make_parser``);
should lxml refuse the filtered document, or a marker not sit where it should, the whole
document is parsed again unfiltered, so findings and messages stay those of
``parse_untrusted``. A payload that proves not canonical while it is decoded makes the filter
start again once, with that text and every later one left in the tree (never more than two
filter passes, whatever the document).
"""

from __future__ import annotations

import binascii
import hashlib
import io
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from gateway.edxml.names import local_name
from gateway.edxml.xmlsafe import LeafSpans, XMLLimits, XMLRejected, make_parser, prescan

__all__ = ["OFFLOAD_MIN", "LeanTree", "Pieces", "Streamed", "read_lean"]

Pieces = Callable[[], Iterable[bytes]]
"""The package's bytes in order, from the start, each time it is called (read twice)."""


@dataclass(frozen=True)
class Streamed:
    """A package given as pieces, e.g. decoded from the spooled mail as it is read again.

    ``pieces`` must give the same bytes each time it is called.
    """

    pieces: Pieces


OFFLOAD_MIN: Final = 4096
"""Shortest payload text taken out of the tree (bytes of base64)."""

_PAYLOAD = "ContentTransferEncoded"
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_STEP = 1024 * 1024
"""Base64 bytes checked and decoded at a time."""
_TAG_STOP = re.compile(rb"[>\"']")
_LAST_QUAD = re.compile(rb"[A-Za-z0-9+/]{2}(?:==|[A-Za-z0-9+/]=|[A-Za-z0-9+/]{2})")


@dataclass(frozen=True)
class LeanTree:
    """A package as ``read_lean`` found it."""

    sha256: str
    """SHA-256 of the package bytes (hex)."""
    size: int
    root: etree._Element | None
    """The tree, payload texts replaced by markers; ``None`` when ``rejected``."""
    rejected: XMLRejected | None = None
    payloads: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """Marker text → the decoded payload whose base64 the marker stands for."""


def read_lean(pieces: Pieces, limits: XMLLimits) -> LeanTree:
    """Read a package's bytes into a tree that does not hold its big base64 payloads.

    Args:
        pieces: gives the bytes in order (called once per pass; two or three passes).
        limits: the XML limits (``max_bytes`` is checked on the total length first, as
            ``parse_untrusted`` does).

    Returns:
        The hash, the size and the tree with its payloads, or what the bytes were refused for
        (the same ``XMLRejected`` ``parse_untrusted`` raises for those bytes).
    """
    digest = hashlib.sha256()
    size = 0
    leaves = LeafSpans(frozenset({_PAYLOAD}), outside="Signature")

    def counted() -> Iterator[bytes]:
        nonlocal size
        for piece in pieces():
            digest.update(piece)
            size += len(piece)
            if size <= limits.max_bytes:
                yield piece
        # over the limit: the pieces are still hashed and counted, no longer scanned

    rejected: XMLRejected | None = None
    stream = counted()
    try:
        prescan(stream, limits, leaves=leaves)
    except XMLRejected as exc:
        rejected = exc
        for _ in stream:  # hash and count the rest
            pass
    sha256 = digest.hexdigest()
    if size > limits.max_bytes:
        rejected = XMLRejected("xml-too-large", f"{size} bytes, over the limit of {limits.max_bytes}")
    if rejected is not None:
        return LeanTree(sha256, size, None, rejected)
    try:
        root, payloads = _filtered_tree(pieces, leaves.spans)
    except XMLRejected as exc:
        return LeanTree(sha256, size, None, exc)
    return LeanTree(sha256, size, root, None, payloads)


class _NotCanonical(Exception):
    """A payload text is not canonical one-line base64: it stays in the tree."""


class _Payload:
    """Decodes one payload text as it passes, proving it canonical one-line base64."""

    def __init__(self, length: int) -> None:
        self._out = io.BytesIO()
        self._carry = b""
        # The text's length is known (the scan found it): one buffer of the decoded size at
        # once, not a growing one (each growth may leave the old block behind in the heap).
        if length >= 4:
            self._out.seek(length // 4 * 3 - 1)
            self._out.write(b"\0")
            self._out.seek(0)

    def feed(self, text: memoryview) -> None:
        for start in range(0, len(text), _STEP):  # bounded copies, whatever the piece's size
            data = self._carry + text[start : start + _STEP]
            whole = max(0, (len(data) - 4) // 4 * 4)  # the last quad (padding) waits for the end
            if data.translate(None, _ALPHABET) and data[:whole].translate(None, _ALPHABET):
                raise _NotCanonical
            self._out.write(binascii.a2b_base64(memoryview(data)[:whole], strict_mode=True))
            self._carry = data[whole:]

    def finish(self) -> bytes:
        last = self._carry
        if not _LAST_QUAD.fullmatch(last):
            raise _NotCanonical
        decoded = binascii.a2b_base64(last, strict_mode=True)
        if binascii.b2a_base64(decoded, newline=False) != last:  # padding bits not zero
            raise _NotCanonical
        self._out.write(decoded)
        self._out.truncate()  # padding: one or two bytes fewer than reserved
        return self._out.getvalue()  # BytesIO hands over its buffer: no copy


def _filtered_tree(pieces: Pieces, spans: list[tuple[int, int]]) -> tuple[etree._Element, dict[str, bytes]]:
    nonce = secrets.token_hex(16)
    document, payloads = b"", dict[str, bytes]()
    for attempt in range(3):
        if not spans:
            break
        try:
            document, payloads = _filter(pieces, spans, nonce)
        except _Retry as retry:
            spans = spans[: retry.index] if attempt == 0 else []  # the bytes changed meanwhile
            continue
        break
    if not payloads:
        del document
        return _parse(_whole(pieces)), {}
    try:
        root = etree.fromstring(document, make_parser())
    except etree.XMLSyntaxError:
        root = None
    del document
    if root is None or not _markers_in_place(root, payloads):
        return _parse(_whole(pieces)), {}  # as parse_untrusted would (its error, if any)
    return root, payloads


def _whole(pieces: Pieces) -> bytes:
    """The bytes in one object (the piece itself when there is only one)."""
    given = iter(pieces())
    first = next(given, b"")
    second = next(given, None)
    if second is None:
        return bytes(first)  # the same object for bytes
    buffer = io.BytesIO()
    buffer.write(first)
    del first
    buffer.write(second)
    del second
    for piece in given:
        buffer.write(piece)
    return buffer.getvalue()


class _Retry(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _filter(pieces: Pieces, spans: list[tuple[int, int]], nonce: str) -> tuple[bytes, dict[str, bytes]]:
    """The document with each canonical payload text replaced by its marker, and the payloads.

    Raises:
        _Retry: span ``index`` is not canonical base64 (filter again with the spans before it).
    """
    out = io.BytesIO()
    payloads: dict[str, bytes] = {}
    index = 0  # the next span
    state = "copy"  # copy (up to a span's tag), tag (up to its ">"), text (decoding)
    quote: bytes | None = None  # inside an attribute value of the tag, delimited by this
    payload = _Payload(0)  # replaced at each text
    at = 0  # offset of the current piece in the document
    for piece in pieces():
        view = memoryview(piece)
        offset = 0
        while offset < len(view):
            if state == "copy":
                stop = spans[index][0] - at if index < len(spans) else len(view)
                if stop >= len(view):
                    out.write(view[offset:])
                    break
                out.write(view[offset:stop])
                offset, state = stop, "tag"
            elif state == "tag":
                close, quote = _tag_end(piece, offset, quote)
                if close < 0:
                    out.write(view[offset:])
                    break
                out.write(view[offset : close + 1])
                offset = close + 1
                if spans[index][1] - (at + offset) >= OFFLOAD_MIN:
                    state, payload = "text", _Payload(spans[index][1] - (at + offset))
                else:
                    state, index = "copy", index + 1
            else:
                stop = min(len(view), spans[index][1] - at)
                try:
                    payload.feed(view[offset:stop])
                    if stop < len(view):
                        marker = f"{nonce}{len(payloads):08d}"
                        payloads[marker] = payload.finish()
                        out.write(marker.encode("ascii"))
                        state, index = "copy", index + 1
                except _NotCanonical:
                    raise _Retry(index) from None
                offset = stop
        at += len(view)
    if state == "text":  # the document ended inside a text: cannot be (it passed the scan)
        raise _Retry(index)
    return out.getvalue(), payloads


def _tag_end(piece: bytes, offset: int, quote: bytes | None) -> tuple[int, bytes | None]:
    """Where the start tag ends (its ``>``, -1 when not in ``piece``) and the quote still open.

    The tag passed the pre-scan, so it is well-formed: an attribute value is delimited by the
    same quote on both sides and holds no such quote; a ``>`` outside values ends the tag.
    """
    while True:
        if quote is not None:
            close = piece.find(quote, offset)
            if close < 0:
                return -1, quote
            offset, quote = close + 1, None
        found = _TAG_STOP.search(piece, offset)
        if found is None:
            return -1, None
        if found.group() == b">":
            return found.start(), None
        offset, quote = found.end(), found.group()


def _markers_in_place(root: etree._Element, payloads: Mapping[str, bytes]) -> bool:
    """Each marker is the whole text of a childless ``ContentTransferEncoded``, once."""
    found = 0
    for element in root.iter():
        text = element.text
        if text is not None and text in payloads:
            if not isinstance(element.tag, str) or local_name(element.tag) != _PAYLOAD or len(element):
                return False
            found += 1
    return found == len(payloads)


def _parse(document: bytes) -> etree._Element:
    """The unfiltered document, exactly as ``parse_untrusted`` parses one that passed its scan."""
    try:
        return etree.fromstring(document, make_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        raise XMLRejected("xml-malformed", str(exc.msg or exc), line) from None
