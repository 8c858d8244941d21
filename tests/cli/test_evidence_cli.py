"""``gateway evidence ID -o bundle.zip`` on the session's seeded receipt log, as an archivist runs it."""

from __future__ import annotations

import asyncio
import hashlib
import zipfile
from pathlib import Path

from typer.testing import CliRunner, Result

from gateway.cli import app
from gateway.errors import ConfigError
from tests.archive.seeded import SeededLog
from tests.service import receipt_log


def _evidence(seeded: SeededLog, *args: str) -> Result:
    return CliRunner().invoke(app, ["evidence", *args, "--config", str(seeded.config)])


def _journal_rows(seeded: SeededLog) -> int:
    async def count() -> int:
        async with receipt_log(seeded.config) as store:
            return (await store.verify_chain()).count

    return asyncio.run(count())


def test_writes_the_bundle_and_prints_its_sha256(seeded_log: SeededLog, tmp_path: Path) -> None:
    out = tmp_path / "bang-chung.zip"
    before = _journal_rows(seeded_log)
    result = _evidence(seeded_log, str(seeded_log.ids["valid"]), "-o", str(out))
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"{digest}  {out}" in result.output  # sha256sum's format: `sha256sum -c` can check it
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
    assert {"original.eml", "report.json", "policy.toml", "chain/verify.py", "SHA256SUMS"} <= names
    for name in names:
        assert name in result.output
    assert _journal_rows(seeded_log) == before  # read only: nothing was journaled


def test_refuses_to_overwrite_without_force(seeded_log: SeededLog, tmp_path: Path) -> None:
    out = tmp_path / "bundle.zip"
    out.write_bytes(b"kept")
    refused = _evidence(seeded_log, str(seeded_log.ids["tampered"]), "-o", str(out))
    assert isinstance(refused.exception, ConfigError)
    assert refused.exception.exit_status == 2
    assert "--force" in str(refused.exception)
    assert out.read_bytes() == b"kept"
    forced = _evidence(seeded_log, str(seeded_log.ids["tampered"]), "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert zipfile.is_zipfile(out)


def test_an_unknown_item_is_a_usage_error(seeded_log: SeededLog, tmp_path: Path) -> None:
    out = tmp_path / "none.zip"
    result = _evidence(seeded_log, "999999", "-o", str(out))
    assert isinstance(result.exception, ConfigError)
    assert "no work item 999999" in str(result.exception)
    assert not out.exists()
