"""Streamed DATA to the DMS: the bytes aiosmtplib would send, in pieces, in constant memory.

The encoding is checked against aiosmtplib's own (``normalize_message_line_endings`` and its
dot-stuffing regex) for every cut of tricky mails; deliveries go to real aiosmtpd sinks (which
undo the dot-stuffing) with 7-byte pieces, so dots, CRs and LFs fall on piece boundaries; the
memory test delivers 40 MB to a sink in another process and measures this one's allocations.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import tracemalloc
from pathlib import Path

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

import gateway.smtpclient
from gateway.errors import PermanentError, TransientError
from gateway.inbound.deliver import SmtpDeliverer
from gateway.pipeline.ports import SpooledMail
from gateway.smtpclient import DataPieces, Outgoing, Stuffer
from tests.outbound.farsink import FarSink
from tests.smtpsink import SmtpSink

KEY = "17-0123456789abcdef"
ID = f"X-Gateway-Id: {KEY}\r\n".encode()
PIECE = 7
MB = 1024 * 1024


def on_the_wire(mail: bytes) -> bytes:
    """What aiosmtplib's ``SMTP.data`` sends for ``mail`` after DATA (the oracle)."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(mail)) + b".\r\n"


def stuffed(mail: bytes, size: int) -> bytes:
    stuffer = Stuffer()
    return b"".join(stuffer.feed(mail[i : i + size]) for i in range(0, len(mail), size)) + stuffer.end()


TRICKY = [
    b"",
    b".",
    b"\r",
    b"\n",
    b".\r\n",
    b"..\r\n",
    b"a\r\n.\r\n.b\r\n..c\r\n",
    b"no line end at the end",
    b"ends with a dot line without its line end\r\n.",
    b"bare\nlf\n.dot after a bare lf\n",
    b"bare\rcr\r.dot after a bare cr\r",
    b"\r\r\n\n\r.\r\n\r",
    b"\xc4\x90\xc3\xa3\r\n.\xff\r\n",
]


@pytest.mark.parametrize("mail", TRICKY)
def test_every_cut_gives_what_aiosmtplib_sends(mail: bytes) -> None:
    for size in range(1, len(mail) + 2):
        assert stuffed(mail, size) == on_the_wire(mail), f"pieces of {size}"


def test_random_mails_cut_at_random_give_what_aiosmtplib_sends() -> None:
    rng = random.Random(5321)  # noqa: S311 - test cases, not secrets
    for _ in range(2000):
        mail = bytes(rng.choice(b"\r\n.a") for _ in range(rng.randrange(0, 40)))
        stuffer = Stuffer()
        out, at = [], 0
        while at < len(mail):
            step = rng.randrange(1, 6)
            out.append(stuffer.feed(mail[at : at + step]))
            at += step
        assert b"".join(out) + stuffer.end() == on_the_wire(mail), mail


def awkward_mail() -> bytes:
    """A mail whose dots, CRs and LFs fall on 7-byte piece boundaries (asserted, not hoped)."""
    mail = bytearray(b"From: a@example.gov.vn\r\nTo: dms@example.gov.vn\r\nSubject: streamed\r\n\r\n")

    def pad_until(remainder: int, end: bytes = b"\r\n") -> None:
        """A filler line such that the next byte after it sits at ``remainder`` modulo PIECE."""
        mail.extend(b"x" * ((remainder - len(mail) - len(end)) % PIECE) + end)

    pad_until(0)
    dot_at_piece_start = len(mail)
    mail.extend(b".a dot that starts a line and a piece\r\n")
    pad_until(PIECE - 1, b"")
    cr_at_piece_end = len(mail)
    mail.extend(b"\r\n.a dot after a CRLF cut in two\r\n..two dots\r\n.\r\n")
    pad_until(0)
    lone_dot_at_piece_start = len(mail)
    mail.extend(b".\r\nbare LF\n.a dot after a bare LF\n")
    pad_until(PIECE - 1, b"")
    mid_line_dot_at_piece_start = len(mail) + 1
    mail.extend(b"x.a dot in the middle of a line, first in its piece\r\n")
    mail.extend("Đã đến\r\n".encode())
    mail.extend(b"the last line has no line end")
    at = (dot_at_piece_start, cr_at_piece_end, lone_dot_at_piece_start, mid_line_dot_at_piece_start)
    assert [a % PIECE for a in at] == [0, PIECE - 1, 0, 0]
    assert mail[dot_at_piece_start - 2 : dot_at_piece_start + 1] == b"\r\n."
    assert mail[cr_at_piece_end : cr_at_piece_end + 3] == b"\r\n."
    assert mail[lone_dot_at_piece_start - 2 :].startswith(b"\r\n.\r\n")
    assert mail[mid_line_dot_at_piece_start - 1 : mid_line_dot_at_piece_start + 1] == b"x."
    return bytes(mail)


def deliverer(sink: SmtpSink | FarSink, *recipients: str, lmtp: bool, timeout: float = 5.0) -> SmtpDeliverer:
    return SmtpDeliverer(
        sink.host, sink.port, recipients or ("dms@example.gov.vn",), "gw@x.test", lmtp=lmtp, timeout=timeout
    )


def test_parts_in_memory_then_a_file_give_one_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers we add, the spooled head, the file: cut anywhere, the payload is the whole mail's."""
    monkeypatch.setattr(gateway.smtpclient, "CHUNK", PIECE)
    mail = awkward_mail()

    async def payload(outgoing: Outgoing) -> bytes:
        pieces, out = DataPieces(outgoing), []
        while piece := await pieces.read():
            out.append(piece)
        assert pieces.done
        return b"".join(out)

    async def every_cut() -> None:
        for first in range(0, 3 * PIECE):
            for second in range(first, first + 2 * PIECE):
                parts = (mail[:first], b"", mail[first:second])
                assert await payload(Outgoing(parts, io.BytesIO(mail[second:]))) == on_the_wire(mail)
                assert await payload(Outgoing((*parts, mail[second:]))) == on_the_wire(mail)

    asyncio.run(every_cut())


@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
@pytest.mark.parametrize(
    "where",
    [
        (b"X-Gateway-Verdict: accepted\r\n" + ID, b"", b""),  # what the pipeline hands over
        (b"", ID, b""),  # the header is in the file already: not added twice
        (b"X-Gateway-Verdict: accepted\r\n", b"", ID),  # missing: prepended
    ],
    ids=["in-head", "in-file", "added"],
)
def test_a_spooled_mail_arrives_byte_for_byte_in_7_byte_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lmtp: bool, where: tuple[bytes, bytes, bytes]
) -> None:
    head, file_head, added = where  # the spooled mail's head, the file's first line, what we add
    monkeypatch.setattr(gateway.smtpclient, "CHUNK", PIECE)
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(file_head + awkward_mail())

    async def go() -> SmtpSink:
        async with SmtpSink(lmtp=lmtp) as sink:
            with spooled.open("rb") as file:
                await deliverer(sink, "a@dms.test", lmtp=lmtp).deliver(SpooledMail(head, file), key=KEY)
            return sink

    [captured] = asyncio.run(go()).messages
    # The sink undoes the dot-stuffing; what it keeps is the mail as SMTP carries it: bare line
    # ends as CRLF and a last line end added (exactly what aiosmtplib's data() made of it).
    assert captured.data == normalize_message_line_endings(added + head + file_head + awkward_mail())
    assert captured.data.endswith(b"\r\nthe last line has no line end\r\n")


def test_the_payload_in_pieces_is_what_aiosmtplib_sends_for_the_whole_mail() -> None:
    mail = awkward_mail()
    assert stuffed(mail, PIECE) == on_the_wire(mail)
    assert stuffed(mail, 64 * 1024) == on_the_wire(mail)


@pytest.mark.parametrize(
    "case",
    [
        (["250 ok", "550 5.1.1 unknown"], [], PermanentError, r"RCPT: b@dms\.test: 550", []),
        (["250 ok", "450 4.2.1 later"], [], TransientError, r"RCPT: b@dms\.test: 450", []),
        (
            [],
            ["250 2.0.0 ok", "550 5.2.1 disabled"],
            PermanentError,
            r"delivered to a@dms\.test\).*b@dms\.test: 550",
            ["a"],
        ),
        ([], ["250 2.0.0 ok", "452 4.2.2 over quota"], TransientError, r"delivered to a@dms\.test\).*: 452", ["a"]),
        ([], ["450 4.2.0 later", "550 5.2.1 disabled"], TransientError, r"delivered to nobody", []),
    ],
)
def test_lmtp_two_recipients_one_refused_is_classified_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[list[str], list[str], type[Exception], str, list[str]]
) -> None:
    rcpt, data, error, text, delivered = case  # scripted RCPT and DATA replies; what follows
    monkeypatch.setattr(gateway.smtpclient, "CHUNK", PIECE)
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(awkward_mail())

    async def go() -> SmtpSink:
        async with SmtpSink(lmtp=True, rcpt=rcpt, data=data) as sink:
            with spooled.open("rb") as file, pytest.raises(error, match=text):
                await deliverer(sink, "a@dms.test", "b@dms.test", lmtp=True).deliver(SpooledMail(ID, file), key=KEY)
            return sink

    sink = asyncio.run(go())
    assert [m.rcpt_to for m in sink.messages] == ([tuple(f"{r}@dms.test" for r in delivered)] if delivered else [])
    assert sink.data_commands == (1 if data else 0)  # a refused RCPT: reset, no DATA at all
    for captured in sink.messages:
        assert captured.data == normalize_message_line_endings(ID + awkward_mail())


def write_big(path: Path, size: int) -> None:
    """About ``size`` bytes (a whole number of MiB) of base64-looking lines, a dot line now and then."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    lines = []
    for number in range(MB // 78):
        line = bytes(rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(76))
        lines.append((b"." + line[1:] if number % 97 == 0 else line) + b"\r\n")
    block = b"".join(lines)
    with path.open("wb") as out:
        out.write(b"From: a@example.gov.vn\r\nSubject: big\r\n\r\n")
        for _ in range(size // MB):
            out.write(block)


@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
def test_a_40_mb_mail_is_delivered_in_constant_memory(tmp_path: Path, lmtp: bool) -> None:
    spooled = tmp_path / "big.eml"
    write_big(spooled, 40 * MB)
    expected = hashlib.sha256(ID)
    with spooled.open("rb") as file:
        expected.update(file.read())
    size = len(ID) + spooled.stat().st_size
    assert size > 40 * 1000 * 1000

    with FarSink(lmtp=lmtp) as sink, spooled.open("rb") as file:
        job = deliverer(sink, "a@dms.test", lmtp=lmtp, timeout=30).deliver(SpooledMail(ID, file), key=KEY)
        tracemalloc.start()
        try:
            asyncio.run(job)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert sink.received() == (expected.hexdigest(), size)  # every byte arrived, in order
    assert peak < 10 * MB, f"peak Python allocations {peak / MB:.1f} MiB for a {size / MB:.1f} MiB mail"
