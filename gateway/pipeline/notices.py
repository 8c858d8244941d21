"""Notices to the sender of an inbound mail: status 01 (arrived), status 02 (refused), plain text.

A notice is a work item of kind ``notice``: the mail is composed and spooled here and recorded
``incoming`` with its cause (``parent_id``), its ``recipient`` and the code of the status package
it attaches (``status_code``: ``01`` or ``02``; ``None`` for plain text); ``process_notice`` (the
sending half) sends it like any other outbound mail, with retries. Status packages are built
with ``make_status``, written with ``build`` and signed with our organisation key, so the
sender's gateway can verify them like any package.

The search and the archivist's record read a notice's status code from its row. The mail also
names its kind in ``NOTICE_HEADER`` (read by ``notice_kind``): for rows recorded before notices
carried their code, and for plain notices, that header is the only witness.

Why each text says what it says: Decree 30 Art. 21.2.b and Hải Phòng Art. 17.3 require the
sender to be told *why* a document was refused, so the 02's Description carries every decisive
finding's code with its Vietnamese and English text, which were written for clerks. A status 01
is answered "the same day": it is created the moment the verdict is recorded.

Idempotency: a replay after a crash must not send a second notice. ``prepare_notice`` only
composes and spools; the caller records the notice in the same transaction as its cause (the
verdict: ``record_verdict(children=...)``; a failure: ``transition(children=...)``), so it
exists once or not at all. ``create_notice`` records a notice on its own and first looks for
one with the same parent and recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any, Final, Literal

from gateway.clock import iso_vn, to_vn
from gateway.edxml.build import build
from gateway.edxml.model import DocumentPackage, StatusCode, StatusPackage
from gateway.edxml.status import make_status
from gateway.pipeline.context import PipelineContext, our_organization
from gateway.pipeline.mails import compose
from gateway.sign.envelope import sign_envelope
from gateway.store import Intake
from gateway.verify.report import VerificationReport

if TYPE_CHECKING:
    from gateway.store import MessageView

__all__ = [
    "NOTICE_HEADER",
    "NOTICE_KINDS",
    "NoticeKind",
    "Reason",
    "create_notice",
    "notice_kind",
    "prepare_notice",
    "reasons_of",
    "refusal_text",
    "status_01",
    "status_02",
    "text_01",
    "text_02",
]

log = logging.getLogger(__name__)

NoticeKind = Literal["status-01", "status-02", "plain"]
NOTICE_KINDS: Final[Mapping[NoticeKind, str | None]] = {"status-01": "01", "status-02": "02", "plain": None}
"""Each kind of notice and the status code of the package it carries (``None``: no status package)."""
NOTICE_HEADER: Final = "X-Gateway-Notice"
"""The header naming a notice's cause and kind: ``<parent id>; <kind>`` (read by ``notice_kind``)."""

# RFC 3834: automatic replies say so, and we never answer a mail that says so (no mail loops
# between two gateways refusing each other's notices).
AUTO_SUBMITTED: Final = "auto-replied"


@dataclass(frozen=True)
class Reason:
    """One decisive finding, as the sender is told it."""

    code: str
    where: str
    message_vi: str
    message_en: str


def reasons_of(report: VerificationReport | Mapping[str, Any]) -> tuple[Reason, ...]:
    """The decisive findings of a verdict: from the report, or from its stored JSON.

    The stored JSON (``VerificationReport.to_json()``) is enough to refuse again after a
    crash without verifying again.

    Args:
        report: the report, or its JSON as the store keeps it.

    Returns:
        The findings whose action made the verdict (``reject`` for a refusal, ``defer``
        for a deferral), in report order.
    """
    if isinstance(report, VerificationReport):
        return tuple(Reason(f.code, f.where, f.message_vi, f.message_en) for f in report.decisive)
    wanted = {"refused": "reject", "deferred": "defer"}.get(str(report.get("verdict")))
    return tuple(
        Reason(str(f["code"]), str(f.get("where", "")), str(f["message_vi"]), str(f["message_en"]))
        for f in report.get("findings", ())
        if f.get("action") == wanted
    )


def refusal_text(reasons: Sequence[Reason]) -> str:
    """The reasons of a refusal in Vietnamese, then in English (the 02's Description and mail text)."""
    vi = ["Từ chối tiếp nhận văn bản. Lý do:"]
    en = ["The document is refused. Reasons:"]
    for r in reasons:
        vi.append(f"- [{r.code}] {r.message_vi} ({r.where})")
        en.append(f"- [{r.code}] {r.message_en} ({r.where})")
    if not reasons:  # a refusal always has a reason; this keeps the text honest if one is lost
        vi.append("- (không rõ lý do; liên hệ đơn vị nhận)")
        en.append("- (no reason recorded; contact the receiving agency)")
    return "\n".join(vi) + "\n\n" + "\n".join(en)


def _signed(ctx: PipelineContext, status: StatusPackage) -> bytes:
    return sign_envelope(build(status), ctx.key, algorithm=ctx.settings.edxml.signature_algorithm)


def status_01(ctx: PipelineContext, item: MessageView, package: DocumentPackage) -> bytes:
    """The signed status package 01 ("Đã đến") about an accepted document.

    Its Timestamp is the item's system receive time: the document arrived when it was received,
    whatever the verification and the DMS took afterwards.

    Args:
        ctx: the pipeline context (our identity, key, clock).
        item: the inbound work item.
        package: the accepted document package.

    Returns:
        The signed edXML bytes.

    Raises:
        ValueError: the document cannot be answered (``make_status``/``build`` refuse it).
        EnvelopeSigningError: our key could not sign.
    """
    at = item.received_at or ctx.clock.now()
    status = make_status(package, StatusCode.ARRIVED, sender=our_organization(ctx.settings.identity), at=at)
    return _signed(ctx, status)


def status_02(
    ctx: PipelineContext,
    item: MessageView,
    package: DocumentPackage,
    reasons: Sequence[Reason],
) -> bytes:
    """The signed status package 02 ("Từ chối tiếp nhận") whose Description says why.

    Args:
        ctx: the pipeline context.
        item: the inbound work item (for the log; the status is dated now, when decided).
        package: the refused document package (as far as it could be read).
        reasons: the decisive findings (``reasons_of(report)``).

    Returns:
        The signed edXML bytes.

    Raises:
        ValueError: the document cannot be answered (no From OrganId or no way to name it).
        EnvelopeSigningError: our key could not sign.
    """
    status = make_status(
        package,
        StatusCode.REJECTED,
        sender=our_organization(ctx.settings.identity),
        at=ctx.clock.now(),
        description=refusal_text(reasons),
    )
    log.debug("status 02 for item %s: %s", item.id, [r.code for r in reasons])
    return _signed(ctx, status)


def _document_line(package: DocumentPackage | StatusPackage | None) -> tuple[str, str]:
    if isinstance(package, DocumentPackage):
        header = package.header
        name = f"{header.code} ({header.subject})" if header.subject else str(header.code)
        return f"Văn bản số {name}", f"Document {name}"
    if isinstance(package, StatusPackage):
        return "Gói tin trạng thái", "The status package"
    return "Thư", "The mail"


def text_01(ctx: PipelineContext, item: MessageView, package: DocumentPackage) -> tuple[str, str]:
    """Subject and body of a status 01 notice (Vietnamese, then English).

    Returns:
        ``(subject, text)``.
    """
    ours = ctx.settings.identity.organ_name or our_organization(ctx.settings.identity).organ_id
    at = iso_vn(item.received_at or ctx.clock.now())
    vi, en = _document_line(package)
    subject = f"Đã đến / Arrived: {package.header.code}"
    text = (
        f"{vi} đã đến {ours} lúc {at}. Gói tin trạng thái 01 (Đã đến) có ký số được đính kèm.\n\n"
        f"{en} arrived at {ours} at {at}. The signed status package 01 (arrived) is attached.\n"
    )
    return subject, text


def text_02(
    package: DocumentPackage | StatusPackage | None, reasons: Sequence[Reason], *, signed: bool
) -> tuple[str, str]:
    """Subject and body of a refusal notice (status 02, or plain when no status could be built).

    Args:
        package: what could be read of the refused package (``None``: nothing).
        reasons: the decisive findings.
        signed: whether a signed status package 02 is attached.

    Returns:
        ``(subject, text)``.
    """
    vi, en = _document_line(package)
    code = package.header.code if isinstance(package, DocumentPackage) else None
    subject = "Từ chối tiếp nhận / Refused" + (f": {code}" if code else "")
    attached = (
        "Gói tin trạng thái 02 (Từ chối tiếp nhận) có ký số được đính kèm.\n"
        "The signed status package 02 (refused) is attached.\n"
        if signed
        else ""
    )
    text = f"{vi} không được tiếp nhận. / {en} is refused.\n\n{refusal_text(reasons)}\n\n{attached}"
    return subject, text


def _plain_mail(ctx: PipelineContext, *, to: str, subject: str, text: str, headers: Mapping[str, str]) -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = ctx.settings.axis.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(to_vn(ctx.clock.now()))
    message["Message-ID"] = make_msgid(domain=_domain(ctx))
    for name, value in headers.items():
        message[name] = value
    message.set_content(text)
    return message.as_bytes()


def _domain(ctx: PipelineContext) -> str:
    return ctx.settings.axis.mail_from.rpartition("@")[2] or "localhost"


async def prepare_notice(
    ctx: PipelineContext,
    *,
    parent: MessageView,
    recipient: str,
    kind: NoticeKind,
    package: bytes | None,
    subject: str,
    text: str,
) -> Intake:
    """Compose and spool one notice; return its work item, not yet recorded.

    ``process_inbound`` records it with the verdict that causes it, in one transaction
    (``record_verdict(children=...)``, design note §3): a replay after a crash finds the
    verdict recorded and makes no second notice. A notice spooled but never recorded (a crash
    in between) is an unreferenced spool file, harmless.

    Args:
        ctx: the pipeline context.
        parent: the work item the notice is about (its cause).
        recipient: the address it goes to.
        kind: ``status-01``, ``status-02`` (with ``package``) or ``plain`` (text only).
        package: the signed status package to attach (``None`` for ``plain``).
        subject: the Subject (Vietnamese / English).
        text: the body (Vietnamese, then English).

    Returns:
        The notice's ``Intake`` (kind ``notice``, channel ``internal``, ``parent_id``, ``recipient``,
        and the ``status_code`` of the package it attaches: ``01``, ``02``, or ``None`` for plain).

    Raises:
        ValueError: a status notice without its package, or a plain one with a package.
        TransientError: the spool cannot take it now.
    """
    status_code = NOTICE_KINDS[kind]
    if (package is None) != (status_code is None):
        raise ValueError(f"a {kind} notice {'needs' if status_code else 'takes no'} package")
    headers = {"Auto-Submitted": AUTO_SUBMITTED, NOTICE_HEADER: f"{parent.id}; {kind}"}
    if package is None:
        mail = _plain_mail(ctx, to=recipient, subject=subject, text=text, headers=headers)
    else:
        mail = compose(
            package,
            filename=f"trang-thai-{status_code}-{parent.id}.edxml",
            mail_from=ctx.settings.axis.mail_from,
            to=[recipient],
            subject=subject,
            text=text,
            at=ctx.clock.now(),
            domain=_domain(ctx),
            headers=headers,
        )
    sha256 = await ctx.spool.put(mail)
    message_id = BytesHeaderParser().parsebytes(mail).get("Message-ID")
    return Intake(
        kind="notice",
        channel="internal",
        sha256=sha256,
        size=len(mail),
        mail_from=ctx.settings.axis.mail_from,
        rcpt_to=(recipient,),
        message_id_header=None if message_id is None else str(message_id),
        parent_id=parent.id,
        recipient=recipient,
        document_id=parent.document_id,
        status_code=status_code,
    )


def notice_kind(mail: bytes) -> NoticeKind | None:
    """The kind a notice mail we composed says it is (its ``NOTICE_HEADER``), or ``None``."""
    value = BytesHeaderParser().parsebytes(mail).get(NOTICE_HEADER)
    kind = None if value is None else str(value).rpartition(";")[2].strip()
    for known in NOTICE_KINDS:
        if kind == known:
            return known
    return None


async def create_notice(
    ctx: PipelineContext,
    *,
    parent: MessageView,
    recipient: str,
    kind: NoticeKind,
    package: bytes | None,
    subject: str,
    text: str,
) -> MessageView:
    """Compose, spool and record one notice on its own (sent later by ``process_notice``).

    For a notice that is not caused by a verdict (e.g. a failure notice to the DMS). At most
    one notice per (parent, recipient): when one exists (a replay after a crash), it is
    returned and nothing new is made.

    Args:
        ctx: the pipeline context.
        parent: the work item the notice is about.
        recipient: the address it goes to.
        kind: ``status-01``, ``status-02`` (with ``package``) or ``plain``.
        package: the signed status package to attach (``None`` for ``plain``).
        subject: the Subject.
        text: the body (Vietnamese, then English).

    Returns:
        The notice's work item (``incoming``), new or already there.

    Raises:
        ValueError: a status notice without its package, or a plain one with a package.
        TransientError: the spool or the database cannot take it now.
    """
    for notice in await ctx.store.list(kind="notice", parent_id=parent.id, limit=1000):
        if notice.recipient == recipient:
            return notice
    intake = await prepare_notice(
        ctx, parent=parent, recipient=recipient, kind=kind, package=package, subject=subject, text=text
    )
    return await ctx.store.record_intake(intake)
