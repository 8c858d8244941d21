"""The aiosmtpd handler base of both listeners: hand-off to the durable intake, error discipline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from gateway.errors import GatewayError
from gateway.smtpserver.protocol import LOCAL_ERROR, EdgeEnvelope, MailSink, current_session, trace

__all__ = ["EdgeHandler", "IntakePort", "ItemRef", "MailSink"]


@dataclass(frozen=True)
class ItemRef:
    """What the intake returns: the new work item, durable by the time this exists."""

    id: int
    received_at: datetime
    """The system receive time (aware UTC): the legal receive time."""
    sha256: str
    size: int
    message_id: str | None
    """The mail's ``Message-ID`` header, if it has one (unfolded, at most 998 characters)."""
    new: bool = True
    """False when the intake found the item already recorded (an IMAP replay): no new row."""


class IntakePort(Protocol):
    """The durable intake as the listeners see it (``gateway.inbound.intake.Intake``)."""

    def open_mail(self) -> MailSink:
        """A sink for the next mail's bytes, to be handed to :meth:`accept` once complete."""
        ...

    async def accept(
        self,
        raw: bytes | MailSink,
        *,
        kind: str,
        channel: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        imap_key: str | None = None,
    ) -> ItemRef:
        """Spool ``raw`` (or commit the sink it was streamed into) and commit its receipt row."""
        ...


class EdgeHandler:
    """Hooks shared by both listeners; subclasses add their MAIL/RCPT policy and ``handle_DATA``.

    Args:
        intake: the durable intake.
        kind: the work-item kind recorded for each mail (``inbound``, ``submission``).
        channel: the channel recorded (``smtp``, ``submission``).
        log: where this listener logs.
    """

    def __init__(self, intake: IntakePort, *, kind: str, channel: str, log: logging.Logger) -> None:
        self.intake = intake
        self.kind = kind
        self.channel = channel
        self.log = log
        self.pending: set[asyncio.Task[ItemRef]] = set()

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """Answer EHLO; AUTH is advertised only where :meth:`offers_auth` says so."""
        session.host_name = hostname
        if self.offers_auth():
            return responses
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    def offers_auth(self) -> bool:
        """Whether this listener authenticates users (the inbound listener does not)."""
        return False

    max_recipients = 100
    """RCPT beyond this many in one transaction is answered 452 (the client sends the rest later)."""

    def add_recipient(self, envelope: Envelope, address: str, rcpt_options: list[str]) -> str:
        """Accept ``address`` into the envelope unless it is full; returns the RCPT reply."""
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    def open_mail(self) -> MailSink:
        """Where the next DATA is streamed (the listener calls this at ``354``)."""
        return self.intake.open_mail()

    async def take(self, envelope: Envelope) -> tuple[ItemRef | None, str]:
        """Hand the received mail to the intake and wait until it is durable.

        Args:
            envelope: the finished DATA envelope: ``EdgeEnvelope.mail``, the sink the DATA was
                streamed into (``EdgeSMTP``); without one, ``original_content`` holds the bytes.

        Returns:
            ``(item, "")`` when spooled and committed; ``(None, reply)`` when the intake refused
            with a wire meaning (``TransientError`` → 451/452).

        Raises:
            Exception: anything unexpected; aiosmtpd passes it to :meth:`handle_exception`.
        """
        sink = envelope.mail if isinstance(envelope, EdgeEnvelope) else None
        raw = sink if sink is not None else (envelope.original_content or b"")
        # The null reverse-path (bounces, notices) is recorded as "": nothing may ever answer it.
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""
        task = asyncio.get_running_loop().create_task(
            self.intake.accept(
                raw,
                kind=self.kind,
                channel=self.channel,
                mail_from=mail_from,
                rcpt_to=tuple(envelope.rcpt_tos),
            )
        )
        # Shielded: a dropped connection must not cut a spool write or a commit in half.
        self.pending.add(task)
        task.add_done_callback(self._forget)
        try:
            item = await asyncio.shield(task)
        except GatewayError as error:
            self.log.warning("%s intake failed: %s", trace(), error, exc_info=error)
            return None, error.smtp_reply
        session = current_session()
        if session is not None:
            session.item_id = item.id
        return item, ""

    def _forget(self, task: asyncio.Task[ItemRef]) -> None:
        self.pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Normally answered by take(); after a dropped connection nobody else looks.
            self.log.debug("intake call ended with %r", task.exception())

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's last resort: log the traceback, tell the peer only ``451 4.3.0 Local error``."""
        if isinstance(error, TLSSetupException):
            self.log.info("%s TLS handshake failed: %r", trace(), error.__cause__)
        else:
            self.log.error("%s unexpected error in the SMTP session", trace(), exc_info=error)
        return LOCAL_ERROR

    async def settle(self, seconds: float) -> None:
        """Wait (at most ``seconds``) for intake calls still running after their connection went away."""
        if self.pending:
            done, not_done = await asyncio.wait(set(self.pending), timeout=seconds)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: already answered or logged
            if not_done:
                self.log.error("%d intake call(s) still running at shutdown", len(not_done))
