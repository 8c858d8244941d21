"""Finding the package in a mail, composing mails, adding headers without touching the original."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from gateway.pipeline.mails import compose, find_package, prepend_headers
from tests.samples import sdk_sample

PACKAGE = sdk_sample("status_rejection_02.edxml")
AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def mail_with(*attachments: tuple[bytes, str], body: str = "Kính gửi văn thư.") -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Văn thư <vanthu@chinhphu.vn>"
    message["To"] = "vanthu@tayninh.gov.vn"
    message["Subject"] = "Gửi văn bản 123/VPCP"
    message["Message-ID"] = "<abc@chinhphu.vn>"
    message.set_content(body)
    for data, name in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


def test_the_attached_package_is_found_byte_for_byte() -> None:
    found = find_package(mail_with((PACKAGE, "goi-tin.edxml")))
    assert found.package == PACKAGE
    assert found.filename == "goi-tin.edxml"
    assert found.problem is None
    assert found.message_id == "<abc@chinhphu.vn>"
    assert found.sender == "vanthu@chinhphu.vn"


def test_a_package_as_the_whole_body_is_found() -> None:
    raw = b"From: a@b.vn\r\nSubject: x\r\nContent-Type: application/xml\r\n\r\n" + PACKAGE
    assert find_package(raw).package == PACKAGE


def test_other_attachments_are_not_packages() -> None:
    found = find_package(mail_with((b"%PDF-1.7 ...", "cong-van.pdf"), (PACKAGE, "goi-tin.edxml")))
    assert found.package == PACKAGE


@pytest.mark.parametrize(
    ("attachments", "code"),
    [
        ((), "mail-no-package"),
        (((b"<html>not edxml</html>", "x.xml"),), "mail-no-package"),
        (((PACKAGE, "a.edxml"), (PACKAGE, "b.edxml")), "mail-several-packages"),
    ],
)
def test_not_exactly_one_package(attachments: tuple[tuple[bytes, str], ...], code: str) -> None:
    found = find_package(mail_with(*attachments))
    assert found.package is None
    assert found.problem is not None
    assert found.problem.code == code


def test_composed_mail_carries_the_package_unchanged() -> None:
    raw = compose(
        PACKAGE,
        filename="tu-choi.edxml",
        mail_from="gateway@tayninh.gov.vn",
        to=["vanthu@chinhphu.vn"],
        subject="Từ chối tiếp nhận văn bản 123/VPCP",
        text="Văn bản bị từ chối.\n\nThe document was refused.",
        at=AT,
        headers={"X-Gateway-Id": "7-abcd"},
    )
    assert find_package(raw).package == PACKAGE
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Từ chối tiếp nhận văn bản 123/VPCP"
    assert parsed["Date"].endswith("+0700")
    assert parsed["X-Gateway-Id"] == "7-abcd"


def test_prepended_headers_leave_the_original_bytes_intact() -> None:
    original = mail_with((PACKAGE, "goi-tin.edxml"))
    relayed = prepend_headers(original, {"X-Gateway-Verdict": "accepted", "X-Gateway-Report": "id=7"})
    assert relayed.endswith(original)
    parsed = message_from_bytes(relayed, policy=policy.default)
    assert parsed["X-Gateway-Verdict"] == "accepted"
    assert find_package(relayed).package == PACKAGE


@pytest.mark.parametrize("value", ["a\r\nBcc: x@evil", "tiếng Việt"])
def test_header_injection_and_non_ascii_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        prepend_headers(b"Subject: x\r\n\r\nbody", {"X-Gateway-Report": value})
