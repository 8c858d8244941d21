"""``find_package_in``: the package found in the spooled file, streamed, as ``find_package`` finds it.

Each mail is read both ways: ``find_package`` on its bytes and ``find_package_in`` on the file.
Every field agrees; the package comes as pieces (never whole) when its part can be decoded
piece by piece exactly as whole, and as bytes through the old path otherwise.
"""

from __future__ import annotations

import base64
import io
import os

import pytest

from gateway.pipeline.mailfile import find_package_in
from gateway.pipeline.mails import FoundPackage, find_package
from tests.pipeline.test_mails_lean import _XML, _mail, _two_packages

_BIG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="urn:x">'
    + base64.b64encode(os.urandom(3_000_000))
    + b"</edXML>"
)


_PADDED = next(_XML + b"x" * n for n in range(3) if len(_XML + b"x" * n) % 3)
"""A package whose base64 ends in padding."""


def _single(package: bytes, encoding: str, body: bytes) -> bytes:
    return (
        b"From: a@b.vn\r\nSubject: one\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
        b'--b1\r\nContent-Type: application/xml\r\nContent-Disposition: attachment; filename="g.edxml"\r\n'
        b"Content-Transfer-Encoding: " + encoding.encode() + b"\r\n\r\n" + body + b"\r\n--b1--\r\n"
    )


def _wrapped(data: bytes, eol: bytes = b"\r\n") -> bytes:
    return base64.encodebytes(data).replace(b"\n", eol)


def _both(mail: bytes) -> tuple[FoundPackage, FoundPackage, bytes | None]:
    found = find_package_in(io.BytesIO(mail))
    package = found.package if found.source is None else b"".join(found.source.pieces())
    return find_package(mail), found, package


STREAMED = {
    "compose": _mail(),
    "big": _mail(_BIG),
    "wrapped-lf": _single(_BIG, "base64", _wrapped(_BIG, b"\n")),
    "one-line": _single(_XML, "base64", base64.b64encode(_XML)),
    "padded": _single(_PADDED, "base64", _wrapped(_PADDED)),
    "7bit": _single(_XML, "7bit", _XML),
    "8bit": _single(_XML, "8BIT", _XML),
    "body-is-package": b"Subject: bare body\r\n\r\n" + _XML,
}
IN_MEMORY = {
    "quoted-printable": _single(_XML, "quoted-printable", _XML.replace(b"=", b"=3D")),
    "stray-character": _single(_XML, "base64", _wrapped(_XML)[:200] + b"*" + _wrapped(_XML)[200:]),
    "after-padding": _single(_PADDED, "base64", _wrapped(_PADDED) + b"QUFB\r\n"),
    "two-packages": _two_packages(),
    "unclosed": _mail()[: _mail().rindex(b"--") - 1],
}
NONE = {
    "no-package": _mail(b"not a package"),
    "plain": b"Subject: nothing\r\n\r\nplain text\r\n",
}


def test_the_padded_cases_are_padded() -> None:
    assert _wrapped(_PADDED).rstrip().endswith(b"=")


@pytest.mark.parametrize("mail", STREAMED.values(), ids=STREAMED.keys())
def test_a_streamable_part_comes_as_pieces_equal_to_the_bytes(mail: bytes) -> None:
    expected, found, package = _both(mail)
    assert found.source is not None
    assert found.package is None
    assert package == expected.package is not None
    assert (found.filename, found.problem, found.subject, found.message_id, found.sender) == (
        expected.filename,
        expected.problem,
        expected.subject,
        expected.message_id,
        expected.sender,
    )
    assert b"".join(found.source.pieces()) == package  # read again: the same bytes


@pytest.mark.parametrize("mail", [*IN_MEMORY.values(), *NONE.values()], ids=[*IN_MEMORY, *NONE])
def test_anything_else_is_what_find_package_finds(mail: bytes) -> None:
    expected, found, _ = _both(mail)
    assert found.source is None
    assert found == expected


def test_big_pieces_are_bounded() -> None:
    found = find_package_in(io.BytesIO(STREAMED["big"]))
    assert found.source is not None
    sizes = [len(piece) for piece in found.source.pieces()]
    assert len(sizes) > 1
    assert max(sizes) <= 1024 * 1024
