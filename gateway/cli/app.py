"""Root of the ``gateway`` command line.

Sub-commands live in sibling modules and register themselves on ``app`` here. Errors that
derive from ``GatewayError`` are printed as one clear line (``gateway: <file>:<line>: ...``)
and turned into the error's exit status; anything else is a bug and keeps its traceback.

Help names an argument by its metavar (``ID...``, ``FILE...``): typer would add the Python type
(``ID <list[int]>``), which says nothing to an operator. ``name_arguments_by_metavar`` gives every
registered command that help; ``gateway.cli`` applies it once all commands are registered.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from gateway import __version__
from gateway.errors import GatewayError

__all__ = ["HelpCommand", "app", "main", "name_arguments_by_metavar"]

app = typer.Typer(
    name="gateway",
    help="edXML (QCVN 102:2016) signing and verification mail gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class HelpCommand(TyperCommand):
    """A command whose help lists each argument with a metavar by that name alone (``ID...``)."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """Typer's Arguments and Options sections, the arguments named by their metavar.

        ``ctx`` and ``formatter`` are those of the click copy typer carries (not public API).
        """
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                if param.metavar is not None:
                    record = (param.metavar + ("..." if param.nargs != 1 else ""), record[1])
                arguments.append(record)
            else:
                options.append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


def name_arguments_by_metavar(typer_app: typer.Typer) -> None:
    """Make every command registered on ``typer_app`` and its sub-apps a :class:`HelpCommand`.

    A command registered with a class of its own (not typer's default) keeps it.
    """
    for command in typer_app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = HelpCommand
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            name_arguments_by_metavar(group.typer_instance)


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
