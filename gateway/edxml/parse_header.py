"""Reading the header blocks: MessageHeader and TraceHeaderList of a document, status headers.

Spec/edxml.md §1.3 (MessageHeader), §1.4 (Organization), §1.5 (TraceHeaderList, Bussiness),
§2.1–2.2 (status). The organisation, reference and staff blocks are shared by both kinds.

Each ``*_CHILDREN`` table lists what an element may contain and the variant spellings seen
on real peers; everything else is reported by ``parse_elements.Reader.children``. Required
model text becomes ``""`` when the peer left it out: ``gateway.edxml.checks`` reports it.
"""

from __future__ import annotations

from gateway.edxml import findings
from gateway.edxml.model import (
    Business,
    BusinessDocumentInfo,
    DocumentCode,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    TraceHeader,
    TraceHeaderList,
)
from gateway.edxml.parse_elements import Node, Reader, known

__all__ = [
    "read_message_header",
    "read_organization",
    "read_response_for",
    "read_staff",
    "read_status",
    "read_trace_list",
]

ORGANIZATION_CHILDREN = known("OrganId OrganizationInCharge OrganName OrganAdd Email Telephone Fax Website")
MESSAGE_HEADER_CHILDREN = known(
    "From To* Code PromulgationInfo DocumentType Subject Content SignerInfo DueDate ToPlaces OtherInfo "
    "ResponseFor* SteeringType DocumentId ResponseForTask ApplicationType",
    # The pre-2016 e-doc.vn schema called the signer "Author" (spec §1.3).
    Author="SignerInfo",
)
CODE_CHILDREN = known("CodeNumber CodeNotation")
PROMULGATION_CHILDREN = known("Place PromulgationDate")
DOCUMENT_TYPE_CHILDREN = known("Type TypeDetail TypeName")
SIGNER_CHILDREN = known("Competence Position FullName", Function="Position")
PLACES_CHILDREN = known("Place*")
OTHER_INFO_CHILDREN = known(
    "Priority SphereOfPromulgation TyperNotation PromulgationAmount PageAmount Direction ReplyFors "
    "ReferenceCodes Appendixes"
)
APPENDIXES_CHILDREN = known("Appendix*")
RESPONSE_FOR_CHILDREN = known("OrganId Code PromulgationDate DocumentId")
TASK_CHILDREN = known("TaskCode*")
TRACE_LIST_CHILDREN = known("TraceHeader* Bussiness", Business="Bussiness")
TRACE_CHILDREN = known("OrganId Timestamp", TimeStamp="Timestamp")
BUSINESS_CHILDREN = known(
    "DocumentId BussinessDocType BussinessDocReason Paper StaffInfo BussinessDocumentInfo ReplacementInfoList",
    # Bkav corrects the SDK's misspelling in some places; read both.
    BusinessDocType="BussinessDocType",
    BusinessDocReason="BussinessDocReason",
    BusinessDocumentInfo="BussinessDocumentInfo",
)
STAFF_CHILDREN = known("Department DepartmentId Staff StaffId Email Mobile")
DOCUMENT_INFO_CHILDREN = known("DocumentInfo DocumentReceiver ReceiverList")
RECEIVER_LIST_CHILDREN = known("Receiver*")
RECEIVER_CHILDREN = known("OrganId ReceiverType")
REPLACEMENT_LIST_CHILDREN = known("ReplacementInfo*")
REPLACEMENT_CHILDREN = known("DocumentId OrganIdList")
ORGAN_ID_LIST_CHILDREN = known("OrganId*")
STATUS_CHILDREN = known(
    "From ResponseFor StaffInfo StatusCode Description Timestamp",
    # Bkav's older JAXB model (spec §2.1).
    TimeStamp="Timestamp",
)

# The .NET SDK writes 14 where the samples and the VNPT SDK write 15 (spec §2.2).
_STATUS_ALIASES = {"14": StatusCode.RECALL_AGREED.value}


def read_organization(reader: Reader, node: Node | None) -> Organization:
    """An Organization block (``From``, ``To``); ``organ_id`` is ``""`` when missing.

    Args:
        reader: the package reader.
        node: the block, or ``None`` when the peer left it out.

    Returns:
        The organisation.
    """
    if node is None:
        return Organization(organ_id="")
    c = reader.children(node, ORGANIZATION_CHILDREN)
    return Organization(
        organ_id=c.required("OrganId"),
        organization_in_charge=c.text("OrganizationInCharge"),
        organ_name=c.text("OrganName"),
        organ_add=c.text("OrganAdd"),
        email=c.text("Email"),
        telephone=c.text("Telephone"),
        fax=c.text("Fax"),
        website=c.text("Website"),
    )


def read_response_for(reader: Reader, node: Node | None) -> ResponseFor:
    """A ResponseFor block (reply, revocation, or the subject of a status).

    Args:
        reader: the package reader.
        node: the block, or ``None``.

    Returns:
        The reference (all fields ``None`` when the block is absent or empty).
    """
    if node is None:
        return ResponseFor()
    c = reader.children(node, RESPONSE_FOR_CHILDREN)
    return ResponseFor(
        organ_id=c.text("OrganId"),
        code=c.text("Code"),
        promulgation_date=c.date("PromulgationDate"),
        document_id=c.text("DocumentId"),
    )


def read_staff(reader: Reader, node: Node | None) -> StaffInfo | None:
    """A StaffInfo block, or ``None`` when absent.

    Args:
        reader: the package reader.
        node: the block, or ``None``.

    Returns:
        The clerk's details.
    """
    if node is None:
        return None
    c = reader.children(node, STAFF_CHILDREN)
    return StaffInfo(
        department=c.text("Department"),
        department_id=c.text("DepartmentId"),
        staff=c.text("Staff"),
        staff_id=c.text("StaffId"),
        email=c.text("Email"),
        mobile=c.text("Mobile"),
    )


def _other_info(reader: Reader, node: Node | None) -> OtherInfo | None:
    if node is None:
        return None
    c = reader.children(node, OTHER_INFO_CHILDREN)
    appendixes = c.one("Appendixes")
    return OtherInfo(
        priority=c.integer("Priority"),
        sphere_of_promulgation=c.text("SphereOfPromulgation"),
        typer_notation=c.text("TyperNotation"),
        promulgation_amount=c.integer("PromulgationAmount"),
        page_amount=c.integer("PageAmount"),
        direction=c.boolean("Direction"),
        reply_fors=c.text("ReplyFors"),
        reference_codes=c.text("ReferenceCodes"),
        appendixes=() if appendixes is None else reader.children(appendixes, APPENDIXES_CHILDREN).texts("Appendix"),
    )


def _code(reader: Reader, node: Node | None) -> DocumentCode:
    if node is None:
        return DocumentCode(number="", notation="")
    c = reader.children(node, CODE_CHILDREN)
    return DocumentCode(number=c.required("CodeNumber"), notation=c.required("CodeNotation"))


def _promulgation(reader: Reader, node: Node | None) -> PromulgationInfo:
    if node is None:
        return PromulgationInfo()
    c = reader.children(node, PROMULGATION_CHILDREN)
    return PromulgationInfo(place=c.text("Place"), date=c.date("PromulgationDate"))


def _document_type(reader: Reader, node: Node | None) -> DocumentType:
    if node is None:
        return DocumentType()
    c = reader.children(node, DOCUMENT_TYPE_CHILDREN)
    return DocumentType(type=c.integer("Type"), type_detail=c.integer("TypeDetail"), type_name=c.text("TypeName"))


def _signer(reader: Reader, node: Node | None) -> SignerInfo:
    if node is None:
        return SignerInfo()
    c = reader.children(node, SIGNER_CHILDREN)
    return SignerInfo(competence=c.text("Competence"), position=c.text("Position"), full_name=c.text("FullName"))


def read_message_header(reader: Reader, node: Node) -> MessageHeader:
    """The MessageHeader of a document package (§1.3), in any child order.

    Args:
        reader: the package reader.
        node: the ``MessageHeader`` element.

    Returns:
        The header; absent required blocks are empty blocks, for the checks to report.
    """
    c = reader.children(node, MESSAGE_HEADER_CHILDREN)
    places = c.one("ToPlaces")
    tasks = c.one("ResponseForTask")
    return MessageHeader(
        from_=read_organization(reader, c.one("From")),
        to=tuple(read_organization(reader, to) for to in c.many("To")),
        code=_code(reader, c.one("Code")),
        promulgation=_promulgation(reader, c.one("PromulgationInfo")),
        document_type=_document_type(reader, c.one("DocumentType")),
        subject=c.required("Subject"),
        signer=_signer(reader, c.one("SignerInfo")),
        content=c.text("Content"),
        due_date=c.date("DueDate"),
        to_places=() if places is None else reader.children(places, PLACES_CHILDREN).texts("Place"),
        other_info=_other_info(reader, c.one("OtherInfo")),
        response_for=tuple(read_response_for(reader, ref) for ref in c.many("ResponseFor")),
        steering_type=c.integer("SteeringType"),
        document_id=c.text("DocumentId"),
        response_for_task=() if tasks is None else reader.children(tasks, TASK_CHILDREN).texts("TaskCode"),
        application_type=c.text("ApplicationType"),
    )


def _document_info(reader: Reader, node: Node | None) -> BusinessDocumentInfo | None:
    if node is None:
        return None
    c = reader.children(node, DOCUMENT_INFO_CHILDREN)
    receivers: list[Receiver] = []
    receiver_list = c.one("ReceiverList")
    if receiver_list is not None:
        for receiver in reader.children(receiver_list, RECEIVER_LIST_CHILDREN).many("Receiver"):
            r = reader.children(receiver, RECEIVER_CHILDREN)
            receivers.append(Receiver(organ_id=r.required("OrganId"), receiver_type=r.integer("ReceiverType")))
    return BusinessDocumentInfo(
        document_info=c.boolean("DocumentInfo"),
        document_receiver=c.boolean("DocumentReceiver"),
        receivers=tuple(receivers),
    )


def _replacements(reader: Reader, node: Node | None) -> tuple[ReplacementInfo, ...]:
    if node is None:
        return ()
    result: list[ReplacementInfo] = []
    for item in reader.children(node, REPLACEMENT_LIST_CHILDREN).many("ReplacementInfo"):
        c = reader.children(item, REPLACEMENT_CHILDREN)
        organs = c.one("OrganIdList")
        result.append(
            ReplacementInfo(
                document_id=c.required("DocumentId"),
                organ_ids=() if organs is None else reader.children(organs, ORGAN_ID_LIST_CHILDREN).texts("OrganId"),
            )
        )
    return tuple(result)


def _business(reader: Reader, node: Node | None) -> Business | None:
    if node is None:
        return None
    c = reader.children(node, BUSINESS_CHILDREN)
    return Business(
        doc_type=c.integer("BussinessDocType"),
        document_id=c.text("DocumentId"),
        doc_reason=c.text("BussinessDocReason"),
        paper=c.integer("Paper"),
        staff=read_staff(reader, c.one("StaffInfo")),
        document_info=_document_info(reader, c.one("BussinessDocumentInfo")),
        replacements=_replacements(reader, c.one("ReplacementInfoList")),
    )


def read_trace_list(reader: Reader, node: Node) -> TraceHeaderList:
    """TraceHeaderList (§1.5): the hops and the business block, in either order.

    Args:
        reader: the package reader.
        node: the ``TraceHeaderList`` element (its ``id``/``version``/SOAP attributes are
            ignored: nothing in the model depends on them).

    Returns:
        The trace list.
    """
    c = reader.children(node, TRACE_LIST_CHILDREN)
    traces: list[TraceHeader] = []
    for hop in c.many("TraceHeader"):
        h = reader.children(hop, TRACE_CHILDREN)
        traces.append(TraceHeader(organ_id=h.required("OrganId"), timestamp=h.timestamp("Timestamp")))
    return TraceHeaderList(traces=tuple(traces), business=_business(reader, c.one("Bussiness")))


def read_status(reader: Reader, node: Node) -> StatusPackage:
    """A status package from its header (``MessageHeader`` or Bkav's ``Status``, §2.1).

    Args:
        reader: the package reader.
        node: the header element that carries ``StatusCode``.

    Returns:
        The status package; status code 14 is read as 15 (``edxml-status-code-alias``).
    """
    c = reader.children(node, STATUS_CHILDREN)
    from_ = read_organization(reader, c.one("From"))
    response_for = read_response_for(reader, c.one("ResponseFor"))
    staff = read_staff(reader, c.one("StaffInfo"))
    code_node = c.one("StatusCode")
    code = reader.text(code_node) or ""
    alias = _STATUS_ALIASES.get(code)
    if alias is not None and code_node is not None:
        reader.add(findings.STATUS_CODE_ALIAS(code_node.path, value=code, expected=alias))
        code = alias
    return StatusPackage(
        from_=from_,
        response_for=response_for,
        status_code=code,
        description=c.text("Description"),
        timestamp=c.timestamp("Timestamp"),
        staff=staff,
    )
