"""process_send and process_notice on the real store (SQLite in a temp dir) and spool.

The relay is the real ``SmtpSender`` talking to ``tests.smtpsink`` over loopback wherever a
reply code matters (421, 550, connection refused), and the in-memory twin elsewhere. Each test
walks one row of the retry table in gateway/pipeline/send.py. ``Outbound`` and its helpers are
shared with the submission tests.
"""

from __future__ import annotations

import asyncio
import email.policy
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.clock import FixedClock, SystemClock
from gateway.errors import GatewayError, TransientError
from gateway.outbound.send import SmtpSender
from gateway.pipeline import send as send_module
from gateway.pipeline.context import PipelineContext
from gateway.pipeline.mails import compose
from gateway.pipeline.notices import create_notice
from gateway.pipeline.ports import Sender, SpooledMail
from gateway.pipeline.send import process_notice, process_send
from gateway.pipeline.submission import process_submission
from gateway.settings import AxisSettings, DmsSettings, IdentitySettings, QueueSettings, Settings
from gateway.sign.keys import OrganisationKey
from gateway.sign.package import PackageSealer
from gateway.store import Intake, MessageView, Spool, Store
from gateway.verify.directory import Directory
from gateway.verify.package import Verifier
from tests.pipeline.twins import TwinDeliverer, TwinSender
from tests.smtpsink import SmtpSink, free_port

OURS = "000.00.01.H53"
OUR_MAIL = "vanthu@tayninh.gov.vn"
DMS_MAIL = "dms@tayninh.gov.vn"
DMS_NOTIFY = "vanthu-dms@tayninh.gov.vn"
PEER = "vanthu@chauthanh.gov.vn"
DOCUMENT_ID = f"{OURS},2026/11/21,123/UBND-VP"

HANDLERS = {"submission": process_submission, "send": process_send, "notice": process_notice}


class Unused:
    """A part of the context the sending half must not touch (its use fails the test)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"the sending half used {self._name}.{attribute}")


@dataclass
class Outbound:
    """The sending half on a temp directory: real store and spool, a fixed clock."""

    ctx: PipelineContext
    store: Store
    spool: Spool
    clock: FixedClock

    async def submit(self, mail: bytes, rcpt_to: Sequence[str], *, mail_from: str = DMS_MAIL) -> MessageView:
        """What the submission edge does: spool, then record (``incoming``)."""
        sha256 = await self.spool.put(mail)
        intake = Intake(
            kind="submission",
            channel="submission",
            sha256=sha256,
            size=len(mail),
            mail_from=mail_from,
            rcpt_to=tuple(rcpt_to),
        )
        return await self.store.record_intake(intake)

    async def queue_send(self, recipient: str = PEER, *, document_id: str = DOCUMENT_ID) -> MessageView:
        """A sealed submission with one send to ``recipient`` (the mail carries a stand-in package)."""
        submission = await self.submit(b"Subject: draft\r\n\r\n(draft)\r\n", [recipient])
        [claimed] = await self.store.claim(["submission"], self.clock.now())
        assert claimed.id == submission.id
        mail = compose(
            b"<edXML/>",
            filename="cong-van.edxml",
            mail_from=OUR_MAIL,
            to=[recipient],
            subject="Công văn 123/UBND-VP",
            text="Văn bản kèm theo.\n",
            at=self.clock.now(),
            domain="tayninh.gov.vn",
        )
        sha256 = await self.spool.put(mail)
        child = Intake(
            kind="send",
            channel="internal",
            sha256=sha256,
            size=len(mail),
            mail_from=OUR_MAIL,
            rcpt_to=(recipient,),
            recipient=recipient,
            document_id=document_id,
        )
        await self.store.transition(submission.id, "sealed", reason="sealed (test)", children=[child])
        [send] = await self.store.list(kind="send", parent_id=submission.id)
        return send

    async def run(self, kind: str) -> MessageView:
        """Claim the next due item of ``kind``, run its handler, read it back."""
        claimed = await self.store.claim([kind], self.clock.now(), limit=1)
        assert len(claimed) == 1, f"no {kind} due at {self.clock.now()}"
        await HANDLERS[kind](claimed[0], self.ctx)
        return await self.get(claimed[0].id)

    async def get(self, id: int) -> MessageView:
        item = await self.store.get(id)
        assert item is not None
        return item

    async def notices(self, parent: int) -> list[MessageView]:
        return list(reversed(await self.store.list(kind="notice", parent_id=parent)))

    def mail(self, item: MessageView) -> bytes:
        return self.spool.path(item.sha256).read_bytes()


@asynccontextmanager
async def outbound(
    tmp_path: Path,
    *,
    sender: Sender | None = None,
    packages: PackageSealer | None = None,
    key: OrganisationKey | None = None,
    give_up_hours: float = 48.0,
    notify: str | None = DMS_NOTIFY,
) -> AsyncIterator[Outbound]:
    """Open the sending half; the store is closed on exit."""
    clock = FixedClock(SystemClock().now())
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", clock=clock)
    settings = Settings(
        identity=IdentitySettings(organ_ids=(OURS,), organ_name="UBND tỉnh Tây Ninh"),
        axis=AxisSettings(mail_from=OUR_MAIL),
        dms=DmsSettings(notify=notify),
        queue=QueueSettings(retry_initial_seconds=60, retry_max_seconds=3600, give_up_hours=give_up_hours),
    )
    ctx = PipelineContext(
        store=store,
        spool=Spool(tmp_path / "spool"),
        verifier=cast(Verifier, Unused("verifier")),
        packages=packages or cast(PackageSealer, Unused("packages")),
        key=key or cast(OrganisationKey, Unused("key")),
        deliverer=TwinDeliverer(),
        sender=sender or TwinSender(),
        directory=Directory({}),
        settings=settings,
        clock=clock,
    )
    try:
        yield Outbound(ctx, store, ctx.spool, clock)
    finally:
        await store.close()


def run(factory: Callable[[], Any]) -> None:
    asyncio.run(factory())


def relay(sink: SmtpSink) -> SmtpSender:
    return SmtpSender(sink.host, sink.port, timeout=5, starttls=False, local_hostname="gateway.test")


# --------------------------------------------------------------------------- 2xx


def test_sent_records_the_system_send_time_and_the_reply(tmp_path: Path) -> None:
    twin = TwinSender()

    async def go() -> None:
        async with outbound(tmp_path, sender=twin) as world:
            queued = await world.queue_send()
            world.clock.advance(timedelta(seconds=5))
            done = await world.run("send")
            assert done.state == "sent"
            assert done.sent_at == world.clock.now()  # taken when the 2xx came, not when queued
            assert done.last_error is None
            [sent] = twin.sent
            assert (sent.mail, sent.mail_from, sent.rcpt_to) == (world.mail(queued), OUR_MAIL, (PEER,))
            event = (await world.store.history(done.id))[-1]
            assert (event.event, event.data["to"]) == ("sent", "sent")
            assert event.data["reason"] == "accepted by the relay: 250 2.0.0 Ok: queued as twin1"
            assert await world.store.claim(["send"], world.clock.now() + timedelta(days=30)) == []

    run(go)


# --------------------------------------------------------------------------- 4xx, network


def test_421_then_250_is_retried_and_sent_once(tmp_path: Path) -> None:
    """Outage drill: the axis answers 421, then 250 — retried with backoff, sent exactly once."""

    async def go() -> None:
        async with (
            SmtpSink(data=["421 4.3.2 Service not available"]) as sink,
            outbound(tmp_path, sender=relay(sink)) as world,
        ):
            queued = await world.queue_send()
            first = await world.run("send")
            assert first.state == "deferred"
            assert first.last_error is not None
            assert "421 4.3.2" in first.last_error
            assert first.next_attempt_at is not None
            wait = first.next_attempt_at - world.clock.now()
            assert timedelta(seconds=54) <= wait <= timedelta(seconds=66)  # retry_initial_seconds +-10 %
            assert sink.messages == []
            assert await world.store.claim(["send"], world.clock.now()) == []  # not due yet

            world.clock.advance(wait)
            second = await world.run("send")
            assert (second.state, second.attempts, second.sent_at) == ("sent", 2, world.clock.now())
            [captured] = sink.messages
            assert captured.data == world.mail(queued)
            assert (captured.mail_from, captured.rcpt_to) == (OUR_MAIL, (PEER,))
            world.clock.advance(timedelta(days=3))
            assert await world.store.claim(["send"], world.clock.now()) == []
            assert sink.data_commands == 2
            assert len(sink.messages) == 1

    run(go)


def test_connection_refused_is_deferred_with_backoff_until_the_give_up_age(tmp_path: Path) -> None:
    async def go() -> None:
        down = SmtpSender("127.0.0.1", free_port(), timeout=2, starttls=False)
        async with outbound(tmp_path, sender=down, give_up_hours=2) as world:
            queued = await world.queue_send()
            submission = await world.get(queued.parent_id or 0)
            assert submission.received_at is not None
            deadline = submission.received_at + timedelta(hours=2)
            waits = []
            item = await world.run("send")
            while item.state == "deferred":
                assert item.next_attempt_at is not None
                assert item.next_attempt_at <= deadline  # never scheduled past the give-up time
                assert item.last_error is not None
                assert "relay unavailable" in item.last_error
                waits.append(item.next_attempt_at - world.clock.now())
                world.clock.at = item.next_attempt_at
                item = await world.run("send")
            assert item.state == "failed"
            assert world.clock.now() == deadline  # the last attempt was made at the give-up time
            assert item.last_error is not None
            assert item.last_error.startswith("given up after 2 h: relay unavailable")
            # Exponential: 1, 2, 4, 8, 16, 32 minutes (+-10 %), then clamped to the deadline.
            minutes = [round(w.total_seconds() / 60) for w in waits]
            assert minutes[:5] == pytest.approx([1, 2, 4, 8, 16], rel=0.15)
            [notice] = await world.notices(item.id)
            assert (notice.state, notice.recipient, notice.document_id) == ("incoming", DMS_NOTIFY, DOCUMENT_ID)
            body = message_from_bytes(world.mail(notice)).get_payload(decode=True)
            assert isinstance(body, bytes)
            text = body.decode()
            assert f"không gửi được tới {PEER}" in text
            assert f"could not be sent to {PEER}" in text
            assert "Connection refused" in text or "SMTPConnectError" in text

    run(go)


# --------------------------------------------------------------------------- 5xx


def test_550_fails_at_once_and_the_dms_is_told(tmp_path: Path) -> None:
    async def go() -> None:
        async with (
            SmtpSink(rcpt=["550 5.1.1 <vanthu@chauthanh.gov.vn>: user unknown"]) as sink,
            outbound(tmp_path, sender=relay(sink)) as world,
        ):
            await world.queue_send()
            failed = await world.run("send")
            assert (failed.state, failed.attempts, failed.sent_at) == ("failed", 1, None)
            assert failed.last_error is not None
            assert "550 5.1.1" in failed.last_error
            [notice] = await world.notices(failed.id)
            assert notice.recipient == DMS_NOTIFY
            # The notice itself goes out through the same relay (the sink now says 250).
            done = await world.run("notice")
            assert done.state == "sent"
            [captured] = sink.messages
            assert captured.rcpt_to == (DMS_NOTIFY,)
            message = message_from_bytes(captured.data, policy=email.policy.default)
            assert message["Auto-Submitted"] == "auto-replied"
            assert str(message["Subject"]) == f"Không gửi được văn bản / Not sent: {DOCUMENT_ID}"
            body = message.get_payload(decode=True)
            assert isinstance(body, bytes)
            assert "550 5.1.1" in body.decode()

    run(go)


def test_without_notify_the_submitter_is_told(tmp_path: Path) -> None:
    async def go() -> None:
        async with (
            SmtpSink(data=["554 5.7.1 rejected"]) as sink,
            outbound(tmp_path, sender=relay(sink), notify=None) as world,
        ):
            await world.queue_send()
            failed = await world.run("send")
            [notice] = await world.notices(failed.id)
            assert notice.recipient == DMS_MAIL  # the submission's envelope sender

    run(go)


# --------------------------------------------------------------------------- notices


def test_a_notice_is_sent_with_the_same_rules_and_never_noticed_about(tmp_path: Path) -> None:
    twin = TwinSender(failures=[TransientError("421 busy")])

    async def go() -> None:
        async with outbound(tmp_path, sender=twin, give_up_hours=1) as world:
            send = await world.queue_send()
            notice = await create_notice(
                world.ctx, parent=send, recipient=DMS_NOTIFY, kind="plain", package=None, subject="s", text="t"
            )
            deferred = await world.run("notice")
            assert deferred.state == "deferred"
            world.clock.advance(timedelta(minutes=2))
            sent = await world.run("notice")
            assert (sent.state, sent.sent_at) == ("sent", world.clock.now())
            assert twin.sent[0].rcpt_to == (DMS_NOTIFY,)

            # One that fails for good is failed, and nobody is told about it.
            twin.failures.extend(TransientError("421 busy") for _ in range(20))
            other = await create_notice(
                world.ctx,
                parent=send,
                recipient="other@tayninh.gov.vn",
                kind="plain",
                package=None,
                subject="s",
                text="t",
            )
            item = await world.run("notice")
            while item.state == "deferred":
                assert item.next_attempt_at is not None
                world.clock.at = item.next_attempt_at
                item = await world.run("notice")
            assert (item.id, item.state) == (other.id, "failed")
            assert await world.store.list(kind="notice", parent_id=item.id) == []
            assert notice.id != other.id

    run(go)


# --------------------------------------------------------------------------- never twice


def test_a_committed_send_is_never_sent_again(tmp_path: Path) -> None:
    """A replay of the handler with the same claimed view after ``sent`` was committed sends nothing."""

    async def go() -> None:
        async with SmtpSink() as sink, outbound(tmp_path, sender=relay(sink)) as world:
            await world.queue_send()
            [claimed] = await world.store.claim(["send"], world.clock.now())
            await process_send(claimed, world.ctx)
            await process_send(claimed, world.ctx)  # the replay: a stale view of an item now sent
            assert await world.store.recover_active() == 0
            assert (await world.get(claimed.id)).state == "sent"
            assert len(sink.messages) == 1

    run(go)


class _Crash(BaseException):
    """The process dies here: nothing after it runs (it is not an ``Exception``)."""


@dataclass
class _CrashAfterSending:
    """The relay takes the mail, then the gateway dies before it can commit ``sent``."""

    inner: Sender
    armed: bool = True

    async def send(self, mail: bytes | SpooledMail, *, mail_from: str, rcpt_to: Sequence[str]) -> str:
        reply = await self.inner.send(mail, mail_from=mail_from, rcpt_to=rcpt_to)
        if self.armed:
            self.armed = False
            raise _Crash
        return reply


def test_a_crash_between_the_250_and_the_commit_sends_twice(tmp_path: Path) -> None:
    """The documented at-least-once window: the relay said 250, we died before ``sent`` was committed.

    At the next start the item is recovered and sent again; both copies carry the same
    Message-ID (and the package the same DocumentId), so the receiving side can drop one.
    """

    async def go() -> None:
        async with SmtpSink() as sink, outbound(tmp_path) as world:
            ctx = replace(world.ctx, sender=_CrashAfterSending(relay(sink)))
            await world.queue_send()
            [claimed] = await world.store.claim(["send"], world.clock.now())
            with pytest.raises(_Crash):
                await process_send(claimed, ctx)
            assert (await world.get(claimed.id)).state == "active"
            assert await world.store.recover_active() == 1  # the next start
            world.ctx = ctx
            done = await world.run("send")
            assert done.state == "sent"
            first, second = sink.messages
            assert first.data == second.data == world.mail(done)  # the same bytes, the same Message-ID
            assert message_from_bytes(first.data)["Message-ID"]

    run(go)


class _StoreThatCannotRecordSent:
    """A store whose database goes away exactly when ``sent`` is to be committed."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def transition(self, id: int, to_state: str, **kwargs: Any) -> MessageView:
        if to_state == "sent":
            self.attempts += 1
            raise TransientError("database is locked")
        return await self.inner.transition(id, to_state, **kwargs)


def test_sent_but_not_recorded_is_never_deferred_into_a_second_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(send_module, "_COMMIT_PAUSES", (0.0, 0.0))

    async def go() -> None:
        async with SmtpSink() as sink, outbound(tmp_path) as world:
            flaky = _StoreThatCannotRecordSent(world.store)
            ctx = replace(world.ctx, sender=relay(sink), store=cast(Store, flaky))
            await world.queue_send()
            [claimed] = await world.store.claim(["send"], world.clock.now())
            with pytest.raises(GatewayError, match=r"sent .* but not recorded"):
                await process_send(claimed, ctx)
            assert flaky.attempts == 3  # committed again and again before giving up
            after = await world.get(claimed.id)
            assert after.state == "active"  # not deferred: the scheduler holds it for an admin
            assert len(sink.messages) == 1

    run(go)


def test_a_lost_spool_file_holds_the_send(tmp_path: Path) -> None:
    twin = TwinSender()

    async def go() -> None:
        async with outbound(tmp_path, sender=twin) as world:
            queued = await world.queue_send()
            path = world.spool.path(queued.sha256)
            path.chmod(0o600)
            path.unlink()
            held = await world.run("send")
            assert (held.state, held.last_error) == ("hold", "unexpected: SpoolMissing")
            assert twin.calls == 0

    run(go)
