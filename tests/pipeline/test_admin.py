"""An admin's ``retry`` and ``release`` on the real store and spool, with real verdicts.

The world is ``tests.pipeline.test_receive.world``: the development PKI's live OCSP/CRL/TSA
judge the packages, the DMS is an in-memory twin (exactly once per key, like the Maildir).
A deferral is provoked by a policy that defers on a finding the package always has
(``envelope-signature-absent``), and ended by putting the normal policy back ("the responder is
back").
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.devpki import DevPKI
from gateway.edxml.build import build
from gateway.errors import PermanentError, TransientError
from gateway.pipeline.admin import RELEASED_VERDICT, NotActionable, ReleaseFailed, release, retry
from gateway.pipeline.context import delivery_key
from gateway.store import Intake, MessageView, NotFound
from gateway.verify.policy import Action
from tests.pdfs import SignedPdfs
from tests.pipeline.test_receive import (
    DOCUMENT_ID,
    SENDER_MAIL,
    World,
    attached_status,
    carrying,
    dev_policy_with,
    document,
    world,
)

REASON = "OCSP của VGCA kiểm tra thủ công, hợp lệ (by alice)"


@pytest.fixture(scope="module")
def lawful(signed_pdfs: SignedPdfs) -> bytes:
    """A lawful package addressed to us (accepted when OCSP answers)."""
    return build(document(("cong-van.pdf", signed_pdfs.main)))


def defer_everything(w: World) -> None:
    """OCSP "down": every package is deferred."""
    w.ctx.verifier.replace_policy(dev_policy_with(w, "envelope-signature-absent", Action.DEFER))


async def held_past_max_age(w: World, mail: bytes) -> MessageView:
    """A package deferred, re-verified, and held once ``defer_max_age`` has passed."""
    item = await w.receive(mail)
    assert (await w.process()).state == "deferred"
    w.clock.advance(timedelta(hours=25))
    held = await w.process()
    assert (held.id, held.state, held.verdict) == (item.id, "hold", "deferred")
    return held


async def verdicts(w: World, item_id: int) -> list[str]:
    return [str(e.data["verdict"]) for e in await w.store.history(item_id) if e.event == "verdict"]


# --------------------------------------------------------------------------- retry


def test_retry_of_a_held_deferral_buys_one_judgement_that_decides_when_the_answer_comes(
    tmp_path: Path, dev_pki: DevPKI, lawful: bytes
) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            normal = w.ctx.verifier.policy
            defer_everything(w)
            held = await held_past_max_age(w, carrying(lawful))
            w.ctx.verifier.replace_policy(normal)  # the responder is back
            again = await retry(w.store, held.id, reason=REASON, now=w.clock.now())
            assert (again.state, again.next_attempt_at, again.verdict) == ("incoming", w.clock.now(), "deferred")
            last = (await w.store.history(held.id))[-1]
            assert (last.event, last.data["from"], last.data["to"]) == ("transition", "hold", "incoming")
            assert last.data["reason"] == f"admin retry: {REASON}"
            done = await w.process()
            assert (done.state, done.verdict) == ("delivered", "accepted")
            assert await verdicts(w, held.id) == ["deferred", "deferred", "accepted"]
            [delivered] = w.deliverer.delivered
            assert delivered.mail.startswith(b"X-Gateway-Verdict: accepted\r\n")
            assert len(await w.notices(held.id)) == 1  # its status 01, now

    asyncio.run(go())


def test_retry_when_the_answer_still_does_not_come_holds_again_at_once(
    tmp_path: Path, dev_pki: DevPKI, lawful: bytes
) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            defer_everything(w)
            held = await held_past_max_age(w, carrying(lawful))
            await retry(w.store, held.id, reason=REASON, now=w.clock.now())
            again = await w.process()
            assert again.state == "hold"  # one judgement, no new round of backoff; never accepted blind
            assert again.last_error is not None
            assert "defer_max_age" in again.last_error
            assert await verdicts(w, held.id) == ["deferred", "deferred", "deferred"]
            assert w.deliverer.delivered == []

    asyncio.run(go())


def test_retry_makes_a_deferred_item_due_now(tmp_path: Path, dev_pki: DevPKI, lawful: bytes) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            w.deliverer.failures.append(TransientError("LMTP 451"))
            item = await w.receive(carrying(lawful))
            deferred = await w.process()
            assert (deferred.state, deferred.verdict) == ("deferred", "accepted")
            assert deferred.next_attempt_at is not None
            assert deferred.next_attempt_at > w.clock.now()
            assert await w.store.claim(["inbound"], w.clock.now()) == []  # not due by itself
            await retry(w.store, item.id, reason="DMS back up (by alice)", now=w.clock.now())
            done = await w.process()  # due at once: no clock advance
            assert (done.state, done.attempts) == ("delivered", 2)
            assert await verdicts(w, item.id) == ["accepted"]  # delivered, not judged again
            assert len(await w.notices(item.id)) == 1

    asyncio.run(go())


def test_retry_of_an_item_held_after_its_verdict_only_delivers(tmp_path: Path, dev_pki: DevPKI, lawful: bytes) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            w.deliverer.failures.append(PermanentError("550 mailbox full"))
            item = await w.receive(carrying(lawful))
            assert (await w.process()).state == "hold"
            await retry(w.store, item.id, reason="DMS mailbox emptied (by alice)", now=w.clock.now())
            done = await w.process()
            assert done.state == "delivered"
            assert await verdicts(w, item.id) == ["accepted"]
            assert len(await w.notices(item.id)) == 1  # the 01 of the acceptance, not a second one

    asyncio.run(go())


def test_retry_takes_outbound_kinds_too(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            sha256 = await w.spool.put(b"Subject: sealed\r\n\r\nsealed package\r\n")
            send = await w.store.record_intake(
                Intake(
                    kind="send",
                    channel="internal",
                    sha256=sha256,
                    size=34,
                    document_id=DOCUMENT_ID,
                    recipient=SENDER_MAIL,
                )
            )
            await w.store.claim(["send"], w.clock.now())
            await w.store.hold(send.id, "unexpected: RuntimeError")
            again = await retry(w.store, send.id, reason="bug fixed (by alice)", now=w.clock.now())
            assert again.state == "incoming"
            assert [c.id for c in await w.store.claim(["send"], w.clock.now())] == [send.id]

    asyncio.run(go())


@pytest.mark.parametrize("held_for", ["unexpected: SentUnrecorded", "deadline exceeded (120 s)"])
def test_retry_of_a_send_the_relay_may_have_needs_force(tmp_path: Path, dev_pki: DevPKI, held_for: str) -> None:
    """A send held after the relay may have said 250: a plain retry could send it twice (B8)."""

    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            sha256 = await w.spool.put(b"Subject: sealed\r\n\r\nsealed package\r\n")
            send = await w.store.record_intake(
                Intake(kind="send", channel="internal", sha256=sha256, size=34, document_id=DOCUMENT_ID,
                       recipient=SENDER_MAIL, message_id_header="<once@tayninh.gov.vn>")
            )  # fmt: skip
            await w.store.claim(["send"], w.clock.now())
            await w.store.hold(send.id, held_for)
            with pytest.raises(NotActionable, match=r"may already be with the relay.*<once@tayninh.gov.vn>.*--force"):
                await retry(w.store, send.id, reason=REASON, now=w.clock.now())
            still = await w.store.get(send.id)
            assert still is not None
            assert still.state == "hold"
            again = await retry(w.store, send.id, reason=REASON, now=w.clock.now(), force=True)
            assert again.state == "incoming"

    asyncio.run(go())


def test_retry_refuses_what_is_not_held_or_deferred(tmp_path: Path, dev_pki: DevPKI, lawful: bytes) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            now = w.clock.now()
            delivered = await w.receive(carrying(lawful))
            assert (await w.process()).state == "delivered"
            with pytest.raises(NotActionable, match=r"is delivered \(finished\)"):
                await retry(w.store, delivered.id, reason=REASON, now=now)
            waiting = await w.receive(carrying(lawful) + b"\r\n")
            with pytest.raises(NotActionable, match="is incoming"):
                await retry(w.store, waiting.id, reason=REASON, now=now)
            await w.store.claim(["inbound"], now)
            with pytest.raises(NotActionable, match="being processed now"):
                await retry(w.store, waiting.id, reason=REASON, now=now)
            with pytest.raises(NotFound):
                await retry(w.store, 999, reason=REASON, now=now)
            await w.store.hold(waiting.id, "test")
            with pytest.raises(ValueError, match="naive"):
                await retry(w.store, waiting.id, reason=REASON, now=now.replace(tzinfo=None))
            held = await w.store.get(waiting.id)
            assert held is not None
            assert held.state == "hold"  # nothing changed by the refusals

    asyncio.run(go())


# --------------------------------------------------------------------------- release


def test_release_delivers_the_original_mail_marked_and_answers_01_once(
    tmp_path: Path, dev_pki: DevPKI, lawful: bytes
) -> None:
    mail = carrying(lawful)

    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            defer_everything(w)
            held = await held_past_max_age(w, mail)
            done = await release(held.id, w.ctx, reason=REASON)
            key = delivery_key(held.id, held.sha256)
            assert (done.key, done.notices, done.item.state) == (key, 1, "delivered")
            assert done.item.verdict == "deferred"  # no verdict is invented: the journal says "released"

            [delivered] = w.deliverer.delivered
            assert delivered.key == key
            assert delivered.mail.endswith(mail)  # the original bytes, untouched
            head = email.message_from_bytes(delivered.mail[: -len(mail)] + b"\r\n", policy=email.policy.default)
            assert head["X-Gateway-Verdict"] == RELEASED_VERDICT
            assert head["X-Gateway-Id"] == key
            assert str(head["X-Gateway-Report"]) == f"{held.id}; released: {REASON}"  # RFC 2047 on the wire
            assert delivered.mail[: -len(mail)].isascii()

            last = (await w.store.history(held.id))[-1]
            assert (last.event, last.data["from"], last.data["to"]) == ("released", "hold", "delivered")
            assert last.data["reason"] == f"released by an admin: {REASON}"
            [notice] = await w.notices(held.id)
            status, _ = attached_status(w, notice)
            assert (status.status_code, status.response_for.document_id) == ("01", DOCUMENT_ID)
            assert notice.recipient == SENDER_MAIL

            with pytest.raises(NotActionable, match=r"is delivered \(finished\)"):
                await release(held.id, w.ctx, reason=REASON)
            assert len(w.deliverer.delivered) == 1
            assert len(await w.notices(held.id)) == 1

    asyncio.run(go())


def test_release_of_a_deferred_item_takes_it_from_the_workers_first(
    tmp_path: Path, dev_pki: DevPKI, lawful: bytes
) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            defer_everything(w)
            item = await w.receive(carrying(lawful))
            assert (await w.process()).state == "deferred"
            done = await release(item.id, w.ctx, reason=REASON)
            assert done.item.state == "delivered"
            history = await w.store.history(item.id)
            moves = [(e.event, e.data["from"], e.data["to"]) for e in history if "to" in e.data][-2:]
            assert moves == [("transition", "deferred", "hold"), ("released", "hold", "delivered")]
            assert len(w.deliverer.delivered) == 1

    asyncio.run(go())


def test_release_after_an_acceptance_makes_no_second_01(tmp_path: Path, dev_pki: DevPKI, lawful: bytes) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            w.deliverer.failures.append(PermanentError("550 policy"))
            item = await w.receive(carrying(lawful))
            assert (await w.process()).state == "hold"
            done = await release(item.id, w.ctx, reason=REASON)
            assert (done.item.state, done.notices) == ("delivered", 0)
            assert len(await w.notices(item.id)) == 1

    asyncio.run(go())


def test_release_of_an_item_held_before_any_verdict_answers_01(tmp_path: Path, dev_pki: DevPKI, lawful: bytes) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item = await w.receive(carrying(lawful))
            await w.store.claim(["inbound"], w.clock.now())
            await w.store.hold(item.id, "unexpected: RuntimeError")
            done = await release(item.id, w.ctx, reason=REASON)
            assert (done.item.state, done.item.verdict, done.notices) == ("delivered", None, 1)

    asyncio.run(go())


def test_a_failed_release_stays_held_and_a_second_one_delivers_once(
    tmp_path: Path, dev_pki: DevPKI, lawful: bytes
) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            defer_everything(w)
            held = await held_past_max_age(w, carrying(lawful))
            w.deliverer.failures.append(TransientError("LMTP 451 try later"))
            with pytest.raises(ReleaseFailed, match="LMTP 451"):
                await release(held.id, w.ctx, reason=REASON)
            after = await w.store.get(held.id)
            assert after is not None
            assert after.state == "hold"
            assert after.last_error is not None
            assert "release by an admin failed" in after.last_error
            assert await w.notices(held.id) == []  # the 01 goes with the release, not before
            done = await release(held.id, w.ctx, reason=REASON)
            assert (done.item.state, done.notices) == ("delivered", 1)
            assert len(w.deliverer.delivered) == 1

    asyncio.run(go())


def test_release_refuses_refused_outbound_and_busy_items(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    misaddressed = build(document(("cong-van.pdf", signed_pdfs.main), to="000.00.32.H53"))

    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            refused = await w.receive(carrying(misaddressed))
            assert (await w.process()).state == "refused"
            with pytest.raises(NotActionable, match="a refusal is final"):
                await release(refused.id, w.ctx, reason=REASON)
            sha256 = await w.spool.put(b"Subject: notice\r\n\r\nnotice\r\n")
            notice = await w.store.record_intake(
                Intake(kind="notice", channel="internal", sha256=sha256, size=26, recipient=SENDER_MAIL)
            )
            await w.store.claim(["notice"], w.clock.now())
            await w.store.hold(notice.id, "unexpected: RuntimeError")
            with pytest.raises(NotActionable, match="only inbound mail"):
                await release(notice.id, w.ctx, reason=REASON)
            busy = await w.receive(carrying(misaddressed) + b"\r\n")
            await w.store.claim(["inbound"], w.clock.now())
            with pytest.raises(NotActionable, match="being processed now"):
                await release(busy.id, w.ctx, reason=REASON)
            assert w.deliverer.delivered == []

    asyncio.run(go())
