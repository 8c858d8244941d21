"""The IMAP intake: polls an agency mailbox with IDLE and hands each mail to the intake exactly once.

Exactly once rests on one order of events, per message (design note §3):

1. ``UID FETCH uid (BODY.PEEK[])`` — the stored bytes; ``\\Seen`` is not set;
2. ``intake.accept(raw, ..., imap_key="<mailbox>/<uidvalidity>/<uid>")`` — spooled, fsynced and
   committed when it returns (the store keeps ``imap_key`` unique);
3. ``UID MOVE uid <done mailbox>`` — only now does the message leave the mailbox.

A crash before 2 commits leaves the message in the mailbox, unrecorded: the next scan takes it
again (no loss). A crash between 2 and 3 leaves it in the mailbox, recorded: the next ``accept``
finds the ``imap_key`` taken (the real intake returns the first item with ``new`` false; a bare
store raises ``AlreadyRecorded``) and we only move it (no double). Should the server renumber
the mailbox in between (a new UIDVALIDITY: the key differs), the intake recognises the mail by
the SHA-256 of its bytes, taken from the same mailbox before, and returns that item with ``new``
false too: moved, not recorded twice. The mailbox itself is the to-do list, so no cursor is
kept: every scan is ``UID SEARCH ALL``.

The poller's states (``ImapStatus.state``)::

    connecting ──ok──▶ scanning ──nothing left──▶ idle ──EXISTS / renew / wake──▶ scanning
        ▲                  │  accept → TransientError: stop the scan; idle for the retry delay
        │                  │  accept → a bug: next mail; this one again after the retry delay
        │                  │  accept → PermanentError: left in the mailbox for an admin
        └── backoff ◀──────┴── IMAP trouble (deadline, drop, BYE, NO/BAD): close, wait, reconnect
    stop(): finish the mail in hand, LOGOUT ─▶ stopped

Deadlines: every IMAP await is bounded by ``timeout_seconds`` and by the connection-lost callback
(``ImapSession``), ``accept`` too; IDLE is renewed every ``idle_renew_seconds`` (< 29 minutes,
RFC 2177), which also bounds how long a silently dead connection goes unnoticed (plus TCP
keepalive). Backoff between connection attempts is exponential with jitter (half to all of
``min(backoff_max, backoff_initial * 2**n)``), reset after a successful SELECT; the same delays
space out the retries of a failing ``accept``. A server without IDLE is polled (NOOP and a scan)
every ``min(idle_renew_seconds, 60)`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Literal, Protocol

from gateway.clock import Clock
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.inbound.imapsession import ImapSession, ImapUnavailable
from gateway.inbound.intake import imap_key, same_mailbox
from gateway.settings import ImapSettings
from gateway.store import AlreadyRecorded

__all__ = ["AcceptedItem", "Backoff", "ImapIntake", "ImapPoller", "ImapStatus", "envelope_sender"]

_log = logging.getLogger(__name__)

IDLE_LIMIT_SECONDS = 29 * 60
"""RFC 2177: servers may drop an IDLE after 30 minutes; we must renew before 29."""
POLL_SECONDS = 60.0
"""How often a server without IDLE is asked (NOOP + scan)."""

State = Literal["stopped", "connecting", "scanning", "idle", "backoff"]


class AcceptedItem(Protocol):
    """What ``accept`` returns (``gateway.smtpserver.ItemRef``), as far as the poller reads it."""

    @property
    def new(self) -> bool:
        """False when the mail was recorded before (a replay after a crash before the move)."""
        ...


class ImapIntake(Protocol):
    """What the poller needs from ``gateway.inbound.intake.Intake``."""

    async def accept(
        self,
        raw: bytes,
        *,
        kind: str,
        channel: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        imap_key: str | None = None,
    ) -> AcceptedItem:
        """Spool ``raw`` and commit its row; returns when both are durable.

        A second call with the same ``imap_key``, or with the same bytes from the same mailbox
        under another UIDVALIDITY, records nothing: it returns the first item with ``new`` false,
        or raises ``AlreadyRecorded``.

        Raises:
            TransientError: disk or database trouble; try again later.
            PermanentError: this mail can never be taken.
            AlreadyRecorded: ``imap_key`` is in the log already.
        """
        ...


@dataclass(frozen=True)
class ImapStatus:
    """What the poller is doing, for the health endpoint and the logs."""

    state: State = "stopped"
    connected: bool = False
    accepted: int = 0
    """Mails handed to the intake and committed by this process."""
    moved: int = 0
    """Mails moved to the done mailbox (accepted now, or recorded before a crash)."""
    reconnects: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_scan_at: datetime | None = None


class Backoff:
    """Exponential delays with jitter: attempt n waits between half and all of the capped delay."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial} and {maximum}")
        self._initial = initial
        self._maximum = maximum
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling (up to the maximum)."""
        ceiling = min(self._maximum, self._initial * 2 ** min(self.attempts, 62))
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Back to the first delay (after a success)."""
        self.attempts = 0


def envelope_sender(raw: bytes) -> str:
    """The sender of a mail read from a mailbox: ``Return-Path`` (the envelope sender written at
    delivery), else the first ``From`` address, else ``""``. Headers only; never raises."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        for name in ("Return-Path", "From"):
            values = [str(value) for value in headers.get_all(name, [])]
            if values:
                return getaddresses(values[:1])[0][1]
    except Exception:  # a malformed header is the verifier's business, not ours
        _log.debug("imap: unreadable sender headers", exc_info=True)
    return ""


class ImapPoller:
    """Polls ``settings.mailbox`` and moves every mail it committed to ``settings.done_mailbox``.

    Args:
        settings: the ``[imap]`` table (host, port, security, user, mailboxes, deadlines).
        intake: where mails go (``gateway.inbound.intake.Intake``).
        password: the mailbox password (read from ``password_env``/``password_file`` by the caller).
        clock: for the times in ``status``.
        wake: an event that ends IDLE or a backoff wait early (e.g. "poll now"); cleared when seen.
        ssl_context: for ``tls`` and ``starttls``; default: the system's trusted CAs.
        backoff_initial, backoff_max: reconnect and retry delays, in seconds.
        rng: the jitter's random source (tests pass a seeded one).

    Raises:
        ConfigError: no host or user, the same mailbox twice, a name with CR/LF/NUL, an IDLE renewal
            of 29 minutes or more, or no positive timeout.
    """

    def __init__(
        self,
        settings: ImapSettings,
        intake: ImapIntake,
        *,
        password: str,
        clock: Clock,
        wake: asyncio.Event | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        if not settings.host or not settings.user:
            raise ConfigError("[imap] needs host and user")
        if same_mailbox(settings.mailbox, settings.done_mailbox):
            raise ConfigError(f"[imap] mailbox and done_mailbox are both {settings.mailbox!r}")
        for name in (settings.mailbox, settings.done_mailbox, settings.user):
            if not name or any(char in name for char in "\0\r\n"):
                raise ConfigError(f"[imap] {name!r} is empty or holds a NUL, CR or LF")
        if not 0 < settings.idle_renew_seconds < IDLE_LIMIT_SECONDS:
            raise ConfigError(f"[imap] idle_renew_seconds must be between 0 and {IDLE_LIMIT_SECONDS} (RFC 2177)")
        if settings.timeout_seconds <= 0:
            raise ConfigError("[imap] timeout_seconds must be positive")
        self._settings = settings
        self._host = settings.host
        self._user = settings.user
        self._intake = intake
        self._password = password
        self._clock = clock
        self._wake = wake or asyncio.Event()
        self._stopping = asyncio.Event()
        self._ssl_context = ssl_context
        self._backoff = Backoff(backoff_initial, backoff_max, rng)
        self._retry = Backoff(backoff_initial, backoff_max, rng)
        self._left_for_admin: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.status = ImapStatus()
        """The latest ``ImapStatus`` (replaced, never mutated)."""

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Poll until ``stop()`` or cancellation; connection trouble never ends it. Call it once."""
        self._task = asyncio.current_task()
        try:
            while not self._stopping.is_set():
                await self._connection()
                if not self._stopping.is_set():
                    delay = self._backoff.next()
                    self.status = replace(self.status, state="backoff")
                    _log.info("imap: reconnecting to %s in %.1f s", self._host, delay)
                    await self._pause(delay)
                    self.status = replace(self.status, reconnects=self.status.reconnects + 1)
        finally:
            self.status = replace(self.status, state="stopped", connected=False)
            _log.info("imap: poller stopped")

    async def stop(self) -> None:
        """Finish the message in hand, log out and return; cancel ``run()`` if it will not end."""
        self._stopping.set()
        task = self._task
        if task is None or task.done() or task is asyncio.current_task():
            return
        grace = 3 * self._settings.timeout_seconds
        done, _ = await asyncio.wait([task], timeout=grace)
        if not done:
            _log.warning("imap: poller did not stop within %.0f s; cancelling it", grace)
            task.cancel()
            await asyncio.wait([task], timeout=grace)

    # ------------------------------------------------------------------ one connection
    async def _connection(self) -> None:
        """Open, serve and close one connection; IMAP trouble is logged, never raised."""
        settings = self._settings
        self.status = replace(self.status, state="connecting")
        _log.info("imap: connecting to %s:%d (%s) as %s", self._host, settings.port, settings.security, self._user)
        session: ImapSession | None = None
        try:
            session = await ImapSession.open(
                host=self._host,
                port=settings.port,
                security=settings.security,
                user=self._user,
                password=self._password,
                timeout_seconds=settings.timeout_seconds,
                ssl_context=self._ssl_context,
            )
            await session.ensure_mailbox(settings.done_mailbox)
            uidvalidity = await session.select(settings.mailbox)
            self._backoff.reset()
            self.status = replace(self.status, connected=True)
            _log.info("imap: %s selected, UIDVALIDITY %d", settings.mailbox, uidvalidity)
            await self._serve(session)
        except ImapUnavailable as exc:
            self._failed(f"{exc}")
            _log.warning("imap: %s", exc)
        except Exception as exc:  # a bug must not end the intake; the mail waits in the mailbox
            self._failed(f"{type(exc).__name__}: {exc}")
            _log.exception("imap: unexpected error; reconnecting")
        finally:
            self.status = replace(self.status, connected=False)
            if session is not None:
                await session.close(logout=self._stopping.is_set())

    async def _serve(self, session: ImapSession) -> None:
        """Scan, then wait (IDLE, or a retry delay), until stopped; raises on IMAP trouble."""
        renew = self._settings.idle_renew_seconds
        while not self._stopping.is_set():
            self.status = replace(self.status, state="scanning")
            moved, retry_in = await self._scan(session)
            if self._stopping.is_set():
                return
            if moved and retry_in is None:
                continue  # more may have come while we worked: look again before idling
            wait = renew if retry_in is None else min(renew, retry_in)
            self.status = replace(self.status, state="idle")
            if session.has("IDLE"):
                end = await session.idle(wait, (self._wake, self._stopping))
                _log.debug("imap: IDLE ended (%s)", end)
            else:
                await self._pause(min(wait, POLL_SECONDS))
                await session.noop()
            self._wake.clear()

    async def _scan(self, session: ImapSession) -> tuple[int, float | None]:
        """Take every mail in the mailbox once; returns (moved, seconds until a retry is due)."""
        uids = await session.search_all()
        self.status = replace(self.status, last_scan_at=self._clock.now())
        moved, failed = 0, False
        for uid in uids:
            if self._stopping.is_set():
                break
            key = imap_key(self._settings.mailbox, session.uidvalidity, uid)
            if key in self._left_for_admin:
                continue
            outcome = await self._take(session, uid, key)
            if outcome == "moved":
                moved += 1
            elif outcome == "later":  # the store or the disk is in trouble: the rest would fail too
                return moved, self._retry.next()
            elif outcome == "failed":  # maybe this mail only: go on with the others
                failed = True
        return moved, self._retry.next() if failed else None

    async def _take(
        self, session: ImapSession, uid: int, key: str
    ) -> Literal["moved", "gone", "later", "failed", "left"]:
        """Fetch, accept (committed), then move one mail. IMAP trouble propagates."""
        raw = await session.fetch(uid)
        if raw is None:
            _log.info("imap: %s vanished before we fetched it", key)
            return "gone"
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # arrives as the inner call completes, and a cancelled poller must not go on to MOVE.
            async with asyncio.timeout(self._settings.timeout_seconds):
                item = await self._intake.accept(
                    raw,
                    kind="inbound",
                    channel="imap",
                    mail_from=envelope_sender(raw),
                    rcpt_to=[self._user],
                    imap_key=key,
                )
            new = item.new
        except AlreadyRecorded:
            new = False
        except PermanentError as exc:
            self._left_for_admin.add(key)
            self._failed(f"{key}: {exc}")
            _log.error("imap: %s cannot be taken and stays in %s for an admin: %s", key, self._settings.mailbox, exc)
            return "left"
        except (TransientError, TimeoutError) as exc:
            self._failed(f"{key}: {type(exc).__name__}: {exc}")
            _log.warning("imap: %s not taken now, will retry: %s", key, exc or "accept timed out")
            return "later"
        except Exception as exc:  # not to the floor: the mail stays in the mailbox, we retry with backoff
            self._failed(f"{key}: {type(exc).__name__}: {exc}")
            _log.exception("imap: %s: unexpected error from the intake; will retry", key)
            return "failed"
        self._retry.reset()
        if new:
            self.status = replace(self.status, accepted=self.status.accepted + 1)
            _log.info("imap: %s accepted (%d bytes)", key, len(raw))
        else:
            _log.info("imap: %s was recorded before (a crash before the move); moving it now", key)
        await session.move(uid, self._settings.done_mailbox)
        self.status = replace(self.status, moved=self.status.moved + 1)
        _log.info("imap: %s moved to %s", key, self._settings.done_mailbox)
        return "moved"

    # ------------------------------------------------------------------ helpers
    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when woken or stopped."""
        waiters = [asyncio.ensure_future(event.wait()) for event in (self._wake, self._stopping)]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._wake.clear()

    def _failed(self, error: str) -> None:
        self.status = replace(self.status, last_error=error, last_error_at=self._clock.now())
