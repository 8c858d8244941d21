"""``gateway rules``: check a policy file, show the effective policy and its hash."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.app import policy_from_settings
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.output import console, err_console
from gateway.verify.policy import load_policy

__all__ = ["PolicyOption", "rules_app"]

rules_app = typer.Typer(help="Check and show the verification policy (which finding refuses, defers, warns).")
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
def check_command(file: Annotated[Path, typer.Argument(help="The policy file to check.", dir_okay=False)]) -> None:
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
