"""P3: SMTP accept latency of the gateway's inbound listener next to Postfix's own smtpd (issue 7).

What is measured: 20 concurrent SMTP clients each send N mails of about 1 MB (a real package mail:
an edXML package whose PDF is signed by the person and sealed by the organisation, time-stamped,
the envelope signed, attached as the axis sends it) over one connection each, and the time from
the end of DATA (the last byte of ``CRLF.CRLF`` handed to the kernel) to the server's ``250`` is
recorded for every mail. Each mail carries its own ``Message-ID`` and sequence header, so no
server can skip a write because it has seen the bytes before.

The two servers, on this machine, in the same run, in interleaved rounds (the order alternates
each round, so neither always runs on a warmer or busier machine):

* **gateway**: ``python -m gateway serve`` in its own process, on a configuration made like the
  test suite's (``tests.service.write_config``: SQLite receipt log and spool on disk). Its promise
  before ``250`` is the product's: the spool file is written, fsynced, renamed and its directory
  fsynced, and the receipt row is committed with ``synchronous=FULL`` (HOUSE.md rule 13). Its
  pipeline runs as in production: each accepted package is verified, delivered to a Maildir and
  answered with a status 01 while the next mails arrive.
* **gateway, accept only** (``--accept-only``; not the headline): the same listener, intake,
  spool and receipt log on the same configuration, in a process of their own without the
  pipeline (``python -m bench.smtp_bench --accept-only-server CONFIG``), so that nothing runs
  behind the accept, as with Postfix holding every mail: the like-for-like view of the accept
  path alone. Same promise before ``250``.
* **postfix**: a throw-away Postfix (``tests.postfix.harness``) whose smtpd accepts the same
  mails into its queue: ``cleanup`` writes and fsyncs the queue file before smtpd answers
  ``250``. ``smtpd_data_restrictions = check_client_access static:HOLD`` puts every mail in the
  hold queue, so ``qmgr`` never delivers anything during the run (no work behind the accept that
  the gateway's side would not also have); the hold queue is emptied between rounds.

Before every round of any server the bench waits until the gateway's pipeline has finished the
mails of earlier rounds (no item ``incoming`` or ``active``): the packages of one round take
longer to verify than to receive, and a server must not be measured while the gateway's
verification of an earlier round still uses the CPU.

The client is a small SMTP client on asyncio streams rather than aiosmtplib: timing the end of
DATA needs the moment the last byte was written (write-buffer limit 0, ``drain``), which
aiosmtplib's ``data()`` does not expose. The development PKI is served from a child process
(``bench.childpki``), so its CPU is not the clients'.

Run ``python -m bench.smtp_bench`` (``--quick`` for a smoke run); it prints p50/p99 of both and
their ratio and writes ``bench/results/smtp-<UTC>.json``. Needs Debian's ``postfix`` and root (the
Postfix instance runs as ``postfix``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from bench.childpki import served_pki_in_child
from bench.corpus import make_package
from bench.machine import load_average, machine_info
from gateway.app.logs import configure_logging
from gateway.cli.config import load_settings
from gateway.clock import SystemClock
from gateway.devpki import DevPKI
from gateway.inbound.intake import Intake
from gateway.inbound.smtp import InboundSmtp
from gateway.settings import Settings
from gateway.store import Spool, Store, resolve_url
from tests.command import terminate
from tests.postfix.harness import PostfixInstance
from tests.service import OUR_MAIL, PARTNER_MAIL, write_config
from tests.smtpsink import free_port

__all__ = ["TARGET_RATIO", "Column", "percentile", "run_p3"]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET_RATIO: Final = 2.0
"""P3's target: the gateway's p99 within 2x of Postfix's."""
CLIENTS: Final = 20
MAIL_BYTES: Final = 1024 * 1024
_PDF_BYTES: Final = 500 * 1024
"""The signed PDF's size that makes the mail about 1 MB (base64 twice: in the XML, in the mail)."""
_START_SECONDS: Final = 60.0
_REPLY_SECONDS: Final = 120.0
_DRAIN_SECONDS: Final = 600.0


@dataclass
class Column:
    """One server's latencies (seconds), over every round."""

    name: str
    latencies: list[float]

    def summary(self) -> dict[str, float | int]:
        """Count, p50, p99 and max in milliseconds."""
        return {
            "mails": len(self.latencies),
            "p50_ms": round(percentile(self.latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(self.latencies, 0.99) * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2),
            "max_ms": round(max(self.latencies) * 1000, 2),
        }


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


# ---------------------------------------------------------------------- the mail
async def package_mail(pki: DevPKI) -> bytes:
    """A package mail of about 1 MB, as the axis delivers it to us (CRLF line ends)."""
    package = await make_package(pki, 1, random.Random(3), sizes=[_PDF_BYTES])  # noqa: S311 - pixels
    return package.mail("Gói tin liên thông (P3)", "Gói tin edXML đính kèm.\n")


def unique(mail: bytes, sequence: int, run: str) -> bytes:
    """``mail`` with a header of its own in front: no two mails of a run have the same bytes."""
    return f"X-Bench-Mail: {run}-{sequence}\r\n".encode("ascii") + mail


def _wire(mail: bytes) -> bytes:
    """DATA payload: dot-stuffed, ended by ``CRLF.CRLF``."""
    body = (b"." + mail if mail.startswith(b".") else mail).replace(b"\r\n.", b"\r\n..")
    return body + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n")


# ---------------------------------------------------------------------- the client
async def _reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), _REPLY_SECONDS)
        if not line:
            raise ConnectionError("the server closed the connection")
        lines.append(line.decode("ascii", "replace").rstrip())
        if line[3:4] != b"-":
            return int(line[:3]), "\n".join(lines)


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str, expect: int) -> None:
    writer.write(line.encode("ascii") + b"\r\n")
    await writer.drain()
    code, text = await _reply(reader)
    if code != expect:
        raise RuntimeError(f"{line.split(maxsplit=1)[0]}: expected {expect}, got {text}")


async def client(port: int, mails: Sequence[bytes], latencies: list[float]) -> None:
    """One connection: EHLO, then MAIL/RCPT/DATA per mail, timing end of DATA → 250.

    Raises:
        RuntimeError: a reply other than the expected one (a benchmark of refusals is worthless).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.transport.set_write_buffer_limits(high=0)  # drain() returns when the kernel has every byte
    try:
        code, text = await _reply(reader)
        if code != 220:
            raise RuntimeError(f"greeting: {text}")
        await _command(reader, writer, "EHLO bench.test", 250)
        for mail in mails:
            await _command(reader, writer, f"MAIL FROM:<{PARTNER_MAIL}>", 250)
            await _command(reader, writer, f"RCPT TO:<{OUR_MAIL}>", 250)
            await _command(reader, writer, "DATA", 354)
            writer.write(_wire(mail))
            await writer.drain()
            start = time.perf_counter()
            code, text = await _reply(reader)
            latencies.append(time.perf_counter() - start)
            if code != 250:
                raise RuntimeError(f"end of DATA: expected 250, got {text}")
        await _command(reader, writer, "QUIT", 221)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def round_of(port: int, mail: bytes, per_client: int, run: str) -> list[float]:
    """``CLIENTS`` clients at once, ``per_client`` unique mails each; every mail's latency."""
    latencies: list[float] = []
    batches = [[unique(mail, c * per_client + i, run) for i in range(per_client)] for c in range(CLIENTS)]
    await asyncio.gather(*(client(port, batch, latencies) for batch in batches))
    return latencies


# ---------------------------------------------------------------------- the servers
def _wait_for_greeting(port: int, process: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited at start ({process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
            if probe.recv(100).startswith(b"220"):
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not greet on port {port} within {_START_SECONDS:g} s")


@contextlib.contextmanager
def gateway_process(pki: DevPKI, directory: Path, *, accept_only: bool = False) -> Iterator[int]:
    """``gateway serve`` in its own process on ``directory``; yields its inbound SMTP port.

    With ``accept_only``, the listener, intake, spool and receipt log alone (no pipeline).
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(
        directory, pki, smtp_listen=f"127.0.0.1:{port}", submission_listen="127.0.0.1:0", http_listen="127.0.0.1:0"
    )
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
    log = (directory / "gateway.log").open("wb")
    command = (
        ["-m", "bench.smtp_bench", "--accept-only-server"] if accept_only else ["-m", "gateway", "serve", "--config"]
    )
    process = subprocess.Popen(
        [sys.executable, *command, str(config)],
        cwd=HERE.parent if accept_only else directory,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        _wait_for_greeting(port, process, "gateway serve")
        yield port
    finally:
        terminate(process, wait=60)


async def serve_accept_only(settings: Settings, config_dir: Path) -> None:
    """The accept path alone: ``[smtp]`` listener, intake, spool, receipt log; until SIGTERM.

    Built as ``gateway.app.service`` builds them, without the scheduler (nothing is processed).
    """
    store = await Store.open(resolve_url(settings.store.url, config_dir), clock=SystemClock())
    listener = InboundSmtp(settings.smtp, Intake(store, Spool(settings.store.spool)))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await listener.start()
        await stop.wait()
        await listener.stop()
    finally:
        await store.close()


@contextlib.contextmanager
def postfix_holding() -> Iterator[PostfixInstance]:
    """A throw-away Postfix whose smtpd puts every mail on hold (accepted, queued, never delivered)."""
    instance = PostfixInstance(
        "bench",
        main={"smtpd_data_restrictions": "check_client_access static:HOLD", "message_size_limit": str(64 << 20)},
    )
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
        instance.remove()


def _held(instance: PostfixInstance, expected: int) -> None:
    """Check that Postfix holds exactly ``expected`` mails (nothing delivered, nothing lost); empty it."""
    queue = instance.queue()
    held = [entry for entry in queue if entry.get("queue_name") == "hold"]
    if len(held) != expected or len(queue) != expected:
        raise RuntimeError(f"postfix should hold {expected} mails; its queue: {len(queue)} ({len(held)} on hold)")
    instance.delete_queue("hold")


def drained(database: Path) -> None:
    """Wait until the gateway's pipeline has nothing left to do (no item incoming or active).

    Raises:
        RuntimeError: still busy after ``_DRAIN_SECONDS``.
    """
    deadline = time.monotonic() + _DRAIN_SECONDS
    query = "SELECT count(*) FROM messages WHERE state IN ('incoming', 'active')"
    while True:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as conn:
            (busy,) = conn.execute(query).fetchone()
        if busy == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway still has {busy} items in progress after {_DRAIN_SECONDS:g} s")
        time.sleep(0.2)


# ---------------------------------------------------------------------- the run
def measure(
    pki: DevPKI, mail: bytes, *, rounds: int, per_client: int, accept_only: bool, console: Console | None
) -> dict[str, Column]:
    """Interleaved rounds against every server; the latencies of each."""
    names = ["gateway", "postfix"] + (["accept-only"] if accept_only else [])
    columns = {name: Column(name, []) for name in names}
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-p3-")))
        postfix = stack.enter_context(postfix_holding())
        ports = {"postfix": postfix.port, "gateway": stack.enter_context(gateway_process(pki, directory / "gateway"))}
        if accept_only:
            ports["accept-only"] = stack.enter_context(gateway_process(pki, directory / "accept", accept_only=True))
        for number in range(rounds + 1):  # round 0 warms every server up and is not counted
            order = names[number % len(names) :] + names[: number % len(names)]
            for name in order:
                # Nobody is measured while the gateway still works through an earlier round.
                drained(directory / "gateway" / "gateway.db")
                latencies = asyncio.run(round_of(ports[name], mail, per_client, f"r{number}{name}"))
                if name == "postfix":
                    _held(postfix, CLIENTS * per_client)
                if number > 0:
                    columns[name].latencies.extend(latencies)
                if console is not None:
                    p99 = percentile(latencies, 0.99) * 1000
                    shown = "warm-up" if number == 0 else f"round {number}"
                    console.print(
                        f"  {shown}: {name:<11} p50 {percentile(latencies, 0.5) * 1000:8.1f} ms  p99 {p99:8.1f} ms"
                    )
    return columns


def run_p3(
    quick: bool = False,
    *,
    rounds: int | None = None,
    per_client: int | None = None,
    accept_only: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run P3 and return its summary for ``bench/suite.py``.

    Args:
        quick: 2 rounds of 3 mails per client instead of 4 rounds of 10 (a smoke run).
        rounds: timed rounds per server (after one warm-up round each).
        per_client: mails each of the 20 clients sends per round.
        accept_only: also measure the accept path alone (no pipeline behind it); reported
            next to the headline, never instead of it.
        console: where progress goes (``None``: quiet).

    Returns:
        ``{"id": "P3", "name", "measured", "target", "met", ...}``.

    Raises:
        RuntimeError: Postfix is not installed or not run as root; a server refused a mail, or
            Postfix delivered or lost one.
    """
    if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").is_file():
        raise RuntimeError("P3 needs Debian's postfix (apt-get install postfix) to measure against")
    if os.geteuid() != 0:
        raise RuntimeError("P3 runs a throw-away Postfix instance, which needs root")
    rounds = rounds or (2 if quick else 4)
    per_client = per_client or (3 if quick else 10)
    load_before = load_average()
    with served_pki_in_child() as pki:
        mail = asyncio.run(package_mail(pki))
        columns = measure(pki, mail, rounds=rounds, per_client=per_client, accept_only=accept_only, console=console)
    gateway, postfix = columns["gateway"].summary(), columns["postfix"].summary()
    ratio = round(gateway["p99_ms"] / postfix["p99_ms"], 2)
    extra: dict[str, Any] = {}
    if accept_only:
        alone = columns["accept-only"].summary()
        extra["accept_only"] = {
            **alone,
            "p99_ratio": round(alone["p99_ms"] / postfix["p99_ms"], 2),
            "p50_ratio": round(alone["p50_ms"] / postfix["p50_ms"], 2),
            "what": "listener, intake, spool and receipt log alone (no pipeline); not the headline",
        }
    return {
        "id": "P3",
        "name": f"SMTP accept latency, {len(mail) / 1e6:.2f} MB mails, {CLIENTS} clients (gateway vs Postfix smtpd)",
        "measured": {
            "gateway": gateway,
            "postfix": postfix,
            "p99_ratio": ratio,
            "p50_ratio": round(gateway["p50_ms"] / postfix["p50_ms"], 2),
            **extra,
        },
        "baseline": {"postfix": postfix},
        "ratio": ratio,
        "target": f"p99 within {TARGET_RATIO:g}x of Postfix",
        "met": ratio <= TARGET_RATIO,
        "notes": (
            "end of DATA to 250, durable on both sides; interleaved rounds, each started once the gateway's "
            "pipeline was idle; Postfix holds every mail"
        ),
        "mail_bytes": len(mail),
        "clients": CLIENTS,
        "rounds": rounds,
        "mails_per_client_per_round": per_client,
        "load_average": {"before": load_before, "after": load_average()},
    }


def render(result: dict[str, Any]) -> Table:
    """The rich table of the results."""
    measured = result["measured"]
    table = Table(title=f"P3: {result['name']} (target: {result['target']})")
    for heading in ("server", "mails", "p50 ms", "p99 ms", "max ms"):
        table.add_column(heading, justify="left" if heading == "server" else "right")
    for name in ("gateway", "postfix"):
        row = measured[name]
        table.add_row(name, str(row["mails"]), f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}", f"{row['max_ms']:.1f}")
    table.add_row("gateway / postfix", "", f"{measured['p50_ratio']:.2f}", f"{measured['p99_ratio']:.2f}", "")
    alone = measured.get("accept_only")
    if alone is not None:
        table.add_row(
            "accept only (no pipeline)",
            str(alone["mails"]),
            f"{alone['p50_ms']:.1f}",
            f"{alone['p99_ms']:.1f}",
            f"{alone['max_ms']:.1f}",
        )
        table.add_row("accept only / postfix", "", f"{alone['p50_ratio']:.2f}", f"{alone['p99_ratio']:.2f}", "")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.smtp_bench``: run P3, print the table, write the JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.smtp_bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 mails per client (a smoke run)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per server (default 4)")
    parser.add_argument("--mails", type=int, default=None, help="mails per client per round (default 10)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory of the JSON results")
    parser.add_argument(
        "--accept-only", action="store_true", help="also measure the accept path alone (no pipeline behind it)"
    )
    parser.add_argument("--accept-only-server", type=Path, metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.accept_only_server is not None:  # the child process of the accept-only column
        config = args.accept_only_server.resolve()
        configure_logging(level="INFO")  # as gateway serve logs
        asyncio.run(serve_accept_only(load_settings(config), config.parent))
        return 0
    console = Console()
    result = run_p3(
        args.quick, rounds=args.rounds, per_client=args.mails, accept_only=args.accept_only, console=console
    )
    console.print(render(result))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"smtp-{stamp}.json"
    out.write_text(
        json.dumps(
            {**result, "machine": machine_info(("aiosmtpd", "SQLAlchemy", "aiosqlite"))}, ensure_ascii=False, indent=2
        )
        + "\n",
        encoding="utf-8",
    )
    shown = out.relative_to(HERE.parent) if out.is_relative_to(HERE.parent) else out
    console.print(
        f"P3 {'met' if result['met'] else 'NOT met'} "
        f"(p99 ratio {result['measured']['p99_ratio']:.2f}); results in {shown}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
