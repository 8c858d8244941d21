"""What a fresh-clone walkthrough found in the HTTP surfaces, pinned (a copy of ``seeded_log``, httpx over ASGI).

* A refused enum value (``?verdict=maybe``) names what is accepted, like an unknown parameter.
* ``finding_codes`` holds each code once (the tampered sample has one per signature).
* The evidence endpoint answers 410 naming the spool when the original mail is gone, never a
  bundle without it.
* The search page shows the notices we sent as notices (their status code and its name), not as
  outgoing documents "not judged".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from gateway.store import Spool
from gateway.web.auth import COOKIE
from tests.archive.seeded import SeededLog
from tests.service import work_item
from tests.web.apps import bearer, copy_log, secret, served

T = TypeVar("T")


@pytest.fixture(scope="module")
def log(seeded_log: SeededLog, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """This module's own copy of the seeded log (one test removes a mail from its spool)."""
    return copy_log(seeded_log.config, tmp_path_factory.mktemp("walk-log"))


def _run(log: tuple[Path, Path], scenario: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with served(*log) as (client, _):
            return await scenario(client)

    return asyncio.run(main())


def _get(log: tuple[Path, Path], url: str, *, page: bool = False) -> httpx.Response:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        if page:
            client.cookies.set(COOKIE, secret("reader"))
            return await client.get(url)
        return await client.get(url, headers=bearer("reader"))

    return _run(log, scenario)


@pytest.mark.parametrize(
    ("query", "parameter", "accepted"),
    [
        ("verdict=maybe", "verdict", "accepted, refused, deferred"),
        ("direction=sideways", "direction", "in, out"),
        ("limit=0", "limit", "a whole number in 1..500"),
        ("from=yesterday", "from", "an age (30d, 12h, 90m, 2w)"),
    ],
)
def test_a_refused_value_names_what_is_accepted(
    log: tuple[Path, Path], query: str, parameter: str, accepted: str
) -> None:
    answer = _get(log, f"/api/v1/messages?{query}")
    assert answer.status_code == 400
    body = answer.json()
    assert body["parameter"] == parameter
    assert accepted in body["accepted"]


def test_finding_codes_name_each_code_once(log: tuple[Path, Path], seeded_log: SeededLog) -> None:
    items = _get(log, "/api/v1/messages?verdict=refused&limit=100").json()["items"]
    tampered = next(i for i in items if i["id"] == seeded_log.ids["tampered"])
    assert "pdf-signature-invalid" in tampered["finding_codes"]
    assert len(tampered["finding_codes"]) == len(set(tampered["finding_codes"]))
    record = _get(log, f"/api/v1/messages/{seeded_log.ids['tampered']}").json()
    every = [f["code"] for f in record["verdict"]["findings"]]
    assert len(every) > len(tampered["finding_codes"])  # the record keeps each finding
    assert tampered["finding_codes"] == list(dict.fromkeys(every))


def test_evidence_without_the_original_is_410_naming_the_spool(log: tuple[Path, Path], seeded_log: SeededLog) -> None:
    id = seeded_log.ids["unsigned"]
    gone = Spool(log[1]).path(asyncio.run(work_item(seeded_log.config, id)).sha256)
    gone.chmod(0o600)
    gone.unlink()
    answer = _get(log, f"/api/v1/messages/{id}/evidence")
    assert answer.status_code == 410
    assert answer.headers["content-type"] == "application/json"
    detail = answer.json()["detail"]
    assert f"the original mail of work item {id} cannot be read from the spool {log[1]}" in detail
    assert str(gone) in detail
    assert "[store] spool" in detail


def _rows(response: httpx.Response) -> dict[int, str]:
    """Each result row's visible text by its id."""
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", response.text, flags=re.S):
        id = re.search(r'<a href="/documents/(\d+)"', row)
        if id:
            found[int(id.group(1))] = " ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split())
    return found


@pytest.mark.parametrize(
    ("lang", "accepted_notice", "refused_notice", "not_judged"),
    [
        ("vi", "Thông báo trạng thái 01 — Đã đến", "Thông báo trạng thái 02 — Từ chối tiếp nhận", "Chưa kiểm tra"),
        ("en", "Status notice 01 — arrived", "Status notice 02 — refused", "Not judged"),
    ],
)
def test_search_shows_our_notices_as_notices(
    log: tuple[Path, Path], lang: str, accepted_notice: str, refused_notice: str, not_judged: str
) -> None:
    rows = _rows(_get(log, f"/?direction=out&lang={lang}", page=True))
    assert rows
    shown = list(rows.values())
    assert any(accepted_notice in row for row in shown), shown
    assert any(refused_notice in row for row in shown), shown
    assert not any(not_judged in row for row in shown), shown
    assert not any(("Văn bản đi" if lang == "vi" else "Outgoing") in row for row in shown), shown
