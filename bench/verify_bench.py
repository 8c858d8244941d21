"""Inbound verification speed: the gateway next to a bare pyHanko + signxml loop and the floor.

Run ``make bench`` or ``python -m bench.verify_bench [--packages N] [--rounds R]`` from the
repository root. One run, one machine, the same files for every column:

1. a development PKI is generated in a temporary directory and served on a loopback port in
   this process (OCSP, CRLs, TSA; ``bench.corpus``), and N packages are signed with it;
2. each column gets one untimed pass over all packages, then R timed rounds (the column order
   rotates every round so that no column always runs on a cooler or hotter machine):

   * **gateway** - ``verify_package`` with one long-lived ``Verifier`` / ``Examiner``: one HTTP
     session, revocation answers and validated paths cached until ``nextUpdate``. Its untimed
     pass fills those caches: that is the design, and the table says so. Every verdict must be
     ``accepted``;
   * **bare loop** - ``bench.baseline``: lxml + signxml + pyHanko with fresh validation
     contexts per package; every signature must validate;
   * **floor** - ``bench.floor``: base64, SHA-256 and the RSA verifications only;

3. the table (median and p90 per package, packages per second, ratios) is printed and written
   as JSON to ``bench/results/verify-<UTC time>.json`` with the machine's description.

Packages are verified one after the other (no concurrency), so packages/s is 1 / mean time.
The PKI's HTTP server runs in a thread of this process: the time it spends answering (OCSP
signatures, time stamps) is part of the time of whoever asked, as a real responder's would be.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.baseline import BareLoop
from bench.corpus import CACHE, RECIPIENT, Package, cached_packages, make_packages, served_pki
from bench.floor import extract, run_floor
from bench.latency import DelayingRelay
from gateway.app.compose import pdf_readers
from gateway.clock import SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.settings import IdentitySettings, QueueSettings, Settings
from gateway.verify.package import Verifier, verify_package
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Policy, SignerPolicy
from gateway.verify.report import Verdict
from gateway.verify.trust import TrustStore

__all__ = ["Column", "main", "measure", "run_p1"]

RESULTS = Path(__file__).resolve().parent / "results"
"""Where the JSON results go by default."""

GATEWAY, BARE, FLOOR = "gateway", "bare loop", "floor"

_NOTES = {
    GATEWAY: "one long-lived Verifier, warmed by one untimed pass: shared HTTP session, OCSP/CRL answers "
    "cached until nextUpdate, good answers and validated paths reused (validity re-checked at each time)",
    BARE: "lxml + signxml + pyHanko async_validate_pdf_signature, fresh ValidationContexts per package "
    "(hard-fail revocation: fetches OCSP for every package; diff analysis on), one untimed pass first",
    FLOOR: "base64 + SHA-256 + RSA verifications only (no parsing, no paths, no revocation); a bound, not a competitor",
}


class BenchmarkError(RuntimeError):
    """A column gave a wrong answer: its timings would be meaningless."""


@dataclass(frozen=True)
class Column:
    """The timings of one column, in seconds per package (every round, every package)."""

    name: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank

    @property
    def per_second(self) -> float:
        return len(self.samples) / sum(self.samples)


Check = Callable[[Package], Awaitable[None]]


async def measure(packages: Sequence[Package], check: Check) -> list[float]:
    """Time ``check`` on every package, one after the other.

    Returns:
        Seconds per package, in package order.
    """
    samples = []
    for package in packages:
        start = time.perf_counter()
        await check(package)
        samples.append(time.perf_counter() - start)
    return samples


def _verifier(pki: DevPKI, *, executor: Executor | None = None) -> Verifier:
    """The gateway as a receiving agency runs it, trusting the development PKI's root."""
    store = TrustStore.load(
        [pki.layout.anchor("root")], [fingerprint(pki.certificate("root"))], [pki.layout.intermediate("intermediate")]
    )
    signers = SignerPolicy(
        organisation_policy_oids=(pki.policy_oids.organisation,), person_policy_oids=(pki.policy_oids.person,)
    )
    return Verifier(
        examiner=Examiner(store, SystemClock(), executor=executor),
        policy=Policy(signers=signers),
        identity=IdentitySettings(organ_ids=(RECIPIENT,)),
    )


def _checks(pki: DevPKI, verifier: Verifier, packages: Sequence[Package]) -> dict[str, Check]:
    bare = BareLoop(pki.certificate_asn1("root"), pki.certificate_asn1("intermediate"), pki.layout.anchor("root"))
    floor_work = {p.name: extract(p.raw) for p in packages}

    async def gateway(package: Package) -> None:
        report = await verify_package(package.raw, verifier)
        if report.verdict is not Verdict.ACCEPTED:
            raise BenchmarkError(f"gateway: {package.name} {report.verdict}: {[f.code for f in report.findings]}")

    async def bare_loop(package: Package) -> None:
        checked = await bare.verify(package.raw)
        if checked != package.signatures:
            raise BenchmarkError(f"bare loop: {package.name}: {checked} of {package.signatures} signatures")

    async def floor(package: Package) -> None:
        run_floor(floor_work[package.name])

    return {GATEWAY: gateway, BARE: bare_loop, FLOOR: floor}


async def run_benchmark(
    pki: DevPKI,
    relay: DelayingRelay | None,
    *,
    packages: int,
    rounds: int,
    seed: int,
    latency: float,
    console: Console,
) -> tuple[list[Column], list[Package], dict[str, Any]]:
    """Generate the packages, warm every column once, then time ``rounds`` rounds.

    Args:
        pki: the served PKI.
        relay: the relay in front of it (with ``latency`` > 0).
        packages: how many packages to generate.
        rounds: timed passes per column.
        seed: sizes and pixels.
        latency: seconds each OCSP/CRL/TSA request waits once the packages are signed.
        console: progress output.

    Returns:
        The columns, the packages and extra facts for the JSON (generation time, fetch counts).
    """
    load_at_start = _load()
    start = time.perf_counter()
    corpus = await make_packages(pki, packages, seed=seed)
    generated = time.perf_counter() - start
    console.print(f"{len(corpus)} packages generated in {generated:.1f} s", style="dim")
    if relay is not None:
        relay.delay = latency
    verifier = _verifier(pki)
    try:
        checks = _checks(pki, verifier, corpus)
        names = list(checks)
        for name in names:
            await measure(corpus, checks[name])  # untimed: warms the gateway's caches
        samples: dict[str, list[float]] = {name: [] for name in names}
        for round_number in range(rounds):
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in order:
                samples[name] += await measure(corpus, checks[name])
            console.print(f"round {round_number + 1}/{rounds} done", style="dim")
        examiner = verifier.examiner
        stats = examiner.fetchers.stats if isinstance(examiner, Examiner) else None
    finally:
        if isinstance(verifier.examiner, Examiner):
            await verifier.examiner.aclose()
    extra = {
        # Other work on the machine skews every column; the rotating order spreads it, this shows it.
        "load_average_1m": {"start": load_at_start, "end": _load()},
        "generation_seconds": round(generated, 2),
        "gateway_fetch_stats": None
        if stats is None
        else {"requests": dict(stats.requests), "cache_hits": dict(stats.cache_hits)},
    }
    return [Column(name, tuple(samples[name])) for name in names], corpus, extra


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def render(columns: Sequence[Column], *, latency_ms: float = 0.0) -> Table:
    """The result table: one row per column, ratios against the gateway."""
    by_name = {c.name: c for c in columns}
    gateway = by_name[GATEWAY]
    where = "loopback responders" if not latency_ms else f"responders {latency_ms:g} ms away"
    table = Table(title=f"Inbound verification, per package (same files, same run; {where})")
    table.add_column("column")
    for header in ("median ms", "p90 ms", "packages/s", "time / gateway"):
        table.add_column(header, justify="right")
    for column in columns:
        ratio = column.median / gateway.median
        table.add_row(
            column.name,
            _ms(column.median),
            _ms(column.p90),
            f"{column.per_second:.1f}",
            f"{ratio:.2f}x",
        )
    return table


def _machine() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "versions": {n: version(n) for n in ("pyHanko", "pyhanko-certvalidator", "signxml", "lxml", "cryptography")},
    }


def result_document(
    columns: Sequence[Column],
    corpus: Sequence[Package],
    *,
    rounds: int,
    seed: int,
    latency_ms: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The JSON written to ``bench/results/``."""
    by_name = {c.name: c for c in columns}
    gateway, bare = by_name[GATEWAY], by_name[BARE]
    sizes = sorted(size for p in corpus for size in p.pdf_sizes)
    return {
        "benchmark": "verify",
        "when": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {
            "packages": len(corpus),
            "rounds": rounds,
            "seed": seed,
            "responder_latency_ms": latency_ms,
            "concurrency": 1,
        },
        "corpus": {
            "pdfs_per_package": len(corpus[0].pdf_sizes) if corpus else 0,
            "pdf_signatures_per_package": corpus[0].signatures if corpus else 0,
            "pdf_bytes": {"min": sizes[0], "median": int(statistics.median(sizes)), "max": sizes[-1]} if sizes else {},
            "package_bytes_mean": int(statistics.mean(len(p.raw) for p in corpus)) if corpus else 0,
        },
        "columns": {
            c.name: {
                "median_ms": round(c.median * 1000, 2),
                "p90_ms": round(c.p90 * 1000, 2),
                "mean_ms": round(statistics.mean(c.samples) * 1000, 2),
                "packages_per_second": round(c.per_second, 2),
                "samples": len(c.samples),
                "note": _NOTES[c.name],
            }
            for c in columns
        },
        "ratios": {
            "bare_loop_time_over_gateway": round(bare.median / gateway.median, 3),
            "gateway_throughput_over_bare_loop": round(gateway.per_second / bare.per_second, 3),
            "gateway_time_over_floor": round(gateway.median / by_name[FLOOR].median, 3),
        },
        **extra,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=20, help="packages to generate (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over all packages per column (default 5)")
    parser.add_argument("--seed", type=int, default=102, help="seeds the PDF sizes and pixels (default 102)")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="delay every OCSP/CRL/TSA request by MS milliseconds, as a distant responder would (default 0)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory of the JSON results")
    args = parser.parse_args(argv)
    if args.packages < 1 or args.rounds < 1:
        parser.error("--packages and --rounds must be at least 1")
    if args.latency < 0:
        parser.error("--latency cannot be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table and write the JSON.

    Returns:
        0 (a wrong verdict raises ``BenchmarkError`` or ``BareLoopError`` instead).
    """
    args = parse_args(argv)
    console = Console()
    latency = args.latency / 1000
    with served_pki(relay=latency > 0) as (pki, relay):
        columns, corpus, extra = asyncio.run(
            run_benchmark(
                pki,
                relay,
                packages=args.packages,
                rounds=args.rounds,
                seed=args.seed,
                latency=latency,
                console=console,
            )
        )
    console.print(render(columns, latency_ms=args.latency))
    for column in columns:
        console.print(f"[bold]{column.name}[/bold]: {_NOTES[column.name]}")
    document = result_document(
        columns, corpus, rounds=args.rounds, seed=args.seed, latency_ms=args.latency, extra=extra
    )
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"verify-{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------- issue 7, P1 (bench.suite)

P1_TARGET = 2.0
"""Issue 7, P1: the gateway's packages/s on the machine's cores at least 2x the bare loop's."""


def _pool_settings() -> Settings:
    return Settings()  # [verify] workers = 0: one PDF-reading process per usable CPU, as deployed


async def _throughput(packages: Sequence[Package], check: Check, in_flight: int) -> float:
    """Wall seconds to run ``check`` on every package with ``in_flight`` at a time."""
    slots = asyncio.Semaphore(in_flight)

    async def one(package: Package) -> None:
        async with slots:
            await check(package)

    start = time.perf_counter()
    await asyncio.gather(*(one(p) for p in packages))
    return time.perf_counter() - start


async def _p1(pki: DevPKI, *, count: int, rounds: int, in_flight: int) -> dict[str, Any]:
    corpus, cached = await cached_packages(pki, count, seed=102)
    pool = pdf_readers(_pool_settings())
    verifier = _verifier(pki, executor=pool)
    try:
        checks = _checks(pki, verifier, corpus)
        for check in checks.values():
            await measure(corpus, check)  # untimed: warms caches, imports, the pool's processes
        walls: list[float] = []
        samples: dict[str, list[float]] = {BARE: [], FLOOR: []}
        cpu = time.process_time()
        for _ in range(rounds):
            walls.append(await _throughput(corpus, checks[GATEWAY], in_flight))
            for name in (BARE, FLOOR):
                samples[name] += await measure(corpus, checks[name])
        cpu = time.process_time() - cpu
    finally:
        if isinstance(verifier.examiner, Examiner):
            await verifier.examiner.aclose()
        if pool is not None:
            pool.shutdown(wait=True)
    gateway = count * rounds / sum(walls)
    bare, floor = Column(BARE, tuple(samples[BARE])), Column(FLOOR, tuple(samples[FLOOR]))
    sizes = sorted(size for p in corpus for size in p.pdf_sizes)
    return {
        "gateway_packages_per_second": round(gateway, 2),
        "bare_packages_per_second": round(bare.per_second, 2),
        "floor_packages_per_second": round(floor.per_second, 2),
        "bare_median_ms": round(bare.median * 1000, 1),
        "floor_median_ms": round(floor.median * 1000, 2),
        "in_flight": in_flight,
        "pdf_processes": 1 if pool is None else len(os.sched_getaffinity(0)),
        "packages": count,
        "rounds": rounds,
        "corpus_cached": cached,
        "pdfs": len(sizes),
        "pdf_bytes": {"min": sizes[0], "median": int(statistics.median(sizes)), "max": sizes[-1]},
        "process_cpu_seconds": round(cpu, 2),
    }


def run_p1(quick: bool = False) -> dict[str, Any]:
    """Issue 7, P1: inbound verification on every core, warm, next to the bare loop and the floor.

    The gateway verifies ``[queue] workers`` (4) packages at a time, as its scheduler does, with
    the product's default PDF-reading process pool (one process per usable CPU) and one
    long-lived ``Verifier`` warmed by an untimed pass; the bare loop and the floor run one
    package after the other (the loop as a user would write it; the floor as the arithmetic).

    Args:
        quick: fewer packages and one round.

    Returns:
        The suite's row (``bench.suite``).

    Raises:
        BenchmarkError: a verdict other than ``accepted`` (``BareLoopError``: the loop failed).
    """
    in_flight = QueueSettings().workers
    with served_pki(cache=CACHE) as (pki, _):
        measured = asyncio.run(_p1(pki, count=6 if quick else 16, rounds=1 if quick else 3, in_flight=in_flight))
    ratio = measured["gateway_packages_per_second"] / measured["bare_packages_per_second"]
    return {
        "id": "P1",
        "name": "inbound verification, packages/s (warm, all cores)",
        "measured": measured,
        "baseline": {"bare_loop_packages_per_second": measured["bare_packages_per_second"]},
        "ratio": round(ratio, 2),
        "target": f">= {P1_TARGET:g}x the bare pyHanko+signxml loop",
        "met": ratio >= P1_TARGET,
        "notes": f"floor {measured['floor_packages_per_second']} packages/s (one core); "
        f"{measured['pdfs']} PDFs, {measured['pdf_bytes']['min'] // 1024} KB-"
        f"{measured['pdf_bytes']['max'] // 1024} KB; {measured['pdf_processes']} PDF processes, "
        f"{in_flight} packages in flight",
    }
