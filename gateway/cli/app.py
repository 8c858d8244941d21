"""Root of the ``gateway`` command line.

Sub-commands live in sibling modules and register themselves on ``app`` here. Errors that
derive from ``GatewayError`` are printed as one clear line (``gateway: <file>:<line>: ...``)
and turned into the error's exit status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gateway import __version__
from gateway.errors import GatewayError

__all__ = ["app", "main"]

app = typer.Typer(
    name="gateway",
    help="edXML (QCVN 102:2016) signing and verification mail gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gateway {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """edXML (QCVN 102:2016) signing and verification mail gateway."""


def main() -> None:
    """Console-script entry point."""
    try:
        app(standalone_mode=True)
    except GatewayError as exc:
        typer.echo(f"gateway: {exc}", err=True)
        sys.exit(exc.exit_status)
