"""Finding the package in a spooled mail file without reading the mail into memory (issue 7, P4).

``find_package_in`` runs ``gateway.pipeline.mails``' lean MIME reader over the file itself
(``_MailFile`` reads only where the reader looks: header blocks, boundary searches in 1 MiB
pieces) and, for the one edXML part, hands back not its bytes but a ``Streamed`` source that
decodes the part from the file each time it is read: the verifier reads it twice (scan, then
filter: ``gateway.edxml.lean``), in pieces, so neither the 91 MB mail nor the 67 MB package is
ever one object in memory.

Only what decodes piece by piece exactly as the whole would is streamed: a ``7bit``, ``8bit``
or ``binary`` part, or a ``base64`` part that is base64 letters and line breaks with padding
only at its end (every mail client's and our own). Anything else (quoted-printable, stray
characters in base64, MIME the lean reader leaves to the ``email`` package) is read as before:
the whole mail, ``find_package``; so is a mail with several edXML parts (refused, but its
parts were always all decoded to be counted). The outcome is the same either way: the same candidates,
filename, subject, Message-ID, sender and problem.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from email.message import Message
from typing import BinaryIO, Final

from gateway.edxml.lean import Streamed
from gateway.pipeline.codes import MAIL_NO_PACKAGE
from gateway.pipeline.mails import LEAN_FAILURES, FoundPackage, find_package, lean_parts, mail_meta

__all__ = ["find_package_in"]

_PIECE: Final = 1024 * 1024
_WHITESPACE: Final = b" \t\r\n"
_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PLAIN: Final = frozenset({"7bit", "8bit", "binary"})


class _MailFile:
    """A mail file read where it is looked at (``mails.MailBytes``)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._size = file.seek(0, 2)

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, where: slice, /) -> bytes:
        start, stop, _ = where.indices(self._size)
        if stop <= start:
            return b""
        self._file.seek(start)
        return self._file.read(stop - start)

    def find(self, sub: bytes, start: int, end: int, /) -> int:
        at = max(start, 0)
        end = min(end, self._size)
        while at < end:
            piece = self[at : min(end, at + _PIECE + len(sub) - 1)]
            found = piece.find(sub)
            if found >= 0:
                return at + found
            if at + len(piece) >= end:
                return -1
            at += _PIECE
        return -1

    def startswith(self, prefix: bytes, start: int, end: int, /) -> bool:
        return start + len(prefix) <= min(end, self._size) and self[start : start + len(prefix)] == prefix

    def pieces(self, start: int, end: int) -> Iterator[bytes]:
        """``[start, end)`` in pieces of 1 MiB."""
        at = start
        while at < end:
            piece = self[at : min(end, at + _PIECE)]
            if not piece:
                raise OSError(f"the mail file ended at {at}, before {end}")
            at += len(piece)
            yield piece


def _plain_base64(mail: _MailFile, start: int, end: int) -> bool:
    """Whether the part is base64 letters and white space, with its padding at the very end."""
    letters = pads = 0
    for piece in mail.pieces(start, end):
        text = piece.translate(None, _WHITESPACE)
        core = text.rstrip(b"=")
        if core.translate(None, _ALPHABET) or (pads and text):
            return False  # a stray character, or letters after the padding
        letters += len(core)
        pads += len(text) - len(core)
    return pads <= 2 and (letters + pads) % 4 == 0 and (pads == 0 or letters % 4 == 4 - pads)


def _decoded_pieces(mail: _MailFile, start: int, end: int) -> Iterator[bytes]:
    """A base64 part checked by ``_plain_base64``, decoded piece by piece."""
    carry = b""
    for piece in mail.pieces(start, end):
        text = carry + piece.translate(None, _WHITESPACE)
        whole = len(text) // 4 * 4
        if whole:
            yield binascii.a2b_base64(memoryview(text)[:whole])
        carry = text[whole:]
    if carry:
        yield binascii.a2b_base64(carry)


def find_package_in(file: BinaryIO) -> FoundPackage:
    """``find_package`` for a mail in a file, leaving the package in the file (blocking I/O).

    Args:
        file: the spooled mail, opened for reading (``Spool.open``); it must stay open while
            the returned ``source`` is read, and nothing else may move its position meanwhile.

    Returns:
        What ``find_package`` returns for the file's bytes, except that a package that can be
        streamed comes as ``source`` (``package`` is then ``None``).

    Raises:
        OSError: the file cannot be read.
    """
    mail = _MailFile(file)
    try:
        message, parts = lean_parts(mail)
    except LEAN_FAILURES:
        parts = None
    if parts is None or len(parts) > 1 or (parts and not _streamable(mail, *parts[0])):
        file.seek(0)
        return find_package(file.read())  # as ever, in memory
    meta = mail_meta(message)
    if not parts:
        return FoundPackage(None, None, MAIL_NO_PACKAGE("mail"), **meta)
    head, start, end = parts[0]
    base64 = _encoding(head) == "base64"

    def pieces() -> Iterator[bytes]:
        return _decoded_pieces(mail, start, end) if base64 else mail.pieces(start, end)

    return FoundPackage(None, head.get_filename(), None, **meta, source=Streamed(pieces))


def _encoding(head: Message) -> str:
    return str(head.get("Content-Transfer-Encoding", "7bit")).strip().lower()


def _streamable(mail: _MailFile, head: Message, start: int, end: int) -> bool:
    encoding = _encoding(head)
    return encoding in _PLAIN or (encoding == "base64" and _plain_base64(mail, start, end))
