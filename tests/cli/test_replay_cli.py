"""``gateway rules replay`` and ``gateway report partners`` on the seeded log, as an admin runs them.

The commands run in process (``typer.testing.CliRunner``) against ``seeded_log``: a gateway.toml
whose receipt log and spool five real packages went through (``tests/archive/seeded.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gateway.cli import app
from gateway.errors import ConfigError
from tests.archive.seeded import NAMES, PARTNER_2, SeededLog
from tests.service import PARTNER

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _run(seeded: SeededLog, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(seeded.config)])


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proposed.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _database(seeded: SeededLog) -> str:
    return hashlib.sha256((seeded.config.parent / "gateway.db").read_bytes()).hexdigest()


def test_replay_prints_the_flip_grouped_by_sender_and_code(seeded_log: SeededLog, tmp_path: Path) -> None:
    """A2 made strict: the one package without an envelope signature flips; the tables say so."""
    before = _database(seeded_log)
    policy = _policy(tmp_path, '[actions]\n"envelope-signature-absent" = "reject"\n')
    result = _run(seeded_log, "rules", "replay", "--policy", str(policy))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "nothing was changed" in out
    no_envelope = seeded_log.ids["no-envelope"]
    row = re.search(
        rf"^\s*{no_envelope}\s+(\S+)\s+{re.escape(PARTNER)}\s+(\S+)\s+accepted\s+refused\s+(.+)$", out, re.M
    )
    assert row, out
    assert row.group(1).endswith("+07:00")
    assert row.group(2) == seeded_log.documents["no-envelope"]
    assert row.group(3).strip() == "envelope-signature-absent"
    assert re.search(rf"^\s*{re.escape(PARTNER)}\s+1\s+accepted → refused: 1", out, re.M), out
    assert re.search(r"^\s*envelope-signature-absent\s+1\s+accepted → refused: 1", out, re.M), out
    assert re.search(rf"^\s*judged again\s+{len(NAMES)}$", out, re.M), out
    assert re.search(r"^\s*flipped\s+1$", out, re.M), out
    assert _database(seeded_log) == before


def test_replay_json_since_and_an_unchanged_policy(seeded_log: SeededLog, tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[policy]\nname = "same"\nversion = "2"\n')
    result = _run(seeded_log, "rules", "replay", "--policy", str(policy), "--since", "1d", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["flips"] == []
    assert data["totals"] == {
        "judged": len(NAMES),
        "unchanged": len(NAMES),
        "flipped": 0,
        "by_direction": {},
        "skipped": 0,
        "skipped_by_reason": {},
    }
    assert data["since"].endswith("+07:00")


def test_replay_with_an_invalid_policy_names_the_file_and_changes_nothing(
    seeded_log: SeededLog, tmp_path: Path
) -> None:
    before = _database(seeded_log)
    policy = _policy(tmp_path, '[actions]\n"envelope-signature-absent" = "sometimes"\n')
    result = _run(seeded_log, "rules", "replay", "--policy", str(policy))
    assert isinstance(result.exception, ConfigError)  # `gateway` prints it and exits 2
    assert result.exception.exit_status == 2
    assert "proposed.toml:2" in str(result.exception)
    assert "valid actions: reject, defer, warn, ignore" in str(result.exception)
    assert _database(seeded_log) == before


def test_partner_report_tables_and_json(seeded_log: SeededLog) -> None:
    """Both senders, their verdicts and refusal rates; signer certificates soonest expiry first."""
    result = _run(seeded_log, "report", "partners")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{len(NAMES)} packages from 2 senders" in out
    assert re.search(rf"^\s*{re.escape(PARTNER)}\s+Văn phòng Chính phủ\s+4\s+accepted 2, refused 2", out, re.M), out
    assert re.search(rf"^\s*{re.escape(PARTNER_2.organ_id)}\s+Bộ Tài chính\s+1\s+accepted 1", out, re.M), out
    assert "pdf-unsigned 25% (1)" in out
    expiries = re.findall(
        r"^\s*\S+\s+(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00)\s", out.split("Signer certificates")[1], re.M
    )
    assert expiries
    assert expiries == sorted(expiries)

    shown = _run(seeded_log, "report", "partners", "--since", "90d", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["packages"] == len(NAMES)
    first = data["partners"][0]
    assert (first["organ_id"], first["verdicts"]) == (PARTNER, {"accepted": 2, "refused": 2})
    assert first["refusals_by_code"]["pdf-unsigned"] == {"packages": 1, "rate": 0.25}
    assert all(s["not_after"].endswith("+07:00") for s in first["signers"])
    assert first["digest_algorithms"] == {"sha256": 6}
