"""The outage drills of issue 5, through the whole service (``gateway.app.serve``) over real sockets.

The pipeline-level versions (``tests/pipeline/test_submission.py``, ``tests/pipeline/test_receive.py``)
drive one handler with a fixed clock; here the real scheduler, listeners, SMTP clients and servers,
TSA and OCSP run on the system clock, and each drill watches the receipt log from outside (a second,
read-only ``Store``) while the service works. Outages are made with ``TsaSwitch``, the TCP relay of
the pipeline tests: while it is off it accepts a connection and cuts it at once (a service that is
gone), when it is on it relays to the real thing.

1. the TSA down during outbound: retried, nothing sent unsealed (spec §6 B7);
2. OCSP (and CRL, and the TSA) down during inbound: deferred, never accepted blind, then accepted and
   delivered once when they return (spec §6 A5, A6; G1.13a "no answer is UNKNOWN, never VALID");
3. the axis answering 421 then 250: retried, sent once, the send time is the 2xx's (spec §6 B8);
4. the DMS down then up: the verdict is kept, the delivery retried, delivered once.

The retry schedule is shortened to 1-2 s (``[queue] retry_initial_seconds``, ``retry_max_seconds``);
the scheduler looks for due items every 2 s, so each retry comes within about 3 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.clock import SystemClock
from gateway.devpki import DevPKI, bind_listener, serve_pki, write_bundle
from gateway.edxml.build import build
from gateway.edxml.model import DocumentPackage
from gateway.edxml.parse import parse
from gateway.pipeline.mails import find_package
from gateway.store import JournalView, MessageView
from gateway.verify.pdfread import read_pdf
from tests.pdfs import SignedPdfs
from tests.pipeline.test_receive import carrying, document
from tests.pipeline.test_submission import TsaSwitch, draft_mail, draft_package, recipient_accepts
from tests.pki import KEY_CACHE
from tests.service import (
    PARTNER_MAIL,
    queued_id,
    receipt_log,
    running,
    send_mail,
    status_of,
    until,
    work_item,
    work_items,
    write_config,
)
from tests.smtpsink import Captured, SmtpSink

RETRY: dict[str, Any] = {"retry_initial_seconds": 1.0, "retry_max_seconds": 2.0}
"""The shortest retry schedule the gateway allows (``backoff`` never waits less than 1 s)."""
DMS_BOX = "vanthu@dms.tayninh.gov.vn"
DRAFT_RECIPIENT = "vanthu@chauthanh.gov.vn"
INLINE = 10.0
"""``[smtp] inline_verdict_seconds`` of the inbound drill: the verdict is awaited in the SMTP dialogue."""
WAIT = 30.0
"""The longest any one step of a drill may take (it normally takes a few seconds)."""


# --------------------------------------------------------------------------- helpers


async def _history(config: Path, id: int) -> list[JournalView]:
    async with receipt_log(config) as store:
        return await store.history(id)


def _states(history: list[JournalView]) -> list[str]:
    """The states an item went through, in order (its journal: ``received``, then each move's ``to``)."""
    return [e.data["to"] if "to" in e.data else e.data["state"] for e in history if {"to", "state"} & set(e.data)]


def _deferrals(history: list[JournalView]) -> list[JournalView]:
    return [e for e in history if e.data.get("to") == "deferred"]


def _due(history: list[JournalView], before: JournalView) -> datetime:
    """The last retry time the journal recorded before ``before`` (a deferral's, or a deferred verdict's)."""
    times = [
        e.data.get("next_attempt_at") or e.data.get("fields", {}).get("next_attempt_at")
        for e in history
        if e.seq < before.seq
    ]
    due = [t for t in times if t]
    assert due, "no deferral before this event"
    return datetime.fromisoformat(due[-1].replace("Z", "+00:00"))


async def _deferred_again(config: Path, kind: str, *, attempts: int) -> MessageView:
    """Wait until the one item of ``kind`` has been tried ``attempts`` times and is deferred."""
    found: list[MessageView] = []

    async def retried() -> bool:
        items = await work_items(config, kind)
        assert len(items) <= 1, items
        found[:] = items
        return bool(items) and items[0].state == "deferred" and items[0].attempts >= attempts

    await until(retried, within=WAIT)
    return found[0]


async def _submit(port: int, mail: bytes) -> None:
    """What the DMS does: hand a draft to the submission listener (loopback needs no AUTH)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=WAIT)
    await client.connect()
    try:
        errors, _ = await client.sendmail(DMS_BOX, [DRAFT_RECIPIENT], mail)
        assert not errors
    finally:
        await client.quit()


def _package_of(captured: Captured) -> bytes:
    package = find_package(captured.data).package
    assert package is not None
    return package


def _der(pki: DevPKI, label: str) -> bytes:
    return pki.certificate(label).public_bytes(Encoding.DER)


def _sealed_with_timestamps(pki: DevPKI, package: bytes, *, not_before: datetime) -> None:
    """Every PDF of ``package`` carries our organisation's signature, time-stamped after ``not_before``."""
    parsed = parse(package).package
    assert isinstance(parsed, DocumentPackage)
    org = _der(pki, "org")
    pdfs = [a for a in parsed.attachments if a.name.endswith(".pdf")]
    assert [a.name for a in pdfs] == ["cong-van.pdf", "phu-luc.pdf"]
    for attachment in pdfs:
        assert attachment.data is not None
        read = read_pdf(attachment.data)
        assert read.readable, read.detail
        sealed = [s for s in read.signatures if s.signer == org]
        assert len(sealed) == 1, (attachment.name, [s.field_name for s in read.signatures])
        for signature in read.signatures:  # the person's (cong-van) and ours: PAdES-B-T, all of them
            assert signature.intact, (attachment.name, signature.detail)
            assert signature.crypto_valid, (attachment.name, signature.detail)
            assert signature.timestamp is not None, (attachment.name, signature.field_name)
            assert signature.timestamp.intact, signature.timestamp.detail
        stamp = sealed[0].timestamp
        assert stamp is not None
        assert stamp.gen_time is not None
        # Our seal was stamped when the TSA was back (TSA genTime has whole seconds).
        assert stamp.gen_time >= not_before.replace(microsecond=0), (stamp.gen_time, not_before)


async def _eventually_once(sink: SmtpSink, *, settle: float = 3.5) -> Captured:
    """The one message ``sink`` captured, after a scheduler poll and more in which a second could come."""

    async def arrived() -> bool:
        return bool(sink.messages)

    await until(arrived, within=WAIT)
    await asyncio.sleep(settle)
    assert len(sink.messages) == 1, [m.rcpt_to for m in sink.messages]
    return sink.messages[0]


@asynccontextmanager
async def _pki_behind_a_switch(directory: Path, key_cache: Path | None) -> AsyncIterator[tuple[DevPKI, TsaSwitch]]:
    """A development PKI of its own whose certificates name a relay we control.

    The session's ``dev_pki`` bakes its own address into every AIA and CDP, so its OCSP and CRLs
    cannot be taken away from one gateway without taking them from the whole session. This PKI
    is served on a port of its own and its ``base_url`` is the ``TsaSwitch`` in front of it:
    switching the relay off makes its OCSP, CRLs, CA issuers and TSA unreachable for exactly the
    test that holds it. The relay starts off.
    """
    listener = bind_listener("127.0.0.1", 0)
    try:
        target = f"http://127.0.0.1:{listener.getsockname()[1]}"
        async with TsaSwitch(target) as switch:
            anchor = SystemClock().now().replace(microsecond=0)
            pki = await asyncio.to_thread(
                DevPKI.generate, directory, base_url=switch.url, anchor=anchor, key_cache=key_cache
            )
            await asyncio.to_thread(write_bundle, pki, directory)
            assert pki.urls.ocsp.startswith(switch.url + "/")
            with serve_pki(pki, listener):
                yield pki, switch
    finally:
        listener.close()  # serve_pki took it over and closed our handle; this covers a failure before


def _key_cache(config: pytest.Config) -> Path | None:
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    return None if cache is None else Path(cache.mkdir(KEY_CACHE))


# --------------------------------------------------------------------------- 1. the TSA down, outbound


def test_the_tsa_down_during_outbound_defers_sends_nothing_then_seals_and_sends_once(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    """Issue 5 drill "the TSA down during outbound (retries, nothing sent unsealed)"; spec §6 B7.

    While the TSA is unreachable the submission is retried on the schedule and stays ``deferred``
    (never ``failed``, no notice to the DMS), and nothing at all reaches the axis. When the TSA
    returns, the next retry seals: every PDF's organisation signature carries a time stamp made
    after the TSA came back (PAdES-B-T), the package goes to the axis exactly once, and the
    recipient's own verifier accepts it.
    """
    draft = draft_package(signed_pdfs.person_only)
    back_at: list[datetime] = []

    async def go() -> bytes:
        async with TsaSwitch(dev_pki.urls.tsa) as tsa, SmtpSink() as axis:
            config = write_config(tmp_path, dev_pki, axis=f"smtp://127.0.0.1:{axis.port}", tsa_url=tsa.url, **RETRY)
            async with running(config) as where:
                await _submit(where.submission[1], draft_mail(draft))
                submission = await _deferred_again(config, "submission", attempts=2)
                assert submission.last_error is not None
                assert submission.last_error.startswith("cannot seal now:"), submission.last_error
                assert "time-stamping service" in submission.last_error, submission.last_error
                assert tsa.refused >= 2  # one TSA request per attempt, each cut
                assert await work_items(config, "send") == []
                assert await work_items(config, "notice") == []  # a deferral is not a failure: the DMS is not told
                assert (axis.messages, axis.data_commands) == ([], 0)  # nothing left unsealed

                back_at.append(SystemClock().now())
                tsa.up = True
                captured = await _eventually_once(axis)
            sealed = await work_item(config, submission.id)
            assert sealed.state == "sealed"
            states = _states(await _history(config, submission.id))
            assert states.count("deferred") >= 2, states
            assert "failed" not in states, states
            [send] = await work_items(config, "send")
            assert (send.state, send.recipient, send.attempts) == ("sent", DRAFT_RECIPIENT, 1)
            assert await work_items(config, "notice") == []
            assert captured.rcpt_to == (DRAFT_RECIPIENT,)
            assert axis.data_commands == 1
            return _package_of(captured)

    package = asyncio.run(go())
    assert package != draft
    _sealed_with_timestamps(dev_pki, package, not_before=back_at[0])
    recipient_accepts(dev_pki, package)


# --------------------------------------------------------------------------- 2. OCSP down, inbound


def test_ocsp_down_during_inbound_defers_then_accepts_and_delivers_once_when_it_returns(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """Issue 5 drill "OCSP down during inbound (deferred, then accepted when it returns)"; spec §6 A5, A6.

    The package is good, but while OCSP and the CRLs cannot be reached no revocation status can be
    had: the mail is taken (250 even though the verdict is awaited in the dialogue: it is spooled,
    the receive time recorded, and a deferral is no refusal), the verdict is
    ``deferred`` with ``revocation-unavailable`` (G1.13a: no answer is never VALID), nothing reaches
    the DMS and no refusal goes to the sender, however often it is retried. When OCSP returns, the
    next retry on the schedule judges it again: accepted, delivered to the DMS once, status 01 to
    the sender once.
    """

    async def go() -> None:
        async with _pki_behind_a_switch(tmp_path / "pki", _key_cache(pytestconfig)) as (pki, switch):
            switch.up = True  # the sender signs and time-stamps while the PKI is reachable
            main = await asyncio.to_thread(lambda: SignedPdfs(pki).main)
            switch.up = False
            mail = carrying(build(document(("cong-van.pdf", main))))
            async with SmtpSink() as dms, SmtpSink() as axis:
                config = write_config(
                    tmp_path,
                    pki,
                    dms=f"smtp://127.0.0.1:{dms.port}",
                    dms_recipients=(DMS_BOX,),
                    axis=f"smtp://127.0.0.1:{axis.port}",
                    inline_verdict_seconds=INLINE,
                    **RETRY,
                )
                async with running(config) as where:
                    started = asyncio.get_running_loop().time()
                    code, reply = await send_mail(where.smtp[1], mail)
                    # The inline wait saw the deferred verdict (it did not time out), and a
                    # deferral answers 250: the mail is ours now, judged again later.
                    assert asyncio.get_running_loop().time() - started < INLINE
                    assert code == 250, reply
                    id = queued_id(reply)
                    deferred = await _deferred_again(config, "inbound", attempts=2)
                    assert deferred.id == id
                    assert deferred.verdict == "deferred"
                    assert deferred.last_error is not None
                    assert "revocation-unavailable" in deferred.last_error, deferred.last_error
                    assert deferred.findings is not None
                    unavailable = [f for f in deferred.findings if f["code"] == "revocation-unavailable"]
                    assert unavailable, deferred.findings
                    assert {f["action"] for f in unavailable} == {"defer"}, deferred.findings
                    assert switch.refused >= 2
                    assert (dms.messages, axis.messages) == ([], [])  # not delivered, not refused
                    assert await work_items(config, "notice") == []

                    switch.up = True
                    delivered = await _eventually_once(dms)
                    notice = await _eventually_once(axis, settle=0)
                item = await work_item(config, id)
                assert (item.state, item.verdict) == ("delivered", "accepted")
                assert item.received_at == deferred.received_at  # the legal receive time is the intake's
                history = await _history(config, id)
                verdicts = [e for e in history if e.event == "verdict"]
                assert len(verdicts) >= 3  # deferred, deferred (at least), then accepted
                assert all(e.data["verdict"] == "deferred" for e in verdicts[:-1])
                assert verdicts[-1].data["verdict"] == "accepted"
                # Judged again on the retry schedule: not before the last deferral came due.
                assert verdicts[-1].at >= _due(history, verdicts[-1])
                assert len([e for e in history if e.event == "delivered"]) == 1
                [sent] = await work_items(config, "notice")
                assert (sent.state, sent.recipient) == ("sent", PARTNER_MAIL)
            assert delivered.rcpt_to == (DMS_BOX,)
            assert delivered.data.replace(b"\r\n", b"\n").endswith(mail.replace(b"\r\n", b"\n"))
            assert notice.rcpt_to == (PARTNER_MAIL,)
            assert status_of(notice).status_code == "01"

    asyncio.run(go())


# --------------------------------------------------------------------------- 3. the axis 421, then 250


def test_the_axis_answering_421_then_250_is_retried_and_sent_once(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    """Issue 5 drill "the axis answering 421 then 250 (retried, sent once)"; spec §6 B8.

    The sealed package's first DATA gets 421: the send is ``deferred`` (not failed, no notice to
    the DMS); the retry gets 250: ``sent``, the axis holds exactly one copy, and the recorded
    system send time is when the 2xx came, not when the first attempt was made.
    """
    draft = draft_package(signed_pdfs.person_only)

    async def go() -> None:
        async with SmtpSink(data=["421 4.3.2 busy", "250 2.0.0 ok"]) as axis:
            config = write_config(tmp_path, dev_pki, axis=f"smtp://127.0.0.1:{axis.port}", **RETRY)
            async with running(config) as where:
                await _submit(where.submission[1], draft_mail(draft))
                captured = await _eventually_once(axis)
                taken_by = SystemClock().now()
            [submission] = await work_items(config, "submission")
            assert submission.state == "sealed"
            [send] = await work_items(config, "send")
            assert (send.state, send.attempts, send.last_error) == ("sent", 2, None)
            history = await _history(config, send.id)
            assert _states(history) == ["incoming", "active", "deferred", "active", "sent"], history
            [deferral] = _deferrals(history)
            assert "421 4.3.2 busy" in deferral.data["fields"]["last_error"], deferral.data
            [sent] = [e for e in history if e.event == "sent"]
            assert "250" in sent.data["reason"], sent.data
            assert send.sent_at is not None
            # The system send time is the 2xx's: after the 421 and its backoff, before we saw the copy.
            assert _due(history, sent) <= send.sent_at <= taken_by
            assert send.sent_at - deferral.at >= timedelta(seconds=0.9)
            assert send.sent_at <= sent.at
            assert await work_items(config, "notice") == []  # a 4xx is not a failure: the DMS is not told
            assert (axis.data_commands, len(axis.messages)) == (2, 1)
            assert captured.rcpt_to == (DRAFT_RECIPIENT,)

    asyncio.run(go())


# --------------------------------------------------------------------------- 4. the DMS down, then up


def test_the_dms_down_then_up_keeps_the_verdict_and_delivers_once(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    """The DMS target unreachable after the verdict: ``deferred`` with the verdict kept, then delivered once.

    The package is judged once (accepted; status 01 to the sender at the verdict, once); the
    delivery to the DMS is what is retried, and it lands exactly once when the DMS returns.
    """
    mail = carrying(build(document(("cong-van.pdf", signed_pdfs.main))))

    async def go() -> None:
        async with SmtpSink() as dms, TsaSwitch(f"smtp://127.0.0.1:{dms.port}") as dms_switch, SmtpSink() as axis:
            config = write_config(
                tmp_path,
                dev_pki,
                dms=dms_switch.url,
                dms_recipients=(DMS_BOX,),
                axis=f"smtp://127.0.0.1:{axis.port}",
                **RETRY,
            )
            async with running(config) as where:
                code, reply = await send_mail(where.smtp[1], mail)
                assert code == 250, reply
                id = queued_id(reply)
                deferred = await _deferred_again(config, "inbound", attempts=2)
                assert deferred.id == id
                assert deferred.verdict == "accepted"  # judged once; only the delivery waits
                assert deferred.last_error is not None
                assert "DMS unreachable" in deferred.last_error, deferred.last_error
                assert dms_switch.refused >= 2
                assert dms.messages == []

                dms_switch.up = True
                delivered = await _eventually_once(dms)
                notice = await _eventually_once(axis, settle=0)
            item = await work_item(config, id)
            assert (item.state, item.verdict) == ("delivered", "accepted")
            history = await _history(config, id)
            assert len([e for e in history if e.event == "verdict"]) == 1
            assert len([e for e in history if e.event == "delivered"]) == 1
            assert _states(history).count("deferred") >= 2
            assert len(await work_items(config, "notice")) == 1  # one 01, not one per attempt
            assert delivered.rcpt_to == (DMS_BOX,)
            assert status_of(notice).status_code == "01"

    asyncio.run(go())
