"""``process_inbound``: judge a mail from the axis and act on the verdict.

The decision table (issue 5 "Relay to the DMS", "Refusals", "Deferred lane"):

============================  ============================================================
verdict                       actions, in this order
============================  ============================================================
no / several packages         refused: verdict recorded (the mail finding), a plain-text
                              notice to the envelope sender (no status package can be built
                              without a document) → ``refused``
accepted, document package    status 01 notice to the sender (created at once: "the same
                              day") → original mail delivered to the DMS with
                              ``X-Gateway-*`` headers prepended → ``delivered``
accepted, status package      status event on the trail of our outbound document (when we
                              know it) → delivered to the DMS → ``delivered``; no 01 in
                              reply to a status
refused, readable document    signed status 02 whose Description gives every decisive code
                              with its Vietnamese and English text, to the directory's
                              addresses for the From OrganId, else the envelope sender
                              → ``refused``
refused, anything else        (unreadable package, or a status package: a status is never
                              answered with a status, which could ping-pong between two
                              gateways) a plain notice to the envelope sender → ``refused``
deferred                      ``deferred`` until now + backoff; older than
                              ``defer_max_age_hours`` (from the receive time) → ``hold``:
                              never accepted blind
============================  ============================================================

Failures: the DMS unreachable (``TransientError``) → ``deferred`` with the verdict kept; the DMS
refusing (``PermanentError``) → ``hold``; spool or store trouble (``TransientError``) →
``deferred``; any other exception → ``hold`` with ``unexpected: <type>`` and the traceback
logged (HOUSE.md rule 13).

A verdict, once recorded, is never judged again (decision): a delivery retry or a replay after
a crash carries out the recorded verdict from the stored report. Re-verifying later could
contradict a status 01 already sent, and the journal holds exactly one decision per item. Only
``deferred`` verdicts are judged again: that is what the deferred lane is for (an admin's
``queue retry`` of an item held past ``defer_max_age`` buys exactly one more judgement).

Idempotency, so that a replay after a crash changes nothing (design note §3): the verdict, its
summary columns, the next state (``refused``, ``deferred``, ``hold``) and the notices it causes
are one store transaction (``record_verdict(children=...)``), so notices exist once or not at
all; an accepted item stays ``active`` until the DMS has it, and a replay finds the verdict and
only delivers (the delivery key makes the Maildir exactly-once, SMTP/LMTP at-least-once with
``X-Gateway-Id``); a status event is added only when the trail has none from this item.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gateway.clock import iso_vn
from gateway.edxml.lean import Streamed
from gateway.edxml.model import DocumentPackage, StatusPackage
from gateway.errors import PermanentError, TransientError
from gateway.pipeline.context import PipelineContext, backoff, delivery_key
from gateway.pipeline.mailfile import find_package_in
from gateway.pipeline.mails import FoundPackage, find_package, header_lines
from gateway.pipeline.notices import reasons_of
from gateway.pipeline.ports import SpooledMail
from gateway.pipeline.replies import arrival_notices, refusal_notices
from gateway.pipeline.waiter import InlineVerdict
from gateway.verify.envelope import read_package
from gateway.verify.package import verify_and_read
from gateway.verify.report import Verdict

if TYPE_CHECKING:
    from gateway.store import Intake, MessageView

# ``arrival_notices`` lives in ``gateway.pipeline.replies``; it stays importable from here, where
# ``gateway.pipeline.admin`` has always found it.
__all__ = ["arrival_notices", "mail_report", "process_inbound", "read_carried"]

log = logging.getLogger(__name__)

Package = DocumentPackage | StatusPackage


async def process_inbound(item: MessageView, ctx: PipelineContext) -> None:
    """Verify one inbound mail and deliver it, refuse it or defer it (see the module's table).

    Args:
        item: the ``inbound`` work item, claimed (``active``).
        ctx: the pipeline context.

    Returns:
        Nothing: the item has left ``active`` (terminal, ``deferred`` or ``hold``).

    Raises:
        asyncio.CancelledError: the scheduler stops; the item stays ``active`` and is recovered
            at the next start. Nothing else escapes: failures become ``deferred`` or ``hold``.
    """
    try:
        await _process(item, ctx)
    except TransientError as exc:
        log.warning("inbound %s: temporary failure, deferred: %s", item.id, exc)
        await _defer(item, ctx, f"temporary failure: {exc}")
    except Exception as exc:  # never to the floor: a person looks at it (HOUSE.md rule 13)
        log.exception("inbound %s: unexpected %s, held for an admin", item.id, type(exc).__name__)
        await ctx.store.hold(item.id, f"unexpected: {type(exc).__name__}")


async def _process(item: MessageView, ctx: PipelineContext) -> None:
    if item.verdict in (Verdict.ACCEPTED, Verdict.REFUSED) and item.report is not None:
        mail = await ctx.spool.get(item.sha256)
        await _resume(item, ctx, mail, Verdict(item.verdict), item.report)  # decided before
        return
    # Neither the mail nor the package is held whole while verifying (issue 7, P4): the package
    # is found in the spool file and read from it, decoded piece by piece, as the verifier
    # needs it (``find_package_in``); a package that cannot be streamed is handed over as bytes
    # (the verifier lets them go once read: ``read_package``), so nothing here keeps them alive.
    with await ctx.spool.open(item.sha256) as file:
        found = await asyncio.to_thread(find_package_in, file)
        if found.package is None and found.source is None:
            report: Mapping[str, Any] = mail_report(found, item.sha256, item.size, ctx)
            del found
            mail = await ctx.spool.get(item.sha256)
            notices = await refusal_notices(item, ctx, mail, None, reasons_of(report))
            await _record(item, ctx, report, to_state="refused", children=notices)
            return
        handed: Streamed | Callable[[], bytes] = found.source or [found.package or b""].pop
        del found
        with ctx.metrics.verification_seconds.time():
            outcome = await verify_and_read(handed, ctx.verifier)
        del handed
    verified, package = outcome.report, outcome.package
    del outcome
    report = verified.to_json()
    if verified.verdict is Verdict.DEFERRED:
        codes = ", ".join(sorted({r.code for r in reasons_of(verified)}))
        await _record(item, ctx, report, **_deferral(item, ctx, f"verdict deferred: {codes}"))
        return
    if verified.verdict is Verdict.REFUSED:
        mail = await ctx.spool.get(item.sha256)
        notices = await refusal_notices(item, ctx, mail, package, reasons_of(verified))
        await _record(item, ctx, report, to_state="refused", children=notices)
        return
    arrivals = await arrival_notices(item, ctx, package) if isinstance(package, DocumentPackage) else []
    await _record(item, ctx, report, children=arrivals)  # stays active until the DMS has it
    status = package if isinstance(package, StatusPackage) else None
    del package  # a document's decoded attachments are not needed for delivery
    await _after_acceptance(item, ctx, status, report)


def mail_report(found: FoundPackage, sha256: str, size: int, ctx: PipelineContext) -> dict[str, Any]:
    """The report recorded for a mail without exactly one package (shaped like ``to_json()``).

    The mail codes are refused whatever the policy says (there is nothing to verify); the
    policy in force is recorded for the record only.

    Args:
        found: what ``find_package`` made of the mail (with its ``problem``).
        sha256: the spooled mail's SHA-256.
        size: its size.
        ctx: the pipeline context (policy, clock).

    Returns:
        A JSON object with the keys of ``VerificationReport.to_json()``.

    Raises:
        ValueError: ``found`` has no problem (it carries exactly one package).
    """
    problem = found.problem
    if problem is None:
        raise ValueError("the mail carries one package: verify it instead")
    policy = ctx.verifier.policy
    finding = {
        "code": problem.code,
        "action": "reject",
        "where": problem.where,
        "message_vi": problem.message_vi,
        "message_en": problem.message_en,
    }
    return {
        "file": None,
        "verdict": Verdict.REFUSED.value,
        "indication": "TOTAL_FAILED",
        "subindication": "FORMAT_FAILURE",
        "findings": [finding],
        "signatures": [],
        "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256},
        "envelope_signature": None,
        "package": None,
        "verified_at": iso_vn(ctx.clock.now()),
        "sha256": sha256,
        "size": size,
    }


async def read_carried(ctx: PipelineContext, raw: bytes) -> Package | None:
    """Read the package a mail carries, for acting on it (also ``gateway queue release``).

    Business fields come from what the envelope signature covers, as the verifier read them
    (HOUSE.md rule 11); parsing is CPU work, off the event loop.

    Args:
        ctx: the pipeline context (the attachment size limit).
        raw: the package bytes found in the mail.

    Returns:
        The document or status package, or ``None`` when it cannot be read.
    """
    verifier = ctx.verifier  # the configured limits: a package the verifier read is read here too
    read = await asyncio.to_thread(
        read_package, raw, limits=verifier.limits, max_attachment_bytes=verifier.max_attachment_bytes
    )
    return read.parsed.package


async def _record(
    item: MessageView,
    ctx: PipelineContext,
    report: Mapping[str, Any],
    *,
    to_state: str | None = None,
    reason: str | None = None,
    children: Sequence[Intake] = (),
    **fields: Any,
) -> None:
    """The verdict, its summary columns, the next state and the notices: one transaction."""
    summary = report.get("package") or {}
    reasons = reasons_of(report)
    await ctx.store.record_verdict(
        item.id,
        dict(report),
        verdict=str(report["verdict"]),
        indication=str(report["indication"]),
        findings=list(report["findings"]),
        policy_sha256=str(report["policy"]["sha256"]),
        to_state=to_state,
        reason=reason
        or f"verdict {report['verdict']}" + (f": {', '.join(r.code for r in reasons)}" if reasons else ""),
        children=children,
        document_id=summary.get("document_id"),
        from_organ=summary.get("sender"),
        to_organs=list(summary.get("recipients") or ()) or None,
        code=summary.get("code"),
        subject=summary.get("subject"),
        package_kind=summary.get("kind"),
        status_code=summary.get("status_code"),
        **fields,
    )
    ctx.metrics.verdict("in", str(report["verdict"]), (str(f["code"]) for f in report["findings"]))
    first = reasons[0] if reasons else None
    outcome = InlineVerdict(Verdict(report["verdict"]), *((first.code, first.message_en) if first else ()))
    ctx.waiter.resolve(item.id, outcome)


async def _resume(
    item: MessageView, ctx: PipelineContext, mail: bytes, verdict: Verdict, report: Mapping[str, Any]
) -> None:
    if verdict is Verdict.REFUSED:
        # Recorded with its state and notices in one transaction: only an admin's retry of a
        # refused item gets here, and it changes nothing but the state.
        await ctx.store.transition(item.id, "refused", reason="refused (recorded before)", expect="active")
        return
    found = find_package(mail)
    del mail
    package = None if found.package is None else await read_carried(ctx, found.package)
    del found
    await _after_acceptance(item, ctx, package if isinstance(package, StatusPackage) else None, report)


async def _after_acceptance(
    item: MessageView, ctx: PipelineContext, status: StatusPackage | None, report: Mapping[str, Any]
) -> None:
    if status is not None:
        await _status_event(item, ctx, status)
    if await _deliver(item, ctx, report):
        # expect active: if this instance's lease was taken over, the item is another's now
        await ctx.store.transition(
            item.id, "delivered", reason="delivered to the DMS", event="delivered", expect="active"
        )


async def _status_event(item: MessageView, ctx: PipelineContext, package: StatusPackage) -> None:
    document_id = package.response_for.document_id
    outbound = None if document_id is None else await ctx.store.find_outbound(document_id)
    if outbound is None:
        log.info("inbound %s: status %s about %s, not one of our documents", item.id, package.status_code, document_id)
        return
    if any(e.inbound_id == item.id for e in await ctx.store.status_events(outbound.id)):
        return  # recorded before a crash or a delivery retry
    await ctx.store.add_status_event(
        outbound.id,
        package.status_code,
        description=package.description,
        reported_at=package.timestamp,
        from_organ=package.from_.organ_id,
        inbound_id=item.id,
    )


async def _deliver(item: MessageView, ctx: PipelineContext, report: Mapping[str, Any]) -> bool:
    """Hand the spooled mail to the DMS with our headers in front (copied from the spool file)."""
    key = delivery_key(item.id, item.sha256)
    policy = str((report.get("policy") or {}).get("sha256", ""))[:16]
    headers = {"X-Gateway-Verdict": "accepted", "X-Gateway-Report": f"{item.id}; policy={policy}", "X-Gateway-Id": key}
    try:
        with await ctx.spool.open(item.sha256) as file:
            await ctx.deliverer.deliver(SpooledMail(header_lines(headers), file), key=key)
    except TransientError as exc:
        await _defer(item, ctx, f"DMS unreachable: {exc}")
        return False
    except PermanentError as exc:
        log.error("inbound %s: the DMS refused the mail: %s", item.id, exc)
        await ctx.store.hold(item.id, f"the DMS refused the mail: {exc}")
        return False
    return True


def _deferral(item: MessageView, ctx: PipelineContext, error: str) -> dict[str, Any]:
    """Where a deferred item goes: ``deferred`` with its next attempt, or ``hold`` when too old."""
    now = ctx.clock.now()
    age = now - (item.received_at or now)
    if age >= timedelta(hours=ctx.settings.queue.defer_max_age_hours):
        reason = f"deferred for {age} (over defer_max_age): {error}"
        return {"to_state": "hold", "reason": reason, "last_error": reason}
    until = now + backoff(item.attempts, ctx.settings.queue)
    return {"to_state": "deferred", "reason": error, "last_error": error, "next_attempt_at": until}


async def _defer(item: MessageView, ctx: PipelineContext, error: str) -> None:
    move = _deferral(item, ctx, error)
    if move["to_state"] == "hold":
        await ctx.store.hold(item.id, move["reason"])
    else:
        await ctx.store.defer(item.id, until=move["next_attempt_at"], error=error)
