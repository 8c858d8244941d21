"""``gateway rules``: check a policy file, show the effective policy and its hash, replay a proposed one.

``gateway rules replay --policy NEW.toml [--since 30d]`` re-judges the stored originals under the
proposed policy (``gateway.archive.replay``) and prints the packages that would flip, grouped by
sender and by finding code, with totals. It only reads the receipt log and the spool.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gateway.app import open_verifier, policy_from_settings, run
from gateway.archive.replay import MISSING_ORIGINAL, ReplayResult, replay
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.db import open_store, spool_hint, store_url
from gateway.cli.log import parse_since
from gateway.cli.output import console, err_console, print_json
from gateway.clock import SystemClock, iso_vn
from gateway.settings import Settings
from gateway.store import Spool
from gateway.verify.policy import Policy, load_policy

__all__ = ["JsonOption", "PolicyOption", "SinceOption", "progress_bar", "rules_app"]

rules_app = typer.Typer(
    help="Check, show and replay the verification policy: which finding refuses, defers or warns, and what a "
    "proposed policy would change."
)
app.add_typer(rules_app, name="rules")

PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="Policy file to use (default: [verify] policy, else the built-in strict default).",
        dir_okay=False,
    ),
]


@rules_app.command("check")
def check_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The policy file to check.", dir_okay=False)],
) -> None:
    """Validate a policy file: exit 0 and print its hash, or exit 2 naming the line and the fix."""
    policy = load_policy(file)
    console.print(f"{file}: valid — policy {policy.name!r} version {policy.version!r}, sha256 {policy.sha256}")


@rules_app.command("show")
def show_command(policy: PolicyOption = None, config: ConfigOption = None) -> None:
    """Print the effective policy in canonical form (stdout) and its source and hash (stderr).

    `gateway rules show | sha256sum` reproduces the hash every verdict records.
    """
    settings = load_settings(config)
    effective = policy_from_settings(settings, policy)
    origin = str(policy or settings.verify.policy or "built-in default")
    # The canonical text alone goes to stdout, so `gateway rules show | sha256sum` gives the hash.
    print(effective.canonical, end="")
    err_console.print(f"source: {origin}\nsha256: {effective.sha256}")


SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since", metavar="WHEN", help="Only packages received since: 30d, 12h, a date (2025-03-14) or ISO 8601."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object on stdout (progress goes to stderr).")]


def progress_bar(description: str) -> Progress:
    """A rich progress bar on stderr (stdout stays clean for tables and ``--json``)."""
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


async def _replay(settings: Settings, config: Path | None, policy: Policy, since: datetime | None) -> ReplayResult:
    store = await open_store(store_url(config))
    try:
        async with open_verifier(settings, policy=policy) as verifier:
            with progress_bar("re-judging") as bar:
                task = bar.add_task("replay", total=None)
                return await replay(
                    store,
                    Spool(settings.store.spool),
                    verifier,
                    since=since,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
    finally:
        await store.close()


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{direction}: {n}" for direction, n in counts.items())


def _flips_table(result: ReplayResult) -> Table:
    table = Table(title="Packages that would flip", box=None, pad_edge=False, title_justify="left")
    for heading in ("id", "received (+07:00)", "sender", "document", "recorded", "proposed", "deciding codes"):
        table.add_column(heading, no_wrap=heading != "deciding codes")
    for f in result.flips:
        table.add_row(
            str(f.id), iso_vn(f.received_at), f.sender or "", f.document_id or "", f.old, f.new, ", ".join(f.codes)
        )
    return table


def _group_table(title: str, heading: str, groups: Mapping[str, Mapping[str, int]]) -> Table:
    table = Table(title=title, box=None, pad_edge=False, title_justify="left")
    table.add_column(heading, no_wrap=True)
    table.add_column("flips", justify="right")
    table.add_column("by direction")
    for key, counts in groups.items():
        table.add_row(key, str(sum(counts.values())), _counts(counts))
    return table


def _totals_table(result: ReplayResult) -> Table:
    table = Table(title="Totals", box=None, pad_edge=False, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("judged again", str(result.judged))
    table.add_row("unchanged", str(result.unchanged))
    table.add_row("flipped", str(len(result.flips)))
    for direction, n in result.flipped.items():
        table.add_row(f"  {direction}", str(n))
    table.add_row("skipped", str(len(result.skipped)))
    for reason, n in result.skipped_by_reason.items():
        table.add_row(f"  {reason}", str(n))
    return table


def _show(result: ReplayResult, origin: Path, config: Path | None) -> None:
    window = "everything received" if result.since is None else f"received since {iso_vn(result.since)}"
    console.print(f"proposed policy {origin} (sha256 {result.policy_sha256}), {window}; nothing was changed")
    if result.flips:
        console.print(_flips_table(result))
        console.print(_group_table("By sender", "sender", result.by_sender))
        console.print(_group_table("By finding code", "code", result.by_code))
    else:
        console.print("no package would flip")
    console.print(_totals_table(result))
    if any(s.reason.startswith(MISSING_ORIGINAL) for s in result.skipped):
        err_console.print(f"hint: {spool_hint(config)}", markup=False)


@rules_app.command("replay")
def replay_command(
    policy: Annotated[
        Path, typer.Option("--policy", help="The proposed policy file (like config/policy.toml).", dir_okay=False)
    ],
    since: SinceOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Re-judge the stored originals under a proposed policy; show which packages would flip.

    Each package is judged as of its recorded receive time, from the original mail in the spool
    (revocation answers are fetched now, as of that time). Nothing is written: the receipt log
    is opened read-only.
    """
    settings = load_settings(config)
    proposed = load_policy(policy)
    after = None if since is None else parse_since(since, SystemClock().now())
    result = run(_replay(settings, config, proposed, after))
    if as_json:
        print_json(result.to_json())
    else:
        _show(result, policy, config)
