"""The lean MIME reader of ``find_package`` finds exactly what the ``email`` package finds.

``find_package`` reads a mail in place (no ``email`` object tree: a 91 MB mail would cost about
8x its size) and falls back to the ``email`` package for anything unusual. Each case here is
compared with the ``email`` package's own reading of the same bytes (``_candidates``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from gateway.pipeline.mails import _candidates, _lean_candidates, compose, find_package

_XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="urn:x">' + b"A" * 9000 + b"</edXML>"


def _mail(package: bytes = _XML, **extra: str) -> bytes:
    return compose(
        package,
        filename="goi.edxml",
        mail_from="a@b.vn",
        to=["c@d.vn"],
        subject="Gói tin",
        text="Xin gửi",
        at=datetime(2026, 11, 20, tzinfo=UTC),
        headers=extra or None,
    )


def _by_email(mail: bytes) -> list[tuple[bytes, str | None]]:
    return _candidates(message_from_bytes(mail, policy=policy.compat32))


def _two_packages() -> bytes:
    """A mail carrying two edXML attachments (multipart/mixed, alternative nested)."""
    boundary, inner = b"==outer==", b"==inner=="
    part = b"Content-Type: application/xml\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    encoded = base64.encodebytes(_XML).replace(b"\n", b"\r\n")
    return (
        b"From: a@b.vn\r\nSubject: two\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="==outer=="\r\n\r\n'
        b"preamble\r\n--" + boundary + b'\r\nContent-Type: multipart/alternative; boundary="==inner=="\r\n\r\n'
        b"--" + inner + b"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--" + inner + b"--\r\n"
        b"--"
        + boundary
        + b"\r\n"
        + part
        + encoded
        + b"--"
        + boundary
        + b"\r\n"
        + part
        + encoded
        + b"--"
        + boundary
        + b"--\r\nepilogue\r\n"
    )


@pytest.mark.parametrize(
    "mail",
    [
        _mail(),
        _mail(b"not a package"),
        _mail(_XML.replace(b"A" * 9000, b"")),
        _two_packages(),
        b"Subject: bare body\r\n\r\n" + _XML,
        b"Subject: nothing\r\n\r\nplain text\r\n",
    ],
    ids=["one-package", "no-package", "short-package", "two-packages-nested", "body-is-package", "plain"],
)
def test_lean_reader_agrees_with_the_email_package(mail: bytes) -> None:
    _, lean = _lean_candidates(mail)
    assert lean == _by_email(mail)


def test_quoted_printable_goes_to_the_email_package() -> None:
    """An encoding the lean reader leaves alone still finds the package (through ``email``)."""
    mail = (
        b"Subject: qp\r\nContent-Type: application/xml\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + _XML.replace(b"=", b"=3D")
    )
    assert find_package(mail).package == _XML


def test_unclosed_boundary_goes_to_the_email_package() -> None:
    mail = _mail()
    cut = mail[: mail.rindex(b"--") - 1]  # no closing delimiter
    assert find_package(cut).package == (_by_email(cut)[0][0] if _by_email(cut) else None)


def test_headers_come_from_the_top_level() -> None:
    found = find_package(_mail())
    assert found.package == _XML
    assert found.filename == "goi.edxml"
    assert found.sender == "a@b.vn"
    assert found.message_id is not None
