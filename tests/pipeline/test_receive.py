"""process_inbound on the real store (SQLite in a temp dir) and spool, with real verdicts.

Packages carry PDFs signed by the development PKI and are judged by the real examiner against
its live OCSP/CRL/TSA; the DMS and the mail server are in-memory twins. Each test walks one row
of the decision table in gateway/pipeline/receive.py. The ``World`` helpers are shared by the
notice and scheduler tests.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import FixedClock, SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.edxml.attachments import attachment_from_file
from gateway.edxml.build import build
from gateway.edxml.model import (
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    PromulgationInfo,
    SignerInfo,
    StatusPackage,
)
from gateway.edxml.parse import parse
from gateway.edxml.status import make_status
from gateway.edxml.xmlsafe import parse_untrusted
from gateway.errors import PermanentError, TransientError
from gateway.pipeline.context import PipelineContext
from gateway.pipeline.mails import compose, find_package
from gateway.pipeline.receive import process_inbound
from gateway.settings import AxisSettings, IdentitySettings, QueueSettings, Settings
from gateway.sign.envelope import sign_envelope
from gateway.sign.keys import SigningKey, load_pkcs12
from gateway.sign.package import PackageSealer
from gateway.sign.pdfseal import SealRequest
from gateway.store import Intake, MessageView, Spool, Store
from gateway.verify.directory import Agency, Directory
from gateway.verify.package import Verifier
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Action, Policy, SignerPolicy
from gateway.verify.report import Verdict
from gateway.verify.trust import TrustStore
from gateway.verify.xmldsig import verify_envelope
from tests.pdfs import SignedPdfs
from tests.pipeline.twins import TwinDeliverer, TwinSender

OURS = "000.00.01.H53"
SENDER = "000.00.00.G22"
SENDER_MAIL = "vanthu@chinhphu.vn"
ENVELOPE_FROM = "bounces@chinhphu.vn"
OUR_MAIL = "vanthu@tayninh.gov.vn"
DOCUMENT_ID = f"{SENDER},2026/11/20,123/VPCP-TTĐT"
DIRECTORY = Directory({SENDER: Agency(SENDER, name="Văn phòng Chính phủ", mail=(SENDER_MAIL,))})


def document(*pdfs: tuple[str, bytes], to: str = OURS) -> DocumentPackage:
    """A Công văn from the Government Office carrying ``pdfs``."""
    header = MessageHeader(
        from_=Organization(SENDER, organ_name="Văn phòng Chính phủ"),
        to=(Organization(to),),
        code=DocumentCode("123", "VPCP-TTĐT"),
        promulgation=PromulgationInfo("Hà Nội", date(2026, 11, 20)),
        document_type=DocumentType(2, 18, "Công văn"),
        subject="V/v kiểm tra chữ ký số",
        signer=SignerInfo("KT. BỘ TRƯỞNG", "Thứ trưởng", "Nguyễn Văn Test"),
        document_id=DOCUMENT_ID,
    )
    return DocumentPackage(header=header, attachments=tuple(attachment_from_file(n, d) for n, d in pdfs))


def carrying(package: bytes, *, headers: dict[str, str] | None = None) -> bytes:
    """The mail the axis delivers: the package attached, a short text part."""
    return compose(
        package,
        filename="cong-van.edxml",
        mail_from=SENDER_MAIL,
        to=[OUR_MAIL],
        subject="Công văn 123/VPCP-TTĐT",
        text="Kính gửi UBND tỉnh Tây Ninh.\n",
        at=SystemClock().now(),
        headers=headers,
    )


def dev_policy(pki: DevPKI) -> Policy:
    signers = SignerPolicy(
        organisation_policy_oids=(pki.policy_oids.organisation,), person_policy_oids=(pki.policy_oids.person,)
    )
    return Policy(signers=signers)


def org_key(pki: DevPKI) -> SigningKey:
    return load_pkcs12(pki.pkcs12("org", b"pw"), b"pw", source="org.p12")


class _NoSealing:
    """The receiving half never seals; a call here is a bug the test must see."""

    async def seal_document(self, pdf: bytes, request: SealRequest) -> bytes:
        raise AssertionError("the receiving half sealed a document")


@dataclass
class World:
    """One gateway's pipeline on a temp directory: real store and spool, twin DMS and mail server."""

    ctx: PipelineContext
    store: Store
    spool: Spool
    clock: FixedClock
    deliverer: TwinDeliverer
    sender: TwinSender
    key: SigningKey

    async def receive(self, mail: bytes, *, mail_from: str = ENVELOPE_FROM) -> MessageView:
        """What the SMTP intake does: spool, then record (``incoming``)."""
        sha256 = await self.spool.put(mail)
        intake = Intake(kind="inbound", channel="smtp", sha256=sha256, size=len(mail), mail_from=mail_from)
        return await self.store.record_intake(intake)

    async def process(self) -> MessageView:
        """Claim the next due inbound item, process it, and read it back."""
        claimed = await self.store.claim(["inbound"], self.clock.now(), limit=1)
        assert len(claimed) == 1, "nothing due"
        await process_inbound(claimed[0], self.ctx)
        after = await self.store.get(claimed[0].id)
        assert after is not None
        return after

    async def notices(self, parent: int) -> list[MessageView]:
        return list(reversed(await self.store.list(kind="notice", parent_id=parent)))


@asynccontextmanager
async def world(
    tmp_path: Path, pki: DevPKI, *, policy: Policy | None = None, directory: Directory = DIRECTORY
) -> AsyncIterator[World]:
    """Open a world; everything is closed on exit."""
    clock = FixedClock(SystemClock().now())
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", clock=clock)
    trust = TrustStore.load(
        [pki.layout.anchor("root")], [fingerprint(pki.certificate("root"))], [pki.layout.intermediate("intermediate")]
    )
    examiner = Examiner(trust, SystemClock())
    identity = IdentitySettings(organ_ids=(OURS,), organ_name="UBND tỉnh Tây Ninh")
    verifier = Verifier(examiner=examiner, policy=policy or dev_policy(pki), identity=identity, directory=directory)
    key = org_key(pki)
    settings = Settings(
        identity=identity,
        axis=AxisSettings(mail_from=OUR_MAIL),
        queue=QueueSettings(retry_initial_seconds=60, retry_max_seconds=3600, defer_max_age_hours=24),
    )
    deliverer, sender = TwinDeliverer(), TwinSender()
    ctx = PipelineContext(
        store=store,
        spool=Spool(tmp_path / "spool"),
        verifier=verifier,
        packages=PackageSealer(sealer=_NoSealing(), key=key, verifier=verifier, identity=identity),
        key=key,
        deliverer=deliverer,
        sender=sender,
        directory=directory,
        settings=settings,
        clock=clock,
    )
    try:
        yield World(ctx, store, ctx.spool, clock, deliverer, sender, key)
    finally:
        await examiner.aclose()
        await store.close()


@pytest.fixture(scope="module")
def good(signed_pdfs: SignedPdfs) -> bytes:
    """A lawful package addressed to us."""
    return build(document(("cong-van.pdf", signed_pdfs.main), ("phu-luc.pdf", signed_pdfs.signed_appendix)))


def attached_status(world: World, notice: MessageView) -> tuple[StatusPackage, bytes]:
    """The status package a notice carries, its envelope signature checked to be ours."""
    mail = world_mail(world, notice)
    package = find_package(mail).package
    assert package is not None
    parsed = parse(package).package
    assert isinstance(parsed, StatusPackage)
    envelope = verify_envelope(parse_untrusted(package))
    assert envelope.valid, envelope.reason
    assert envelope.signer == world.key.certificate
    return parsed, mail


def finding_of(item: MessageView | None, code: str) -> Mapping[str, Any]:
    assert item is not None
    assert item.findings is not None
    return next(f for f in item.findings if f["code"] == code)


def world_mail(world: World, notice: MessageView) -> bytes:
    return world.spool.path(notice.sha256).read_bytes()


# --------------------------------------------------------------------------- accepted


def test_accepted_document_is_delivered_unchanged_with_headers_and_answered_01(
    tmp_path: Path, dev_pki: DevPKI, good: bytes
) -> None:
    mail = carrying(good)

    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item = await w.receive(mail)
            waiting = asyncio.create_task(w.ctx.waiter.wait(item.id, 30.0))
            done = await w.process()
            outcome = await waiting
            assert outcome is not None
            assert (outcome.verdict, outcome.refused) == (Verdict.ACCEPTED, False)

            assert done.state == "delivered"
            assert (done.verdict, done.document_id, done.from_organ, done.package_kind) == (
                "accepted",
                DOCUMENT_ID,
                SENDER,
                "edoc",
            )
            assert done.to_organs == (OURS,)
            assert done.report is not None
            assert done.report["verdict"] == "accepted"
            assert done.policy_sha256 == w.ctx.verifier.policy.sha256
            assert done.received_at == item.received_at  # the legal receive time is the intake's

            [delivered] = w.deliverer.delivered
            key = f"{item.id}-{item.sha256[:16]}"
            assert delivered.key == key
            assert delivered.mail.endswith(mail)  # the original bytes, untouched
            head = delivered.mail[: -len(mail)].decode("ascii")
            assert head == (
                "X-Gateway-Verdict: accepted\r\n"
                f"X-Gateway-Report: {item.id}; policy={done.policy_sha256[:16] if done.policy_sha256 else ''}\r\n"
                f"X-Gateway-Id: {key}\r\n"
            )

            [notice] = await w.notices(item.id)
            assert (notice.kind, notice.state, notice.recipient, notice.rcpt_to) == (
                "notice",
                "incoming",
                SENDER_MAIL,
                (SENDER_MAIL,),
            )
            status, notice_mail = attached_status(w, notice)
            assert status.status_code == "01"
            assert status.response_for.document_id == DOCUMENT_ID
            assert status.from_.organ_id == OURS
            assert item.received_at is not None
            assert status.timestamp == item.received_at.replace(microsecond=0)  # arrived when received
            assert b"Auto-Submitted: auto-replied" in notice_mail
            assert w.sender.sent == []  # notices are sent by process_notice, not here

    asyncio.run(go())


def test_delivery_retried_after_a_transient_dms_failure_without_judging_again(
    tmp_path: Path, dev_pki: DevPKI, good: bytes
) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            w.deliverer.failures.append(TransientError("LMTP 451"))
            item = await w.receive(carrying(good))
            first = await w.process()
            assert (first.state, first.verdict) == ("deferred", "accepted")
            assert first.last_error is not None
            assert "DMS unreachable" in first.last_error
            assert first.next_attempt_at is not None
            assert timedelta(seconds=54) <= first.next_attempt_at - w.clock.now() <= timedelta(seconds=66)
            # A policy that would now refuse: the recorded verdict stands, nobody judges again.
            strict = dev_policy_with(w, "envelope-signature-absent", Action.REJECT)
            w.ctx.verifier.replace_policy(strict)
            w.clock.advance(timedelta(minutes=2))
            second = await w.process()
            assert (second.state, second.verdict, second.attempts) == ("delivered", "accepted", 2)
            assert len(w.deliverer.delivered) == 1
            assert len(await w.notices(item.id)) == 1  # one 01, not one per attempt
            verdicts = [e for e in await w.store.history(item.id) if e.event == "verdict"]
            assert len(verdicts) == 1

    asyncio.run(go())


def dev_policy_with(w: World, code: str, action: Action) -> Policy:
    policy = w.ctx.verifier.policy
    return replace(policy, actions={**policy.actions, code: action})


def test_a_permanent_dms_refusal_is_held(tmp_path: Path, dev_pki: DevPKI, good: bytes) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            w.deliverer.failures.append(PermanentError("550 mailbox unavailable"))
            await w.receive(carrying(good))
            done = await w.process()
            assert done.state == "hold"
            assert done.last_error is not None
            assert "the DMS refused" in done.last_error

    asyncio.run(go())


def test_a_crash_after_the_verdict_replays_without_a_second_notice(
    tmp_path: Path, dev_pki: DevPKI, good: bytes
) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            w.deliverer.failures.append(asyncio.CancelledError())  # the process dies mid-delivery
            item = await w.receive(carrying(good))
            [claimed] = await w.store.claim(["inbound"], w.clock.now())
            with pytest.raises(asyncio.CancelledError):
                await process_inbound(claimed, w.ctx)
            left = await w.store.get(item.id)
            assert left is not None
            assert (left.state, left.verdict) == ("active", "accepted")
            assert await w.store.recover_active() == 1  # the next start
            done = await w.process()
            assert done.state == "delivered"
            assert len(w.deliverer.delivered) == 1
            assert len(await w.notices(item.id)) == 1

    asyncio.run(go())


# --------------------------------------------------------------------------- status packages


def test_a_status_about_our_document_joins_its_trail_and_goes_to_the_dms(
    tmp_path: Path, dev_pki: DevPKI, good: bytes
) -> None:
    ours = replace(
        document(),
        header=replace(
            document().header,
            from_=Organization(OURS),
            to=(Organization(SENDER),),
            document_id=f"{OURS},2026/11/20,45/UBND-VP",
        ),
    )
    ours = replace(ours, header=replace(ours.header, code=DocumentCode("45", "UBND-VP")))
    about = ours.header.document_id
    assert about is not None

    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            sealed = await w.spool.put(good)  # stands in for our sealed submission's bytes
            submission = await w.store.record_intake(
                Intake(kind="submission", channel="submission", sha256=sealed, size=len(good), document_id=about)
            )
            reported = w.clock.now() - timedelta(minutes=5)
            status = make_status(ours, "03", sender=Organization(SENDER), at=reported, description="Đã tiếp nhận")
            raw = sign_envelope(build(status), w.key)  # signed by a certificate of the dev PKI
            # The first delivery fails: the retry must not add the status event twice.
            w.deliverer.failures.append(TransientError("DMS down"))
            item = await w.receive(carrying(raw))
            first = await w.process()
            assert (first.state, first.package_kind, first.status_code) == ("deferred", "status", "03")
            w.clock.advance(timedelta(minutes=2))
            done = await w.process()
            assert done.state == "delivered"
            [event] = await w.store.status_events(submission.id)
            assert (event.status_code, event.inbound_id, event.from_organ) == ("03", item.id, SENDER)
            assert event.reported_at == reported.replace(microsecond=0)
            assert event.description == "Đã tiếp nhận"
            assert len(w.deliverer.delivered) == 1
            assert await w.notices(item.id) == []  # no 01 in reply to a status

    asyncio.run(go())


# --------------------------------------------------------------------------- refused


def test_refused_document_gets_a_signed_02_with_the_reasons_via_the_directory(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    raw = build(document(("cong-van.pdf", signed_pdfs.main), to="000.00.32.H53"))

    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item = await w.receive(carrying(raw))
            waiting = asyncio.create_task(w.ctx.waiter.wait(item.id, 30.0))
            done = await w.process()
            outcome = await waiting
            assert done.state == "refused"
            assert w.deliverer.delivered == []
            assert outcome is not None
            assert outcome.code == "misaddressed"
            assert outcome.refused
            assert outcome.reason == finding_of(await w.store.get(item.id), "misaddressed")["message_en"]

            [notice] = await w.notices(item.id)
            assert notice.recipient == SENDER_MAIL  # from the directory, not the envelope sender
            status, mail = attached_status(w, notice)
            assert status.status_code == "02"
            assert status.response_for.document_id == DOCUMENT_ID
            finding = next(f for f in (done.findings or ()) if f["code"] == "misaddressed")
            description = status.description or ""
            assert "[misaddressed]" in description
            assert finding["message_vi"] in description
            assert finding["message_en"] in description
            assert email.message_from_bytes(mail, policy=email.policy.default)["Subject"].startswith(
                "Từ chối tiếp nhận / Refused"
            )

    asyncio.run(go())


def test_refused_without_a_directory_entry_goes_to_the_envelope_sender(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    raw = build(document(("cong-van.pdf", signed_pdfs.tampered)))

    async def go() -> None:
        async with world(tmp_path, dev_pki, directory=Directory()) as w:
            item = await w.receive(carrying(raw))
            done = await w.process()
            assert done.state == "refused"
            assert done.findings is not None
            assert "pdf-modified-after-signing" in {f["code"] for f in done.findings if f["action"] == "reject"}
            [notice] = await w.notices(item.id)
            assert notice.recipient == ENVELOPE_FROM
            status, _ = attached_status(w, notice)
            assert status.status_code == "02"
            assert "[pdf-modified-after-signing]" in (status.description or "")

    asyncio.run(go())


def test_a_mail_without_a_package_is_refused_with_a_plain_notice(tmp_path: Path, dev_pki: DevPKI) -> None:
    plain = b"From: someone@example.vn\r\nTo: vanthu@tayninh.gov.vn\r\nSubject: hello\r\n\r\nno package here\r\n"

    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item = await w.receive(plain)
            done = await w.process()
            assert (done.state, done.verdict) == ("refused", "refused")
            assert done.findings is not None
            assert [f["code"] for f in done.findings] == ["mail-no-package"]
            [notice] = await w.notices(item.id)
            assert notice.recipient == ENVELOPE_FROM
            mail = world_mail(w, notice)
            assert find_package(mail).package is None  # text only: no document to answer
            body = email.message_from_bytes(mail, policy=email.policy.default).get_body()
            assert body is not None
            assert "mail-no-package" in body.get_content()
            assert b"Auto-Submitted: auto-replied" in mail
            # Never to a null sender, never to automatic mail: no loops between gateways.
            bounce = await w.receive(plain + b" ", mail_from="")
            assert (await w.process()).state == "refused"
            auto = await w.receive(b"Auto-Submitted: auto-replied\r\n" + plain)
            assert (await w.process()).state == "refused"
            assert await w.notices(bounce.id) == []
            assert await w.notices(auto.id) == []

    asyncio.run(go())


# --------------------------------------------------------------------------- deferred


def test_deferred_is_retried_with_backoff_then_held_after_the_max_age(
    tmp_path: Path, dev_pki: DevPKI, good: bytes
) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            w.ctx.verifier.replace_policy(dev_policy_with(w, "envelope-signature-absent", Action.DEFER))
            item = await w.receive(carrying(good))
            first = await w.process()
            assert (first.state, first.verdict) == ("deferred", "deferred")
            assert first.next_attempt_at is not None
            assert timedelta(seconds=54) <= first.next_attempt_at - w.clock.now() <= timedelta(seconds=66)
            assert first.last_error is not None
            assert "envelope-signature-absent" in first.last_error
            assert await w.store.claim(["inbound"], w.clock.now()) == []  # not due yet
            w.clock.advance(timedelta(minutes=2))
            second = await w.process()
            assert second.state == "deferred"
            assert second.next_attempt_at is not None
            assert timedelta(seconds=108) <= second.next_attempt_at - w.clock.now() <= timedelta(seconds=132)
            w.clock.advance(timedelta(hours=24))
            held = await w.process()
            assert held.state == "hold"  # never accepted blind
            assert held.last_error is not None
            assert "defer_max_age" in held.last_error
            assert w.deliverer.delivered == []
            assert await w.notices(item.id) == []

    asyncio.run(go())


def test_deferred_is_decided_as_soon_as_the_answer_comes(tmp_path: Path, dev_pki: DevPKI, good: bytes) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            normal = w.ctx.verifier.policy
            w.ctx.verifier.replace_policy(dev_policy_with(w, "envelope-signature-absent", Action.DEFER))
            item = await w.receive(carrying(good))
            assert (await w.process()).state == "deferred"
            w.ctx.verifier.replace_policy(normal)  # the responder is back
            w.clock.advance(timedelta(minutes=2))
            done = await w.process()
            assert (done.state, done.verdict) == ("delivered", "accepted")
            assert len(await w.notices(item.id)) == 1

    asyncio.run(go())


# --------------------------------------------------------------------------- the unexpected


def test_an_unexpected_exception_holds_the_item(tmp_path: Path, dev_pki: DevPKI, good: bytes) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            w.deliverer.failures.append(RuntimeError("a bug"))
            await w.receive(carrying(good))
            done = await w.process()
            assert (done.state, done.last_error) == ("hold", "unexpected: RuntimeError")

    asyncio.run(go())
