"""verify_package with an in-memory examiner: the pipeline's own logic, without a PKI.

(End-to-end runs with real signatures are in test_verify_package_pki.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509

from gateway.app import reload_policy
from gateway.edxml.attachments import attachment_from_file
from gateway.edxml.build import build
from gateway.edxml.model import DocumentPackage
from gateway.errors import ConfigError
from gateway.settings import IdentitySettings, Settings, VerifySettings
from gateway.verify.facts import PdfFacts, TrustFacts
from gateway.verify.package import Verifier, verify_package
from gateway.verify.policy import Policy
from gateway.verify.report import Verdict
from gateway.verify.trust import ExamSettings, Purpose
from tests.edxml.strategies import example_document
from tests.verify.facts_factory import pdf, signer_policy, trusted

PDF = b"%PDF-1.7\n%fake but sniffed as PDF\n"


class TwinExaminer:
    """Hands out prepared facts; can hold a verification half-way to test policy reloads."""

    def __init__(self, facts: PdfFacts, gate: asyncio.Event | None = None) -> None:
        self.facts = facts
        self.gate = gate
        self.seen: list[tuple[str, bool, datetime | None, ExamSettings]] = []

    async def examine_pdf(
        self,
        data: bytes,
        *,
        name: str,
        content_id: str,
        is_main: bool,
        settings: ExamSettings,
        at: datetime | None = None,
    ) -> PdfFacts:
        self.seen.append((name, is_main, at, settings))
        if self.gate is not None:
            await self.gate.wait()
        return self.facts

    async def examine_certificate(
        self,
        cert: x509.Certificate,
        *,
        at: datetime | None = None,
        purpose: Purpose = "signing",
        settings: ExamSettings,
        extra_certs: Sequence[x509.Certificate] = (),
    ) -> TrustFacts:
        return trusted()


def raw_package(*names: str) -> tuple[bytes, str]:
    document = example_document()
    files = tuple(
        attachment_from_file(name, (PDF if name.endswith(".pdf") else b"text ") + name.encode()) for name in names
    )
    recipient = document.header.to[0].organ_id
    return build(DocumentPackage(header=document.header, trace=document.trace, attachments=files)), recipient


def verifier_for(examiner: TwinExaminer, recipient: str, policy: Policy | None = None) -> Verifier:
    return Verifier(
        examiner=examiner,
        policy=policy or Policy(signers=signer_policy()),
        identity=IdentitySettings(organ_ids=(recipient,)),
    )


def test_pdfs_are_examined_first_one_as_the_main_document() -> None:
    raw, recipient = raw_package("cong-van.pdf", "ghi-chu.txt", "phu-luc.pdf")
    examiner = TwinExaminer(pdf())
    report = asyncio.run(verify_package(raw, verifier_for(examiner, recipient)))
    assert [(name, main) for name, main, _, _ in examiner.seen] == [("cong-van.pdf", True), ("phu-luc.pdf", False)]
    assert "attachment-not-pdf" in {f.code for f in report.findings}
    assert report.verdict is Verdict.ACCEPTED


def test_the_policy_reaches_the_examiner() -> None:
    raw, recipient = raw_package("cong-van.pdf")
    examiner = TwinExaminer(pdf())
    policy = Policy(signers=signer_policy(), revocation_mode="soft-fail")
    asyncio.run(verify_package(raw, verifier_for(examiner, recipient, policy)))
    settings = examiner.seen[0][3]
    assert settings.revocation_mode == "soft-fail"
    assert settings.time_tolerance == policy.clock_skew


def test_a_reload_never_changes_a_verification_in_flight(tmp_path: Path) -> None:
    raw, recipient = raw_package("cong-van.pdf")
    strict = Policy(signers=signer_policy())
    relaxed_file = tmp_path / "policy.toml"
    relaxed_file.write_text('[policy]\nname = "relaxed"\n[actions]\n"timestamp-absent" = "ignore"\n', encoding="utf-8")
    settings = Settings(verify=VerifySettings(policy=relaxed_file))

    async def go() -> tuple[str, str]:
        gate = asyncio.Event()
        verifier = verifier_for(TwinExaminer(pdf(), gate), recipient, strict)
        in_flight = asyncio.create_task(verify_package(raw, verifier))
        await asyncio.sleep(0.05)  # the verification is now waiting inside the examiner
        reload_policy(verifier, settings)
        gate.set()
        first = await in_flight
        second = await verify_package(raw, verifier)
        return first.policy.name, second.policy.name

    assert asyncio.run(go()) == ("strict-lawful", "relaxed")


def test_an_invalid_policy_file_keeps_the_old_policy(tmp_path: Path) -> None:
    _, recipient = raw_package("cong-van.pdf")
    broken = tmp_path / "policy.toml"
    broken.write_text('[actions]\n"no-such-code" = "reject"\n', encoding="utf-8")
    verifier = verifier_for(TwinExaminer(pdf()), recipient)
    before = verifier.policy
    with pytest.raises(ConfigError, match="no-such-code"):
        reload_policy(verifier, Settings(verify=VerifySettings(policy=broken)))
    assert verifier.policy is before
