"""Reading a received package: parse once, check the envelope signature, trust only what it signs.

``read_package`` is the first step of every inbound judgement and of ``gateway edxml
inspect``. The bytes go through the hardened parser once; the envelope signature is checked
on that tree; when it is valid, the business fields are read from the tree signxml
reconstructed from the signed data (HOUSE.md rule 11: read business fields only from what
the signature covers), otherwise from the received tree, and the caller sees the signature's
state next to the findings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from gateway.edxml.lean import Streamed, read_lean
from gateway.edxml.parse import DEFAULT_MAX_ATTACHMENT_BYTES, ParseResult, parse_tree, rejected
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, XMLLimits, XMLRejected
from gateway.verify.xmldsig import EnvelopeSignature, verify_envelope

__all__ = ["ReadPackage", "read_package"]


@dataclass(frozen=True)
class ReadPackage:
    """A received package as far as the format and the envelope signature tell."""

    parsed: ParseResult
    envelope: EnvelopeSignature | None
    """``None`` when the bytes are not XML we would read (the findings say why). Its
    ``signed_root`` is let go once the package is read (``None``)."""
    sha256: str
    """The SHA-256 of the package bytes (hex)."""
    size: int
    """Their length."""


def read_package(
    raw: bytes | Callable[[], bytes] | Streamed,
    *,
    limits: XMLLimits = DEFAULT_LIMITS,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    today: date | None = None,
) -> ReadPackage:
    """Parse ``raw`` and check its envelope signature.

    The bytes are read by ``gateway.edxml.lean.read_lean``: hashed and pre-scanned, then parsed
    into a tree without the big base64 payloads, which are decoded once as they pass (a package
    costs about its attachments' decoded size, not its own size several times; issue 7, P4).

    Args:
        raw: the package bytes exactly as received, or a function called once to get them
            (then they are let go once read: a caller holding no other reference spares a
            package's size), or the package as pieces (``Streamed``: never whole in memory).
        limits: XML size, depth and element-count limits.
        max_attachment_bytes: largest decoded attachment accepted.
        today: the receiving day in Vietnam, for date checks (``None`` skips them).

    Returns:
        The parse result (model and findings), the envelope signature's outcome, the bytes'
        SHA-256 and size.

    Raises:
        TypeError: ``raw`` gives something other than bytes (a programming error).
    """
    if isinstance(raw, Streamed):
        lean = read_lean(raw.pieces, limits)
    else:
        given = [raw() if callable(raw) else raw]
        if not isinstance(given[0], bytes):
            raise TypeError("read_package takes the raw bytes as received, not decoded text")
        lean = read_lean(lambda: tuple(given), limits)
        given.clear()
    if lean.root is None:
        refused = lean.rejected or XMLRejected("xml-malformed", "no document")
        return ReadPackage(rejected(refused), None, lean.sha256, lean.size)
    envelope = verify_envelope(lean.root, payloads=lean.payloads)
    tree = envelope.signed_root if envelope.valid and envelope.signed_root is not None else lean.root
    parsed = parse_tree(tree, max_attachment_bytes=max_attachment_bytes, today=today, payloads=lean.payloads)
    return ReadPackage(parsed, replace(envelope, signed_root=None), lean.sha256, lean.size)
