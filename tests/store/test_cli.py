"""``gateway db upgrade``, ``gateway log verify-chain`` and ``gateway log list`` as operators run them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli.log import parse_since
from gateway.clock import FixedClock
from gateway.errors import ConfigError
from gateway.store import Store
from gateway.store.migrate import head_revision
from tests.command import gateway
from tests.store.helpers import intake, raw_sql

RECEIVED = datetime(2025, 3, 14, 2, 5, 7, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A gateway.toml in etc/ whose relative database path resolves against etc/, not the cwd."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "gateway.toml").write_text('[store]\nurl = "sqlite+aiosqlite:///var/gateway.db"\n', encoding="utf-8")
    return etc


def _fill(site: Path) -> None:
    async def scenario() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{site / 'var' / 'gateway.db'}", clock=FixedClock(RECEIVED))
        try:
            first = await store.record_intake(intake(1))
            await store.record_intake(intake(2, kind="submission", channel="submission"))
            await store.claim(["inbound"], limit=1)
            await store.transition(first.id, "delivered", reason="accepted", event="delivered")
        finally:
            await store.close()

    asyncio.run(scenario())


def test_db_upgrade_creates_and_then_keeps_the_database(site: Path, tmp_path: Path) -> None:
    first = gateway("db", "upgrade", "--config", str(site / "gateway.toml"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from empty to revision {head_revision()}" in first.stdout
    assert (site / "var" / "gateway.db").is_file()
    again = gateway("db", "upgrade", "--config", str(site / "gateway.toml"), cwd=tmp_path)
    assert again.returncode == 0
    assert f"already at revision {head_revision()}" in again.stdout


def test_log_commands_need_an_existing_database(site: Path, tmp_path: Path) -> None:
    result = gateway("log", "verify-chain", "--config", str(site / "gateway.toml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "no receipt log at" in result.stderr
    assert not (site / "var" / "gateway.db").exists(), "a reader must not create the database"


def test_verify_chain_passes_then_names_the_first_broken_row(site: Path) -> None:
    _fill(site)
    ok = gateway("log", "verify-chain", cwd=site)  # ./gateway.toml
    assert ok.returncode == 0, ok.stderr
    assert "journal intact: 4 rows verified, 2 work items match it" in ok.stdout
    raw_sql(site / "var", "UPDATE journal SET data = replace(data, 'accepted', 'forged') WHERE seq = 4")
    broken = gateway("log", "verify-chain", cwd=site)
    assert broken.returncode == 1
    assert "journal BROKEN at seq 4" in broken.stderr


def test_verify_chain_names_an_edited_work_item(site: Path) -> None:
    _fill(site)
    raw_sql(site / "var", "UPDATE messages SET received_at = '2025-03-13 02:05:07.000000' WHERE id = 2")
    broken = gateway("log", "verify-chain", cwd=site)
    assert broken.returncode == 1
    assert "receipt log BROKEN at message 2: message 2: received_at is" in broken.stderr


def test_log_list_shows_vietnam_time_and_filters(site: Path) -> None:
    _fill(site)
    table = gateway("log", "list", cwd=site)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) == 3
    assert "2025-03-14T09:05:07+07:00" in lines[1]
    assert "delivered" in lines[1]
    listed = gateway("log", "list", "--json", "--direction", "in", "--since", "2025-03-14", cwd=site)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["received_at"] == "2025-03-14T09:05:07+07:00"
    assert row["state"] == "delivered"
    assert "report" not in row
    later = gateway("log", "list", "--json", "--since", "2025-03-15T00:00:00+07:00", cwd=site)
    assert json.loads(later.stdout) == []
    held = gateway("log", "list", "--state", "hold", cwd=site)
    assert held.returncode == 0
    assert "no matching work items" in held.stderr
    bad = gateway("log", "list", "--state", "lost", cwd=site)
    assert bad.returncode == 2
    assert "not a state" in bad.stderr


def test_parse_since_forms() -> None:
    now = datetime(2025, 3, 14, 2, 0, tzinfo=UTC)
    assert parse_since("30d", now) == now - timedelta(days=30)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("2025-03-14", now) == datetime(2025, 3, 13, 17, 0, tzinfo=UTC)
    assert parse_since("2025-03-14T09:00:00", now) == datetime(2025, 3, 14, 2, 0, tzinfo=UTC)
    assert parse_since("2025-03-14T09:00:00Z", now) == datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not an age"):
        parse_since("yesterday", now)
