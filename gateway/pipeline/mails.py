"""Packages in mail: find the one edXML package a mail carries; compose the mails we send.

Pure (stdlib ``email``): no sockets, no store. The original mail's bytes are evidence and never
re-serialised: headers we add to a relayed mail are prepended to the raw bytes, as Postfix
prepends ``Received:`` (``prepend_headers``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid, parseaddr

from gateway.clock import to_vn
from gateway.edxml.findings import Finding
from gateway.pipeline.codes import MAIL_NO_PACKAGE, MAIL_SEVERAL_PACKAGES

__all__ = ["FoundPackage", "compose", "find_package", "prepend_headers"]

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


def find_package(mail: bytes) -> FoundPackage:
    """Find the single edXML package in a mail (attachment or whole body).

    Args:
        mail: the mail as received.

    Returns:
        The package bytes, or the problem when there is none or more than one.
    """
    message = message_from_bytes(mail, policy=policy.compat32)
    candidates = _candidates(message)
    subject = message.get("Subject")
    meta = {
        "subject": None if subject is None else str(subject),
        "message_id": message.get("Message-ID"),
        "sender": parseaddr(str(message.get("From", "")))[1] or None,
    }
    if not candidates:
        return FoundPackage(None, None, MAIL_NO_PACKAGE("mail"), **meta)
    if len(candidates) > 1:
        return FoundPackage(None, None, MAIL_SEVERAL_PACKAGES("mail", count=len(candidates)), **meta)
    package, filename = candidates[0]
    return FoundPackage(package, filename, None, **meta)


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


def prepend_headers(mail: bytes, headers: Mapping[str, str]) -> bytes:
    """Add headers in front of a mail without touching a byte of the original.

    Raises:
        ValueError: a header name or value that is not plain printable ASCII on one line.
    """
    lines = []
    for name, value in headers.items():
        if not re.fullmatch(r"[A-Za-z0-9-]+", name) or not _HEADER_VALUE.match(value):
            raise ValueError(f"header {name!r} must be one line of printable ASCII")
        lines.append(f"{name}: {value}\r\n".encode("ascii"))
    return b"".join(lines) + mail
