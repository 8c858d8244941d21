"""Packages in mail: find the one edXML package a mail carries; compose the mails we send.

Pure (stdlib ``email``): no sockets, no store. The original mail's bytes are evidence and never
re-serialised: headers we add to a relayed mail are prepended to the raw bytes, as Postfix
prepends ``Received:`` (``prepend_headers``).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Protocol, TypedDict

from gateway.clock import to_vn
from gateway.edxml.findings import Finding
from gateway.edxml.lean import Streamed
from gateway.pipeline.codes import MAIL_NO_PACKAGE, MAIL_SEVERAL_PACKAGES

__all__ = ["FoundPackage", "compose", "find_package", "header_lines", "prepend_headers"]

# An edXML root near the start: the XML declaration, comments or white space may precede it.
_EDXML_ROOT = re.compile(rb"^\s*(?:<\?xml[^>]*\?>)?\s*(?:<!--.*?-->\s*)*<(?:[A-Za-z_][\w.-]*:)?edXML[\s>/]", re.S)
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]*$")


@dataclass(frozen=True)
class FoundPackage:
    """What a mail carries."""

    package: bytes | None
    """The edXML bytes exactly as they were encoded in the mail, or ``None``."""
    filename: str | None
    problem: Finding | None
    """``mail-no-package`` or ``mail-several-packages`` when there is not exactly one package."""
    subject: str | None
    message_id: str | None
    sender: str | None
    """The address in From: (the envelope sender is recorded separately)."""
    source: Streamed | None = None
    """The package as pieces read from the mail file, when it was not decoded into memory
    (``gateway.pipeline.mailfile.find_package_in``; ``package`` is then ``None``)."""


def _looks_like_edxml(data: bytes) -> bool:
    return bool(_EDXML_ROOT.match(data[:4096]))


def _candidates(message: Message) -> list[tuple[bytes, str | None]]:
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and _looks_like_edxml(payload):
            found.append((payload, part.get_filename()))
    return found


class _Unusual(Exception):
    """The lean reader met MIME it leaves to the ``email`` package."""


LEAN_FAILURES = (_Unusual, UnicodeError, ValueError, LookupError, binascii.Error)
"""What makes the lean reader leave a mail to the ``email`` package."""


_HEAD_LIMIT = 256 * 1024
"""A header block longer than this is left to the ``email`` package."""
_SNIFF_BASE64 = 8192
"""Base64 characters decoded to sniff a part (more than the 4096 bytes ``_looks_like_edxml`` reads)."""
_BLANK = re.compile(rb"\r?\n\r?\n")
_WHITESPACE = b" \t\r\n"


class MailBytes(Protocol):
    """What the lean reader needs of a mail: ``bytes``, or a file read where it is looked at."""

    def __len__(self) -> int: ...
    def __getitem__(self, where: slice, /) -> bytes: ...
    def find(self, sub: bytes, start: int, end: int, /) -> int: ...
    def startswith(self, prefix: bytes, start: int, end: int, /) -> bool: ...


def _head(mail: MailBytes, start: int, end: int) -> tuple[Message, int]:
    """The headers of the MIME entity at ``mail[start:end]`` and where its body starts."""
    for empty in (b"\r\n", b"\n"):  # no header block at all
        if mail.startswith(empty, start, end):
            return BytesHeaderParser(policy=policy.compat32).parsebytes(b""), start + len(empty)
    head = mail[start : min(end, start + _HEAD_LIMIT)]
    match = _BLANK.search(head)
    if match is None:
        raise _Unusual("no end of the header block")
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(head[: match.start()] + b"\n")
    return parsed, start + match.end()


def _spans(mail: MailBytes, delimiter: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The body parts between the boundary lines of one multipart body (RFC 2046 §5.1.1)."""
    spans: list[tuple[int, int]] = []
    part_start: int | None = None
    at = start
    while True:
        index = mail.find(delimiter, at, end)
        if index < 0:
            raise _Unusual("no closing boundary")
        at = index + len(delimiter)
        if index != start and mail[index - 1 : index] != b"\n":
            continue  # not at the start of a line
        line_end = mail.find(b"\n", at, end)
        rest = mail[at : line_end if line_end >= 0 else end]
        closing = rest.startswith(b"--")
        if not closing and rest.strip(_WHITESPACE):
            continue  # a longer string that starts like the boundary
        if part_start is not None:
            stop = index - 1 if index > start else index  # the line break before it belongs to it
            stop -= 1 if stop > part_start and mail[stop - 1 : stop] == b"\r" else 0
            spans.append((part_start, max(stop, part_start)))
        if closing:
            return spans
        if line_end < 0:
            raise _Unusual("a boundary at the end of the mail")
        part_start = line_end + 1


def _leaves(mail: MailBytes, start: int, end: int, found: list[tuple[Message, int, int]]) -> None:
    """Every leaf part of the entity at ``mail[start:end]``: its headers and body span, in order."""
    head, body = _head(mail, start, end)
    kind = head.get_content_maintype()
    if kind == "message":
        raise _Unusual("an attached message")
    if kind != "multipart":
        found.append((head, body, end))
        return
    boundary = head.get_boundary()
    if not boundary:
        raise _Unusual("multipart without a boundary")
    for part_start, part_end in _spans(mail, b"--" + boundary.encode("ascii", "surrogateescape"), body, end):
        _leaves(mail, part_start, part_end, found)


def _decoded(mail: MailBytes, head: Message, start: int, end: int, *, sniff: bool) -> bytes:
    """The part's body decoded (``sniff``: only its first few KB)."""
    encoding = str(head.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if encoding == "base64":
        if sniff:
            text = mail[start : min(end, start + _SNIFF_BASE64)].translate(None, _WHITESPACE)
            return binascii.a2b_base64(text[: len(text) // 4 * 4])
        return binascii.a2b_base64(memoryview(mail)[start:end] if isinstance(mail, bytes) else mail[start:end])
    if encoding in ("7bit", "8bit", "binary"):
        return mail[start : min(end, start + 4096) if sniff else end]
    raise _Unusual(f"transfer encoding {encoding}")  # quoted-printable and the odd ones


def lean_parts(mail: MailBytes) -> tuple[Message, list[tuple[Message, int, int]]]:
    """The top-level headers and the leaf parts that look like edXML (headers, body span).

    Raises:
        _Unusual, UnicodeError, ValueError, LookupError, binascii.Error: MIME left to ``email``
            (``LEAN_FAILURES``).
    """
    leaves: list[tuple[Message, int, int]] = []
    _leaves(mail, 0, len(mail), leaves)
    found = [
        (head, start, end)
        for head, start, end in leaves
        if _looks_like_edxml(_decoded(mail, head, start, end, sniff=True))
    ]
    return _head(mail, 0, len(mail))[0], found


def _lean_candidates(mail: bytes) -> tuple[Message, list[tuple[bytes, str | None]]]:
    """The top-level headers and ``_candidates``, read in place: only an edXML part is decoded whole."""
    top, parts = lean_parts(mail)
    return top, [(_decoded(mail, head, start, end, sniff=False), head.get_filename()) for head, start, end in parts]


def find_package(mail: bytes) -> FoundPackage:
    """Find the single edXML package in a mail (attachment or whole body).

    A lean reader splits the mail on its MIME boundaries in place and decodes only the parts
    that look like edXML: a 50 MB package in a 91 MB mail costs the package's size, where the
    ``email`` package's object tree (a str per line) costs about 8x the mail's. What it does
    not read plainly (an attached message, quoted-printable, a boundary never closed, bad
    base64) goes to the ``email`` package, as every mail did before. For a spooled mail the
    pipeline uses ``gateway.pipeline.mailfile.find_package_in``: the same reader over the file,
    the package left in it and decoded as it is read.

    Args:
        mail: the mail as received.

    Returns:
        The package bytes, or the problem when there is none or more than one.
    """
    message: Message
    try:
        message, candidates = _lean_candidates(mail)
    except LEAN_FAILURES:
        message = message_from_bytes(mail, policy=policy.compat32)
        candidates = _candidates(message)
    meta = mail_meta(message)
    if not candidates:
        return FoundPackage(None, None, MAIL_NO_PACKAGE("mail"), **meta)
    if len(candidates) > 1:
        return FoundPackage(None, None, MAIL_SEVERAL_PACKAGES("mail", count=len(candidates)), **meta)
    package, filename = candidates[0]
    return FoundPackage(package, filename, None, **meta)


class MailMeta(TypedDict):
    """``FoundPackage``'s fields read from the top-level headers."""

    subject: str | None
    message_id: str | None
    sender: str | None


def mail_meta(message: Message) -> MailMeta:
    """``FoundPackage``'s subject, message_id and sender, from the top-level headers."""
    subject = message.get("Subject")
    return MailMeta(
        subject=None if subject is None else str(subject),
        message_id=message.get("Message-ID"),
        sender=parseaddr(str(message.get("From", "")))[1] or None,
    )


def compose(
    package: bytes,
    *,
    filename: str,
    mail_from: str,
    to: Sequence[str],
    subject: str,
    text: str,
    at: datetime,
    domain: str = "localhost",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """A mail carrying one edXML package as an attachment, with a short text part.

    Args:
        package: the edXML bytes (attached unchanged, base64).
        filename: the attachment's name (``….edxml``).
        mail_from: the From: address.
        to: the To: addresses.
        subject: the Subject (may be Vietnamese; encoded as RFC 2047).
        text: the body, Vietnamese then English.
        at: the Date (aware; written in Vietnam time).
        domain: for the Message-ID.
        headers: extra headers (ASCII values).

    Returns:
        The mail's bytes (CRLF line ends, as SMTP sends them).
    """
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = mail_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(to_vn(at))
    message["Message-ID"] = make_msgid(domain=domain)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    message.add_attachment(package, maintype="application", subtype="xml", filename=filename)
    return message.as_bytes()


def header_lines(headers: Mapping[str, str]) -> bytes:
    """Header lines to put in front of a mail (``prepend_headers``, or a spooled mail's head).

    Raises:
        ValueError: a header name or value that is not plain printable ASCII on one line.
    """
    lines = []
    for name, value in headers.items():
        if not re.fullmatch(r"[A-Za-z0-9-]+", name) or not _HEADER_VALUE.match(value):
            raise ValueError(f"header {name!r} must be one line of printable ASCII")
        lines.append(f"{name}: {value}\r\n".encode("ascii"))
    return b"".join(lines)


def prepend_headers(mail: bytes, headers: Mapping[str, str]) -> bytes:
    """Add headers in front of a mail without touching a byte of the original.

    Raises:
        ValueError: a header name or value that is not plain printable ASCII on one line.
    """
    return header_lines(headers) + mail
