"""``gateway db upgrade``: bring the receipt log's schema to the version this gateway needs.

``gateway serve`` upgrades at start as well; the command exists for deployments that migrate
as a separate step (before switching binaries, or with the service stopped).
"""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy.engine import make_url

from gateway.app import run
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, find_config, load_settings
from gateway.cli.output import console
from gateway.clock import SystemClock
from gateway.store import Store, resolve_url
from gateway.store.db import create_engine, prepare_sqlite_file
from gateway.store.migrate import current_revision, upgrade

__all__ = ["db_app", "open_store", "spool_hint", "store_url"]

db_app = typer.Typer(help="The receipt log's database: schema migrations.")
app.add_typer(db_app, name="db")


def store_url(config: Path | None) -> str:
    """``[store] url`` with a relative SQLite path resolved against the configuration file's directory.

    Raises:
        ConfigError: the configuration cannot be read.
    """
    settings = load_settings(config)
    path = find_config(config)
    base = path.resolve().parent if path is not None else Path.cwd()
    return resolve_url(settings.store.url, base)


def spool_hint(config: Path | None) -> str:
    """What to check when the spool lacks a mail the receipt log names: which ``[store] spool`` was read.

    A read-only command given another configuration than the running gateway's (or none) reads
    another spool; the hint names the file whose setting was used.
    """
    path = find_config(config)
    named = f"[store] spool in {path}" if path is not None else "the built-in default [store] spool (no --config)"
    return (
        f"is {named} the spool of the gateway that recorded it? "
        "pass the configuration the gateway runs with (--config or GATEWAY_CONFIG)"
    )


async def open_store(url: str) -> Store:
    """Open the store for a read-only operator command (no migration: evidence is not touched).

    Raises:
        ConfigError: no database there, or one not at the current schema.
    """
    return await Store.open(url, clock=SystemClock(), migrate=False)


async def _upgrade(url: str) -> tuple[str | None, str | None]:
    prepare_sqlite_file(url, create=True)
    engine = create_engine(url)
    try:
        before = await current_revision(engine)
        after = await upgrade(engine)
    finally:
        await engine.dispose()
    return before, after


@db_app.command("upgrade")
def upgrade_command(config: ConfigOption = None) -> None:
    """Apply the schema migrations up to the newest (creates the database when missing)."""
    url = store_url(config)
    before, after = run(_upgrade(url))
    shown = make_url(url).render_as_string(hide_password=True)
    if before == after:
        console.print(f"{shown}: already at revision {after}")
    else:
        console.print(f"{shown}: upgraded from {before or 'empty'} to revision {after}")
