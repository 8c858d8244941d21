"""``gateway demo``: push three sample packages through a running gateway and show what became of them.

Run it in a second terminal while ``gateway serve`` runs (``make run`` starts one). It builds, with
the development PKI, a valid, a tampered and an unsigned package from a partner agency
(``gateway.devpki.demo``), sends each over SMTP to the gateway's ``[smtp] listen`` address as the
axis would, prints each SMTP reply, then reads the receipt log (read only, as ``gateway log``
does) until each item is decided, and prints one row per sample: its id, when the gateway received
it (Vietnam time), its state, its verdict, the finding codes and where it went (the DMS, or the
refusal sent back to the partner).

Exit status: 0 the valid sample was accepted and delivered and the two others refused; 1 anything
else, including no gateway listening; 2 usage or configuration error (no ``[dev] pki``); 3 the
development PKI's OCSP or TSA did not answer while the samples were signed, or the receipt log's
database cannot be read now (a ``TransientError``: the same command may succeed later).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import aiosmtplib
import typer
from rich.console import Console
from rich.table import Table

from gateway.app import open_sealing, run
from gateway.archive.record import finding_codes
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, find_config, load_settings
from gateway.cli.db import open_store, store_url
from gateway.cli.output import console, err_console, host_port, print_json
from gateway.clock import SystemClock, iso_vn
from gateway.devpki.demo import PARTNER, Sample, make_samples, sample_mail
from gateway.devpki.pki import DevPKI
from gateway.errors import ConfigError, GatewayError
from gateway.settings import Settings
from gateway.smtpserver import parse_listen
from gateway.store import TERMINAL, MessageView, Store

__all__ = ["demo_command"]

NOT_RUNNING = "is `gateway serve` running? start it with make run"
"""The hint when nothing answers SMTP at the gateway's address."""

_POLL_SECONDS = 0.25
_PROBE_SECONDS = 5.0
_WAITING = frozenset({"deferred", "hold"})
"""Not terminal, but nothing more happens without time or an admin: the demo stops waiting."""
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104  a wildcard listen address, reached on loopback
_QUEUED = re.compile(r"queued as (\d+)")


@dataclass(frozen=True)
class _Sent:
    """One sample as the gateway answered it."""

    sample: Sample
    message_id: str
    code: int | None
    """The SMTP reply code (to DATA, or to the command that failed before it); None: no reply."""
    reply: str
    queued: bool
    """Whether the gateway recorded the mail (250 after DATA, or an inline 550 refusal)."""


@dataclass(frozen=True)
class _Outcome:
    """What the receipt log says about one sent sample."""

    sent: _Sent
    item: MessageView | None
    notices: tuple[MessageView, ...]


def _smtp_address(value: str, key: str) -> tuple[str, int]:
    host, port = parse_listen(value, key=key)
    if port == 0:
        raise ConfigError(
            f"{key} = {value!r} names no port to connect to",
            hint="pass --smtp HOST:PORT with the port `gateway serve` printed",
        )
    return _LOOPBACK.get(host, host), port


async def _probe(address: tuple[str, int]) -> None:
    """Fail fast, before anything is signed, when nothing listens at the gateway's address."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout=_PROBE_SECONDS)
    except (OSError, TimeoutError):
        raise GatewayError(f"nothing answers SMTP at {host_port(address)}: {NOT_RUNNING}") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _send(
    address: tuple[str, int], mail: bytes, *, mail_from: str, rcpt: str, reply_seconds: float
) -> tuple[int | None, str, bool]:
    """Send one mail; return ``(code, reply, queued)``; each SMTP reply may take ``reply_seconds``.

    Raises:
        GatewayError: the gateway cannot be reached (``NOT_RUNNING``).
    """
    host, port = address
    # Loopback to our own gateway: no STARTTLS (a development listener's certificate is not trusted).
    client = aiosmtplib.SMTP(hostname=host, port=port, timeout=reply_seconds, start_tls=False)
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError):
        raise GatewayError(f"cannot connect to SMTP at {host_port(address)}: {NOT_RUNNING}") from None
    data_sent = False
    try:
        await client.mail(mail_from)
        await client.rcpt(rcpt)
        data_sent = True
        response = await client.data(mail)
        return response.code, response.message, True
    except aiosmtplib.SMTPResponseException as exc:
        # 550 after DATA is an inline refusal: the mail is spooled and logged all the same.
        return exc.code, exc.message, data_sent and exc.code == 550
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
        return None, f"no answer: {exc}", False
    finally:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()


async def _find(store: Store, sent: _Sent) -> MessageView | None:
    """The inbound item of ``sent``: by the id in its 250 reply, else by its Message-ID (inline 550)."""
    queued = _QUEUED.search(sent.reply)
    if queued is not None:
        return await store.get(int(queued.group(1)))
    for item in await store.list(kind="inbound", limit=500):
        if item.message_id_header == sent.message_id:
            return item
    return None


def _settled(item: MessageView) -> bool:
    return item.state in TERMINAL[item.kind] or item.state in _WAITING


def _done(outcome: _Outcome) -> bool:
    if not outcome.sent.queued:
        return True
    item = outcome.item
    return item is not None and _settled(item) and all(_settled(n) for n in outcome.notices)


async def _watch(store: Store, sent: Sequence[_Sent], wait_seconds: float) -> list[_Outcome]:
    """Poll the receipt log until every queued sample and its notices are settled, or ``wait_seconds`` pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        outcomes = []
        for one in sent:
            item = await _find(store, one) if one.queued else None
            notices = () if item is None else tuple(await store.list(kind="notice", parent_id=item.id))
            outcomes.append(_Outcome(one, item, tuple(reversed(notices))))
        if all(_done(o) for o in outcomes) or loop.time() >= deadline:
            return outcomes
        await asyncio.sleep(_POLL_SECONDS)


def _as_expected(outcome: _Outcome) -> bool:
    item = outcome.item
    if item is None:
        return False
    if outcome.sent.sample.expected == "accepted":
        return (item.verdict, item.state) == ("accepted", "delivered")
    return (item.verdict, item.state) == ("refused", "refused")


def _went(outcome: _Outcome, settings: Settings) -> list[str]:
    item = outcome.item
    if item is None:
        return ["not in the receipt log yet" if outcome.sent.queued else "not queued"]
    if item.state == "delivered":
        places = [f"DMS {settings.dms.target}"]
    elif item.state == "deferred":
        until = "" if item.next_attempt_at is None else f" until {iso_vn(item.next_attempt_at)}"
        places = [f"deferred{until}: {item.last_error or ''}".rstrip(": ")]
    elif item.state == "hold":
        places = [f"held for an admin: {item.last_error or ''}".rstrip(": ")]
    elif item.state in ("incoming", "active"):
        places = ["not decided yet"]
    else:
        places = []
    if item.verdict == "accepted":
        notice = "status 01"
    elif item.package_kind == "edoc":
        notice = "refusal (status 02)"
    else:
        notice = "refusal notice"
    for n in outcome.notices:
        places.append(
            f"{notice} sent to {n.recipient}" if n.state == "sent" else f"{notice} to {n.recipient}: {n.state}"
        )
    return places


def _table(outcomes: Sequence[_Outcome], settings: Settings) -> Table:
    table = Table(box=None, pad_edge=False)
    for heading in ("id", "sample", "received (+07:00)", "state", "verdict"):
        table.add_column(heading, no_wrap=True)
    # One finding code, one destination per line.
    table.add_column("findings")
    table.add_column("where it went")
    for o in outcomes:
        item = o.item
        table.add_row(
            "-" if item is None else str(item.id),
            o.sent.sample.name,
            "" if item is None or item.received_at is None else iso_vn(item.received_at),
            "-" if item is None else item.state,
            "" if item is None else item.verdict or "",
            "\n".join(finding_codes(item)) or "-",
            "\n".join(_went(o, settings)),
        )
    return table


def _as_json(outcome: _Outcome, settings: Settings) -> dict[str, Any]:
    item = outcome.item
    sample = outcome.sent.sample
    return {
        "sample": sample.name,
        "expected": sample.expected,
        "as_expected": _as_expected(outcome),
        "document_id": sample.document_id,
        "message_id": outcome.sent.message_id,
        "smtp_reply": f"{outcome.sent.code} {outcome.sent.reply}".strip(),
        "id": None if item is None else item.id,
        "received_at": None if item is None or item.received_at is None else iso_vn(item.received_at),
        "state": None if item is None else item.state,
        "verdict": None if item is None else item.verdict,
        "findings": finding_codes(item),
        "went": _went(outcome, settings),
    }


def _our_mailbox(settings: Settings) -> str:
    if settings.smtp.local_recipients:
        return settings.smtp.local_recipients[0]  # the listener accepts exactly these
    return settings.identity.email or settings.axis.mail_from


async def _demo(
    settings: Settings,
    *,
    pki_dir: Path,
    address: tuple[str, int],
    url: str,
    wait_seconds: float,
    out: Console,
) -> list[_Outcome]:
    await _probe(address)
    to_organ = settings.identity.organ_ids[0]
    rcpt = _our_mailbox(settings)
    pki = DevPKI.load(pki_dir)
    clock = SystemClock()
    out.print(
        f"gateway demo: three sample packages from {PARTNER.organ_id} ({PARTNER.name}, {PARTNER.mail}) "
        f"to {to_organ} <{rcpt}>\n"
        f"  smtp         {host_port(address)}   the gateway's inbound listener (we play the axis)\n"
        f"  receipt log  {url}   (read only)\n"
        f"  DMS          {settings.dms.target}   accepted packages go here\n"
        f"  axis         {settings.axis.relay}   status 01 / refusals go back to the sender\n"
        f"  dev PKI      {pki_dir}   the person signs, TSA {pki.urls.tsa}"
    )
    store = await open_store(url)
    try:
        async with open_sealing(settings, clock=clock) as sealing:
            samples = await make_samples(
                pki,
                sealing.documents,
                sealing.key,
                to=to_organ,
                clock=clock,
                algorithm=settings.edxml.signature_algorithm,
            )
        smtp_timeout = max(30.0, settings.smtp.inline_verdict_seconds + 30.0)
        sent = []
        for sample in samples:
            mail, message_id = sample_mail(sample, to=rcpt, at=clock.now())
            code, reply, queued = await _send(
                address, mail, mail_from=PARTNER.mail, rcpt=rcpt, reply_seconds=smtp_timeout
            )
            sent.append(_Sent(sample, message_id, code, reply, queued))
            out.print(f"  {sample.name:<9} {'' if code is None else code} {reply}   ({sample.description})")
        out.print(f"waiting up to {wait_seconds:g} s for the verdicts ...")
        return await _watch(store, sent, wait_seconds)
    finally:
        await store.close()


@app.command("demo")
def demo_command(
    config: ConfigOption = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=1, help="Seconds to wait for the verdicts after sending."),
    ] = 120.0,
    smtp: Annotated[
        str | None,
        typer.Option("--smtp", metavar="HOST:PORT", help="The gateway's inbound SMTP (default: [smtp] listen)."),
    ] = None,
    pki: Annotated[
        Path | None,
        typer.Option(
            "--pki",
            file_okay=False,
            help="The development PKI bundle the gateway trusts (default: [dev] pki). Loaded, never served.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of the three rows on stdout.")] = False,
) -> None:
    """Send a valid, a tampered and an unsigned sample package to the running gateway and show the log rows.

    Exit status: 0 the valid one was accepted and delivered and the other two refused; 1 anything
    else, including no gateway answering SMTP; 2 usage or configuration error (no [dev] pki, no
    configuration); 3 the development PKI's OCSP or TSA (served by `gateway serve` with [dev] pki)
    did not answer while the samples were signed, or the receipt log cannot be read now: try again.
    """
    path = find_config(config)
    if path is None:
        raise ConfigError(
            "gateway demo needs the configuration of the running gateway",
            hint="pass --config var/gateway.toml (what make run uses) or set GATEWAY_CONFIG",
        )
    settings = load_settings(path)
    pki_dir = pki or settings.dev.pki
    if pki_dir is None:
        raise ConfigError(
            "gateway demo signs its samples with the development PKI, and [dev] pki is not set",
            path=path,
            hint='set [dev] pki = "pki" (a bundle written by gateway dev-pki DIR; make run does) or pass --pki DIR',
        )
    if not settings.identity.organ_ids:
        raise ConfigError("[identity] organ_ids is empty: the samples need an OrganId to be addressed to", path=path)
    address = (
        _smtp_address(smtp, "--smtp") if smtp is not None else _smtp_address(settings.smtp.listen, "[smtp] listen")
    )
    outcomes = run(
        _demo(
            settings,
            pki_dir=pki_dir,
            address=address,
            url=store_url(path),
            wait_seconds=timeout,
            out=err_console if as_json else console,
        )
    )
    if as_json:
        print_json([_as_json(o, settings) for o in outcomes])
    else:
        console.print(_table(outcomes, settings))
    if all(_as_expected(o) for o in outcomes):
        if not as_json:
            console.print("as expected: the valid package reached the DMS; the tampered and the unsigned were refused")
        return
    if not as_json:
        missed = ", ".join(o.sent.sample.name for o in outcomes if not _as_expected(o))
        console.print(f"NOT as expected: {missed} (see `gateway log list` and the gateway's log)")
    raise typer.Exit(1)
