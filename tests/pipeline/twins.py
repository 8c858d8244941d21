"""In-memory twins of the pipeline's ports (HOUSE.md rule 3): a DMS and a mail server.

Each records what it was given and can be told to fail the next calls, so that unit tests can
drive the retry paths. Integration tests use the real deliverers and senders over sockets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.pipeline.ports import SpooledMail

__all__ = ["DeliveredMail", "SentMail", "TwinDeliverer", "TwinSender"]


@dataclass(frozen=True)
class DeliveredMail:
    """One mail the DMS received."""

    mail: bytes
    key: str


@dataclass(frozen=True)
class SentMail:
    """One mail the mail server accepted."""

    mail: bytes
    mail_from: str
    rcpt_to: tuple[str, ...]


@dataclass
class TwinDeliverer:
    """A DMS in memory; exactly once by key, like the Maildir deliverer."""

    delivered: list[DeliveredMail] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    """Raised by the next calls, first one first (e.g. ``[TransientError("down")]``)."""
    calls: int = 0

    async def deliver(self, mail: bytes | SpooledMail, *, key: str) -> None:
        """Record ``mail`` unless a mail with the same key is already there."""
        self.calls += 1
        if isinstance(mail, SpooledMail):
            mail = mail.read()
        if self.failures:
            raise self.failures.pop(0)
        if any(d.key == key for d in self.delivered):
            return
        self.delivered.append(DeliveredMail(mail, key))


@dataclass
class TwinSender:
    """A mail server in memory; answers 250 unless told to fail."""

    sent: list[SentMail] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    """Raised by the next calls, first one first (e.g. ``[TransientError("421")]``)."""
    calls: int = 0

    async def send(self, mail: bytes | SpooledMail, *, mail_from: str, rcpt_to: Sequence[str]) -> str:
        """Record the mail and answer like a server that queued it."""
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        data = mail.read() if isinstance(mail, SpooledMail) else mail
        self.sent.append(SentMail(data, mail_from, tuple(rcpt_to)))
        return f"250 2.0.0 Ok: queued as twin{len(self.sent)}"
