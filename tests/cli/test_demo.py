"""``gateway demo`` against a real running gateway (issue 5: what ``make run`` tells a new user to try).

The gateway runs in-process on this test's event loop (``tests.service.running``: real SMTP
listener, real store, real pipeline, Maildir DMS and axis); the demo runs as the operator runs it,
a separate ``python -m gateway demo`` process, and signs its samples with the session's
development PKI, whose OCSP, CRLs and TSA the ``dev_pki`` fixture serves. The configuration has no
``[dev] pki`` (that would make ``serve`` start a second PKI server on the fixture's port), so the
demo gets the bundle with ``--pki`` and the ephemeral SMTP port with ``--smtp``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.devpki import DevPKI
from gateway.edxml.model import StatusPackage
from gateway.edxml.parse import parse
from gateway.pipeline.mails import find_package
from gateway.store import MessageView
from tests.service import OUR_MAIL, PARTNER, PARTNER_MAIL, running, work_item, write_config

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

SAMPLES = ("valid", "tampered", "unsigned")
TAMPERED_CODES = {"pdf-signature-invalid", "pdf-modified-after-signing"}


async def _demo(*args: str, cwd: Path, wait_seconds: float = 240.0) -> tuple[int, str, str]:
    """Run ``gateway demo ARGS`` as a separate process without blocking the gateway's event loop."""
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "demo",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=wait_seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _run_against_gateway(config: Path, pki: DevPKI, *extra: str) -> tuple[int, str, str]:
    async def go() -> tuple[int, str, str]:
        async with running(config) as where:
            host, port = where.smtp
            return await _demo(
                "--config",
                str(config),
                "--pki",
                str(pki.directory),
                "--smtp",
                f"{host}:{port}",
                *extra,
                cwd=config.parent,
            )

    return asyncio.run(go())


async def _items(config: Path, ids: list[int]) -> list[MessageView]:
    return [await work_item(config, id) for id in ids]


def _codes(item: MessageView) -> set[str]:
    return {str(finding["code"]) for finding in item.findings or ()}


def _statuses(maildir: Path) -> dict[str, StatusPackage]:
    """The status packages in a Maildir's ``new/``, by the DocumentId they answer."""
    found: dict[str, StatusPackage] = {}
    for path in sorted((maildir / "new").iterdir()):
        package = find_package(path.read_bytes()).package
        assert package is not None, path
        status = parse(package).package
        assert isinstance(status, StatusPackage), path
        assert status.response_for.document_id is not None
        found[status.response_for.document_id] = status
    return found


def _row(stdout: str, name: str) -> tuple[int, str, str, str, str]:
    """A sample's table row: id, received, state, verdict, and the text of its findings and destinations.

    A row spans several lines (one finding code, one destination per line); its last two columns
    are everything up to the next row.
    """
    match = re.search(
        rf"^\s*(\d+)\s+{name}\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*?)(?=^\s*\d+\s+[a-z]|^as expected|\Z)", stdout, re.M | re.S
    )
    assert match, f"no row for {name} in:\n{stdout}"
    id, received, state, verdict, rest = match.groups()
    return int(id), received, state, verdict, " ".join(rest.split())


def test_demo_pushes_three_samples_through_the_running_gateway(tmp_path: Path, dev_pki: DevPKI) -> None:
    """The valid sample reaches the DMS with a status 01; the tampered and unsigned get a status 02."""
    config = write_config(tmp_path, dev_pki)
    code, out, err = _run_against_gateway(config, dev_pki)
    assert code == 0, out + err
    assert "as expected" in out
    assert re.search(r"^\s*valid\s+250 2\.0\.0 Ok: queued as \d+", out, re.M), out

    rows = {name: _row(out, name) for name in SAMPLES}
    for _, received, _, _, _ in rows.values():
        assert received.endswith("+07:00")
    valid_id, _, state, verdict, rest = rows["valid"]
    assert (state, verdict) == ("delivered", "accepted")
    assert "DMS maildir:dms" in rest
    assert f"status 01 sent to {PARTNER_MAIL}" in rest
    _, _, state, verdict, rest = rows["tampered"]
    assert (state, verdict) == ("refused", "refused")
    assert TAMPERED_CODES & set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)+", rest)), rest
    assert f"refusal (status 02) sent to {PARTNER_MAIL}" in rest
    _, _, state, verdict, rest = rows["unsigned"]
    assert (state, verdict) == ("refused", "refused")
    assert "pdf-unsigned" in rest
    assert f"refusal (status 02) sent to {PARTNER_MAIL}" in rest

    # What the table says is what the receipt log holds.
    valid, tampered, unsigned = asyncio.run(_items(config, [rows[name][0] for name in SAMPLES]))
    assert (valid.state, valid.verdict, valid.from_organ) == ("delivered", "accepted", PARTNER)
    assert valid.mail_from == PARTNER_MAIL
    assert valid.rcpt_to == (OUR_MAIL,)
    assert (tampered.state, tampered.verdict) == ("refused", "refused")
    assert TAMPERED_CODES & _codes(tampered)
    assert (unsigned.state, unsigned.verdict) == ("refused", "refused")
    assert "pdf-unsigned" in _codes(unsigned)
    assert not (_codes(valid) & (TAMPERED_CODES | {"pdf-unsigned"}))
    assert len({valid.document_id, tampered.document_id, unsigned.document_id}) == 3

    # Only the valid one reached the DMS (the Maildir deliverer names files "<item id>-<sha256>").
    [delivered] = (tmp_path / "dms" / "new").iterdir()
    assert delivered.name.startswith(f"{valid_id}-")
    assert b"X-Gateway-Verdict: accepted" in delivered.read_bytes()

    # The partner got a signed status for each: 01 for the valid one, 02 naming the reason otherwise.
    statuses = _statuses(tmp_path / "axis")
    assert {doc: s.status_code for doc, s in statuses.items()} == {
        valid.document_id: "01",
        tampered.document_id: "02",
        unsigned.document_id: "02",
    }
    assert "pdf-unsigned" in (statuses[str(unsigned.document_id)].description or "")
    tampered_reason = statuses[str(tampered.document_id)].description or ""
    assert any(c in tampered_reason for c in TAMPERED_CODES), tampered_reason


def test_demo_with_inline_verdicts_reports_the_550_and_finds_the_refused_items(tmp_path: Path, dev_pki: DevPKI) -> None:
    """With inline verdicts the refusals are answered 550 in the dialogue (no id): found by Message-ID."""
    config = write_config(tmp_path, dev_pki, inline_verdict_seconds=60)
    code, out, err = _run_against_gateway(config, dev_pki, "--json")
    assert code == 0, out + err
    rows: dict[str, dict[str, Any]] = {row["sample"]: row for row in json.loads(out)}
    assert set(rows) == set(SAMPLES)
    assert rows["valid"]["smtp_reply"].startswith("250 2.0.0 Ok: queued as ")
    assert (rows["valid"]["state"], rows["valid"]["verdict"]) == ("delivered", "accepted")
    assert rows["tampered"]["smtp_reply"].startswith("550 5.7.1 ")
    assert rows["unsigned"]["smtp_reply"].startswith("550 5.7.1 pdf-unsigned")
    for name in ("tampered", "unsigned"):
        assert (rows[name]["state"], rows[name]["verdict"]) == ("refused", "refused")
        assert isinstance(rows[name]["id"], int)
        assert rows[name]["received_at"].endswith("+07:00")
    assert TAMPERED_CODES & set(rows["tampered"]["findings"])
    assert "pdf-unsigned" in rows["unsigned"]["findings"]
    assert all(row["as_expected"] for row in rows.values())
    # Progress goes to stderr with --json, so stdout stays one JSON document.
    assert "gateway demo: three sample packages" in err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_demo_without_a_running_gateway_says_how_to_start_one(tmp_path: Path, dev_pki: DevPKI) -> None:
    config = write_config(tmp_path, dev_pki)
    smtp = f"127.0.0.1:{_free_port()}"
    code, out, err = asyncio.run(
        _demo("--config", str(config), "--pki", str(dev_pki.directory), "--smtp", smtp, cwd=tmp_path, wait_seconds=60)
    )
    assert code == 1, out + err
    assert f"nothing answers SMTP at {smtp}" in err
    assert "is `gateway serve` running? start it with make run" in err
    assert not (tmp_path / "gateway.db").exists()  # it failed before touching anything


def test_demo_needs_the_development_pki(tmp_path: Path, dev_pki: DevPKI) -> None:
    config = write_config(tmp_path, dev_pki)
    code, out, err = asyncio.run(_demo("--config", str(config), "--smtp", "127.0.0.1:1", cwd=tmp_path, wait_seconds=60))
    assert code == 2, out + err
    assert "[dev] pki is not set" in err
    assert "--pki DIR" in err
