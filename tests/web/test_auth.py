"""Bearer tokens: the tokens file, and every refusal (none, unknown, wrong scope, in the URL, wrong scheme).

The app is the real ``create_app`` over a fresh receipt log (httpx over ASGI); the protected
routes tried are ``/metrics`` (read), ``/api/v1/messages`` (read), ``/preflight`` (preflight) and
``/api/v1/rules/replay`` (admin).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from gateway.errors import ConfigError
from gateway.web.auth import COOKIE, TokenStore, hash_token, new_token, token_line
from tests.web.apps import bearer, secret, served

READ_ROUTES = (("GET", "/metrics"), ("GET", "/api/v1/messages"), ("GET", "/api/v1/reports/partners"))


def _call(tmp_path: Path, method: str, path: str, **kwargs: object) -> httpx.Response:
    async def main() -> httpx.Response:
        async with served(tmp_path / "gateway.db", tmp_path / "spool", migrate=True) as (client, _):
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(main())


def _line(name: str, scopes: str, token: str) -> str:
    return f"{name}:{scopes}:{hash_token(token)}"


# ------------------------------------------------------------------ the tokens file


def test_load_reads_names_scopes_and_hashes_skipping_comments(tmp_path: Path) -> None:
    token = new_token()
    assert len(token) == 43
    path = tmp_path / "tokens"
    path.write_text(f"# comment\n\n{_line('archivist', 'read,admin', token)}\n", encoding="utf-8")
    store = TokenStore.load(path)
    found = store.find(token)
    assert found is not None
    assert found.name == "archivist"
    assert found.scopes == {"read", "admin"}
    assert store.find(new_token()) is None
    assert token not in path.read_text(encoding="utf-8")  # only the hash is stored
    assert token_line(found) == _line("archivist", "read,admin", token)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("archivist:read", "three fields"),
        ("archivist:read:abc", "SHA-256"),
        ("archivist:write:" + "0" * 64, "unknown token scope 'write'"),
        ("archivist::" + "0" * 64, "unknown token scope ''"),
        ("bad name:read:" + "0" * 64, "cannot name a token"),
    ],
)
def test_a_bad_line_is_refused_naming_file_and_line(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# ok\n{_line('ok', 'read', 'x')}\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        TokenStore.load(path)
    assert f"{path}:3:" in str(caught.value)
    assert why in str(caught.value)


def test_a_repeated_name_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{_line('a', 'read', 'x')}\n{_line('a', 'admin', 'y')}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tokens:2: .*already used"):
        TokenStore.load(path)
    with pytest.raises(ConfigError, match="gateway token add"):
        TokenStore.load(tmp_path / "absent")


def test_reload_takes_a_good_file_and_keeps_the_old_tokens_on_a_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(_line("old", "read", "t1") + "\n", encoding="utf-8")
    store = TokenStore.load(path)
    path.write_text(_line("new", "read", "t2") + "\n", encoding="utf-8")
    store.reload()
    assert store.find("t1") is None
    assert store.find("t2") is not None
    path.write_text("garbage\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        store.reload()
    assert store.find("t2") is not None


def test_a_staged_reload_changes_nothing_until_it_is_used(tmp_path: Path) -> None:
    """SIGHUP reads the policy, the users and the tokens first, and puts them in force only together."""
    path = tmp_path / "tokens"
    path.write_text(_line("old", "read", "t1") + "\n", encoding="utf-8")
    store = TokenStore.load(path)
    path.write_text(_line("new", "read", "t2") + "\n", encoding="utf-8")
    use = store.staged()
    assert store.find("t1") is not None
    assert store.find("t2") is None
    use()
    assert store.find("t1") is None
    assert store.find("t2") is not None


# ------------------------------------------------------------------ refusals over HTTP


@pytest.mark.parametrize(("method", "path"), READ_ROUTES)
def test_no_token_is_401_with_a_bearer_challenge(tmp_path: Path, method: str, path: str) -> None:
    answer = _call(tmp_path, method, path)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer" in answer.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "n" * 43},  # unknown
        {"Authorization": "Bearer "},  # empty
        {"Authorization": f"Basic {secret('reader')}"},  # wrong scheme
        {"Authorization": secret("reader")},  # no scheme
    ],
)
def test_an_unknown_token_or_scheme_is_401(tmp_path: Path, headers: dict[str, str]) -> None:
    assert _call(tmp_path, "GET", "/api/v1/messages", headers=headers).status_code == 401


@pytest.mark.parametrize("name", ["token", "access_token", "bearer"])
def test_a_token_in_the_query_string_is_not_accepted(tmp_path: Path, name: str) -> None:
    answer = _call(tmp_path, "GET", "/metrics", params={name: secret("reader")})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("token", "method", "path"),
    [
        ("sender", "GET", "/api/v1/messages"),
        ("admin", "GET", "/api/v1/messages"),  # admin does not imply read
        ("sender", "GET", "/metrics"),
        ("reader", "POST", "/preflight"),
        ("reader", "POST", "/api/v1/rules/replay"),
        ("sender", "POST", "/api/v1/rules/replay"),
    ],
)
def test_a_token_without_the_scope_is_403(tmp_path: Path, token: str, method: str, path: str) -> None:
    answer = _call(tmp_path, method, path, headers=bearer(token), content=b"x")
    assert answer.status_code == 403
    assert "scope" in answer.json()["detail"]


def test_the_right_token_and_the_login_cookie_are_accepted(tmp_path: Path) -> None:
    assert _call(tmp_path, "GET", "/api/v1/messages", headers=bearer("reader")).status_code == 200
    cookies = {COOKIE: secret("reader")}

    async def with_cookie() -> int:
        async with served(tmp_path / "gateway.db", tmp_path / "spool", migrate=True) as (client, _):
            client.cookies.update(cookies)
            return (await client.get("/api/v1/messages")).status_code

    assert asyncio.run(with_cookie()) == 200


def test_healthz_needs_no_token(tmp_path: Path) -> None:
    answer = _call(tmp_path, "GET", "/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_every_request_is_logged_with_the_token_name_never_a_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.web.access"):
        _call(tmp_path, "GET", "/api/v1/messages", headers=bearer("reader"), params={"verdict": "refused"})
        _call(tmp_path, "GET", "/metrics", params={"token": secret("sender")})
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.web.access"]
    assert any("GET /api/v1/messages?verdict=refused 200 token=reader" in line for line in lines), lines
    assert any("GET /metrics?token=%2A%2A%2A 401 token=-" in line for line in lines), lines
    assert not any(secret("sender") in line or secret("reader") in line for line in lines)
