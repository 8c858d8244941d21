"""What a document is sealed as: ``SealKind`` and ``SealRequest`` (validated on construction).

Decree 30 Appendix I gives each kind its own signature: the main document a visible seal over the
authorised person's signature; a separately filed attachment a text signature with the main
document's number and the time; an electronic copy ("SAO Y", "SAO LỤC", "TRÍCH SAO") a text
signature with the copy type, the copying organisation and the time. The texts a request carries
are painted and signed, so they are normalised here once: Unicode NFC (Vietnamese typed on some
systems arrives decomposed, and the font maps precomposed letters), whitespace collapsed to single
spaces, no control characters, at most 200 characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["COPY_TYPES", "SealKind", "SealRequest"]

COPY_TYPES = ("SAO Y", "SAO LỤC", "TRÍCH SAO")
"""Decree 30 Art. 25: the three kinds of copy, as painted."""

_MAX_TEXT = 200  # characters of a name or number: a longer one is a mistake upstream


class SealKind(StrEnum):
    """What the document is to the package (Decree 30 Appendix I)."""

    MAIN = "main"
    ATTACHMENT = "attachment"
    """A separate file accompanying the main document."""
    COPY = "copy"
    """An electronic copy: SAO Y, SAO LỤC or TRÍCH SAO."""


def _text(name: str, value: str | None, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"{name} is required")
        return None
    clean = " ".join(unicodedata.normalize("NFC", value).split())
    if not clean:
        raise ValueError(f"{name} is empty")
    if len(clean) > _MAX_TEXT or any(unicodedata.category(c).startswith("C") for c in clean):
        raise ValueError(f"{name} is not a plausible single line of text: {value!r}")
    return clean


@dataclass(frozen=True)
class SealRequest:
    """What to seal a document as (validated and normalised on construction).

    Raises:
        ValueError: an unknown kind; an empty organisation name; an attachment without the main
            document's number; a copy without a valid copy type; a copy type on another kind.
    """

    kind: SealKind
    organisation_name: str
    """The sealing organisation: the signature's /Name, and the text of a copy."""
    document_number: str | None = None
    """Number and notation of the main document (e.g. ``123/UBND-VP``): required for attachments."""
    copy_type: str | None = None
    """``SAO Y``, ``SAO LỤC`` or ``TRÍCH SAO`` (any case): required for copies, only for them."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SealKind(self.kind))
        object.__setattr__(self, "organisation_name", _text("organisation_name", self.organisation_name, required=True))
        number = _text("document_number", self.document_number, required=self.kind is SealKind.ATTACHMENT)
        object.__setattr__(self, "document_number", number)
        copy_type = _text("copy_type", self.copy_type, required=self.kind is SealKind.COPY)
        if copy_type is not None:
            if self.kind is not SealKind.COPY:
                raise ValueError(f"copy_type is only for copies, not for kind {self.kind.value!r}")
            copy_type = copy_type.upper()
            if copy_type not in COPY_TYPES:
                raise ValueError(f"copy_type {self.copy_type!r} is not one of {', '.join(COPY_TYPES)}")
        object.__setattr__(self, "copy_type", copy_type)
