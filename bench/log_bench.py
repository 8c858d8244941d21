"""Benchmark P5 (issue 7): the archivist's search over a receipt log of 1 000 000 work items.

    .venv/bin/python -m bench.log_bench              # 1 000 000 rows (built once, then cached)
    .venv/bin/python -m bench.log_bench --quick      # 100 000 rows: a smoke run, not the P5 figure
    .venv/bin/python -m bench.log_bench --rows 300000 --runs 50

What it does:

1. **A receipt log.** A SQLite database migrated to head by ``Store.open`` (so the search
   indexes and their triggers are the production ones), then filled in batches with
   ``executemany`` through the triggers: ~200 sending organs with a skewed (Zipf-like) share of
   the mail, receive times spread over three years in order, Vietnamese subjects and
   numbers/notations, 1–3 recipients each, 60 % inbound (92 % accepted, 6 % refused with
   findings in Vietnamese and English, 2 % deferred), the rest our submissions, sends and notices.
   The journal is not filled: the search never reads it. The file is cached in
   ``bench/.cache/`` under a name that carries the row count and the generator's version.
2. **The queries**, through ``Store.search`` exactly as ``gateway log search`` runs them: a sender
   over a quarter and over a year, a recipient over a quarter, a date range alone, a number/
   notation, common and rare words (with and without diacritics), words with a date range, the
   second page, and words with each other filter (a sender, a recipient, one day, a range of
   55 date tokens, an open range, a verdict, a number/notation). One untimed run each, then
   ``--runs`` timed runs; median and p95 per query.
3. **The verdict.** P5 is met when every query's p95 is under 50 ms. The table is printed and the
   JSON written to ``bench/results/log-<UTC time>.json`` with the machine's description.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from bench.machine import load_average, machine_info
from gateway.clock import SystemClock
from gateway.store import Store

__all__ = ["QUERIES", "build_log", "main", "measure", "run_p5"]

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
TARGET_MS: Final = 50.0
GENERATOR: Final = 2
"""Bump when the generated data or the search schema changes: the cache file name carries it (a
cache migrated by Alembic keeps its revision number, so a change made to an unreleased revision
in place is only built into a new file). 2: revision 0002's facet tokens."""
FULL_ROWS: Final = 1_000_000
QUICK_ROWS: Final = 100_000
START: Final = datetime(2023, 1, 1, tzinfo=UTC)
SPAN: Final = timedelta(days=3 * 365)
_BATCH = 20_000

_PROVINCES = ("H29", "H31", "H36", "H13", "H26", "G01", "G02", "G05", "G09", "G12")
_UNITS = ("UBND", "STNMT", "SGDĐT", "SYT", "SNV", "STC", "SXD", "CATP", "VPCP", "BNV")
_OFFICES = ("VP", "TH", "KT", "NV", "TCCB", "PC", "QLĐT")
_ACTIONS = (
    "Kiểm tra",
    "Báo cáo",
    "Đề nghị phối hợp",
    "Triển khai",
    "Hướng dẫn thực hiện",
    "Tăng cường công tác",
    "Góp ý dự thảo",
    "Tổng kết",
    "Phê duyệt kế hoạch",
    "Đôn đốc",
)
_TOPICS = (
    "an toàn giao thông",
    "phòng chống thiên tai",
    "chuyển đổi số",
    "cải cách hành chính",
    "quản lý đất đai",
    "giáo dục đào tạo",
    "y tế dự phòng",
    "ngân sách nhà nước",
    "bảo vệ môi trường",
    "xây dựng nông thôn mới",
    "phòng cháy chữa cháy",
    "tiếp công dân",
    "thi đua khen thưởng",
    "đầu tư công",
    "an ninh mạng",
)
_FINDINGS = (
    (
        "signature-invalid",
        "Chữ ký số không hợp lệ: tài liệu đã bị sửa đổi",
        "Invalid signature: the document was altered",
    ),
    ("certificate-revoked", "Chứng thư số đã bị thu hồi", "The certificate was revoked"),
    ("no-timestamp", "Chữ ký không có dấu thời gian", "The signature has no time-stamp"),
    ("envelope-unsigned", "Gói tin edXML chưa được ký", "The edXML envelope is not signed"),
)
_DEFERRED = ("ocsp-unavailable", "Không kiểm tra được trạng thái chứng thư", "Revocation status could not be checked")


@dataclass(frozen=True)
class Query:
    """One measured search: a name for the table and the ``Store.search`` filters."""

    name: str
    filters: dict[str, Any]


def organs(count: int = 200) -> list[str]:
    """``count`` OrganIds shaped like the national directory's (``000.00.NN.Hxx``)."""
    return [f"000.{i // 100:02d}.{i % 100:02d}.{_PROVINCES[i % len(_PROVINCES)]}" for i in range(count)]


def _time_text(moment: datetime) -> str:
    # How SQLAlchemy's SQLite DateTime stores a naive UTC time (what UTCDateTime writes).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _row(i: int, rng: random.Random, senders: Sequence[str], weights: Sequence[float], at: datetime) -> dict[str, Any]:
    inbound = rng.random() < 0.6
    sender = rng.choices(senders, weights)[0]
    to = rng.sample(senders, rng.randint(1, 3))
    n = rng.randint(1, 9999)
    code = f"{n}/{rng.choice(_UNITS)}-{rng.choice(_OFFICES)}"
    subject = f"V/v {rng.choice(_ACTIONS).lower()} {rng.choice(_TOPICS)} năm {at.year}"
    verdict = findings = None
    kind, state = "submission", "sealed"
    if inbound:
        kind, roll = "inbound", rng.random()
        verdict, state = ("accepted", "delivered") if roll < 0.92 else ("refused", "refused")
        if roll >= 0.98:
            verdict, state = "deferred", "deferred"
        if verdict == "refused":
            code_, vi, en = rng.choice(_FINDINGS)
            findings = json.dumps(
                [{"code": code_, "action": "reject", "where": "main.pdf", "message_vi": vi, "message_en": en}]
            )
        elif verdict == "deferred":
            findings = json.dumps([dict(zip(("code", "message_vi", "message_en"), _DEFERRED, strict=True))])
    elif rng.random() < 0.3:
        kind, state = rng.choice((("send", "sent"), ("notice", "sent")))
    when = _time_text(at)
    return {
        "kind": kind,
        "direction": "in" if inbound else "out",
        "state": state,
        "channel": "smtp" if inbound else ("submission" if kind == "submission" else "internal"),
        "mail_from": f"vanthu{i % 997}@example.gov.vn",
        "rcpt_to": json.dumps(["vanthu@gateway.example.gov.vn"]),
        "sha256": hashlib.sha256(str(i).encode()).hexdigest(),
        "size": rng.randint(20_000, 4_000_000),
        "received_at": when,
        "document_id": f"{sender}.{at.year}.{i:07d}" if kind != "send" else f"{sender}.{at.year}.{i:07d}.s",
        "from_organ": sender if kind != "send" else None,
        "to_organs": json.dumps(to) if kind in ("inbound", "submission") else None,
        "code": code if kind in ("inbound", "submission") else None,
        "subject": subject if kind in ("inbound", "submission") else None,
        "verdict": verdict,
        "findings": findings,
        "attempts": 1,
        "state_changed_at": when,
        "recipient": rng.choice(to) if kind == "send" else None,
    }


def rows(count: int, seed: int = 5) -> Iterator[dict[str, Any]]:
    """The generated work items, oldest first (receive times increase with the id)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    senders = organs()
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(senders))]  # a few organs send most mail
    step = SPAN / count
    for i in range(count):
        yield _row(i, rng, senders, weights, START + step * i + timedelta(seconds=rng.random()))


def _columns(sample: dict[str, Any]) -> str:
    names = ", ".join(sample)
    return f"INSERT INTO messages ({names}) VALUES ({', '.join(':' + n for n in sample)})"  # noqa: S608 - our column names


def _fill(path: Path, count: int, progress: Callable[[int], None]) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA synchronous=OFF")  # a benchmark fixture, rebuilt if lost
        generated = rows(count)
        first = next(generated)
        statement = _columns(first)
        batch = [first]
        done = 0
        for row in generated:
            batch.append(row)
            if len(batch) == _BATCH:
                done += _insert(conn, statement, batch)
                progress(done)
                batch = []
        done += _insert(conn, statement, batch)
        progress(done)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _insert(conn: sqlite3.Connection, statement: str, batch: list[dict[str, Any]]) -> int:
    conn.execute("BEGIN")
    conn.executemany(statement, batch)
    conn.execute("COMMIT")
    return len(batch)


def build_log(count: int, *, console: Console | None = None) -> Path:
    """The cached receipt log of ``count`` generated rows (built on first use, ~1 min per 100 000).

    Built under a temporary name and renamed when complete, so an interrupted build is never
    taken for a finished one.
    """
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"log-{count}-v{GENERATOR}.db"
    if path.is_file():
        asyncio.run(_migrate(path))  # a cache built by an older gateway: bring it to head
        return path
    partial = path.with_suffix(".partial")
    for leftover in CACHE.glob(f"{partial.name}*"):
        leftover.unlink()
    asyncio.run(_migrate(partial))
    began = time.perf_counter()

    def progress(done: int) -> None:
        if console is not None and (done % 200_000 == 0 or done == count):
            console.print(f"  {done:>9,} rows  {time.perf_counter() - began:6.1f} s")

    _fill(partial, count, progress)
    partial.rename(path)
    return path


async def _migrate(path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{path}", clock=SystemClock())
    await store.close()


def queries(count: int) -> list[Query]:
    """The measured searches, with dates inside the generated span."""
    senders = organs()
    mid = START + SPAN / 2
    quarter = {"since": mid, "until": mid + timedelta(days=91)}
    year = {"since": START + timedelta(days=365), "until": START + timedelta(days=730)}
    day = START + timedelta(days=200, hours=-7)  # a Vietnam day, as `--from`/`--to` give it
    long = {"since": START + timedelta(days=14, hours=-7), "until": START + SPAN - timedelta(days=15, hours=7)}
    code = next(r["code"] for r in rows(count) if r["code"])  # one that occurs
    return [
        Query("sender + a quarter", {"sender": senders[17], **quarter}),
        Query("sender + a year", {"sender": senders[3], **year}),
        Query("busiest sender, all time", {"sender": senders[0]}),
        Query("recipient + a quarter", {"recipient": senders[42], **quarter}),
        Query("a month, nothing else", {"since": mid, "until": mid + timedelta(days=30)}),
        Query("refused + a quarter", {"verdict": "refused", **quarter}),
        Query("number/notation", {"code": code}),
        Query("text: common words", {"text": "kiểm tra"}),
        Query("text: no diacritics", {"text": "kiem tra an toan giao thong"}),
        Query("text: rare word (finding)", {"text": "thu hồi"}),
        Query("text + a quarter", {"text": "chuyển đổi số", **quarter}),
        Query("text + sender", {"text": "ngân sách", "sender": senders[60]}),
        Query("text + recipient", {"text": "báo cáo", "recipient": senders[42]}),
        Query("text + one day", {"text": "kiểm tra", "since": day, "until": day + timedelta(days=1)}),
        Query("text + ~35 months (55 tokens)", {"text": "chuyển đổi số", **long}),
        Query("text, until a date (open)", {"text": "phòng chống thiên tai", "until": START + timedelta(days=120)}),
        Query("text + refused", {"text": "an ninh mạng", "verdict": "refused"}),
        Query("text + number/notation", {"text": "năm", "code": code}),
        Query("second page (before_id)", {"text": "báo cáo", "before_id": count // 2}),
    ]


QUERIES = queries


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(path: Path, runs: int, count: int) -> list[dict[str, Any]]:
    """Time every query ``runs`` times (after one untimed run) through ``Store.search``."""
    store = await Store.open(f"sqlite+aiosqlite:///{path}", clock=SystemClock(), migrate=False)
    out = []
    try:
        for query in queries(count):
            found = await store.search(**query.filters)
            times = []
            for _ in range(runs):
                began = time.perf_counter()
                again = await store.search(**query.filters)
                times.append((time.perf_counter() - began) * 1000)
                if [v.id for v in again] != [v.id for v in found]:
                    raise RuntimeError(f"{query.name}: the same search gave different answers")
            out.append(
                {
                    "query": query.name,
                    "filters": {k: v.isoformat() if isinstance(v, datetime) else v for k, v in query.filters.items()},
                    "rows": len(found),
                    "median_ms": round(statistics.median(times), 2),
                    "p95_ms": round(_percentile(times, 0.95), 2),
                    "max_ms": round(max(times), 2),
                }
            )
    finally:
        await store.close()
    return out


def render(measured: Sequence[dict[str, Any]], count: int) -> Table:
    """The rich table of the results."""
    table = Table(title=f"P5: search over {count:,} work items (target: p95 under {TARGET_MS:.0f} ms)")
    for heading in ("query", "rows", "median ms", "p95 ms", "met"):
        table.add_column(heading, justify="left" if heading == "query" else "right")
    for m in measured:
        met = m["p95_ms"] < TARGET_MS
        table.add_row(
            m["query"],
            str(m["rows"]),
            f"{m['median_ms']:.2f}",
            f"{m['p95_ms']:.2f}",
            "[green]yes" if met else "[red]no",
        )
    return table


def run_p5(
    quick: bool = False, *, runs: int = 20, rows_count: int | None = None, console: Console | None = None
) -> dict[str, Any]:
    """Run P5 and return its summary for ``bench/suite.py``.

    Args:
        quick: 100 000 rows instead of 1 000 000 (a smoke run; the summary says so).
        runs: timed runs per query.
        rows_count: another row count (overrides ``quick``).
        console: where progress goes (``None``: quiet).
    """
    count = rows_count or (QUICK_ROWS if quick else FULL_ROWS)
    load_before = load_average()
    path = build_log(count, console=console)
    measured = asyncio.run(measure(path, runs, count))
    met = all(m["p95_ms"] < TARGET_MS for m in measured)
    name = f"receipt-log search over {count:,} rows"
    if count != FULL_ROWS:
        name += f" (not the P5 size of {FULL_ROWS:,})"
    return {
        "id": "P5",
        "name": name,
        "rows": count,
        "runs": runs,
        "measured": {
            "slowest_p95_ms": max(m["p95_ms"] for m in measured),
            "queries": len(measured),
            **{m["query"]: {k: m[k] for k in ("rows", "median_ms", "p95_ms", "max_ms")} for m in measured},
        },
        "queries": measured,
        "baseline": None,
        "ratio": None,
        "target": f"under {TARGET_MS:.0f} ms each (p95 of {runs} runs)",
        "met": met,
        "notes": f"slowest p95 {max(m['p95_ms'] for m in measured):.1f} ms of {len(measured)} queries (Store.search)",
        "load_average": {"before": load_before, "after": load_average()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.log_bench``: run P5, print the table, write the JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.log_bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows instead of {FULL_ROWS:,}")
    parser.add_argument("--rows", type=int, default=None, help="another row count")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query (default 20)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory of the JSON results")
    args = parser.parse_args(argv)
    console = Console()
    result = run_p5(args.quick, runs=args.runs, rows_count=args.rows, console=console)
    console.print(render(result["queries"], result["rows"]))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"log-{stamp}.json"
    out.write_text(
        json.dumps({**result, "machine": machine_info(("SQLAlchemy", "aiosqlite"))}, ensure_ascii=False, indent=2)
        + "\n",
        encoding="utf-8",
    )
    shown = out.relative_to(HERE.parent) if out.is_relative_to(HERE.parent) else out
    console.print(f"P5 {'met' if result['met'] else 'NOT met'}; results in {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
