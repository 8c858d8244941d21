"""What goes into the store and what comes out: validated inputs, frozen views, domain errors.

Callers never hold a live table object: they hand in an :class:`Intake` (validated when it is
built, HOUSE.md anti-pattern "SQLModel objects built from untrusted input") and get back
:class:`MessageView` / :class:`StatusEventView` / :class:`JournalView` copies that cannot write
to the database by accident. Column updates (``transition(**fields)``) go through
:func:`check_fields`, which knows each column's type and refuses anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.errors import GatewayError, TransientError
from gateway.store.tables import CHANNELS, KINDS

__all__ = [
    "UPDATABLE",
    "AlreadyRecorded",
    "ChainCheck",
    "Intake",
    "InvalidTransition",
    "JournalView",
    "MessageView",
    "NotFound",
    "StatusEventView",
    "StorageFull",
    "StoreError",
    "check_fields",
    "check_text",
]

SHA256_RE = re.compile(r"[0-9a-f]{64}")
STATUS_CODE_RE = re.compile(r"[0-9]{2}")
_MAX_TEXT = 4096
_MAX_RECIPIENTS = 1000


class StoreError(GatewayError):
    """The store was asked for something it cannot do (a caller's mistake, not the disk's)."""


class AlreadyRecorded(StoreError):
    """A unique key is taken: the IMAP message or the (DocumentId, recipient) send exists.

    Callers catch it for idempotency: a replay after a crash finds the row it made before.

    Attributes:
        key: which key (``imap_key`` or ``send``).
        existing_id: the row that holds it, when known.
    """

    def __init__(self, key: str, value: str, existing_id: int | None) -> None:
        self.key = key
        self.existing_id = existing_id
        where = f" by message {existing_id}" if existing_id is not None else ""
        super().__init__(f"{key} {value!r} is already recorded{where}")


class NotFound(StoreError):
    """No work item with that id."""


class InvalidTransition(StoreError):
    """The move is not allowed: out of a terminal state, to a state the kind cannot reach, or stale."""


class StorageFull(TransientError):
    """The disk or the database is full: retry later (SMTP 452, RFC 5321 §4.2.2)."""

    smtp_reply = "452 4.3.1 Insufficient system storage; try again later"


def check_text(name: str, value: object, *, limit: int = _MAX_TEXT, optional: bool = False) -> str | None:
    """Validate one text value for the database.

    Args:
        name: the field, for the message.
        value: the candidate.
        limit: the longest allowed, in characters.
        optional: whether ``None`` is allowed.

    Returns:
        The value unchanged.

    Raises:
        ValueError: wrong type, too long, a NUL, or not encodable as UTF-8 (lone surrogates from
            ``surrogateescape`` decoding of raw header bytes).
    """
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode (undecodable bytes?)") from None
    return value


def _check_int(name: str, value: object, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative whole number, not {value!r}")
    return value


def _check_time(name: str, value: object, *, optional: bool = True) -> datetime | None:
    if value is None and optional:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime; the store takes aware times")
    return value


def _check_texts(name: str, value: object, *, optional: bool = False) -> list[str] | None:
    if value is None and optional:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of strings")
    if len(value) > _MAX_RECIPIENTS:
        raise ValueError(f"{name} has more than {_MAX_RECIPIENTS} entries")
    return [str(check_text(f"{name}[{i}]", v, limit=1024)) for i, v in enumerate(value)]


def _check_json(name: str, value: object, kind: type, *, optional: bool = True) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        raise ValueError(f"{name} must be a JSON {kind.__name__}")
    return value


_FIELDS: dict[str, Any] = {
    "sent_at": lambda v: _check_time("sent_at", v),
    "next_attempt_at": lambda v: _check_time("next_attempt_at", v),
    "attempts": lambda v: _check_int("attempts", v),
    "last_error": lambda v: check_text("last_error", v, optional=True),
    "document_id": lambda v: check_text("document_id", v, limit=255, optional=True),
    "from_organ": lambda v: check_text("from_organ", v, limit=255, optional=True),
    "to_organs": lambda v: _check_texts("to_organs", v, optional=True),
    "code": lambda v: check_text("code", v, limit=255, optional=True),
    "subject": lambda v: check_text("subject", v, limit=65536, optional=True),
    "package_kind": lambda v: check_text("package_kind", v, limit=16, optional=True),
    "status_code": lambda v: check_text("status_code", v, limit=16, optional=True),
    "verdict": lambda v: check_text("verdict", v, limit=32, optional=True),
    "indication": lambda v: check_text("indication", v, limit=64, optional=True),
    "findings": lambda v: _check_json("findings", list(v) if isinstance(v, tuple) else v, list),
    "report": lambda v: _check_json("report", dict(v) if isinstance(v, Mapping) else v, dict),
    "policy_sha256": lambda v: check_text("policy_sha256", v, limit=64, optional=True),
    "recipient": lambda v: check_text("recipient", v, limit=320, optional=True),
    "message_id_header": lambda v: check_text("message_id_header", v, optional=True),
}
UPDATABLE: frozenset[str] = frozenset(_FIELDS)
"""Columns ``transition(**fields)`` may set. Identity, origin and receive time are fixed at intake."""


def check_fields(fields: Mapping[str, object]) -> dict[str, Any]:
    """Validate column updates.

    Returns:
        The values to write (JSON sequences as lists).

    Raises:
        ValueError: an unknown or fixed column, or a value of the wrong type.
    """
    unknown = sorted(set(fields) - UPDATABLE)
    if unknown:
        raise ValueError(f"cannot set {', '.join(unknown)}; settable: {', '.join(sorted(UPDATABLE))}")
    return {name: _FIELDS[name](value) for name, value in fields.items()}


@dataclass(frozen=True, kw_only=True)
class Intake:
    """A new work item, validated on construction (the only way rows are born).

    ``direction`` follows from ``kind`` (``inbound`` is in, everything else out). A ``send``
    needs ``document_id`` and ``recipient``: together they are its unique key. A ``notice``
    may carry the ``status_code`` of the status package it attaches (``"02"``), known when it
    is composed; any other item learns its status code from its verified package (a verdict),
    never at intake.

    Raises:
        ValueError: any field of the wrong type, shape or size.
    """

    kind: str
    channel: str
    sha256: str
    size: int
    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()
    message_id_header: str | None = None
    imap_key: str | None = None
    parent_id: int | None = None
    recipient: str | None = None
    document_id: str | None = None
    status_code: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {self.channel!r}")
        if not isinstance(self.sha256, str) or not SHA256_RE.fullmatch(self.sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        _check_int("size", self.size)
        check_text("mail_from", self.mail_from, limit=1024)
        object.__setattr__(self, "rcpt_to", tuple(_check_texts("rcpt_to", self.rcpt_to) or ()))
        check_text("message_id_header", self.message_id_header, limit=998, optional=True)
        check_text("imap_key", self.imap_key, limit=1024, optional=True)
        if self.imap_key is not None and not self.imap_key:
            raise ValueError("imap_key must not be empty")
        _check_int("parent_id", self.parent_id, optional=True)
        check_text("recipient", self.recipient, limit=320, optional=True)
        check_text("document_id", self.document_id, limit=255, optional=True)
        if self.kind == "send" and not (self.document_id and self.recipient):
            raise ValueError("a send needs document_id and recipient (its unique key)")
        if self.status_code is not None:
            if self.kind != "notice":
                raise ValueError(f"status_code is set at intake for a notice only, not for kind {self.kind!r}")
            code = self.status_code
            if not isinstance(code, str) or not STATUS_CODE_RE.fullmatch(code) or not 1 <= int(code) <= 16:
                raise ValueError(f"status_code must be an edXML status code, 01 to 16, not {code!r}")

    @property
    def direction(self) -> str:
        """``in`` for mail from the axis, ``out`` for everything we send."""
        return "in" if self.kind == "inbound" else "out"


@dataclass(frozen=True)
class MessageView:
    """A work item as read from the store (a copy; changing it changes nothing)."""

    id: int
    kind: str
    direction: str
    state: str
    channel: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    message_id_header: str | None
    sha256: str
    size: int
    received_at: datetime | None
    sent_at: datetime | None
    document_id: str | None
    from_organ: str | None
    to_organs: tuple[str, ...] | None
    code: str | None
    subject: str | None
    package_kind: str | None
    status_code: str | None
    verdict: str | None
    indication: str | None
    findings: tuple[Mapping[str, Any], ...] | None
    report: Mapping[str, Any] | None
    policy_sha256: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    state_changed_at: datetime
    parent_id: int | None
    recipient: str | None
    imap_key: str | None
    owner: str | None = None
    """The instance that claimed it last (``[store] instance``); ``None`` if never claimed."""
    lease_until: datetime | None = None
    """While ``active``: until when the owner holds it (renewed as it works)."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> MessageView:
        """Build from a result row's mapping (JSON lists become tuples)."""
        values = dict(row)
        values["rcpt_to"] = tuple(values["rcpt_to"] or ())
        for name in ("to_organs", "findings"):
            if values[name] is not None:
                values[name] = tuple(values[name])
        return cls(**values)


@dataclass(frozen=True)
class StatusEventView:
    """One step of an outbound document's status trail."""

    id: int
    message_id: int
    status_code: str
    description: str | None
    reported_at: datetime | None
    received_at: datetime
    from_organ: str | None
    inbound_id: int | None


@dataclass(frozen=True)
class JournalView:
    """One journal row, its data parsed."""

    seq: int
    message_id: int | None
    event: str
    at: datetime
    data: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    """The result of recomputing the journal's hash chain.

    Attributes:
        ok: every row's hash is right, the seqs run 1..n without gaps, the head agrees, and
            every work item's columns are what its journal events say.
        count: journal rows read.
        first_broken_seq: the first journal row that does not verify (``None`` if none).
        detail: the first problem, for an operator.
        broken: how many problems (a change is reported once: each journal row is checked
            against its own stored ``prev_hash`` and its predecessor's stored ``hash``).
        problems: the first few problems, one line each.
        messages: work items compared with their journal.
        first_broken_message: the first work item whose row disagrees with its journal.
    """

    ok: bool
    count: int
    first_broken_seq: int | None = None
    detail: str = ""
    broken: int = 0
    problems: tuple[str, ...] = field(default=())
    messages: int = 0
    first_broken_message: int | None = None
