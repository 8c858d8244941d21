"""``gateway edxml``: look inside a package, build one, answer one with a status.

Exit statuses: 0 success; 1 the input package is not readable (``inspect``) or cannot be
built as asked; 2 usage or configuration error (from the CLI root).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.output import console, err_console, print_json, write_atomically
from gateway.clock import SystemClock, iso_vn_or_none, to_vn
from gateway.edxml.attachments import attachment_from_file, sniff
from gateway.edxml.build import BuildError, build
from gateway.edxml.checks import check_package
from gateway.edxml.findings import Finding, Severity
from gateway.edxml.meta import load_meta
from gateway.edxml.model import (
    DocumentPackage,
    Organization,
    StaffInfo,
    StatusCode,
    StatusPackage,
    TraceHeader,
    TraceHeaderList,
    normalise_text,
)
from gateway.edxml.status import make_status
from gateway.edxml.xmlsafe import XMLLimits
from gateway.errors import ConfigError, PermanentError
from gateway.settings import Settings
from gateway.sign.envelope import sign_envelope
from gateway.sign.keys import SigningKey, read_pkcs12, read_secret
from gateway.verify.envelope import ReadPackage, read_package
from gateway.verify.xmldsig import EnvelopeSignature

__all__ = ["edxml_app"]

edxml_app = typer.Typer(help="Inspect, build and answer edXML packages (QCVN 102:2016).", no_args_is_help=True)
app.add_typer(edxml_app, name="edxml")

_BUSINESS = {0: "new document", 1: "revocation", 2: "update", 3: "replacement"}


def _read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the package ({exc.strerror})", path=path) from None


def _read(path: Path, settings: Settings) -> tuple[bytes, ReadPackage]:
    raw = _read_input(path)
    limits = XMLLimits(max_bytes=settings.edxml.max_package_bytes, max_depth=settings.edxml.max_depth)
    today = to_vn(SystemClock().now()).date()
    return raw, read_package(raw, limits=limits, max_attachment_bytes=settings.edxml.max_attachment_bytes, today=today)


# --------------------------------------------------------------------------- inspect


def _organization(org: Organization) -> dict[str, Any]:
    return {"organ_id": org.organ_id, "name": org.organ_name, "in_charge": org.organization_in_charge}


def _envelope_json(envelope: EnvelopeSignature | None) -> dict[str, Any] | None:
    if envelope is None:
        return None
    return {
        "state": envelope.state.value,
        "reason": envelope.reason,
        "signer": None if envelope.signer is None else envelope.signer.subject.rfc4514_string(),
        "signature_method": envelope.signature_method,
        "digest_method": envelope.digest_method,
    }


def _finding_json(finding: Finding) -> dict[str, str]:
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "where": finding.where,
        "message_vi": finding.message_vi,
        "message_en": finding.message_en,
    }


def inspection(path: Path, raw: bytes, read: ReadPackage) -> dict[str, Any]:
    """Everything ``inspect`` reports, as JSON-ready data."""
    package = read.parsed.package
    report: dict[str, Any] = {
        "file": str(path),
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "parseable": package is not None,
        "kind": None if package is None else package.kind,
    }
    if isinstance(package, DocumentPackage):
        header = package.header
        report.update(
            business_type=package.business_type,
            business=_BUSINESS.get(package.business_type, "unknown"),
            document_id=header.document_id,
            code=str(header.code),
            subject=header.subject,
            promulgation_date=None if header.promulgation.date is None else header.promulgation.date.isoformat(),
            sender=_organization(header.from_),
            recipients=[_organization(t) for t in header.to],
            attachments=[
                {
                    "content_id": a.content_id,
                    "name": a.name,
                    "content_type": a.content_type,
                    "detected_type": None if a.data is None else sniff(a.data),
                    "size": a.size,
                    "sha256": a.sha256,
                    "zipped": a.zipped,
                }
                for a in package.attachments
            ],
        )
    elif isinstance(package, StatusPackage):
        report.update(
            status_code=package.status_code,
            status=_status_name(package.status_code),
            description=package.description,
            timestamp=iso_vn_or_none(package.timestamp),
            sender=_organization(package.from_),
            document_id=package.response_for.document_id,
            code=package.response_for.code,
        )
    report["envelope_signature"] = _envelope_json(read.envelope)
    report["findings"] = [_finding_json(f) for f in read.parsed.findings]
    return report


def _status_name(code: str) -> str | None:
    try:
        return StatusCode(code).description_vi
    except ValueError:
        return None


def _table(title: str, *headers: str) -> Table:
    """A table whose cells fold rather than truncate: ids and hashes must stay whole."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _show(report: dict[str, Any]) -> None:
    console.print(f"[bold]{report['file']}[/]  {report['size']} bytes  sha256 {report['sha256']}")
    if not report["parseable"]:
        console.print("[red]Not a readable edXML package.[/]")
    elif report["kind"] == "edoc":
        console.print(
            f"Kind:        document package, {report['business']} (BussinessDocType {report['business_type']})"
        )
        console.print(f"DocumentId:  {report['document_id']}")
        console.print(f"Số/ký hiệu:  {report['code']}   promulgated {report['promulgation_date']}")
        console.print(f"Subject:     {report['subject']}")
        sender = report["sender"]
        console.print(f"From:        {sender['organ_id']}  {sender['name'] or ''}")
        for recipient in report["recipients"]:
            console.print(f"To:          {recipient['organ_id']}  {recipient['name'] or ''}")
        table = _table("Attachments", "name", "declared type", "detected", "size", "sha256", "zipped")
        for a in report["attachments"]:
            size = "-" if a["size"] is None else str(a["size"])
            digest = a["sha256"] or "-"
            table.add_row(a["name"], a["content_type"], a["detected_type"] or "-", size, digest, str(a["zipped"]))
        console.print(table)
    else:
        console.print(f"Kind:        status package {report['status_code']} ({report['status'] or 'unknown code'})")
        console.print(f"About:       {report['document_id']}  ({report['code']})")
        console.print(f"From:        {report['sender']['organ_id']}  {report['sender']['name'] or ''}")
        console.print(f"Time:        {report['timestamp']}")
        console.print(f"Description: {report['description']}")
    envelope = report["envelope_signature"]
    if envelope is not None:
        colour = {"valid": "green", "invalid": "red"}.get(envelope["state"], "yellow")
        console.print(f"Envelope signature: [{colour}]{envelope['state']}[/] — {envelope['reason']}")
    if report["findings"]:
        table = _table("Findings", "severity", "code", "where", "message (vi / en)")
        for f in report["findings"]:
            table.add_row(f["severity"], f["code"], f["where"], f"{f['message_vi']}\n{f['message_en']}")
        console.print(table)
    else:
        console.print("No findings.")


@edxml_app.command("inspect")
def inspect_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The .edxml package to inspect.", dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show a package: kind, ids, sender and recipients, attachments, envelope signature, findings.

    Exits 0 when the package could be read (whatever its findings), 1 when it could not.
    """
    settings = load_settings(config)
    raw, read = _read(file, settings)
    report = inspection(file, raw, read)
    if as_json:
        print_json(report)
    else:
        _show(report)
    if read.parsed.package is None:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- build / status


def _signing_key(key: Path | None, pass_env: str | None, pass_file: Path | None) -> SigningKey | None:
    if key is None:
        if pass_env or pass_file:
            raise ConfigError("--sign-pass-env/--sign-pass-file given without --sign-key")
        return None
    password = read_secret(env=pass_env, file=pass_file) if (pass_env or pass_file) else None
    return read_pkcs12(key, password)


def _emit(package: DocumentPackage | StatusPackage, out: Path, key: SigningKey | None, settings: Settings) -> bytes:
    # Strict on write: what we send must pass the checks we apply to what we receive.
    findings = check_package(package, today=to_vn(SystemClock().now()).date())
    errors = [f for f in findings if f.severity is Severity.ERROR]
    for finding in findings:
        if finding.severity is not Severity.ERROR:
            err_console.print(f"warning: {finding.code} at {finding.where}: {finding.message_en}")
    if errors:
        listed = "; ".join(f"{f.code} at {f.where}: {f.message_en}" for f in errors)
        raise PermanentError(f"refusing to write a package that fails its checks: {listed}")
    try:
        data = build(package)
    except BuildError as exc:
        raise PermanentError(f"cannot build the package: {exc}") from None
    if key is not None:
        data = sign_envelope(data, key, algorithm=settings.edxml.signature_algorithm)
    write_atomically(out, data)
    return data


def _our_organization(settings: Settings, organ_id: str | None) -> Organization:
    ident = settings.identity
    chosen = organ_id or (ident.organ_ids[0] if ident.organ_ids else None)
    if not chosen:
        raise ConfigError("no sender identity", hint="set [identity] organ_ids in gateway.toml or pass --from ORGANID")
    return Organization(
        organ_id=chosen,
        organization_in_charge=ident.organization_in_charge,
        organ_name=ident.organ_name,
        organ_add=ident.address,
        email=ident.email,
        telephone=ident.telephone,
        fax=ident.fax,
        website=ident.website,
    )


SignKey = Annotated[
    Path | None, typer.Option("--sign-key", help="PKCS#12 file with the organisation key.", dir_okay=False)
]
SignPassEnv = Annotated[
    str | None, typer.Option("--sign-pass-env", metavar="VAR", help="Environment variable holding its password.")
]
SignPassFile = Annotated[
    Path | None, typer.Option("--sign-pass-file", help="File holding its password (mode 600).", dir_okay=False)
]
Output = Annotated[Path, typer.Option("-o", "--output", help="Where to write the package.", dir_okay=False)]


@edxml_app.command("build")
def build_command(
    meta: Annotated[Path, typer.Option("--meta", help="META.toml describing the document.", dir_okay=False)],
    out: Output,
    attach: Annotated[
        list[Path] | None,
        typer.Option("--attach", metavar="FILE", help="A file to attach (repeatable).", dir_okay=False),
    ] = None,
    sign_key: SignKey = None,
    sign_pass_env: SignPassEnv = None,
    sign_pass_file: SignPassFile = None,
    config: ConfigOption = None,
) -> None:
    """Build a document package from META.toml and files; optionally sign its envelope."""
    settings = load_settings(config)
    key = _signing_key(sign_key, sign_pass_env, sign_pass_file)
    try:
        described = load_meta(meta.read_text(encoding="utf-8"), meta)
    except OSError as exc:
        raise ConfigError(f"cannot read the metadata file ({exc.strerror})", path=meta) from None
    attachments = []
    for path in attach or []:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the attachment ({exc.strerror})", path=path) from None
        attachments.append(attachment_from_file(path.name, data, zip_other_files=settings.edxml.zip_other_files))
    trace = described.trace or TraceHeaderList()
    if not trace.traces:
        # Our own hop, as the SDK writes it: the sender and the time the package was made.
        hop = TraceHeader(described.header.from_.organ_id, SystemClock().now().replace(microsecond=0))
        trace = replace(trace, traces=(hop,))
    package = DocumentPackage(header=described.header, trace=trace, attachments=tuple(attachments))
    data = _emit(package, out, key, settings)
    signed = f", envelope signed by {key.subject}" if key else ", envelope not signed"
    console.print(f"wrote {out} ({len(data)} bytes, {len(attachments)} attachment(s){signed})")


@edxml_app.command("status")
def status_command(
    for_package: Annotated[Path, typer.Option("--for", help="The package this status answers.", dir_okay=False)],
    code: Annotated[str, typer.Option("--code", metavar="NN", help="Status code: 01 02 03 04 05 06 13 15 16.")],
    out: Output,
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Description; required for 02, 13 and 16.")
    ] = None,
    sender: Annotated[
        str | None,
        typer.Option("--from", metavar="ORGANID", help="Our OrganId (default: first of [identity] organ_ids)."),
    ] = None,
    staff: Annotated[str | None, typer.Option("--staff", metavar="NAME", help="Name of the clerk who acted.")] = None,
    department: Annotated[
        str | None, typer.Option("--department", metavar="NAME", help="The clerk's department.")
    ] = None,
    sign_key: SignKey = None,
    sign_pass_env: SignPassEnv = None,
    sign_pass_file: SignPassFile = None,
    config: ConfigOption = None,
) -> None:
    """Write the status package that answers the package given with --for, in the status code given with --code.

    For example --code 02 ("Từ chối tiếp nhận", refused) with --reason saying why.
    """
    settings = load_settings(config)
    key = _signing_key(sign_key, sign_pass_env, sign_pass_file)
    _, read = _read(for_package, settings)
    about = read.parsed.package
    if about is None:
        reasons = "; ".join(f.message_en for f in read.parsed.findings) or "unreadable"
        raise PermanentError(f"{for_package}: cannot answer a package that cannot be read ({reasons})")
    clerk: StaffInfo | None = StaffInfo(staff=normalise_text(staff), department=normalise_text(department))
    if clerk == StaffInfo():
        clerk = None
    try:
        status = make_status(
            about,
            code,
            sender=_our_organization(settings, sender),
            at=SystemClock().now(),
            description=reason,
            staff=clerk,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    data = _emit(status, out, key, settings)
    console.print(
        f"wrote {out} ({len(data)} bytes): status {status.status_code} about {status.response_for.document_id}"
    )
