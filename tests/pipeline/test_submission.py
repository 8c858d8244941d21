"""process_submission on the real store and spool, with the real PackageSealer and the dev PKI.

Drafts carry a PDF the authorised person signed; the gateway seals it with the development
organisation key, time-stamps it at the dev PKI's TSA (reached through ``TsaSwitch``, which an
outage drill turns off), checks its own work with the real verifier, and queues one send per
recipient. Sends go to ``tests.smtpsink`` through the real ``SmtpSender``. Where the sealing
itself is not the point, ``TwinPackages`` hands back a package sealed once for the module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import pytest

from gateway.clock import SystemClock
from gateway.devpki import DevPKI
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
)
from gateway.errors import GatewayError
from gateway.pipeline.mails import compose, find_package
from gateway.pipeline.scheduler import Scheduler
from gateway.settings import IdentitySettings
from gateway.sign.package import PackageSealer
from gateway.sign.pdfseal import Sealer
from gateway.sign.tsa import TsaClient, TsaUnavailable
from gateway.verify.package import Verifier, verify_package
from gateway.verify.pdf import Examiner
from gateway.verify.report import Verdict
from tests.pdfs import SignedPdfs, phu_luc
from tests.pipeline.test_send import DMS_MAIL, DMS_NOTIFY, HANDLERS, OURS, PEER, Outbound, outbound, relay
from tests.sign.conftest import ORGANISATION, key_for, policy_for, sign_settings, trust_store
from tests.smtpsink import SmtpSink

RECIPIENT = "000.00.32.H53"
PEER_2 = "vanthu@bencau.gov.vn"
DOCUMENT_ID = f"{OURS},2026/11/21,123/UBND-VP"


def draft_package(main: bytes, *, appendix_description: str = "Phụ lục kèm theo") -> bytes:
    header = MessageHeader(
        from_=Organization(OURS, organ_name=ORGANISATION),
        to=(Organization(RECIPIENT, organ_name="UBND huyện Châu Thành"),),
        code=DocumentCode("123", "UBND-VP"),
        promulgation=PromulgationInfo("Tây Ninh", date(2026, 11, 21)),
        document_type=DocumentType(2, 18, "Công văn"),
        subject="V/v triển khai ký số văn bản",
        signer=SignerInfo("KT. CHỦ TỊCH", "Phó Chủ tịch", "Nguyễn Văn Test"),
    )
    attachments = (
        attachment_from_file("cong-van.pdf", main, description="Văn bản chính"),
        attachment_from_file("phu-luc.pdf", phu_luc(), description=appendix_description),
    )
    return build(DocumentPackage(header=header, attachments=attachments))


def draft_mail(package: bytes) -> bytes:
    """What the DMS submits: the draft attached."""
    return compose(
        package,
        filename="du-thao-123.edxml",
        mail_from=DMS_MAIL,
        to=[PEER],
        subject="Dự thảo 123/UBND-VP",
        text="Đề nghị ký số và gửi.\n",
        at=SystemClock().now(),
    )


@pytest.fixture(scope="module")
def draft(signed_pdfs: SignedPdfs) -> bytes:
    return draft_package(signed_pdfs.person_only)


class TsaSwitch:
    """A TCP relay in front of the dev PKI's TSA; while it is off, every connection is cut at once."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._parts = parts
        self.up = False
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.url = ""

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if not self.up:
                self.refused += 1
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
            await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
        finally:
            writer.close()
            self._tasks.discard(task)

    async def __aenter__(self) -> TsaSwitch:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = urlunsplit(self._parts._replace(netloc=f"127.0.0.1:{port}"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@asynccontextmanager
async def package_sealer(pki: DevPKI, tsa_url: str) -> AsyncIterator[PackageSealer]:
    """The real PackageSealer for the dev organisation key, its TSA at ``tsa_url`` (one attempt, no backoff)."""
    clock = SystemClock()
    trust = trust_store(pki)
    examiner = Examiner(trust, clock)
    judged = policy_for(pki)
    tsa = TsaClient(tsa_url, timeout=5, attempts=1, concurrency=2, backoff=0)
    sealer = Sealer(key_for(pki), sign_settings(pki), examiner, judged, clock, trust=trust, tsa=tsa)
    identity = IdentitySettings(organ_ids=(OURS,), organ_name=ORGANISATION)
    try:
        yield PackageSealer(
            sealer=sealer, key=key_for(pki), verifier=Verifier(examiner, judged, identity=identity), identity=identity
        )
    finally:
        await tsa.aclose()
        await sealer.aclose()
        await examiner.aclose()


@pytest.fixture(scope="module")
def sealed(dev_pki: DevPKI, draft: bytes) -> bytes:
    """The draft sealed once, for the tests where sealing is not the point."""

    async def go() -> bytes:
        async with package_sealer(dev_pki, dev_pki.urls.tsa) as packages:
            return await packages.seal_package(draft)

    return asyncio.run(go())


@dataclass
class TwinPackages:
    """A PackageSealer that hands back ``sealed`` (or raises the queued failures first)."""

    sealed: bytes
    failures: list[GatewayError] = field(default_factory=list)
    calls: int = 0

    async def seal_package(self, draft: bytes) -> bytes:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.sealed


def twin(sealed: bytes, *failures: GatewayError) -> PackageSealer:
    return cast(PackageSealer, TwinPackages(sealed, list(failures)))


def recipient_accepts(pki: DevPKI, package: bytes) -> None:
    """The recipient's own verdict on what we sent (its identity, the dev PKI's trust)."""

    async def go() -> None:
        examiner = Examiner(trust_store(pki), SystemClock())
        verifier = Verifier(examiner, policy_for(pki), identity=IdentitySettings(organ_ids=(RECIPIENT,)))
        try:
            report = await verify_package(package, verifier)
            assert report.verdict is Verdict.ACCEPTED, report.findings
        finally:
            await examiner.aclose()

    asyncio.run(go())


def run(factory: Callable[[], Any]) -> Any:
    return asyncio.run(factory())


# --------------------------------------------------------------------------- sealed


def test_a_draft_is_sealed_and_each_recipient_gets_it_once(tmp_path: Path, dev_pki: DevPKI, draft: bytes) -> None:
    async def go() -> list[bytes]:
        async with (
            SmtpSink() as sink,
            package_sealer(dev_pki, dev_pki.urls.tsa) as packages,
            outbound(tmp_path, sender=relay(sink), packages=packages) as world,
        ):
            submission = await world.submit(draft_mail(draft), [PEER, PEER_2, PEER])
            done = await world.run("submission")
            assert done.state == "sealed"
            assert (done.document_id, done.code, done.from_organ, done.to_organs, done.package_kind) == (
                DOCUMENT_ID,
                "123/UBND-VP",
                OURS,
                (RECIPIENT,),
                "edoc",
            )
            sends = sorted(await world.store.list(kind="send", parent_id=submission.id), key=lambda s: s.id)
            assert [(s.recipient, s.document_id, s.state, s.rcpt_to) for s in sends] == [
                (PEER, DOCUMENT_ID, "incoming", (PEER,)),
                (PEER_2, DOCUMENT_ID, "incoming", (PEER_2,)),
            ]
            # The sealed package is spooled by its hash, named in the journal as evidence.
            reason = (await world.store.history(done.id))[-1].data["reason"]
            assert reason.startswith("sealed (package sha256 ")
            sealed_sha256 = reason.split()[3].rstrip(");")
            sealed_package = await world.spool.get(sealed_sha256)
            assert sealed_package != draft

            for _ in sends:
                assert (await world.run("send")).state == "sent"
            assert sorted(m.rcpt_to for m in sink.messages) == [(PEER_2,), (PEER,)]
            for message in sink.messages:
                assert message.mail_from == "vanthu@tayninh.gov.vn"
                parsed = message_from_bytes(message.data, policy=policy.default)
                assert str(parsed["Subject"]) == "V/v triển khai ký số văn bản"
                assert find_package(message.data).package == sealed_package
            return [sealed_package]

    [sealed_package] = run(go)
    recipient_accepts(dev_pki, sealed_package)


def test_tsa_down_defers_sends_nothing_then_seals_and_sends_when_it_returns(
    tmp_path: Path, dev_pki: DevPKI, draft: bytes
) -> None:
    """Outage drill: the TSA is down during outbound — retried with backoff, nothing sent unsealed."""

    async def go() -> bytes:
        async with (
            TsaSwitch(dev_pki.urls.tsa) as tsa,
            SmtpSink() as sink,
            package_sealer(dev_pki, tsa.url) as packages,
            outbound(tmp_path, sender=relay(sink), packages=packages) as world,
        ):
            submission = await world.submit(draft_mail(draft), [PEER])
            deferred = await world.run("submission")
            assert deferred.state == "deferred"
            assert deferred.last_error is not None
            assert deferred.last_error.startswith("cannot seal now:")
            assert "TSA" in deferred.last_error or "time-stamp" in deferred.last_error
            assert tsa.refused >= 1
            assert await world.store.list(kind="send") == []
            assert await world.notices(submission.id) == []  # a deferral is not a failure
            assert sink.messages == []

            assert deferred.next_attempt_at is not None
            world.clock.at = deferred.next_attempt_at
            tsa.up = True
            sealed_now = await world.run("submission")
            assert sealed_now.state == "sealed"
            sent = await world.run("send")
            assert sent.state == "sent"
            [captured] = sink.messages
            package = find_package(captured.data).package
            assert package is not None
            assert package != draft
            return package

    recipient_accepts(dev_pki, run(go))


def test_the_421_drill_through_the_scheduler(tmp_path: Path, sealed: bytes) -> None:
    """The handlers plugged into the scheduler: draft → sealed → 421 → deferred → 250, sent once."""

    async def until(world: Outbound, kind: str, state: str) -> None:
        # The scheduler's progress is only visible in the store: look every 20 ms, for 10 s at most.
        for _ in range(500):
            if [i.state for i in await world.store.list(kind=kind)] == [state]:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {kind} became {state}")

    async def go() -> SmtpSink:
        async with (
            SmtpSink(data=["421 4.3.2 Service not available"]) as sink,
            outbound(tmp_path, sender=relay(sink), packages=twin(sealed)) as world,
        ):
            wake = asyncio.Event()
            scheduler = Scheduler(world.ctx, HANDLERS, workers=2, wake=wake, poll_seconds=0.05)
            running = asyncio.create_task(scheduler.run())
            try:
                await world.submit(draft_mail(b"<edXML>draft</edXML>"), [PEER])
                wake.set()
                await until(world, "submission", "sealed")
                await until(world, "send", "deferred")
                world.clock.advance(timedelta(minutes=2))
                wake.set()
                await until(world, "send", "sent")
            finally:
                await scheduler.stop(grace=5)
                await running
            return sink

    sink = run(go)
    assert sink.data_commands == 2
    assert len(sink.messages) == 1


# --------------------------------------------------------------------------- failed


def test_a_mail_without_a_package_fails_and_the_dms_is_told(tmp_path: Path) -> None:
    async def go() -> None:
        async with outbound(tmp_path) as world:  # the sealer is never reached
            mail = b"From: dms@tayninh.gov.vn\r\nSubject: no package\r\n\r\nJust text.\r\n"
            await world.submit(mail, [PEER])
            failed = await world.run("submission")
            assert failed.state == "failed"
            assert failed.last_error is not None
            assert failed.last_error.startswith("[mail-no-package]")
            [notice] = await world.notices(failed.id)
            assert notice.recipient == DMS_NOTIFY
            text = message_from_bytes(world.mail(notice), policy=policy.default).get_content()
            assert "không được ký số và gửi đi" in text
            assert "was not sealed and not sent" in text
            assert "mail-no-package" in text

    run(go)


def test_a_draft_the_sealer_refuses_fails_with_its_reason(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    refused = draft_package(signed_pdfs.person_only, appendix_description="[copy: BẢN CHỤP] Phụ lục")

    async def go() -> None:
        async with (
            package_sealer(dev_pki, dev_pki.urls.tsa) as packages,
            outbound(tmp_path, packages=packages) as world,
        ):
            await world.submit(draft_mail(refused), [PEER])
            failed = await world.run("submission")
            assert failed.state == "failed"
            assert failed.last_error is not None
            assert "not sealed:" in failed.last_error
            assert "unknown copy type 'BẢN CHỤP'" in failed.last_error
            assert await world.store.list(kind="send") == []
            [notice] = await world.notices(failed.id)
            assert "BẢN CHỤP" in message_from_bytes(world.mail(notice), policy=policy.default).get_content()

    run(go)


def test_tsa_down_until_the_give_up_age_fails_with_a_notice(tmp_path: Path, sealed: bytes) -> None:
    down = [TsaUnavailable("http://tsa.test/", 3, "connection refused") for _ in range(50)]

    async def go() -> None:
        async with outbound(tmp_path, packages=twin(sealed, *down), give_up_hours=1) as world:
            submission = await world.submit(draft_mail(b"<edXML>draft</edXML>"), [PEER])
            item = await world.run("submission")
            while item.state == "deferred":
                assert item.next_attempt_at is not None
                world.clock.at = item.next_attempt_at
                item = await world.run("submission")
            assert item.state == "failed"
            assert submission.received_at is not None
            assert world.clock.now() == submission.received_at + timedelta(hours=1)
            assert item.last_error is not None
            assert item.last_error.startswith("given up after 1 h: cannot seal now:")
            assert await world.store.list(kind="send") == []
            [notice] = await world.notices(item.id)
            assert notice.recipient == DMS_NOTIFY

    run(go)


def test_the_same_document_is_never_sent_twice_to_a_recipient(tmp_path: Path, sealed: bytes) -> None:
    async def go() -> None:
        async with outbound(tmp_path, packages=twin(sealed)) as world:
            mail = draft_mail(b"<edXML>draft</edXML>")
            first = await world.submit(mail, [PEER, PEER_2])
            assert (await world.run("submission")).state == "sealed"
            assert await world.notices(first.id) == []

            again = await world.submit(mail, [PEER_2, "vanthu@hoathanh.gov.vn"])
            partly = await world.run("submission")
            assert partly.state == "sealed"
            assert [s.recipient for s in await world.store.list(kind="send", parent_id=again.id)] == [
                "vanthu@hoathanh.gov.vn"
            ]
            [told] = await world.notices(again.id)
            assert PEER_2 in message_from_bytes(world.mail(told), policy=policy.default).get_content()

            third = await world.submit(mail, [PEER])
            failed = await world.run("submission")
            assert (failed.id, failed.state) == (third.id, "failed")
            assert failed.last_error is not None
            assert "not sent again" in failed.last_error
            assert len(await world.notices(third.id)) == 1
            assert len(await world.store.list(kind="send")) == 3

    run(go)


def test_a_submission_without_recipients_fails(tmp_path: Path, sealed: bytes) -> None:
    packages = TwinPackages(sealed)

    async def go() -> None:
        async with outbound(tmp_path, packages=cast(PackageSealer, packages)) as world:
            await world.submit(draft_mail(b"<edXML>draft</edXML>"), [])
            failed = await world.run("submission")
            assert (failed.state, failed.last_error) == ("failed", "the submission names no recipient")
            assert packages.calls == 0  # nothing sealed for nobody

    run(go)
