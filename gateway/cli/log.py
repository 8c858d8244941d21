"""``gateway log``: the receipt log for operators (verify the hash chain, list work items).

Both commands only read: they never migrate or write the database (it is evidence). Times are
shown in Vietnam time, ISO 8601 with ``+07:00`` (HOUSE.md rule 12).

Exit status: 0 fine; 1 the chain is broken (the first broken row is named); 2 usage or
configuration error; 3 the database is unavailable now.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from gateway.app import run
from gateway.cli.app import app
from gateway.cli.config import ConfigOption
from gateway.cli.db import open_store, store_url
from gateway.cli.output import console, err_console, print_json, shown_time
from gateway.clock import VN_TZ, SystemClock, to_utc
from gateway.errors import ConfigError
from gateway.store import STATES, ChainCheck, MessageView

__all__ = ["log_app", "parse_since"]

log_app = typer.Typer(help="The receipt log: verify its hash chain, list received and sent mail.")
app.add_typer(log_app, name="log")

_AGO = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime) -> datetime:
    """Read ``--since``: an age (``30d``, ``12h``, ``90m``, ``2w``), a date, or an ISO 8601 time.

    A date means its midnight in Vietnam; a time without an offset is Vietnam time too (what an
    operator in Vietnam means). Returns aware UTC.

    Raises:
        ConfigError: none of those forms.
    """
    text = value.strip()
    ago = _AGO.fullmatch(text)
    if ago:
        return to_utc(now) - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        if len(text) == 10:
            return to_utc(datetime.combine(date.fromisoformat(text), time(), VN_TZ))
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since {value!r} is not an age, a date or an ISO 8601 time",
            hint="e.g. 30d, 12h, 2025-03-14 or 2025-03-14T09:00:00+07:00",
        ) from None
    return to_utc(moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ))


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
        str | None, typer.Option("--since", help="Received since: 30d, 12h, a date (2025-03-14) or ISO 8601.")
    ] = None,
    state: Annotated[str | None, typer.Option("--state", help=f"Only this state ({', '.join(STATES)}).")] = None,
    direction: Annotated[str | None, typer.Option("--direction", help="Only 'in' or 'out'.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (the newest).")] = 100,
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
