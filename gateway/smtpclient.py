"""Sending a mail's DATA in pieces: what the two mail edges' SMTP/LMTP clients share.

``gateway.inbound`` (delivery to the DMS) and ``gateway.outbound`` (sending to the axis) are
independent siblings in the layer contract, so what both clients need lives here, below them
(as ``gateway.smtpserver`` does for the listeners).

aiosmtplib's ``SMTP.data`` takes the whole mail as bytes, makes three more copies of it (line
ends, dot-stuffing, the final dot) and writes them at once, without flow control: delivering a
spooled 40 MB mail that way allocated 227 MB (tracemalloc's peak). Here the mail is read in
pieces of ``CHUNK`` bytes (the spool file in a worker thread: HOUSE.md rule 4), each piece
encoded and written, and each write waits for the transport's buffer to drain, so memory stays
at a few pieces whatever the mail's size.

Invariants of the DATA payload (RFC 5321 §4.5.2, §2.3.8), whatever the piece size:

* CRLF line ends go out as they are stored; a bare CR or a bare LF goes out as CRLF, as
  aiosmtplib sends it (a bare ``LF . LF`` must never reach a server that would end the data
  there: SMTP smuggling). A CR at the end of one piece and an LF at the start of the next are
  one line end;
* a dot that starts a line is doubled: the first line, and a line whose dot is the first byte
  of a piece, too;
* the payload ends with ``CRLF . CRLF``: a mail that does not end with a line end gets one;
* the bytes on the wire are exactly those aiosmtplib's ``SMTP.data`` sends for the same mail.

aiosmtplib has no streaming DATA: ``send_data`` uses its public ``execute_command`` and its
protocol's ``write`` and ``read_response``, plus ``_drain_helper``, the flow-control hook of the
stdlib's ``FlowControlMixin`` that its protocol copies (what ``StreamWriter.drain`` awaits). An
upgrade that drops it fails loudly (AttributeError); one that breaks it fails the test with a
server that stops reading (the unread mail must stay in its file, not in the transport buffer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from gateway.pipeline.ports import SpooledMail

__all__ = ["CHUNK", "SECONDS_PER_MEGABYTE", "DataPieces", "Outgoing", "Stuffer", "Survey", "send_data"]

CHUNK = 64 * 1024
"""Bytes read, encoded and written at a time."""
SECONDS_PER_MEGABYTE = 1.0
"""The DATA deadline grows with the mail: a slow link needs time to carry 64 MB."""
_SURVEY_PIECE = 1024 * 1024


class Stuffer:
    """The DATA encoding (see the module's invariants) of a mail fed in pieces cut anywhere."""

    def __init__(self) -> None:
        self._cr = False  # the last piece ended with a CR, held back: the next byte says if CRLF follows
        self._line_start = True  # the next byte starts a line
        self._fed = False  # something went out (an empty mail still gets a line end, as in aiosmtplib)

    def feed(self, piece: bytes) -> bytes:
        """The encoded form of the next piece of the mail (possibly empty)."""
        if self._cr:
            piece = b"\r" + piece
        self._cr = piece.endswith(b"\r")
        if self._cr:
            piece = piece[:-1]
        if not piece:
            return b""
        crlf = piece.count(b"\r\n")
        if not piece.count(b"\r") == piece.count(b"\n") == crlf:  # a bare CR or LF: rare, so checked first
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        piece = piece.replace(b"\n.", b"\n..")
        if self._line_start and piece.startswith(b"."):
            piece = b"." + piece
        self._line_start = piece.endswith(b"\n")
        self._fed = True
        return piece

    def end(self) -> bytes:
        """The rest: a held-back or missing line end, then the end-of-data line."""
        pending = self._cr or not (self._fed and self._line_start)
        return (b"\r\n" if pending else b"") + b".\r\n"


@dataclass(frozen=True)
class Survey:
    """What the envelope needs to know about a mail before its data goes out."""

    size: int
    """The mail's length in bytes (as stored: before line-end fixes and dot-stuffing)."""
    eight_bit: bool
    """Whether any byte is over 0x7F."""

    def data_seconds(self, step: float) -> float:
        """The DATA deadline: ``step`` (the deadline of any other step) and more for a big mail."""
        return step + SECONDS_PER_MEGABYTE * self.size / 1e6

    def options(self, extensions: Iterable[str]) -> list[str]:
        """MAIL FROM options: ``SIZE`` when the server declares it; ``BODY=8BITMIME`` when needed and declared."""
        declared = {e.lower() for e in extensions}
        options = [f"SIZE={self.size}"] if "size" in declared else []
        if self.eight_bit and "8bitmime" in declared:
            options.append("BODY=8BITMIME")
        return options


@dataclass(frozen=True)
class Outgoing:
    """A mail to send: ``parts`` (bytes already in memory), then ``file`` from where it stands to its end."""

    parts: tuple[bytes, ...]
    file: BinaryIO | None = None

    @classmethod
    def of(cls, mail: bytes | SpooledMail, *front: bytes) -> Outgoing:
        """``front`` (e.g. headers we add), then ``mail``: a spooled one's head and file, never read whole."""
        if isinstance(mail, SpooledMail):
            return cls((*front, mail.head), mail.file)
        return cls((*front, mail))

    def survey(self) -> Survey:
        """Size and 8-bit content, reading the file once in pieces and leaving it where it was.

        Blocking (the file): call it in a worker thread.

        Raises:
            OSError: the file cannot be read.
        """
        size = sum(len(p) for p in self.parts)
        eight_bit = not all(p.isascii() for p in self.parts)
        if self.file is not None:
            start = self.file.tell()
            try:
                while piece := self.file.read(_SURVEY_PIECE):
                    size += len(piece)
                    eight_bit = eight_bit or not piece.isascii()
            finally:
                self.file.seek(start)
        return Survey(size, eight_bit)


class DataPieces:
    """The DATA payload of an ``Outgoing``, one encoded piece at a time (``read``)."""

    def __init__(self, mail: Outgoing) -> None:
        self._parts = list(mail.parts)
        self._file = mail.file
        self._offset = 0
        self._stuffer = Stuffer()
        self.done = False
        """Whether the end-of-data line has been handed out."""

    async def read(self) -> bytes:
        """The next encoded piece, the last one ending with ``CRLF . CRLF``; ``b""`` after that.

        Raises:
            OSError: the file cannot be read.
        """
        if self.done:
            return b""
        while self._parts:  # bytes in memory: no disk to wait for, but others get their turn
            await asyncio.sleep(0)
            if encoded := self._stuffer.feed(self._from_parts()):
                return encoded
        if self._file is None:
            return self._from_file()
        return await asyncio.to_thread(self._from_file)

    def _from_parts(self) -> bytes:
        """The next piece of ``parts`` as stored."""
        part = self._parts[0]
        piece = part[self._offset : self._offset + CHUNK]
        self._offset += len(piece)
        if self._offset >= len(part):
            self._parts.pop(0)
            self._offset = 0
        return piece

    def _from_file(self) -> bytes:
        """The next encoded piece of the file; the end of the payload after its last byte (blocking)."""
        while self._file is not None and (raw := self._file.read(CHUNK)):
            if encoded := self._stuffer.feed(raw):
                return encoded
        self.done = True
        return self._stuffer.end()


async def send_data(client: aiosmtplib.SMTP, mail: Outgoing, *, seconds: float) -> aiosmtplib.SMTPResponse:
    """What ``client.data(mail)`` does, in constant memory: DATA, the mail in pieces, the reply.

    The reply is awaited from before the first byte goes out: a server that answers early (552
    too big) and hangs up is heard, not taken for a lost connection.

    Args:
        client: connected, the envelope (MAIL, RCPT) accepted.
        mail: what to send.
        seconds: allowed for the 354 reply, then for the whole body and the final reply.

    Returns:
        The server's final reply (250).

    Raises:
        SMTPDataError: DATA not answered 354, the end not answered 250, or a reply before the end.
        SMTPServerDisconnected: the connection was lost.
        SMTPTimeoutError: no reply, or the body not taken, within ``seconds``.
        OSError: the mail's file cannot be read.

    Any error but a refusal at the end leaves the session unusable: the client is closed.
    """
    if client.protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    start = await client.execute_command(b"DATA", timeout=seconds)
    if start.code != aiosmtplib.SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = client.protocol
    if protocol is None:  # a 421 closes the client
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    try:
        return await _body(protocol, DataPieces(mail), seconds)
    except aiosmtplib.SMTPDataError:
        raise
    except BaseException:
        client.close()
        raise


async def _body(protocol: SMTPProtocol, pieces: DataPieces, seconds: float) -> aiosmtplib.SMTPResponse:
    reply = asyncio.ensure_future(protocol.read_response(timeout=seconds))
    await asyncio.sleep(0)  # the reader is waiting before a byte goes out: nothing it should hear is dropped
    try:
        async with asyncio.timeout(seconds):
            while not reply.done() and (piece := await pieces.read()):
                protocol.write(piece)
                await protocol._drain_helper()  # flow control: at most a transport buffer in flight
    except ConnectionError:
        if not _answered(reply):  # hung up without a word; with one (552 and close), the reply counts
            _abandon(reply)
            raise
    except TimeoutError as exc:
        _abandon(reply)
        raise aiosmtplib.SMTPTimeoutError("Timed out sending the data") from exc
    except BaseException:
        _abandon(reply)
        raise
    response = await reply
    if not pieces.done:
        raise aiosmtplib.SMTPDataError(response.code, f"{response.message} (before the end of the data)")
    if response.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response


def _answered(reply: asyncio.Future[aiosmtplib.SMTPResponse]) -> bool:
    return reply.done() and not reply.cancelled() and reply.exception() is None


def _abandon(reply: asyncio.Future[aiosmtplib.SMTPResponse]) -> None:
    """Stop waiting for a reply nobody will read; its error, if any, counts as seen.

    A cancelled read may still end with an error (``wait_for`` prefers a result that came in
    before the cancellation), hence the callback rather than a look now.
    """
    reply.cancel()
    reply.add_done_callback(_seen)


def _seen(reply: asyncio.Future[aiosmtplib.SMTPResponse]) -> None:
    if not reply.cancelled():
        reply.exception()
