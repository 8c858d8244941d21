"""``gateway sign`` and ``gateway package seal``: the organisation's signature on outgoing documents.

Exit status: 0 sealed; 1 refused (the reason is printed: e.g. no valid person signature on a
main document, an expired or revoked organisation certificate); 3 try again later (the TSA or
a revocation responder did not answer: nothing was written, nothing is ever sealed without its
timestamp); 2 usage or configuration error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.app import open_sealing, run
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.output import console, write_atomically
from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.sign.request import COPY_TYPES, SealKind, SealRequest

__all__ = ["package_app", "package_seal_command", "sign_command"]

package_app = typer.Typer(help="Work on whole edXML packages (seal a draft for sending).", no_args_is_help=True)
app.add_typer(package_app, name="package")

Output = Annotated[Path, typer.Option("-o", "--output", help="Where to write the result.", dir_okay=False)]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} ({exc.strerror})", path=path) from None


def _organisation(settings: Settings, given: str | None) -> str:
    name = given or settings.identity.organ_name
    if not name:
        raise ConfigError(
            "no organisation name", hint="set [identity] organ_name in gateway.toml or pass --organisation"
        )
    return name


async def _seal_one(settings: Settings, pdf: bytes, request: SealRequest) -> bytes:
    async with open_sealing(settings) as sealing:
        return await sealing.documents.seal_document(pdf, request)


async def _seal_package(settings: Settings, draft: bytes) -> bytes:
    async with open_sealing(settings) as sealing:
        return await sealing.packages.seal_package(draft)


@app.command("sign")
def sign_command(
    input_pdf: Annotated[Path, typer.Argument(metavar="INPUT.pdf", help="The PDF to seal.", dir_okay=False)],
    out: Output,
    kind: Annotated[SealKind, typer.Option("--kind", help="main, attachment or copy (Decree 30 App. I).")],
    doc_number: Annotated[
        str | None,
        typer.Option(
            "--doc-number", metavar="NUMBER/NOTATION", help="The main document's number/notation (attachments)."
        ),
    ] = None,
    copy_type: Annotated[
        str | None, typer.Option("--copy-type", metavar="TYPE", help=f"Copies: one of {', '.join(COPY_TYPES)}.")
    ] = None,
    organisation: Annotated[
        str | None,
        typer.Option("--organisation", metavar="NAME", help="Organisation name (default: [identity] organ_name)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Add the organisation's signature to one PDF (PAdES-B-T with a timestamp from [sign] tsa_url).

    main: a visible seal over the left third of the authorised person's signature, which must be
    valid; attachment: number and time at the top right of page 1; copy: copy type, organisation
    and time at the top right of page 1.
    """
    settings = load_settings(config)
    try:
        request = SealRequest(
            kind=kind,
            organisation_name=_organisation(settings, organisation),
            document_number=doc_number,
            copy_type=copy_type,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    sealed = run(_seal_one(settings, _read(input_pdf, "PDF"), request))
    write_atomically(out, sealed)
    console.print(f"wrote {out} ({len(sealed)} bytes): {kind.value} sealed by {request.organisation_name}")


@package_app.command("seal")
def package_seal_command(
    draft: Annotated[
        Path, typer.Argument(metavar="DRAFT.edxml", help="The draft package from the DMS.", dir_okay=False)
    ],
    out: Output,
    config: ConfigOption = None,
) -> None:
    """Seal every PDF of a draft by its role, sign the envelope, and verify the result as a recipient would.

    Roles: an attachment's Description may start with [main], [attachment] or [copy: SAO Y]; by
    default the first PDF is the main document and the others are attachments.
    """
    settings = load_settings(config)
    sealed = run(_seal_package(settings, _read(draft, "draft package")))
    write_atomically(out, sealed)
    console.print(f"wrote {out} ({len(sealed)} bytes): sealed, envelope signed, verified as a recipient would")
