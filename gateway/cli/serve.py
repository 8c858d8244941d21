"""``gateway serve``: run the mail gateway (SMTP in, submission, IMAP, the queue, ``/healthz``).

Runs in the foreground until SIGTERM or Ctrl-C (a graceful stop), which suits systemd
(``Type=exec``) and containers. SIGHUP (``kill -HUP PID``; the banner prints the pid) reloads
the policy, the submission users file and the HTTP tokens file. Logs go to stderr (journald
keeps them under systemd).

Exit status: 0 after a graceful stop; 2 a configuration error (named with its file and line);
1 anything else that stopped the service.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gateway.app import Running, run, serve
from gateway.app.logs import configure_logging
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, find_config, load_settings
from gateway.cli.output import host_port
from gateway.errors import ConfigError

__all__ = ["serve_command"]

_RELOADS = "SIGHUP reloads the policy, the submission users file and the HTTP tokens file"
"""What ``gateway.app.service``'s SIGHUP handler re-reads, as the banner says it."""


@app.command("serve")
def serve_command(
    config: ConfigOption = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Lowest level logged: DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
    log_format: Annotated[
        str, typer.Option("--log-format", help="text (key=value lines) or json (one object per line).")
    ] = "text",
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            help="Seconds in-flight work gets to finish at shutdown; unfinished work resumes at the next start.",
        ),
    ] = 30.0,
) -> None:
    """Run the gateway until SIGTERM or Ctrl-C.

    SIGHUP (kill -HUP PID, the pid the banner prints) reloads the policy, the submission users
    file and the HTTP tokens file; an invalid file changes nothing.
    """
    path = find_config(config)
    if path is None:
        raise ConfigError(
            "gateway serve needs a configuration file",
            hint="pass --config gateway.toml or set GATEWAY_CONFIG (config/gateway.toml is the documented example)",
        )
    settings = load_settings(path)
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format {log_format!r}: expected text or json")
    try:
        configure_logging(level=log_level, format="json" if log_format == "json" else "text")
    except ValueError as exc:
        raise ConfigError(f"--log-level: {exc}", hint="DEBUG, INFO, WARNING or ERROR") from None
    config_dir = Path(path).resolve().parent

    def ready(running: Running) -> None:
        pid = os.getpid()
        lines = [
            f"gateway: serving as pid {pid} (SIGTERM or Ctrl-C stops it)",
            f"  smtp        {host_port(running.smtp)}   packages from the axis",
            f"  submission  {host_port(running.submission)}   drafts from the DMS",
            f"  http        http://{host_port(running.http)}/healthz",
        ]
        if running.imap is not None:
            lines.append(f"  imap        {running.imap}")
        if running.pki is not None:
            lines.append(f"  dev PKI     {running.pki}/   OCSP, CRLs, TSA (TEST ONLY)")
        lines.append(f"  reload      kill -HUP {pid}   {_RELOADS}")
        typer.echo("\n".join(lines), err=True)

    run(serve(settings, config_dir=config_dir, grace=grace, ready=ready))
