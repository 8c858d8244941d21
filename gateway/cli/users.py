"""``gateway submission-user NAME``: add or change a DMS account of the submission listener.

Prompts for the password twice (never on the command line, where ``ps`` would show it),
hashes it with scrypt and prints the ``name:scrypt$...`` line, or, with ``--file``, writes it
into the users file (replacing that name's line, keeping the others, mode 0600). The running
gateway reads the file again on SIGHUP.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.app import app
from gateway.errors import ConfigError
from gateway.outbound.submit import hash_password, load_users

__all__ = ["submission_user"]


def _write(path: Path, name: str, line: str) -> bool:
    """Put ``line`` in ``path`` in place of ``name``'s; returns whether the name was there before."""
    existing = load_users(path) if path.exists() else {}  # refuses a malformed file, naming the line
    kept = [] if not path.exists() else path.read_text(encoding="utf-8").splitlines()
    lines = [raw for raw in kept if raw.strip().partition(":")[0] != name]
    lines.append(line)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    return name in existing


@app.command("submission-user")
def submission_user(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The account name the DMS logs in with (AUTH PLAIN/LOGIN).")
    ],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", dir_okay=False, help="The users file to update ([submission] users_file)."),
    ] = None,
) -> None:
    """Hash a password for the submission listener (prompted twice) and print or store the line."""
    if not name or any(c in name for c in ":\r\n\t ") or name.startswith("#"):
        raise ConfigError(f"{name!r} cannot be an account name", hint="letters, digits, '.', '-', '_' and '@'")
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        raise ConfigError("the password is shorter than 12 characters", hint="use a long random one, e.g. pwgen 24 1")
    line = f"{name}:{hash_password(password)}"
    if file is None:
        typer.echo(line)
        return
    try:
        replaced = _write(file, name, line)
    except OSError as exc:
        raise ConfigError(f"cannot write the users file ({exc.strerror})", path=file) from None
    done = "changed" if replaced else "added"
    typer.echo(f"{done} {name} in {file}; reload the gateway (SIGHUP) to use it", err=True)
