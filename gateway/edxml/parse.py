"""The tolerant edXML parser: raw bytes or a parsed tree in, a package and findings out.

``parse`` is the entry point for bytes from outside: it goes through the one hardened XML
door (``xmlsafe.parse_untrusted``). ``parse_tree`` reads an element tree that is already
parsed; the envelope-signature verifier calls it on the signed tree, so business fields are
read only from what the signature covers (HOUSE.md rule 11). Neither raises for bad input:
a package that cannot be read is a ``ParseResult`` with ``package=None`` and a finding that
says why (spec/edxml.md §7: tolerant on read).

Reading order: root ``edXML`` → ``edXMLEnvelope`` → ``edXMLHeader`` (``MessageHeader`` or
``Status``, ``TraceHeaderList``, ``Signature`` last) and ``edXMLBody/edXMLManifest``, plus
``AttachmentEncoded`` beside the envelope. Kind (spec §7.2): a status package when the
header has ``StatusCode`` and the package has neither body nor ``AttachmentEncoded``; a
document package otherwise. The findings of ``gateway.edxml.checks`` come last.

The tree is never modified or serialised again, and attachments are decoded one at a time
(see ``gateway.edxml.attachments``), so a 50 MB package costs its tree plus one attachment.
A tree from ``gateway.edxml.lean.read_lean`` (how received packages are read) holds markers
instead of its big payload texts; ``parse_tree(payloads=...)`` takes their decoded bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from lxml import etree

from gateway.edxml import findings
from gateway.edxml.checks import check_package
from gateway.edxml.findings import Finding, Severity
from gateway.edxml.model import DocumentPackage, StatusPackage
from gateway.edxml.names import DSIG_NS, LEGACY_NS, QCVN_NS, local_name, namespace_of
from gateway.edxml.parse_attachments import read_attachments, report_misplaced_payload
from gateway.edxml.parse_elements import Node, Reader, known
from gateway.edxml.parse_header import read_message_header, read_status, read_trace_list
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, XMLLimits, XMLRejected, parse_untrusted

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "ParseResult",
    "parse",
    "parse_tree",
    "rejected",
]

DEFAULT_MAX_ATTACHMENT_BYTES: Final = 48 * 1024 * 1024
"""Largest decoded attachment accepted by default (the XML limit is 64 MB of base64)."""

_ROOT_CHILDREN = known("edXMLEnvelope AttachmentEncoded")
_ENVELOPE_CHILDREN = known("edXMLHeader edXMLBody AttachmentEncoded")
_HEADER_CHILDREN = known("MessageHeader TraceHeaderList Signature", Status="MessageHeader")


@dataclass(frozen=True)
class ParseResult:
    """What the parser made of a package.

    ``package`` is ``None`` when the input is not a readable edXML package; ``findings`` then
    say why. ``root`` is the parsed tree (``None`` when the bytes were not XML) for the
    signature verifier; it takes no part in equality.
    """

    package: DocumentPackage | StatusPackage | None
    findings: tuple[Finding, ...]
    root: etree._Element | None = field(default=None, compare=False, repr=False)

    @property
    def parseable(self) -> bool:
        """Whether a package could be read at all."""
        return self.package is not None

    @property
    def ok(self) -> bool:
        """Readable and without error-severity findings."""
        return self.package is not None and not self.errors

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The error-severity findings."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def codes(self) -> frozenset[str]:
        """The distinct finding codes."""
        return frozenset(f.code for f in self.findings)


def parse(
    raw: bytes,
    *,
    limits: XMLLimits = DEFAULT_LIMITS,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    today: date | None = None,
) -> ParseResult:
    """Parse untrusted bytes into an edXML package.

    Args:
        raw: the package exactly as received.
        limits: XML size, depth and element-count bounds.
        max_attachment_bytes: largest decoded (and unzipped) attachment accepted.
        today: Vietnam calendar day, for the checks' "date in the future" rule.

    Returns:
        The package (or ``None``) with every finding; never raises for bad input.

    Raises:
        TypeError: when ``raw`` is not ``bytes`` (a programming error, not bad input).
    """
    try:
        root = parse_untrusted(raw, limits)
    except XMLRejected as refused:
        return rejected(refused)
    return parse_tree(root, max_attachment_bytes=max_attachment_bytes, today=today)


def rejected(refused: XMLRejected) -> ParseResult:
    """The result for bytes the hardened parser refused: no package, the one finding saying why.

    Args:
        refused: what ``parse_untrusted`` (or ``gateway.edxml.lean.read_lean``) refused them for.

    Returns:
        ``package=None``, ``root=None`` and the ``xml-*`` finding.
    """
    where = f"line {refused.line}" if refused.line else "document"
    finding = findings.kind(refused.code)(where, detail=refused.detail, construct=refused.detail)
    return ParseResult(package=None, findings=(finding,), root=None)


def parse_tree(
    root: etree._Element,
    *,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    today: date | None = None,
    payloads: Mapping[str, bytes] | None = None,
) -> ParseResult:
    """Read a package from an already parsed tree (e.g. the one a signature covers).

    Args:
        root: the root element; it is read, never modified.
        max_attachment_bytes: largest decoded (and unzipped) attachment accepted.
        today: Vietnam calendar day, for the checks' "date in the future" rule.
        payloads: for a tree from ``gateway.edxml.lean.read_lean``: the decoded payloads its
            marker texts stand for.

    Returns:
        The package (or ``None``) with the parser's findings followed by the checks'.
    """
    reader = Reader()
    package = _read_package(reader, root, max_attachment_bytes, payloads or {})
    found = list(reader.findings)
    if package is not None:
        found.extend(check_package(package, today=today))
    return ParseResult(package=package, findings=tuple(found), root=root)


def _not_edxml(reader: Reader, where: str, detail: str) -> None:
    reader.add(findings.NOT_EDXML(where, detail=detail))


def _read_package(
    reader: Reader, root: etree._Element, limit: int, payloads: Mapping[str, bytes]
) -> DocumentPackage | StatusPackage | None:
    if not isinstance(root.tag, str) or local_name(root.tag) != "edXML":
        found = local_name(root.tag) if isinstance(root.tag, str) else "a non-element node"
        _not_edxml(reader, "edXML", f"the root element is <{found}>, not <edXML>")
        return None
    # A root in another namespace (a typo in the URI, a private schema) is read all the same
    # and reported: the local names decide whether the package can be understood.
    reader.check_namespace(root, "edXML")
    top = reader.children(Node(root, ""), _ROOT_CHILDREN)
    envelope = top.one("edXMLEnvelope")
    if envelope is None:
        _not_edxml(reader, "edXML", "there is no edXMLEnvelope")
        return None
    outer = reader.children(Node(envelope.element, ""), _ENVELOPE_CHILDREN)
    header = outer.one("edXMLHeader")
    if header is None:
        _not_edxml(reader, "edXMLEnvelope", "there is no edXMLHeader")
        return None
    parts = reader.children(Node(header.element, ""), _HEADER_CHILDREN)
    _check_signature(reader, header.element, parts.one("Signature"))
    message = parts.one("MessageHeader")
    if message is None:
        _not_edxml(reader, "edXMLHeader", "there is no MessageHeader")
        return None
    body = outer.one("edXMLBody")
    report_misplaced_payload(reader, outer.one("AttachmentEncoded"))
    encoded = top.one("AttachmentEncoded")
    has_status = any(isinstance(child.tag, str) and local_name(child.tag) == "StatusCode" for child in message.element)
    if has_status and body is None and encoded is None:
        stray = parts.one("TraceHeaderList")
        if stray is not None:
            detail = "a status package has no TraceHeaderList; it was not read"
            reader.add(findings.MISPLACED_ELEMENT(stray.path, field=stray.path, detail=detail))
        return read_status(reader, message)
    header_model = read_message_header(reader, message)
    trace_node = parts.one("TraceHeaderList")
    trace = None if trace_node is None else read_trace_list(reader, trace_node)
    attachments = read_attachments(reader, body, encoded, limit, payloads)
    return DocumentPackage(header=header_model, trace=trace, attachments=attachments)


def _check_signature(reader: Reader, header: etree._Element, signature: Node | None) -> None:
    """Signature: XMLDSig namespace expected (SDK quirk tolerated), last child of the header."""
    if signature is None:
        return
    namespace = namespace_of(signature.element.tag)
    if namespace in (QCVN_NS, LEGACY_NS, None):
        reader.add(findings.SIGNATURE_NAMESPACE(signature.path))
    elif namespace != DSIG_NS:
        reader.check_namespace(signature.element, signature.path)
    last = [child for child in header if isinstance(child.tag, str)][-1]
    if last is not signature.element:
        detail = "it must be the last child of edXMLHeader"
        reader.add(findings.MISPLACED_ELEMENT(signature.path, field=signature.path, detail=detail))
