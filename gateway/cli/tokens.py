"""``gateway token``: the bearer tokens of the HTTP API, pre-flight and pages (``[http] tokens``).

``add NAME --scope read [--scope preflight]`` makes a token (32 random bytes, URL-safe base64),
prints it ONCE on stdout, and appends ``name:scopes:sha256`` to the tokens file; the token itself
is stored nowhere. ``list`` shows names and scopes (never a secret), ``remove NAME`` deletes a
line. The file is rewritten atomically with mode 0600; comments and other lines are kept. The
running gateway (``gateway serve``, ``gateway web``) reads it again on SIGHUP.

Exit status: 0 done; 2 usage or configuration error (an unknown scope, a taken or unknown name,
a malformed file, named with its line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.output import console, print_json, write_atomically
from gateway.errors import ConfigError
from gateway.web.auth import SCOPES, TokenInfo, TokenStore, check_name, check_scopes, hash_token, new_token, token_line

__all__ = ["token_app"]

token_app = typer.Typer(help="Bearer tokens of the HTTP API, pre-flight and pages: add, list, remove.")
app.add_typer(token_app, name="token")

FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", dir_okay=False, help="The tokens file (default: [http] tokens of the configuration)."),
]
_HEADER = "# Bearer tokens of the gateway's HTTP surfaces: name:scopes:sha256 (gateway token add).\n"


def _path(config: Path | None, file: Path | None) -> Path:
    if file is not None:
        return file
    path = load_settings(config).http.tokens
    if path is None:
        raise ConfigError(
            "[http] tokens is not set: there is no tokens file to change",
            hint='set tokens = "http-tokens" under [http] in gateway.toml, or pass --file',
        )
    return path


def _load(path: Path) -> tuple[TokenStore, list[str]]:
    """The tokens (validated, naming a bad line) and the file's lines; an absent file is empty."""
    if not path.exists():
        return TokenStore(path=path), []
    return TokenStore.load(path), path.read_text(encoding="utf-8").splitlines()


def _save(path: Path, lines: list[str]) -> None:
    text = "\n".join(lines) + "\n" if lines else ""
    write_atomically(path, (text if text.startswith("#") else _HEADER + text).encode("utf-8"), mode=0o600)


def _name_of(line: str) -> str | None:
    stripped = line.strip()
    return None if not stripped or stripped.startswith("#") else stripped.partition(":")[0]


@token_app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Who or what uses the token (shown in the access log).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", "-s", metavar="SCOPE", help=f"Repeat for several: {', '.join(SCOPES)}."),
    ],
    config: ConfigOption = None,
    file: FileOption = None,
) -> None:
    """Make a token, print it once, and store its SHA-256 in the tokens file."""
    scopes = check_scopes(tuple(scope))
    check_name(name)
    path = _path(config, file)
    tokens, lines = _load(path)
    if any(t.name == name for t in tokens.tokens):
        raise ConfigError(f"a token named {name!r} exists", path=path, hint=f"gateway token remove {name} first")
    token = new_token()
    try:
        _save(path, [*lines, token_line(TokenInfo(name, scopes, hash_token(token)))])
    except OSError as exc:
        raise ConfigError(f"cannot write the tokens file ({exc.strerror})", path=path) from None
    typer.echo(token)
    shown = ",".join(s for s in SCOPES if s in scopes)
    typer.echo(
        f"added {name} ({shown}) to {path}: the token above is shown only now; reload the gateway (SIGHUP)",
        err=True,
    )


@token_app.command("list")
def list_command(
    config: ConfigOption = None,
    file: FileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of {name, scopes}.")] = False,
) -> None:
    """Show every token's name and scopes (the secrets are not stored, so never shown)."""
    tokens, _ = _load(_path(config, file))
    rows = [(t.name, [s for s in SCOPES if s in t.scopes]) for t in tokens.tokens]
    if as_json:
        print_json([{"name": n, "scopes": s} for n, s in rows])
        return
    table = Table("name", "scopes")
    for name, scopes in rows:
        table.add_row(name, ", ".join(scopes))
    console.print(table)


@token_app.command("remove")
def remove_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The token's name.")],
    config: ConfigOption = None,
    file: FileOption = None,
) -> None:
    """Delete a token from the tokens file (it stops working at the next SIGHUP)."""
    path = _path(config, file)
    tokens, lines = _load(path)
    if not any(t.name == name for t in tokens.tokens):
        known = ", ".join(t.name for t in tokens.tokens) or "none"
        raise ConfigError(f"no token named {name!r}", path=path, hint=f"known: {known}")
    try:
        _save(path, [line for line in lines if _name_of(line) != name])
    except OSError as exc:
        raise ConfigError(f"cannot write the tokens file ({exc.strerror})", path=path) from None
    typer.echo(f"removed {name} from {path}; reload the gateway (SIGHUP)", err=True)
