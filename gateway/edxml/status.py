"""Making a status package about a document (spec §2): "arrived", "refused", "recalled"...

A status package answers an earlier package. Its ``ResponseFor`` names the document the
status is about; when the earlier package is itself a status, the answer is about the same
document, so its ``ResponseFor`` is carried over. Refusals (02) and recall requests (13) must
say why: Decree 30 Art. 21.2.b and the provincial rules (Hải Phòng Art. 17.3) require the
sender to be told the reason, so an empty reason is refused here.
"""

from __future__ import annotations

from datetime import datetime

from gateway.clock import to_utc
from gateway.edxml.checks import default_document_id
from gateway.edxml.model import (
    DocumentPackage,
    Organization,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusPackage,
    normalise_text,
)

__all__ = ["REASON_REQUIRED", "document_id_of", "make_status", "response_for"]

REASON_REQUIRED = frozenset({StatusCode.REJECTED, StatusCode.RECALL_REQUEST, StatusCode.RECALL_REFUSED})
"""Codes whose Description must carry the reason."""


def document_id_of(package: DocumentPackage) -> str | None:
    """The package's DocumentId, else the SDK's derived form, else ``None`` when underivable."""
    header = package.header
    if header.document_id:
        return header.document_id
    try:
        return default_document_id(header)
    except ValueError:
        return None


def response_for(package: DocumentPackage | StatusPackage) -> ResponseFor:
    """The ``ResponseFor`` block that points at the document ``package`` is (or is about)."""
    if isinstance(package, StatusPackage):
        return package.response_for
    header = package.header
    return ResponseFor(
        organ_id=header.from_.organ_id or None,
        code=normalise_text(str(header.code)),
        promulgation_date=header.promulgation.date,
        document_id=document_id_of(package),
    )


def make_status(
    about: DocumentPackage | StatusPackage,
    code: StatusCode | str,
    *,
    sender: Organization,
    at: datetime,
    description: str | None = None,
    staff: StaffInfo | None = None,
) -> StatusPackage:
    """Build the status package that reports ``code`` about ``about``'s document.

    Args:
        about: the package being answered.
        code: a status code of spec §2.2 (``"02"`` or ``StatusCode.REJECTED``...).
        sender: our organisation (the party reporting the status).
        at: when the status was decided (aware; written in Vietnam time).
        description: free text; the reason for 02, 13 and 16 (required for those).
        staff: the clerk who acted, if any.

    Returns:
        The status package, ready for ``gateway.edxml.build``.

    Raises:
        ValueError: unknown code, missing reason, or a sender without an OrganId.
    """
    try:
        status = StatusCode(code)
    except ValueError:
        valid = ", ".join(c.value for c in StatusCode)
        raise ValueError(f"unknown status code {code!r}; valid codes: {valid}") from None
    text = normalise_text(description)
    if status in REASON_REQUIRED and text is None:
        raise ValueError(f"status {status.value} ({status.description_vi}) must say why: give a reason")
    if not sender.organ_id:
        raise ValueError("the sender of a status package needs an OrganId")
    return StatusPackage(
        from_=sender,
        response_for=response_for(about),
        status_code=status.value,
        description=text or status.description_vi,
        timestamp=to_utc(at).replace(microsecond=0),
        staff=staff,
    )
