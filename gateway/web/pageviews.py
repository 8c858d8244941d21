"""What the archivist's templates show, computed from the store's views (no HTML here).

The templates stay free of logic: each page gets plain values, times already rendered in
Vietnam time (ISO 8601, ``+07:00``), texts already in the page's language. Values are data and
are escaped by the templates, never marked safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.archive.record import STATUS_EN, STATUS_VI, DocumentRecord
from gateway.clock import iso_vn, iso_vn_or_none
from gateway.store import MessageView
from gateway.web.i18n import words

__all__ = ["DocumentView", "document_view", "result_row"]

_ACTION_ORDER: Final = {"reject": 0, "defer": 1, "warn": 2, "ignore": 3}
"""Findings are listed by weight: those that decided the verdict first."""


def _organs(item: MessageView) -> str:
    return ", ".join(item.to_organs or ()) or ", ".join(item.rcpt_to)


def _what(item: MessageView, t: Mapping[str, str], lang: str) -> str:
    """What the row is: incoming or outgoing document, or a notice we sent (its status code and name)."""
    if item.kind != "notice":
        return t[item.direction]
    if item.status_code is None:  # a plain-text notice, or a row from before notices carried their code
        return t["notice"]
    name = (STATUS_EN if lang == "en" else STATUS_VI).get(item.status_code)
    label = t["status_notice"].format(code=item.status_code)
    return f"{label} — {name}" if name else label


def result_row(item: MessageView, lang: str) -> dict[str, Any]:
    """One row of the search results table, its words in ``lang``.

    A notice we sent (``kind`` ``notice``: a status package answering a document, or a plain-text
    mail) is shown as such, not as an outgoing document, and has no verdict badge: nothing about
    it was ever to be checked (``judged`` is ``False``).
    """
    return {
        "id": item.id,
        "received": iso_vn_or_none(item.received_at),
        "direction": item.direction,
        "what": _what(item, words(lang), lang),
        "sender": item.from_organ or item.mail_from,
        "recipients": _organs(item),
        "code": item.code,
        "subject": item.subject,
        "verdict": item.verdict,
        "judged": item.kind != "notice",
    }


@dataclass(frozen=True)
class DocumentView:
    """Everything ``document.html`` shows about one work item."""

    id: int
    verdict: str | None
    subject: str | None
    parent_id: int | None
    facts: tuple[tuple[str, str], ...]
    findings: tuple[Mapping[str, str], ...]
    timeline: tuple[Mapping[str, str | None], ...]
    signatures: tuple[Mapping[str, Any], ...]
    status_trail: tuple[Mapping[str, str | None], ...]
    related: tuple[Mapping[str, Any], ...]


def _facts(item: MessageView, t: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    pairs = (
        (t["col_direction"], t[item.direction]),
        (t["f_document_id"], item.document_id),
        (t["col_code"], item.code),
        (t["col_sender"], item.from_organ),
        (t["col_recipients"], ", ".join(item.to_organs or ())),
        (t["f_mail_from"], item.mail_from),
        (t["f_rcpt_to"], ", ".join(item.rcpt_to)),
        (t["f_kind"], item.kind),
        (t["f_state"], item.state),
        (t["f_indication"], item.indication),
        (t["f_policy"], item.policy_sha256),
        (t["f_sha256"], item.sha256),
        (t["f_size"], str(item.size)),
    )
    return tuple((label, value) for label, value in pairs if value)


def _findings(item: MessageView, lang: str) -> tuple[Mapping[str, str], ...]:
    found = sorted(item.findings or (), key=lambda f: _ACTION_ORDER.get(str(f.get("action")), 9))
    return tuple(
        {
            "code": str(f.get("code", "")),
            "action": str(f.get("action", "")),
            "where": str(f.get("where") or ""),
            "message": str(f.get(f"message_{lang}") or f.get("message_vi") or f.get("code", "")),
        }
        for f in found
    )


def _signatures(item: MessageView) -> tuple[Mapping[str, Any], ...]:
    # The report's signatures are JSON already rendered +07:00 (VerificationReport.to_json).
    rows = []
    for s in (item.report or {}).get("signatures") or ():
        revocation = s.get("revocation") or {}
        status = " · ".join(str(v) for v in (revocation.get("status"), revocation.get("source")) if v)
        rows.append(
            {
                "document": s.get("document") or s.get("where") or "",
                "signer": s.get("signer"),
                "role": s.get("role") or "unknown",
                "signing_time": s.get("signing_time"),
                "timestamp_time": s.get("timestamp_time"),
                "indication": s.get("indication") or "",
                "subindication": s.get("subindication"),
                "revocation": status,
            }
        )
    return tuple(rows)


def document_view(record: DocumentRecord, lang: str) -> DocumentView:
    """The document page's values for ``record`` in ``lang`` (``vi`` or ``en``)."""
    item = record.message
    t = words(lang)
    timeline = tuple(
        {
            "at": iso_vn(e.at),
            "label": e.label_en if lang == "en" else e.label_vi,
            "source": e.source,
            "detail": e.detail,
        }
        for e in record.timeline()
    )
    trail = tuple(
        {
            "code": s.status_code,
            "description": s.description,
            "reported": iso_vn_or_none(s.reported_at),
            "received": iso_vn_or_none(s.received_at),
            "organ": s.from_organ,
        }
        for s in record.status_trail
    )
    related = tuple({"id": c.id, "kind": c.kind, "recipient": c.recipient, "state": c.state} for c in record.children)
    return DocumentView(
        id=item.id,
        verdict=item.verdict,
        subject=item.subject,
        parent_id=item.parent_id,
        facts=_facts(item, t),
        findings=_findings(item, lang),
        timeline=timeline,
        signatures=_signatures(item),
        status_trail=trail,
        related=related,
    )
