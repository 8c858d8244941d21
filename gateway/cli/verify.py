"""``gateway verify FILE...``: judge packages as the inbound gateway would (a contract for other tools).

Exit status: 0 all accepted, 1 any refused, 3 any deferred (none refused), 2 usage or
configuration error. ``--json`` prints one JSON object per file, one per line, with the keys
``file, verdict, indication, subindication, findings[] {code, action, where, message_vi,
message_en}, signatures[], policy {name, version, sha256}`` (and more, documented in the README).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gateway.app import open_verifier, policy_from_settings, run
from gateway.cli.app import app
from gateway.cli.config import ConfigOption, load_settings
from gateway.cli.output import console
from gateway.cli.rules import PolicyOption
from gateway.clock import FixedClock, iso_vn
from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.verify.package import verify_package
from gateway.verify.policy import Action
from gateway.verify.report import Verdict, VerificationReport

__all__ = ["verify_command"]

_VERDICT = {
    Verdict.ACCEPTED: ("green", "CHẤP NHẬN / ACCEPTED"),
    Verdict.REFUSED: ("red", "TỪ CHỐI TIẾP NHẬN / REFUSED"),
    Verdict.DEFERRED: ("yellow", "TẠM HOÃN, SẼ KIỂM TRA LẠI / DEFERRED"),
}
_ACTION = {Action.REJECT: "red", Action.DEFER: "yellow", Action.WARN: "yellow", Action.IGNORE: "dim"}


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--at {value!r} is not an ISO 8601 time", hint="e.g. 2025-03-14T09:05:07+07:00") from None
    if moment.tzinfo is None:
        raise ConfigError(f"--at {value!r} has no UTC offset", hint="add +07:00 (Vietnam time) or Z")
    return moment


def _show(path: Path, report: VerificationReport) -> None:
    colour, words = _VERDICT[report.verdict]
    indication = report.indication.value + (f" / {report.subindication}" if report.subindication else "")
    console.print(f"[bold]{path}[/]: [bold {colour}]{words}[/]   ({indication})")
    if report.package is not None:
        p = report.package
        console.print(f"  {p.kind} {p.code or ''}  DocumentId {p.document_id or '-'}  from {p.sender or '-'}")
    if report.envelope is not None:
        console.print(f"  envelope signature: {report.envelope.state} — {report.envelope.reason}")
    if report.signatures:
        table = Table(title="Chữ ký / Signatures")
        for header in ("where", "signer", "role", "signing time (source)", "anchor", "revocation", "indication"):
            table.add_column(header, overflow="fold")
        for s in report.signatures:
            revocation = f"{s.revocation_source or '-'}: {s.revocation_status or '-'}"
            table.add_row(
                s.where,
                s.signer or "-",
                s.role,
                f"{iso_vn(s.signing_time)} ({s.signing_time_source})",
                s.anchor or "-",
                revocation,
                s.indication + (f" / {s.subindication}" if s.subindication else ""),
            )
        console.print(table)
    shown = [f for f in report.findings if f.action is not Action.IGNORE]
    for f in shown:
        console.print(f"  [{_ACTION[f.action]}]{f.action.value:<6}[/] {f.code}  [dim]{f.where}[/]")
        console.print(f"         {f.message_vi}")
        console.print(f"         [dim]{f.message_en}[/]")
    hidden = len(report.findings) - len(shown)
    if hidden:
        console.print(f"  [dim]({hidden} ignored finding(s) in --json)[/]")
    console.print(f"  [dim]policy {report.policy.name} v{report.policy.version} sha256 {report.policy.sha256}[/]")


async def _verify_all(
    files: list[Path], settings: Settings, policy_path: Path | None, at: datetime | None
) -> list[tuple[Path, VerificationReport]]:
    payloads = []
    for path in files:
        try:
            payloads.append((path, path.read_bytes()))
        except OSError as exc:
            raise ConfigError(f"cannot read the package ({exc.strerror})", path=path) from None
    policy = policy_from_settings(settings, policy_path)
    clock = FixedClock(at) if at is not None else None
    results = []
    async with open_verifier(settings, policy=policy, clock=clock) as verifier:
        for path, raw in payloads:
            results.append((path, await verify_package(raw, verifier, at=at)))
    return results


@app.command("verify")
def verify_command(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="edXML packages to verify.", dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file, one per line.")] = False,
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="ISO8601", help="Judge as of this time (e.g. a package's receive time)."),
    ] = None,
    policy: PolicyOption = None,
    config: ConfigOption = None,
) -> None:
    """Verify packages: envelope and PDF signatures, certificates, revocation at signing time, policy.

    Exit 0 all accepted, 1 any refused, 3 any deferred (none refused), 2 usage or configuration error.
    """
    settings = load_settings(config)
    results = run(_verify_all(files, settings, policy, _parse_at(at)))
    for path, report in results:
        if as_json:
            print(json.dumps(report.to_json(str(path)), ensure_ascii=False))
        else:
            _show(path, report)
    verdicts = {report.verdict for _, report in results}
    if Verdict.REFUSED in verdicts:
        raise typer.Exit(1)
    if Verdict.DEFERRED in verdicts:
        raise typer.Exit(3)
