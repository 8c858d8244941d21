"""``gateway report partners``: per sending agency, what it sent and how it signs.

From the verdicts recorded in the receipt log (``gateway.archive.partners``; nothing is
re-verified and nothing is written): packages and verdicts, the refusal rate by finding code,
the signer certificates seen with their expiry (soonest first), and weak or legacy algorithm use.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from gateway.app import run
from gateway.archive.partners import UNKNOWN, PartnersReport, PartnerSummary, partner_report
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.db import open_store, store_url
from gateway.cli.log import parse_since
from gateway.cli.output import console, err_console, print_json
from gateway.cli.rules import JsonOption, SinceOption, progress_bar
from gateway.clock import SystemClock, iso_vn
from gateway.verify.directory import Directory, load_directory

__all__ = ["report_app"]

report_app = typer.Typer(help="Reports over the receipt log (read only).")
app.add_typer(report_app, name="report")


async def _report(config: Path | None, directory: Directory, since: datetime | None) -> PartnersReport:
    store = await open_store(store_url(config))
    try:
        with progress_bar("reading the receipt log") as bar:
            task = bar.add_task("partners", total=None)
            return await partner_report(
                store,
                since=since,
                directory=directory,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        await store.close()


def _count(n: int, noun: str) -> str:
    """``1 sender``, ``2 senders`` (the nouns here take a plain ``s``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _verdicts(p: PartnerSummary) -> str:
    return ", ".join(f"{verdict} {n}" for verdict, n in sorted(p.verdicts.items()))


def _overview(report: PartnersReport) -> Table:
    table = Table(title="Sending agencies", box=None, pad_edge=False, title_justify="left")
    for heading in ("OrganId", "name", "packages", "verdicts", "refusal rate by code", "weak algorithms"):
        table.add_column(heading, no_wrap=heading in ("OrganId", "packages"))
    for p in report.partners:
        rates = "\n".join(f"{code} {p.refusal_rate(code):.0%} ({n})" for code, n in p.refusals_by_code.items())
        weak = ", ".join(f"{code} {n}" for code, n in p.weak.items())
        table.add_row(p.organ_id, p.name or "", str(p.packages), _verdicts(p), rates or "-", weak or "none")
    return table


def _signers(report: PartnersReport) -> Table:
    table = Table(title="Signer certificates (soonest expiry first)", box=None, pad_edge=False, title_justify="left")
    for heading in ("OrganId", "expires (+07:00)", "role", "packages", "last seen", "sha256", "subject"):
        table.add_column(heading, no_wrap=heading != "subject")
    for organ_id, s in report.signers_by_expiry():
        table.add_row(
            organ_id,
            UNKNOWN if s.not_after is None else iso_vn(s.not_after),
            ", ".join(s.roles),
            str(s.packages),
            "" if s.last_seen is None else iso_vn(s.last_seen),
            (s.sha256 or "")[:16],
            s.subject,
        )
    return table


def _digests(report: PartnersReport) -> Table:
    table = Table(title="Digest algorithms of signatures", box=None, pad_edge=False, title_justify="left")
    table.add_column("OrganId", no_wrap=True)
    table.add_column("digests")
    for p in report.partners:
        table.add_row(p.organ_id, ", ".join(f"{name} {n}" for name, n in p.digest_algorithms.items()) or "-")
    return table


@report_app.command("partners")
def partners_command(since: SinceOption = None, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Per sending agency: packages, refusal rate by finding code, signer certificates and expiry, weak algorithms."""
    settings = load_settings(config)
    directory = Directory() if settings.verify.directory is None else load_directory(settings.verify.directory)
    after = None if since is None else parse_since(since, SystemClock().now())
    report = run(_report(config, directory, after))
    if as_json:
        print_json(report.to_json())
        return
    if not report.partners:
        err_console.print("no inbound packages in the window")
        return
    window = "everything received" if after is None else f"received since {iso_vn(after)}"
    packages, senders = sum(p.packages for p in report.partners), len(report.partners)
    console.print(f"{_count(packages, 'package')} from {_count(senders, 'sender')}, {window}")
    console.print(_overview(report))
    console.print(_signers(report))
    console.print(_digests(report))
