"""``gateway dev-pki``: write a development PKI bundle, and serve its OCSP, CRLs and TSA.

::

    gateway dev-pki DIR [--url URL] [--force]      write a bundle (same as `dev-pki create`)
    gateway dev-pki serve DIR [--host H] [--port P] serve it until Ctrl-C / SIGTERM

``dev-pki DIR`` is the short form the Makefile uses; a small click group class turns it into
``dev-pki create DIR`` when the first word is not a sub-command (so a directory literally
named ``serve`` needs the explicit ``create``).
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated
from urllib.parse import urlsplit

import typer
from typer import _click
from typer.core import TyperGroup

from gateway.cli.app import app
from gateway.clock import SystemClock
from gateway.devpki import (
    FAKE_TIME_HEADER,
    MANIFEST,
    BundleLayout,
    DevPKI,
    Role,
    bind_listener,
    fingerprint,
    serve_pki,
    write_bundle,
)
from gateway.devpki.template import check_base_url
from gateway.errors import ConfigError

__all__ = ["DEFAULT_URL", "create", "devpki_app", "serve"]

DEFAULT_URL = "http://127.0.0.1:8790"


class _CreateByDefault(TyperGroup):
    """A group whose first argument, when it is not a sub-command, goes to ``create``."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["create", *args]
        return super().parse_args(ctx, args)


devpki_app = typer.Typer(
    name="dev-pki",
    cls=_CreateByDefault,
    no_args_is_help=True,
    help=(
        "Development PKI (TEST copy of the VGCA G2 chain). "
        "`gateway dev-pki DIR` writes a bundle; `gateway dev-pki serve DIR` serves its OCSP, CRLs and TSA."
    ),
)
app.add_typer(devpki_app, name="dev-pki")


def _prepare(directory: Path, force: bool) -> None:
    layout = BundleLayout(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError("exists and is not a directory", path=directory)
    if layout.holds_bundle():
        if not force:
            raise ConfigError(
                "already holds a development PKI; refusing to overwrite its keys",
                path=directory,
                hint="pass --force to replace it, or choose another directory",
            )
        # Remove exactly what a bundle owns: the user's own files in DIR stay.
        for target in layout.entries:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    elif directory.is_dir() and any(directory.iterdir()):
        raise ConfigError(
            "is not empty and holds no development PKI", path=directory, hint="choose a new or empty directory"
        )


@devpki_app.command()
def create(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Directory for the bundle (new or empty).")],
    url: Annotated[
        str, typer.Option("--url", help="URL prefix of OCSP/CRL/TSA baked into the certificates.")
    ] = DEFAULT_URL,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bundle (its keys are lost).")] = False,
) -> None:
    """Write a development PKI bundle to DIR (the default command: `gateway dev-pki DIR`)."""
    base_url = check_base_url(url)
    _prepare(directory, force)
    pki = DevPKI.generate(directory, base_url=base_url, anchor=SystemClock().now())
    layout = write_bundle(pki, directory)
    anchor = pki.labels_with_role(Role.ANCHOR)[0]
    echo = typer.echo
    echo(f"Wrote a development PKI to {directory} (TEST ONLY: never trust it in production).")
    echo(f"  trust anchor    {layout.anchor(anchor).relative_to(directory)}")
    echo(f"                  SHA-256 {fingerprint(pki.certificate(anchor))}")
    for label in pki.labels_with_role(Role.INTERMEDIATE):
        echo(f"  intermediate    {layout.intermediate(label).relative_to(directory)}")
    echo(f"  certificates    certs/*.pem ({len(pki.labels)}), private keys keys/*.key.pem (mode 0600)")
    echo(f"  PKCS#12         p12/*.p12, password in {layout.password_file.relative_to(directory)} (mode 0600)")
    echo(f"  CRLs            crl/*.crl;  what is what: {MANIFEST}")
    echo(f"  services        {pki.base_url}/{pki.architecture.arch_label}/ (OCSP, CRL, certificates, TSA)")
    echo(f"Serve them with:  gateway dev-pki serve {directory}")


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (the main thread's job while the server thread works)."""
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(timeout=1.0):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@devpki_app.command()
def serve(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A bundle written by `gateway dev-pki DIR`.")],
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on [default: from the bundle URL].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="TCP port, 0 = any free one [default: from the bundle URL]."),
    ] = None,
    allow_fake_time: Annotated[
        bool,
        typer.Option(
            "--allow-fake-time",
            help=f"Honour the {FAKE_TIME_HEADER} request header (back-dated OCSP answers and time stamps, "
            "for testing revocation at signing time). Off by default: anyone who can reach the port could use it.",
        ),
    ] = False,
) -> None:
    """Serve OCSP, CRLs, CA certificates and the TSA of a bundle until Ctrl-C or SIGTERM."""
    pki = DevPKI.load(directory)
    baked = urlsplit(pki.base_url)
    listener = bind_listener(
        host if host is not None else (baked.hostname or "127.0.0.1"),
        port if port is not None else (baked.port or 80),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with serve_pki(pki, listener, allow_time_override=allow_fake_time) as server:
        typer.echo(f"Serving the development PKI in {directory} at {server.url}/ (Ctrl-C to stop)")
        if server.url != f"{baked.scheme}://{baked.netloc}":
            typer.echo(
                f"warning: the certificates point at {pki.base_url}, not at {server.url}; "
                "clients that follow AIA/CDP will not find this server",
                err=True,
            )
        urls = pki.urls
        for name, value in (("OCSP", urls.ocsp), ("CRL", urls.crl), ("TSA", urls.tsa)):
            typer.echo(f"  {name:<5} {value}")
        _wait_for_signal()
    typer.echo("stopped")
