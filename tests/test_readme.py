"""The README documents every finding code with both texts and its default action, as the code has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.edxml.findings import FindingKind
from gateway.verify.codes import ALL_KINDS
from gateway.verify.policy import DEFAULT_ACTIONS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def row(kind: FindingKind) -> str:
    vi, en = (text.replace("|", "\\|") for text in (kind.vi, kind.en))
    cells = [f"`{kind.code}`", DEFAULT_ACTIONS[kind.code].value, vi, en]
    return "| " + " | ".join(cells) + " |"


@pytest.mark.parametrize("kind", list(ALL_KINDS.values()), ids=lambda k: k.code)
def test_every_finding_code_is_in_the_readme(kind: FindingKind) -> None:
    assert row(kind) in README, f"README's table of codes lacks or misstates {kind.code}; regenerate it"


def test_the_two_commands_open_the_readme() -> None:
    head = README.split("## ", 1)[0]
    assert "make run" in head
    assert "make test" in head
