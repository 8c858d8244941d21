"""The inbound SMTP listener: mail from the axis (or from Postfix as a content filter).

The dialogue, and what each answer promises:

=========================  =================================================================
RCPT not a local address   ``550 5.1.1 <addr>: recipient not local`` (``local_recipients``,
                           case-insensitive; an empty list accepts any address)
more than 100 RCPT         ``452 4.5.3 Too many recipients``
DATA over the size limit   ``552 5.3.4 message too big`` (nothing is spooled)
DATA, durable              ``250 2.0.0 Ok: queued as <id>``: spooled, fsynced and committed
DATA, refused inline       ``550 5.7.1 <code>: <reason>``: the item stays spooled and logged
spool / database trouble   the error's ``smtp_reply`` (451/452): never a 250
anything unexpected        ``451 4.3.0 Local error`` (the traceback goes to the log only)
shutting down              ``421 4.3.2 Service shutting down; try again later``
=========================  =================================================================

The inline verdict (``inline_verdict_seconds > 0``) is optional and injected: the pipeline
provides ``verdict_waiter(item_id, timeout)``, which waits for the item's verdict and returns
None when it has none in time. This module never imports the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.settings import SmtpSettings
from gateway.smtpserver import EdgeHandler, IntakePort, ItemRef, ListenerEdge, SmtpListener, server_tls_context

__all__ = ["InboundSmtp", "InlineVerdict", "VerdictWaiter", "refusal_reply"]

_log = logging.getLogger("gateway.inbound.smtp")

"""RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients; we accept no more."""
_REASON_LIMIT = 400
_CODE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class InlineVerdict(Protocol):
    """A verdict as the listener needs it (the pipeline's own object fits when it has these)."""

    @property
    def refused(self) -> bool:
        """True when the package is refused; anything else (accepted, deferred) answers 250."""
        ...

    @property
    def code(self) -> str:
        """The stable refusal code, e.g. ``signature-invalid``."""
        ...

    @property
    def reason(self) -> str:
        """The English reason; folded to one ASCII line before it goes on the wire."""
        ...


VerdictWaiter = Callable[[int, float], Awaitable[InlineVerdict | None]]
"""``await waiter(item_id, timeout)``: the item's verdict, or None if there is none in time."""


def _ascii_line(text: str, limit: int) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    line = " ".join("".join(c if 32 <= ord(c) < 127 else " " for c in folded).split())
    if len(line) > limit:
        line = line[: limit - 3].rstrip() + "..."
    return line


def refusal_reply(code: str, reason: str) -> str:
    """The inline refusal: ``550 5.7.1 <code>: <reason>``, one printable ASCII line.

    Args:
        code: the refusal code (characters outside ``A-Za-z0-9._-`` are dropped).
        reason: the English reason; Vietnamese letters are folded to ASCII, line breaks and
            control characters become spaces, and it is cut to 400 characters.

    Returns:
        The SMTP reply line (without CRLF).
    """
    clean_code = _CODE_CHARS.sub("", code)[:64] or "refused"
    clean_reason = _ascii_line(reason, _REASON_LIMIT) or "message refused"
    return f"550 5.7.1 {clean_code}: {clean_reason}"


class _InboundHandler(EdgeHandler):
    def __init__(
        self,
        intake: IntakePort,
        *,
        local_recipients: frozenset[str],
        inline_seconds: float,
        verdict_waiter: VerdictWaiter | None,
    ) -> None:
        super().__init__(intake, kind="inbound", channel="smtp", log=_log)
        self.local_recipients = local_recipients
        self.inline_seconds = inline_seconds
        self.verdict_waiter = verdict_waiter

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.local_recipients and address.casefold() not in self.local_recipients:
            return f"550 5.1.1 <{address}>: recipient not local"
        return self.add_recipient(envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        item, reply = await self.take(envelope)
        if item is None:
            return reply
        self.log.info(
            "queued as %d: %d bytes sha256 %s from <%s> message-id %s",
            item.id,
            item.size,
            item.sha256,
            envelope.mail_from,
            item.message_id,
            extra={"item_id": item.id},
        )
        verdict = await self._inline_verdict(item)
        if verdict is not None and verdict.refused:
            self.log.info("item %d refused inline: %s", item.id, verdict.code, extra={"item_id": item.id})
            return refusal_reply(verdict.code, verdict.reason)
        return f"250 2.0.0 Ok: queued as {item.id}"

    async def _inline_verdict(self, item: ItemRef) -> InlineVerdict | None:
        """The verdict if the pipeline reaches one in time; None otherwise (the mail is durable already)."""
        if self.verdict_waiter is None or self.inline_seconds <= 0:
            return None
        try:
            # Our own deadline too: a waiter that ignores its timeout must not hold the session.
            return await asyncio.wait_for(
                self.verdict_waiter(item.id, self.inline_seconds), timeout=self.inline_seconds + 1.0
            )
        except TimeoutError:
            return None
        except Exception:
            # The item is committed: it will be decided after queue, so the peer still gets 250.
            self.log.exception("item %d: the inline verdict failed", item.id, extra={"item_id": item.id})
            return None


class InboundSmtp(ListenerEdge):
    """The ``[smtp]`` listener, served on the running event loop.

    Args:
        settings: the ``[smtp]`` section.
        intake: the durable intake (``gateway.inbound.intake.Intake``).
        verdict_waiter: optional; with ``inline_verdict_seconds > 0`` a refusal reached in time
            is answered ``550 5.7.1`` in the dialogue.

    Raises:
        ConfigError: a bad ``listen`` value or unusable TLS files.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        intake: IntakePort,
        *,
        verdict_waiter: VerdictWaiter | None = None,
    ) -> None:
        self.settings = settings
        self.handler = _InboundHandler(
            intake,
            local_recipients=frozenset(r.casefold() for r in settings.local_recipients),
            inline_seconds=settings.inline_verdict_seconds,
            verdict_waiter=verdict_waiter,
        )
        self.listener = SmtpListener(
            self.handler,
            listen=settings.listen,
            listen_key="[smtp] listen",
            hostname=settings.hostname,
            max_message_bytes=settings.max_message_bytes,
            tls_context=server_tls_context(settings.tls_cert, settings.tls_key, section="smtp"),
            log=_log,
        )
