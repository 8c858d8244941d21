"""Issue 7's benchmark suite: five targets, one table, one JSON file.

``make bench`` runs ``python -m bench.suite``; ``--quick`` makes every benchmark short (a smoke
run: the ratios are noisier), ``--only P1,P4`` runs some of them. Each benchmark is a function
``run_pN(quick) -> dict`` with the keys ``id, name, measured, baseline, ratio, target, met,
notes`` (``ROW_KEYS``):

* P1 ``bench.verify_bench.run_p1``: inbound verification, packages/s on every core;
* P2 ``bench.sign_bench.run_p2``: sealing with a TSA that answers after 200 ms;
* P3 ``bench.smtp_bench.run_p3``: SMTP accept latency;
* P4 ``bench.memory_bench.run_p4``: peak RSS of a 50 MB package through intake and verification;
* P5 ``bench.log_bench.run_p5``: receipt-log queries.

Modules are imported when their row runs: a benchmark whose module is not there yet gets the
row "not available". The table marks each target MET or NOT MET and the process exits 0 either
way (a machine can be too slow; the table says so); it exits 1 when a benchmark produced a wrong
answer or failed, because timings of wrong answers mean nothing. The JSON goes to
``bench/results/suite-<UTC time>.json`` with the machine's description and load average.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.machine import load_average, machine_info

__all__ = ["BENCHMARKS", "ROW_KEYS", "main", "run"]

RESULTS = Path(__file__).resolve().parent / "results"
"""Where the JSON results go by default."""

ROW_KEYS = ("id", "name", "measured", "baseline", "ratio", "target", "met", "notes")
"""What every ``run_pN`` returns."""

BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "P1": ("bench.verify_bench", "run_p1", "inbound verification, packages/s"),
    "P2": ("bench.sign_bench", "run_p2", "outbound sealing, docs/s (TSA 200 ms)"),
    "P3": ("bench.smtp_bench", "run_p3", "SMTP accept latency"),
    "P4": ("bench.memory_bench", "run_p4", "peak RSS, 50 MB package"),
    "P5": ("bench.log_bench", "run_p5", "receipt-log queries"),
}
"""Benchmark id -> (module, function, what it measures)."""

_WRONG = ("BenchmarkError", "BareLoopError")
"""Exceptions by which a benchmark says it produced a wrong answer."""


def _placeholder(key: str, status: str, notes: str) -> dict[str, Any]:
    return {
        "id": key,
        "name": BENCHMARKS[key][2],
        "measured": None,
        "baseline": None,
        "ratio": None,
        "target": "",
        "met": None,
        "notes": notes,
        "status": status,
    }


def _load(key: str) -> Callable[[bool], dict[str, Any]] | None:
    module_name, function, _ = BENCHMARKS[key]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module is there but something it imports is not: a real failure
        return None
    found: Callable[[bool], dict[str, Any]] | None = getattr(module, function, None)
    return found


def run(key: str, *, quick: bool) -> dict[str, Any]:
    """Run one benchmark and return its row (with ``status`` and ``seconds`` added).

    ``status`` is ``ok``, ``not available`` (its module or function is missing), ``wrong answer``
    (the benchmark raised ``BenchmarkError`` / ``BareLoopError``) or ``failed`` (anything else).
    """
    start = time.perf_counter()
    try:
        function = _load(key)
        if function is None:
            row = _placeholder(key, "not available", f"{BENCHMARKS[key][0]}.{BENCHMARKS[key][1]} is not there yet")
        else:
            row = dict(function(quick))
    except Exception as exc:
        status = "wrong answer" if type(exc).__name__ in _WRONG else "failed"
        traceback.print_exc()
        row = _placeholder(key, status, f"{type(exc).__name__}: {exc}")
    else:
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            row = _placeholder(key, "failed", f"its row lacks {', '.join(missing)}")
        row.setdefault("status", "ok")
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _numbers(values: dict[str, Any], prefix: str = "") -> list[str]:
    """``name value`` for the numbers of ``values``, one level of nesting spelt ``outer.inner``."""
    shown = []
    for key, value in values.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            shown.append(f"{prefix}{key} {value}")
        elif isinstance(value, dict) and not prefix:
            shown.extend(_numbers(value, f"{key}."))
    return shown


def _figures(values: dict[str, Any] | None, limit: int = 3) -> str:
    if not values:
        return "-"
    return "\n".join(_numbers(values)[:limit]) or "-"


def _verdict(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"[bold red]{row['status'].upper()}[/]" if row["status"] != "not available" else "[dim]n/a[/]"
    return "[bold green]MET[/]" if row["met"] else "[bold yellow]NOT MET[/]"


def render(rows: Sequence[dict[str, Any]], *, quick: bool) -> Table:
    """The one table: a row per benchmark."""
    table = Table(title="Issue 7 benchmarks" + (" (--quick: short runs, noisy ratios)" if quick else ""))
    for header in ("id", "what", "measured", "baseline", "ratio", "target", "result"):
        table.add_column(header, justify="right" if header == "ratio" else "left")
    for row in rows:
        ratio = row.get("ratio")
        table.add_row(
            row["id"],
            str(row["name"]),
            _figures(row.get("measured")),
            _figures(row.get("baseline")),
            "-" if ratio is None else f"{ratio:.2f}x",
            str(row.get("target") or "-"),
            _verdict(row),
        )
    return table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test of the suite)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated ids, e.g. P1,P4 (default: all)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory of the JSON results")
    args = parser.parse_args(argv)
    args.only = [key.strip().upper() for key in args.only.split(",") if key.strip()]
    unknown = [key for key in args.only if key not in BENCHMARKS]
    if unknown or not args.only:
        parser.error(f"--only: unknown {', '.join(unknown) or 'nothing'}; choose from {', '.join(BENCHMARKS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite, print the table, write the JSON.

    Returns:
        0 when every benchmark that ran gave right answers (met or not); 1 otherwise.
    """
    args = parse_args(argv)
    console = Console(width=max(150, Console().width))
    load_at_start = load_average()
    rows = []
    for key in args.only:
        console.print(f"[bold]{key}[/] {BENCHMARKS[key][2]} ...")
        rows.append(run(key, quick=args.quick))
        console.print(f"  {rows[-1]['status']} in {rows[-1]['seconds']} s", style="dim")
    console.print(render(rows, quick=args.quick))
    for row in rows:
        if row.get("notes"):
            console.print(f"[bold]{row['id']}[/]: {escape(str(row['notes']))}")
    document = {
        "benchmark": "suite",
        "when": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine_info(),
        "load_average_1m": {"start": load_at_start, "end": load_average()},
        "rows": rows,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"suite-{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    console.print(f"written: {path}")
    bad = [row["id"] for row in rows if row["status"] in ("wrong answer", "failed")]
    if bad:
        console.print(f"[bold red]wrong answers or failures in {', '.join(bad)}: the timings above mean nothing[/]")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
