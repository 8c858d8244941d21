"""Evidence bundles: one zip with which anyone can check a work item offline (issue 6).

``build_evidence`` reads one work item, its spooled mail, its journal rows and the policy it was
judged under, and writes a self-contained zip (names fixed, so scripts and people find them)::

    original.eml         the mail exactly as received or sent (the spool, by messages.sha256)
    package.edxml        the edXML package found in it, byte for byte
    sealed.edxml         a submission only: the sealed package we sent (from its first send)
    attachments/<name>   each decoded attachment (names made safe for every file system)
    report.json          the verification report as recorded (report.html: the same, readable)
    policy.toml          the policy text whose SHA-256 the verdict names (when the spool has it)
    record.json          the receipt-log row
    chain/entries.json   the item's journal rows and the chain head at export time
    chain/verify.py      a stand-alone checker of the rows and of the files they name
    trust/...            the trust anchors and intermediates, when given (for ``xmlsec1``)
    README.txt           what each file is and how to check it (Vietnamese, English)
    SHA256SUMS           ``sha256sum -c`` over every other file

Nothing is written to the store or the spool. A bundle without the original mail is not evidence:
when the spool cannot give it back (the file is gone or damaged, or the spool named is not the
one the gateway wrote to), ``build_evidence`` raises :class:`OriginalUnavailable` (naming the spool
directory it looked in) and writes nothing, unless asked for a ``partial`` bundle. Anything else
that is missing (a policy text the spool does not hold, a sealed package's send) is said in the
README and in ``EvidenceSummary.warnings``; the bundle is still made with what exists.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

from sqlalchemy import select

from gateway.archive.bundlefiles import ABOUT, json_bytes, render, safe_name, template_bytes, zip_files
from gateway.clock import Clock, SystemClock, iso_vn
from gateway.edxml.model import DocumentPackage
from gateway.edxml.parse import DEFAULT_MAX_ATTACHMENT_BYTES
from gateway.errors import GatewayError
from gateway.pipeline.mails import find_package
from gateway.store import JournalView, MessageView, NotFound, Spool, SpoolError, SpoolMissing, Store
from gateway.store.journal import iso_utc, json_sha256
from gateway.store.tables import journal_head_table
from gateway.verify.envelope import read_package

__all__ = ["EvidenceFile", "EvidenceSummary", "OriginalUnavailable", "build_evidence"]

_XMLDSIG: Final = b"http://www.w3.org/2000/09/xmldsig#"


class OriginalUnavailable(GatewayError):
    """The spool cannot give back a work item's original mail, so no bundle of it is evidence.

    Attributes:
        id: the work item.
        spool: the spool directory looked in.
        reason: what the spool said (the file expected, or that its bytes changed).
    """

    def __init__(self, id: int, spool: Path, reason: str) -> None:
        self.id = id
        self.spool = spool
        self.reason = reason
        super().__init__(
            f"the original mail of work item {id} cannot be read from the spool {spool} ({reason}); "
            "a bundle without it is not evidence"
        )


@dataclass(frozen=True)
class EvidenceFile:
    """One file of a bundle."""

    name: str
    size: int
    sha256: str
    about: str
    """What it is, Vietnamese / English (the README's line)."""


@dataclass(frozen=True)
class EvidenceSummary:
    """What ``build_evidence`` wrote."""

    id: int
    files: tuple[EvidenceFile, ...]
    size: int
    """The zip's size in bytes."""
    sha256: str
    """The zip's own SHA-256 (to note down next to where the bundle is kept)."""
    warnings: tuple[str, ...]
    """What the bundle lacks and why (also in its README)."""
    head_seq: int
    """The journal head at export time."""
    original: bool = True
    """Whether ``original.eml`` is in the bundle (``False`` only for a ``partial`` one)."""


@dataclass
class _Bundle:
    """The files so far, in order, and what is missing."""

    item: MessageView
    at: datetime
    contents: dict[str, bytes] = field(default_factory=dict)
    about: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Attachments that could not be decoded (named in the README)."""

    def add(self, name: str, data: bytes, about: str) -> None:
        self.contents[name] = data
        self.about[name] = about

    def listing(self) -> list[EvidenceFile]:
        return [
            EvidenceFile(name, len(data), hashlib.sha256(data).hexdigest(), self.about[name])
            for name, data in self.contents.items()
        ]


async def build_evidence(
    store: Store,
    spool: Spool,
    id: int,
    out: BinaryIO | Path,
    *,
    anchors: Sequence[Path] = (),
    intermediates: Sequence[Path] = (),
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    clock: Clock | None = None,
    partial: bool = False,
) -> EvidenceSummary:
    """Write the evidence bundle of work item ``id`` to ``out`` (see the module docstring).

    Args:
        store: the receipt log (only read).
        spool: the spool of original mails and policy texts (only read).
        id: the work item.
        out: a binary stream, or a path (written whole; an existing file is replaced).
        anchors: trust anchor PEM files to include for ``xmlsec1`` (``[trust] anchors``).
        intermediates: intermediate certificate PEM files (``[trust] intermediates``).
        max_attachment_bytes: the largest attachment to decode (``[edxml] max_attachment_bytes``).
        clock: the export time's source (default: the system clock).
        partial: write the bundle even without the original mail (``summary.original`` is then
            ``False`` and a warning says why); by default that is :class:`OriginalUnavailable`.

    Returns:
        What was written, with the zip's SHA-256 and what is missing.

    Raises:
        NotFound: no work item ``id``.
        OriginalUnavailable: the spool cannot give back the original mail (nothing is written),
            unless ``partial``.
        OSError: a trust file cannot be read, or ``out`` cannot be written.
        TransientError: the database or the spool cannot be read now.
    """
    item = await store.get(id)
    if item is None:
        raise NotFound(f"no work item {id}")
    history = await store.history(id)
    head = await _chain_head(store)  # after the rows: the head is at or past every one of them
    bundle = _Bundle(item, (clock or SystemClock()).now())
    await _mails(bundle, store, spool, max_attachment_bytes, partial=partial)
    await _judgement(bundle, spool)
    bundle.add("record.json", json_bytes(_record(item)), "Dòng sổ nhận/gửi của mục này / This item's receipt-log row")
    bundle.add("chain/entries.json", json_bytes(_proof(item, history, head, bundle.at)), ABOUT["entries"])
    bundle.add("chain/verify.py", template_bytes("verify.py"), ABOUT["verify"])
    await asyncio.to_thread(_trust, bundle, anchors, intermediates)
    data = await asyncio.to_thread(_finish, bundle, history, head)
    await asyncio.to_thread(_write, out, data)
    return EvidenceSummary(
        id=item.id,
        files=tuple(bundle.listing()),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        warnings=tuple(bundle.warnings),
        head_seq=head[0],
        original="original.eml" in bundle.contents,
    )


async def _chain_head(store: Store) -> tuple[int, str]:
    """The journal head (seq, hash) as it is now."""
    head = journal_head_table
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1))).one()
    return int(row.seq), str(row.hash)


async def _spooled(bundle: _Bundle, spool: Spool, sha256: str, what: str) -> bytes | None:
    try:
        return await spool.get(sha256)
    except SpoolError as exc:
        bundle.warnings.append(f"{what} is not in the bundle: {exc}")
        return None


async def _original(bundle: _Bundle, spool: Spool, *, partial: bool) -> bytes | None:
    """The item's mail from the spool; without it: :class:`OriginalUnavailable`, or a warning if ``partial``."""
    item = bundle.item
    try:
        return await spool.get(item.sha256)
    except SpoolMissing:
        reason = f"no file {spool.path(item.sha256)}"
    except SpoolError as exc:
        reason = str(exc)
    error = OriginalUnavailable(item.id, spool.directory, reason)
    if not partial:
        raise error
    bundle.warnings.append(f"original.eml is not in the bundle: {error}")
    return None


async def _mails(bundle: _Bundle, store: Store, spool: Spool, max_attachment_bytes: int, *, partial: bool) -> None:
    """original.eml, package.edxml, sealed.edxml and the attachments."""
    item = bundle.item
    kind = (
        "original-in" if item.direction == "in" else "original-draft" if item.kind == "submission" else "original-out"
    )
    mail = await _original(bundle, spool, partial=partial)
    if mail is None:
        return
    bundle.add("original.eml", mail, ABOUT[kind])
    package = find_package(mail).package
    if package is None:
        return
    bundle.add("package.edxml", package, ABOUT["package"])
    if item.kind == "submission":
        sealed = await _sealed(bundle, store, spool)
        if sealed is not None:
            bundle.add("sealed.edxml", sealed, ABOUT["sealed"])
            package = sealed
    await asyncio.to_thread(_attachments, bundle, package, max_attachment_bytes)


async def _sealed(bundle: _Bundle, store: Store, spool: Spool) -> bytes | None:
    """The sealed package of a submission: what its first send carries."""
    sends = await store.list(kind="send", parent_id=bundle.item.id)
    if not sends:
        return None
    first = min(sends, key=lambda s: s.id)
    mail = await _spooled(bundle, spool, first.sha256, f"sealed.edxml (send {first.id})")
    return None if mail is None else find_package(mail).package


def _attachments(bundle: _Bundle, package: bytes, max_attachment_bytes: int) -> None:
    """Decode the attachments as the verifier read them (from what the envelope signs, when valid)."""
    parsed = read_package(package, max_attachment_bytes=max_attachment_bytes).parsed.package
    if not isinstance(parsed, DocumentPackage):
        return
    taken: set[str] = set()
    for index, attachment in enumerate(parsed.attachments, start=1):
        if attachment.data is None:
            bundle.skipped.append(f"{attachment.name} (cid:{attachment.content_id})")
            continue
        name = safe_name(attachment.name, taken, index)
        about = f"{ABOUT['attachment']}: {attachment.name} (cid:{attachment.content_id}, {attachment.content_type})"
        bundle.add(f"attachments/{name}", attachment.data, about)


async def _judgement(bundle: _Bundle, spool: Spool) -> None:
    """report.json and policy.toml (report.html is rendered at the end, with the listing)."""
    item = bundle.item
    if item.report is not None:
        bundle.add("report.json", json_bytes(item.report), ABOUT["report.json"])
    if item.policy_sha256 is None:
        return
    try:
        policy = await spool.get(item.policy_sha256)
    except SpoolMissing:
        bundle.warnings.append(
            f"policy.toml: the text of policy {item.policy_sha256} is not in the spool {spool.directory} (no file "
            f"{spool.path(item.policy_sha256)}); its hash is in report.json and in the journal"
        )
    except SpoolError as exc:
        bundle.warnings.append(f"policy.toml is not in the bundle: {exc}")
    else:
        bundle.add("policy.toml", policy, ABOUT["policy"])


def _trust(bundle: _Bundle, anchors: Sequence[Path], intermediates: Sequence[Path]) -> None:
    taken: set[str] = set()
    for folder, paths in (("anchors", anchors), ("intermediates", intermediates)):
        for index, path in enumerate(paths, start=1):
            name = safe_name(Path(path).name, taken, index)
            bundle.add(f"trust/{folder}/{name}", Path(path).read_bytes(), f"{ABOUT['trust']} ({path})")


def _record(item: MessageView) -> dict[str, Any]:
    """The log row as JSON: times in ISO 8601 +07:00, the report by its SHA-256 (it is report.json)."""
    values = dataclasses.asdict(item)
    report = values.pop("report")
    values["report_sha256"] = None if report is None else json_sha256(report)
    return {k: iso_vn(v) if isinstance(v, datetime) else v for k, v in values.items()}


def _proof(item: MessageView, history: list[JournalView], head: tuple[int, str], at: datetime) -> dict[str, Any]:
    entries = [
        {
            "seq": row.seq,
            "message_id": row.message_id,
            "event": row.event,
            "at": iso_utc(row.at),
            "data": row.data,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
        for row in history
    ]
    return {
        "message_id": item.id,
        "exported_at": iso_vn(at),
        "hash": "sha256(prev_hash + canonicaljson_bytes({seq, message_id, event, at, data}))",
        "canonical_json": "UTF-8, sorted keys, separators (',', ':'), non-ASCII kept, no NaN",
        "entries": entries,
        "head": {"seq": head[0], "hash": head[1]},
    }


def _finish(bundle: _Bundle, history: list[JournalView], head: tuple[int, str]) -> bytes:
    """Render report.html and README.txt, add SHA256SUMS, zip it all (CPU work: in a thread)."""
    item = bundle.item
    context: dict[str, Any] = {
        "item": item,
        "record": _record(item),
        "report": item.report,
        "rows": [(row, iso_vn(row.at)) for row in history],
        "head": head,
        "exported_at": iso_vn(bundle.at),
        "warnings": bundle.warnings,
        "skipped": bundle.skipped,
    }
    bundle.add("report.html", render("evidence-report.html", files=bundle.listing(), **context), ABOUT["report.html"])
    package = bundle.contents.get("sealed.edxml", bundle.contents.get("package.edxml"))
    readme = render(
        "evidence-README.txt",
        files=bundle.listing(),
        signed_envelope=package is not None and _XMLDSIG in package,
        envelope_file="sealed.edxml" if "sealed.edxml" in bundle.contents else "package.edxml",
        pdfs=[n for n in bundle.contents if n.startswith("attachments/") and n.lower().endswith(".pdf")],
        trust=[n for n in bundle.contents if n.startswith("trust/")],
        **context,
    )
    bundle.add("README.txt", readme, ABOUT["readme"])
    sums = "".join(f"{f.sha256}  {f.name}\n" for f in bundle.listing())
    bundle.add("SHA256SUMS", sums.encode("utf-8"), ABOUT["sums"])
    return zip_files(bundle.contents, bundle.at)


def _write(out: BinaryIO | Path, data: bytes) -> None:
    if isinstance(out, Path):
        out.write_bytes(data)
    else:
        out.write(data)
