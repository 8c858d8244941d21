"""``gateway.app.serve`` end to end over real sockets (issue 5 "Proof").

aiosmtplib clients talk to the gateway's listeners; the DMS and the axis are capturing SMTP sinks
on loopback; packages are signed by the development PKI, whose OCSP, CRL and TSA answer over HTTP.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
from pathlib import Path

import aiosmtplib
import pytest

from gateway.clock import SystemClock
from gateway.devpki import DevPKI
from gateway.edxml.build import build
from gateway.edxml.model import DocumentPackage
from gateway.edxml.parse import parse
from gateway.pipeline.mails import find_package
from gateway.store import Spool, Store
from tests.pdfs import SignedPdfs
from tests.pipeline.test_receive import carrying, document
from tests.pipeline.test_submission import RECIPIENT, draft_mail, draft_package
from tests.service import (
    PARTNER_MAIL,
    health,
    queued_id,
    running,
    send_mail,
    status_of,
    until,
    work_item,
    write_config,
)
from tests.smtpsink import SmtpSink

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def good(signed_pdfs: SignedPdfs) -> bytes:
    return carrying(_package(signed_pdfs.main))


@pytest.fixture(scope="module")
def unsigned(signed_pdfs: SignedPdfs) -> bytes:
    return carrying(_package(signed_pdfs.unsigned))


def _package(pdf: bytes) -> bytes:
    return build(document(("cong-van.pdf", pdf)))


def test_a_good_package_reaches_the_dms_and_the_sender_gets_status_01(
    tmp_path: Path, dev_pki: DevPKI, good: bytes
) -> None:
    """A1–A10 at the service: accepted → delivered unchanged to the DMS, 01 to the sender."""

    async def go() -> None:
        async with SmtpSink() as dms, SmtpSink() as axis:
            config = write_config(
                tmp_path,
                dev_pki,
                dms=f"smtp://127.0.0.1:{dms.port}",
                dms_recipients=("vanthu@dms.tayninh.gov.vn",),
                axis=f"smtp://127.0.0.1:{axis.port}",
            )
            async with running(config) as where:
                code, reply = await send_mail(where.smtp[1], good)
                assert code == 250, reply
                id = queued_id(reply)

                async def settled() -> bool:
                    return bool(dms.messages) and bool(axis.messages)

                await until(settled)
                status, body = await health(where)
                assert (status, body["status"]) == (200, "ok")
            item = await work_item(config, id)
            assert (item.state, item.verdict) == ("delivered", "accepted")
            [delivered] = dms.messages
            assert delivered.rcpt_to == ("vanthu@dms.tayninh.gov.vn",)
            assert delivered.data.replace(b"\r\n", b"\n").endswith(good.replace(b"\r\n", b"\n"))
            head = email.message_from_bytes(delivered.data, policy=email.policy.default)
            assert head["X-Gateway-Verdict"] == "accepted"
            [notice] = axis.messages
            assert notice.rcpt_to == (PARTNER_MAIL,)
            assert status_of(notice).status_code == "01"

    asyncio.run(go())


def test_a_refused_package_is_answered_with_status_02_naming_the_reason(
    tmp_path: Path, dev_pki: DevPKI, unsigned: bytes
) -> None:
    """A8 refusal round trip: after queue, a signed status 02 with the code reaches the sender."""

    async def go() -> None:
        async with SmtpSink() as axis:
            config = write_config(tmp_path, dev_pki, axis=f"smtp://127.0.0.1:{axis.port}")
            async with running(config) as where:
                code, reply = await send_mail(where.smtp[1], unsigned)
                assert code == 250, reply

                async def answered() -> bool:
                    return bool(axis.messages)

                await until(answered)
            item = await work_item(config, queued_id(reply))
            assert (item.state, item.verdict) == ("refused", "refused")
            assert not await asyncio.to_thread(lambda: list(tmp_path.glob("dms/new/*")))  # nothing reached the DMS
            [notice] = axis.messages
            assert notice.rcpt_to == (PARTNER_MAIL,)
            status = status_of(notice)
            assert status.status_code == "02"
            assert "pdf-unsigned" in (status.description or "")

    asyncio.run(go())


def test_inline_verdict_answers_550_in_the_dialogue_and_keeps_the_evidence(
    tmp_path: Path, dev_pki: DevPKI, unsigned: bytes
) -> None:
    """The inline path: a refusal decided within inline_verdict_seconds gets 550 5.7.x <code>."""

    async def go() -> None:
        config = write_config(tmp_path, dev_pki, inline_verdict_seconds=60)
        async with running(config) as where:
            code, reply = await send_mail(where.smtp[1], unsigned)
        assert code == 550, reply
        assert reply.startswith("5.7.1 pdf-unsigned:"), reply
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", clock=SystemClock(), migrate=False)
        try:
            [item] = await store.list(kind="inbound")
        finally:
            await store.close()
        assert (item.state, item.verdict) == ("refused", "refused")
        assert (tmp_path / "spool").exists()

    asyncio.run(go())


def test_a_draft_from_the_dms_is_sealed_and_relayed_to_the_axis(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    """B1–B8 at the service: submission → sealed package to the recipient's mailbox on the axis."""
    draft = draft_package(signed_pdfs.person_only)

    async def go() -> None:
        async with SmtpSink() as axis:
            config = write_config(tmp_path, dev_pki, axis=f"smtp://127.0.0.1:{axis.port}")
            async with running(config) as where:
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=where.submission[1], timeout=60)
                await client.connect()
                await client.sendmail("vanthu@dms.tayninh.gov.vn", ["vanthu@chauthanh.gov.vn"], draft_mail(draft))
                await client.quit()

                async def sent() -> bool:
                    return bool(axis.messages)

                await until(sent, within=120)
            [relayed] = axis.messages
            assert relayed.rcpt_to == ("vanthu@chauthanh.gov.vn",)
            package = find_package(relayed.data).package
            assert package is not None
            assert package != draft
            parsed = parse(package).package
            assert isinstance(parsed, DocumentPackage)
            assert parsed.header.to[0].organ_id == RECIPIENT

    asyncio.run(go())


def test_sighup_reloads_the_policy_and_a_bad_file_changes_nothing(tmp_path: Path, dev_pki: DevPKI) -> None:
    """Issue 3: the running gateway reloads the policy on SIGHUP; an invalid file keeps the old one.

    Issue 6: each policy's text is kept in the spool under the hash its verdicts record (at start
    and before a reloaded one takes effect), for the evidence bundle's ``policy.toml``.
    """
    policy = tmp_path / "policy.toml"
    policy.write_text("[time]\nclock_skew_seconds = 300\n", encoding="utf-8")
    config = write_config(tmp_path, dev_pki, policy=policy)
    spool = Spool(tmp_path / "spool")

    async def go() -> None:
        async with running(config) as where:
            _, before = await health(where)
            assert b"clock_skew_seconds = 300\n" in await spool.get(before["policy_sha256"])  # get checks the hash
            policy.write_text("[time]\nclock_skew_seconds = 60\n", encoding="utf-8")
            os.kill(os.getpid(), signal.SIGHUP)

            async def changed() -> bool:
                return bool((await health(where))[1]["policy_sha256"] != before["policy_sha256"])

            await until(changed, within=10)
            _, after = await health(where)
            assert b"clock_skew_seconds = 60\n" in await spool.get(after["policy_sha256"])
            policy.write_text("[time]\nclock_skew_seconds = 'soon'\n", encoding="utf-8")
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.5)
            _, kept = await health(where)
            assert kept["policy_sha256"] == after["policy_sha256"]

    asyncio.run(go())


def test_health_answers_and_the_service_stops_cleanly(tmp_path: Path, dev_pki: DevPKI) -> None:
    async def go() -> None:
        config = write_config(tmp_path, dev_pki)
        async with running(config) as where:
            status, body = await health(where)
            assert status == 200
            assert body["status"] == "ok"
            assert body["started_at"].endswith("+07:00")
            assert body["in_flight"] == 0
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(*where.smtp)

    asyncio.run(go())
