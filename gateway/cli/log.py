"""``gateway log``: the receipt log for operators and archivists.

``verify-chain`` checks the hash chain, ``list`` lists work items, ``search`` finds documents
(dates, sender, recipient, number/notation, verdict, direction, words) and ``show`` prints one
document's whole record: every time in order, the verdict with each finding in Vietnamese and
English, the policy hash, the journal chain positions.

Every command only reads: none migrates or writes the database (it is evidence). Times are
shown in Vietnam time, ISO 8601 with ``+07:00`` (HOUSE.md rule 12).

Exit status: 0 fine (a search that finds nothing included); 1 the chain is broken (the first
broken row is named), or ``show`` was given an id that names no work item; 2 usage or
configuration error (a bad option is named); 3 the database is unavailable now.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from gateway.app import run
from gateway.archive.record import DocumentRecord, load_record, message_json
from gateway.archive.search import FilterError, SearchFilter, SearchPage, build_filter, parse_when, search
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.db import open_store, store_url
from gateway.cli.output import console, err_console, print_json, shown_time
from gateway.clock import SystemClock
from gateway.errors import ConfigError, GatewayError
from gateway.store import STATES, ChainCheck, MessageView, NotFound, Spool

__all__ = ["log_app", "parse_since"]

log_app = typer.Typer(help="The receipt log: verify its hash chain, list, search and show received and sent mail.")
app.add_typer(log_app, name="log")


def parse_since(value: str, now: datetime, *, option: str = "--since") -> datetime:
    """Read ``--since``: an age (``30d``, ``12h``, ``90m``, ``2w``), a date, or an ISO 8601 time.

    The forms are ``gateway.archive.search.parse_when``'s: a date means its midnight in Vietnam;
    a time without an offset is Vietnam time too (what an operator in Vietnam means). Returns
    aware UTC.

    Raises:
        ConfigError: none of those forms (naming ``option``).
    """
    try:
        return parse_when(value, now)
    except ValueError:
        raise ConfigError(
            f"{option} {value!r} is not an age, a date or an ISO 8601 time",
            hint="e.g. 30d, 12h, 2025-03-14 or 2025-03-14T09:00:00+07:00",
        ) from None


async def _verify(url: str) -> ChainCheck:
    store = await open_store(url)
    try:
        return await store.verify_chain()
    finally:
        await store.close()


@log_app.command("verify-chain")
def verify_chain_command(config: ConfigOption = None) -> None:
    """Recompute every journal hash and replay the journal against every work item.

    Exit 1 naming the first broken journal row (or work item) if anything does not verify.
    """
    check = run(_verify(store_url(config)))
    if check.ok:
        console.print(f"journal intact: {check.count} rows verified, {check.messages} work items match it")
        return
    where = (
        f"journal BROKEN at seq {check.first_broken_seq}"
        if check.first_broken_seq is not None
        else f"receipt log BROKEN at message {check.first_broken_message}"
    )
    err_console.print(
        f"{where}: {check.detail}\n{check.broken} problem(s) in {check.count} journal rows, {check.messages} work items"
    )
    for problem in check.problems[1:]:
        err_console.print(f"  also {problem}")
    raise typer.Exit(1)


async def _list(url: str, **filters: Any) -> list[MessageView]:
    store = await open_store(url)
    try:
        return await store.list(**filters)
    finally:
        await store.close()


def _as_json(view: MessageView) -> dict[str, Any]:
    out = asdict(view)
    out.pop("report")  # whole verification reports belong to `gateway queue show`, not a listing
    for name, value in out.items():
        if isinstance(value, datetime):
            out[name] = shown_time(value)
        elif isinstance(value, tuple):
            out[name] = list(value)
    return out


def _table(views: list[MessageView]) -> Table:
    table = Table(box=None, pad_edge=False)
    for heading in ("id", "kind", "dir", "state", "received (+07:00)", "from", "to", "document", "verdict", "sha256"):
        table.add_column(heading, no_wrap=True)
    for v in views:
        to = v.recipient or ", ".join(v.rcpt_to)
        table.add_row(
            str(v.id),
            v.kind,
            v.direction,
            v.state,
            shown_time(v.received_at) or "",
            v.mail_from or "<>",
            to,
            v.document_id or "",
            v.verdict or "",
            v.sha256[:12],
        )
    return table


@log_app.command("list")
def list_command(
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="WHEN", help="Received since: 30d, 12h, a date (2025-03-14) or ISO 8601."),
    ] = None,
    state: Annotated[
        str | None, typer.Option("--state", metavar="STATE", help=f"Only this state ({', '.join(STATES)}).")
    ] = None,
    direction: Annotated[str | None, typer.Option("--direction", metavar="in|out", help="Only 'in' or 'out'.")] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, help="At most this many (the newest).")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array (times +07:00; reports left out).")] = False,
    config: ConfigOption = None,
) -> None:
    """List work items, oldest first among the newest --limit, with times in +07:00."""
    if state is not None and state not in STATES:
        raise ConfigError(f"--state {state!r} is not a state", hint=f"one of {', '.join(STATES)}")
    if direction is not None and direction not in ("in", "out"):
        raise ConfigError(f"--direction {direction!r} is not 'in' or 'out'")
    after = None if since is None else parse_since(since, SystemClock().now())
    views = run(_list(store_url(config), since=after, state=state, direction=direction, limit=limit))
    views.reverse()  # the store gives the newest first; people read a log top to bottom
    if as_json:
        print_json([_as_json(v) for v in views])
    elif views:
        console.print(_table(views))
    else:
        err_console.print("no matching work items")


# ---------------------------------------------------------------------------- search and show

_VERDICT_STYLE = {"accepted": "green", "refused": "red", "deferred": "yellow"}
_CSV_COLUMNS = (
    "id", "received_at", "direction", "kind", "state", "from_organ", "to_organs", "code", "document_id",
    "subject", "verdict", "finding_codes",
)  # fmt: skip


async def _search(url: str, flt: SearchFilter) -> SearchPage:
    store = await open_store(url)
    try:
        return await search(store, flt)
    finally:
        await store.close()


def _search_table(page: SearchPage) -> Table:
    table = Table(box=None, pad_edge=False)
    for heading in ("id", "received (+07:00)", "dir", "from", "to", "number/notation", "subject", "verdict", "state"):
        table.add_column(heading, no_wrap=heading != "subject", overflow="fold")
    for v in page.items:
        style = _VERDICT_STYLE.get(v.verdict or "")
        table.add_row(
            str(v.id),
            shown_time(v.received_at) or "",
            v.direction,
            v.from_organ or "",
            ", ".join(v.to_organs or ()) or v.recipient or "",
            v.code or "",
            v.subject or "",
            Text(v.verdict or "", style=style or ""),
            v.state,
        )
    return table


def _csv(page: SearchPage) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for v in page.items:
        row = message_json(v)
        row["to_organs"] = " ".join(row["to_organs"] or ())
        row["finding_codes"] = " ".join(row["finding_codes"])
        writer.writerow(row)
    return out.getvalue()


def _option_error(exc: FilterError) -> ConfigError:
    return ConfigError(f"--{exc.field.replace('_', '-')}: {exc}", hint="see `gateway log search --help`")


@log_app.command("search")
def search_command(
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="DATE", help="Received from: a date (2025-03-14, Vietnam time), ISO 8601 or 30d."
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="DATE", help="Received before the end of this date (or before this time)."),
    ] = None,
    sender: Annotated[
        str | None, typer.Option("--sender", metavar="ORGANID", help="The sending organ's OrganId.")
    ] = None,
    recipient: Annotated[
        str | None, typer.Option("--recipient", metavar="ORGANID", help="A recipient organ's OrganId.")
    ] = None,
    code: Annotated[
        str | None, typer.Option("--code", metavar="NUMBER/NOTATION", help="The number/notation, exactly: 123/UBND-VP.")
    ] = None,
    verdict: Annotated[
        str | None, typer.Option("--verdict", metavar="VERDICT", help="accepted, refused or deferred.")
    ] = None,
    direction: Annotated[
        str | None, typer.Option("--direction", metavar="in|out", help="in (received) or out (sent).")
    ] = None,
    text: Annotated[
        str | None,
        typer.Option("--text", metavar="WORDS", help="Words that must all occur (subject, number, ids, findings)."),
    ] = None,
    limit: Annotated[
        str | None, typer.Option("--limit", metavar="N", help="At most this many, 1..500 (default 50).")
    ] = None,
    before_id: Annotated[
        str | None,
        typer.Option("--before-id", metavar="ID", help="The next page: the id printed after the previous one."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="table|csv|json", help="table, csv or json.")] = "table",
    config: ConfigOption = None,
) -> None:
    """Find documents in the receipt log, newest first, with times in +07:00."""
    if fmt not in ("table", "csv", "json"):
        raise ConfigError(f"--format {fmt!r} is not table, csv or json")
    try:
        flt = build_filter(
            from_=from_, to=to, sender=sender, recipient=recipient, code=code, verdict=verdict,
            direction=direction, text=text, limit=limit, before_id=before_id, now=SystemClock().now(),
        )  # fmt: skip
        page = run(_search(store_url(config), flt))
    except FilterError as exc:
        raise _option_error(exc) from None
    if fmt == "json":
        print_json({"items": [message_json(v) for v in page.items], "next_before_id": page.next_before_id})
    elif fmt == "csv":
        sys.stdout.write(_csv(page))
    elif page.items:
        console.print(_search_table(page))
        more = f"; more: --before-id {page.next_before_id}" if page.next_before_id is not None else ""
        err_console.print(f"{len(page.items)} document(s), newest first ({flt.describe()}){more}")
    else:
        err_console.print(f"no documents match ({flt.describe()})")


async def _record(url: str, id: int, spool: Spool) -> DocumentRecord:
    store = await open_store(url)
    try:
        return await load_record(store, id, spool=spool)
    finally:
        await store.close()


def _print_record(record: DocumentRecord) -> None:
    m, data = record.message, record.to_json()
    console.print(f"[bold]work item {m.id}[/bold]: {m.kind} ({m.direction}), {m.state}")
    for label, value in (
        ("document", m.document_id), ("number/notation", m.code), ("subject", m.subject), ("from", m.from_organ),
        ("to", ", ".join(m.to_organs or ()) or m.recipient), ("sha256", m.sha256),
        ("parent", None if record.parent is None else f"{record.parent.id} ({record.parent.kind})"),
        ("children", ", ".join(f"{c.id} ({c.kind} {c.state})" for c in record.children) or None),
    ):  # fmt: skip
        if value:
            console.print(f"  {label:<16}{value}", markup=False)
    verdict = data["verdict"]
    if verdict is not None:
        style = _VERDICT_STYLE.get(verdict["verdict"], "")
        console.print(f"\n[bold]verdict[/bold] [{style}]{verdict['verdict']}[/{style}] ({verdict['indication']})")
        policy = verdict["policy"]
        console.print(f"  policy {policy.get('name') or '?'} {policy.get('version') or ''}, sha256 {policy['sha256']}")
        for f in verdict["findings"]:
            console.print(f"  - {f['code']} ({f['action']}) {f['where'] or ''}", markup=False)
            console.print(f"      vi: {f['message_vi']}\n      en: {f['message_en']}", markup=False)
    console.print("\n[bold]timeline[/bold] (+07:00; source: system = our legal time)")
    timeline = Table(box=None, pad_edge=False)
    for heading in ("time", "what", "source", "Vietnamese", "English", "detail"):
        timeline.add_column(heading, no_wrap=heading == "time")
    for e in record.timeline():
        timeline.add_row(shown_time(e.at), e.what, e.source, e.label_vi, e.label_en, e.detail or "")
    console.print(timeline)
    console.print("\n[bold]journal[/bold] (hash chain positions)")
    for j in record.journal:
        console.print(f"  seq {j.seq:<6} {shown_time(j.at)} {j.event:<10} prev {j.prev_hash[:16]}… hash {j.hash[:16]}…")


@log_app.command("show")
def show_command(
    id: Annotated[int, typer.Argument(metavar="ID", help="The work item's id (from `gateway log search`).", min=1)],
    as_json: Annotated[bool, typer.Option("--json", help="The whole record as JSON (times +07:00).")] = False,
    config: ConfigOption = None,
) -> None:
    """One document's whole record: every time, the verdict and findings, the policy hash, the chain."""
    try:
        record = run(_record(store_url(config), id, Spool(load_settings(config).store.spool)))
    except NotFound:
        raise GatewayError(
            f"no work item {id} in the receipt log (gateway log search or gateway log list shows the ids)"
        ) from None
    if as_json:
        print_json(record.to_json())
    else:
        _print_record(record)
