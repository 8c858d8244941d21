"""The edXML package as frozen values (spec/edxml.md §1.3–§1.7 and §2).

Two kinds of package travel on the axis: a document package (``DocumentPackage``: metadata,
routing trace and attachments) and a status package (``StatusPackage``: a two-digit status
about an earlier document).

Invariants, checked when a value is built, so that every constructible model can be written
by ``gateway.edxml.build`` and read back equal by ``gateway.edxml.parse``:

* text is stripped of surrounding white space and holds only characters XML 1.0 allows;
  an optional text field is ``None`` rather than empty (a required one may be ``""`` when a
  peer left it out: the parser reports that as a finding, it does not invent a value);
* times are aware, whole seconds (the wire carries ``yyyy/MM/dd HH:mm:ss``, Vietnam time);
* sequences are tuples.

Nothing here knows about XML elements, files or the network.
"""

from __future__ import annotations

import hashlib
import re
import types
import typing
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Any, ClassVar, Literal

__all__ = [
    "Attachment",
    "Business",
    "BusinessDocType",
    "BusinessDocumentInfo",
    "DocumentCode",
    "DocumentPackage",
    "DocumentType",
    "MessageHeader",
    "Organization",
    "OtherInfo",
    "Package",
    "PromulgationInfo",
    "Receiver",
    "ReplacementInfo",
    "ResponseFor",
    "SignerInfo",
    "StaffInfo",
    "StatusCode",
    "StatusPackage",
    "TraceHeader",
    "TraceHeaderList",
    "normalise_text",
]

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def normalise_text(value: str | None) -> str | None:
    """The model's view of a text node: stripped, ``None`` when empty."""
    if value is None:
        return None
    value = value.strip()
    return value or None


_FIELD_KINDS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _field_kinds(cls: type) -> tuple[tuple[str, bool], ...]:
    """(field name, optional?) for every field, from the resolved type hints (memoised)."""
    known = _FIELD_KINDS.get(cls)
    if known is None:
        hints = typing.get_type_hints(cls)
        kinds = []
        for f in fields(cls):
            hint = hints[f.name]
            args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
            kinds.append((f.name, type(None) in args))
        known = _FIELD_KINDS[cls] = tuple(kinds)
    return known


def _check_text(owner: str, name: str, value: str, optional: bool) -> None:
    if value != value.strip():
        raise ValueError(f"{owner}.{name}: text must be stripped of surrounding white space: {value!r}")
    if optional and value == "":
        raise ValueError(f"{owner}.{name}: use None, not an empty string, for an absent optional value")
    bad = _XML_ILLEGAL.search(value)
    if bad:
        raise ValueError(f"{owner}.{name}: character U+{ord(bad.group()):04X} cannot be written in XML 1.0")


def _check_value(owner: str, name: str, value: Any, optional: bool) -> None:
    if isinstance(value, str):
        _check_text(owner, name, value, optional)
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{owner}.{name}: datetime must be aware")
        if value.microsecond:
            raise ValueError(f"{owner}.{name}: the wire carries whole seconds; drop the microseconds")
    elif isinstance(value, list):
        raise TypeError(f"{owner}.{name}: use a tuple, not a list")
    elif isinstance(value, tuple):
        for item in value:
            _check_value(owner, f"{name}[]", item, optional=False)


class _Validated:
    """Mixin: check the invariants of the module docstring on every construction."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name, optional in _field_kinds(type(self)):
            _check_value(owner, name, getattr(self, name), optional)


# --------------------------------------------------------------------------- header parts


@dataclass(frozen=True)
class Organization(_Validated):
    """An agency: ``From``/``To`` of a document, ``From`` of a status (§1.4)."""

    organ_id: str
    organization_in_charge: str | None = None
    organ_name: str | None = None
    organ_add: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class DocumentCode(_Validated):
    """``Code``: the document number and notation, shown as ``Number/Notation``."""

    number: str
    notation: str

    def __str__(self) -> str:
        return f"{self.number}/{self.notation}" if self.notation else self.number


@dataclass(frozen=True)
class PromulgationInfo(_Validated):
    """Where and when the document was issued."""

    place: str | None = None
    date: date | None = None


@dataclass(frozen=True)
class DocumentType(_Validated):
    """``DocumentType``: the numeric type, its detail and its display name (§5.5)."""

    type: int | None = None
    type_detail: int | None = None
    type_name: str | None = None


@dataclass(frozen=True)
class SignerInfo(_Validated):
    """The authorised signer as printed on the document."""

    competence: str | None = None
    position: str | None = None
    full_name: str | None = None


@dataclass(frozen=True)
class ResponseFor(_Validated):
    """A reference to an earlier document (a reply, a revocation, or the subject of a status)."""

    organ_id: str | None = None
    code: str | None = None
    """The full ``Number/Notation``, e.g. ``7816/VPCP-TTĐT``."""
    promulgation_date: date | None = None
    document_id: str | None = None


@dataclass(frozen=True)
class OtherInfo(_Validated):
    """``OtherInfo``: priority, circulation, typist, counts, appendix titles."""

    priority: int | None = None
    """0 Thường, 1 Khẩn, 2 Thượng khẩn, 3 Hỏa tốc, 4 Hỏa tốc hẹn giờ."""
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: int | None = None
    page_amount: int | None = None
    direction: bool | None = None
    reply_fors: str | None = None
    reference_codes: str | None = None
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MessageHeader(_Validated):
    """``MessageHeader`` of a document package (§1.3)."""

    from_: Organization
    to: tuple[Organization, ...]
    code: DocumentCode
    promulgation: PromulgationInfo
    document_type: DocumentType
    subject: str
    signer: SignerInfo
    content: str | None = None
    due_date: date | None = None
    to_places: tuple[str, ...] = ()
    other_info: OtherInfo | None = None
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: int | None = None
    document_id: str | None = None
    response_for_task: tuple[str, ...] = ()
    """``ResponseForTask/TaskCode*``."""
    application_type: str | None = None


# --------------------------------------------------------------------------- trace


@dataclass(frozen=True)
class TraceHeader(_Validated):
    """One hop: who handled the package, and when (their local time, stored as UTC)."""

    organ_id: str
    timestamp: datetime | None = None


@dataclass(frozen=True)
class StaffInfo(_Validated):
    """The clerk who acted."""

    department: str | None = None
    department_id: str | None = None
    staff: str | None = None
    staff_id: str | None = None
    email: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class Receiver(_Validated):
    """A recipient whose status changed in an update (``ReceiverType`` meaning unconfirmed)."""

    organ_id: str
    receiver_type: int | None = None


@dataclass(frozen=True)
class BusinessDocumentInfo(_Validated):
    """What an update (``BussinessDocType`` 2) changes."""

    document_info: bool | None = None
    document_receiver: bool | None = None
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True)
class ReplacementInfo(_Validated):
    """A document replaced by this one (``BussinessDocType`` 3) and who had it."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


class BusinessDocType(IntEnum):
    """``Bussiness/BussinessDocType``."""

    NEW = 0
    REVOCATION = 1
    UPDATE = 2
    REPLACEMENT = 3


@dataclass(frozen=True)
class Business(_Validated):
    """``Bussiness`` (sic): what the package does to the document."""

    doc_type: int | None = None
    """A ``BusinessDocType`` value; any other integer is kept and reported by the checks."""
    document_id: str | None = None
    doc_reason: str | None = None
    paper: int | None = None
    staff: StaffInfo | None = None
    document_info: BusinessDocumentInfo | None = None
    replacements: tuple[ReplacementInfo, ...] = ()


@dataclass(frozen=True)
class TraceHeaderList(_Validated):
    """Routing trace plus business information (§1.5)."""

    traces: tuple[TraceHeader, ...] = ()
    business: Business | None = None


# --------------------------------------------------------------------------- attachments


@dataclass(frozen=True)
class Attachment(_Validated):
    """One attached file: the manifest entry and its decoded payload (§1.7).

    ``content_type`` is what the wire declared (``application/zip`` when the SDK zipped the
    file); ``zipped`` records that the payload travels as a single-entry zip; ``data`` is the
    file itself after base64 decoding and unzipping, or ``None`` when it could not be
    decoded (the parser then reports why).
    """

    content_id: str
    """Bare id, without ``cid:`` and ``<>``."""
    name: str
    content_type: str
    data: bytes | None = field(repr=False, default=None)
    description: str | None = None
    zipped: bool = False

    @property
    def size(self) -> int | None:
        """Decoded size in bytes."""
        return None if self.data is None else len(self.data)

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the decoded file."""
        return None if self.data is None else hashlib.sha256(self.data).hexdigest()


# --------------------------------------------------------------------------- packages


@dataclass(frozen=True)
class DocumentPackage(_Validated):
    """A document package ("edoc"): new, revocation, update or replacement."""

    kind: ClassVar[Literal["edoc"]] = "edoc"

    header: MessageHeader
    trace: TraceHeaderList | None = None
    attachments: tuple[Attachment, ...] = ()

    @property
    def business_type(self) -> int:
        """``BussinessDocType``; a package without one is a new document (0)."""
        if self.trace is None or self.trace.business is None or self.trace.business.doc_type is None:
            return BusinessDocType.NEW
        return self.trace.business.doc_type


class StatusCode(StrEnum):
    """Business status codes carried by status packages (§2.2)."""

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    PROCESSING = "05"
    COMPLETED = "06"
    RECALL_REQUEST = "13"
    RECALL_AGREED = "15"
    RECALL_REFUSED = "16"

    @property
    def description_vi(self) -> str:
        """The Vietnamese wording used by the SDK samples."""
        return _STATUS_VI[self]


_STATUS_VI = {
    StatusCode.ARRIVED: "Đã đến",
    StatusCode.REJECTED: "Từ chối tiếp nhận",
    StatusCode.ACCEPTED: "Đã tiếp nhận",
    StatusCode.ASSIGNED: "Phân công xử lý",
    StatusCode.PROCESSING: "Đang xử lý",
    StatusCode.COMPLETED: "Hoàn thành",
    StatusCode.RECALL_REQUEST: "Lấy lại",
    StatusCode.RECALL_AGREED: "Đồng ý cập nhật, lấy lại",
    StatusCode.RECALL_REFUSED: "Từ chối cập nhật, lấy lại",
}


@dataclass(frozen=True)
class StatusPackage(_Validated):
    """A status package: the state of an earlier document as its handler reports it (§2)."""

    kind: ClassVar[Literal["status"]] = "status"

    from_: Organization
    response_for: ResponseFor
    status_code: str
    """Two digits as on the wire; a ``StatusCode`` value when known (the checks report others)."""
    description: str | None = None
    """Free text; also carries the reason of a refusal (02) or recall (13)."""
    timestamp: datetime | None = None
    staff: StaffInfo | None = None


Package = DocumentPackage | StatusPackage
"""Either kind of edXML package."""
