"""Sealing a whole draft package: every PDF by its role, the envelope, and our own verdict (issue 4).

The draft is what a DMS hands over: the main document signed by the authorised person, an
appendix in a separate file, a scanned copy. The sealed package must be accepted by our own
verify_package as its recipient would judge it, its envelope by xmlsec1, its PDFs by pdfsig.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from gateway.clock import SystemClock
from gateway.devpki import DevPKI
from gateway.edxml.attachments import attachment_from_file
from gateway.edxml.build import build
from gateway.edxml.model import (
    Attachment,
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    PromulgationInfo,
    SignerInfo,
)
from gateway.edxml.parse import parse
from gateway.settings import IdentitySettings
from gateway.sign.package import DraftRefused, PackageSealer, SelfCheckFailed, role_of
from gateway.sign.pdfseal import Sealer
from gateway.sign.refusals import SealingRefused
from gateway.sign.request import SealKind
from gateway.verify.facts import TrustOutcome
from gateway.verify.package import Verifier, verify_package
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Action, Policy
from gateway.verify.report import Verdict
from gateway.verify.trust import ExamSettings
from tests.external import require
from tests.pdfs import SignedPdfs, cong_van, phu_luc
from tests.sign.conftest import ORGANISATION, key_for, policy_for, scanned_pdf, sign_settings, trust_store

SENDER = "000.00.01.H53"
RECIPIENT = "000.00.32.H53"


def draft(*files: tuple[str, bytes, str | None]) -> bytes:
    header = MessageHeader(
        from_=Organization(SENDER, organ_name=ORGANISATION),
        to=(Organization(RECIPIENT, organ_name="UBND huyện Châu Thành"),),
        code=DocumentCode("123", "UBND-VP"),
        promulgation=PromulgationInfo("Tây Ninh", date(2026, 11, 21)),
        document_type=DocumentType(2, 18, "Công văn"),
        subject="V/v triển khai ký số văn bản",
        signer=SignerInfo("KT. CHỦ TỊCH", "Phó Chủ tịch", "Nguyễn Văn Test"),
    )
    attachments = tuple(attachment_from_file(name, data, description=text) for name, data, text in files)
    return build(DocumentPackage(header=header, attachments=attachments))


def seal(pki: DevPKI, raw: bytes, *, policy: Policy | None = None) -> bytes:
    async def go() -> bytes:
        clock = SystemClock()
        store = trust_store(pki)
        examiner = Examiner(store, clock)
        judged = policy or policy_for(pki)
        sealer = Sealer(key_for(pki), sign_settings(pki), examiner, judged, clock, trust=store)
        identity = IdentitySettings(organ_ids=(SENDER,), organ_name=ORGANISATION)
        packages = PackageSealer(
            sealer=sealer, key=key_for(pki), verifier=Verifier(examiner, judged, identity=identity), identity=identity
        )
        try:
            return await packages.seal_package(raw)
        finally:
            await sealer.aclose()
            await examiner.aclose()

    return asyncio.run(go())


def recipient_verdict(pki: DevPKI, sealed: bytes) -> Verdict:
    async def go() -> Verdict:
        examiner = Examiner(trust_store(pki), SystemClock())
        verifier = Verifier(examiner, policy_for(pki), identity=IdentitySettings(organ_ids=(RECIPIENT,)))
        try:
            report = await verify_package(sealed, verifier)
            assert report.verdict is Verdict.ACCEPTED, report.findings
            return report.verdict
        finally:
            await examiner.aclose()

    return asyncio.run(go())


def attachments(raw: bytes) -> Sequence[Attachment]:
    package = parse(raw).package
    assert isinstance(package, DocumentPackage)
    return package.attachments


@pytest.fixture(scope="module")
def sealed(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> bytes:
    raw = draft(
        ("cong-van.pdf", signed_pdfs.person_only, "Văn bản chính"),
        ("phu-luc.pdf", phu_luc(), "Phụ lục kèm theo"),
        ("giay-moi.pdf", scanned_pdf(), "[copy: SAO Y] Giấy mời (bản sao)"),
    )
    return seal(dev_pki, raw)


def test_the_sealed_package_is_accepted_by_its_recipient(dev_pki: DevPKI, sealed: bytes) -> None:
    assert recipient_verdict(dev_pki, sealed) is Verdict.ACCEPTED


def test_each_pdf_is_sealed_by_its_role(dev_pki: DevPKI, sealed: bytes, signed_pdfs: SignedPdfs) -> None:
    main, appendix, copy = attachments(sealed)

    async def examine(pdf: bytes) -> list[str]:
        examiner = Examiner(trust_store(dev_pki), SystemClock())
        try:
            facts = await examiner.examine_pdf(pdf, name="x.pdf", content_id="x", is_main=True, settings=ExamSettings())
            assert all(s.trust.outcome is TrustOutcome.TRUSTED for s in facts.signatures)
            return [s.signer.subject if s.signer else "-" for s in facts.signatures]
        finally:
            await examiner.aclose()

    assert main.data is not None
    assert main.data.startswith(signed_pdfs.person_only)  # the person's revision is kept byte for byte
    person, organisation = asyncio.run(examine(main.data))
    assert "CN=Nguyễn Văn Test" in person
    assert "CN=UBND TỈNH TEST" in organisation
    assert appendix.data is not None
    assert len(asyncio.run(examine(appendix.data))) == 1
    assert copy.data is not None
    assert len(asyncio.run(examine(copy.data))) == 1
    assert copy.description == "Giấy mời (bản sao)"  # the role tag does not travel
    assert appendix.description == "Phụ lục kèm theo"


def test_xmlsec1_and_pdfsig_accept_the_result(dev_pki: DevPKI, sealed: bytes, tmp_path: Path) -> None:
    xmlsec1, pdfsig = require("xmlsec1"), require("pdfsig")
    package = tmp_path / "sealed.edxml"
    package.write_bytes(sealed)
    layout = dev_pki.layout
    check = subprocess.run(
        [xmlsec1, "--verify", "--trusted-pem", str(layout.anchor("root")),
         "--untrusted-pem", str(layout.intermediate("intermediate")), str(package)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    for index, attachment in enumerate(attachments(sealed)):
        assert attachment.data is not None
        pdf = tmp_path / f"{index}.pdf"
        pdf.write_bytes(attachment.data)
        out = subprocess.run([pdfsig, "-nocert", str(pdf)], capture_output=True, text=True, check=False).stdout
        assert "Signature is Invalid" not in out
        assert out.count("Signature is Valid.") >= 1
        assert "Total document signed" in out


def test_a_main_document_without_the_persons_signature_is_refused(dev_pki: DevPKI) -> None:
    with pytest.raises(SealingRefused) as refused:
        seal(dev_pki, draft(("cong-van.pdf", cong_van(), None)))
    assert refused.value.code == "person-signature-missing"


def test_the_self_check_stops_a_package_our_policy_would_refuse(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    strict = policy_for(dev_pki)
    strict = replace(strict, actions={**strict.actions, "attachment-not-pdf": Action.REJECT})
    raw = draft(("cong-van.pdf", signed_pdfs.person_only, None), ("ghi-chu.txt", b"ghi chu", None))
    with pytest.raises(SelfCheckFailed, match="attachment-not-pdf"):
        seal(dev_pki, raw, policy=strict)


def test_a_draft_that_is_not_a_package_is_refused(dev_pki: DevPKI) -> None:
    with pytest.raises(DraftRefused, match="not a readable edXML document package"):
        seal(dev_pki, b"<edXML/>")


@pytest.mark.parametrize(
    ("description", "first", "expected"),
    [
        (None, True, (SealKind.MAIN, None, None)),
        (None, False, (SealKind.ATTACHMENT, None, None)),
        ("[main] Quyết định", False, (SealKind.MAIN, None, "Quyết định")),
        ("[attachment]", True, (SealKind.ATTACHMENT, None, None)),
        ("[copy: sao  lục] Bản sao", False, (SealKind.COPY, "SAO LỤC", "Bản sao")),
        ("[COPY:TRÍCH SAO]", False, (SealKind.COPY, "TRÍCH SAO", None)),
    ],
)
def test_roles_from_the_description(description: str | None, first: bool, expected: tuple[object, ...]) -> None:
    attachment = Attachment("1", "a.pdf", "application/pdf", data=b"%PDF-", description=description)
    role, rest = role_of(attachment, first_pdf=first)
    assert (role.kind, role.copy_type, rest) == expected


def test_an_unknown_copy_type_is_refused() -> None:
    attachment = Attachment("1", "a.pdf", "application/pdf", data=b"%PDF-", description="[copy: BẢN CHỤP]")
    with pytest.raises(DraftRefused, match="unknown copy type 'BẢN CHỤP'"):
        role_of(attachment, first_pdf=False)
