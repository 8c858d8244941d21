"""Delivery to the DMS: the Maildir exactly once, SMTP and LMTP over real loopback sockets.

Every SMTP/LMTP test talks to ``tests.smtpsink`` (aiosmtpd on the test's event loop); the
error mapping is checked against real replies and real network failures (refused connection,
a server that never answers, one that hangs after DATA).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.inbound.deliver import MaildirDeliverer, SmtpDeliverer, deliverer_from
from gateway.pipeline.ports import SpooledMail
from gateway.settings import DmsSettings
from tests.smtpsink import SilentServer, SmtpSink, free_port

T = TypeVar("T")

MAIL = (
    b"From: a@example.gov.vn\r\nTo: dms@example.gov.vn\r\nSubject: test\r\n\r\n"
    b"Line one\r\n.a line that starts with a dot\r\n..two dots\r\n\xc4\x90\xc3\xa3 \xc4\x91\xe1\xba\xbfn\r\n"
)
KEY = "17-0123456789abcdef"


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await factory()

    return asyncio.run(go())


# --------------------------------------------------------------------------- Maildir


def test_maildir_delivers_the_bytes_once_under_the_key(tmp_path: Path) -> None:
    root = tmp_path / "dms"  # missing: created with tmp/, new/, cur/
    deliverer = MaildirDeliverer(root)

    async def twice() -> None:
        await deliverer.deliver(MAIL, key=KEY)
        await deliverer.deliver(MAIL + b"changed on replay", key=KEY)

    run(twice)
    assert sorted(p.name for p in root.iterdir()) == ["cur", "new", "tmp"]
    assert [p.name for p in (root / "new").iterdir()] == [KEY]
    assert (root / "new" / KEY).read_bytes() == MAIL  # the first one; the replay changed nothing
    assert list((root / "tmp").iterdir()) == []
    assert (root / "new" / KEY).stat().st_mode & 0o777 == 0o600


def test_maildir_copies_a_spooled_mail_file_to_file_with_the_head_in_front(tmp_path: Path) -> None:
    """Issue 7, P4: a spooled mail is copied in pieces (several MiB: more than one piece)."""
    big = MAIL + os.urandom(3 * 1024 * 1024 + 17)
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(big)
    deliverer = MaildirDeliverer(tmp_path / "dms")

    async def deliver() -> None:
        with spooled.open("rb") as file:
            await deliverer.deliver(SpooledMail(b"X-Gateway-Id: " + KEY.encode() + b"\r\n", file), key=KEY)

    run(deliver)
    assert (tmp_path / "dms" / "new" / KEY).read_bytes() == b"X-Gateway-Id: " + KEY.encode() + b"\r\n" + big


@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
def test_a_spooled_mail_goes_over_smtp_with_its_head(tmp_path: Path, lmtp: bool) -> None:
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(MAIL)

    async def go() -> SmtpSink:
        async with SmtpSink(lmtp=lmtp) as sink:
            with spooled.open("rb") as file:
                head = f"X-Gateway-Verdict: accepted\r\nX-Gateway-Id: {KEY}\r\n".encode()
                await smtp(sink, "a@dms.test", lmtp=lmtp).deliver(SpooledMail(head, file), key=KEY)
            return sink

    sink = run(go)
    assert [m.data for m in sink.messages] == [
        f"X-Gateway-Verdict: accepted\r\nX-Gateway-Id: {KEY}\r\n".encode() + MAIL
    ]


def test_a_message_the_dms_has_read_is_not_delivered_again(tmp_path: Path) -> None:
    deliverer = MaildirDeliverer(tmp_path)
    run(lambda: deliverer.deliver(MAIL, key=KEY))
    os.rename(tmp_path / "new" / KEY, tmp_path / "cur" / f"{KEY}:2,S")  # what a mail reader does
    run(lambda: deliverer.deliver(MAIL, key=KEY))
    assert list((tmp_path / "new").iterdir()) == []
    assert [p.name for p in (tmp_path / "cur").iterdir()] == [f"{KEY}:2,S"]


def test_a_crash_between_the_tmp_write_and_the_link_is_repaired_by_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliverer = MaildirDeliverer(tmp_path)

    class Crash(BaseException):
        """Stands for the process dying: nothing after it runs (not even ``except OSError``)."""

    def crash(*_: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(os, "link", crash)
        with pytest.raises(Crash):
            run(lambda: deliverer.deliver(b"half " + MAIL, key=KEY))
    # What the crash left is only visible in tmp/, which Maildir readers never look at.
    assert list((tmp_path / "new").iterdir()) == []
    (tmp_path / "tmp" / KEY).write_bytes(b"half-written junk")  # the worst case: a torn file

    run(lambda: deliverer.deliver(MAIL, key=KEY))
    assert (tmp_path / "new" / KEY).read_bytes() == MAIL
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_crash_between_the_link_and_the_cleanup_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    """Found by the crash soak: killed after ``link(tmp, new)``, before ``unlink(tmp)``; the replay cleans up."""
    deliverer = MaildirDeliverer(tmp_path)
    run(lambda: deliverer.deliver(MAIL, key="warm-up"))  # the Maildir exists
    (tmp_path / "tmp" / KEY).write_bytes(MAIL)
    os.link(tmp_path / "tmp" / KEY, tmp_path / "new" / KEY)  # the state the kill left

    run(lambda: deliverer.deliver(MAIL, key=KEY))
    assert (tmp_path / "new" / KEY).read_bytes() == MAIL
    assert list((tmp_path / "tmp").iterdir()) == []


def test_disk_trouble_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    with pytest.raises(TransientError, match="cannot write to the DMS Maildir"):
        run(lambda: MaildirDeliverer(blocker / "dms").deliver(MAIL, key=KEY))


def test_a_key_that_is_not_a_file_name_is_a_bug(tmp_path: Path) -> None:
    for key in ("../escape", "a/b", "", ".hidden", "x:2,S"):
        with pytest.raises(ValueError, match="not a plain file name"):
            run(lambda key=key: MaildirDeliverer(tmp_path).deliver(MAIL, key=key))  # type: ignore[misc]


# --------------------------------------------------------------------------- SMTP


def smtp(sink: SmtpSink | SilentServer, *recipients: str, lmtp: bool = False, timeout: float = 5.0) -> SmtpDeliverer:
    return SmtpDeliverer(
        sink.host,
        sink.port,
        recipients or ("dms@example.gov.vn",),
        "gateway@example.gov.vn",
        lmtp=lmtp,
        timeout=timeout,
    )


@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
def test_delivers_with_x_gateway_id_once(lmtp: bool) -> None:
    async def go() -> SmtpSink:
        async with SmtpSink(lmtp=lmtp) as sink:
            deliverer = smtp(sink, "a@dms.test", "b@dms.test", lmtp=lmtp)
            await deliverer.deliver(MAIL, key=KEY)
            # The pipeline may have put the header there already: it is not added twice.
            await deliverer.deliver(f"X-Gateway-Id: {KEY}\r\n".encode() + MAIL, key=KEY)
            return sink

    sink = run(go)
    assert len(sink.messages) == 2
    for captured in sink.messages:
        assert captured.mail_from == "gateway@example.gov.vn"
        assert captured.rcpt_to == ("a@dms.test", "b@dms.test")
        # The original bytes arrive untouched (dot-stuffing undone, 8-bit intact) after our header.
        assert captured.data == f"X-Gateway-Id: {KEY}\r\n".encode() + MAIL


@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
@pytest.mark.parametrize(
    ("script", "error", "text"),
    [
        ({"mail": ["451 4.3.0 try later"]}, TransientError, "451 4.3.0 try later"),
        ({"mail": ["553 5.7.1 sender refused"]}, PermanentError, "553 5.7.1"),
        ({"rcpt": ["450 4.2.0 mailbox busy"]}, TransientError, "450 4.2.0"),
        ({"rcpt": ["550 5.1.1 no such user"]}, PermanentError, "a@dms.test: 550 5.1.1 no such user"),
        ({"data": ["452 4.3.1 disk full"]}, TransientError, "452 4.3.1"),
        ({"data": ["554 5.6.0 content refused"]}, PermanentError, "554 5.6.0"),
    ],
)
def test_replies_map_to_transient_or_permanent(
    lmtp: bool, script: dict[str, list[str]], error: type[Exception], text: str
) -> None:
    async def go() -> SmtpSink:
        sink = SmtpSink(lmtp=lmtp)
        sink.script(**script)
        async with sink:
            with pytest.raises(error, match=text):
                await smtp(sink, "a@dms.test", lmtp=lmtp).deliver(MAIL, key=KEY)
            return sink

    assert run(go).messages == []


@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
@pytest.mark.parametrize(
    ("replies", "error"),
    [(["250 ok", "550 5.1.1 unknown"], PermanentError), (["450 4.2.1 later", "550 5.1.1 unknown"], TransientError)],
)
def test_all_recipients_or_none(lmtp: bool, replies: list[str], error: type[Exception]) -> None:
    async def go() -> SmtpSink:
        async with SmtpSink(lmtp=lmtp, rcpt=replies) as sink:
            with pytest.raises(error):
                await smtp(sink, "a@dms.test", "b@dms.test", lmtp=lmtp).deliver(MAIL, key=KEY)
            return sink

    sink = run(go)
    assert sink.messages == []  # one refusal: the envelope was reset before DATA
    assert sink.data_commands == 0


@pytest.mark.parametrize(
    ("replies", "error", "text"),
    [
        (["250 2.0.0 ok", "452 4.2.2 over quota"], TransientError, r"delivered to a@dms\.test\).*b@dms\.test: 452"),
        (["250 2.0.0 ok", "550 5.2.1 disabled"], PermanentError, r"b@dms\.test: 550 5\.2\.1"),
        (["450 4.2.0 later", "550 5.2.1 disabled"], TransientError, r"delivered to nobody"),
    ],
)
def test_lmtp_counts_each_recipients_reply_after_data(replies: list[str], error: type[Exception], text: str) -> None:
    async def go() -> SmtpSink:
        async with SmtpSink(lmtp=True, data=replies) as sink:
            with pytest.raises(error, match=text):
                await smtp(sink, "a@dms.test", "b@dms.test", lmtp=True).deliver(MAIL, key=KEY)
            return sink

    sink = run(go)
    delivered = [r for r, reply in zip(("a@dms.test", "b@dms.test"), replies, strict=True) if reply.startswith("2")]
    assert [m.rcpt_to for m in sink.messages] == ([tuple(delivered)] if delivered else [])


@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
def test_network_failures_are_transient(lmtp: bool) -> None:
    refused = SmtpDeliverer("127.0.0.1", free_port(), ["dms@x.test"], lmtp=lmtp, timeout=2)
    with pytest.raises(TransientError):
        run(lambda: refused.deliver(MAIL, key=KEY))

    async def silent() -> float:
        async with SilentServer() as server:
            start = time.monotonic()
            with pytest.raises(TransientError):
                await smtp(server, lmtp=lmtp, timeout=0.3).deliver(MAIL, key=KEY)
            return time.monotonic() - start

    assert run(silent) < 3  # the deadline held: no waiting on a server that never speaks

    async def hangs() -> SmtpSink:
        async with SmtpSink(lmtp=lmtp, hang="DATA") as sink:
            with pytest.raises(TransientError):
                await smtp(sink, lmtp=lmtp, timeout=0.3).deliver(MAIL, key=KEY)
            return sink

    assert run(hangs).data_commands == 1  # the mail reached the server: at least once, not exactly once


def test_addresses_that_cannot_go_on_the_wire_are_refused_at_construction() -> None:
    for bad in ("a@b.test\r\nRCPT TO:<evil@x>", "<a@b.test>", "người@b.test", "a b@c.test"):
        with pytest.raises(ValueError, match="cannot be sent over SMTP"):
            SmtpDeliverer("127.0.0.1", 25, [bad])
    with pytest.raises(ValueError, match="at least one recipient"):
        SmtpDeliverer("127.0.0.1", 25, [])


# --------------------------------------------------------------------------- from settings


def test_deliverer_from_settings(tmp_path: Path) -> None:
    maildir = deliverer_from(DmsSettings(target="maildir:var/dms"), tmp_path)
    assert isinstance(maildir, MaildirDeliverer)
    assert maildir.path == tmp_path / "var" / "dms"
    absolute = deliverer_from(DmsSettings(target=f"maildir:{tmp_path}/abs"), Path("/elsewhere"))
    assert isinstance(absolute, MaildirDeliverer)
    assert absolute.path == tmp_path / "abs"

    smtp_target = deliverer_from(DmsSettings(target="smtp://dms.local:2525", recipients=("v@x.test",)), tmp_path)
    assert isinstance(smtp_target, SmtpDeliverer)
    assert (smtp_target.host, smtp_target.port, smtp_target.lmtp) == ("dms.local", 2525, False)
    lmtp_target = deliverer_from(
        DmsSettings(target="lmtp://[::1]", recipients=("v@x.test",)), tmp_path, mail_from="gw@x.test"
    )
    assert isinstance(lmtp_target, SmtpDeliverer)
    assert (lmtp_target.host, lmtp_target.port, lmtp_target.lmtp, lmtp_target.mail_from) == (
        "::1",
        24,
        True,
        "gw@x.test",
    )


@pytest.mark.parametrize(
    ("target", "recipients", "text"),
    [
        ("http://dms.local", ("v@x.test",), "unknown kind of target"),
        ("maildir:", (), "names no Maildir path"),
        ("smtp://dms.local:port", ("v@x.test",), "port is not a number"),
        ("smtp://dms.local:25/inbox", ("v@x.test",), r"expected smtp://host:port"),
        ("lmtp://dms.local:24", (), "needs the DMS mailbox"),
        ("smtp://dms.local:25", ("not an address",), "cannot be sent over SMTP"),
    ],
)
def test_bad_targets_are_config_errors(target: str, recipients: tuple[str, ...], text: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=text):
        deliverer_from(DmsSettings(target=target, recipients=recipients), tmp_path)
