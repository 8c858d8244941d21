"""The submission listener over real loopback sockets: who may submit, and how."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import aiosmtplib
import pytest

from gateway.errors import ConfigError
from gateway.inbound.intake import Intake
from gateway.outbound.submit import SubmissionSmtp, hash_password, load_users, verify_password
from gateway.settings import SubmissionSettings
from tests.inbound.client import CLIENT_NAME, mail, run, send, serving
from tests.inbound.twins import MemorySpool, MemoryStore
from tests.mailtls import LoopbackTls, make_loopback_tls

AXIS = "vanthu@haiphong.gov.vn"
NOBODY: tuple[str, ...] = ("10.255.255.0/24",)  # loopback is not in it


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LoopbackTls:
    return make_loopback_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "submission-users"
    path.write_text(f"# DMS accounts\n\ndms-tayninh:{hash_password('đúng mật khẩu')}\n", encoding="utf-8")
    return path


def make(settings: SubmissionSettings) -> tuple[SubmissionSmtp, MemoryStore]:
    store = MemoryStore()
    return SubmissionSmtp(settings, Intake(store, MemorySpool()), auth_failure_delay=0), store


def settings_with(tls: LoopbackTls, users_file: Path, *, networks: tuple[str, ...] = NOBODY) -> SubmissionSettings:
    return SubmissionSettings(
        listen="127.0.0.1:0",
        hostname="gw.test",
        tls_cert=tls.cert,
        tls_key=tls.key,
        users_file=users_file,
        allow_networks=networks,
    )


def test_auth_over_tls_with_the_right_password(tls: LoopbackTls, users_file: Path) -> None:
    async def main() -> None:
        server, store = make(settings_with(tls, users_file))
        async with serving(server):
            reply = await send(
                server.address[1], mail(), rcpt=[AXIS], tls=tls.client_context(), login=("dms-tayninh", "đúng mật khẩu")
            )
            assert reply == "2.0.0 Ok: queued as 1"
            row = store.rows[1]
            assert (row.kind, row.channel, row.direction, row.rcpt_to) == ("submission", "submission", "out", (AXIS,))

    run(main)


@pytest.mark.parametrize("mechanism", ["auth_plain", "auth_login"])
def test_both_mechanisms_and_a_wrong_password(tls: LoopbackTls, users_file: Path, mechanism: str) -> None:
    async def main() -> None:
        server, store = make(settings_with(tls, users_file))
        async with (
            serving(server),
            aiosmtplib.SMTP(
                hostname="127.0.0.1",
                port=server.address[1],
                start_tls=True,
                tls_context=tls.client_context(),
                local_hostname=CLIENT_NAME,
            ) as client,
        ):
            await client.ehlo()  # after STARTTLS the client forgets the extensions until asked again
            assert client.supports_extension("auth")
            for user, password in (("dms-tayninh", "sai"), ("nobody", "đúng mật khẩu")):
                with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                    await getattr(client, mechanism)(user, password)
                assert refused.value.code == 535
                with pytest.raises(aiosmtplib.SMTPSenderRefused) as unauthenticated:
                    await client.sendmail("dms@tayninh.gov.vn", [AXIS], mail())
                assert unauthenticated.value.code == 530
            response = await getattr(client, mechanism)("dms-tayninh", "đúng mật khẩu")
            assert response.code == 235
            await client.sendmail("dms@tayninh.gov.vn", [AXIS], mail())
        assert len(store.rows) == 1

    run(main)


def test_no_auth_without_tls(tls: LoopbackTls, users_file: Path) -> None:
    async def main() -> None:
        server, store = make(settings_with(tls, users_file))
        async with (
            serving(server),
            aiosmtplib.SMTP(
                hostname="127.0.0.1", port=server.address[1], start_tls=False, local_hostname=CLIENT_NAME
            ) as client,
        ):
            await client.ehlo()
            assert client.supports_extension("starttls")
            assert not client.supports_extension("auth")
            blob = base64.b64encode(b"\x00dms-tayninh\x00" + "đúng mật khẩu".encode()).decode()
            response = await client.execute_command(b"AUTH", b"PLAIN", blob.encode())
            assert response.code == 538
            with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
                await client.sendmail("dms@tayninh.gov.vn", [AXIS], mail())
            assert (refused.value.code, refused.value.message) == (530, "5.7.0 Authentication required")
        assert store.rows == {}

    run(main)


def test_an_allowed_network_needs_no_auth() -> None:
    async def main() -> None:
        server, store = make(SubmissionSettings(listen="127.0.0.1:0", allow_networks=("127.0.0.0/8", "::1/128")))
        async with serving(server):
            assert await send(server.address[1], mail(), rcpt=[AXIS]) == "2.0.0 Ok: queued as 1"
        assert store.rows[1].mail_from == "a@axis.test"

    run(main)


def test_anyone_else_without_auth_gets_530(tls: LoopbackTls) -> None:
    async def main() -> None:
        for settings in (
            SubmissionSettings(listen="127.0.0.1:0", allow_networks=NOBODY),
            SubmissionSettings(listen="127.0.0.1:0", allow_networks=(), tls_cert=tls.cert, tls_key=tls.key),
        ):
            server, store = make(settings)
            async with serving(server):
                with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
                    await send(
                        server.address[1], mail(), rcpt=[AXIS], tls=tls.client_context() if settings.tls_cert else None
                    )
                assert (refused.value.code, refused.value.message) == (530, "5.7.0 Authentication required")
            assert store.rows == {}

    run(main)


def test_hash_and_verify() -> None:
    encoded = hash_password("mật khẩu", n=2**10)
    assert encoded.startswith("scrypt$1024$8$1$")
    assert verify_password("mật khẩu".encode(), encoded)
    assert not verify_password(b"mat khau", encoded)
    assert encoded != hash_password("mật khẩu", n=2**10)  # salted
    for broken in ("", "md5$1$2", "scrypt$1000$8$1$c2FsdA==$" + "A" * 44, "scrypt$1024$8$1$!!$AAAA"):
        assert not verify_password(b"x", broken)


def test_users_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    good = hash_password("x", n=2**10)
    path.write_text(f"a:{good}\n# comment\nb:{good}\n", encoding="utf-8")
    assert set(load_users(path)) == {"a", "b"}
    for text in (f"a:{good}\nb {good}\n", f"a:{good}\na:{good}\n", f"a:{good}\nb:scrypt$3$8$1$AA==$AAAA\n"):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=r"users:2: not a user line"):
            load_users(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_users(tmp_path / "missing")


def test_configuration_that_cannot_work_is_refused(tls: LoopbackTls, users_file: Path) -> None:
    with pytest.raises(ConfigError, match="only over TLS"):
        SubmissionSmtp(SubmissionSettings(users_file=users_file), Intake(MemoryStore(), MemorySpool()))
    with pytest.raises(ConfigError, match="allow_networks"):
        SubmissionSmtp(
            replace(settings_with(tls, users_file), allow_networks=("10.0.0.1/8",)),
            Intake(MemoryStore(), MemorySpool()),
        )
