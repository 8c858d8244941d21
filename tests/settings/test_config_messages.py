"""Configuration mistakes an operator makes first, answered with the fix (walkthrough item 20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.config import load_settings
from gateway.errors import ConfigError
from gateway.settings import settings_from_toml
from tests.command import gateway

GATEWAY_TOML = Path("/etc/edxml-gateway/gateway.toml")


@pytest.mark.parametrize(
    ("table", "value", "port"),
    [("smtp", "25", 2525), ("submission", "587", 5870), ("http", "8025", 8025), ("smtp", '["0.0.0.0", 25]', 2525)],
)
def test_a_listen_of_the_wrong_type_names_the_form(table: str, value: str, port: int) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_toml(f'[identity]\norgan_name = "VP"\n\n[{table}]\nlisten = {value}\n', GATEWAY_TOML)
    error = caught.value
    assert (error.path, error.line) == (GATEWAY_TOML, 5)
    assert f"'listen' in [{table}] must be a string" in error.detail
    hint = f'expected HOST:PORT in quotes, e.g. listen = "127.0.0.1:{port}" or "[::1]:{port}"'
    assert error.hint == hint
    assert str(error).endswith(f"({hint})")


def test_other_keys_keep_their_own_messages() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_toml("[smtp]\nhostname = 25\n", GATEWAY_TOML)
    assert caught.value.detail == "'hostname' in [smtp] must be a string, not 25"
    assert caught.value.hint is None


def test_a_missing_file_named_by_config_says_how_to_name_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(Path("var/gateway.toml"))
    error = caught.value
    assert error.path == Path("var/gateway.toml")
    assert error.detail == "configuration file not found"
    assert error.hint is not None
    assert "--config PATH" in error.hint
    assert "GATEWAY_CONFIG environment variable" in error.hint
    assert f"the working directory, {tmp_path}" in error.hint  # where the relative path was looked for


def test_a_missing_file_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "etc" / "gateway.toml"
    monkeypatch.setenv("GATEWAY_CONFIG", str(missing))
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert caught.value.path == missing
    assert caught.value.hint is not None
    assert "--config PATH or the GATEWAY_CONFIG environment variable" in caught.value.hint
    assert "working directory" not in caught.value.hint  # an absolute path needs no such note


def test_the_command_prints_it_and_exits_2(tmp_path: Path) -> None:
    done = gateway("log", "list", "--config", "nope.toml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("gateway: nope.toml: configuration file not found (name an existing gateway.toml")
    assert "--config PATH or the GATEWAY_CONFIG environment variable" in done.stderr
