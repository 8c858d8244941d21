"""What a fresh-clone walkthrough found in the command line's words, pinned.

Help: every exit status ``gateway demo`` has, arguments and options named by what they hold
(never a Python type such as ``<list[int]>``), summaries not cut inside a parenthesis, and
``rules`` saying it replays. Errors: ``gateway log show`` of an unknown id speaks like every other
command (``gateway: ...`` with a hint, exit 1); ``gateway evidence`` refuses a bundle without the
original mail (exit 1, naming the spool it looked in and what to check); ``rules replay`` says
which spool it looked in. ``report partners`` counts in good English (``1 sender``).
"""

from __future__ import annotations

import asyncio
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from gateway.cli import app
from gateway.clock import FixedClock
from gateway.store import Intake, Store
from tests.archive.seeded import SeededLog
from tests.command import gateway
from tests.service import work_item

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.stdout


def _commands(group: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*path, name))


# ---------------------------------------------------------------- help


def test_demo_help_names_every_exit_status() -> None:
    text = " ".join(_help("demo").split())
    for status, meaning in (
        ("0", "the valid one was accepted and delivered"),
        ("1", "anything else"),
        ("2", "usage or configuration error"),
        ("3", "the development PKI's OCSP or TSA"),
    ):
        assert re.search(rf"\b{status} {re.escape(meaning)}", text), (status, text)


def test_no_help_shows_a_python_type_as_a_metavar() -> None:
    """``ID <list[int]>``, ``files... <list[Path]>``, ``-s, --scope <list[str]>`` said nothing useful."""
    seen = 0
    for path in _commands(typer.main.get_command(app), ()):
        text = _help(*path)
        seen += 1
        assert "<list[" not in text, (path, text)
    assert seen > 30
    assert re.search(r"^\s+ID\.\.\.\s+Work item ids", _help("queue", "retry"), re.M)
    assert re.search(r"^\s+FILE\.\.\.\s+edXML packages to verify", _help("verify"), re.M)
    assert re.search(r"^\s+-s, --scope SCOPE\s", _help("token", "add"), re.M)
    assert re.search(r"^\s+ID\s+The work item's id", _help("evidence"), re.M)


def test_command_summaries_are_whole() -> None:
    listing = _help("edxml")
    [status] = [line for line in listing.splitlines() if line.strip().startswith("status ")]
    assert "(e.g." not in status
    assert not status.rstrip().endswith("(e.g.")
    [rules] = [line for line in _help().splitlines() if line.strip().startswith("rules ")]
    assert "replay" in rules


# ---------------------------------------------------------------- log show


def test_log_show_of_an_unknown_id_is_a_gateway_error_with_a_hint(seeded_log: SeededLog) -> None:
    done = gateway("log", "show", "999999", "--config", seeded_log.config)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("gateway: no work item 999999 in the receipt log")
    assert "gateway log search" in done.stderr


# ---------------------------------------------------------------- evidence and replay without the spool


def _elsewhere(seeded: SeededLog, tmp_path: Path) -> tuple[Path, Path]:
    """A configuration like the seeded gateway's whose [store] spool is another (empty) directory."""
    text = seeded.config.read_text(encoding="utf-8")
    spool = seeded.config.parent / "spool"
    assert f'spool = "{spool}"' in text
    other = tmp_path / "other-spool"
    other.mkdir()
    config = tmp_path / "gateway.toml"
    config.write_text(text.replace(f'spool = "{spool}"', f'spool = "{other}"'), encoding="utf-8")
    return config, other


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(config)])


def test_evidence_without_the_original_writes_nothing_and_exits_1(seeded_log: SeededLog, tmp_path: Path) -> None:
    config, spool = _elsewhere(seeded_log, tmp_path)
    id = seeded_log.ids["tampered"]
    out = tmp_path / "bang-chung.zip"
    done = gateway("evidence", str(id), "-o", out, "--config", config)
    assert done.returncode == 1, done.stdout + done.stderr
    assert not out.exists()
    message = " ".join(done.stderr.split())
    assert message.startswith(f"gateway: the original mail of work item {id} cannot be read from the spool {spool}")
    sha256 = asyncio.run(work_item(seeded_log.config, id)).sha256
    assert str(spool / sha256[:2] / sha256) in message
    assert f"[store] spool in {config}" in message
    assert "--partial" in message


def test_a_partial_evidence_bundle_is_written_and_still_exits_1(seeded_log: SeededLog, tmp_path: Path) -> None:
    config, _ = _elsewhere(seeded_log, tmp_path)
    out = tmp_path / "partial.zip"
    result = _cli(config, "evidence", str(seeded_log.ids["tampered"]), "-o", str(out), "--partial")
    assert result.exit_code == 1, result.output
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        readme = archive.read("README.txt").decode()
    assert "original.eml" not in names
    assert {"report.json", "record.json", "SHA256SUMS"} <= names
    assert "original.eml is not in the bundle" in readme
    assert f"{out} lacks original.eml" in result.stderr


def test_replay_names_the_spool_it_looked_in(seeded_log: SeededLog, tmp_path: Path) -> None:
    config, spool = _elsewhere(seeded_log, tmp_path)
    policy = tmp_path / "policy.toml"
    policy.write_text('[policy]\nname = "same"\nversion = "1"\n', encoding="utf-8")
    result = _cli(config, "rules", "replay", "--policy", str(policy))
    assert result.exit_code == 0, result.output
    assert f"original mail missing from the spool {spool}" in " ".join(result.stdout.split())
    assert f"[store] spool in {config}" in " ".join(result.stderr.split())


# ---------------------------------------------------------------- report partners


def test_one_sender_is_counted_in_the_singular(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text('[store]\nurl = "sqlite+aiosqlite:///gateway.db"\n', encoding="utf-8")

    async def seed() -> None:
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", clock=FixedClock()) as store:
            item = await store.record_intake(Intake(kind="inbound", channel="smtp", sha256="1" * 64, size=10))
            await store.transition(item.id, "active", reason="claimed")
            await store.record_verdict(
                item.id,
                {"verdict": "accepted", "findings": [], "signatures": []},
                verdict="accepted",
                findings=[],
                policy_sha256="9" * 64,
                to_state="delivered",
                from_organ="000.00.00.G22",
            )

    asyncio.run(seed())
    result = _cli(tmp_path / "gateway.toml", "report", "partners")
    assert result.exit_code == 0, result.output
    assert "1 package from 1 sender, everything received" in result.stdout
