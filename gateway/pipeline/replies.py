"""What an inbound verdict says back to the sender: status 01 on arrival, 02 or plain text on refusal.

``gateway.pipeline.receive`` decides; this module composes and spools the notices the decision
causes (``prepare_notice``) and hands them back unrecorded, so the caller records them in the
same transaction as their cause (``record_verdict(children=...)``): they exist once or not at all.

Who is told (issue 5 "Refusals"): a status package goes to the directory's addresses for the
package's From OrganId, else to the envelope sender. A plain-text notice (no status package can
be built: no readable document, or a status package, which is never answered with a status)
goes to the envelope sender only, and never to a null sender or to automatic mail (RFC 3834
``Auto-Submitted``): two gateways must not refuse each other's notices forever.
"""

from __future__ import annotations

import logging
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING

from gateway.edxml.model import DocumentPackage, StatusPackage
from gateway.pipeline.context import PipelineContext
from gateway.pipeline.notices import Reason, prepare_notice, status_01, status_02, text_01, text_02

if TYPE_CHECKING:
    from gateway.store import Intake, MessageView

__all__ = ["arrival_notices", "refusal_notices"]

log = logging.getLogger(__name__)


async def arrival_notices(item: MessageView, ctx: PipelineContext, package: DocumentPackage) -> list[Intake]:
    """Compose and spool the status 01 notices about an arrived document, not yet recorded.

    The caller records them in the same transaction as their cause (an acceptance in
    ``gateway.pipeline.receive``, an admin's release in ``gateway.pipeline.admin``).

    Args:
        item: the inbound work item.
        ctx: the pipeline context.
        package: the document package.

    Returns:
        One notice per address of the sender (the directory's, else the envelope sender's);
        none when there is nobody to tell.

    Raises:
        ValueError: the document cannot be answered (``status_01``).
        TransientError: the spool cannot take a notice now.
    """
    recipients = _sender_addresses(item, ctx, package.header.from_.organ_id)
    if not recipients:
        log.warning("inbound %s: nobody to send status 01 to (no directory entry, null sender)", item.id)
        return []
    signed = status_01(ctx, item, package)
    subject, text = text_01(ctx, item, package)
    return [
        await prepare_notice(
            ctx, parent=item, recipient=r, kind="status-01", package=signed, subject=subject, text=text
        )
        for r in recipients
    ]


async def refusal_notices(
    item: MessageView,
    ctx: PipelineContext,
    mail: bytes,
    package: DocumentPackage | StatusPackage | None,
    reasons: tuple[Reason, ...],
) -> list[Intake]:
    """Compose and spool the notices about a refusal, not yet recorded (see the module docstring).

    Args:
        item: the refused inbound work item.
        ctx: the pipeline context.
        mail: the spooled mail (its ``Auto-Submitted`` header decides whether a plain notice goes).
        package: what could be read of the package (``None``: nothing).
        reasons: the decisive findings (``reasons_of(report)``).

    Returns:
        A signed status 02 per address of the sender for a readable document; else at most one
        plain notice to the envelope sender; none when nobody may be told.

    Raises:
        TransientError: the spool cannot take a notice now.
    """
    if isinstance(package, DocumentPackage):
        try:
            signed: bytes | None = status_02(ctx, item, package, reasons)
        except ValueError as exc:  # no From OrganId, no way to name the document: plain text
            log.info("inbound %s: no status 02 possible (%s); plain notice", item.id, exc)
            signed = None
        if signed is not None:
            recipients = _sender_addresses(item, ctx, package.header.from_.organ_id)
            if not recipients:
                log.warning("inbound %s: refused, nobody to send status 02 to", item.id)
            subject, text = text_02(package, reasons, signed=True)
            return [
                await prepare_notice(
                    ctx, parent=item, recipient=r, kind="status-02", package=signed, subject=subject, text=text
                )
                for r in recipients
            ]
    # Plain text, to the envelope sender only, and never to automatic mail (mail loops).
    if _null_sender(item.mail_from) or _auto_submitted(mail):
        log.info("inbound %s: refused; no plain notice to a null sender or automatic mail", item.id)
        return []
    subject, text = text_02(package, reasons, signed=False)
    notice = await prepare_notice(
        ctx, parent=item, recipient=item.mail_from, kind="plain", package=None, subject=subject, text=text
    )
    return [notice]


def _sender_addresses(item: MessageView, ctx: PipelineContext, organ_id: str | None) -> tuple[str, ...]:
    agency = ctx.directory.get(organ_id)
    if agency is not None and agency.mail:
        return agency.mail
    return () if _null_sender(item.mail_from) else (item.mail_from,)


def _null_sender(address: str) -> bool:
    return address.strip() in ("", "<>")


def _auto_submitted(mail: bytes) -> bool:
    value = BytesHeaderParser().parsebytes(mail).get("Auto-Submitted")
    return value is not None and str(value).strip().lower() not in ("", "no")
