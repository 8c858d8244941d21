"""The outbound queue: ``process_send`` (a sealed package to the axis) and ``process_notice``.

Both hand a spooled mail to the ``Sender`` port and act on the answer; ``process_submission``
(``gateway.pipeline.submission``) uses the same retry and failure rules (``retry_or_give_up``,
``fail``). The rules (issue 5 "Outbound queue"):

==========================  =================================================================
the relay answers           the item
==========================  =================================================================
2xx                         ``sent``, ``sent_at`` = our clock when the 2xx arrived (the
                            **system send time**), the reply in the journal (event ``sent``)
4xx, network, timeout       ``deferred`` until now + ``backoff`` (exponential, capped, never
                            past the give-up time); at ``give_up_hours`` after the DMS
                            handed the document in: ``failed`` + a notice to the DMS
5xx                         ``failed`` at once + a notice to the DMS
==========================  =================================================================

A notice that finally fails is ``failed`` with no notice about it (no notice loops). Anything
unexpected holds the item for an admin (HOUSE.md rule 13).

**Never twice, and the one window.** A send row is unique on (DocumentId, recipient), so the
queue holds at most one send per pair, and a ``sent`` row is never claimed again; before
sending, the row is read back and a row that is no longer ``active`` (or another send of the
pair already ``sent``) is left alone. What no gateway can close: the relay says 250 and we crash
(or lose the database) before ``sent`` is committed. The row is still ``active``; at the next
start it is recovered and sent again, so the axis gets the mail twice with the same
Message-ID and DocumentId (at least once, as SMTP itself is: RFC 5321 §6.1). To keep the
window small, the ``sent`` commit is retried a few times before giving up on it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gateway.clock import iso_vn
from gateway.errors import GatewayError, PermanentError, TransientError
from gateway.pipeline.context import PipelineContext, backoff
from gateway.pipeline.notices import prepare_notice
from gateway.pipeline.ports import SpooledMail

if TYPE_CHECKING:
    from gateway.store import Intake, MessageView

__all__ = ["dms_notice", "fail", "give_up_at", "process_notice", "process_send", "retry_or_give_up"]

log = logging.getLogger(__name__)

_COMMIT_PAUSES = (0.2, 1.0, 3.0)
"""Pauses between attempts to commit ``sent`` after the relay's 2xx (then the error escapes)."""
_REPLY_CHARS = 1000
_REASON_CHARS = 4000


async def process_send(item: MessageView, ctx: PipelineContext) -> None:
    """Send one sealed package to its recipient on the axis (one ``send`` work item).

    Args:
        item: the ``send`` item, claimed (``active``).
        ctx: the pipeline context (``sender``, ``store``, ``spool``, ``settings.axis``).

    Returns:
        Nothing: the item has left ``active`` (``sent``, ``deferred``, ``failed`` or ``hold``).

    Raises:
        TransientError: the store could not record a deferral or a failure (the scheduler holds
            the item; if even that fails it stays ``active`` and is recovered at the next start).
        GatewayError: the relay took the mail but ``sent`` could not be committed after a few
            tries; deliberately not a ``TransientError``, so that it never turns into a retry
            (the scheduler holds the item for an admin, who sees the reply in the log).
    """
    await _run(item, ctx, notify=True)


async def process_notice(item: MessageView, ctx: PipelineContext) -> None:
    """Send one notice (a status 01/02 to a sender, or a failure notice to the DMS).

    The same retry rules as a send; a notice that fails for good is ``failed``, and nobody is
    notified about it.

    Args:
        item: the ``notice`` item, claimed (``active``).
        ctx: the pipeline context.

    Returns:
        Nothing: the item has left ``active``.

    Raises:
        TransientError: the store could not record the outcome (see ``process_send``).
        GatewayError: sent but not recorded (see ``process_send``).
    """
    await _run(item, ctx, notify=False)


async def _run(item: MessageView, ctx: PipelineContext, *, notify: bool) -> None:
    try:
        await _send(item, ctx, notify=notify)
    except SentUnrecorded:
        raise  # sent: a retry would send it twice; the scheduler holds it for an admin
    except TransientError as exc:  # the spool or the store, before anything was sent
        log.warning("%s %s: temporary failure: %s", item.kind, item.id, exc)
        await retry_or_give_up(item, ctx, f"temporary failure: {exc}", notify=notify)
    except Exception as exc:  # never to the floor: a person looks at it (HOUSE.md rule 13)
        log.exception("%s %s: unexpected %s, held for an admin", item.kind, item.id, type(exc).__name__)
        await ctx.store.hold(item.id, f"unexpected: {type(exc).__name__}")


class SentUnrecorded(GatewayError):
    """The relay took the mail but ``sent`` could not be committed: must never become a retry."""


async def _send(item: MessageView, ctx: PipelineContext, *, notify: bool) -> None:
    if not await _still_ours(item, ctx):
        return
    recipients = [item.recipient] if item.recipient else list(item.rcpt_to)
    if not recipients:
        await fail(item, ctx, "no recipient to send to", notify=notify)
        return
    # Streamed from the spool file (checked by ``open``; its trouble is the spool's, not the
    # relay's): a 90 MB package is never in memory whole.
    with await ctx.spool.open(item.sha256) as file:
        try:
            reply = await ctx.sender.send(
                SpooledMail(b"", file), mail_from=ctx.settings.axis.mail_from, rcpt_to=recipients
            )
        except PermanentError as exc:
            log.error("%s %s: refused by the relay: %s", item.kind, item.id, exc)
            await fail(item, ctx, f"refused by the relay: {exc}", notify=notify)
            return
        except TransientError as exc:
            log.warning("%s %s: relay unavailable: %s", item.kind, item.id, exc)
            await retry_or_give_up(item, ctx, f"relay unavailable: {exc}", notify=notify)
            return
    await _record_sent(item, ctx, reply, sent_at=ctx.clock.now())


async def _still_ours(item: MessageView, ctx: PipelineContext) -> bool:
    """Belt and braces before a send: the row is still ``active`` and its pair not yet sent."""
    current = await ctx.store.get(item.id)
    if current is None or current.state != "active" or current.sent_at is not None:
        state = "gone" if current is None else current.state
        log.warning("%s %s: is %s, not sending it again", item.kind, item.id, state)
        return False
    if item.kind == "send" and item.parent_id is not None:
        for sibling in await ctx.store.list(kind="send", state="sent", parent_id=item.parent_id, limit=1000):
            if sibling.id != item.id and (sibling.document_id, sibling.recipient) == (
                item.document_id,
                item.recipient,
            ):
                reason = f"not sent again: {item.document_id} already went to {item.recipient} (item {sibling.id})"
                await ctx.store.transition(item.id, "failed", reason=reason, expect="active", last_error=reason)
                return False
    return True


async def _record_sent(item: MessageView, ctx: PipelineContext, reply: str, *, sent_at: datetime) -> None:
    reply = " ".join(reply.split())[:_REPLY_CHARS]
    for pause in (*_COMMIT_PAUSES, None):
        try:
            await ctx.store.transition(
                item.id,
                "sent",
                reason=f"accepted by the relay: {reply}",
                event="sent",
                expect="active",
                sent_at=sent_at,
                last_error=None,
            )
            log.info("%s %s: sent to %s: %s", item.kind, item.id, item.recipient or item.rcpt_to, reply)
            return
        except TransientError as exc:
            if pause is None:
                # The at-least-once window (module docstring): the relay has the mail, we could
                # not say so. Escaping makes the scheduler hold the item for an admin instead of
                # deferring it into a second send.
                log.critical("%s %s: sent (%s) but not recorded: %s", item.kind, item.id, reply, exc)
                raise SentUnrecorded(f"sent ({reply}) but not recorded: {exc}") from exc
            await asyncio.sleep(pause)


def _clip(text: str) -> str:
    """The store keeps reasons up to 4096 characters; a relay's chatter may be longer."""
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def give_up_at(started: datetime | None, ctx: PipelineContext) -> datetime:
    """When outbound work that started at ``started`` is given up (``[queue] give_up_hours``).

    Args:
        started: when the DMS handed the document in (``None``: now).
        ctx: the pipeline context (clock, settings).

    Returns:
        The give-up time (aware UTC).
    """
    return (started or ctx.clock.now()) + timedelta(hours=ctx.settings.queue.give_up_hours)


async def _started(item: MessageView, ctx: PipelineContext) -> datetime | None:
    """The receive time the give-up age counts from: a send's is its submission's."""
    if item.kind == "send" and item.parent_id is not None:
        parent = await ctx.store.get(item.parent_id)
        if parent is not None and parent.received_at is not None:
            return parent.received_at
    return item.received_at


async def retry_or_give_up(item: MessageView, ctx: PipelineContext, error: str, *, notify: bool) -> None:
    """Defer ``item`` with backoff, or fail it when its give-up time has come.

    The next attempt is never scheduled after the give-up time, so the last attempt happens
    at that time and a failure then is final.

    Args:
        item: the active work item (submission, send or notice).
        ctx: the pipeline context.
        error: what went wrong (journal, ``last_error``, the notice).
        notify: whether giving up notifies the DMS (not for notices).

    Raises:
        TransientError: the store could not record it.
    """
    now = ctx.clock.now()
    deadline = give_up_at(await _started(item, ctx), ctx)
    if now >= deadline:
        hours = ctx.settings.queue.give_up_hours
        await fail(item, ctx, f"given up after {hours:g} h: {error}", notify=notify)
        return
    until = min(now + backoff(item.attempts, ctx.settings.queue), deadline)
    await ctx.store.defer(item.id, until=until, error=_clip(error))


async def fail(item: MessageView, ctx: PipelineContext, reason: str, *, notify: bool) -> None:
    """Move ``item`` to ``failed`` and, when asked, create the notice that tells the DMS.

    The notice is recorded in the same transaction as ``failed`` (design note §3): a crash
    leaves either both or neither, and a replay makes no second notice.

    Args:
        item: the active work item.
        ctx: the pipeline context.
        reason: why, in words an operator and the DMS's clerk can act on.
        notify: whether to notify the DMS.

    Raises:
        TransientError: the spool or the store could not take it now.
    """
    notice = await dms_notice(item, ctx, reason) if notify else None
    await ctx.store.transition(
        item.id,
        "failed",
        reason=_clip(reason),
        expect="active",
        children=[] if notice is None else [notice],
        last_error=_clip(reason),
    )


async def dms_notice(item: MessageView, ctx: PipelineContext, reason: str) -> Intake | None:
    """Compose and spool a plain notice to the DMS about ``item`` (not yet recorded).

    It goes to ``[dms] notify``, else to whoever submitted the document (the submission's
    envelope sender). The caller records it with the transition that causes it.

    Args:
        item: the submission or send that failed (or was partly skipped).
        ctx: the pipeline context.
        reason: what happened.

    Returns:
        The notice's ``Intake``, or ``None`` when there is nobody to tell.

    Raises:
        TransientError: the spool could not take it now.
    """
    submission = item
    if item.kind == "send" and item.parent_id is not None:
        submission = await ctx.store.get(item.parent_id) or item
    recipient = ctx.settings.dms.notify or submission.mail_from.strip().strip("<>")
    if not recipient:
        log.error("%s %s: nobody to tell ([dms] notify is not set): %s", item.kind, item.id, reason)
        return None
    subject, text = _failure_text(item, submission, reason)
    return await prepare_notice(
        ctx, parent=item, recipient=recipient, kind="plain", package=None, subject=subject, text=text
    )


def _failure_text(item: MessageView, submission: MessageView, reason: str) -> tuple[str, str]:
    label = item.code or submission.code or item.document_id or submission.subject or f"#{submission.id}"
    handed_in = iso_vn(submission.received_at) if submission.received_at else "?"
    if item.kind == "send":
        vi = f"Văn bản {label} (nhận lúc {handed_in}) không gửi được tới {item.recipient}."
        en = f"Document {label} (handed in at {handed_in}) could not be sent to {item.recipient}."
    else:
        vi = f"Văn bản {label} (nhận lúc {handed_in}) không được ký số và gửi đi."
        en = f"Document {label} (handed in at {handed_in}) was not sealed and not sent."
    subject = f"Không gửi được văn bản / Not sent: {label}"
    text = f"{vi}\nLý do: {reason}\n\n{en}\nReason: {reason}\n"
    return subject, text
