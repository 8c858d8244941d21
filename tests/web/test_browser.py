"""The archivist's pages in a real browser: Debian's Chromium, driven by Playwright, over a real socket.

The app (``gateway.web.app.create_app``, uvicorn through ``gateway.web.server.WebServer``) runs
in a thread of its own with its own event loop, over the session's seeded receipt log
(``tests.archive.seeded``: real packages that went through the real gateway); Playwright's sync
API drives Chromium from the test's thread. Playwright's own browser download is never used:
``executable_path`` points at ``/usr/bin/chromium`` (``tests.external.require``: skipped
locally when it is missing, a failure in CI).

Screenshots (full page at 1280 px, and at 360 px where tables become cards) are kept under
``tests/artifacts/web/`` for a person to look at (git-ignored, like every test artefact).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from gateway.cli.config import load_settings
from gateway.clock import SystemClock
from gateway.store import MessageView, Spool, Store, resolve_url
from gateway.web.app import create_app
from gateway.web.auth import TokenInfo, TokenStore, hash_token, new_token
from gateway.web.deps import WebDeps
from gateway.web.server import WebServer
from tests.archive.seeded import SeededLog
from tests.external import require

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_START_SECONDS = 30.0


class ServedLog:
    """The HTTP app over a receipt log, in a thread with its own event loop (a context manager).

    Args:
        config: the gateway.toml of the log.
        tokens: the tokens the app accepts.
    """

    def __init__(self, config: Path, tokens: TokenStore) -> None:
        self._config = config
        self._tokens = tokens
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="served-log", daemon=True)
        self.base_url = ""
        self.items: dict[int, MessageView] = {}

    def __enter__(self) -> ServedLog:
        self._thread.start()
        if not self._ready.wait(_START_SECONDS) or self._error is not None:
            raise RuntimeError("the web app did not start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(_START_SECONDS)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        settings = load_settings(self._config)
        clock = SystemClock()
        store = await Store.open(resolve_url(settings.store.url, self._config.parent), clock=clock, migrate=False)
        try:
            self.items = {item.id: item for item in await store.list(limit=1000)}
            web = WebDeps(
                store=store,
                spool=Spool(settings.store.spool),
                settings=settings,
                config_dir=self._config.parent,
                tokens=self._tokens,
                verifier=None,
                clock=clock,
            )
            server = WebServer(create_app(web), "127.0.0.1", 0, grace=1.0)
            await server.start()
            host, port = server.address
            self.base_url = f"http://{host}:{port}"
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await server.stop()
        finally:
            await store.close()


@dataclass(frozen=True)
class Site:
    """A served seeded log, a token for it, and what is in it."""

    url: str
    token: str
    seeded: SeededLog
    items: dict[int, MessageView]


@pytest.fixture(scope="module")
def site(seeded_log: SeededLog) -> Iterator[Site]:
    token = new_token()
    tokens = TokenStore((TokenInfo("archivist", frozenset({"read"}), hash_token(token)),))
    with ServedLog(seeded_log.config, tokens) as served:
        yield Site(served.base_url, token, seeded_log, served.items)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require("chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _log_in(page: Page, site: Site) -> None:
    page.goto(site.url + "/")
    expect(page).to_have_url(site.url + "/login?next=%2F")
    page.get_by_label("Mã truy cập").fill(site.token)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(site.url + "/")


def _screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _context(browser: Browser, width: int) -> BrowserContext:
    return browser.new_context(accept_downloads=True, locale="vi-VN", viewport={"width": width, "height": 900})


def test_archivist_finds_a_refused_document_and_downloads_its_evidence(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    """Issue 6 proof: log in, search for refusals, open "tampered", read why in Vietnamese, get the evidence."""
    tampered = site.seeded.ids["tampered"]
    refused = {site.seeded.ids["tampered"], site.seeded.ids["unsigned"]}
    context = _context(browser, 1280)
    try:
        page = context.new_page()
        _log_in(page, site)
        expect(page.locator("html")).to_have_attribute("lang", "vi")

        page.get_by_label("Kết quả kiểm tra").select_option("refused")
        page.get_by_role("button", name="Tìm kiếm").click()
        expect(page).to_have_url(re.compile(r"/\?.*verdict=refused"))
        rows = page.locator("table.results tbody tr")
        expect(rows).to_have_count(len(refused))
        expect(rows.locator(".badge.refused")).to_have_count(len(refused))
        expect(rows.first).to_contain_text("Bị từ chối")
        _screenshot(page, "search-refused.png")

        page.get_by_role("link", name=f"Xem văn bản {tampered}").click()
        expect(page).to_have_url(f"{site.url}/documents/{tampered}")
        expect(page.locator(".headline .badge")).to_have_text("✗ Bị từ chối")
        # The reason in plain Vietnamese, with its code small beside it.
        reason = page.locator(".finding.reject .message").first
        expect(reason).to_be_visible()
        expect(reason).to_contain_text("không hợp lệ: tài liệu đã bị thay đổi")
        expect(page.locator(".finding.reject code").first).to_have_text("pdf-signature-invalid")
        # The timeline marks our receive time as the legal one, and shows the time-stamp's.
        expect(page.locator("table.timeline")).to_contain_text("Hệ thống (thời gian pháp lý)")
        expect(page.locator("table.timeline")).to_contain_text("+07:00")
        _screenshot(page, "document-tampered.png")

        with page.expect_download() as download_info:
            page.get_by_role("link", name="Tải gói chứng cứ (.zip)").click()
        bundle = tmp_path / "evidence.zip"
        download_info.value.save_as(bundle)
        with zipfile.ZipFile(io.BytesIO(bundle.read_bytes())) as archive:
            assert archive.testzip() is None
            original = archive.read("original.eml")
            sums = archive.read("SHA256SUMS").decode()
        assert hashlib.sha256(original).hexdigest() == site.items[tampered].sha256
        assert f"{site.items[tampered].sha256}  original.eml" in sums

        page.get_by_role("link", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator(".finding.reject .message").first).to_contain_text("the document was altered")
    finally:
        context.close()


def test_pages_read_on_a_360_px_screen(site: Site, browser: Browser) -> None:
    """At 360 px the results and the document's tables are stacked cards: nothing scrolls sideways."""
    context = _context(browser, 360)
    try:
        page = context.new_page()
        _log_in(page, site)
        rows = page.locator("table.results tbody tr")
        expect(rows).to_have_count(len(site.seeded.ids) + _notices(site))
        assert not _too_wide(page, 360)
        # Each cell says which column it is (the header row is off screen).
        label = page.evaluate(
            "getComputedStyle(document.querySelector('table.results td[data-label]'), '::before').content"
        )
        assert label == '"Thời điểm nhận"'
        box = rows.first.bounding_box()
        assert box is not None
        assert box["width"] <= 360
        _screenshot(page, "search-360.png")

        page.goto(f"{site.url}/documents/{site.seeded.ids['tampered']}")
        expect(page.locator(".finding.reject .message").first).to_be_visible()
        assert not _too_wide(page, 360)
        _screenshot(page, "document-tampered-360.png")
    finally:
        context.close()


_TOO_WIDE = """width => [...document.querySelectorAll('body, body *')]
    .filter(e => e.getBoundingClientRect().right > width + 0.5 || e.scrollWidth > Math.max(e.clientWidth, width))
    .map(e => [e.tagName.toLowerCase(), ...e.classList].join('.') + ` (${e.scrollWidth} px)`)"""


def _too_wide(page: Page, width: int) -> list[str]:
    """The elements that reach past ``width`` (a page that scrolls sideways), innermost last."""
    found: list[str] = page.evaluate(_TOO_WIDE, width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width or found, "scrolls without a culprit"
    return found


def _notices(site: Site) -> int:
    """Rows besides the seeded inbound items (the status notices they caused)."""
    return len(site.items) - len(site.seeded.ids)
