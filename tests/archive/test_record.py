"""A document's full record: timeline with each time's source, JSON in +07:00, chain positions.

Seeded through the Store API the way the pipeline writes (intake, verdict with the report's
JSON, delivery, a notice child, a status trail on one of our submissions).
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.archive.record import DocumentRecord, load_record
from gateway.clock import FixedClock
from gateway.devpki import DevPKI
from gateway.pipeline.notices import NoticeKind, create_notice, status_01, status_02
from gateway.store import Intake, NotFound, Store
from tests.pipeline.test_notices import REVOKED, parent
from tests.pipeline.test_receive import document, world
from tests.store.helpers import db_url, sha

T0 = datetime(2025, 3, 14, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam
SIGNED = datetime(2025, 3, 13, 8, 30, tzinfo=UTC)
STAMPED = datetime(2025, 3, 13, 8, 31, tzinfo=UTC)
POLICY = "ab" * 32
FINDING = {
    "code": "no-timestamp",
    "action": "warn",
    "where": "main.pdf",
    "message_vi": "Chữ ký không có dấu thời gian",
    "message_en": "The signature has no time-stamp",
}
REPORT: dict[str, Any] = {
    "verdict": "accepted",
    "indication": "TOTAL_PASSED",
    "subindication": None,
    "findings": [FINDING],
    "signatures": [
        {
            "where": "main.pdf",
            "document": "main.pdf",
            "index": 0,
            "signer": "Nguyễn Văn A",
            "declared_signing_time": "2025-03-13T15:30:00+07:00",
            "timestamp_time": "2025-03-13T15:31:00+07:00",
            "tsa": "TSA test",
        }
    ],
    "policy": {"name": "default", "version": "1", "sha256": POLICY},
    "verified_at": "2025-03-14T09:00:05+07:00",
}


async def _seed(store: Store, clock: FixedClock) -> tuple[int, int]:
    item = await store.record_intake(Intake(kind="inbound", channel="smtp", sha256=sha("in"), size=10))
    await store.transition(item.id, "active", reason="claimed")
    clock.advance(timedelta(seconds=5))
    notice = Intake(kind="notice", channel="internal", sha256=sha("notice"), size=5, parent_id=item.id)
    await store.record_verdict(
        item.id,
        REPORT,
        verdict="accepted",
        indication="TOTAL_PASSED",
        findings=[FINDING],
        policy_sha256=POLICY,
        children=[notice],
        from_organ="000.00.00.G22",
        to_organs=["000.00.00.H26"],
        code="12/VPCP-TH",
        subject="Kiểm tra",
    )
    clock.advance(timedelta(seconds=2))
    await store.transition(item.id, "delivered", reason="to the DMS", event="delivered")
    child = (await store.list(parent_id=item.id))[0]
    await store.transition(child.id, "active", reason="claimed", status_code="01")
    clock.advance(timedelta(seconds=3))
    await store.transition(child.id, "sent", reason="sent", event="sent", sent_at=clock.now())
    # One of ours, with a status trail reported back by the recipient.
    ours = await store.record_intake(Intake(kind="submission", channel="submission", sha256=sha("out"), size=9))
    clock.advance(timedelta(hours=1))
    await store.add_status_event(
        ours.id, "05", description="Đang xử lý", reported_at=T0 + timedelta(minutes=50), from_organ="000.00.00.H26"
    )
    return item.id, ours.id


def _load(tmp_path: Path) -> tuple[DocumentRecord, DocumentRecord]:
    async def scenario() -> tuple[DocumentRecord, DocumentRecord]:
        clock = FixedClock(T0)
        async with await Store.open(db_url(tmp_path), clock=clock) as store:
            inbound, ours = await _seed(store, clock)
            return await load_record(store, inbound), await load_record(store, ours)

    return asyncio.run(scenario())


def test_the_timeline_orders_every_time_and_names_its_source(tmp_path: Path) -> None:
    """Checklist A3: signing time claimed by the signer, time-stamp time, our own legal times."""
    record, _ = _load(tmp_path)
    steps = [(e.at, e.what, e.source) for e in record.timeline()]
    assert steps == [
        (SIGNED, "signing-time", "signature"),
        (STAMPED, "timestamp", "timestamp"),
        (T0, "received", "system"),
        (T0 + timedelta(seconds=5), "verified", "system"),
        (T0 + timedelta(seconds=7), "delivered", "system"),
        (T0 + timedelta(seconds=10), "notice-sent", "system"),
    ]
    assert all(e.label_vi and e.label_en for e in record.timeline())
    assert "Nguyễn Văn A" in (record.timeline()[0].detail or "")
    assert "01" in record.timeline()[-1].label_en


def test_a_status_trail_gives_the_senders_time_and_ours(tmp_path: Path) -> None:
    _, ours = _load(tmp_path)
    status = [(e.at, e.source) for e in ours.timeline() if e.what == "status-05"]
    assert status == [(T0 + timedelta(minutes=50), "sender"), (T0 + timedelta(hours=1, seconds=10), "system")]


def test_json_has_the_verdict_in_both_languages_the_policy_and_the_chain(tmp_path: Path) -> None:
    record, _ = _load(tmp_path)
    data = record.to_json()
    assert data["received_at"] == "2025-03-14T09:00:00+07:00"
    assert data["verdict"]["verdict"] == "accepted"
    assert data["verdict"]["policy"]["sha256"] == POLICY
    assert data["verdict"]["findings"] == [FINDING]
    assert [t["at"] for t in data["timeline"]][:3] == [
        "2025-03-13T15:30:00+07:00",
        "2025-03-13T15:31:00+07:00",
        "2025-03-14T09:00:00+07:00",
    ]
    journal = data["journal"]
    assert [j["event"] for j in journal] == ["received", "transition", "verdict", "delivered"]
    for earlier, later in itertools.pairwise(journal):
        assert later["seq"] > earlier["seq"]
    assert all(len(j["hash"]) == 64 and len(j["prev_hash"]) == 64 for j in journal)
    assert all(j["at"].endswith("+07:00") for j in journal)
    assert [c["kind"] for c in data["children"]] == ["notice"]


def test_a_child_knows_its_parent(tmp_path: Path) -> None:
    record, _ = _load(tmp_path)

    async def scenario() -> DocumentRecord:
        async with await Store.open(db_url(tmp_path), clock=FixedClock(T0)) as store:
            return await load_record(store, record.children[0].id)

    child = asyncio.run(scenario())
    assert child.parent is not None
    assert child.parent.id == record.message.id
    assert child.to_json()["parent"]["id"] == record.message.id


def test_an_unknown_id_is_not_found(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with await Store.open(db_url(tmp_path), clock=FixedClock(T0)) as store:
            await load_record(store, 404)

    with pytest.raises(NotFound, match="404"):
        asyncio.run(scenario())


def test_a_sent_notice_is_named_by_the_status_it_carried_never_by_question_marks(
    tmp_path: Path, dev_pki: DevPKI
) -> None:
    """A status notice's row carries its code; a plain one's mail says what it was.

    Made with the pipeline's own ``create_notice`` (status 01, status 02, plain text), then one
    notice whose mail is gone from the spool. The status notices are named from their rows,
    spool or not; without the spool, or without its mail, a notice with no code in its row is
    "notice sent" and names no code.
    """

    async def scenario() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
        async with world(tmp_path, dev_pki) as w:
            item = await parent(w)
            made: dict[NoticeKind, bytes | None] = {
                "status-01": status_01(w.ctx, item, document()),
                "status-02": status_02(w.ctx, item, document(), [REVOKED]),
                "plain": None,
            }
            names: dict[str, str] = {}
            for n, (kind, package) in enumerate(made.items()):
                notice = await create_notice(
                    w.ctx, parent=item, recipient=f"vanthu{n}@example.gov.vn", kind=kind, package=package,
                    subject="s", text="t",
                )  # fmt: skip
                names[f"item {notice.id}"] = kind
            lost = Intake(kind="notice", channel="internal", sha256=sha("lost"), size=1, parent_id=item.id)
            names[f"item {(await w.store.record_intake(lost)).id}"] = "lost"
            for notice in await w.store.list(kind="notice", parent_id=item.id):
                wanted = {"status-01": "01", "status-02": "02"}.get(names[f"item {notice.id}"])
                assert notice.status_code == wanted  # recorded with the notice
                await w.store.transition(notice.id, "active", reason="claimed")
                await w.store.transition(notice.id, "sent", reason="sent", event="sent", sent_at=w.clock.now())

            def labels(record: DocumentRecord) -> dict[str, tuple[str, str]]:
                sent = [e for e in record.timeline() if e.what == "notice-sent"]
                return {names[e.detail or ""]: (e.label_vi, e.label_en) for e in sent}

            return labels(await load_record(w.store, item.id, spool=w.spool)), labels(
                await load_record(w.store, item.id)
            )

    with_spool, without = asyncio.run(scenario())
    assert with_spool == {
        "status-01": ("Đã gửi trạng thái 01 Đã đến", "status 01 arrived sent"),
        "status-02": ("Đã gửi trạng thái 02 Từ chối tiếp nhận", "status 02 refused sent"),
        "plain": (
            "Đã gửi thông báo bằng thư thường (không có gói tin trạng thái)",
            "plain-text notice sent (no status package)",
        ),
        "lost": ("Đã gửi thông báo", "notice sent"),
    }  # fmt: skip
    assert without == {
        **{k: with_spool[k] for k in ("status-01", "status-02")},  # from the rows
        "plain": ("Đã gửi thông báo", "notice sent"),
        "lost": ("Đã gửi thông báo", "notice sent"),
    }
    assert not any("?" in vi + en for vi, en in [*with_spool.values(), *without.values()])
