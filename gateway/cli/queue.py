"""``gateway queue``: what waits for an admin, and the admin's two actions (``retry``, ``release``).

``list`` shows held and deferred work items (why, how often tried, when next); ``retry`` puts
items back to ``incoming`` for the running gateway (its workers look every 2 s); ``release``
delivers held inbound mail to the DMS on the admin's responsibility, marked
``X-Gateway-Verdict: released-by-admin``. Both actions are journaled with the reason and the
operating-system user who ran them. Times are Vietnam time, ISO 8601 ``+07:00``.

Exit status: 0 done; 1 an item could not be handled (each one is named; the others are still
handled); 2 usage or configuration error; 3 the database is unavailable now.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.console import Group
from rich.table import Table
from rich.text import Text

from gateway.app import open_sealing, run
from gateway.app.context import pipeline_context
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, find_config, load_settings
from gateway.cli.db import open_store, store_url
from gateway.cli.output import console, err_console, print_json, shown_time
from gateway.clock import SystemClock
from gateway.errors import ConfigError, GatewayError, TransientError
from gateway.pipeline.admin import release, retry
from gateway.settings import Settings
from gateway.store import KINDS, STATES, MessageView, Spool, Store

__all__ = ["admin_reason", "queue_app"]

queue_app = typer.Typer(help="Held and deferred work items: list them, retry them, release held mail to the DMS.")
app.add_typer(queue_app, name="queue")

_WAITING = ("hold", "deferred")
_REASON_CHARS = 1000
_ERROR_CHARS = 80

IdsArgument = Annotated[
    list[int], typer.Argument(metavar="ID", help="Work item ids (see `gateway queue list`).", min=1)
]


def admin_reason(text: str | None, *, default: str | None = None) -> str:
    """The reason as journaled: the admin's words and who ran the command.

    Args:
        text: what the admin typed (``--reason``).
        default: used when ``text`` is empty (``None``: a reason is required).

    Returns:
        ``"<text> (by <OS user>)"``.

    Raises:
        ConfigError: no reason where one is required, or one longer than 1000 characters.
    """
    words = " ".join((text or "").split()) or default
    if not words:
        raise ConfigError(
            "--reason is required and may not be blank", hint="say why, e.g. --reason 'OCSP checked by hand'"
        )
    if len(words) > _REASON_CHARS:
        raise ConfigError(f"--reason is longer than {_REASON_CHARS} characters")
    return f"{words} (by {_who()})"


def _who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


# --------------------------------------------------------------------------- list


async def _waiting(url: str, states: tuple[str | None, ...], kind: str | None, limit: int) -> list[MessageView]:
    store = await open_store(url)
    try:
        found = [v for state in states for v in await store.list(state=state, kind=kind, limit=limit)]
    finally:
        await store.close()
    newest = sorted(found, key=lambda v: v.id, reverse=True)[:limit]
    return sorted(newest, key=lambda v: v.id)  # oldest first: the longest waiting on top


def _clip(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _as_json(v: MessageView) -> dict[str, Any]:
    return {
        "id": v.id,
        "kind": v.kind,
        "direction": v.direction,
        "state": v.state,
        "received_at": shown_time(v.received_at),
        "document_id": v.document_id,
        "code": v.code,
        "subject": v.subject,
        "from_organ": v.from_organ,
        "mail_from": v.mail_from,
        "recipient": v.recipient,
        "verdict": v.verdict,
        "attempts": v.attempts,
        "next_attempt_at": shown_time(v.next_attempt_at),
        "last_error": v.last_error,
        "state_changed_at": shown_time(v.state_changed_at),
        "parent_id": v.parent_id,
    }


_HEADINGS = (
    "id",
    "kind",
    "state",
    "received (+07:00)",
    "document / subject",
    "from",
    "attempts",
    "next attempt (+07:00)",
    "last error / hold reason",
)
_WRAPPING = frozenset({"document / subject", "from", "last error / hold reason"})
"""The columns that wrap when the console is narrow; the others (ids, kinds, states, counts and
times) are never cut: a clipped ``submis…`` or ``2026-11-22T01:14:59+…`` would mislead an admin."""
_WRAP_WIDTH = 12
"""The narrowest a wrapping column may get before the list is shown one block per item instead."""


def _cells(v: MessageView) -> tuple[str, ...]:
    """One item's values, in ``_HEADINGS`` order."""
    return (
        str(v.id),
        v.kind,
        v.state,
        shown_time(v.received_at) or "",
        _clip(v.document_id or v.subject, 60),
        v.from_organ or v.mail_from or "<>",
        str(v.attempts),
        (shown_time(v.next_attempt_at) or "") if v.state == "deferred" else "",
        _clip(v.last_error, _ERROR_CHARS),
    )


def _fits(rows: list[tuple[str, ...]], width: int) -> bool:
    """Whether a table of ``rows`` fits ``width`` with every fixed column whole."""
    needed = 2 * (len(_HEADINGS) - 1)  # one space either side of each inner column edge
    for index, heading in enumerate(_HEADINGS):
        widest = max(cell_len(heading), *(cell_len(row[index]) for row in rows))
        needed += min(widest, _WRAP_WIDTH) if heading in _WRAPPING else widest
    return needed <= width


def _table(rows: list[tuple[str, ...]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for index, heading in enumerate(_HEADINGS):
        if heading in _WRAPPING:
            table.add_column(heading, overflow="fold", min_width=min(cell_len(heading), _WRAP_WIDTH))
        else:
            table.add_column(heading, no_wrap=True, min_width=max(cell_len(row[index]) for row in rows))
    for row in rows:
        table.add_row(*(Text(c) for c in row))  # mail-borne text is never rich markup
    return table


def _blocks(rows: list[tuple[str, ...]]) -> Group:
    """One block per item, for a console too narrow for the table: nothing is cut, long text wraps."""
    parts: list[Text | Table] = []
    for number, row in enumerate(rows):
        parts.append(
            Text(("\n" if number else "") + f"{row[0]}  {row[1]}  {row[2]}  received {row[3]}  attempts {row[6]}")
        )
        details = Table.grid(padding=(0, 1), pad_edge=False)
        details.add_column(no_wrap=True, min_width=len("  next attempt:"))  # the same indent in every block
        details.add_column(overflow="fold")
        for label, value in (("next attempt", row[7]), ("document", row[4]), ("from", row[5]), ("last error", row[8])):
            if value:
                details.add_row(Text(f"  {label}:"), Text(value))
        parts.append(details)
    return Group(*parts)


def _listing(views: list[MessageView], width: int) -> Table | Group:
    """The items as a table when it fits ``width`` columns, else one block per item."""
    rows = [_cells(v) for v in views]
    return _table(rows) if _fits(rows, width) else _blocks(rows)


@queue_app.command("list")
def list_command(
    state: Annotated[
        str | None,
        typer.Option(
            "--state", metavar="STATE", help="hold, deferred, or all (every state); default: hold and deferred."
        ),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", metavar="KIND", help=f"Only this kind ({', '.join(KINDS)}).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, help="At most this many (the newest).")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array (times +07:00).")] = False,
    config: ConfigOption = None,
) -> None:
    """List work items waiting for an admin (held) or for a retry (deferred), oldest first."""
    states: tuple[str | None, ...]
    if state is None:
        states = _WAITING
    elif state == "all":
        states = (None,)
    elif state in STATES:
        states = (state,)
    else:
        raise ConfigError(
            f"--state {state!r} is not a state", hint=f"hold, deferred, all, or one of {', '.join(STATES)}"
        )
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"--kind {kind!r} is not a kind of work item", hint=f"one of {', '.join(KINDS)}")
    views = run(_waiting(store_url(config), states, kind, limit))
    if as_json:
        print_json([_as_json(v) for v in views])
        return
    if not views:
        err_console.print("no matching work items" if state is not None else "nothing held or deferred")
        return
    console.print(_listing(views, console.width))
    held = sum(v.state == "hold" for v in views)
    deferred = sum(v.state == "deferred" for v in views)
    err_console.print(f"{len(views)} item(s): {held} held, {deferred} deferred")


# --------------------------------------------------------------------------- retry and release


Action = Callable[[int], Awaitable[str]]


async def _each(ids: list[int], action: Action) -> list[int]:
    """Run ``action`` on every id; an item that cannot be handled is named and skipped.

    Database trouble (``TransientError``) and configuration errors stop the whole command.
    """
    failed = []
    for item_id in dict.fromkeys(ids):  # each id once, in the order given
        try:
            console.print(await action(item_id), markup=False)
        except (TransientError, ConfigError):
            raise
        except GatewayError as exc:
            err_console.print(f"gateway: {exc}", markup=False)
            failed.append(item_id)
    return failed


async def _retry_all(url: str, ids: list[int], reason: str, *, force: bool) -> list[int]:
    store = await open_store(url)
    clock = SystemClock()

    async def one(item_id: int) -> str:
        before = await store.get(item_id)
        was = "" if before is None else f"{before.kind}, was {before.state}"
        await retry(store, item_id, reason=reason, now=clock.now(), force=force)
        return f"{item_id}: back to incoming ({was}); the running gateway takes it within seconds"

    try:
        return await _each(ids, one)
    finally:
        await store.close()


@queue_app.command("retry")
def retry_command(
    ids: IdsArgument,
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why (journaled with your user name).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also retry a send the relay may already have (check its log first).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Put held or deferred items back to incoming: the running gateway processes them again.

    An inbound mail whose verdict is recorded is delivered, not judged again; one whose verdict
    was deferred is judged once more (and held again if it still cannot be decided). A send held
    after the relay may have taken it (e.g. the relay said 250 but the store could not record it)
    is refused without --force: a retry could deliver the document twice.
    """
    journaled = admin_reason(reason, default="retry requested")
    failed = run(_retry_all(store_url(config), ids, journaled, force=force))
    if failed:
        raise typer.Exit(1)


async def _release_all(settings: Settings, config_dir: Path, url: str, ids: list[int], reason: str) -> list[int]:
    clock = SystemClock()
    store: Store = await open_store(url)
    try:
        async with open_sealing(settings, clock=clock) as sealing:
            ctx = pipeline_context(
                settings,
                config_dir=config_dir,
                store=store,
                spool=Spool(settings.store.spool),
                sealing=sealing,
                clock=clock,
            )

            async def one(item_id: int) -> str:
                done = await release(item_id, ctx, reason=reason)
                notices = f"; {done.notices} status 01 notice(s) to the sender" if done.notices else ""
                return f"{item_id}: released to the DMS as {done.key}{notices}"

            return await _each(ids, one)
    finally:
        await store.close()


@queue_app.command("release")
def release_command(
    ids: IdsArgument,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why you take responsibility for it (required; journaled with your user name).",
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Deliver held inbound mail to the DMS unverified, on your responsibility.

    The original mail goes to the DMS unaltered, with X-Gateway-Verdict: released-by-admin; a
    document that never had its status 01 (arrived) gets one. A refused mail is never released.
    """
    journaled = admin_reason(reason)
    path = find_config(config)
    if path is None:
        raise ConfigError(
            "gateway queue release needs the gateway's configuration file (the DMS target, the key)",
            hint="pass --config gateway.toml or set GATEWAY_CONFIG",
        )
    settings = load_settings(path)
    failed = run(_release_all(settings, path.resolve().parent, store_url(path), ids, journaled))
    if failed:
        raise typer.Exit(1)
