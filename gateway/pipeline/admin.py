"""An admin's hands on the queue: ``retry`` and ``release`` (``gateway queue retry|release``).

The deferred lane parks what could not be judged for infrastructure reasons (OCSP, CRL or TSA
unreachable) and re-verifies it with backoff; past ``defer_max_age_hours`` it goes to ``hold``
and waits for a person: it is never accepted blind. Unexpected failures are held too (HOUSE.md
rule 13). These are the two things a person can then do:

=============  ==================================================================================
action         what happens
=============  ==================================================================================
``retry``      a ``hold`` or ``deferred`` item of any kind goes back to ``incoming``, due now; the
               running gateway's workers take it at their next look (they poll every 2 s). The
               item's handler then does what it always does with a replay: an inbound item whose
               verdict is recorded (``accepted``) is not judged again, only delivered; one with a
               ``deferred`` verdict (or none) is judged once more, and if it is still deferred
               past ``defer_max_age`` it is held again at once (``gateway.pipeline.receive``).
               Outbound items are sent or sealed again under their give-up rules.
``release``    an inbound item in ``hold`` (or ``deferred``) is delivered to the DMS on the admin's
               responsibility: the ORIGINAL mail from the spool, unaltered, with
               ``X-Gateway-Verdict: released-by-admin`` prepended, under the same delivery key as
               the pipeline's (a Maildir never gets it twice); a readable document package that
               never had its status 01 gets one, recorded in the same transaction as ``delivered``
               (journal event ``released`` with the admin's reason). A released status package is
               delivered only: the status trail takes verified statuses.
=============  ==================================================================================

Never: a finished item is not retried, and a refused item is not released (a refusal is final:
the sender has its status 02). Each action is one guarded store transition
(``expect=<the state it was in>``), so an admin racing a worker gets a clear error instead of
a double action. ``release`` of a ``deferred`` item first moves it to ``hold`` (journaled), so
that no worker claims it while the DMS is being handed the mail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from typing import TYPE_CHECKING

from gateway.clock import require_aware
from gateway.edxml.model import DocumentPackage
from gateway.errors import GatewayError, PermanentError, TransientError
from gateway.pipeline.context import PipelineContext, delivery_key
from gateway.pipeline.mails import find_package, prepend_headers
from gateway.pipeline.receive import arrival_notices, read_carried
from gateway.store import TERMINAL, NotFound

if TYPE_CHECKING:
    from gateway.store import Intake, MessageView, Store

__all__ = [
    "RELEASABLE",
    "RELEASED_VERDICT",
    "RETRYABLE",
    "NotActionable",
    "ReleaseFailed",
    "Released",
    "release",
    "retry",
]

log = logging.getLogger(__name__)

RETRYABLE = ("hold", "deferred")
"""The states ``retry`` takes an item out of."""
MAYBE_SENT: tuple[str, ...] = ("unexpected: SentUnrecorded", "deadline exceeded", "handler left the item active")
"""Hold reasons of a send after which the relay may already have the mail (``retry`` needs ``force``)."""
RELEASABLE = ("hold", "deferred")
"""The states ``release`` takes an inbound item out of."""
RELEASED_VERDICT = "released-by-admin"
"""``X-Gateway-Verdict`` of a released mail (the pipeline's own is ``accepted``)."""

# A header line stays far below RFC 5322's 998 characters; the journal keeps the whole reason.
_HEADER_REASON_CHARS = 300


class NotActionable(GatewayError):
    """The action does not apply to the item as it is now (finished, refused, busy, wrong kind)."""


class ReleaseFailed(GatewayError):
    """The DMS did not take a released mail; the item stays in ``hold`` (try again later)."""


@dataclass(frozen=True)
class Released:
    """What ``release`` did."""

    item: MessageView
    """The item, now ``delivered``."""
    key: str
    """The delivery key the DMS got it under (``X-Gateway-Id``)."""
    notices: int
    """Status 01 notices created with the release (0 when one existed or none was possible)."""


async def retry(store: Store, item_id: int, *, reason: str, now: datetime, force: bool = False) -> MessageView:
    """Put a held or deferred item back to ``incoming``, due now, for the workers to take.

    ``next_attempt_at`` is set to ``now``: the claim takes ``incoming`` items whatever it says,
    and a listing must not show a stale future attempt for an item that is due.

    A send or notice held for a reason in :data:`MAYBE_SENT` may already be with the relay (it
    answered 250 but the store did not record it, or the handler was cut off mid-send): a retry
    could send the document twice, so it needs ``force`` after the admin checked the relay's log.

    Args:
        store: the store.
        item_id: the work item.
        reason: why, for the journal (the CLI adds the admin's name).
        now: the time it is due (aware).
        force: retry a send that may already be with the relay.

    Returns:
        The item as it is now (``incoming``).

    Raises:
        NotFound: no such item.
        NotActionable: the item is finished, being processed, or already waiting; or it is a
            send that may already have gone out and ``force`` is not given.
        InvalidTransition: a worker moved it between the check and the change (retry later).
        ValueError: ``now`` is naive, or the reason is not storable text.
    """
    require_aware(now)
    item = await _get(store, item_id)
    _require_state(item, RETRYABLE, "retried")
    if not force and _maybe_sent(item):
        raise NotActionable(
            f"{item.kind} {item.id} may already be with the relay (held: {item.last_error}); a retry could send "
            f"it twice. Look for Message-ID {item.message_id_header or '(unknown)'} in the relay's log, and "
            "retry with --force only if the relay does not have it"
        )
    return await store.transition(
        item.id, "incoming", reason=f"admin retry: {reason}", expect=item.state, next_attempt_at=now
    )


async def release(item_id: int, ctx: PipelineContext, *, reason: str) -> Released:
    """Deliver a held inbound mail to the DMS on an admin's responsibility (module docstring).

    Args:
        item_id: the ``inbound`` work item, in ``hold`` or ``deferred``.
        ctx: the pipeline context (store, spool, deliverer, key for the status 01).
        reason: why, for the journal and ``X-Gateway-Report`` (the CLI adds the admin's name).

    Returns:
        What was done.

    Raises:
        NotFound: no such item.
        NotActionable: not an inbound item, refused (final), finished, or not held or deferred.
        ReleaseFailed: the DMS did not take the mail (the item stays in ``hold``, journaled).
        InvalidTransition: a worker or another admin moved the item meanwhile.
        SpoolError: the original mail is missing or damaged.
        TransientError: the store or the spool is unavailable now.
    """
    item = await _get(ctx.store, item_id)
    if item.kind != "inbound":
        raise NotActionable(f"work item {item.id} is a {item.kind}: only inbound mail is released to the DMS")
    if item.state == "refused" or item.verdict == "refused":
        raise NotActionable(
            f"work item {item.id} was refused: a refusal is final (the sender was told why) and is never released"
        )
    _require_state(item, RELEASABLE, "released")
    if item.state == "deferred":
        # Out of the workers' reach first: a worker claiming it mid-release would judge a mail
        # the DMS already has.
        item = await ctx.store.transition(
            item.id, "hold", reason=f"held for release by an admin: {reason}", expect="deferred"
        )
    mail = await ctx.spool.get(item.sha256)
    notices = await _missing_arrivals(item, ctx, mail)
    key = delivery_key(item.id, item.sha256)
    headers = {
        "X-Gateway-Verdict": RELEASED_VERDICT,
        "X-Gateway-Report": f"{item.id}; released: {_header_text(reason)}",
        "X-Gateway-Id": key,
    }
    try:
        await ctx.deliverer.deliver(prepend_headers(mail, headers), key=key)
    except (TransientError, PermanentError) as exc:
        error = f"release by an admin failed: the DMS did not take the mail: {_clip(str(exc), 1000)}"
        log.error("inbound %s: %s", item.id, error)
        await ctx.store.transition(item.id, "hold", reason=error, expect="hold", last_error=error)
        raise ReleaseFailed(f"work item {item.id}: {error}") from exc
    done = await ctx.store.transition(
        item.id,
        "delivered",
        reason=f"released by an admin: {reason}",
        event="released",
        expect="hold",
        children=notices,
    )
    log.warning("inbound %s: released to the DMS by an admin (%s)", item.id, reason)
    return Released(done, key, len(notices))


def _header_text(text: str) -> str:
    """Free text as one header line: white space folded, clipped, RFC 2047 when not ASCII.

    Args:
        text: an admin's reason (may be Vietnamese, may span lines).

    Returns:
        Printable ASCII on one line (``prepend_headers`` accepts nothing else).
    """
    flat = _clip(" ".join(text.split()), _HEADER_REASON_CHARS)
    if flat.isascii() and flat.isprintable():
        return flat
    # Adjacent encoded words separated by white space decode as one text (RFC 2047 §6.2).
    return " ".join(Header(flat, "utf-8").encode(linesep="\n").split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _get(store: Store, item_id: int) -> MessageView:
    item = await store.get(item_id)
    if item is None:
        raise NotFound(f"no work item {item_id}")
    return item


def _maybe_sent(item: MessageView) -> bool:
    return item.kind in ("send", "notice") and item.state == "hold" and (item.last_error or "").startswith(MAYBE_SENT)


def _require_state(item: MessageView, allowed: Iterable[str], action: str) -> None:
    wanted = tuple(allowed)
    if item.state in wanted:
        return
    if item.state in TERMINAL[item.kind]:
        raise NotActionable(f"work item {item.id} is {item.state} (finished): it cannot be {action}")
    if item.state == "active":
        raise NotActionable(f"work item {item.id} is being processed now (active); look again when it has moved on")
    raise NotActionable(
        f"work item {item.id} is {item.state}, not {' or '.join(wanted)}: it is waiting for the workers already"
    )


async def _missing_arrivals(item: MessageView, ctx: PipelineContext, mail: bytes) -> list[Intake]:
    """The status 01 notices a released document never had (none for what is not a readable document).

    A held item that is not refused can only have status 01 notices as children (refusal
    notices come with ``refused``), and those are recorded together with the acceptance: any
    notice means the 01s exist.
    """
    if await ctx.store.list(kind="notice", parent_id=item.id, limit=1):
        return []  # recorded with the acceptance, all of them in one transaction
    found = find_package(mail)
    package = None if found.package is None else await read_carried(ctx, found.package)
    if not isinstance(package, DocumentPackage):
        return []
    try:
        return await arrival_notices(item, ctx, package)
    except ValueError as exc:  # no From OrganId, no way to name the document
        log.warning("inbound %s: released without a status 01 (%s)", item.id, exc)
        return []
