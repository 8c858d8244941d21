"""The one door through which untrusted XML enters the gateway.

Every byte string that came from outside (SMTP, IMAP, the HTTP pre-flight, a file named on
the command line) is parsed by ``parse_untrusted`` and nothing else. It refuses, before any
tree is built:

* inputs over ``XMLLimits.max_bytes`` (checked on the length, nothing is read further);
* any document type declaration: no DTD means no internal or external entities, hence no
  XXE, no "billion laughs", no quadratic blow-up and no network or file access;
* nesting deeper than ``max_depth`` and more than ``max_elements`` elements.

Those checks run in a streaming pre-scan with expat, which keeps no tree and has no
text-node size cap. Only a document that passed them is handed to lxml with ``huge_tree``
enabled: base64 attachments are single text nodes far larger than libxml2's 10 MB default,
so the big-tree switch is needed, and it is safe only because depth and entities were
already bounded. The lxml parser itself is also configured never to resolve entities, load a
DTD or touch the network, as a second line of defence.

Failures raise ``XMLRejected`` carrying a finding code from ``gateway.edxml.findings``
(``xml-too-large``, ``xml-forbidden-construct``, ``xml-malformed``); the package parser turns
it into a finding, so a hostile input becomes a verdict, not a crash.
"""

from __future__ import annotations

import xml.parsers.expat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NoReturn

from lxml import etree

__all__ = [
    "DEFAULT_LIMITS",
    "LeafSpans",
    "XMLLimits",
    "XMLRejected",
    "make_parser",
    "parse_untrusted",
    "prescan",
]


@dataclass(frozen=True)
class XMLLimits:
    """Bounds for one untrusted document."""

    max_bytes: int = 64 * 1024 * 1024
    """Whole document, bytes. Real packages with several scanned PDFs reach tens of MB."""
    max_depth: int = 40
    """Element nesting. edXML is 7 deep; legacy SOAP wrappers add a few levels."""
    max_elements: int = 100_000
    """Element count. A package with 100 attachments has about 2 000."""


DEFAULT_LIMITS: Final = XMLLimits()


class XMLRejected(Exception):
    """The bytes are not an XML document we are willing to read.

    Attributes:
        code: finding code (``xml-too-large``, ``xml-forbidden-construct`` or ``xml-malformed``).
        detail: short English description for the finding's ``{detail}``/``{construct}`` field.
        line: 1-based line of the problem when known.
    """

    def __init__(self, code: str, detail: str, line: int | None = None) -> None:
        super().__init__(f"{code}: {detail}" + (f" (line {line})" if line else ""))
        self.code = code
        self.detail = detail
        self.line = line


class _Stop(Exception):
    """Raised inside expat callbacks to abort the pre-scan at once."""

    def __init__(self, rejected: XMLRejected) -> None:
        super().__init__(str(rejected))
        self.rejected = rejected


def make_parser() -> etree.XMLParser:
    """The lxml parser for documents that passed the pre-scan.

    ``huge_tree`` is on (large base64 text nodes); DTD loading, entity resolution and network
    access are off. Comments and processing instructions are kept, because the envelope
    signature check must see every node that is in the document.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=True,
        collect_ids=False,
    )


def prescan(pieces: Iterable[bytes], limits: XMLLimits, *, leaves: LeafSpans | None = None) -> None:
    """The streaming pre-scan (depth, element count, no DTD, well-formed) over ``pieces``.

    The pieces are fed to expat one after the other, the last one as the end of the document
    (a single piece is scanned exactly as a whole document is). The byte count is the caller's
    business (``max_bytes``).

    Args:
        pieces: the document's bytes, in order.
        limits: depth and element-count bounds.
        leaves: when given, collects where the text of certain elements lies (see ``LeafSpans``).

    Raises:
        XMLRejected: a DTD or entity declaration, too deep, too many elements, not well-formed.
    """
    scanner = xml.parsers.expat.ParserCreate()
    scanner.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0
    count = 0

    def stop(code: str, detail: str) -> NoReturn:
        raise _Stop(XMLRejected(code, detail, scanner.CurrentLineNumber))

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal depth, count
        depth += 1
        count += 1
        if depth > limits.max_depth:
            stop("xml-too-large", f"elements nested deeper than {limits.max_depth} levels")
        if count > limits.max_elements:
            stop("xml-too-large", f"more than {limits.max_elements} elements")
        if leaves is not None:
            leaves.start(name, depth, scanner.CurrentByteIndex)

    def end(name: str) -> None:
        nonlocal depth
        if leaves is not None:
            leaves.end(name, depth, scanner.CurrentByteIndex)
        depth -= 1

    def doctype(name: str, *_args: object) -> None:
        stop("xml-forbidden-construct", f"document type declaration <!DOCTYPE {name}>")

    def entity_decl(name: str, *_args: object) -> None:
        stop("xml-forbidden-construct", f"entity declaration {name}")

    def external_ref(*_args: object) -> int:
        stop("xml-forbidden-construct", "reference to an external entity")

    scanner.StartElementHandler = start
    scanner.EndElementHandler = end
    scanner.StartDoctypeDeclHandler = doctype
    scanner.EntityDeclHandler = entity_decl
    scanner.UnparsedEntityDeclHandler = entity_decl
    scanner.ExternalEntityRefHandler = external_ref
    if leaves is not None:
        scanner.CommentHandler = scanner.ProcessingInstructionHandler = leaves.interrupt
        scanner.StartCdataSectionHandler = leaves.interrupt
    try:
        previous: bytes | None = None
        for piece in pieces:  # one piece behind, so that the last is fed as the end
            if previous is not None:
                scanner.Parse(previous, False)
            previous = piece
        scanner.Parse(b"" if previous is None else previous, True)
    except _Stop as stopped:
        raise stopped.rejected from None
    except xml.parsers.expat.ExpatError as exc:
        message = xml.parsers.expat.ErrorString(exc.code) if exc.code else str(exc)
        raise XMLRejected(
            "xml-malformed", f"{message} at line {exc.lineno}, column {exc.offset + 1}", exc.lineno
        ) from None
    finally:
        # The handlers close over the scanner (for line numbers): break the cycle now so the
        # parser's buffers are freed at once rather than at the next garbage collection.
        scanner.StartElementHandler = scanner.EndElementHandler = None
        scanner.StartDoctypeDeclHandler = scanner.EntityDeclHandler = None
        scanner.UnparsedEntityDeclHandler = scanner.ExternalEntityRefHandler = None
        scanner.CommentHandler = scanner.ProcessingInstructionHandler = None
        scanner.StartCdataSectionHandler = None


class LeafSpans:
    """Where the text of named leaf elements lies in the bytes, found by the pre-scan.

    A span ``(tag, end)`` runs from the ``<`` of an element's start tag to the ``<`` of its end
    tag, for elements whose local name is in ``names`` that have no attribute and hold no
    element, comment, processing instruction or CDATA section, and are not inside an element
    whose local name is ``outside``. The text itself (after the start tag's ``>``) may still
    hold references or anything else: the caller checks the bytes.
    """

    def __init__(self, names: frozenset[str], *, outside: str) -> None:
        self.names = names
        self.outside = outside
        self.spans: list[tuple[int, int]] = []
        self._within = 0
        self._open: tuple[int, int] | None = None  # (depth, position of the start tag)

    def start(self, name: str, depth: int, at: int) -> None:
        """An element starts (``name`` as written, prefix and all)."""
        local = name.rpartition(":")[2]
        self._open = None  # a child: its parent is no leaf
        if local == self.outside:
            self._within += 1
        elif local in self.names and not self._within:
            self._open = (depth, at)

    def end(self, name: str, depth: int, at: int) -> None:
        """An element ends."""
        if self._open is not None and self._open[0] == depth and at > self._open[1]:
            self.spans.append((self._open[1], at))
        self._open = None
        if name.rpartition(":")[2] == self.outside:
            self._within -= 1

    def interrupt(self, *_args: object) -> None:
        """A comment, processing instruction or CDATA section: the open element is no plain leaf."""
        self._open = None


def parse_untrusted(raw: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse untrusted bytes into an lxml element tree, or refuse.

    Args:
        raw: the document exactly as received.
        limits: size, depth and element-count bounds.

    Returns:
        The root element.

    Raises:
        XMLRejected: when the input is too large, uses a DTD or entities, nests too deep or
            is not well-formed XML.
    """
    if not isinstance(raw, bytes):
        raise TypeError("parse_untrusted takes the raw bytes as received, not decoded text")
    if len(raw) > limits.max_bytes:
        raise XMLRejected("xml-too-large", f"{len(raw)} bytes, over the limit of {limits.max_bytes}")
    prescan((raw,), limits)
    try:
        return etree.fromstring(raw, make_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        raise XMLRejected("xml-malformed", str(exc.msg or exc), line) from None
