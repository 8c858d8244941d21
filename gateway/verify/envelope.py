"""Reading a received package: parse once, check the envelope signature, trust only what it signs.

``read_package`` is the first step of every inbound judgement and of ``gateway edxml
inspect``. The bytes go through the hardened parser once; the envelope signature is checked
on that tree; when it is valid, the business fields are read from the tree signxml
reconstructed from the signed data (HOUSE.md rule 11: read business fields only from what
the signature covers), otherwise from the received tree, and the caller sees the signature's
state next to the findings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from gateway.edxml.parse import DEFAULT_MAX_ATTACHMENT_BYTES, ParseResult, parse, parse_tree
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, XMLLimits, XMLRejected, parse_untrusted
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
    raw: bytes | Callable[[], bytes],
    *,
    limits: XMLLimits = DEFAULT_LIMITS,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    today: date | None = None,
) -> ReadPackage:
    """Parse ``raw`` and check its envelope signature.

    Args:
        raw: the package bytes exactly as received, or a function called once to get them:
            then they are let go as soon as they are parsed and hashed, while the tree is read
            (a caller holding no other reference spares a package's size; issue 7, P4).
        limits: XML size, depth and element-count limits.
        max_attachment_bytes: largest decoded attachment accepted.
        today: the receiving day in Vietnam, for date checks (``None`` skips them).

    Returns:
        The parse result (model and findings), the envelope signature's outcome, the bytes'
        SHA-256 and size.
    """
    data = raw() if callable(raw) else raw
    sha256, size = hashlib.sha256(data).hexdigest(), len(data)
    try:
        root = parse_untrusted(data, limits)
    except XMLRejected:
        # Let the parser turn the refusal into its finding (it fails as fast again).
        parsed = parse(data, limits=limits, max_attachment_bytes=max_attachment_bytes, today=today)
        return ReadPackage(parsed, None, sha256, size)
    del data
    envelope = verify_envelope(root)
    tree = envelope.signed_root if envelope.valid and envelope.signed_root is not None else root
    parsed = parse_tree(tree, max_attachment_bytes=max_attachment_bytes, today=today)
    return ReadPackage(parsed, replace(envelope, signed_root=None), sha256, size)
