"""The inbound listener over real loopback sockets, with in-memory twins of the store and spool."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.errors import TransientError
from gateway.inbound.intake import Intake
from gateway.inbound.smtp import InboundSmtp, refusal_reply
from gateway.settings import SmtpSettings
from gateway.smtpserver import ItemRef, MailSink
from gateway.store import Spool
from tests.inbound.client import CLIENT_NAME, RCPT, mail, run, send, serving
from tests.inbound.twins import MemorySpool, MemoryStore, disk_full
from tests.mailtls import make_loopback_tls

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = SmtpSettings(listen="127.0.0.1:0", hostname="gw.test", local_recipients=("VanThu@TayNinh.gov.vn",))


def make(
    settings: SmtpSettings = SETTINGS, **kwargs: object
) -> tuple[InboundSmtp, MemoryStore, MemorySpool, asyncio.Event]:
    store, spool, woken = MemoryStore(), MemorySpool(), asyncio.Event()
    return InboundSmtp(settings, Intake(store, spool, wake=woken.set), **kwargs), store, spool, woken  # type: ignore[arg-type]


def test_data_is_durable_before_250_and_wakes_the_scheduler() -> None:
    async def main() -> None:
        server, store, spool, woken = make()
        async with serving(server):
            reply = await send(server.address[1], mail("one", message_id="<one@axis.test>"))
            assert reply == "2.0.0 Ok: queued as 1"
            row = store.rows[1]
            assert spool.files[row.sha256] == mail("one", message_id="<one@axis.test>")
            assert (row.kind, row.channel, row.direction, row.state) == ("inbound", "smtp", "in", "incoming")
            assert row.rcpt_to == (RCPT,)
            assert row.mail_from == "a@axis.test"
            assert row.message_id_header == "<one@axis.test>"
            assert woken.is_set()
            assert spool.calls == ["commit"]  # streamed into the spool's writer, committed before the row
            assert store.calls == ["record_intake"]

    run(main)


def test_unknown_recipient_is_550_and_case_is_ignored() -> None:
    async def main() -> None:
        server, store, _, _ = make()
        async with serving(server):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await send(server.address[1], mail(), rcpt=["nobody@tayninh.gov.vn"])
            (error,) = refused.value.recipients
            assert error.code == 550
            assert error.message == "5.1.1 <nobody@tayninh.gov.vn>: recipient not local"
            assert await send(server.address[1], mail(), rcpt=[RCPT.upper()]) == "2.0.0 Ok: queued as 1"
            assert len(store.rows) == 1

    run(main)


def test_empty_local_recipients_accepts_any_address() -> None:
    async def main() -> None:
        server, store, _, _ = make(replace(SETTINGS, local_recipients=()))
        async with serving(server):
            await send(server.address[1], mail(), rcpt=["anyone@example.org", "other@example.org"])
            assert store.rows[1].rcpt_to == ("anyone@example.org", "other@example.org")

    run(main)


def test_the_null_sender_is_accepted_and_recorded_empty() -> None:
    async def main() -> None:
        server, store, _, _ = make()
        async with serving(server):
            assert await send(server.address[1], mail(), sender="") == "2.0.0 Ok: queued as 1"
        assert store.rows[1].mail_from == ""

    run(main)


def test_too_big_is_552_and_nothing_is_spooled() -> None:
    async def main() -> None:
        server, store, spool, _ = make(replace(SETTINGS, max_message_bytes=10_000))
        async with serving(server):
            big = mail(body=("x" * 70 + "\r\n") * 200)
            # aiosmtplib announces the size (MAIL FROM SIZE=): refused before any data.
            with pytest.raises(aiosmtplib.SMTPSenderRefused) as early:
                await send(server.address[1], big)
            assert (early.value.code, early.value.message) == (552, "5.3.4 message too big")
            # Without SIZE the server counts while reading DATA.
            async with aiosmtplib.SMTP(
                hostname="127.0.0.1", port=server.address[1], start_tls=False, local_hostname=CLIENT_NAME
            ) as client:
                await client.mail("a@axis.test")
                await client.rcpt(RCPT)
                with pytest.raises(aiosmtplib.SMTPDataError) as late:
                    await client.data(big)
                assert (late.value.code, late.value.message) == (552, "5.3.4 message too big")
            assert spool.files == {}
            assert spool.calls == ["abort"]  # the late one was streamed, then dropped
            assert store.rows == {}

    run(main)


@pytest.mark.parametrize(
    ("fault", "code", "text"),
    [
        ("spool", 451, "4.3.0 Temporary local problem; try again later"),
        ("spool-full", 452, "4.3.1 Insufficient system storage; try again later"),
        ("spool-oserror", 451, "4.3.0 Temporary local problem; try again later"),
        ("db", 451, "4.3.0 Temporary local problem; try again later"),
        ("db-full", 452, "4.3.1 Insufficient system storage; try again later"),
    ],
)
def test_spool_or_database_trouble_is_4xx_and_no_row(fault: str, code: int, text: str) -> None:
    async def main() -> None:
        server, store, spool, woken = make()
        errors: dict[str, Exception] = {
            "spool": TransientError("spool: I/O error"),
            "spool-full": disk_full(),
            "spool-oserror": OSError(5, "Input/output error"),
            "db": TransientError("database is locked"),
            "db-full": disk_full(),
        }
        if fault.startswith("spool"):
            spool.fail = errors[fault]
        else:
            store.fail = errors[fault]
        async with serving(server):
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await send(server.address[1], mail())
            assert (refused.value.code, refused.value.message) == (code, text)
        assert store.rows == {}
        assert not woken.is_set()
        if fault.startswith("spool"):
            assert store.calls == []  # the row never comes before the spool file

    run(main)


def test_concurrent_clients_all_recorded_exactly_once() -> None:
    async def client(port: int, n: int) -> list[str]:
        replies = []
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname=CLIENT_NAME) as c:
            for k in range(5):
                _, reply = await c.sendmail("a@axis.test", [RCPT], mail(f"c{n}-m{k}", message_id=f"<{n}.{k}@t>"))
                replies.append(reply)
        return replies

    async def main() -> None:
        server, store, spool, _ = make()
        store.delay = 0.002  # interleave the commits
        async with serving(server):
            replies = [r for rs in await asyncio.gather(*(client(server.address[1], n) for n in range(20))) for r in rs]
        assert len(replies) == 100
        assert all(r.startswith("2.0.0 Ok: queued as ") for r in replies)
        assert sorted(int(r.rsplit(" ", 1)[1]) for r in replies) == list(range(1, 101))
        ids = sorted(row.message_id_header or "" for row in store.rows.values())
        assert ids == sorted(f"<{n}.{k}@t>" for n in range(20) for k in range(5))
        assert len(spool.files) == 100

    run(main)


def test_starttls_with_the_loopback_certificate(tmp_path: Path) -> None:
    tls = make_loopback_tls(tmp_path)

    async def main() -> None:
        server, store, _, _ = make(replace(SETTINGS, tls_cert=tls.cert, tls_key=tls.key))
        async with serving(server):
            assert await send(server.address[1], mail(), tls=tls.client_context()) == "2.0.0 Ok: queued as 1"
            async with aiosmtplib.SMTP(
                hostname="127.0.0.1", port=server.address[1], start_tls=False, local_hostname=CLIENT_NAME
            ) as client:
                await client.ehlo()
                assert client.supports_extension("starttls")
                assert not client.supports_extension("auth")  # nobody logs in on the axis side
        assert len(store.rows) == 1

    run(main)


@dataclass(frozen=True)
class FakeVerdict:
    refused: bool
    code: str = ""
    reason: str = ""


def test_inline_refusal_is_550_and_the_item_stays() -> None:
    asked: list[tuple[int, float]] = []

    async def waiter(item_id: int, seconds: float) -> FakeVerdict:
        asked.append((item_id, seconds))
        return FakeVerdict(True, "signature-invalid", "Chữ ký số không hợp lệ:\r\nthe signature does not verify")

    async def main() -> None:
        server, store, spool, _ = make(replace(SETTINGS, inline_verdict_seconds=2.0), verdict_waiter=waiter)
        async with serving(server):
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await send(server.address[1], mail())
            assert refused.value.code == 550
            assert refused.value.message == (
                "5.7.1 signature-invalid: Chu ky so khong hop le: the signature does not verify"
            )
        assert asked == [(1, 2.0)]
        assert store.rows[1].sha256 in spool.files  # kept as evidence

    run(main)


def test_the_pipelines_verdict_waiter_fits() -> None:
    """The pipeline's ``VerdictWaiter.wait`` is the edge's ``verdict_waiter`` (checked by mypy too)."""
    from gateway.pipeline.waiter import InlineVerdict, VerdictWaiter
    from gateway.verify.report import Verdict

    waiter = VerdictWaiter()

    class DecidingIntake:
        """Records the mail, then "decides" at once, as a fast worker would."""

        def __init__(self) -> None:
            self.inner = Intake(MemoryStore(), MemorySpool())

        def open_mail(self) -> MailSink:
            return self.inner.open_mail()

        async def accept(self, raw: bytes | MailSink, **kwargs: Any) -> ItemRef:
            item = await self.inner.accept(raw, **kwargs)
            waiter.resolve(item.id, InlineVerdict(Verdict.REFUSED, "cert-revoked", "The certificate is revoked."))
            return item

    async def main() -> None:
        settings = replace(SETTINGS, inline_verdict_seconds=1.0)
        server = InboundSmtp(settings, DecidingIntake(), verdict_waiter=waiter.wait)
        async with serving(server):
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await send(server.address[1], mail())
            assert refused.value.message == "5.7.1 cert-revoked: The certificate is revoked."

    run(main)


def test_inline_accept_timeout_and_broken_waiter_answer_250() -> None:
    async def accepted(item_id: int, seconds: float) -> FakeVerdict:
        return FakeVerdict(False)

    async def timed_out(item_id: int, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def stuck(item_id: int, seconds: float) -> None:
        await asyncio.sleep(3600)  # ignores its timeout: our own deadline cuts it

    async def broken(item_id: int, seconds: float) -> None:
        raise RuntimeError("pipeline bug")

    async def main() -> None:
        for waiter in (accepted, timed_out, stuck, broken):
            server, store, _, _ = make(replace(SETTINGS, inline_verdict_seconds=0.2), verdict_waiter=waiter)
            async with serving(server):
                assert await send(server.address[1], mail()) == "2.0.0 Ok: queued as 1"
            assert len(store.rows) == 1

    run(main)


def test_unexpected_exception_is_451_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenIntake:
        def open_mail(self) -> MailSink:
            return MemorySpool().writer()

        async def accept(self, raw: bytes | MailSink, **kwargs: object) -> ItemRef:
            raise RuntimeError("secret internals at /srv/gateway")

    async def main() -> None:
        server = InboundSmtp(SETTINGS, BrokenIntake())
        async with serving(server):
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await send(server.address[1], mail())
            assert (refused.value.code, refused.value.message) == (451, "4.3.0 Local error")
            async with aiosmtplib.SMTP(
                hostname="127.0.0.1", port=server.address[1], start_tls=False, local_hostname=CLIENT_NAME
            ) as client:
                await client.mail("a@axis.test")
                await client.rcpt(RCPT)
                with pytest.raises(aiosmtplib.SMTPDataError):
                    await client.data(mail())
                assert (await client.mail("a@axis.test")).code == 250  # the session goes on

    with caplog.at_level(logging.ERROR, logger="gateway.inbound.smtp"):
        run(main)
    records = [r for r in caplog.records if r.exc_info]
    assert len(records) == 2
    for record in records:
        assert record.exc_info is not None
        assert "secret internals" in str(record.exc_info[1])
        assert "127.0.0.1" in record.getMessage()  # the session is named in the log line


def test_a_peer_leaving_in_the_middle_of_data_leaves_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        server, store, spool, _ = make()
        async with serving(server):
            reader, writer = await asyncio.open_connection(*server.address)
            assert (await reader.readline()).startswith(b"220 ")
            for command in (b"EHLO client.test", b"MAIL FROM:<a@axis.test>", f"RCPT TO:<{RCPT}>".encode(), b"DATA"):
                writer.write(command + b"\r\n")
                while (line := await reader.readline())[3:4] == b"-":
                    pass
            assert line.startswith(b"354")
            writer.write(b"Subject: half\r\n\r\nand then the line drops")
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.1)
            assert await send(server.address[1], mail()) == "2.0.0 Ok: queued as 1"  # still serving
        assert len(store.rows) == 1
        assert len(spool.files) == 1

    with caplog.at_level(logging.WARNING):
        run(main)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_refusal_reply_is_one_ascii_line() -> None:
    assert refusal_reply("bad code!\n", "Đơn vị\tgửi  " + "x" * 500).startswith("550 5.7.1 badcode: Don vi gui x")
    assert len(refusal_reply("c", "x" * 1000)) < 450
    assert refusal_reply("", "") == "550 5.7.1 refused: message refused"
    assert refusal_reply("c", "\x00\x1b[31m").isascii()


CLIENT = """
import asyncio, sys
from tests.inbound.client import mail, send
big = mail(body=("0123456789" * 7 + "\\r\\n") * (20 * 1024 * 1024 // 72))
print(asyncio.run(send(int(sys.argv[1]), big)))
"""


def test_a_20_mb_message_does_not_stall_the_loop(tmp_path: Path) -> None:
    """A client in another process sends 20 MB; a heartbeat on the server's loop keeps ticking.

    DATA is read in chunks, hashing and fsync run in the spool's thread: the longest pause of
    the loop stays far below aiosmtpd's line-by-line reader (about 150 ms for 20 MB).
    """

    async def main() -> None:
        store = MemoryStore()
        server = InboundSmtp(replace(SETTINGS, max_message_bytes=32 << 20), Intake(store, Spool(tmp_path / "spool")))
        async with serving(server):
            client = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CLIENT, str(server.address[1]), stdout=asyncio.subprocess.PIPE, cwd=ROOT
            )
            waiting = asyncio.create_task(client.communicate())
            gaps: list[float] = []
            last = time.perf_counter()
            while not waiting.done():
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
            out, _ = await waiting
        assert out.decode().strip() == "2.0.0 Ok: queued as 1"
        assert store.rows[1].size > 20_000_000
        assert max(gaps) < 0.1, f"the loop stalled for {max(gaps):.3f} s"

    run(main)
