"""``gateway web``: the HTTP surfaces alone (JSON API, pre-flight, pages, ``/metrics``, ``/healthz``).

The same app ``gateway serve`` serves on ``[http] listen``, for a second machine or a separate
user that only reads: the receipt log is opened without migrating (it must exist and be at the
current schema), nothing is written. Pre-flight judges with a verifier of its own (``[trust]``,
``[verify]``); without trust anchors it answers 503. ``/metrics`` here counts only the queue
depth: the pipeline's counters are in the ``gateway serve`` process.

Runs in the foreground until SIGTERM or Ctrl-C; SIGHUP (``kill -HUP PID``; the banner prints the
pid) reloads the tokens file and the policy.
Exit status: 0 after a stop; 2 a configuration error (named with its file and line).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gateway.app import run
from gateway.app.logs import configure_logging
from gateway.app.web import serve_web
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, find_config, load_settings
from gateway.cli.output import host_port
from gateway.errors import ConfigError

__all__ = ["web_command"]


@app.command("web")
def web_command(
    config: ConfigOption = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT to listen on instead of [http] listen.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Serve the read-only HTTP API and pages alone until SIGTERM or Ctrl-C.

    SIGHUP (kill -HUP PID, the pid the banner prints) reloads the HTTP tokens file and the policy.
    """
    path = find_config(config)
    if path is None:
        raise ConfigError("gateway web needs a configuration file", hint="pass --config gateway.toml")
    settings = load_settings(path)
    try:
        configure_logging(level=log_level)
    except ValueError as exc:
        raise ConfigError(f"--log-level: {exc}", hint="DEBUG, INFO, WARNING or ERROR") from None

    def ready(address: tuple[str, int]) -> None:
        pid = os.getpid()
        typer.echo(
            f"gateway web: serving http://{host_port(address)}/ as pid {pid} (SIGTERM or Ctrl-C stops it)\n"
            f"  reload      kill -HUP {pid}   SIGHUP reloads the HTTP tokens file and the policy",
            err=True,
        )

    run(serve_web(settings, config_dir=Path(path).resolve().parent, listen=listen, ready=ready))
