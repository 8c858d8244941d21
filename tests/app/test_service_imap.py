"""``gateway serve`` with ``[imap]``: a package the axis left in an agency mailbox (real Dovecot).

The poller runs inside the service with the settings a deployment writes (TLS with a CA file,
the password in a 0600 file); the mail is committed, moved to the done folder, judged and
delivered to the DMS once, and ``/healthz`` shows the poller connected.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from gateway.devpki import DevPKI
from gateway.edxml.build import build
from tests.dovecot import Dovecot, MailUser, shared_dovecot
from tests.pdfs import SignedPdfs
from tests.pipeline.test_receive import carrying, document
from tests.service import health, receipt_log, running, until, write_config


@pytest.fixture
def dovecot(request: pytest.FixtureRequest) -> Dovecot:
    return shared_dovecot(request.config)


def _imap_table(tmp_path: Path, dovecot: Dovecot, user: MailUser) -> str:
    secret = tmp_path / "imap.password"
    secret.write_text(user.password + "\n", encoding="utf-8")
    os.chmod(secret, 0o600)
    return "\n".join(
        [
            "[imap]",
            f'host = "{dovecot.host}"',
            f"port = {dovecot.tls_port}",
            'security = "tls"',
            f'user = "{user.name}"',
            f"password_file = {json.dumps(str(secret))}",
            f"ca_file = {json.dumps(str(dovecot.tls.cert))}",
            'done_mailbox = "Đã xử lý"',
            "idle_renew_seconds = 30",
            "timeout_seconds = 5",
            "",
        ]
    )


def test_a_package_in_the_agency_mailbox_is_taken_once_judged_and_delivered(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs, dovecot: Dovecot
) -> None:
    user = dovecot.add_user()
    mail = carrying(build(document(("cong-van.pdf", signed_pdfs.main))))
    dovecot.append(user, mail)
    config = write_config(tmp_path, dev_pki, extra=_imap_table(tmp_path, dovecot, user))

    async def go() -> None:
        async with running(config) as where:
            assert where.imap == f"{user.name}@{dovecot.host}:{dovecot.tls_port}/INBOX"

            async def delivered() -> bool:
                return bool(await asyncio.to_thread(lambda: list(tmp_path.glob("dms/new/*"))))

            await until(delivered, within=60)
            _, body = await health(where)
            assert body["imap"]["connected"] is True
            assert body["imap"]["accepted"] == 1
        async with receipt_log(config) as store:
            [item] = await store.list(kind="inbound")
        assert (item.channel, item.state, item.verdict) == ("imap", "delivered", "accepted")
        assert item.imap_key is not None

    asyncio.run(go())
    [delivered] = list(tmp_path.glob("dms/new/*"))
    assert delivered.read_bytes().endswith(mail)
    assert dovecot.messages(user) == {}
    [(moved, _flags)] = dovecot.messages(user, "Đã xử lý").values()
    assert moved.replace(b"\r\n", b"\n") == mail.replace(b"\r\n", b"\n")
