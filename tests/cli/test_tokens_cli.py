"""``gateway token add|list|remove``: the tokens file of the HTTP surfaces."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from gateway.errors import ConfigError
from gateway.web.auth import TokenStore


def _config(tmp_path: Path, tokens: str | None = "http-tokens") -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text("[http]\n" + (f'tokens = "{tokens}"\n' if tokens else ""), encoding="utf-8")
    return config


def test_add_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = CliRunner().invoke(app, ["token", "add", "archivist", "--scope", "read", "--config", str(config)])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert len(token) == 43
    path = tmp_path / "http-tokens"
    assert token not in path.read_text(encoding="utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = TokenStore.load(path).find(token)
    assert found is not None
    assert found.name == "archivist"
    assert found.scopes == {"read"}
    assert "shown only now" in result.stderr


def test_several_tokens_list_and_remove_keep_the_others(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    made = {}
    for name, scopes in (("archivist", ["read"]), ("dms", ["preflight"]), ("root", ["read", "admin"])):
        options = [x for s in scopes for x in ("--scope", s)]
        result = runner.invoke(app, ["token", "add", name, *options, "--config", str(config)])
        assert result.exit_code == 0, result.output
        made[name] = result.stdout.strip()
    listed = runner.invoke(app, ["token", "list", "--json", "--config", str(config)])
    assert json.loads(listed.stdout) == [
        {"name": "archivist", "scopes": ["read"]},
        {"name": "dms", "scopes": ["preflight"]},
        {"name": "root", "scopes": ["read", "admin"]},
    ]
    assert all(t not in listed.stdout for t in made.values())
    removed = runner.invoke(app, ["token", "remove", "dms", "--config", str(config)])
    assert removed.exit_code == 0, removed.output
    store = TokenStore.load(tmp_path / "http-tokens")
    assert store.find(made["dms"]) is None
    assert store.find(made["archivist"]) is not None
    assert store.find(made["root"]) is not None
    table = runner.invoke(app, ["token", "list", "--config", str(config)])
    assert "archivist" in table.stdout
    assert "dms" not in table.stdout


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    base = ["--config", str(config)]
    unset = tmp_path / "unset"
    unset.mkdir()
    assert runner.invoke(app, ["token", "add", "a", "--scope", "read", *base]).exit_code == 0
    cases = [
        (["token", "add", "a", "--scope", "read", *base], "a token named 'a' exists"),
        (["token", "add", "b", "--scope", "write", *base], "unknown token scope 'write'"),
        (["token", "add", "bad name", "--scope", "read", *base], "cannot name a token"),
        (["token", "remove", "zzz", *base], "no token named 'zzz'"),
        (["token", "list", "--config", str(_config(unset, None))], "[http] tokens is not set"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert isinstance(result.exception, ConfigError), (args, result.output)
        assert message in str(result.exception), (args, result.exception)
    assert len(TokenStore.load(tmp_path / "http-tokens").tokens) == 1  # nothing changed


def test_file_option_and_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere"
    runner = CliRunner()
    assert runner.invoke(app, ["token", "add", "x", "--scope", "preflight", "--file", str(path)]).exit_code == 0
    path.write_text(path.read_text(encoding="utf-8") + "broken line\n", encoding="utf-8")
    result = runner.invoke(app, ["token", "list", "--file", str(path)])
    assert isinstance(result.exception, ConfigError)
    assert f"{path}:3:" in str(result.exception)
