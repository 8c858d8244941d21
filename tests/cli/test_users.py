"""``gateway submission-user``: the users file of the submission listener."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from gateway.errors import ConfigError
from gateway.outbound.submit import load_users, verify_password

PASSWORD = "một mật khẩu dài đủ"


def test_prints_a_line_the_listener_accepts() -> None:
    result = CliRunner().invoke(app, ["submission-user", "dms"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    name, _, encoded = line.partition(":")
    assert name == "dms"
    assert verify_password(PASSWORD.encode(), encoded)
    assert not verify_password(b"wrong", encoded)


def test_file_gets_the_user_replaced_others_kept_mode_0600(tmp_path: Path) -> None:
    users = tmp_path / "submission.users"
    runner = CliRunner()
    for name, password in (("dms", PASSWORD), ("backup", "another long password"), ("dms", "changed password!")):
        result = runner.invoke(app, ["submission-user", name, "--file", str(users)], input=f"{password}\n{password}\n")
        assert result.exit_code == 0, result.output
    loaded = load_users(users)
    assert sorted(loaded) == ["backup", "dms"]
    assert verify_password(b"changed password!", loaded["dms"])
    assert stat.S_IMODE(users.stat().st_mode) == 0o600


def test_short_password_and_bad_name_are_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    short = runner.invoke(app, ["submission-user", "dms"], input="short\nshort\n")
    assert isinstance(short.exception, ConfigError)
    assert "shorter than 12" in str(short.exception)
    bad = runner.invoke(app, ["submission-user", "a:b"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert isinstance(bad.exception, ConfigError)
    assert "cannot be an account name" in str(bad.exception)
    assert not (tmp_path / "submission.users").exists()
