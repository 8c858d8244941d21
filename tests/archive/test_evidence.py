"""Evidence bundles, unpacked and checked offline with common tools (issue 6 "Proof").

The receipt log is the session's ``seeded_log``: real packages (person-signed, organisation-sealed,
time-stamped PDFs in XMLDSig envelopes) sent over SMTP through the real gateway. Each bundle is
unzipped into a temporary directory and checked the way its README tells an archivist to:
``sha256sum -c SHA256SUMS``, ``python3 chain/verify.py``, ``pdfsig``, ``xmlsec1 --verify``. Every
check is also shown to fail when one byte of the bundle changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import aiosmtplib
import pytest

from gateway.archive.evidence import EvidenceSummary, build_evidence
from gateway.cli.config import load_settings
from gateway.clock import SystemClock
from gateway.devpki import DevPKI
from gateway.edxml.model import StatusPackage
from gateway.edxml.parse import parse
from gateway.pipeline.mails import find_package
from gateway.store import Intake, MessageView, NotFound, Spool, Store
from gateway.verify.policy import Policy
from tests.archive.seeded import SeededLog
from tests.external import require
from tests.pdfs import SignedPdfs
from tests.pipeline.test_submission import draft_mail, draft_package
from tests.service import receipt_log, running, until, work_item, work_items, write_config


@dataclass(frozen=True)
class Unpacked:
    """A bundle written and unzipped."""

    directory: Path
    summary: EvidenceSummary
    item: MessageView
    zip: bytes


def _build(seeded: SeededLog, id: int, *, spool: Path | None = None) -> tuple[bytes, EvidenceSummary]:
    settings = load_settings(seeded.config)

    async def go() -> tuple[bytes, EvidenceSummary]:
        async with receipt_log(seeded.config) as store:
            out = BytesIO()
            summary = await build_evidence(
                store,
                Spool(spool or settings.store.spool),
                id,
                out,
                anchors=settings.trust.anchors,
                intermediates=settings.trust.intermediates,
            )
        return out.getvalue(), summary

    return asyncio.run(go())


def _unpack(seeded: SeededLog, id: int, directory: Path, *, spool: Path | None = None) -> Unpacked:
    data, summary = _build(seeded, id, spool=spool)
    with zipfile.ZipFile(BytesIO(data)) as archive:
        archive.extractall(directory)
    return Unpacked(directory, summary, asyncio.run(work_item(seeded.config, id)), data)


@pytest.fixture(scope="module")
def accepted(seeded_log: SeededLog, tmp_path_factory: pytest.TempPathFactory) -> Unpacked:
    return _unpack(seeded_log, seeded_log.ids["valid"], tmp_path_factory.mktemp("evidence-valid"))


@pytest.fixture(scope="module")
def refused(seeded_log: SeededLog, tmp_path_factory: pytest.TempPathFactory) -> Unpacked:
    return _unpack(seeded_log, seeded_log.ids["tampered"], tmp_path_factory.mktemp("evidence-tampered"))


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def _verify_chain(directory: Path) -> subprocess.CompletedProcess[str]:
    # The system's python3 when there is one (what an archivist has), else this interpreter.
    python = shutil.which("python3") or sys.executable
    return _run([python, "-I", "chain/verify.py"], directory)


def _copy(unpacked: Unpacked, tmp_path: Path) -> Path:
    return Path(shutil.copytree(unpacked.directory, tmp_path / "copy"))


def _flip(path: Path, marker: bytes) -> None:
    """Change one byte: the first character after ``marker`` (a hex digit or a letter)."""
    data = bytearray(path.read_bytes())
    at = data.index(marker) + len(marker)
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    path.write_bytes(bytes(data))


def test_an_accepted_bundle_holds_every_piece_of_evidence(accepted: Unpacked) -> None:
    names = {f.name for f in accepted.summary.files}
    for name in (
        "original.eml",
        "package.edxml",
        "report.json",
        "report.html",
        "policy.toml",
        "record.json",
        "chain/entries.json",
        "chain/verify.py",
        "README.txt",
        "SHA256SUMS",
    ):
        assert name in names, name
        assert (accepted.directory / name).is_file()
    assert any(n.startswith("attachments/") and n.endswith(".pdf") for n in names)
    assert any(n.startswith("trust/anchors/") for n in names)
    assert accepted.summary.warnings == ()
    assert hashlib.sha256(accepted.zip).hexdigest() == accepted.summary.sha256
    report = json.loads((accepted.directory / "report.json").read_text("utf-8"))
    assert report == dict(accepted.item.report or {})
    assert report["verdict"] == "accepted"


def test_sha256sum_checks_every_file_and_catches_a_changed_byte(accepted: Unpacked, tmp_path: Path) -> None:
    sha256sum = require("sha256sum")
    good = _run([sha256sum, "-c", "SHA256SUMS"], accepted.directory)
    assert good.returncode == 0, good.stdout + good.stderr
    listed = (accepted.directory / "SHA256SUMS").read_text("utf-8").splitlines()
    assert len(listed) == len(accepted.summary.files) - 1  # every file but SHA256SUMS itself
    copy = _copy(accepted, tmp_path)
    _flip(copy / "report.json", b'"verdict": "accepte')
    bad = _run([sha256sum, "-c", "SHA256SUMS"], copy)
    assert bad.returncode != 0
    assert "report.json: FAILED" in bad.stdout


def test_the_original_is_the_mail_the_receipt_log_recorded(accepted: Unpacked) -> None:
    """A1: the receive record names these exact bytes."""
    original = (accepted.directory / "original.eml").read_bytes()
    assert hashlib.sha256(original).hexdigest() == accepted.item.sha256
    assert len(original) == accepted.item.size
    record = json.loads((accepted.directory / "record.json").read_text("utf-8"))
    assert (record["id"], record["sha256"]) == (accepted.item.id, accepted.item.sha256)
    assert record["received_at"].endswith("+07:00")
    proof = json.loads((accepted.directory / "chain/entries.json").read_text("utf-8"))
    received = next(e for e in proof["entries"] if e["event"] == "received")
    assert received["data"]["sha256"] == accepted.item.sha256


@pytest.mark.parametrize("which", ["accepted", "refused"])
def test_the_chain_proof_verifies_offline(which: str, request: pytest.FixtureRequest) -> None:
    unpacked: Unpacked = request.getfixturevalue(which)
    result = _verify_chain(unpacked.directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert "report.json is the report the verdict recorded" in result.stdout
    assert "policy.toml is the policy the verdict names" in result.stdout
    assert "original.eml is the mail the journal received" in result.stdout


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("chain/entries.json", b'"sha256": "'),  # the received mail's hash inside a journal row
        ("chain/entries.json", b'"event": "receiv'),
        ("report.json", b'"verdict": "accepte'),
        ("original.eml", b"Subject: "),
        ("policy.toml", b"name = "),
    ],
)
def test_one_changed_byte_fails_the_chain_proof(accepted: Unpacked, tmp_path: Path, name: str, marker: bytes) -> None:
    copy = _copy(accepted, tmp_path)
    _flip(copy / name, marker)
    result = _verify_chain(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout


def _pdfsig(pdf: Path) -> str:
    result = _run([require("pdfsig"), "-nocert", str(pdf)], pdf.parent)
    return result.stdout


def test_pdfsig_finds_the_accepted_pdfs_valid_and_the_tampered_ones_not(accepted: Unpacked, refused: Unpacked) -> None:
    """A2 offline: the bundle's PDFs carry their signatures; the tampered letter's do not verify."""
    good = sorted((accepted.directory / "attachments").glob("*.pdf"))
    assert good
    for pdf in good:
        out = _pdfsig(pdf)
        assert out.count("Signature is Valid.") == 2, out  # the person's, then the organisation's seal
        assert "Total document signed" in out
    bad = sorted((refused.directory / "attachments").glob("*.pdf"))
    assert bad
    for pdf in bad:
        out = _pdfsig(pdf)
        assert "Signature is Valid." not in out, out
        assert out.count("Signature Validation: Digest Mismatch.") == 2, out  # both cover the changed amount


def test_the_readme_xmlsec1_command_verifies_the_envelope(accepted: Unpacked, tmp_path: Path) -> None:
    readme = (accepted.directory / "README.txt").read_text("utf-8")
    [line] = [x.strip() for x in readme.splitlines() if x.strip().startswith("xmlsec1 --verify")]
    args = shlex.split(line)
    args[0] = require("xmlsec1")
    result = _run(args, accepted.directory)
    assert result.returncode == 0, result.stderr
    copy = _copy(accepted, tmp_path)
    _flip(copy / "package.edxml", b"DigestValue>")  # the first reference digest
    assert _run(args, copy).returncode != 0


def test_the_readme_and_the_html_page_explain_in_vietnamese_and_english(refused: Unpacked) -> None:
    readme = (refused.directory / "README.txt").read_text("utf-8")
    for text in ("sha256sum -c SHA256SUMS", "python3 chain/verify.py", "pdfsig -nocert", "gateway log verify-chain"):
        assert text in readme
    assert "KIỂM TRA KHÔNG CẦN MẠNG" in readme
    assert "What it does NOT prove" in readme
    page = (refused.directory / "report.html").read_text("utf-8")
    assert "<script" not in page.lower()
    assert "Từ chối / refused" in page
    assert "pdf-signature-invalid" in page or "pdf-modified-after-signing" in page
    assert str(refused.item.sha256) in page


def test_an_outbound_notice_gets_a_bundle_without_a_report(seeded_log: SeededLog, tmp_path: Path) -> None:
    """The sealed status 01 we sent: the mail, its package, the journal; no verification report."""

    async def notices() -> list[MessageView]:
        async with receipt_log(seeded_log.config) as store:
            return await store.list(kind="notice", parent_id=seeded_log.ids["valid"])

    [notice] = asyncio.run(notices())
    unpacked = _unpack(seeded_log, notice.id, tmp_path / "notice")
    names = {f.name for f in unpacked.summary.files}
    assert {"original.eml", "package.edxml", "record.json", "chain/entries.json", "README.txt"} <= names
    assert "report.json" not in names
    assert "policy.toml" not in names
    assert unpacked.summary.warnings == ()
    status = parse((tmp_path / "notice/package.edxml").read_bytes()).package
    assert isinstance(status, StatusPackage)
    assert status.status_code == "01"
    result = _verify_chain(unpacked.directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No report" in (tmp_path / "notice/report.html").read_text("utf-8")


def test_a_policy_missing_from_the_spool_is_said_not_fatal(seeded_log: SeededLog, tmp_path: Path) -> None:
    settings = load_settings(seeded_log.config)
    spool = Path(shutil.copytree(settings.store.spool, tmp_path / "spool"))
    item = asyncio.run(work_item(seeded_log.config, seeded_log.ids["unsigned"]))
    assert item.policy_sha256 is not None
    (spool / item.policy_sha256[:2] / item.policy_sha256).unlink()
    unpacked = _unpack(seeded_log, item.id, tmp_path / "bundle", spool=spool)
    assert "policy.toml" not in {f.name for f in unpacked.summary.files}
    [warning] = unpacked.summary.warnings
    assert item.policy_sha256 in warning
    assert item.policy_sha256 in (unpacked.directory / "README.txt").read_text("utf-8")
    assert _verify_chain(unpacked.directory).returncode == 0  # what is there still checks


def test_no_such_item(seeded_log: SeededLog) -> None:
    with pytest.raises(NotFound):
        _build(seeded_log, 999_999)


def test_a_sealed_submission_bundles_the_draft_and_what_we_sent(
    tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs
) -> None:
    """B1–B8 evidence: the DMS's draft as handed in, the sealed package as sent, its PDFs valid offline."""
    config = write_config(tmp_path, dev_pki)
    draft = draft_package(signed_pdfs.person_only)

    async def go() -> int:
        async with running(config) as where:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=where.submission[1], timeout=60)
            await client.connect()
            await client.sendmail("vanthu@dms.tayninh.gov.vn", ["vanthu@chauthanh.gov.vn"], draft_mail(draft))
            await client.quit()

            async def sent() -> bool:
                sends = await work_items(config, "send")
                return bool(sends) and all(s.state == "sent" for s in sends)

            await until(sent, within=120)
        [submission] = await work_items(config, "submission")
        return submission.id

    id = asyncio.run(go())
    seeded = SeededLog(config=config, ids={}, pki=dev_pki, documents={})
    unpacked = _unpack(seeded, id, tmp_path / "bundle")
    assert unpacked.item.state == "sealed"
    assert (unpacked.directory / "package.edxml").read_bytes() == draft
    sealed = (unpacked.directory / "sealed.edxml").read_bytes()
    assert sealed != draft
    [send] = asyncio.run(work_items(config, "send"))
    sent_mail = (tmp_path / "spool" / send.sha256[:2] / send.sha256).read_bytes()
    assert find_package(sent_mail).package == sealed
    pdfs = sorted((unpacked.directory / "attachments").glob("*.pdf"))
    assert pdfs
    main = _pdfsig(pdfs[0])
    assert main.count("Signature is Valid.") == 2, main  # the person's, then our seal
    result = _verify_chain(unpacked.directory)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_html_page_escapes_what_senders_wrote(tmp_path: Path) -> None:
    """Text from a mail (a Subject, a finding's place) is shown as text, never as markup."""
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    mail = f"From: a@b.vn\r\nSubject: {hostile}\r\n\r\nno package here\r\n".encode()

    async def go() -> tuple[bytes, EvidenceSummary]:
        spool = Spool(tmp_path / "spool")
        sha256 = await spool.put(mail)
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", clock=SystemClock())
        try:
            item = await store.record_intake(Intake(kind="inbound", channel="smtp", sha256=sha256, size=len(mail)))
            report = {
                "verdict": "refused",
                "indication": "TOTAL_FAILED",
                "subindication": "FORMAT_FAILURE",
                "findings": [
                    {
                        "code": "mail-no-package",
                        "action": "reject",
                        "where": hostile,
                        "message_vi": "x",
                        "message_en": "y",
                    }
                ],
                "signatures": [],
                "policy": {"name": "strict-lawful", "version": "1", "sha256": Policy().sha256},
                "envelope_signature": None,
                "package": None,
                "verified_at": "2026-11-21T09:00:00+07:00",
                "sha256": sha256,
                "size": len(mail),
            }
            await store.record_verdict(
                item.id, report, verdict="refused", policy_sha256=Policy().sha256, subject=hostile, to_state="refused"
            )
            out = BytesIO()
            summary = await build_evidence(store, spool, item.id, out)
        finally:
            await store.close()
        return out.getvalue(), summary

    data, summary = asyncio.run(go())
    with zipfile.ZipFile(BytesIO(data)) as archive:
        page = archive.read("report.html").decode()
        archive.extractall(tmp_path / "bundle")
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page
    assert "package.edxml" not in {f.name for f in summary.files}  # the mail carries none
    assert any("policy" in w for w in summary.warnings)  # this policy text was never spooled
    result = _verify_chain(tmp_path / "bundle")
    assert result.returncode == 0, result.stdout + result.stderr
