"""Reading attachments: manifest ↔ payload, base64, the SDK's zip, one at a time (spec §1.7).

The body manifest (``edXMLManifest/Reference``) and the payload
(``AttachmentEncoded/Attachment``, a sibling of the envelope) are joined on the bare ContentId
and merged into ``model.Attachment`` values in manifest order, payload-only ones after. Each
payload is then handled one at a time, so that only one attachment's base64 text is alive at
once (lxml builds a new Python string for every ``.text``; the text is fetched lazily):

1. size-checked on the base64 length *before* decoding (``len * 3 / 4 > limit``);
2. base64-decoded, tolerating line breaks and white space (strict and copy-free in the common
   one-line case);
3. unwrapped when the VNPT SDK zipped it (``attachments.travels_zipped`` and the bytes start
   with ``PK\\x03\\x04``): exactly one entry, whose declared size is checked against the
   limit and which is read with a bounded read, so a zip bomb costs at most ``limit + 1``
   bytes whatever its headers say;
4. sniffed (``attachments.type_contradiction``).

Findings: ``edxml-attachment-mismatch`` (one side only, duplicate ContentId, name or type
disagreeing), ``-decode``, ``-too-large``, ``-type``; the ``where`` is a label such as
``attachment "file.pdf" (cid:209)``.
"""

from __future__ import annotations

import binascii
import io
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from gateway.edxml import findings
from gateway.edxml.attachments import (
    ZIP_MAGIC,
    bare_content_id,
    base_type,
    label,
    travels_zipped,
    type_contradiction,
)
from gateway.edxml.findings import Finding
from gateway.edxml.model import Attachment
from gateway.edxml.names import XLINK_NS
from gateway.edxml.parse_elements import Node, Reader, direct_text, known

__all__ = [
    "ManifestEntry",
    "PayloadEntry",
    "merge",
    "read_attachments",
    "report_misplaced_payload",
]

_BODY_CHILDREN = known("edXMLManifest AttachmentEncoded")
_MANIFEST_CHILDREN = known("Reference*")
_REFERENCE_CHILDREN = known("ContentId ContentType Description AttachmentName")
_ENCODED_CHILDREN = known("Attachment*")
# FieldName and MimeType: written empty by the VNPT SDK, meaning unknown; read and ignored.
_ATTACHMENT_CHILDREN = known(
    "ContentId AttachmentName Description ContentType FieldName MimeType ContentTransferEncoded"
)
_XLINK_HREF: Final = f"{{{XLINK_NS}}}href"


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class _Target:
    """Who a finding is about: ``where`` is the label, ``field`` the name shown in the text."""

    where: str
    field: str


class _Refused(Exception):
    """One payload could not be turned into a file; carries the finding to report."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message_en)
        self.finding = finding


# Base64 alphabet with white space anywhere and padding only at the end.
_LOOSE_BASE64 = re.compile(r"[A-Za-z0-9+/\s]*(?:=\s*){0,2}")


def _decode_base64(text: str, target: _Target, limit: int) -> bytes:
    if len(text) * 3 // 4 > limit:
        # Line-broken base64 over-estimates by its line breaks; count them only when it matters.
        white = sum(text.count(c) for c in " \t\r\n")
        if (len(text) - white) * 3 // 4 > limit:
            raise _Refused(findings.ATTACHMENT_TOO_LARGE(target.where, field=target.field, limit=limit))
    try:
        # The common case (SDK and our builder): one line, no white space. Strict mode checks
        # the alphabet and the padding without copying the text.
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        if not _LOOSE_BASE64.fullmatch(text):
            detail = f"not base64 text: {_preview(text)}"
            raise _Refused(findings.ATTACHMENT_DECODE(target.where, field=target.field, detail=detail)) from None
    try:
        # Non-strict mode skips white space; the regex above already refused everything else
        # it would silently skip, and padding in the middle.
        return binascii.a2b_base64(text)
    except ValueError as exc:
        detail = f"bad base64: {exc}"
        raise _Refused(findings.ATTACHMENT_DECODE(target.where, field=target.field, detail=detail)) from None


def _decoded(data: bytes, target: _Target, limit: int) -> bytes:
    """Bytes already decoded from canonical one-line base64: ``_decode_base64``'s size check."""
    if -(-len(data) // 3) * 3 > limit:  # the base64 length, times 3 / 4
        raise _Refused(findings.ATTACHMENT_TOO_LARGE(target.where, field=target.field, limit=limit))
    return data


def _preview(text: str) -> str:
    return repr(text[:40].strip() + ("…" if len(text) > 40 else ""))


def _unzip_single(blob: bytes, target: _Target, limit: int) -> bytes:
    """The one entry of an SDK-wrapped payload, read with a bounded read."""

    def refuse(detail: str) -> _Refused:
        return _Refused(findings.ATTACHMENT_DECODE(target.where, field=target.field, detail=detail))

    too_large = _Refused(findings.ATTACHMENT_TOO_LARGE(target.where, field=target.field, limit=limit))
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            entries = archive.infolist()
            if len(entries) != 1:
                raise refuse(f"the zip holds {len(entries)} entries, not one")
            entry = entries[0]
            if entry.file_size > limit:
                raise too_large
            with archive.open(entry) as stream:
                # Never trust the header alone: read at most one byte past the limit.
                data = stream.read(limit + 1)
    except _Refused:
        raise
    # RuntimeError: encrypted entry; NotImplementedError: unsupported compression method.
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise refuse(f"broken zip: {exc}") from None
    if len(data) > limit:
        raise too_large
    if len(data) != entry.file_size:
        raise refuse("the zip entry is not the size it declares")
    return data


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class ManifestEntry:
    """One ``edXMLManifest/Reference`` as read (text normalised, ContentId as written)."""

    content_id: str | None
    name: str | None
    content_type: str | None
    description: str | None
    where: str
    """Path of the Reference element."""


@dataclass(frozen=True)
class PayloadEntry:
    """One ``AttachmentEncoded/Attachment`` as read; the base64 text is fetched lazily."""

    content_id: str | None
    name: str | None
    content_type: str | None
    description: str | None
    where: str
    """Path of the Attachment element."""
    encoded: Callable[[], str | bytes | None]
    """Returns the ContentTransferEncoded text (``None`` when the element is absent), or the
    bytes it decodes to when the reader took them out of the tree (``gateway.edxml.lean``: the
    text was canonical base64). Called once, when this attachment is decoded, so only one
    attachment's text is alive at a time."""


def _target(name: str | None, content_id: str) -> _Target:
    return _Target(label(name, content_id), f'"{name}"' if name else f"cid:{content_id}")


def _materialise(meta: Attachment, payload: PayloadEntry, limit: int, out: list[Finding]) -> Attachment:
    """``meta`` with the payload decoded into ``data`` (``None`` and a finding on failure)."""
    target = _target(meta.name, meta.content_id)
    data: bytes | None = None
    zipped = False
    text = payload.encoded()
    try:
        if text is None:
            detail = "no ContentTransferEncoded element"
            raise _Refused(findings.ATTACHMENT_DECODE(target.where, field=target.field, detail=detail))
        data = _decoded(text, target, limit) if isinstance(text, bytes) else _decode_base64(text, target, limit)
        del text  # the base64 text can be tens of MB; let it go before unzipping
        if data.startswith(ZIP_MAGIC) and travels_zipped(meta.name, meta.content_type):
            wrapped, data = data, None
            data = _unzip_single(wrapped, target, limit)
            zipped = True
    except _Refused as refused:
        out.append(refused.finding)
        data = None
    attachment = replace(meta, data=data, zipped=zipped)
    contradiction = type_contradiction(attachment, target.where, target.field)
    if contradiction is not None:
        out.append(contradiction)
    return attachment


def merge(
    manifest: Sequence[ManifestEntry], payloads: Sequence[PayloadEntry], *, max_bytes: int
) -> tuple[tuple[Attachment, ...], tuple[Finding, ...]]:
    """Join manifest and payload into attachments, decoding one payload at a time.

    The manifest decides the order; payload-only attachments follow in payload order. Where
    both sides give a name, type or description the manifest's is used (both are inside the
    signed document; the manifest is the part readers display).

    Args:
        manifest: the Reference entries in document order.
        payloads: the Attachment entries in document order.
        max_bytes: the largest decoded (and unzipped) attachment accepted.

    Returns:
        The attachments (``data`` is ``None`` for any that could not be decoded) and the
        findings: ``edxml-attachment-mismatch``, ``-decode``, ``-too-large`` and ``-type``.
    """
    out: list[Finding] = []

    def mismatch(name: str | None, content_id: str, detail: str) -> None:
        target = _target(name, content_id)
        out.append(findings.ATTACHMENT_MISMATCH(target.where, field=target.field, detail=detail))

    by_id: dict[str, PayloadEntry] = {}
    for payload in payloads:
        key = bare_content_id(payload.content_id)
        if key in by_id:
            mismatch(payload.name, key, f"{payload.where} reuses the ContentId of another payload; ignored")
        else:
            by_id[key] = payload
    result: list[Attachment] = []
    listed: set[str] = set()
    for entry in manifest:
        key = bare_content_id(entry.content_id)
        if key in listed:
            mismatch(entry.name, key, f"{entry.where} lists the ContentId a second time; ignored")
            continue
        listed.add(key)
        match = by_id.get(key)
        if match is None:
            mismatch(entry.name, key, "listed in the manifest, but no payload carries it")
        else:
            if entry.name and match.name and entry.name != match.name:
                mismatch(entry.name, key, f'the payload names it "{match.name}"')
            declared = base_type(entry.content_type), base_type(match.content_type)
            if all(declared) and declared[0] != declared[1]:
                mismatch(entry.name, key, f"the payload declares the type {match.content_type}")
        meta = Attachment(
            content_id=key,
            name=entry.name or (match.name if match else None) or "",
            content_type=entry.content_type or (match.content_type if match else None) or "",
            description=entry.description or (match.description if match else None),
        )
        result.append(meta if match is None else _materialise(meta, match, max_bytes, out))
    for key, payload in by_id.items():
        if key not in listed:
            mismatch(payload.name, key, "the payload is not listed in the manifest")
            meta = Attachment(
                content_id=key,
                name=payload.name or "",
                content_type=payload.content_type or "",
                description=payload.description,
            )
            result.append(_materialise(meta, payload, max_bytes, out))
    return tuple(result), tuple(out)


# --------------------------------------------------------------------------- the tree


def report_misplaced_payload(reader: Reader, node: Node | None) -> None:
    """Report an ``AttachmentEncoded`` found anywhere but directly under the root.

    Args:
        reader: the package reader.
        node: the element found inside the envelope or the body, or ``None``.
    """
    if node is not None:
        detail = "AttachmentEncoded belongs directly under the root edXML; it was not read here"
        reader.add(findings.MISPLACED_ELEMENT(node.path, field=node.path, detail=detail))


def _text_source(node: Node | None, payloads: Mapping[str, bytes]) -> Callable[[], str | bytes | None]:
    def read() -> str | bytes | None:
        if node is None:
            return None
        element = node.element
        if len(element) == 0:
            text = element.text or ""
            return payloads.get(text, text)
        return direct_text(element)  # a comment split the text node

    return read


def read_attachments(
    reader: Reader,
    body: Node | None,
    encoded: Node | None,
    limit: int,
    decoded: Mapping[str, bytes] | None = None,
) -> tuple[Attachment, ...]:
    """The attachments of a document package, decoded one at a time.

    Args:
        reader: the package reader (collects the findings).
        body: the ``edXMLBody`` element, if any.
        encoded: the root-level ``AttachmentEncoded`` element, if any.
        limit: the largest decoded (and unzipped) attachment accepted.
        decoded: marker text → decoded payload, for a tree from ``gateway.edxml.lean``.

    Returns:
        The attachments in manifest order, payload-only ones after.
    """
    manifest: list[ManifestEntry] = []
    if body is not None:
        inner = reader.children(Node(body.element, "edXMLBody"), _BODY_CHILDREN)
        report_misplaced_payload(reader, inner.one("AttachmentEncoded"))
        listing = inner.one("edXMLManifest")
        references = [] if listing is None else reader.children(listing, _MANIFEST_CHILDREN).many("Reference")
        for reference in references:
            c = reader.children(reference, _REFERENCE_CHILDREN)
            # The SOAP variant points at its part with xlink:href only (spec §1.1).
            href = reference.element.get(_XLINK_HREF)
            manifest.append(
                ManifestEntry(
                    content_id=c.text("ContentId") or href,
                    name=c.text("AttachmentName"),
                    content_type=c.text("ContentType"),
                    description=c.text("Description"),
                    where=reference.path,
                )
            )
    payloads: list[PayloadEntry] = []
    if encoded is not None:
        for item in reader.children(encoded, _ENCODED_CHILDREN).many("Attachment"):
            c = reader.children(item, _ATTACHMENT_CHILDREN)
            payloads.append(
                PayloadEntry(
                    content_id=c.text("ContentId"),
                    name=c.text("AttachmentName"),
                    content_type=c.text("ContentType"),
                    description=c.text("Description"),
                    where=item.path,
                    encoded=_text_source(c.one("ContentTransferEncoded"), decoded or {}),
                )
            )
    attachments, found = merge(manifest, payloads, max_bytes=limit)
    for finding in found:
        reader.add(finding)
    return attachments
