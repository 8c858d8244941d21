"""``POST /preflight``: a sender's package judged as the gateway would, and nothing kept.

Packages are the originals the real gateway judged in ``seeded_log`` (taken from its spool), so
the verdicts over HTTP must equal the recorded ones. The log is a copy; its journal head, row
counts and spool are compared before and after (A1-A8 are judged by the same ``verify_package``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli.config import load_settings
from gateway.settings import EdxmlSettings, Settings
from gateway.web.deps import WebDeps
from tests.archive.seeded import SeededLog
from tests.web.apps import bearer, copy_log, package_of, served

SENDER = bearer("sender")


@pytest.fixture(scope="module")
def log(seeded_log: SeededLog, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """This module's own copy of the seeded database and spool."""
    return copy_log(seeded_log.config, tmp_path_factory.mktemp("preflight-log"))


@pytest.fixture(scope="module")
def packages(log: tuple[Path, Path], seeded_log: SeededLog) -> dict[str, bytes]:
    """The edXML package of each seeded item, as the gateway received it."""

    async def read() -> dict[str, bytes]:
        return {name: await package_of(*log, id) for name, id in seeded_log.ids.items()}

    return asyncio.run(read())


async def _trace(deps: WebDeps) -> tuple[Any, ...]:
    spool = deps.spool.directory
    files = await asyncio.to_thread(lambda: sorted(str(p.relative_to(spool)) for p in spool.rglob("*")))
    return await deps.store.verify_chain(), await deps.store.count_by_state(), files


def _post(
    log: tuple[Path, Path],
    settings: Settings,
    **request: Any,
) -> tuple[httpx.Response, bool]:
    """POST /preflight; also whether the log and spool are exactly as before."""

    async def main() -> tuple[httpx.Response, bool]:
        async with served(*log, settings=settings, verifier=True) as (client, deps):
            before = await _trace(deps)
            answer = await client.post("/preflight", **request)
            return answer, before == await _trace(deps)

    return asyncio.run(main())


@pytest.mark.parametrize(("name", "verdict"), [("valid", "accepted"), ("tampered", "refused"), ("unsigned", "refused")])
def test_the_verdict_is_the_one_the_gateway_recorded_and_nothing_is_kept(
    log: tuple[Path, Path], seeded_log: SeededLog, packages: dict[str, bytes], name: str, verdict: str
) -> None:
    """A1-A8 over HTTP: the same report ``gateway verify --json`` gives; no row, journal event or spool file."""
    settings = load_settings(seeded_log.config)
    answer, untouched = _post(
        log, settings, content=packages[name], headers={**SENDER, "Content-Type": "application/xml"}
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["verdict"] == verdict
    assert report["size"] == len(packages[name])
    assert report["policy"]["sha256"]
    if verdict == "refused":
        assert any(f["action"] == "reject" and f["message_vi"] and f["message_en"] for f in report["findings"])
    assert untouched


def test_a_multipart_upload_gets_the_same_report(
    log: tuple[Path, Path], seeded_log: SeededLog, packages: dict[str, bytes]
) -> None:
    settings = load_settings(seeded_log.config)
    files = {"package": ("goi-tin.edxml", packages["tampered"], "application/xml")}
    answer, untouched = _post(log, settings, files=files, headers=SENDER)
    assert answer.status_code == 200, answer.text
    codes = {f["code"] for f in answer.json()["findings"]}
    assert codes & {"pdf-signature-invalid", "pdf-modified-after-signing"}
    assert untouched


def test_a_package_over_the_limit_is_413_whether_declared_or_streamed(
    log: tuple[Path, Path], seeded_log: SeededLog, packages: dict[str, bytes]
) -> None:
    base = load_settings(seeded_log.config)
    limit = len(packages["valid"]) - 1
    settings = dataclasses.replace(base, edxml=EdxmlSettings(max_package_bytes=limit))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit is enforced while reading
        data = packages["valid"]
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    declared, _ = _post(log, settings, content=packages["valid"], headers=SENDER)
    streamed, untouched = _post(log, settings, content=chunks(), headers=SENDER)
    form, _ = _post(log, settings, files={"package": ("p.edxml", packages["valid"])}, headers=SENDER)
    for answer in (declared, streamed, form):
        assert answer.status_code == 413, answer.text
        assert f"max_package_bytes = {limit}" in answer.json()["detail"]
    assert untouched
    fits, _ = _post(log, base, content=packages["valid"], headers=SENDER)
    assert fits.status_code == 200


@pytest.mark.parametrize(
    ("request_", "parameter"),
    [
        ({"content": b""}, "body"),
        ({"files": {"other": ("p.edxml", b"<x/>")}}, "package"),
        ({"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, "package"),
    ],
)
def test_no_package_is_400_naming_what_is_missing(
    log: tuple[Path, Path], seeded_log: SeededLog, request_: dict[str, Any], parameter: str
) -> None:
    settings = load_settings(seeded_log.config)
    headers = {**SENDER, **request_.pop("headers", {})}
    answer, untouched = _post(log, settings, headers=headers, **request_)
    assert answer.status_code == 400, answer.text
    assert answer.json()["parameter"] == parameter
    assert untouched


def test_garbage_is_judged_refused_not_an_error(log: tuple[Path, Path], seeded_log: SeededLog) -> None:
    answer, untouched = _post(log, load_settings(seeded_log.config), content=b"<not-edxml/>", headers=SENDER)
    assert answer.status_code == 200
    assert answer.json()["verdict"] == "refused"
    assert untouched


def test_without_a_verifier_preflight_is_503(tmp_path: Path) -> None:
    async def main() -> httpx.Response:
        async with served(tmp_path / "gateway.db", tmp_path / "spool", migrate=True) as (client, _):
            return await client.post("/preflight", content=b"<x/>", headers=SENDER)

    answer = asyncio.run(main())
    assert answer.status_code == 503
    assert "verifier" in answer.json()["detail"]
