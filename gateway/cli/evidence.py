"""``gateway evidence ID -o bundle.zip``: one work item's evidence, checkable offline.

Read-only: the receipt log is opened without migrating and nothing is written to it or to the
spool. The bundle (``gateway.archive.evidence``) holds the original mail, the package, its
attachments, the report (JSON and HTML), the policy text, the log row, the item's hash-chained
journal rows with a stand-alone checker, and a README saying how to check it all.

A bundle without the original mail is not evidence: when the spool cannot give it back, nothing
is written and the command exits 1 naming the spool directory it looked in (usually the
configuration named is not the one the gateway runs with: check ``[store] spool``).
``--partial`` writes the bundle anyway, without ``original.eml``, and still exits 1.

Exit status: 0 written (warnings name anything else the bundle lacks, such as a policy text);
1 the original mail cannot be read from the spool (nothing written, or with ``--partial`` a
bundle without it); 2 usage or configuration error (an existing output file without ``--force``,
no such work item); 3 the database or the spool cannot be read now.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import typer

from gateway.app import run
from gateway.archive.evidence import EvidenceSummary, OriginalUnavailable, build_evidence
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.db import open_store, spool_hint, store_url
from gateway.cli.output import console, err_console, write_atomically
from gateway.errors import ConfigError, GatewayError
from gateway.settings import Settings
from gateway.store import NotFound, Spool

__all__ = ["evidence_command"]


async def _build(settings: Settings, url: str, id: int, *, partial: bool) -> tuple[bytes, EvidenceSummary]:
    store = await open_store(url)
    try:
        buffer = io.BytesIO()
        summary = await build_evidence(
            store,
            Spool(settings.store.spool),
            id,
            buffer,
            anchors=settings.trust.anchors,
            intermediates=settings.trust.intermediates,
            max_attachment_bytes=settings.edxml.max_attachment_bytes,
            partial=partial,
        )
    except NotFound:
        raise ConfigError(f"no work item {id} in the receipt log", hint="gateway log list shows the ids") from None
    finally:
        await store.close()
    return buffer.getvalue(), summary


@app.command("evidence")
def evidence_command(
    id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The work item's id (gateway log list shows them).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", dir_okay=False, help="The zip file to write (e.g. bang-chung-42.zip).")
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace the output file if it exists.")] = False,
    partial: Annotated[
        bool,
        typer.Option("--partial", help="Write the bundle even without the original mail (still exit 1)."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Write one work item's evidence bundle: a zip anyone can check offline (see its README.txt).

    Without the original mail a bundle is not evidence: when the spool cannot give it back,
    nothing is written and the exit status is 1, naming the spool directory looked in (check
    [store] spool, or --config). --partial writes the rest anyway (still exit 1).

    Exit status: 0 written; 1 the original mail is not in the spool; 2 usage or configuration
    error (an existing output file without --force, no such work item); 3 the database or the
    spool cannot be read now.
    """
    if output.exists() and not force:
        raise ConfigError("the output file exists already", path=output, hint="choose another name or pass --force")
    settings = load_settings(config)
    try:
        data, summary = run(_build(settings, store_url(config), id, partial=partial))
    except OriginalUnavailable as exc:
        hint = f"{spool_hint(config)}; --partial writes the bundle without the original"
        raise GatewayError(f"{exc}; nothing was written ({hint})") from None
    write_atomically(output, data)
    for line in summary.warnings:
        err_console.print(f"warning: {line}", markup=False)
    console.print(f"wrote {output}: evidence of work item {id}, {len(summary.files)} files, {summary.size} bytes")
    for file in summary.files:
        console.print(f"  {file.name:<40} {file.size:>10}  {file.sha256}", markup=False)
    console.print(f"journal head at export: seq {summary.head_seq}")
    console.print(f"{summary.sha256}  {output}", markup=False)
    if not summary.original:
        err_console.print(f"gateway: {output} lacks original.eml: a partial bundle, not evidence", markup=False)
        raise typer.Exit(1)
