"""The read-only JSON API over a receipt log made by the real gateway (``seeded_log``), via httpx over ASGI.

Every endpoint: search (filters, keyset pagination, bad values, injection attempts), one record,
the original mail, the evidence bundle, the partner report, rule replay (admin), and the OpenAPI
schema. The log is opened read-only, and the journal head, the row count and the spool are the
same afterwards (no endpoint writes).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.cli.config import load_settings
from gateway.store import Store
from gateway.web.deps import WebDeps
from tests.archive.seeded import PARTNER_2, SeededLog
from tests.service import PARTNER
from tests.web.apps import bearer, copy_log, served

T = TypeVar("T")
READ = bearer("reader")
Scenario = Callable[[httpx.AsyncClient, WebDeps], Awaitable[T]]


@pytest.fixture(scope="module")
def log(seeded_log: SeededLog, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the seeded log's database and spool (this module's own: some tests compare before/after)."""
    return copy_log(seeded_log.config, tmp_path_factory.mktemp("api-log"))


def _run(log: tuple[Path, Path], scenario: Scenario[T], *, verifier: bool = False, config: Path | None = None) -> T:
    async def main() -> T:
        settings = None if config is None else load_settings(config)
        async with served(*log, verifier=verifier, settings=settings) as (client, deps):
            return await scenario(client, deps)

    return asyncio.run(main())


def _get(log: tuple[Path, Path], path: str, **params: Any) -> httpx.Response:
    async def scenario(client: httpx.AsyncClient, _deps: WebDeps) -> httpx.Response:
        return await client.get(path, params=params, headers=READ)

    return _run(log, scenario)


async def _fingerprint(store: Store, spool: Path) -> tuple[Any, ...]:
    chain = await store.verify_chain()
    counts = await store.count_by_state()
    files = await asyncio.to_thread(lambda: sorted(str(p.relative_to(spool)) for p in spool.rglob("*")))
    return chain, counts, files


# ------------------------------------------------------------------ search


def test_search_lists_every_seeded_package_newest_first(log: tuple[Path, Path], seeded_log: SeededLog) -> None:
    answer = _get(log, "/api/v1/messages", direction="in", limit="100")
    assert answer.status_code == 200
    body = answer.json()
    ids = [item["id"] for item in body["items"]]
    assert set(seeded_log.ids.values()) <= set(ids)
    assert ids == sorted(ids, reverse=True)
    assert body["next"] is None
    first = next(i for i in body["items"] if i["id"] == seeded_log.ids["valid"])
    assert first["verdict"] == "accepted"
    assert first["document_id"] == seeded_log.documents["valid"]
    assert first["received_at"].endswith("+07:00")
    assert "report" not in first


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"verdict": "refused", "direction": "in"}, {"tampered", "unsigned"}),
        ({"verdict": "accepted", "sender": PARTNER_2.organ_id}, {"valid-2"}),
        ({"verdict": "accepted", "sender": PARTNER, "direction": "in"}, {"valid", "no-envelope"}),
        ({"text": "pdf-unsigned"}, {"unsigned"}),
    ],
)
def test_filters_narrow_the_search(
    log: tuple[Path, Path], seeded_log: SeededLog, params: dict[str, str], names: set[str]
) -> None:
    answer = _get(log, "/api/v1/messages", **params)
    assert answer.status_code == 200, answer.text
    found = {item["id"] for item in answer.json()["items"]}
    assert found == {seeded_log.ids[n] for n in names}


def test_keyset_pagination_follows_next_links_to_the_end(log: tuple[Path, Path]) -> None:
    async def scenario(client: httpx.AsyncClient, _deps: WebDeps) -> tuple[list[int], list[int], list[str]]:
        everything = (await client.get("/api/v1/messages", params={"limit": "500"}, headers=READ)).json()
        pages: list[int] = []
        links: list[str] = []
        url: str | None = "/api/v1/messages?limit=2&verdict="  # an empty value counts as not given
        while url is not None:
            body = (await client.get(url, headers=READ)).json()
            assert len(body["items"]) <= 2
            pages.extend(item["id"] for item in body["items"])
            url = body["next"]
            if url is not None:
                links.append(url)
        return [i["id"] for i in everything["items"]], pages, links

    everything, paged, links = _run(log, scenario)
    assert len(everything) > 4
    assert paged == everything
    assert links
    assert all(parse_qs(urlsplit(link).query)["limit"] == ["2"] for link in links)


@pytest.mark.parametrize(
    ("params", "parameter", "hint"),
    [
        ({"verdict": "maybe"}, "verdict", "accepted"),
        ({"direction": "sideways"}, "direction", "in"),
        ({"limit": "abc"}, "limit", ""),
        ({"limit": "0"}, "limit", ""),
        ({"limit": "100000"}, "limit", ""),
        ({"before_id": "-1"}, "before_id", ""),
        ({"from": "yesterday"}, "from", "30d"),
        ({"to": "2025-13-45"}, "to", ""),
        ({"from": "2025-03-15", "to": "2025-03-14"}, "to", "not after"),
        ({"verdikt": "refused"}, "verdikt", "verdict"),
    ],
)
def test_bad_filter_values_are_400_naming_the_parameter(
    log: tuple[Path, Path], params: dict[str, str], parameter: str, hint: str
) -> None:
    answer = _get(log, "/api/v1/messages", **params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["parameter"] == parameter
    assert hint in body["detail"] + body.get("accepted", "")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("text", "xyzzy' OR 1=1 --"),  # as SQL or FTS syntax, OR would widen the match to everything
        ("text", "xyzzy OR pdf"),
        ("text", 'xyzzy" OR "pdf'),
        ("text", "NEAR(xyzzy pdf)"),
        ("text", "xyzzy*"),
        ("text", "-xyzzy"),
        ("text", "%"),
        ("text", "_"),
        ("sender", "' OR 1=1 --"),
        ("sender", "%"),
        ("recipient", "%"),
        ("code", "1; DROP TABLE messages; --"),
        ("sender", "000.00.00.G22' --"),
    ],
)
def test_injection_attempts_match_nothing_and_change_nothing(log: tuple[Path, Path], name: str, value: str) -> None:
    async def scenario(client: httpx.AsyncClient, deps: WebDeps) -> tuple[httpx.Response, bool]:
        before = await _fingerprint(deps.store, deps.spool.directory)
        answer = await client.get("/api/v1/messages", params={name: value}, headers=READ)
        return answer, before == await _fingerprint(deps.store, deps.spool.directory)

    answer, unchanged = _run(log, scenario)
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == []
    assert unchanged


def test_a_before_id_that_names_nothing_is_400(log: tuple[Path, Path]) -> None:
    answer = _get(log, "/api/v1/messages", before_id="999999")
    assert answer.status_code == 400
    assert answer.json()["parameter"] == "before_id"


# ------------------------------------------------------------------ one record, original, evidence


def test_a_record_has_verdict_findings_timeline_and_chain(log: tuple[Path, Path], seeded_log: SeededLog) -> None:
    answer = _get(log, f"/api/v1/messages/{seeded_log.ids['tampered']}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["verdict"]["verdict"] == "refused"
    codes = {f["code"] for f in body["verdict"]["findings"]}
    assert codes & {"pdf-signature-invalid", "pdf-modified-after-signing"}
    assert all(f["message_vi"] and f["message_en"] for f in body["verdict"]["findings"])
    assert body["journal"]
    assert all(len(j["hash"]) == 64 for j in body["journal"])
    assert body["timeline"]
    assert all(e["at"].endswith("+07:00") for e in body["timeline"])


@pytest.mark.parametrize(("path", "status"), [("/api/v1/messages/999999", 404), ("/api/v1/messages/abc", 422)])
def test_an_unknown_or_malformed_id(log: tuple[Path, Path], path: str, status: int) -> None:
    for suffix in ("", "/original", "/evidence"):
        answer = _get(log, path + suffix)
        assert answer.status_code == status, (suffix, answer.text)
        assert answer.json()["parameter"] == "id"


def test_the_original_is_the_spooled_mail_byte_for_byte(log: tuple[Path, Path], seeded_log: SeededLog) -> None:
    id = seeded_log.ids["valid"]
    answer = _get(log, f"/api/v1/messages/{id}/original")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "message/rfc822"
    assert answer.headers["content-disposition"] == f'attachment; filename="gateway-{id}.eml"'
    record = _get(log, f"/api/v1/messages/{id}").json()
    assert hashlib.sha256(answer.content).hexdigest() == record["sha256"] == answer.headers["x-content-sha256"]


def test_the_evidence_bundle_is_a_checkable_zip(log: tuple[Path, Path], seeded_log: SeededLog) -> None:
    id = seeded_log.ids["tampered"]
    answer = _get(log, f"/api/v1/messages/{id}/evidence")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    assert hashlib.sha256(answer.content).hexdigest() == answer.headers["x-content-sha256"]
    with zipfile.ZipFile(io.BytesIO(answer.content)) as bundle:
        names = set(bundle.namelist())
        assert {"original.eml", "report.json", "SHA256SUMS", "chain/entries.json"} <= names
        sums = bundle.read("SHA256SUMS").decode()
        for line in sums.splitlines():
            digest, _, name = line.partition("  ")
            assert hashlib.sha256(bundle.read(name)).hexdigest() == digest


# ------------------------------------------------------------------ reports and replay


def test_partner_report_counts_each_sender(log: tuple[Path, Path]) -> None:
    answer = _get(log, "/api/v1/reports/partners", since="3650d")
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert PARTNER in text
    assert PARTNER_2.organ_id in text
    bad = _get(log, "/api/v1/reports/partners", since="last week")
    assert bad.status_code == 400
    assert bad.json()["parameter"] == "since"


def test_replay_needs_admin_and_reports_what_a_stricter_policy_flips(
    log: tuple[Path, Path], seeded_log: SeededLog
) -> None:
    """A2 made strict over HTTP: ``envelope-signature-absent = reject`` flips exactly "no-envelope"."""
    stricter = '[actions]\n"envelope-signature-absent" = "reject"\n'

    async def scenario(client: httpx.AsyncClient, deps: WebDeps) -> tuple[int, httpx.Response, httpx.Response, bool]:
        before = await _fingerprint(deps.store, deps.spool.directory)
        as_reader = await client.post("/api/v1/rules/replay", content=stricter.encode(), headers=READ)
        answer = await client.post("/api/v1/rules/replay", content=stricter.encode(), headers=bearer("admin"))
        broken = await client.post("/api/v1/rules/replay", content=b"[policy\nname=", headers=bearer("admin"))
        return as_reader.status_code, answer, broken, before == await _fingerprint(deps.store, deps.spool.directory)

    refused, answer, broken, unchanged = _run(log, scenario, verifier=True, config=seeded_log.config)
    assert refused == 403
    assert answer.status_code == 200, answer.text
    flips = answer.json()["flips"]
    assert [f["id"] for f in flips] == [seeded_log.ids["no-envelope"]]
    assert broken.status_code == 400
    assert broken.json()["parameter"] == "body"
    assert unchanged


# ------------------------------------------------------------------ the schema


def test_openapi_lists_every_route_and_docs_are_off(log: tuple[Path, Path]) -> None:
    async def scenario(client: httpx.AsyncClient, _deps: WebDeps) -> tuple[dict[str, Any], int, int]:
        schema = (await client.get("/openapi.json")).json()
        return schema, (await client.get("/docs")).status_code, (await client.get("/redoc")).status_code

    schema, docs, redoc = _run(log, scenario)
    routes = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert {
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/preflight", "post"),
        ("/api/v1/messages", "get"),
        ("/api/v1/messages/{id}", "get"),
        ("/api/v1/messages/{id}/original", "get"),
        ("/api/v1/messages/{id}/evidence", "get"),
        ("/api/v1/reports/partners", "get"),
        ("/api/v1/rules/replay", "post"),
    } <= routes
    search = schema["paths"]["/api/v1/messages"]["get"]
    assert {p["name"] for p in search["parameters"]} >= {"from", "to", "sender", "verdict", "limit", "before_id"}
    assert "multipart/form-data" in schema["paths"]["/preflight"]["post"]["requestBody"]["content"]
    assert docs == 404
    assert redoc == 404
