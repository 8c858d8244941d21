"""Outbound sealing speed: the gateway's concurrent ``Sealer`` next to a serial pyHanko loop.

Run ``make bench`` or ``python -m bench.sign_bench [--documents N] [--rounds R]`` from the
repository root. One run, one machine, one slow TSA, the same documents for every column:

1. a development PKI is generated in a temporary directory and served on a loopback port by a
   thread of this process (``bench.corpus.served_pki``; with ``--pki-process`` by a child
   process, ``bench.childpki``). Its TSA is reached through a ``bench.latency.DelayingRelay``
   that holds every request for ``--tsa-delay`` ms (default 200) before relaying it; OCSP and
   CRLs are reached directly (the URLs in the certificates name the PKI's own port), so they
   answer within milliseconds;
2. N attachments are made (``tests.pdfs.phu_luc`` padded with "scanned" pages to 100 KB - 5 MB,
   log-uniform, seeded), and with ``--main M`` also M main documents signed by the person;
3. each column seals every document once per round (``--rounds``, the column order rotating),
   after one untimed document that warms it (the pre-check of the organisation certificate,
   the font, the container size estimate, pyHanko's cached "dummy" time stamp, imports):

   * **gateway, concurrent** - one ``Sealer`` (the dev PKI's ``org`` PKCS#12 key, the sample
     seal, Liberation Serif, the slow TSA with ``tsa_concurrency`` = each ``--concurrency``
     value) and ``asyncio.gather`` over all N ``seal_document`` calls: N / wall time;
   * **gateway, serial** - the first of those sealers, one document at a time;
   * **pyHanko serial loop** - what one writes without the gateway: ``SimpleSigner`` from the
     PKCS#12, ``PdfSigner`` with PAdES (``ETSI.CAdES.detached``), SHA-256, pyHanko's
     ``HTTPTimeStamper`` on the same slow TSA, a new field with pyHanko's default text stamp,
     ``async_sign_pdf`` one document after another;

4. every output is checked, untimed, by the gateway's ``Examiner`` (its own instance): the
   original bytes kept, one more signature, by the organisation, intact, TOTAL_PASSED, TRUSTED,
   dated by its time stamp, nothing changed after it. A wrong output stops the run;
5. the table (documents/s, wall ms per document, CPU ms per document, latency per document,
   ratio to the pyHanko loop, issue 7's target of 4x) is printed and written as JSON to
   ``bench/results/sign-<UTC time>.json`` with the machine's description.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, SimpleSigner
from pyhanko.sign.timestamps import HTTPTimeStamper
from rich.console import Console
from rich.table import Table

from bench.childpki import served_pki_in_child
from bench.corpus import MAX_PDF_BYTES, MIN_PDF_BYTES, pad_pdf, served_pki
from bench.latency import DelayingRelay
from bench.machine import load_average, machine_info
from gateway.clock import SystemClock
from gateway.devpki import DevPKI, bind_listener, fingerprint
from gateway.settings import SignSettings
from gateway.sign.keys import load_pkcs12
from gateway.sign.pdfseal import Sealer, SealKind, SealRequest
from gateway.verify.certs import certificate_facts
from gateway.verify.facts import AdESIndication, Modification, SigningTimeSource, TrustOutcome
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Policy, SignerPolicy
from gateway.verify.trust import ExamSettings, TrustStore
from tests.pdfs.documents import APPENDIX_STAMP_BOX, PERSON_FIELD, cong_van, phu_luc
from tests.pdfs.signing import sign_pdf

__all__ = ["BenchmarkError", "Column", "main", "run_p2"]

RESULTS = Path(__file__).resolve().parent / "results"
"""Where the JSON results go by default."""

SEAL_IMAGE = Path(__file__).resolve().parents[1] / "config" / "samples" / "con-dau-mau.png"
ORGANISATION = "Ủy ban nhân dân tỉnh Test"
DOCUMENT_NUMBER = "123/UBND-VP"
TARGET = 4.0
"""Issue 7, P2: the gateway at least 4x the serial pyHanko loop's documents/s."""

_P12_PASSWORD = b"bench"
_LOOP_FIELD = "Seal"

SERIAL, LOOP = "gateway, serial", "pyHanko serial loop"
_MAIN_SUFFIX = ", main docs"


def concurrent_name(concurrency: int, *, main: bool = False) -> str:
    """The name of a concurrent gateway column (``concurrency``: its TSA cap)."""
    return f"gateway, concurrent, cap {concurrency}" + (_MAIN_SUFFIX if main else "")


class BenchmarkError(RuntimeError):
    """A column produced a document that does not validate: its timings would be meaningless."""


@dataclass(frozen=True)
class Document:
    """One document to seal."""

    name: str
    pdf: bytes
    kind: SealKind

    @property
    def request(self) -> SealRequest:
        if self.kind is SealKind.MAIN:
            return SealRequest(SealKind.MAIN, ORGANISATION)
        return SealRequest(SealKind.ATTACHMENT, ORGANISATION, document_number=DOCUMENT_NUMBER)


@dataclass
class Column:
    """The rounds of one column."""

    name: str
    concurrent: bool
    note: str
    documents: int
    """Documents per round."""
    walls: list[float] = field(default_factory=list)
    """Wall time of each round, in seconds."""
    latencies: list[float] = field(default_factory=list)
    """Seconds from each ``seal`` call to its return, every round (waiting for a TSA slot included)."""
    tsa_requests: int = 0
    """Requests that went through the delaying relay during the timed rounds."""
    cpu: float = 0.0
    """CPU seconds of this process (every thread: sealing, the PKI's server, the relay) in the timed rounds."""

    @property
    def per_second(self) -> float:
        return self.documents * len(self.walls) / sum(self.walls)

    @property
    def ms_per_document(self) -> float:
        return 1000 / self.per_second

    @property
    def median_latency(self) -> float:
        return statistics.median(self.latencies)

    @property
    def cpu_ms_per_document(self) -> float:
        return 1000 * self.cpu / (self.documents * len(self.walls))


Seal = Callable[[Document], Awaitable[bytes]]


# ---------------------------------------------------------------- the documents


def _size(rng: random.Random) -> int:
    """A PDF size drawn log-uniformly between ``MIN_PDF_BYTES`` and ``MAX_PDF_BYTES``."""
    return int(math.exp(rng.uniform(math.log(MIN_PDF_BYTES), math.log(MAX_PDF_BYTES))))


async def make_documents(pki: DevPKI, *, attachments: int, mains: int, seed: int) -> list[Document]:
    """The attachments (unsigned appendices) and the main documents (signed by the person).

    The person signs through the PKI's own TSA URL (no delay): making the corpus is not timed.
    """
    rng = random.Random(seed)  # noqa: S311 - pixels and sizes, not secrets
    documents = [
        Document(f"phu-luc-{n:03d}.pdf", pad_pdf(phu_luc(), _size(rng), rng), SealKind.ATTACHMENT)
        for n in range(1, attachments + 1)
    ]
    for n in range(1, mains + 1):
        padded = pad_pdf(cong_van(), _size(rng), rng)
        signed = await sign_pdf(padded, pki=pki, signer_label="person", field_name=PERSON_FIELD)
        documents.append(Document(f"cong-van-{n:03d}.pdf", signed, SealKind.MAIN))
    return documents


# ---------------------------------------------------------------- the columns


class PyHankoLoop:
    """The baseline: stock pyHanko, as the library's documentation shows it, no gateway.

    One ``SimpleSigner`` loaded from the PKCS#12 and one ``HTTPTimeStamper`` for the loop (so
    pyHanko's size-estimating "dummy" time stamp is fetched once, by the warm-up); per document
    a ``PdfSigner`` writing PAdES, SHA-256, a time stamp, and pyHanko's default text stamp in a
    new field at the top right of page 1.
    """

    def __init__(self, p12: bytes, password: bytes, tsa_url: str) -> None:
        self._signer = SimpleSigner.load_pkcs12_data(p12, other_certs=[], passphrase=password)
        self._timestamper = HTTPTimeStamper(tsa_url, timeout=30)

    async def sign(self, document: Document) -> bytes:
        meta = PdfSignatureMetadata(
            field_name=_LOOP_FIELD, md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES, name=ORGANISATION
        )
        spec = SigFieldSpec(sig_field_name=_LOOP_FIELD, on_page=0, box=APPENDIX_STAMP_BOX)
        signer = PdfSigner(meta, self._signer, timestamper=self._timestamper, new_field_spec=spec)
        output = await signer.async_sign_pdf(IncrementalPdfFileWriter(BytesIO(document.pdf)))
        if not isinstance(output, BytesIO):
            raise TypeError("pyHanko returned no in-memory output")
        return output.getvalue()


async def run_serial(seal: Seal, documents: Sequence[Document]) -> tuple[float, list[float], list[bytes]]:
    """Seal the documents one after the other: wall time, latencies, outputs."""
    latencies, outputs = [], []
    start = time.perf_counter()
    for document in documents:
        begun = time.perf_counter()
        outputs.append(await seal(document))
        latencies.append(time.perf_counter() - begun)
    return time.perf_counter() - start, latencies, outputs


async def run_concurrent(seal: Seal, documents: Sequence[Document]) -> tuple[float, list[float], list[bytes]]:
    """Seal all the documents at once (``asyncio.gather``): wall time, latencies, outputs."""

    async def one(document: Document) -> tuple[bytes, float]:
        begun = time.perf_counter()
        output = await seal(document)
        return output, time.perf_counter() - begun

    start = time.perf_counter()
    results = await asyncio.gather(*(one(d) for d in documents))
    wall = time.perf_counter() - start
    return wall, [latency for _, latency in results], [output for output, _ in results]


# ---------------------------------------------------------------- checking the outputs


def trust_store(pki: DevPKI) -> TrustStore:
    """The dev PKI's pinned root, and its intermediate as a helper."""
    return TrustStore.load(
        [pki.layout.anchor("root")], [fingerprint(pki.certificate("root"))], [pki.layout.intermediate("intermediate")]
    )


class OutputCheck:
    """Checks a sealed document with the gateway's examiner (its own instance, untimed)."""

    def __init__(self, pki: DevPKI) -> None:
        self._examiner = Examiner(trust_store(pki), SystemClock())
        self._org = certificate_facts(pki.certificate("org")).sha256
        self.checked = 0

    async def check(self, column: str, document: Document, output: bytes) -> None:
        """Raise ``BenchmarkError`` unless ``output`` is ``document`` plus a valid, trusted, time-stamped seal."""

        def fail(why: str) -> BenchmarkError:
            return BenchmarkError(f"{column}: {document.name}: {why}")

        if not output.startswith(document.pdf) or len(output) <= len(document.pdf):
            raise fail("the original bytes were not kept, or nothing was added")
        facts = await self._examiner.examine_pdf(
            output, name=document.name, content_id="", is_main=document.kind is SealKind.MAIN, settings=ExamSettings()
        )
        expected = 2 if document.kind is SealKind.MAIN else 1
        if not facts.readable or len(facts.signatures) != expected:
            raise fail(f"readable={facts.readable}, {len(facts.signatures)} signature(s), {expected} expected")
        for signature in facts.signatures:
            verdict = (signature.indication, signature.trust.outcome, signature.signing_time_source)
            if verdict != (AdESIndication.TOTAL_PASSED, TrustOutcome.TRUSTED, SigningTimeSource.TIMESTAMP):
                raise fail(f"signature {signature.index}: {verdict} {signature.subindication} {signature.detail}")
        seal = facts.signatures[-1]
        if seal.signer is None or seal.signer.sha256 != self._org:
            raise fail("the last signature is not the organisation's")
        if seal.modification is not Modification.NONE or seal.subfilter != "/ETSI.CAdES.detached":
            raise fail(f"seal: {seal.modification} after it, SubFilter {seal.subfilter}")
        if seal.digest_algorithm != "sha256":
            raise fail(f"seal digest {seal.digest_algorithm}")
        self.checked += 1

    async def aclose(self) -> None:
        await self._examiner.aclose()


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Options:
    """The command line, parsed."""

    documents: int
    mains: int
    rounds: int
    concurrency: tuple[int, ...]
    tsa_delay: float
    """Seconds."""
    seed: int
    pki_process: bool = False
    """Serve the PKI from a child process instead of a thread of this one."""
    results: Path = RESULTS


def relayed_url(url: str, port: int) -> str:
    """``url`` with its port replaced (the TSA's path, reached through the relay)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


@contextlib.contextmanager
def slow_tsa(pki: DevPKI, delay: float) -> Iterator[tuple[DelayingRelay, str]]:
    """A delaying relay in front of the served PKI; yields it and the TSA URL through it."""
    listener = bind_listener("127.0.0.1", 0)
    upstream = urlsplit(pki.base_url)
    if upstream.hostname is None or upstream.port is None:
        raise ValueError(f"unexpected PKI base URL {pki.base_url}")
    with DelayingRelay(listener, (upstream.hostname, upstream.port), delay) as relay:
        yield relay, relayed_url(pki.urls.tsa, listener.getsockname()[1])


@contextlib.asynccontextmanager
async def sealers(pki: DevPKI, tsa_url: str, concurrency: Sequence[int]) -> AsyncIterator[dict[int, Sealer]]:
    """One ``Sealer`` per TSA cap, as the gateway builds it (one examiner shared; all closed after)."""
    clock = SystemClock()
    store = trust_store(pki)
    examiner = Examiner(store, clock)
    key = load_pkcs12(pki.pkcs12("org", _P12_PASSWORD), _P12_PASSWORD, source="org.p12")
    signers = SignerPolicy(
        organisation_policy_oids=(pki.policy_oids.organisation,), person_policy_oids=(pki.policy_oids.person,)
    )
    policy = Policy(signers=signers)
    built: dict[int, Sealer] = {}
    try:
        for cap in concurrency:
            settings = SignSettings(tsa_url=tsa_url, tsa_concurrency=cap, seal_image=SEAL_IMAGE)
            built[cap] = Sealer(key, settings, examiner, policy, clock, trust=store)
        yield built
    finally:
        for sealer in built.values():
            await sealer.aclose()
        await examiner.aclose()


_NOTES = {
    "concurrent": "one Sealer (tsa_concurrency = the cap), all documents at once with asyncio.gather; "
    "warmed by one untimed seal (pre-check, font, container size, dummy time stamp)",
    SERIAL: "the first concurrent column's Sealer, one document at a time",
    LOOP: "stock pyHanko: SimpleSigner.load_pkcs12_data, PdfSigner PAdES SHA-256, HTTPTimeStamper "
    "(a new aiohttp session per request), default text stamp, async_sign_pdf one after another; "
    "one untimed document first",
}


async def run_benchmark(
    pki: DevPKI, options: Options, console: Console
) -> tuple[list[Column], list[Document], dict[str, Any]]:
    """Make the documents, build the columns, warm each once, then time ``options.rounds`` rounds."""
    load_at_start = load_average()
    start = time.perf_counter()
    corpus = await make_documents(pki, attachments=options.documents, mains=options.mains, seed=options.seed)
    generated = time.perf_counter() - start
    attachments = [d for d in corpus if d.kind is SealKind.ATTACHMENT]
    mains = [d for d in corpus if d.kind is SealKind.MAIN]
    console.print(f"{len(attachments)} attachments, {len(mains)} main documents made in {generated:.1f} s", style="dim")
    check = OutputCheck(pki)
    try:
        columns, tsa = await _measure(pki, options, check, attachments=attachments, mains=mains, console=console)
    finally:
        await check.aclose()
    for column in columns:  # every document must have paid the slow TSA at least once
        if column.tsa_requests < column.documents * len(column.walls):
            raise BenchmarkError(f"{column.name}: {column.tsa_requests} TSA requests for {column.documents} documents")
    failures = sum(entry["failures"] for entry in tsa.values())
    if failures:  # retried attempts would hide a slow or broken TSA inside the timings
        raise BenchmarkError(f"{failures} time stamp attempt(s) failed and were retried: {tsa}")
    extra = {
        "load_average_1m": {"start": load_at_start, "end": load_average()},
        "generation_seconds": round(generated, 2),
        "gateway_tsa_clients": tsa,
        "outputs_checked": check.checked,
    }
    return columns, corpus, extra


async def _measure(
    pki: DevPKI,
    options: Options,
    check: OutputCheck,
    *,
    attachments: list[Document],
    mains: list[Document],
    console: Console,
) -> tuple[list[Column], dict[str, dict[str, int]]]:
    """The columns' warm-up and timed rounds; the gateway's TSA counters per cap."""
    with slow_tsa(pki, options.tsa_delay) as (relay, tsa_url):
        loop = PyHankoLoop(pki.pkcs12("org", _P12_PASSWORD), _P12_PASSWORD, tsa_url)
        async with sealers(pki, tsa_url, options.concurrency) as by_cap:
            first = by_cap[options.concurrency[0]]
            # name -> (column, how it runs, the seal function, its documents)
            plan: dict[str, tuple[Column, bool, Seal, list[Document]]] = {}

            def add(name: str, concurrent: bool, seal: Seal, documents: list[Document], note: str) -> None:
                plan[name] = (Column(name, concurrent, note, len(documents)), concurrent, seal, documents)

            def gateway(sealer: Sealer) -> Seal:
                return lambda document: sealer.seal_document(document.pdf, document.request)

            for cap, sealer in by_cap.items():
                add(concurrent_name(cap), True, gateway(sealer), attachments, _NOTES["concurrent"])
            add(SERIAL, False, gateway(first), attachments, _NOTES[SERIAL])
            add(LOOP, False, loop.sign, attachments, _NOTES[LOOP])
            if mains:
                note = _NOTES["concurrent"] + "; the person's signature examined first (Decree 30 Art. 32.2)"
                add(concurrent_name(options.concurrency[0], main=True), True, gateway(first), mains, note)

            for name, (_, _, seal, documents) in plan.items():  # untimed warm-up, checked too
                await check.check(name, documents[0], await seal(documents[0]))
            names = list(plan)
            for round_number in range(options.rounds):
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    column, concurrent, seal, documents = plan[name]
                    before, cpu = relay.connections, time.process_time()
                    wall, latencies, outputs = await (run_concurrent if concurrent else run_serial)(seal, documents)
                    column.cpu += time.process_time() - cpu
                    column.tsa_requests += relay.connections - before
                    column.walls.append(wall)
                    column.latencies += latencies
                    for document, output in zip(documents, outputs, strict=True):
                        await check.check(name, document, output)
                console.print(f"round {round_number + 1}/{options.rounds} done", style="dim")
            tsa = {
                str(cap): {
                    "requests": s.tsa.stats.requests,
                    "failures": s.tsa.stats.failures,
                    "max_in_flight": s.tsa.stats.max_in_flight,
                    "certificate_prechecks": s.precheck.checks,
                }
                for cap, s in by_cap.items()
            }
    return [entry[0] for entry in plan.values()], tsa


# ---------------------------------------------------------------- output


def _ratio(column: Column, loop: Column) -> float:
    return column.per_second / loop.per_second


def headline(columns: Sequence[Column], concurrency: int) -> tuple[float, bool]:
    """The gateway's concurrent documents/s over the pyHanko loop's, and whether it meets the target."""
    by_name = {c.name: c for c in columns}
    ratio = _ratio(by_name[concurrent_name(concurrency)], by_name[LOOP])
    return ratio, ratio >= TARGET


def render(columns: Sequence[Column], options: Options) -> Table:
    """The result table: one row per column, throughput relative to the pyHanko loop."""
    loop = next(c for c in columns if c.name == LOOP)
    title = (
        f"Outbound sealing (same documents, same run; TSA answers after {options.tsa_delay * 1000:g} ms, "
        f"OCSP/CRL at once; PKI served from {_where_pki(options)})"
    )
    table = Table(title=title)
    table.add_column("column")
    for header in ("docs", "docs/s", "ms/doc", "CPU ms/doc", "latency ms", "vs loop"):
        table.add_column(header, justify="right")
    for column in columns:
        comparable = column.documents == loop.documents and not column.name.endswith(_MAIN_SUFFIX)
        table.add_row(
            column.name,
            f"{column.documents}x{len(column.walls)}",
            f"{column.per_second:.2f}",
            f"{column.ms_per_document:.0f}",
            f"{column.cpu_ms_per_document:.0f}",
            f"{column.median_latency * 1000:.0f}",
            f"{_ratio(column, loop):.2f}x" if comparable else "n/a",
        )
    return table


def result_document(
    columns: Sequence[Column], corpus: Sequence[Document], options: Options, extra: dict[str, Any]
) -> dict[str, Any]:
    """The JSON written to ``bench/results/``."""
    loop = next(c for c in columns if c.name == LOOP)
    ratio, met = headline(columns, options.concurrency[0])
    sizes = sorted(len(d.pdf) for d in corpus if d.kind is SealKind.ATTACHMENT)
    return {
        "benchmark": "sign",
        "when": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "documents": options.documents,
            "main_documents": options.mains,
            "rounds": options.rounds,
            "seed": options.seed,
            "tsa_delay_ms": options.tsa_delay * 1000,
            "ocsp_crl_delay_ms": 0,
            "pki_served_from": _where_pki(options),
            "tsa_concurrency": list(options.concurrency),
            "seal": {"image": SEAL_IMAGE.name, "font": SignSettings().font.name},
        },
        "corpus": {
            "attachment_bytes": {"min": sizes[0], "median": int(statistics.median(sizes)), "max": sizes[-1]},
        },
        "columns": {
            c.name: {
                "documents_per_round": c.documents,
                "rounds": len(c.walls),
                "documents_per_second": round(c.per_second, 3),
                "ms_per_document": round(c.ms_per_document, 1),
                "cpu_ms_per_document": round(c.cpu_ms_per_document, 1),
                "wall_seconds_per_round": [round(w, 3) for w in c.walls],
                "documents_per_second_per_round": [round(c.documents / w, 2) for w in c.walls],
                "latency_ms": {
                    "median": round(c.median_latency * 1000, 1),
                    "max": round(max(c.latencies) * 1000, 1),
                },
                "tsa_requests_per_document": round(c.tsa_requests / (c.documents * len(c.walls)), 3),
                "concurrent": c.concurrent,
                "ratio_to_pyhanko_loop": None if c.name.endswith(_MAIN_SUFFIX) else round(_ratio(c, loop), 3),
                "note": c.note,
            }
            for c in columns
        },
        "target": {
            "what": "issue 7 P2: gateway (concurrent, first TSA cap) documents/s over the serial pyHanko loop",
            "column": concurrent_name(options.concurrency[0]),
            "ratio": round(ratio, 3),
            "at_least": TARGET,
            "met": met,
        },
        **extra,
    }


def parse_args(argv: Sequence[str] | None) -> Options:
    """The command line as ``Options`` (exits with a message on a bad one)."""
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m bench.sign_bench", description=doc.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=24, help="attachments to seal per column and round (24)")
    parser.add_argument(
        "--main", type=int, default=0, help="also seal this many person-signed main documents (own row; default 0)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per column (default 3)")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[4, 8],
        metavar="CAP",
        help="[sign] tsa_concurrency of each concurrent gateway column; the first is the headline (default: 4 8)",
    )
    parser.add_argument("--tsa-delay", type=float, default=200.0, metavar="MS", help="TSA answer delay (200 ms)")
    parser.add_argument("--seed", type=int, default=102, help="seeds the PDF sizes and pixels (default 102)")
    parser.add_argument(
        "--pki-process",
        action="store_true",
        help="serve the PKI from a child process (its time stamps signed on another core, as a remote TSA's are)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory of the JSON results")
    args = parser.parse_args(argv)
    if args.documents < 1 or args.rounds < 1 or args.main < 0 or min(args.concurrency) < 1:
        parser.error("--documents, --rounds and --concurrency must be at least 1, --main not negative")
    if args.tsa_delay < 0:
        parser.error("--tsa-delay cannot be negative")
    return Options(
        documents=args.documents,
        mains=args.main,
        rounds=args.rounds,
        concurrency=tuple(dict.fromkeys(args.concurrency)),
        tsa_delay=args.tsa_delay / 1000,
        seed=args.seed,
        pki_process=args.pki_process,
        results=args.results,
    )


@contextlib.contextmanager
def _pki(options: Options) -> Iterator[DevPKI]:
    if options.pki_process:
        with served_pki_in_child() as pki:
            yield pki
    else:
        with served_pki() as (pki, _):
            yield pki


def _where_pki(options: Options) -> str:
    return "a child process" if options.pki_process else "a thread of this process"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table and write the JSON.

    Returns:
        0 (an output that does not validate raises ``BenchmarkError`` instead).
    """
    options = parse_args(argv)
    console = Console()
    if not SEAL_IMAGE.is_file() or not SignSettings().font.is_file():
        console.print(f"needs {SEAL_IMAGE} and {SignSettings().font} (apt-get install fonts-liberation2)")
        return 2
    with _pki(options) as pki:
        columns, corpus, extra = asyncio.run(run_benchmark(pki, options, console))
    console.print(render(columns, options))
    ratio, met = headline(columns, options.concurrency[0])
    console.print(
        f"target (issue 7 P2): {concurrent_name(options.concurrency[0])} at least {TARGET:g}x the serial "
        f"pyHanko loop: {ratio:.2f}x, [bold]{'met' if met else 'not met'}[/bold]"
    )
    for column in columns:
        console.print(f"[bold]{column.name}[/bold]: {column.note}")
    document = result_document(columns, corpus, options, extra)
    options.results.mkdir(parents=True, exist_ok=True)
    path = options.results / f"sign-{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------- issue 7, P2 (bench.suite)


def run_p2(quick: bool = False) -> dict[str, Any]:
    """Issue 7, P2: sealing with a TSA that answers after 200 ms, next to a serial pyHanko loop.

    The headline is the gateway at the product's default ``[sign] tsa_concurrency``; a column
    at twice that cap is measured too (notes). The PKI is served from a child process, as a
    remote TSA signs its tokens on someone else's CPU.

    Args:
        quick: 8 documents and one round instead of 24 and three.

    Returns:
        The suite's row (``bench.suite``).

    Raises:
        BenchmarkError: an output that does not validate.
        FileNotFoundError: the seal image or the font is missing.
    """
    if not SEAL_IMAGE.is_file() or not SignSettings().font.is_file():
        raise FileNotFoundError(f"needs {SEAL_IMAGE} and {SignSettings().font} (apt-get install fonts-liberation2)")
    cap = SignSettings().tsa_concurrency
    options = Options(
        documents=8 if quick else 24,
        mains=0,
        rounds=1 if quick else 3,
        concurrency=(cap, 2 * cap),
        tsa_delay=0.2,
        seed=102,
        pki_process=True,
    )
    with _pki(options) as pki:
        columns, _, extra = asyncio.run(run_benchmark(pki, options, Console(stderr=True, quiet=True)))
    by_name = {c.name: c for c in columns}
    ratio, met = headline(columns, cap)
    loop, wider = by_name[LOOP], by_name[concurrent_name(2 * cap)]
    return {
        "id": "P2",
        "name": f"outbound sealing, docs/s (TSA 200 ms, tsa_concurrency {cap})",
        "measured": {
            "gateway_documents_per_second": round(by_name[concurrent_name(cap)].per_second, 2),
            f"gateway_cap_{2 * cap}_documents_per_second": round(wider.per_second, 2),
            "gateway_serial_documents_per_second": round(by_name[SERIAL].per_second, 2),
            "documents": options.documents,
            "rounds": options.rounds,
            "outputs_checked": extra["outputs_checked"],
        },
        "baseline": {"pyhanko_serial_loop_documents_per_second": round(loop.per_second, 2)},
        "ratio": round(ratio, 2),
        "target": f">= {TARGET:g}x the serial pyHanko loop",
        "met": met,
        "notes": f"at tsa_concurrency {2 * cap}: {wider.per_second / loop.per_second:.2f}x; "
        f"PDFs {MIN_PDF_BYTES // 1024} KB-{MAX_PDF_BYTES // 1024} KB; PKI in a child process",
    }
