"""Semantic checks on a parsed package (spec/edxml.md §1.3–§1.5, §1.9, §2.2, §3, §5.5, §7.4).

``check_package`` looks at a model value (never at XML) and returns findings in document
order. The parser calls it at the end of every parse; ``gateway edxml build`` calls it
before writing. It never raises on a bad package: a verdict is a value.

Rules (code, default severity):

* ``edxml-missing-field`` (error) — required, absent or empty:
    document: ``From/OrganId``; at least one ``To`` and each ``To[i]/OrganId``;
    ``Code/CodeNumber``; ``Code/CodeNotation``; ``PromulgationInfo/PromulgationDate``;
    ``DocumentType`` (``Type`` or ``TypeName``); ``Subject``; ``SignerInfo/FullName``;
    inside optional blocks that are present: ``TraceHeader[i]/OrganId``,
    ``Receiver[i]/OrganId``, ``ReplacementInfo[i]/DocumentId``.
    status: ``From/OrganId``; ``ResponseFor`` with ``DocumentId``, or ``Code`` and
    ``OrganId``; ``StatusCode``; ``Timestamp``.
    ``TraceHeaderList`` itself is not required (§7.4 leaves it out, the SDK always writes it).
* ``edxml-bad-org-id`` (error) — a non-empty OrganId that is none of the kinds of
  ``gateway.edxml.orgid`` (From, To, ResponseFor, TraceHeader, Receiver, ReplacementInfo).
  ``OrganizationInCharge`` is not checked: peers write a name there as often as a code.
* ``edxml-test-org-id`` (info) — a VXP test account (``vxp.saas.NN``) in any of those.
* ``edxml-bad-value`` (error) — Priority ∉ 0–4, BussinessDocType ∉ 0–3, StatusCode ∉ §2.2
  (``14`` is accepted: a known SDK alias for 15 that the parser reports), SteeringType ∉ 0–2,
  Paper ∉ {0, 1}, ReceiverType ∉ {0, 1}, PromulgationAmount or PageAmount negative.
* ``edxml-unusual-value`` (warning) — DocumentType/Type ∉ {1, 2}: Bkav's validator refuses
  it, but the .NET SDK writes the Decree 30/2020 position (18 = Công văn).
* ``edxml-field-too-long`` (warning) — every §1.9 limit, counted in characters after NFC
  normalisation (a decomposed "ệ" is one character to a clerk). The legacy 15-character
  DocumentId limit is *not* applied: it contradicts the SDK's own DocumentId format.
* ``edxml-date-in-future`` (warning) — PromulgationDate (of the header and of every
  ResponseFor) after ``today``, when ``today`` is given.
* ``edxml-business-inconsistent`` (warning) — BussinessDocType 1 without ResponseFor,
  2 without BussinessDocumentInfo, 3 without ReplacementInfo.

``where`` (and each message's ``{field}``) is the path of local element names below the
envelope header, with a 1-based index on elements that may repeat, even when there is one:
``MessageHeader/To[2]/OrganId``, ``TraceHeaderList/Bussiness/BussinessDocType``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import date

from gateway.edxml import findings
from gateway.edxml.findings import Finding
from gateway.edxml.model import (
    Business,
    DocumentPackage,
    MessageHeader,
    Organization,
    ResponseFor,
    StatusCode,
    StatusPackage,
    TraceHeaderList,
)
from gateway.edxml.orgid import OrganId

__all__ = ["LENGTH_LIMITS", "check_package", "default_document_id"]

LENGTH_LIMITS: dict[str, int] = {
    "Subject": 500,
    "Content": 500,
    "ToPlaces/Place": 150,
    "Appendix": 250,
    "OrganName": 200,
    "OrganAdd": 250,
    "Email": 100,
    "Telephone": 20,
    "Fax": 20,
    "CodeNumber": 11,
    "CodeNotation": 30,
    "PromulgationInfo/Place": 50,
    "TypeName": 100,
    "Competence": 100,
    "Position": 100,
    "FullName": 50,
    "SphereOfPromulgation": 100,
    "TyperNotation": 10,
}
"""§1.9 limits (characters), keyed by the element name or the shortest unambiguous path."""

_ACCEPTED_STATUS_CODES = frozenset(code.value for code in StatusCode) | {"14"}
_HEADER = "MessageHeader"
_BUSINESS = "TraceHeaderList/Bussiness"


def default_document_id(header: MessageHeader) -> str:
    """The SDK's DocumentId for a header: ``<senderOrganId>,<yyyy/MM/dd>,<Number>/<Notation>``.

    Args:
        header: a document header with sender, promulgation date and code.

    Returns:
        e.g. ``000.00.00.G22,2015/09/30,7816/VPCP-TTĐT`` (spec §1.3); just ``<Number>`` at
        the end when the notation is empty, as ``DocumentCode`` displays it.

    Raises:
        ValueError: when the sender's OrganId, the promulgation date or the code number is
            missing, because the id would then not identify the document.
    """
    promulgated = header.promulgation.date
    if not header.from_.organ_id or promulgated is None or not header.code.number:
        raise ValueError("a DocumentId needs From/OrganId, PromulgationDate and CodeNumber")
    return f"{header.from_.organ_id},{promulgated:%Y/%m/%d},{header.code}"


def _length(text: str) -> int:
    return len(unicodedata.normalize("NFC", text))


class _Checks:
    """Collects findings in document order; one method per kind of rule."""

    def __init__(self, today: date | None) -> None:
        self.today = today
        self.found: list[Finding] = []

    def required(self, where: str, present: object) -> None:
        if present is None or present in ("", ()):
            self.found.append(findings.MISSING_FIELD(where, field=where))

    def organ_id(self, where: str, value: str | None, *, required: bool = False) -> None:
        if not value:
            if required:
                self.required(where, value)
            return
        parsed = OrganId.parse(value)
        if parsed is None:
            self.found.append(findings.BAD_ORG_ID(where, value=value, field=where))
        elif parsed.format == "test":
            self.found.append(findings.TEST_ORG_ID(where, value=value, field=where))

    def length(self, where: str, value: str | None, limit_key: str) -> None:
        limit = LENGTH_LIMITS[limit_key]
        if value is not None and (length := _length(value)) > limit:
            self.found.append(findings.FIELD_TOO_LONG(where, field=where, length=length, limit=limit))

    def choice(self, where: str, value: int | None, allowed: Iterable[int], expected: str) -> None:
        if value is not None and value not in allowed:
            self.found.append(findings.BAD_VALUE(where, value=value, field=where, expected=expected))

    def not_future(self, where: str, value: date | None) -> None:
        if value is not None and self.today is not None and value > self.today:
            self.found.append(findings.DATE_IN_FUTURE(where, value=f"{value:%Y/%m/%d}", field=where))

    # ----------------------------------------------------------------- blocks

    def organization(self, path: str, organ: Organization) -> None:
        self.organ_id(f"{path}/OrganId", organ.organ_id, required=True)
        self.length(f"{path}/OrganName", organ.organ_name, "OrganName")
        self.length(f"{path}/OrganAdd", organ.organ_add, "OrganAdd")
        self.length(f"{path}/Email", organ.email, "Email")
        self.length(f"{path}/Telephone", organ.telephone, "Telephone")
        self.length(f"{path}/Fax", organ.fax, "Fax")

    def response_for(self, path: str, ref: ResponseFor) -> None:
        self.organ_id(f"{path}/OrganId", ref.organ_id)
        self.not_future(f"{path}/PromulgationDate", ref.promulgation_date)

    def header(self, header: MessageHeader) -> None:
        h = _HEADER
        self.organization(f"{h}/From", header.from_)
        self.required(f"{h}/To", header.to)
        for index, recipient in enumerate(header.to, start=1):
            self.organization(f"{h}/To[{index}]", recipient)
        self.required(f"{h}/Code/CodeNumber", header.code.number)
        self.length(f"{h}/Code/CodeNumber", header.code.number, "CodeNumber")
        self.required(f"{h}/Code/CodeNotation", header.code.notation)
        self.length(f"{h}/Code/CodeNotation", header.code.notation, "CodeNotation")
        promulgation = header.promulgation
        self.length(f"{h}/PromulgationInfo/Place", promulgation.place, "PromulgationInfo/Place")
        self.required(f"{h}/PromulgationInfo/PromulgationDate", promulgation.date)
        self.not_future(f"{h}/PromulgationInfo/PromulgationDate", promulgation.date)
        kind = header.document_type
        if kind.type is None and kind.type_name is None:
            where = f"{h}/DocumentType"
            self.found.append(findings.MISSING_FIELD(where, field=f"{where}/Type, {where}/TypeName"))
        if kind.type is not None and kind.type not in (1, 2):
            self.found.append(
                findings.UNUSUAL_VALUE(
                    f"{h}/DocumentType/Type",
                    value=kind.type,
                    field=f"{h}/DocumentType/Type",
                    expected="1 VBQPPL, 2 VBHC",
                )
            )
        self.length(f"{h}/DocumentType/TypeName", kind.type_name, "TypeName")
        self.required(f"{h}/Subject", header.subject)
        self.length(f"{h}/Subject", header.subject, "Subject")
        self.length(f"{h}/Content", header.content, "Content")
        signer = header.signer
        self.length(f"{h}/SignerInfo/Competence", signer.competence, "Competence")
        self.length(f"{h}/SignerInfo/Position", signer.position, "Position")
        self.required(f"{h}/SignerInfo/FullName", signer.full_name)
        self.length(f"{h}/SignerInfo/FullName", signer.full_name, "FullName")
        for index, place in enumerate(header.to_places, start=1):
            self.length(f"{h}/ToPlaces/Place[{index}]", place, "ToPlaces/Place")
        if (other := header.other_info) is not None:
            o = f"{h}/OtherInfo"
            self.choice(f"{o}/Priority", other.priority, range(5), "0–4")
            sphere = other.sphere_of_promulgation
            self.length(f"{o}/SphereOfPromulgation", sphere, "SphereOfPromulgation")
            self.length(f"{o}/TyperNotation", other.typer_notation, "TyperNotation")
            for name, amount in (
                ("PromulgationAmount", other.promulgation_amount),
                ("PageAmount", other.page_amount),
            ):
                if amount is not None and amount < 0:
                    self.found.append(
                        findings.BAD_VALUE(f"{o}/{name}", value=amount, field=f"{o}/{name}", expected="≥ 0")
                    )
            for index, appendix in enumerate(other.appendixes, start=1):
                self.length(f"{o}/Appendixes/Appendix[{index}]", appendix, "Appendix")
        for index, ref in enumerate(header.response_for, start=1):
            self.response_for(f"{h}/ResponseFor[{index}]", ref)
        self.choice(f"{h}/SteeringType", header.steering_type, range(3), "0–2")

    def trace(self, trace: TraceHeaderList, header: MessageHeader) -> None:
        for index, hop in enumerate(trace.traces, start=1):
            self.organ_id(f"TraceHeaderList/TraceHeader[{index}]/OrganId", hop.organ_id, required=True)
        if trace.business is not None:
            self.business(trace.business, header)

    def business(self, business: Business, header: MessageHeader) -> None:
        b = _BUSINESS
        self.choice(f"{b}/BussinessDocType", business.doc_type, range(4), "0–3")
        self.choice(f"{b}/Paper", business.paper, (0, 1), "0, 1")
        info = business.document_info
        if info is not None:
            for index, receiver in enumerate(info.receivers, start=1):
                r = f"{b}/BussinessDocumentInfo/ReceiverList/Receiver[{index}]"
                self.organ_id(f"{r}/OrganId", receiver.organ_id, required=True)
                self.choice(f"{r}/ReceiverType", receiver.receiver_type, (0, 1), "0, 1")
        for index, replaced in enumerate(business.replacements, start=1):
            r = f"{b}/ReplacementInfoList/ReplacementInfo[{index}]"
            self.required(f"{r}/DocumentId", replaced.document_id)
            for number, organ in enumerate(replaced.organ_ids, start=1):
                self.organ_id(f"{r}/OrganIdList/OrganId[{number}]", organ, required=True)
        needs = {
            1: ("MessageHeader/ResponseFor", bool(header.response_for)),
            2: (f"{b}/BussinessDocumentInfo", info is not None),
            3: (f"{b}/ReplacementInfoList/ReplacementInfo", bool(business.replacements)),
        }
        if business.doc_type in needs:
            expected, present = needs[business.doc_type]
            if not present:
                where = f"{b}/BussinessDocType"
                self.found.append(
                    findings.BUSINESS_INCONSISTENT(where, value=business.doc_type, field=where, expected=expected)
                )

    def status(self, package: StatusPackage) -> None:
        h = _HEADER
        self.organization(f"{h}/From", package.from_)
        ref = package.response_for
        if ref.document_id is None and (ref.code is None or ref.organ_id is None):
            where = f"{h}/ResponseFor"
            self.found.append(
                findings.MISSING_FIELD(where, field=f"{where}/DocumentId, {where}/Code + {where}/OrganId")
            )
        self.response_for(f"{h}/ResponseFor", ref)
        self.required(f"{h}/StatusCode", package.status_code)
        if package.status_code and package.status_code not in _ACCEPTED_STATUS_CODES:
            expected = ", ".join(code.value for code in StatusCode)
            where = f"{h}/StatusCode"
            self.found.append(findings.BAD_VALUE(where, value=package.status_code, field=where, expected=expected))
        self.required(f"{h}/Timestamp", package.timestamp)


def check_package(package: DocumentPackage | StatusPackage, *, today: date | None = None) -> tuple[Finding, ...]:
    """Check a parsed package against the rules of the module docstring.

    Args:
        package: a document or status package, as parsed or about to be built.
        today: the current date in Vietnam time (``clock.to_vn(clock.now()).date()``);
            without it, dates are not compared with the present.

    Returns:
        The findings, in document order; empty when nothing is wrong.
    """
    checks = _Checks(today)
    if isinstance(package, StatusPackage):
        checks.status(package)
    else:
        checks.header(package.header)
        if package.trace is not None:
            checks.trace(package.trace, package.header)
    return tuple(checks.found)
