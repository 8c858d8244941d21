"""Errors on the archivist's pages are pages; errors on the JSON API, /metrics and /healthz stay JSON.

A real failure of the store: the ``messages`` table is renamed under the running app by another
SQLite connection, so every read fails in the driver ("no such table") and the store raises
``TransientError``. The pages must answer 503 with a page in the archivist's language, the
``Retry-After`` of the JSON answer and the pages' security headers; the API must answer what it
answered before this change (the bodies below are copied from it). Tokens and cookies as in
``test_pages.py``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from html import unescape
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.requests import Request

from gateway.web.app import create_app
from gateway.web.auth import COOKIE
from gateway.web.deps import WebDeps
from gateway.web.i18n import STRINGS
from gateway.web.pages import LANG_COOKIE, MACHINE_SEGMENTS, error_page, router
from tests.web.apps import bearer, secret, served

T = TypeVar("T")

READER = secret("reader")
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
"""What a browser sends when the archivist opens a link: never turns an API answer into a page."""
BROKEN = "no such table: messages"
"""The driver's words when the store fails: for the log and the JSON API, never for a page."""
JSON_503 = {"status": 503, "detail": f"temporarily unavailable, try again later: database unavailable: {BROKEN}"}
PAGE_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy", "cache-control")
LEAKS = ("Traceback", "TransientError", "RuntimeError", "database unavailable", BROKEN, 'File "')

Scenario = Callable[[httpx.AsyncClient, WebDeps], Awaitable[T]]


def _run(tmp_path: Path, scenario: Scenario[T], *, signed_in: bool = True, bugs_answered: bool = False) -> T:
    """Run ``scenario`` on a fresh, empty receipt log (the reader's cookie set if ``signed_in``).

    ``bugs_answered``: a client on which an unexpected exception is answered (500) rather than
    re-raised into the test, as uvicorn does.
    """

    async def main() -> T:
        async with served(tmp_path / "gateway.db", tmp_path / "spool", migrate=True) as (served_client, deps):
            client = served_client
            if bugs_answered:
                transport = httpx.ASGITransport(app=create_app(deps), raise_app_exceptions=False)
                client = httpx.AsyncClient(transport=transport, base_url="http://gateway.test")
            try:
                if signed_in:
                    client.cookies.set(COOKIE, READER)
                return await scenario(client, deps)
            finally:
                if client is not served_client:
                    await client.aclose()

    return asyncio.run(main())


def _break_store(directory: Path) -> None:
    with closing(sqlite3.connect(directory / "gateway.db")) as other, other:
        other.execute("ALTER TABLE messages RENAME TO messages_gone")


def _text(response: httpx.Response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.text)))


def _heading(response: httpx.Response) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", response.text, flags=re.S)
    assert found is not None, response.text
    return unescape(found.group(1)).strip()


def _assert_page(response: httpx.Response, healthy: httpx.Response, lang: str) -> None:
    """An HTML page in ``lang`` from the base template, with the headers every page has, leaking nothing."""
    assert response.headers["content-type"].startswith("text/html")
    assert f'<html lang="{lang}">' in response.text
    assert '<link rel="stylesheet" href="/static/pages.css">' in response.text
    assert STRINGS[lang]["app"] in _text(response)  # the common header and footer
    assert STRINGS[lang]["footer"] in _text(response)
    for name in PAGE_HEADERS:
        assert response.headers[name] == healthy.headers[name], name
    for leak in LEAKS:
        assert leak not in response.text, leak


def _assert_code(response: httpx.Response, status: int, code: str, lang: str) -> None:
    t = STRINGS[lang]
    assert response.status_code == status
    assert f"{t['err_code']}: HTTP {status} · {code}" in _text(response)


# ---------------------------------------------------------------- the store fails


@pytest.mark.parametrize("path", ["/?sender=000.00.00.G22", "/documents/1"])
@pytest.mark.parametrize(
    ("lang", "how"),
    [("vi", "default"), ("en", "query"), ("en", "cookie")],
)
def test_a_store_failure_on_a_page_is_a_503_page_with_retry_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str, lang: str, how: str
) -> None:
    async def scenario(client: httpx.AsyncClient, _: WebDeps) -> tuple[httpx.Response, httpx.Response]:
        if how == "cookie":
            client.cookies.set(LANG_COOKIE, lang)
        healthy = await client.get("/", headers=BROWSER)
        _break_store(tmp_path)
        url = f"{path}{'&' if '?' in path else '?'}lang={lang}" if how == "query" else path
        return healthy, await client.get(url, headers=BROWSER)

    with caplog.at_level(logging.WARNING, logger="gateway.web.errors"):
        healthy, failed = _run(tmp_path, scenario)
    t = STRINGS[lang]
    assert healthy.status_code == 200
    _assert_code(failed, 503, "unavailable", lang)
    _assert_page(failed, healthy, lang)
    assert failed.headers["retry-after"] == "60"
    assert _heading(failed) == t["err_unavailable_title"]
    assert t["err_unavailable_next"] in _text(failed)  # "try again in a minute"
    assert f'<a class="button" href="{path.replace("&", "&amp;")}">{t["err_retry"]}</a>' in failed.text
    assert '<a class="button" href="/">' in failed.text or path == "/"
    assert any(BROKEN in record.getMessage() for record in caplog.records), "the cause must be in the log"


def test_the_api_and_metrics_still_answer_json_when_the_store_fails(tmp_path: Path) -> None:
    async def scenario(client: httpx.AsyncClient, _: WebDeps) -> list[httpx.Response]:
        _break_store(tmp_path)
        return [
            await client.get("/api/v1/messages", headers=BROWSER),  # the browser's cookie, the browser's Accept
            await client.get("/api/v1/messages/1", headers={**BROWSER, **bearer("reader")}),
            await client.get("/metrics", headers={**BROWSER, **bearer("reader")}),
            await client.get("/healthz", headers=BROWSER),
        ]

    *failed, health = _run(tmp_path, scenario)
    for answer in failed:
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == JSON_503  # the body of before this change
        assert answer.headers["retry-after"] == "60"
    assert health.status_code == 200
    assert health.json()["status"] == "ok"


# ---------------------------------------------------------------- not found, bad values, methods


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_an_unknown_document_is_a_404_page_with_a_way_back(tmp_path: Path, lang: str) -> None:
    async def scenario(client: httpx.AsyncClient, _: WebDeps) -> tuple[httpx.Response, ...]:
        client.cookies.set(LANG_COOKIE, lang)
        return (
            await client.get("/", headers=BROWSER),
            await client.get("/documents/999999", headers=BROWSER),
            await client.get("/tra-cuu/999999", headers=BROWSER),  # no such page at all
            await client.get("/api/v1/messages/999999", headers=BROWSER),
            await client.get("/api/v1/nothing-here", headers=BROWSER),
        )

    healthy, document, nowhere, api_document, api_nowhere = _run(tmp_path, scenario)
    t = STRINGS[lang]
    for page in (document, nowhere):
        _assert_code(page, 404, "not-found", lang)
        _assert_page(page, healthy, lang)
        assert _heading(page) == t["err_not_found_title"]
        assert t["err_not_found_next"] in _text(page)
        assert f'<a class="button" href="/">{t["back"]}</a>' in page.text
    assert t["missing"].format(id="999999") in _text(document)
    assert t["err_not_found_text"] in _text(nowhere)
    assert api_document.status_code == 404
    assert api_document.json() == {
        "status": 404,
        "detail": "no work item 999999",
        "parameter": "id",
        "accepted": "the id of an existing work item",
    }
    assert api_nowhere.status_code == 404
    assert api_nowhere.json() == {"status": 404, "detail": "Not Found"}


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_a_bad_filter_is_a_400_page_naming_the_field_to_fix(tmp_path: Path, lang: str) -> None:
    async def scenario(client: httpx.AsyncClient, _: WebDeps) -> tuple[httpx.Response, ...]:
        return (
            await client.get(f"/?lang={lang}", headers=BROWSER),
            await client.get(f"/?from=h%C3%B4m+qua&lang={lang}", headers=BROWSER),
            await client.get("/api/v1/messages?from=h%C3%B4m+qua", headers=BROWSER),
        )

    healthy, page, api = _run(tmp_path, scenario)
    t = STRINGS[lang]
    _assert_code(page, 400, "bad-request", lang)
    _assert_page(page, healthy, lang)
    assert _heading(page) == t["title_search"]  # the search form again, with what to fix above it
    summary = page.text.split('<section class="problem"')[1].split("</section>")[0]
    assert t["err_bad_request_title"] in summary
    assert f'<a href="#f-from">{t["err_field"].format(field=t["from"])}</a>' in unescape(summary)
    assert 'id="f-from"' in page.text
    assert '<p id="e-from" class="error" role="alert">' in page.text
    assert api.status_code == 400
    assert api.json() == {
        "status": 400,
        "detail": "from 'hôm qua' is not an age (30d, 12h, 90m, 2w), a date (2025-03-14) or an ISO 8601 time "
        "(2025-03-14T09:00:00+07:00)",
        "parameter": "from",
        "accepted": "an age (30d, 12h, 90m, 2w), a date (2025-03-14) or an ISO 8601 time (2025-03-14T09:00:00+07:00)",
    }


def test_a_method_a_page_does_not_take_is_a_405_page_keeping_allow(tmp_path: Path) -> None:
    async def scenario(client: httpx.AsyncClient, _: WebDeps) -> tuple[httpx.Response, ...]:
        return (
            await client.get("/", headers=BROWSER),
            await client.put("/documents/1", headers=BROWSER),
            await client.put("/api/v1/messages", headers=BROWSER),
        )

    healthy, page, api = _run(tmp_path, scenario)
    _assert_code(page, 405, "method-not-allowed", "vi")
    _assert_page(page, healthy, "vi")
    assert page.headers["allow"] == "GET"
    assert api.status_code == 405
    assert api.json() == {"status": 405, "detail": "Method Not Allowed"}


# ---------------------------------------------------------------- login


def test_a_page_without_login_leads_to_the_login_form_and_the_api_stays_401_json(tmp_path: Path) -> None:
    """The pages already answer a missing token in HTML (303 to the login form): kept as it was."""

    async def scenario(client: httpx.AsyncClient, _: WebDeps) -> tuple[httpx.Response, ...]:
        page = await client.get("/documents/1?lang=en", headers=BROWSER)
        form = await client.get(page.headers["location"], headers=BROWSER)
        api = await client.get("/api/v1/messages/1", headers=BROWSER)
        return page, form, api

    page, form, api = _run(tmp_path, scenario, signed_in=False)
    assert page.status_code == 303
    location = urlsplit(page.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/documents/1?lang=en"]
    assert form.status_code == 200
    assert form.headers["content-type"].startswith("text/html")
    assert form.headers["content-security-policy"].startswith("default-src 'none'")
    assert _heading(form) == STRINGS["en"]["title_login"]
    assert api.status_code == 401
    assert api.headers["www-authenticate"] == 'Bearer realm="gateway"'
    assert api.json() == {"status": 401, "detail": "a valid token is required: Authorization: Bearer <token>"}


# ---------------------------------------------------------------- bugs


def test_a_bug_on_a_page_is_a_500_page_without_the_exception_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_text = "internal detail /var/lib/gateway/secret.key"

    async def scenario(client: httpx.AsyncClient, deps: WebDeps) -> tuple[httpx.Response, ...]:
        healthy = await client.get("/", headers=BROWSER)

        async def bug(*_: Any, **__: Any) -> Any:
            raise RuntimeError(secret_text)

        monkeypatch.setattr(deps.store, "search", bug)
        return healthy, await client.get("/?lang=en", headers=BROWSER), await client.get("/api/v1/messages")

    with caplog.at_level(logging.ERROR, logger="gateway.web.errors"):
        healthy, page, api = _run(tmp_path, scenario, bugs_answered=True)
    _assert_code(page, 500, "internal-error", "en")
    _assert_page(page, healthy, "en")
    assert _heading(page) == STRINGS["en"]["err_internal_error_title"]
    assert secret_text not in page.text
    assert "retry-after" not in page.headers
    assert api.status_code == 500
    assert api.json() == {"status": 500, "detail": "internal error (see the gateway's log)"}
    logged = [r for r in caplog.records if r.exc_info is not None]
    assert logged, "the traceback belongs in the log"
    assert all(secret_text in str(r.exc_info[1]) for r in logged if r.exc_info)


# ---------------------------------------------------------------- every status, both languages


def _request(deps: WebDeps, path: str, query: str = "", cookie: str = "") -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("gateway.test", 80),
        "path": path,
        "query_string": query.encode(),
        "headers": [(b"cookie", cookie.encode())] if cookie else [],
        "app": create_app(deps),
    }
    return Request(scope)


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize(
    ("status", "code", "link"),
    [
        (400, "bad-request", "/"),
        (401, "login-required", "/login?next=%2Fdocuments%2F7%3Fx%3D1"),
        (403, "forbidden", "/login?next=%2Fdocuments%2F7%3Fx%3D1"),
        (404, "not-found", "/"),
        (405, "method-not-allowed", "/"),
        (410, "refused", "/"),
        (422, "refused", "/"),
        (500, "internal-error", "/"),
        (502, "internal-error", "/"),
        (503, "unavailable", "/documents/7?x=1"),
    ],
)
def test_every_status_has_a_page_in_both_languages(
    tmp_path: Path, lang: str, status: int, code: str, link: str
) -> None:
    async def scenario(_: httpx.AsyncClient, deps: WebDeps) -> httpx.Response:
        request = _request(deps, "/documents/7", "x=1", f"{LANG_COOKIE}={lang}")
        page = error_page(request, status, field="from_", headers={"X-Kept": "yes", "Content-Security-Policy": "*"})
        return httpx.Response(page.status_code, headers=page.headers.items(), content=bytes(page.body))

    page = _run(tmp_path, scenario, signed_in=False)
    t = STRINGS[lang]
    key = "err_" + code.replace("-", "_")
    _assert_code(page, status, code, lang)
    assert _heading(page) == t[f"{key}_title"]
    for part in ("text", "next"):
        assert t[f"{key}_{part}"] in _text(page)
    assert t["err_field"].format(field=t["from"]) in _text(page)  # a parameter named by its form label
    assert f'<a class="button" href="{link.replace("&", "&amp;")}">' in page.text
    assert page.headers["x-kept"] == "yes"  # the JSON answer's headers (Allow, WWW-Authenticate...)
    assert page.headers["content-security-policy"].startswith("default-src 'none'")  # never loosened
    assert re.search(rf"{t['err_time']}: \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", _text(page))


# ---------------------------------------------------------------- what is a page


def test_every_route_outside_the_pages_is_under_a_machine_segment(tmp_path: Path) -> None:
    """An error under a machine segment is JSON: a new API route outside them would get pages."""

    async def scenario(client: httpx.AsyncClient, _: WebDeps) -> dict[str, Any]:
        schema: dict[str, Any] = (await client.get("/openapi.json")).json()
        return schema

    schema = _run(tmp_path, scenario)
    first = {path.lstrip("/").split("/", 1)[0] for path in [*schema["paths"], "/openapi.json"]}
    assert first <= MACHINE_SEGMENTS
    pages = {getattr(route, "path", "") for route in router.routes}
    assert not {path.lstrip("/").split("/", 1)[0] for path in pages} & MACHINE_SEGMENTS
