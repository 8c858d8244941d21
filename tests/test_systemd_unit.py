"""The shipped systemd unit runs commands the CLI really has (README: Deployment)."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app

UNIT = Path(__file__).resolve().parents[1] / "config" / "systemd" / "edxml-gateway.service"


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser["Service"]


@pytest.mark.parametrize("key", ["ExecStartPre", "ExecStart"])
def test_the_unit_commands_parse_with_the_cli(key: str) -> None:
    argv = shlex.split(_service()[key])
    assert argv[0].endswith("/gateway")
    words = [w for w in argv[1:] if not w.startswith("-")][:2]
    # --help at the end: click parses everything before it (an unknown command or option fails)
    # and then shows the help instead of running the command.
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: gateway {words[0]}" in result.output


def test_the_unit_stops_gracefully_and_reloads_with_sighup() -> None:
    service = _service()
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed", "SIGTERM to the gateway alone: it stops its PDF readers itself"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    grace = float(shlex.split(service["ExecStart"])[-1])
    assert float(service["TimeoutStopSec"]) > grace
