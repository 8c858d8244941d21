"""The README documents every finding code with both texts, exactly as the catalogue has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.edxml.findings import FindingKind, iter_kinds

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def row(kind: FindingKind) -> str:
    cells = [f"`{kind.code}`", str(kind.severity), kind.vi.replace("|", "\\|"), kind.en.replace("|", "\\|")]
    return "| " + " | ".join(cells) + " |"


@pytest.mark.parametrize("kind", list(iter_kinds()), ids=lambda k: k.code)
def test_every_finding_code_is_in_the_readme(kind: FindingKind) -> None:
    assert row(kind) in README, f"README's table of codes lacks or misstates {kind.code}; regenerate it"


def test_the_two_commands_open_the_readme() -> None:
    head = README.split("## ", 1)[0]
    assert "make run" in head
    assert "make test" in head
