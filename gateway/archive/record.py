"""A document's full record: the work item, its journal, its status trail, and every time in order.

An archivist asks "when did this arrive, when was it judged, by which rules, what did the sender
claim and what did the time-stamp authority attest?". The answer mixes times of different
standing, so each :class:`TimelineEntry` says where its time comes from:

* ``system``: our own legal time (the gateway's clock, recorded in the hash-chained journal);
* ``sender``: what the sending organ reported (a status package's timestamp): a claim;
* ``signature``: the signing time a signer's software wrote into the signature: a claim;
* ``timestamp``: an RFC 3161 time-stamp token's time, attested by a time-stamp authority.

Everything is read, nothing written. Times stay aware UTC in memory and are shown as ISO 8601
+07:00 (``to_json``).

A notice we sent (a child of kind ``notice``) carries in its row the code of the status package
it attached (``01``, ``02``), recorded when the notice was made; the record names it from there.
A row without one is a plain-text notice, or a notice recorded before rows carried their code:
for those, what it was (a status 01, a status 02, or a plain-text mail) is read from the spooled
mail's ``X-Gateway-Notice`` header (``gateway.pipeline.notices.notice_kind``) when
:func:`load_record` is given the spool; without the spool, or when the mail cannot be read, the
timeline says "notice sent" and names no code rather than guess.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from gateway.clock import iso_vn, iso_vn_or_none, to_utc
from gateway.errors import TransientError
from gateway.pipeline.notices import NOTICE_KINDS, NoticeKind, notice_kind
from gateway.store import JournalView, MessageView, NotFound, Spool, SpoolError, StatusEventView, Store

__all__ = [
    "SOURCES",
    "STATUS_EN",
    "STATUS_VI",
    "DocumentRecord",
    "TimelineEntry",
    "finding_codes",
    "load_record",
    "message_json",
]

SOURCES: Final = ("system", "sender", "signature", "timestamp")
STATUS_VI: Final = {
    "01": "Đã đến",
    "02": "Từ chối tiếp nhận",
    "03": "Đã tiếp nhận",
    "04": "Phân công xử lý",
    "05": "Đang xử lý",
    "06": "Hoàn thành",
    "13": "Lấy lại",
    "15": "Đồng ý cập nhật, lấy lại",
    "16": "Từ chối cập nhật, lấy lại",
}
"""The status codes' Vietnamese names (``gateway.edxml.model.StatusCode.description_vi``)."""
STATUS_EN: Final = {
    "01": "arrived",
    "02": "refused",
    "03": "accepted",
    "04": "assigned",
    "05": "being processed",
    "06": "completed",
    "13": "recall requested",
    "15": "recall agreed",
    "16": "recall refused",
}
_MAX_CHILDREN = 1000

log = logging.getLogger(__name__)

# Journal events and states that mark a step of the timeline: (key, Vietnamese, English).
_EVENTS: Final = {
    "verdict": ("verified", "Kiểm tra chữ ký xong", "verified"),
    "delivered": ("delivered", "Đã chuyển đến hệ thống quản lý văn bản", "delivered to the DMS"),
    "sent": ("sent", "Đã gửi đi", "sent"),
    "released": ("released", "Quản trị viên đã giải phóng", "released by an administrator"),
}
_STATES: Final = {
    "refused": ("refused", "Từ chối tiếp nhận", "refused"),
    "deferred": ("deferred", "Tạm hoãn (sẽ kiểm tra lại)", "deferred (to be checked again)"),
    "hold": ("held", "Dừng lại chờ quản trị viên", "held for an administrator"),
    "sealed": ("sealed", "Đã ký số của cơ quan", "sealed with the organisation's signature"),
    "failed": ("failed", "Thất bại", "failed"),
}


@dataclass(frozen=True)
class TimelineEntry:
    """One dated step of a document's life.

    Attributes:
        at: aware UTC.
        what: a stable key (``received``, ``verified``, ``delivered``, ``sent``, ``refused``,
            ``status-05``, ``signing-time``, ``timestamp``, ``notice-sent``…).
        label_vi, label_en: what happened, for people.
        source: whose time it is (:data:`SOURCES`).
        detail: which signature, status description, recipient… (``None`` if nothing to add).
    """

    at: datetime
    what: str
    label_vi: str
    label_en: str
    source: str
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, the time in ISO 8601 +07:00."""
        return {
            "at": iso_vn(self.at),
            "what": self.what,
            "label_vi": self.label_vi,
            "label_en": self.label_en,
            "source": self.source,
            "detail": self.detail,
        }


def _parse_time(value: object) -> datetime | None:
    """A time from a stored report (ISO 8601 with an offset), or ``None``."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return to_utc(moment) if moment.tzinfo is not None else None


def _signature_entries(report: Mapping[str, Any] | None) -> Iterator[TimelineEntry]:
    for sig in (report or {}).get("signatures") or ():
        if not isinstance(sig, Mapping):
            continue
        who = sig.get("signer") or "?"
        where = f"{sig.get('document') or sig.get('where') or '?'} #{sig.get('index', '?')}"
        declared = _parse_time(sig.get("declared_signing_time"))
        if declared is not None:
            yield TimelineEntry(
                declared,
                "signing-time",
                "Thời điểm ký (máy người ký ghi)",
                "signing time (as the signer's software wrote it)",
                "signature",
                f"{who}, {where}",
            )
        stamped = _parse_time(sig.get("timestamp_time"))
        if stamped is not None:
            tsa = f" (TSA {sig['tsa']})" if sig.get("tsa") else ""
            yield TimelineEntry(
                stamped,
                "timestamp",
                "Dấu thời gian của chữ ký",
                "signature time-stamp",
                "timestamp",
                f"{who}, {where}{tsa}",
            )


def _status_entries(trail: tuple[StatusEventView, ...]) -> Iterator[TimelineEntry]:
    for event in trail:
        code = event.status_code
        vi, en = STATUS_VI.get(code, f"trạng thái {code}"), STATUS_EN.get(code, f"status {code}")
        who = f" {event.from_organ}" if event.from_organ else ""
        detail = f"{event.from_organ or '?'}: {event.description}" if event.description else event.from_organ
        if event.reported_at is not None:
            yield TimelineEntry(
                event.reported_at,
                f"status-{code}",
                f"{code} {vi} (bên nhận báo)",
                f"{code} {en} (as{who or ' the recipient'} reported)",
                "sender",
                detail,
            )
        yield TimelineEntry(
            event.received_at,
            f"status-{code}",
            f"Nhận trạng thái {code} {vi}",
            f"status {code} {en} received",
            "system",
            detail,
        )


def _journal_entries(message: MessageView, journal: tuple[JournalView, ...]) -> Iterator[TimelineEntry]:
    for row in journal:
        if row.event in _EVENTS:
            what, vi, en = _EVENTS[row.event]
            detail = message.verdict if row.event == "verdict" else None
            yield TimelineEntry(row.at, what, vi, en, "system", detail)
        elif row.event == "transition" and row.data.get("to") in _STATES:
            what, vi, en = _STATES[str(row.data["to"])]
            reason = row.data.get("reason")
            yield TimelineEntry(row.at, what, vi, en, "system", str(reason) if reason else None)


def _notice_labels(child: MessageView, kind: NoticeKind | None) -> tuple[str, str]:
    """What a sent notice was, in Vietnamese and English: its status code when known, never a guess."""
    code = child.status_code or (None if kind is None else NOTICE_KINDS.get(kind))
    if code:
        vi, en = STATUS_VI.get(code, f"trạng thái {code}"), STATUS_EN.get(code, f"status {code}")
        return f"Đã gửi trạng thái {code} {vi}", f"status {code} {en} sent"
    if kind == "plain":
        return (
            "Đã gửi thông báo bằng thư thường (không có gói tin trạng thái)",
            "plain-text notice sent (no status package)",
        )
    return "Đã gửi thông báo", "notice sent"


def _child_entries(
    children: tuple[MessageView, ...], notice_kinds: Mapping[int, NoticeKind]
) -> Iterator[TimelineEntry]:
    for child in children:
        if child.sent_at is None:
            continue
        if child.kind == "notice":
            vi, en = _notice_labels(child, notice_kinds.get(child.id))
            yield TimelineEntry(child.sent_at, "notice-sent", vi, en, "system", f"item {child.id}")
        elif child.kind == "send":
            yield TimelineEntry(
                child.sent_at, "sent", "Đã gửi đi", "sent", "system", f"to {child.recipient or '?'} (item {child.id})"
            )


@dataclass(frozen=True)
class DocumentRecord:
    """Everything the receipt log knows about one work item (read by :func:`load_record`)."""

    message: MessageView
    journal: tuple[JournalView, ...]
    status_trail: tuple[StatusEventView, ...]
    children: tuple[MessageView, ...]
    parent: MessageView | None
    notice_kinds: Mapping[int, NoticeKind] = field(default_factory=dict)
    """Child notice id → ``status-01``, ``status-02`` or ``plain``, read from the spool for notices whose
    row has no status code (plain ones, and those recorded before rows carried it), when known."""

    def timeline(self) -> list[TimelineEntry]:
        """Every dated step, oldest first (ties keep the order: system steps, then claims)."""
        m = self.message
        entries: list[TimelineEntry] = []
        if m.received_at is not None:
            en = "received from the axis" if m.direction == "in" else "received from the DMS"
            vi = "Cổng nhận được (thời điểm hệ thống)" if m.direction == "in" else "Nhận từ hệ thống quản lý văn bản"
            entries.append(TimelineEntry(m.received_at, "received", vi, en, "system", m.channel))
        entries.extend(_journal_entries(m, self.journal))
        if m.sent_at is not None and not any(e.what == "sent" for e in entries):
            entries.append(TimelineEntry(m.sent_at, "sent", "Đã gửi đi", "sent", "system", m.recipient))
        entries.extend(_child_entries(self.children, self.notice_kinds))
        entries.extend(_status_entries(self.status_trail))
        entries.extend(_signature_entries(m.report))
        return sorted(entries, key=lambda e: e.at)

    def findings(self) -> list[dict[str, Any]]:
        """The verdict's findings: code, action, where, Vietnamese and English text."""
        keys = ("code", "action", "where", "message_vi", "message_en")
        return [{k: f.get(k) for k in keys} for f in self.message.findings or ()]

    def to_json(self) -> dict[str, Any]:
        """The record as JSON: times ISO 8601 +07:00, findings in both languages, chain positions."""
        m, report = self.message, self.message.report or {}
        policy = report.get("policy") if isinstance(report.get("policy"), Mapping) else {}
        return {
            **_summary(m),
            "rcpt_to": list(m.rcpt_to),
            "mail_from": m.mail_from,
            "sha256": m.sha256,
            "size": m.size,
            "attempts": m.attempts,
            "last_error": m.last_error,
            "verdict": None
            if m.verdict is None
            else {
                "verdict": m.verdict,
                "indication": m.indication,
                "subindication": report.get("subindication"),
                "verified_at": report.get("verified_at"),
                "policy": {**dict(policy or {}), "sha256": m.policy_sha256},
                "findings": self.findings(),
            },
            "signatures": list(report.get("signatures") or ()),
            "timeline": [e.to_json() for e in self.timeline()],
            "journal": [
                {
                    "seq": j.seq,
                    "event": j.event,
                    "at": iso_vn(j.at),
                    "prev_hash": j.prev_hash,
                    "hash": j.hash,
                    "data": dict(j.data),
                }
                for j in self.journal
            ],
            "status_trail": [
                {
                    "status_code": s.status_code,
                    "description": s.description,
                    "from_organ": s.from_organ,
                    "reported_at": iso_vn_or_none(s.reported_at),
                    "received_at": iso_vn(s.received_at),
                    "inbound_id": s.inbound_id,
                }
                for s in self.status_trail
            ],
            "parent": None if self.parent is None else _summary(self.parent),
            "children": [_summary(c) for c in self.children],
        }


def _summary(m: MessageView) -> dict[str, Any]:
    return {
        "id": m.id,
        "kind": m.kind,
        "direction": m.direction,
        "state": m.state,
        "channel": m.channel,
        "document_id": m.document_id,
        "code": m.code,
        "subject": m.subject,
        "package_kind": m.package_kind,
        "status_code": m.status_code,
        "from_organ": m.from_organ,
        "to_organs": None if m.to_organs is None else list(m.to_organs),
        "recipient": m.recipient,
        "received_at": iso_vn_or_none(m.received_at),
        "sent_at": iso_vn_or_none(m.sent_at),
    }


def finding_codes(m: MessageView | None) -> list[str]:
    """The distinct finding codes of a work item, in the order its report first names them.

    A code a report names once per signature or attachment (``pdf-signature-invalid`` for each
    signature of a tampered PDF) is listed once; each finding in full stays in ``findings``.
    """
    codes = (str(f.get("code") or "") for f in (m.findings if m is not None else None) or ())
    return [code for code in dict.fromkeys(codes) if code]


def message_json(m: MessageView) -> dict[str, Any]:
    """One work item as a search result (``GET /api/v1/messages`` items): times +07:00, no report.

    ``finding_codes`` holds each code once (:func:`finding_codes`).
    """
    return {
        **_summary(m),
        "verdict": m.verdict,
        "indication": m.indication,
        "finding_codes": finding_codes(m),
        "size": m.size,
    }


async def _notice_kinds(spool: Spool | None, children: tuple[MessageView, ...]) -> dict[int, NoticeKind]:
    """What each notice child without a status code in its row was, read from its spooled mail.

    A fallback: a status notice's row carries its code (``prepare_notice``); plain notices and
    rows recorded before that have none, and only their mail's header says what they were.
    """
    kinds: dict[int, NoticeKind] = {}
    for child in children:
        if spool is None or child.kind != "notice" or child.status_code is not None:
            continue
        try:
            kind = notice_kind(await spool.get(child.sha256))
        except (SpoolError, TransientError, ValueError) as exc:  # the record still shows the notice, without a code
            log.warning("notice %s: its spooled mail cannot be read (%s); shown without its kind", child.id, exc)
            continue
        if kind is not None:
            kinds[child.id] = kind
    return kinds


async def load_record(store: Store, id: int, *, spool: Spool | None = None) -> DocumentRecord:
    """Read one work item's whole record (several reads; the journal makes it consistent enough:
    rows only ever grow).

    Args:
        store: the receipt log.
        id: the work item.
        spool: where to read what a notice without a status code in its row was (plain text,
            or a status notice recorded before rows carried their code); without it, such a
            notice is shown as "notice sent" with no code.

    Raises:
        NotFound: no work item ``id``.
    """
    message = await store.get(id)
    if message is None:
        raise NotFound(f"no work item {id}")
    journal = tuple(await store.history(id))
    trail = tuple(await store.status_events(id))
    children = tuple(sorted(await store.list(parent_id=id, limit=_MAX_CHILDREN), key=lambda c: c.id))
    parent = None if message.parent_id is None else await store.get(message.parent_id)
    return DocumentRecord(
        message=message,
        journal=journal,
        status_trail=trail,
        children=children,
        parent=parent,
        notice_kinds=await _notice_kinds(spool, children),
    )
