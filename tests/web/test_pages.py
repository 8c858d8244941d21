"""The archivist's pages in-process (httpx over ASGI): login, search, bad filters, escaping, language, a document.

The receipt log is seeded through the Store API (a refused package with hostile text in its
subject, an accepted one from another agency, a deferred one), then the real ``create_app`` is
served to httpx's ``ASGITransport``. The browser test (``test_browser.py``) drives the same pages
in Chromium over a socket against a log made by the real gateway.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import pytest

from gateway.clock import FixedClock
from gateway.store import Intake, Store
from gateway.web.auth import COOKIE
from gateway.web.i18n import STRINGS
from tests.web.apps import secret, served

T = TypeVar("T")

READER = secret("reader")
"""A token with the ``read`` scope (``tests.web.apps.TOKENS``)."""
SENDER = secret("sender")
"""A token with only the ``preflight`` scope."""
HOSTILE = "Công văn <script>alert('x')</script> về kiểm tra \"ngân sách\" & thuế"
SIGNATURE_VI = (
    "Chữ ký số \"Chữ ký 1 của tệp 'cong-van.pdf'\" không hợp lệ: tài liệu đã bị thay đổi hoặc chữ ký bị hỏng "
    "(digest mismatch). Đơn vị gửi cần ký lại và gửi lại."
)
SIGNATURE_EN = (
    "The signature \"Signature 1 of file 'cong-van.pdf'\" is invalid: the document was altered or the signature "
    "is broken (digest mismatch). The sender must sign again and resend."
)
CLOCK = FixedClock()  # 2025-03-14T02:05:07Z = 09:05:07+07:00


@dataclass(frozen=True)
class Site:
    """A seeded receipt log and the ids in it."""

    directory: Path
    refused: int
    accepted: int
    deferred: int


def _sha(n: int) -> str:
    return f"{n:064x}"


def _report(verdict: str, findings: list[dict[str, str]]) -> dict[str, Any]:
    signature = {
        "where": "cong-van.pdf#1",
        "document": "cong-van.pdf",
        "index": 1,
        "field": "Signature1",
        "signer": "Nguyễn Văn A",
        "signer_sha256": _sha(7),
        "role": "person",
        "signing_time": "2025-03-14T08:59:00+07:00",
        "signing_time_source": "timestamp",
        "declared_signing_time": "2025-03-14T08:58:30+07:00",
        "timestamp_time": "2025-03-14T08:59:00+07:00",
        "tsa": "Development TSA",
        "anchor": "Development Root",
        "revocation": {"source": "ocsp", "status": "good", "time": "2025-03-14T09:05:00+07:00"},
        "trust_detail": "",
        "indication": "TOTAL_FAILED" if verdict == "refused" else "TOTAL_PASSED",
        "subindication": "HASH_FAILURE" if verdict == "refused" else None,
        "modification": "none",
        "digest_algorithm": "sha256",
        "signature_mechanism": "rsassa_pkcs1v15",
    }
    return {
        "verdict": verdict,
        "findings": findings,
        "signatures": [signature],
        "policy": {"name": "default", "version": "1", "sha256": _sha(9)},
        "verified_at": "2025-03-14T09:05:07+07:00",
    }


async def _record(
    store: Store, n: int, *, verdict: str, to_state: str, organ: str, subject: str, findings: list[dict[str, str]]
) -> int:
    item = await store.record_intake(
        Intake(kind="inbound", channel="smtp", sha256=_sha(n), size=1000 + n, mail_from=f"vanthu{n}@partner.gov.vn")
    )
    await store.transition(item.id, "active", reason="claimed")
    await store.record_verdict(
        item.id,
        _report(verdict, findings),
        verdict=verdict,
        indication="TOTAL_FAILED" if verdict == "refused" else "TOTAL_PASSED",
        findings=findings,
        policy_sha256=_sha(9),
        to_state=to_state,
        document_id=f"{organ},2025/03/14,{n}/UBND-VP",
        from_organ=organ,
        to_organs=["000.00.01.H53"],
        code=f"{n}/UBND-VP",
        subject=subject,
    )
    return item.id


async def _seed(directory: Path) -> Site:
    invalid = {
        "code": "pdf-signature-invalid",
        "action": "reject",
        "where": "cong-van.pdf#1",
        "message_vi": SIGNATURE_VI,
        "message_en": SIGNATURE_EN,
    }
    late = {
        "code": "revocation-unavailable",
        "action": "defer",
        "where": "cong-van.pdf#1",
        "message_vi": "Chưa kiểm tra được tình trạng thu hồi chứng thư.",
        "message_en": "The certificate's revocation status could not be checked.",
    }
    store = await Store.open(f"sqlite+aiosqlite:///{directory / 'gateway.db'}", clock=CLOCK)
    try:
        refused = await _record(
            store,
            123,
            verdict="refused",
            to_state="refused",
            organ="000.00.00.G22",
            subject=HOSTILE,
            findings=[invalid],
        )
        CLOCK.advance(timedelta(minutes=5))
        accepted = await _record(
            store,
            124,
            verdict="accepted",
            to_state="delivered",
            organ="000.00.00.G09",
            subject="Báo cáo quý I",
            findings=[],
        )
        CLOCK.advance(timedelta(minutes=5))
        deferred = await _record(
            store,
            125,
            verdict="deferred",
            to_state="deferred",
            organ="000.00.00.G09",
            subject="Kế hoạch",
            findings=[late],
        )
    finally:
        await store.close()
    return Site(directory, refused, accepted, deferred)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return asyncio.run(_seed(tmp_path_factory.mktemp("pages")))


def run(site: Site, scenario: Callable[[httpx.AsyncClient], Awaitable[T]], *, signed_in: bool = True) -> T:
    """Run ``scenario`` against a fresh app over the seeded log (with the reader's cookie if ``signed_in``)."""

    async def main() -> T:
        async with served(site.directory / "gateway.db", site.directory / "spool", clock=CLOCK) as (client, _):
            if signed_in:
                client.cookies.set(COOKIE, READER)
            return await scenario(client)

    return asyncio.run(main())


def get(site: Site, url: str, **kwargs: Any) -> httpx.Response:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(url)

    return run(site, scenario, **kwargs)


def text_of(response: httpx.Response) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, white space squeezed."""
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", response.text, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def result_ids(response: httpx.Response) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/documents/(\d+)" aria-label=', response.text)]


# ---------------------------------------------------------------- login


@pytest.mark.parametrize("path", ["/", "/documents/1", "/?verdict=refused&text=k%C3%AA"])
def test_pages_without_a_read_token_go_to_the_login_form(site: Site, path: str) -> None:
    response = get(site, path, signed_in=False)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [path]  # the query kept as it came, still encoded

    async def preflight_only(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(path, headers={"Authorization": f"Bearer {SENDER}"})

    assert run(site, preflight_only, signed_in=False).status_code == 303


def test_login_sets_an_http_only_strict_cookie_and_returns_to_the_page(site: Site) -> None:
    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        form = await client.get("/login?next=/documents/1")
        login = await client.post("/login", data={"token": READER, "next": f"/documents/{site.refused}"})
        page = await client.get(login.headers["location"])
        return form, login, page

    form, login, page = run(site, scenario, signed_in=False)
    assert form.status_code == 200
    assert 'type="password"' in form.text
    assert 'name="next" value="/documents/1"' in form.text
    assert login.status_code == 303
    assert login.headers["location"] == f"/documents/{site.refused}"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={READER};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert page.status_code == 200
    assert SIGNATURE_VI in text_of(page)


def test_login_over_https_marks_the_cookie_secure(site: Site) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("https://gateway.test/login", data={"token": READER, "next": "/"})

    assert "Secure" in run(site, scenario, signed_in=False).headers["set-cookie"]


@pytest.mark.parametrize("token", ["wrong-token", SENDER])
def test_login_refuses_an_unknown_token_or_one_without_read(site: Site, token: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/login", data={"token": token, "next": "/"})

    response = run(site, scenario, signed_in=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert STRINGS["vi"]["login_failed"] in text_of(response)
    assert token not in response.text  # the form never echoes a token back


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_login_never_redirects_to_another_site(site: Site, target: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/login", data={"token": READER, "next": target})

    assert run(site, scenario, signed_in=False).headers["location"] == "/"


def test_logout_clears_the_cookie(site: Site) -> None:
    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        await client.post("/login", data={"token": READER, "next": "/"})
        assert (await client.get("/")).status_code == 200
        out = await client.post("/logout")
        return out, await client.get("/")

    out, after = run(site, scenario, signed_in=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert re.match(rf'{COOKIE}="?"?;', out.headers["set-cookie"])
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert after.status_code == 303


# ---------------------------------------------------------------- search


def test_search_lists_the_log_newest_first_with_verdict_badges(site: Site) -> None:
    """Checklist B: every received package is in the log with its verdict, times in +07:00."""
    response = get(site, "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="vi">' in response.text
    assert result_ids(response) == [site.deferred, site.accepted, site.refused]
    # Badges: a class for the colour and a word for greyscale and screen readers.
    assert re.search(r'class="badge refused">.*Bị từ chối', response.text)
    assert re.search(r'class="badge accepted">.*Hợp lệ', response.text)
    assert re.search(r'class="badge deferred">.*Tạm hoãn', response.text)
    shown = text_of(response)
    assert "2025-03-14T09:05:07+07:00" in shown  # the refused one's receive time, in Vietnam time
    assert "123/UBND-VP" in shown
    assert "000.00.00.G22" in shown
    # Semantic table: column headers with scope, one label per input.
    assert response.text.count('<th scope="col">') == 8
    for name in ("from", "to", "sender", "recipient", "code", "verdict", "direction", "text"):
        assert f'<label for="f-{name}">' in response.text
        assert f'id="f-{name}"' in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("verdict=refused", ["refused"]),
        ("verdict=accepted", ["accepted"]),
        ("sender=000.00.00.G09", ["deferred", "accepted"]),
        ("sender=000.00.00.G09&verdict=deferred", ["deferred"]),
        ("code=124%2FUBND-VP", ["accepted"]),
        ("direction=out", []),
        ("from=2025-03-14T09:06&to=2025-03-14T09:20", ["deferred", "accepted"]),
        ("text=ng%C3%A2n+s%C3%A1ch", ["refused"]),
    ],
)
def test_search_filters(site: Site, query: str, expected: list[str]) -> None:
    response = get(site, "/?" + query)
    assert response.status_code == 200
    assert result_ids(response) == [getattr(site, name) for name in expected]
    if not expected:
        assert STRINGS["vi"]["none_found"] in text_of(response)


def test_older_link_pages_backwards_keeping_the_filters(site: Site) -> None:
    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        first = await client.get("/?sender=000.00.00.G09&limit=1")
        older = re.search(r'<a href="([^"]+)" rel="next">', first.text)
        assert older is not None, "no 'older' link on a full page"
        return first, await client.get(unescape(older.group(1)))

    first, second = run(site, scenario)
    assert result_ids(first) == [site.deferred]
    assert result_ids(second) == [site.accepted]
    assert "Cũ hơn →" in text_of(first)
    assert 'href="/?sender=000.00.00.G09&amp;limit=1"' in second.text  # "← newest" drops before_id only


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=h%C3%B4m+qua", "from"),
        ("to=2025-13-40", "to"),
        ("verdict=maybe", "verdict"),
        ("direction=up", "direction"),
    ],
)
def test_a_bad_filter_shows_the_form_again_with_the_message_at_its_field(site: Site, query: str, field: str) -> None:
    response = get(site, "/?" + query)
    assert response.status_code == 400
    error = re.search(rf'<p id="e-{field}" class="error" role="alert">(.*?)</p>', response.text, flags=re.S)
    assert error is not None, f"no message next to {field}"
    message = unescape(re.sub(r"<[^>]+>", "", error.group(1)))
    assert message.startswith(STRINGS["vi"]["bad_value"] + ":")
    assert field in message  # the message names the field at fault
    assert f'id="f-{field}"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert result_ids(response) == []


def test_user_data_is_escaped_everywhere(site: Site) -> None:
    """Hostile text in a stored subject and in the query is shown as text, never as markup."""
    hostile_query = '"><script>alert(1)</script>'
    response = get(site, "/?text=" + quote_plus(hostile_query))
    document = get(site, f"/documents/{site.refused}")
    for page in (response, document):
        assert "<script>" not in page.text
        assert "alert('x')" not in page.text  # the quote is escaped too
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in document.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text
    assert HOSTILE in text_of(document)
    assert "script-src" not in document.headers["content-security-policy"]  # default-src 'none' forbids scripts
    assert "default-src 'none'" in document.headers["content-security-policy"]


def test_english_switch_is_remembered_in_a_cookie(site: Site) -> None:
    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        english = await client.get("/?lang=en")
        again = await client.get(f"/documents/{site.refused}")
        back = await client.get("/?lang=vi")
        return english, again, back

    english, again, back = run(site, scenario)
    assert '<html lang="en">' in english.text
    assert "lang=en" in english.headers["set-cookie"]
    assert re.search(r'class="badge refused">.*Refused', english.text)
    assert 'href="/?lang=vi"' in english.text
    assert "Tiếng Việt" in english.text
    assert '<html lang="en">' in again.text
    assert SIGNATURE_EN in text_of(again)
    assert SIGNATURE_VI not in text_of(again)
    assert '<html lang="vi">' in back.text
    assert "lang=vi" in back.headers["set-cookie"]


def test_both_languages_have_every_string() -> None:
    assert set(STRINGS["vi"]) == set(STRINGS["en"])
    # Templates write t.key: Jinja looks attributes up first, so a key named like a dict method
    # ("clear", "items") would print the method instead of the text.
    assert not [key for key in STRINGS["vi"] if hasattr(dict, key)]
    assert all(STRINGS["vi"][key] != STRINGS["en"][key] for key in ("search", "refused", "timeline", "findings"))


# ---------------------------------------------------------------- a document


def test_the_document_page_explains_a_refusal(site: Site) -> None:
    """Checklist A1/A2: the archivist sees why a package was refused, in Vietnamese, with each time's source."""
    response = get(site, f"/documents/{site.refused}")
    assert response.status_code == 200
    shown = text_of(response)
    assert "Văn bản số hiệu lưu" in shown
    assert "Bị từ chối" in shown
    # The finding in plain words, its code small beside it.
    assert SIGNATURE_VI in shown
    assert "<code>pdf-signature-invalid</code>" in response.text
    assert "Từ chối" in shown
    # Header facts.
    for fact in ("000.00.00.G22,2025/03/14,123/UBND-VP", "123/UBND-VP", "vanthu123@partner.gov.vn", _sha(123), _sha(9)):
        assert fact in shown
    # The timeline: our (legal) receive time, the signature's and the time-stamp's, all +07:00.
    timeline = response.text.split('id="timeline"')[1].split("</table>")[0]
    assert "2025-03-14T09:05:07+07:00" in timeline
    assert "2025-03-14T08:59:00+07:00" in timeline
    assert "Hệ thống (thời gian pháp lý)" in timeline
    assert "Dấu thời gian (TSA)" in timeline or "Thời điểm ký trong chữ ký" in timeline
    assert "+00:00" not in timeline
    # Signatures and downloads.
    assert "Nguyễn Văn A" in shown
    assert "HASH_FAILURE" in shown
    assert "Cá nhân" in shown
    assert f'href="/api/v1/messages/{site.refused}/original"' in response.text
    assert f'href="/api/v1/messages/{site.refused}/evidence"' in response.text


def test_a_deferred_document_lists_what_it_waits_for(site: Site) -> None:
    shown = text_of(get(site, f"/documents/{site.deferred}?lang=en"))
    assert "Deferred" in shown
    assert "The certificate's revocation status could not be checked." in shown
    assert "revocation-unavailable" in shown


@pytest.mark.parametrize("id", ["999999", "abc", "-1", "0", "1e3", "٣", "99999999999999999999999999"])
def test_an_unknown_document_is_a_404_page(site: Site, id: str) -> None:
    response = get(site, f"/documents/{id}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert f"Không có văn bản số lưu {id}" in text_of(response)


def test_the_stylesheet_needs_no_token_and_stacks_tables_on_narrow_screens(site: Site) -> None:
    response = get(site, "/static/pages.css", signed_in=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "@media (max-width: 40rem)" in response.text
    assert "attr(data-label)" in response.text


def test_pages_are_not_in_the_api_schema(site: Site) -> None:
    schema = get(site, "/openapi.json").json()
    assert not any(path in schema["paths"] for path in ("/", "/login", "/documents/{id}", "/static/pages.css"))
