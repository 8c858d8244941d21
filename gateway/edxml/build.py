"""The strict edXML builder: a model value in, deterministic package bytes out (spec §7.3).

The output is shaped like the VNPT SDK's own (``xml/dc0bdef0-….edxml`` in S1):

* ``<?xml version="1.0" encoding="UTF-8"?>``; root ``edXML`` with the QCVN URI as default
  namespace; ``edXML:edXMLEnvelope`` re-declaring ``xmlns:edXML`` (same URI); every element
  inside the envelope written with the ``edXML:`` prefix;
* ``edXMLHeader`` holds MessageHeader then TraceHeaderList and nothing else: the signer
  appends ``Signature`` as its last child later;
* ``edXML:edXMLManifest version="1.0"``; ``AttachmentEncoded`` beside the envelope, its
  ``Attachment`` children unprefixed and ``edXML:ContentTransferEncoded`` re-declaring the
  prefix, as the SDK writes them; ``cid:`` on both sides; base64 on one line;
* MessageHeader children in the order of spec §1.3; ``Bussiness`` before the TraceHeaders
  as the SDK writes it; dates ``yyyy/MM/dd``, timestamps ``yyyy/MM/dd HH:mm:ss`` in Vietnam
  time; two-space indentation between elements and never inside text;
* no comments, no processing instructions, no attributes but the namespaces and ``version``.

Invariants: the same model gives the same bytes; ``parse(build(x)).package == x`` for every
model ``build`` accepts. Optional ``None`` fields are left out; a present but empty block
(``OtherInfo()``) is written as an empty element so that it reads back as present.
``build`` refuses, with a ``BuildError`` naming the field and the fix, what a peer would
reject or what could not be read back as written.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Final

from gateway.edxml.attachments import bare_content_id, label, travels_zipped, wire_bytes
from gateway.edxml.dates import write_date, write_timestamp
from gateway.edxml.model import (
    Attachment,
    Business,
    BusinessDocType,
    DocumentPackage,
    MessageHeader,
    Organization,
    OtherInfo,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusPackage,
    TraceHeaderList,
)
from gateway.edxml.names import QCVN_NS

__all__ = ["BuildError", "build"]

_PREFIX: Final = "edXML:"
_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_KNOWN_STATUS_CODES: Final = frozenset(code.value for code in StatusCode)


class BuildError(ValueError):
    """The model cannot be written as a valid package; the message names the field and the fix."""


def _escape(text: str) -> str:
    # "\r" would become "\n" on reading (XML end-of-line handling) unless written as a reference.
    return text.translate(_ESCAPES)


class _Writer:
    """Indented elements, one per line; a block with no children closes itself."""

    def __init__(self) -> None:
        self._parts: list[bytes] = [b'<?xml version="1.0" encoding="UTF-8"?>\n']
        self._depth = 0
        self.prefix = ""

    def _line(self, markup: str) -> None:
        self._parts.append(("  " * self._depth + markup + "\n").encode("utf-8"))

    @contextmanager
    def block(self, name: str, attributes: str = "") -> Iterator[None]:
        tag = self.prefix + name
        self._line(f"<{tag}{attributes}>")
        opened = len(self._parts)
        self._depth += 1
        yield
        self._depth -= 1
        if len(self._parts) == opened:
            self._parts[-1] = ("  " * self._depth + f"<{tag}{attributes}/>\n").encode("utf-8")
        else:
            self._line(f"</{tag}>")

    def leaf(self, name: str, value: str | int | bool | date | datetime | None, *, flag: bool = False) -> None:
        """A text element; ``None`` is left out. ``flag`` writes a bool as ``1``/``0``."""
        if value is None:
            return
        if isinstance(value, bool):
            text = ("1" if value else "0") if flag else ("true" if value else "false")
        elif isinstance(value, datetime):
            text = write_timestamp(value)
        elif isinstance(value, date):
            text = write_date(value)
        else:
            text = _escape(str(value))
        tag = self.prefix + name
        self._line(f"<{tag}>{text}</{tag}>" if text else f"<{tag}/>")

    def raw(self, chunk: bytes) -> None:
        self._parts.append(b"  " * self._depth + chunk + b"\n")

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


# --------------------------------------------------------------------------- refusals


def _require(condition: object, field: str, fix: str) -> None:
    if not condition:
        raise BuildError(f"{field}: {fix}")


def _require_items(values: tuple[str, ...], field: str) -> None:
    for index, value in enumerate(values, start=1):
        _require(value, f"{field}[{index}]", "is empty; remove the entry or give it a value")


def _check_document(package: DocumentPackage) -> None:
    h = package.header
    _require(h.from_.organ_id, "MessageHeader/From/OrganId", "is empty; set the sender's organisation identifier")
    _require(h.to, "MessageHeader/To", "there is no recipient; add at least one To organisation")
    for index, recipient in enumerate(h.to, start=1):
        _require(recipient.organ_id, f"MessageHeader/To[{index}]/OrganId", "is empty; set the recipient's identifier")
    _require(h.code.number, "MessageHeader/Code/CodeNumber", "is empty; set the document number (số)")
    _require(h.code.notation, "MessageHeader/Code/CodeNotation", "is empty; set the document notation (ký hiệu)")
    _require(h.promulgation.date, "MessageHeader/PromulgationInfo/PromulgationDate", "is missing; set the date")
    kind = h.document_type
    _require(
        kind.type is not None or kind.type_name,
        "MessageHeader/DocumentType",
        "needs Type or TypeName; set the document type",
    )
    _require(h.subject, "MessageHeader/Subject", "is empty; set the summary (trích yếu)")
    _require(h.signer.full_name, "MessageHeader/SignerInfo/FullName", "is missing; set the signer's name")
    _require_items(h.to_places, "MessageHeader/ToPlaces/Place")
    if h.other_info is not None:
        _require_items(h.other_info.appendixes, "MessageHeader/OtherInfo/Appendixes/Appendix")
    _require_items(h.response_for_task, "MessageHeader/ResponseForTask/TaskCode")
    if package.trace is not None:
        _check_trace(package.trace)
    _check_attachments(package.attachments)


def _check_trace(trace: TraceHeaderList) -> None:
    for index, hop in enumerate(trace.traces, start=1):
        _require(hop.organ_id, f"TraceHeaderList/TraceHeader[{index}]/OrganId", "is empty; set the hop's identifier")
    business = trace.business
    if business is None:
        return
    b = "TraceHeaderList/Bussiness"
    _require(
        business.doc_type is None or business.doc_type in set(BusinessDocType),
        f"{b}/BussinessDocType",
        f"{business.doc_type} is not a business type; use 0 new, 1 revocation, 2 update or 3 replacement",
    )
    if business.document_info is not None:
        for index, receiver in enumerate(business.document_info.receivers, start=1):
            where = f"{b}/BussinessDocumentInfo/ReceiverList/Receiver[{index}]/OrganId"
            _require(receiver.organ_id, where, "is empty; set the receiver's identifier")
    for index, replaced in enumerate(business.replacements, start=1):
        where = f"{b}/ReplacementInfoList/ReplacementInfo[{index}]"
        _require(replaced.document_id, f"{where}/DocumentId", "is empty; name the replaced document")
        _require_items(replaced.organ_ids, f"{where}/OrganIdList/OrganId")


def _check_attachments(attachments: tuple[Attachment, ...]) -> None:
    seen: set[str] = set()
    for att in attachments:
        where = label(att.name, att.content_id)
        _require(att.content_id, where, "has no content_id; give each attachment a unique id")
        _require(
            bare_content_id(att.content_id) == att.content_id and not any(c.isspace() for c in att.content_id),
            where,
            "content_id must be a bare id, without cid:, <> or white space (build adds cid:)",
        )
        _require(att.content_id not in seen, where, "another attachment has the same content_id; make them unique")
        seen.add(att.content_id)
        _require(att.name, where, "has no name; set the file name shown to the recipient")
        _require(att.content_type, where, "has no content_type; use attachments.attachment_from_file")
        _require(att.data is not None, where, "has no data; only decoded attachments can be sent")
        will_unzip = travels_zipped(att.name, att.content_type)
        if att.zipped:
            _require(
                will_unzip,
                where,
                "zipped=True needs content_type application/zip and a name that is not .zip/OOXML/ODF, "
                "or readers will not unzip it; use attachments.attachment_from_file",
            )
        else:
            _require(
                not (will_unzip and att.data is not None and att.data.startswith(b"PK\x03\x04")),
                where,
                "is a zip declared application/zip under a non-.zip name, so readers would unzip it; "
                "name it .zip or set zipped=True",
            )


def _check_status(package: StatusPackage) -> None:
    _require(package.from_.organ_id, "MessageHeader/From/OrganId", "is empty; set the reporting organisation")
    ref = package.response_for
    _require(
        ref.document_id or (ref.code and ref.organ_id),
        "MessageHeader/ResponseFor",
        "must name the document: set DocumentId, or Code and OrganId",
    )
    _require(
        package.status_code in _KNOWN_STATUS_CODES,
        "MessageHeader/StatusCode",
        f"{package.status_code!r} is not a status code; use one of {', '.join(sorted(_KNOWN_STATUS_CODES))}",
    )
    _require(package.timestamp is not None, "MessageHeader/Timestamp", "is missing; set when the status was set")


# --------------------------------------------------------------------------- writing


def _organization(w: _Writer, name: str, organ: Organization) -> None:
    with w.block(name):
        w.leaf("OrganId", organ.organ_id)
        w.leaf("OrganizationInCharge", organ.organization_in_charge)
        w.leaf("OrganName", organ.organ_name)
        w.leaf("OrganAdd", organ.organ_add)
        w.leaf("Email", organ.email)
        w.leaf("Telephone", organ.telephone)
        w.leaf("Fax", organ.fax)
        w.leaf("Website", organ.website)


def _response_for(w: _Writer, ref: ResponseFor) -> None:
    with w.block("ResponseFor"):
        w.leaf("OrganId", ref.organ_id)
        w.leaf("Code", ref.code)
        w.leaf("PromulgationDate", ref.promulgation_date)
        w.leaf("DocumentId", ref.document_id)


def _staff(w: _Writer, staff: StaffInfo | None) -> None:
    if staff is None:
        return
    with w.block("StaffInfo"):
        w.leaf("Department", staff.department)
        w.leaf("DepartmentId", staff.department_id)
        w.leaf("Staff", staff.staff)
        w.leaf("StaffId", staff.staff_id)
        w.leaf("Email", staff.email)
        w.leaf("Mobile", staff.mobile)


def _list(w: _Writer, name: str, item: str, values: tuple[str, ...]) -> None:
    if values:
        with w.block(name):
            for value in values:
                w.leaf(item, value)


def _other_info(w: _Writer, other: OtherInfo | None) -> None:
    if other is None:
        return
    with w.block("OtherInfo"):
        w.leaf("Priority", other.priority)
        w.leaf("SphereOfPromulgation", other.sphere_of_promulgation)
        w.leaf("TyperNotation", other.typer_notation)
        w.leaf("PromulgationAmount", other.promulgation_amount)
        w.leaf("PageAmount", other.page_amount)
        w.leaf("Direction", other.direction)
        w.leaf("ReplyFors", other.reply_fors)
        w.leaf("ReferenceCodes", other.reference_codes)
        _list(w, "Appendixes", "Appendix", other.appendixes)


def _message_header(w: _Writer, h: MessageHeader) -> None:
    with w.block("MessageHeader"):
        _organization(w, "From", h.from_)
        for recipient in h.to:
            _organization(w, "To", recipient)
        with w.block("Code"):
            w.leaf("CodeNumber", h.code.number)
            w.leaf("CodeNotation", h.code.notation)
        with w.block("PromulgationInfo"):
            w.leaf("Place", h.promulgation.place)
            w.leaf("PromulgationDate", h.promulgation.date)
        with w.block("DocumentType"):
            w.leaf("Type", h.document_type.type)
            w.leaf("TypeDetail", h.document_type.type_detail)
            w.leaf("TypeName", h.document_type.type_name)
        w.leaf("Subject", h.subject)
        w.leaf("Content", h.content)
        with w.block("SignerInfo"):
            w.leaf("Competence", h.signer.competence)
            w.leaf("Position", h.signer.position)
            w.leaf("FullName", h.signer.full_name)
        w.leaf("DueDate", h.due_date)
        _list(w, "ToPlaces", "Place", h.to_places)
        _other_info(w, h.other_info)
        for ref in h.response_for:
            _response_for(w, ref)
        w.leaf("SteeringType", h.steering_type)
        w.leaf("DocumentId", h.document_id)
        _list(w, "ResponseForTask", "TaskCode", h.response_for_task)
        w.leaf("ApplicationType", h.application_type)


def _business(w: _Writer, business: Business) -> None:
    with w.block("Bussiness"):
        w.leaf("DocumentId", business.document_id)
        w.leaf("BussinessDocType", business.doc_type)
        w.leaf("BussinessDocReason", business.doc_reason)
        w.leaf("Paper", business.paper)
        _staff(w, business.staff)
        info = business.document_info
        if info is not None:
            with w.block("BussinessDocumentInfo"):
                w.leaf("DocumentInfo", info.document_info, flag=True)
                w.leaf("DocumentReceiver", info.document_receiver, flag=True)
                if info.receivers:
                    with w.block("ReceiverList"):
                        for receiver in info.receivers:
                            with w.block("Receiver"):
                                w.leaf("OrganId", receiver.organ_id)
                                w.leaf("ReceiverType", receiver.receiver_type)
        if business.replacements:
            with w.block("ReplacementInfoList"):
                for replaced in business.replacements:
                    with w.block("ReplacementInfo"):
                        w.leaf("DocumentId", replaced.document_id)
                        _list(w, "OrganIdList", "OrganId", replaced.organ_ids)


def _trace(w: _Writer, trace: TraceHeaderList | None) -> None:
    if trace is None:
        return
    with w.block("TraceHeaderList"):
        if trace.business is not None:
            _business(w, trace.business)
        for hop in trace.traces:
            with w.block("TraceHeader"):
                w.leaf("OrganId", hop.organ_id)
                w.leaf("Timestamp", hop.timestamp)


def _payload(w: _Writer, attachments: tuple[Attachment, ...]) -> None:
    if not attachments:
        return
    with w.block("AttachmentEncoded"):
        for att in attachments:
            with w.block("Attachment"):
                w.leaf("ContentId", f"cid:{att.content_id}")
                w.leaf("AttachmentName", att.name)
                w.leaf("Description", att.description)
                w.leaf("ContentType", att.content_type)
                tag = f"{_PREFIX}ContentTransferEncoded"
                # One attachment's base64 at a time; b64encode never inserts line breaks.
                encoded = base64.b64encode(wire_bytes(att))
                w.raw(f'<{tag} xmlns:edXML="{QCVN_NS}">'.encode() + encoded + f"</{tag}>".encode())


def build(package: DocumentPackage | StatusPackage) -> bytes:
    """Write a package as edXML bytes, shaped like the VNPT SDK's output.

    Args:
        package: a document or status package.

    Returns:
        UTF-8 XML; identical for equal models.

    Raises:
        BuildError: when a required field is missing or a value cannot be written so that it
            reads back the same; the message names the field and the fix.
    """
    if isinstance(package, StatusPackage):
        _check_status(package)
    else:
        _check_document(package)
    w = _Writer()
    try:
        with w.block("edXML", f' xmlns="{QCVN_NS}"'):
            w.prefix = _PREFIX
            with w.block("edXMLEnvelope", f' xmlns:edXML="{QCVN_NS}"'):
                with w.block("edXMLHeader"):
                    if isinstance(package, StatusPackage):
                        with w.block("MessageHeader"):
                            _organization(w, "From", package.from_)
                            _response_for(w, package.response_for)
                            _staff(w, package.staff)
                            w.leaf("StatusCode", package.status_code)
                            w.leaf("Description", package.description)
                            w.leaf("Timestamp", package.timestamp)
                    else:
                        _message_header(w, package.header)
                        _trace(w, package.trace)
                if isinstance(package, DocumentPackage):
                    with w.block("edXMLBody"), w.block("edXMLManifest", ' version="1.0"'):
                        for att in package.attachments:
                            with w.block("Reference"):
                                w.leaf("ContentId", f"cid:{att.content_id}")
                                w.leaf("ContentType", att.content_type)
                                w.leaf("Description", att.description)
                                w.leaf("AttachmentName", att.name)
            w.prefix = ""
            if isinstance(package, DocumentPackage):
                _payload(w, package.attachments)
    except ValueError as exc:  # a timestamp outside what Vietnam time can express
        raise BuildError(f"a value cannot be written: {exc}") from exc
    return w.getvalue()
