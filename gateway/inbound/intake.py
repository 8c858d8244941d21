"""The durable intake: every mail that enters the gateway passes here, once.

Used by the inbound SMTP listener, the submission listener and the IMAP poller. The promise
(design note §3, HOUSE.md rule 13) is Postfix's: when :meth:`Intake.accept` returns, the original
bytes are in the spool (temp file, fsync, rename, directory fsync) and the receipt row is
committed with the system receive time; only then may the caller say 250 (or MOVE the IMAP
message). The order is fixed: spool first, then the row, so that a row never points at bytes
that are not on disk. A crash between the two leaves a spool file without a row: harmless, the
spool is content-addressed and the sender will send again.

The SMTP listeners stream a mail into the spool while it arrives (:meth:`Intake.open_mail`, a
``gateway.store.SpoolWriter``) and hand the writer to :meth:`Intake.accept`, which commits it
(fsync, rename, directory fsync) before the row: a 90 MB mail never sits in memory (issue 7,
P4). The IMAP poller, which gets each message whole from the server, hands over bytes.

No CPU work on the SMTP path beyond hashing (done by the spool, in a thread): the mail is not
parsed here except for its header block, to read the ``Message-ID``; the edXML package is found
and judged later by the pipeline.

IMAP exactly-once rests on ``imap_key`` (``<mailbox>/<uidvalidity>/<uid>``, unique in the store)
and on one more rule: a server that renumbers the mailbox (a new UIDVALIDITY) between our commit
and our MOVE gives the same message a new key. So a mail whose bytes the spool already holds is
looked up by SHA-256: an item taken from the same mailbox under another UIDVALIDITY is that
mail, returned with ``new`` false (the poller then moves it) instead of recorded twice. The
spool check first keeps the lookup rare (no row points at bytes the spool never had).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Protocol

from gateway.errors import GatewayError, TransientError
from gateway.smtpserver import IntakePort, ItemRef, MailSink
from gateway.store import AlreadyRecorded, MessageView, Spooled
from gateway.store import Intake as IntakeRecord
from gateway.store.spool import HEAD_BYTES

__all__ = ["Intake", "IntakePort", "ItemRef", "imap_key", "message_id_of", "same_mailbox"]

_log = logging.getLogger("gateway.inbound.intake")

_HEADER_SCAN = HEAD_BYTES
"""Look for the end of the header block only this far (a header block is a few KB)."""
_MESSAGE_ID_LIMIT = 998
_KINDS = frozenset({"inbound", "submission"})
_CHANNELS = frozenset({"smtp", "imap", "submission"})


class IntakeStore(Protocol):
    """What the intake needs of ``gateway.store.Store``."""

    async def record_intake(self, intake: IntakeRecord) -> MessageView:
        """Insert the row (state ``incoming``, ``received_at`` now, journal ``received``); committed."""
        ...

    async def get(self, id: int) -> MessageView | None:
        """Read one row (None when there is none)."""
        ...

    async def find_imap_by_sha256(self, sha256: str) -> Sequence[MessageView]:
        """The items taken over IMAP whose bytes hash to ``sha256``, oldest first."""
        ...


class IntakeSpool(Protocol):
    """What the intake needs of ``gateway.store.Spool``."""

    async def put(self, data: bytes) -> str:
        """Write ``data`` durably, content-addressed; return its SHA-256 (hex)."""
        ...

    def writer(self) -> MailSink:
        """A streamed write of one mail (``SpoolWriter``): ``write`` pieces, then ``commit``."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the spool holds a file named ``sha256`` (blocking: called in a thread)."""
        ...


def imap_key(mailbox: str, uidvalidity: int, uid: int) -> str:
    """The store's key of one IMAP message: ``<mailbox>/<uidvalidity>/<uid>`` (unique per message)."""
    return f"{mailbox}/{uidvalidity}/{uid}"


def _origin(key: str | None) -> tuple[str, str] | None:
    """The mailbox and UIDVALIDITY of an ``imap_key`` (a mailbox name may hold ``/`` itself)."""
    parts = (key or "").rsplit("/", 2)
    return (parts[0], parts[1]) if len(parts) == 3 else None


def same_mailbox(one: str, other: str) -> bool:
    """RFC 3501 §5.1: INBOX is case-insensitive; every other name is compared as written."""
    return one == other or one.upper() == other.upper() == "INBOX"


def message_id_of(raw: bytes) -> str | None:
    """The ``Message-ID`` of a mail, read from its header block only.

    Args:
        raw: the mail as received.

    Returns:
        The header value unfolded to one printable ASCII line (at most 998 characters), or None
        when there is none or it is empty.
    """
    head = raw[:_HEADER_SCAN]
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            head = head[: end + len(separator)]
            break
    # compat32: the raw value, no header-class parsing (which can raise on odd input).
    value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    if value is None:
        return None
    text = " ".join("".join(c if 32 < ord(c) < 127 else " " for c in str(value)).split())
    return text[:_MESSAGE_ID_LIMIT] or None


def _ref(view: MessageView, message_id: str | None, *, new: bool) -> ItemRef:
    received_at = view.received_at if view.received_at is not None else view.state_changed_at
    return ItemRef(
        id=view.id,
        received_at=received_at,
        sha256=view.sha256,
        size=view.size,
        message_id=message_id,
        new=new,
    )


class Intake:
    """The intake service (one per process).

    Args:
        store: the receipt log (``gateway.store.Store``).
        spool: the spool of original mails (``gateway.store.Spool``).
        wake: called after each new item is committed, so that the scheduler starts at once
            (e.g. ``event.set`` of an ``asyncio.Event``). It must not block.
    """

    def __init__(self, store: IntakeStore, spool: IntakeSpool, *, wake: Callable[[], object] | None = None) -> None:
        self.store = store
        self.spool = spool
        self.wake = wake

    def open_mail(self) -> MailSink:
        """A sink for the next mail (the spool's streamed writer): ``write`` it, then :meth:`accept` it.

        Nothing touches the disk until the first ``write``.
        """
        return self.spool.writer()

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
        """Make a received mail durable: spool the bytes, then commit the receipt row.

        Stable signature (the IMAP poller calls it too). Idempotent for IMAP: a second call
        with the same ``imap_key``, or with the same bytes from the same mailbox under another
        UIDVALIDITY (see the module docstring), returns the item recorded the first time
        (``new=False``) instead of a second row.

        Args:
            raw: the mail exactly as received (kept unaltered, addressed by SHA-256), or the
                sink from :meth:`open_mail` it was streamed into (committed here; dropped when
                this raises before that).
            kind: ``inbound`` (from the axis) or ``submission`` (from the DMS).
            channel: ``smtp``, ``imap`` or ``submission``.
            mail_from: the envelope sender (``""`` when unknown, e.g. IMAP).
            rcpt_to: the envelope recipients.
            imap_key: ``mailbox/uidvalidity/uid`` for IMAP, else None.

        Returns:
            The item: its id, the system receive time, sha256, size, Message-ID and whether it
            is new.

        Raises:
            TransientError: the spool or the database cannot take it now (``StorageFull``, a
                subclass, when the disk is full); answer its ``smtp_reply`` (451/452).
            GatewayError: another store refusal (e.g. ``StoreError``); its ``smtp_reply`` is 4xx.
            ValueError: ``kind`` or ``channel`` is not one of the above (a caller's bug).
        """
        if kind not in _KINDS or channel not in _CHANNELS:
            if not isinstance(raw, bytes):
                await raw.abort()
            raise ValueError(f"kind {kind!r} / channel {channel!r}: expected {sorted(_KINDS)} / {sorted(_CHANNELS)}")
        if channel == "imap" and imap_key is not None and isinstance(raw, bytes):
            earlier = await self._renumbered(raw, imap_key)
            if earlier is not None:
                return _ref(earlier, message_id_of(raw), new=False)
        spooled = await self._spool(raw)
        message_id = message_id_of(spooled.head)
        record = IntakeRecord(
            kind=kind,
            channel=channel,
            sha256=spooled.sha256,
            size=spooled.size,
            mail_from=mail_from,
            rcpt_to=tuple(rcpt_to),
            message_id_header=message_id,
            imap_key=imap_key,
        )
        try:
            view = await self.store.record_intake(record)
        except AlreadyRecorded as duplicate:
            existing = None if duplicate.existing_id is None else await self.store.get(duplicate.existing_id)
            if existing is None:
                raise
            _log.info("%s already recorded as item %d", imap_key, existing.id, extra={"item_id": existing.id})
            return _ref(existing, message_id, new=False)
        _log.info(
            "item %d received: %s via %s, %d bytes, sha256 %s",
            view.id,
            kind,
            channel,
            view.size,
            spooled.sha256,
            extra={"item_id": view.id},
        )
        if self.wake is not None:
            self.wake()
        return _ref(view, message_id, new=True)

    async def _renumbered(self, raw: bytes, key: str) -> MessageView | None:
        """The item these bytes were recorded as, from the same mailbox under another UIDVALIDITY."""
        here = _origin(key)
        if here is None:
            return None
        sha256, stored = await asyncio.to_thread(self._in_spool, raw)
        if not stored:  # the common case: new bytes, so no item can hold them
            return None
        for view in await self.store.find_imap_by_sha256(sha256):
            there = _origin(view.imap_key)
            if there is not None and same_mailbox(there[0], here[0]) and there[1] != here[1]:
                _log.info(
                    "%s recognised by content as item %d (%s, sha256 %s): the mailbox's UIDVALIDITY changed "
                    "after it was taken; not recorded again",
                    key,
                    view.id,
                    view.imap_key,
                    sha256,
                    extra={"item_id": view.id},
                )
                return view
        return None

    def _in_spool(self, raw: bytes) -> tuple[str, bool]:
        sha256 = hashlib.sha256(raw).hexdigest()
        return sha256, self.spool.exists(sha256)

    async def _spool(self, raw: bytes | MailSink) -> Spooled:
        """Store the mail durably (first, before any row can point at it)."""
        try:
            if isinstance(raw, bytes):
                return Spooled(sha256=await self.spool.put(raw), size=len(raw), head=raw[:_HEADER_SCAN])
            return await raw.commit()
        except GatewayError:
            raise
        except OSError as error:  # the store's spool maps these; a twin or a new errno may not
            raise TransientError(f"spool write failed: {error}") from error
