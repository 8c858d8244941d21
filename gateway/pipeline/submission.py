"""``process_submission``: a draft from the DMS becomes a sealed package and one send per recipient.

==============================================  ============================================
what happens                                    the submission
==============================================  ============================================
no / several packages in the mail               ``failed`` + a notice to the DMS (the code)
no envelope recipient                           ``failed`` + a notice to the DMS
sealing refused (``DraftRefused``,              ``failed`` + a notice to the DMS with the
``SelfCheckFailed``, ``SealingRefused``…)       reason
TSA / OCSP unreachable (``TransientError``)     ``deferred`` with backoff; at ``give_up_hours``
                                                after receipt ``failed`` + a notice. Nothing
                                                is ever sent unsealed
sealed                                          the sealed package spooled; for each envelope
                                                recipient a mail composed, spooled, and a
                                                ``send`` item created **in the same
                                                transaction** as ``sealed`` (with the
                                                DocumentId, code, subject, organs)
the DocumentId already went to a recipient      that recipient is skipped (unique
(another submission of the same document)       (DocumentId, recipient)); the DMS is told;
                                                nobody left: ``failed``
==============================================  ============================================

A replay after a crash seals again (the earlier attempt committed nothing: ``sealed`` and its
sends are one transaction); the spooled files of the lost attempt are harmless orphans.
"""

from __future__ import annotations

import asyncio
import logging
import re
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING, Any

from gateway.edxml.checks import default_document_id
from gateway.edxml.model import DocumentPackage, MessageHeader
from gateway.edxml.parse import parse
from gateway.errors import PermanentError, TransientError
from gateway.pipeline.context import PipelineContext
from gateway.pipeline.mails import compose, find_package
from gateway.pipeline.send import dms_notice, fail, retry_or_give_up
from gateway.store import AlreadyRecorded, Intake

if TYPE_CHECKING:
    from gateway.store import MessageView

__all__ = ["cover_text", "process_submission"]

log = logging.getLogger(__name__)


async def process_submission(item: MessageView, ctx: PipelineContext) -> None:
    """Seal one draft from the DMS and queue it for each of its envelope recipients.

    Args:
        item: the ``submission`` item, claimed (``active``).
        ctx: the pipeline context (``packages`` seals, ``spool`` and ``store`` keep).

    Returns:
        Nothing: the item has left ``active`` (``sealed``, ``deferred``, ``failed`` or ``hold``).

    Raises:
        TransientError: the store could not record the outcome (the scheduler holds the item).
    """
    try:
        await _submit(item, ctx)
    except TransientError as exc:  # TSA/OCSP down, self-check deferred, spool or store trouble
        log.warning("submission %s: cannot seal now: %s", item.id, exc)
        await retry_or_give_up(item, ctx, f"cannot seal now: {exc}", notify=True)
    except PermanentError as exc:  # the draft will never seal as it stands
        log.error("submission %s: refused: %s", item.id, exc)
        await fail(item, ctx, f"not sealed: {exc}", notify=True)
        ctx.metrics.verdict("out", "refused")
    except Exception as exc:  # never to the floor (HOUSE.md rule 13)
        log.exception("submission %s: unexpected %s, held for an admin", item.id, type(exc).__name__)
        await ctx.store.hold(item.id, f"unexpected: {type(exc).__name__}")


async def _submit(item: MessageView, ctx: PipelineContext) -> None:
    mail = await ctx.spool.get(item.sha256)
    found = find_package(mail)
    if found.package is None:
        problem = found.problem
        reason = "no package" if problem is None else f"[{problem.code}] {problem.message_vi} / {problem.message_en}"
        await fail(item, ctx, reason, notify=True)
        return
    recipients = list(dict.fromkeys(r.strip() for r in item.rcpt_to if r.strip()))
    if not recipients:
        await fail(item, ctx, "the submission names no recipient", notify=True)
        return
    with ctx.metrics.sealing_seconds.time():
        sealed = await ctx.packages.seal_package(found.package)  # nothing leaves unsealed
    header = await _header(ctx, sealed)
    document_id = header.document_id or default_document_id(header)
    sealed_sha256 = await ctx.spool.put(sealed)  # what we sealed, kept by its hash as evidence
    filename = _filename(found.filename, document_id)
    sends = {
        r: await _send_intake(
            item, ctx, sealed=sealed, recipient=r, header=header, document_id=document_id, filename=filename
        )
        for r in recipients
    }
    summary: dict[str, Any] = {
        "document_id": document_id,
        "from_organ": header.from_.organ_id,
        "to_organs": [o.organ_id for o in header.to],
        "code": str(header.code),
        "subject": header.subject,
        "package_kind": "edoc",
    }
    skipped: dict[str, int] = {}
    while True:
        notice = None
        if skipped:  # the DMS is told, in the same transaction, whom the document did not go to again
            already = ", ".join(f"{r} (item {i})" for r, i in skipped.items())
            told = f"{document_id} was already sent or queued for {already}: not sent again"
            if not sends:
                await fail(item, ctx, told, notify=True)
                return
            notice = await dms_notice(item, ctx, told)
        reason = f"sealed (package sha256 {sealed_sha256}); {len(sends)} send(s)"
        children = [*sends.values(), *([] if notice is None else [notice])]
        try:
            await ctx.store.transition(item.id, "sealed", reason=reason, expect="active", children=children, **summary)
            ctx.metrics.verdict("out", "accepted")  # sealed: our self-check passed it
            break
        except AlreadyRecorded as exc:
            # Another submission already queued this DocumentId for someone: never twice.
            holder = None if exc.existing_id is None else await ctx.store.get(exc.existing_id)
            if holder is None or holder.recipient not in sends:
                raise TransientError(f"the send key is taken but its holder is unknown: {exc}") from exc
            skipped[holder.recipient] = holder.id
            del sends[holder.recipient]
    log.info("submission %s: sealed %s for %s", item.id, document_id, ", ".join(sends))


async def _header(ctx: PipelineContext, sealed: bytes) -> MessageHeader:
    # Our own output, but parsed as strictly as any package (CPU work: off the event loop).
    read = await asyncio.to_thread(parse, sealed, max_attachment_bytes=ctx.settings.edxml.max_attachment_bytes)
    if not isinstance(read.package, DocumentPackage):
        raise PermanentError("the sealed package cannot be read back as a document package")
    return read.package.header


def _filename(given: str | None, document_id: str) -> str:
    if given and given.lower().endswith(".edxml"):
        return given
    return re.sub(r"[^A-Za-z0-9._-]+", "-", document_id).strip("-")[:100] + ".edxml"


def cover_text(header: MessageHeader) -> str:
    """The short text part of an outgoing mail (Vietnamese, then English).

    Args:
        header: the sealed document's header.

    Returns:
        The text.
    """
    sender = header.from_.organ_name or header.from_.organ_id
    return (
        f"Văn bản số {header.code}: {header.subject}\n"
        f"Gói tin edXML có ký số của {sender} được đính kèm.\n\n"
        f"Document {header.code}: {header.subject}\n"
        f"The signed edXML package from {sender} is attached.\n"
    )


async def _send_intake(
    item: MessageView,
    ctx: PipelineContext,
    *,
    sealed: bytes,
    recipient: str,
    header: MessageHeader,
    document_id: str,
    filename: str,
) -> Intake:
    mail_from = ctx.settings.axis.mail_from
    mail = compose(
        sealed,
        filename=filename,
        mail_from=mail_from,
        to=[recipient],
        subject=header.subject,
        text=cover_text(header),
        at=ctx.clock.now(),
        domain=mail_from.rpartition("@")[2] or "localhost",
    )
    sha256 = await ctx.spool.put(mail)
    message_id = BytesHeaderParser().parsebytes(mail).get("Message-ID")
    return Intake(
        kind="send",
        channel="internal",
        sha256=sha256,
        size=len(mail),
        mail_from=mail_from,
        rcpt_to=(recipient,),
        message_id_header=None if message_id is None else str(message_id),
        parent_id=item.id,
        recipient=recipient,
        document_id=document_id,
    )
