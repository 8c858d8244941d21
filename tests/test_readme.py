"""The README documents every finding code with both texts and its default action, as the code has them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gateway.edxml.findings import FindingKind
from gateway.pipeline.codes import CATALOGUE as MAIL_CODES
from gateway.settings import Settings
from gateway.verify.codes import ALL_KINDS
from gateway.verify.policy import DEFAULT_ACTIONS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def row(kind: FindingKind) -> str:
    vi, en = (text.replace("|", "\\|") for text in (kind.vi, kind.en))
    # The mail layer's codes are not in the policy: there is no package to judge, always refused.
    action = DEFAULT_ACTIONS[kind.code].value if kind.code in DEFAULT_ACTIONS else "reject"
    cells = [f"`{kind.code}`", action, vi, en]
    return "| " + " | ".join(cells) + " |"


@pytest.mark.parametrize("kind", [*ALL_KINDS.values(), *MAIL_CODES.values()], ids=lambda k: k.code)
def test_every_finding_code_is_in_the_readme(kind: FindingKind) -> None:
    assert row(kind) in README, f"README's table of codes lacks or misstates {kind.code}; regenerate it"


def test_the_two_commands_open_the_readme() -> None:
    head = README.split("## ", 1)[0]
    assert "make run" in head
    assert "make test" in head


def _documented_keys() -> set[str]:
    """``section.key`` for every key named in the first cell of the configuration reference."""
    table = README.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for line in table.splitlines():
        if not line.startswith("| `["):
            continue
        first = line.split("|")[1]
        section = first.split("[", 1)[1].split("]", 1)[0]
        names = re.findall(r"`(?:\[\w+\] )?(\w+)`", first)
        keys.update(f"{section}.{name}" for name in names)
    return keys


def test_the_configuration_reference_names_every_key() -> None:
    defaults = Settings()
    expected = {
        f"{section.name}.{key.name.rstrip('_')}"
        for section in dataclasses.fields(Settings)
        for key in dataclasses.fields(getattr(defaults, section.name))
    }
    documented = _documented_keys()
    assert not expected - documented, f"README's configuration reference lacks {sorted(expected - documented)}"
    assert not documented - expected, f"README documents keys that do not exist: {sorted(documented - expected)}"
