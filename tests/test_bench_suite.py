"""``bench.suite``: the row contract, "not available", wrong answers and the exit status.

The benchmarks themselves are measured by ``make bench``, never here; these tests pin only how
the suite reports them (fake benchmark modules stand in for the real ones).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from bench import suite


class BenchmarkError(RuntimeError):
    """Named like the benchmarks' own: a wrong answer."""


def _row(key: str, met: bool) -> dict[str, Any]:
    return {
        "id": key,
        "name": "fake",
        "measured": {"per_second": 2.0},
        "baseline": {"per_second": 1.0},
        "ratio": 2.0,
        "target": ">= 2x",
        "met": met,
        "notes": "",
    }


def _wrong(quick: bool) -> dict[str, Any]:
    raise BenchmarkError("a verdict was not accepted")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("bench_fake_rows")
    module.met = lambda quick: _row("P1", True)  # type: ignore[attr-defined]
    module.unmet = lambda quick: _row("P2", False)  # type: ignore[attr-defined]
    module.wrong = _wrong  # type: ignore[attr-defined]
    module.short = lambda quick: {"id": "P5", "name": "no ratio"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench_fake_rows", module)
    monkeypatch.setattr(
        suite,
        "BENCHMARKS",
        {
            "P1": ("bench_fake_rows", "met", "met"),
            "P2": ("bench_fake_rows", "unmet", "unmet"),
            "P3": ("bench_no_such_module", "run_p3", "missing"),
            "P4": ("bench_fake_rows", "wrong", "wrong"),
            "P5": ("bench_fake_rows", "short", "short"),
        },
    )


def test_each_outcome_gets_its_status(fakes: None) -> None:
    statuses = {key: suite.run(key, quick=True)["status"] for key in suite.BENCHMARKS}
    assert statuses == {
        "P1": "ok",
        "P2": "ok",
        "P3": "not available",
        "P4": "wrong answer",
        "P5": "failed",  # a row without the contract's keys
    }


def test_unmet_targets_exit_0_and_the_json_has_every_row(fakes: None, tmp_path: Path) -> None:
    assert suite.main(["--only", "P1,P2,P3", "--results", str(tmp_path)]) == 0
    (written,) = tmp_path.glob("suite-*.json")
    document = json.loads(written.read_text(encoding="utf-8"))
    assert [(r["id"], r["met"], r["status"]) for r in document["rows"]] == [
        ("P1", True, "ok"),
        ("P2", False, "ok"),
        ("P3", None, "not available"),
    ]
    assert document["machine"]["cpu_count"] >= 1


def test_a_wrong_answer_exits_1(fakes: None, tmp_path: Path) -> None:
    assert suite.main(["--only", "P1,P4", "--results", str(tmp_path)]) == 1


def test_unknown_ids_are_refused(fakes: None) -> None:
    with pytest.raises(SystemExit):
        suite.main(["--only", "P9"])
