"""Notices: the signed status packages 01 and 02, their bilingual texts, the notice work items."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.clock import iso_vn
from gateway.devpki import DevPKI
from gateway.edxml.model import StatusPackage
from gateway.edxml.parse import parse
from gateway.edxml.xmlsafe import parse_untrusted
from gateway.errors import ConfigError
from gateway.pipeline.context import our_organization
from gateway.pipeline.notices import (
    Reason,
    create_notice,
    prepare_notice,
    reasons_of,
    refusal_text,
    status_01,
    status_02,
    text_01,
    text_02,
)
from gateway.settings import IdentitySettings
from gateway.store import Intake, MessageView
from gateway.verify.xmldsig import verify_envelope
from tests.pipeline.test_receive import DOCUMENT_ID, OUR_MAIL, OURS, SENDER, SENDER_MAIL, World, document, world

REVOKED = Reason(
    "cert-revoked",
    "cong-van.pdf, signature 1",
    "Chứng thư số đã bị thu hồi trước thời điểm ký.",
    "The signer's certificate was revoked before the signing time.",
)
MODIFIED = Reason(
    "pdf-modified-after-signing",
    "cong-van.pdf, signature 2",
    "Tài liệu đã bị thay đổi sau khi ký.",
    "The document was changed after it was signed.",
)


async def parent(w: World) -> MessageView:
    sha256 = await w.spool.put(b"Subject: x\r\n\r\nbody\r\n")
    return await w.store.record_intake(Intake(kind="inbound", channel="smtp", sha256=sha256, size=22))


def signed_status(w: World, raw: bytes) -> StatusPackage:
    envelope = verify_envelope(parse_untrusted(raw))
    assert envelope.valid, envelope.reason
    assert envelope.signer == w.key.certificate
    package = parse(raw).package
    assert isinstance(package, StatusPackage)
    return package


def test_status_02_is_signed_and_says_why_in_both_languages(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item = await parent(w)
            status = signed_status(w, status_02(w.ctx, item, document(), [REVOKED, MODIFIED]))
            assert status.status_code == "02"
            assert status.from_ == our_organization(w.ctx.settings.identity)
            assert status.from_.organ_name == "UBND tỉnh Tây Ninh"
            assert status.response_for.document_id == DOCUMENT_ID
            assert status.response_for.organ_id == SENDER
            assert status.timestamp == w.clock.now().replace(microsecond=0)  # decided now
            text = status.description or ""
            for reason in (REVOKED, MODIFIED):
                assert f"[{reason.code}] {reason.message_vi}" in text
                assert f"[{reason.code}] {reason.message_en}" in text
            assert text.index("Lý do") < text.index("Reasons")  # Vietnamese first

    asyncio.run(go())


def test_status_01_carries_the_receive_time(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item = await parent(w)
            w.clock.advance(timedelta(hours=3))  # verification and the DMS took a while
            status = signed_status(w, status_01(w.ctx, item, document()))
            assert status.status_code == "01"
            assert item.received_at is not None
            assert status.timestamp == item.received_at.replace(microsecond=0)
            subject, text = text_01(w.ctx, item, document())
            assert subject == "Đã đến / Arrived: 123/VPCP-TTĐT"
            assert iso_vn(item.received_at) in text
            assert "đã đến UBND tỉnh Tây Ninh" in text
            assert "arrived at UBND tỉnh Tây Ninh" in text

    asyncio.run(go())


def test_reasons_from_the_stored_report_json() -> None:
    report = {
        "verdict": "refused",
        "findings": [
            {"code": "attachment-not-pdf", "action": "warn", "where": "a.txt", "message_vi": "v", "message_en": "e"},
            {
                "code": REVOKED.code,
                "action": "reject",
                "where": REVOKED.where,
                "message_vi": REVOKED.message_vi,
                "message_en": REVOKED.message_en,
            },
        ],
    }
    assert reasons_of(report) == (REVOKED,)
    deferred = {"verdict": "deferred", "findings": [{**report["findings"][1], "action": "defer"}]}  # type: ignore[dict-item]
    assert reasons_of(deferred) == (REVOKED,)
    assert reasons_of({"verdict": "accepted", "findings": report["findings"]}) == ()


def test_refusal_texts() -> None:
    text = refusal_text([REVOKED])
    vi, en = text.split("\n\n")
    assert vi.startswith("Từ chối tiếp nhận văn bản. Lý do:")
    assert f"- [cert-revoked] {REVOKED.message_vi} ({REVOKED.where})" in vi
    assert en.startswith("The document is refused. Reasons:")
    assert REVOKED.message_en in en
    assert "no reason recorded" in refusal_text([])
    subject, body = text_02(document(), [REVOKED], signed=True)
    assert subject == "Từ chối tiếp nhận / Refused: 123/VPCP-TTĐT"
    assert "status package 02 (refused) is attached" in body
    subject, body = text_02(None, [REVOKED], signed=False)
    assert subject == "Từ chối tiếp nhận / Refused"
    assert "attached" not in body
    assert body.startswith("Thư không được tiếp nhận. / The mail is refused.")


def test_a_notice_mail_and_its_work_item(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item = await parent(w)
            signed = status_02(w.ctx, item, document(), [REVOKED])
            subject, text = text_02(document(), [REVOKED], signed=True)
            notice = await create_notice(
                w.ctx, parent=item, recipient=SENDER_MAIL, kind="status-02", package=signed, subject=subject, text=text
            )
            assert (notice.kind, notice.state, notice.direction, notice.channel) == (
                "notice",
                "incoming",
                "out",
                "internal",
            )
            assert (notice.parent_id, notice.recipient, notice.rcpt_to, notice.mail_from) == (
                item.id,
                SENDER_MAIL,
                (SENDER_MAIL,),
                OUR_MAIL,
            )
            mail = email.message_from_bytes(await w.spool.get(notice.sha256), policy=email.policy.default)
            assert notice.message_id_header == mail["Message-ID"]
            assert (mail["From"], mail["To"], mail["Subject"]) == (OUR_MAIL, SENDER_MAIL, subject)
            assert mail["Auto-Submitted"] == "auto-replied"
            assert mail["X-Gateway-Notice"] == f"{item.id}; status-02"
            [attachment] = list(mail.iter_attachments())
            assert attachment.get_filename() == f"trang-thai-02-{item.id}.edxml"
            assert attachment.get_content() == signed
            # A replay finds the notice it made: one per (parent, recipient).
            again = await create_notice(
                w.ctx, parent=item, recipient=SENDER_MAIL, kind="status-02", package=signed, subject=subject, text=text
            )
            assert again.id == notice.id
            other = await create_notice(
                w.ctx, parent=item, recipient="vanthu2@chinhphu.vn", kind="plain", package=None, subject="s", text="t"
            )
            assert other.id != notice.id
            assert len(await w.store.list(kind="notice", parent_id=item.id)) == 2

    asyncio.run(go())


def test_a_notice_kind_and_its_package_agree(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item = await parent(w)
            with pytest.raises(ValueError, match="needs"):
                await prepare_notice(
                    w.ctx, parent=item, recipient=SENDER_MAIL, kind="status-01", package=None, subject="s", text="t"
                )
            with pytest.raises(ValueError, match="takes no"):
                await prepare_notice(
                    w.ctx, parent=item, recipient=SENDER_MAIL, kind="plain", package=b"<edXML/>", subject="s", text="t"
                )

    asyncio.run(go())


def test_our_organization_needs_an_organ_id() -> None:
    assert our_organization(IdentitySettings(organ_ids=(OURS, "000.00.02.H53"), email=OUR_MAIL)).organ_id == OURS
    with pytest.raises(ConfigError, match="no OrganId"):
        our_organization(IdentitySettings())
