"""Refusals and deferrals: each raises with a stable code and produces nothing (B1, B2, B6, G1.7, G2.5).

* The organisation certificate before signing (Decree 68 Art. 29): expired, not yet valid,
  revoked, untrusted (the impostor), CA-flagged, wrong key usage, RSA-1024 — real dev PKI keys,
  the real examiner; no revocation answer — the pre-check with an examiner twin.
* The main document without a valid person signature: unsigned, signed by the organisation
  only, signed by an expired certificate, altered after signing.
* Files that are not PDFs; scanned copies below Decree 30's floor.

"Nothing produced" is checked where it could leak: no time stamp was ever requested, so no
signature was ever finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from io import BytesIO

import pytest
from cryptography import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner

from gateway.clock import FixedClock, SystemClock
from gateway.devpki import DevPKI
from gateway.sign.pages import scan_problems
from gateway.sign.pdfseal import SealKind, SealRequest
from gateway.sign.precheck import OrganisationCheck
from gateway.sign.refusals import SealingDeferred, SealingRefused
from gateway.sign.tsa import TsaClient
from gateway.verify.facts import RevocationFacts, TrustFacts, TrustOutcome
from gateway.verify.policy import AlgorithmPolicy
from gateway.verify.trust import ExamSettings, Purpose
from tests.pdfs import SignedPdfs, cong_van, phu_luc, run
from tests.pdfs.documents import PERSON_FIELD
from tests.pdfs.signing import signer_for
from tests.sign.conftest import ORGANISATION, key_for, scanned_pdf, sealing, sign_settings

MAIN = SealRequest(SealKind.MAIN, ORGANISATION)
ATTACHMENT = SealRequest(SealKind.ATTACHMENT, ORGANISATION, document_number="123/UBND-VP")
COPY = SealRequest(SealKind.COPY, ORGANISATION, copy_type="SAO Y")


def _refusal(pki: DevPKI, pdf: bytes, request: SealRequest, *, label: str = "org") -> tuple[SealingRefused, int]:
    """The refusal of sealing ``pdf``, and how many time stamps were requested meanwhile."""

    async def go() -> tuple[SealingRefused, int]:
        client = TsaClient(pki.urls.tsa, timeout=10, attempts=1, concurrency=2)
        try:
            async with sealing(pki, label=label, tsa=client) as sealer:
                with pytest.raises(SealingRefused) as caught:
                    await sealer.seal_document(pdf, request)
            return caught.value, client.stats.requests
        finally:
            await client.aclose()

    return run(go())


@pytest.mark.parametrize(
    ("label", "code", "detail"),
    [
        ("expired", "org-cert-invalid", "is expired"),
        ("not-yet-valid", "org-cert-invalid", "is not-yet-valid"),
        ("revoked", "org-cert-revoked", "is revoked"),
        ("impostor-leaf", "org-cert-untrusted", "is untrusted"),
        ("ca-flagged", "org-cert-invalid", "it is a CA certificate"),
        ("wrong-key-usage", "org-cert-invalid", "allows no signing"),
        ("rsa1024", "org-cert-invalid", "RSA key of 1024 bits"),
    ],
)
def test_an_unfit_organisation_certificate_signs_nothing(dev_pki: DevPKI, label: str, code: str, detail: str) -> None:
    refusal, stamps = _refusal(dev_pki, phu_luc(), ATTACHMENT, label=label)
    assert refusal.code == code
    assert detail in str(refusal)
    assert f"{label}.p12" in str(refusal)  # which key
    assert stamps == 0


@pytest.mark.parametrize(
    ("artefact", "detail"),
    [
        ("unsigned", "the PDF has no signature"),
        ("org_only", "no signature is recognised as a person's"),
        ("comment_added", "changes the policy forbids follow it"),
    ],
)
def test_a_main_document_without_a_valid_person_signature_is_refused(
    dev_pki: DevPKI, signed_pdfs: SignedPdfs, artefact: str, detail: str
) -> None:
    refusal, stamps = _refusal(dev_pki, signed_pdfs.get(artefact), MAIN)
    assert refusal.code == "person-signature-missing"
    assert detail in str(refusal)
    assert refusal.vietnamese == "Văn bản chưa có chữ ký số hợp lệ của người có thẩm quyền"
    assert stamps == 0


def test_a_person_signature_by_an_expired_certificate_does_not_count(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    refusal, _ = _refusal(dev_pki, signed_pdfs.signed_by("expired"), MAIN)
    assert refusal.code == "person-signature-missing"
    assert "its certificate is expired at its signing time" in str(refusal)


def test_the_fresh_letter_is_refused_but_attachments_need_no_person(dev_pki: DevPKI) -> None:
    refusal, _ = _refusal(dev_pki, cong_van(), MAIN)
    assert refusal.code == "person-signature-missing"


@pytest.mark.parametrize("request_", [MAIN, ATTACHMENT, COPY])
def test_what_is_not_a_pdf_is_unreadable(dev_pki: DevPKI, request_: SealRequest) -> None:
    refusal, stamps = _refusal(dev_pki, b"%PDF-1.7\nthis is not really a PDF\n", request_)
    assert refusal.code == "pdf-unreadable"
    assert stamps == 0


def test_text_the_font_cannot_show_is_refused_not_painted_as_boxes(dev_pki: DevPKI) -> None:
    request = SealRequest(SealKind.COPY, "Ủy ban nhân dân 中文", copy_type="SAO Y")
    refusal, stamps = _refusal(dev_pki, phu_luc(), request)
    assert refusal.code == "seal-text-unsupported"
    assert "'中文'" in str(refusal)
    assert stamps == 0


def test_a_certified_pdf_that_forbids_changes_is_not_signable(dev_pki: DevPKI) -> None:
    meta = PdfSignatureMetadata(field_name=PERSON_FIELD, certify=True, docmdp_permissions=MDPPerm.NO_CHANGES)
    signer = PdfSigner(meta, signer_for(dev_pki, "person"))
    certified = run(signer.async_sign_pdf(IncrementalPdfFileWriter(BytesIO(phu_luc())))).getvalue()
    refusal, stamps = _refusal(dev_pki, certified, ATTACHMENT)
    assert refusal.code == "pdf-not-signable"
    assert stamps == 0


@pytest.mark.parametrize(
    ("scan", "detail"),
    [
        ({"dpi": 100}, "page 1 is scanned at 100 dpi (< 200)"),
        ({"colour": False}, "page 1 is scanned in black and white or grey, not colour"),
    ],
)
def test_a_copy_below_the_scan_floor_is_refused(dev_pki: DevPKI, scan: dict[str, object], detail: str) -> None:
    refusal, stamps = _refusal(dev_pki, scanned_pdf(**scan), COPY)  # type: ignore[arg-type]
    assert refusal.code == "copy-scan-quality"
    assert detail in str(refusal)
    assert stamps == 0


def test_a_scan_older_than_pdf_1_4_is_below_the_floor() -> None:
    old = scanned_pdf().replace(b"%PDF-1.7", b"%PDF-1.3", 1)
    assert scan_problems(PdfFileReader(BytesIO(old))) == ["PDF 1.3 (< 1.4)"]
    assert scan_problems(PdfFileReader(BytesIO(scanned_pdf(dpi=200)))) == []


def test_a_copy_of_an_electronic_original_has_no_scan_to_judge(dev_pki: DevPKI) -> None:
    async def go() -> bytes:
        async with sealing(dev_pki, settings=sign_settings(dev_pki)) as sealer:
            return await sealer.seal_document(phu_luc(), COPY)

    assert run(go()).startswith(phu_luc()[:8])


# ---------------------------------------------------------------------- the pre-check and its cache
@dataclass
class _Twin:
    """An examiner twin answering certificate checks with fixed facts (HOUSE.md rule 3)."""

    outcome: TrustOutcome = TrustOutcome.TRUSTED
    produced_at: datetime | None = None
    delay: float = 0.0
    calls: list[datetime] = field(default_factory=list)

    async def examine_certificate(
        self,
        cert: x509.Certificate,
        *,
        at: datetime | None = None,
        purpose: Purpose = "signing",
        settings: ExamSettings,
        extra_certs: Sequence[x509.Certificate] = (),
    ) -> TrustFacts:
        assert at is not None
        assert settings.revocation_mode == "hard-fail"
        self.calls.append(at)
        await asyncio.sleep(self.delay)
        revocation = RevocationFacts("ocsp", "good", self.produced_at or at)
        return TrustFacts(self.outcome, at, f"twin says {self.outcome.value}", revocation=revocation)


def _check(pki: DevPKI, twin: _Twin, clock: FixedClock, every: timedelta = timedelta(minutes=5)) -> OrganisationCheck:
    return OrganisationCheck(
        key_for(pki), twin, clock, settings=ExamSettings(), floors=AlgorithmPolicy(), recheck_every=every
    )


def test_a_fit_verdict_is_reused_briefly_and_shared_by_concurrent_callers(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())
    twin = _Twin(delay=0.05)
    check = _check(dev_pki, twin, clock)

    async def go() -> None:
        await asyncio.gather(*(check.ensure_fit() for _ in range(5)))  # one check in flight, shared
        assert check.checks == 1
        clock.advance(timedelta(minutes=4, seconds=59))
        await check.ensure_fit()
        assert check.checks == 1
        clock.advance(timedelta(seconds=1))  # 5 minutes: re-checked
        await check.ensure_fit()
        assert check.checks == 2

    run(go())


def test_an_old_ocsp_answer_shortens_the_reuse(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())
    twin = _Twin(produced_at=clock.now() - timedelta(minutes=4))  # served from the examiner's cache
    check = _check(dev_pki, twin, clock)

    async def go() -> None:
        await check.ensure_fit()
        clock.advance(timedelta(minutes=1, seconds=1))
        await check.ensure_fit()

    run(go())
    assert check.checks == 2


def test_the_reuse_never_outlives_the_certificate(dev_pki: DevPKI) -> None:
    not_after = dev_pki.certificate("org").not_valid_after_utc
    clock = FixedClock(not_after - timedelta(seconds=30))
    check = _check(dev_pki, _Twin(), clock)

    async def go() -> None:
        await check.ensure_fit()
        clock.advance(timedelta(seconds=31))
        await check.ensure_fit()

    run(go())
    assert check.checks == 2


def test_no_revocation_answer_defers_and_is_never_cached(dev_pki: DevPKI) -> None:
    clock = FixedClock(SystemClock().now())
    twin = _Twin(outcome=TrustOutcome.REVOCATION_UNAVAILABLE)
    check = _check(dev_pki, twin, clock)

    async def go() -> None:
        for _ in range(2):
            with pytest.raises(SealingDeferred) as caught:
                await check.ensure_fit()
            assert caught.value.code == "org-cert-revocation-unavailable"
        twin.outcome = TrustOutcome.TRUSTED  # the responder is back
        await check.ensure_fit()

    run(go())
    assert check.checks == 3


def test_the_pre_check_demands_hard_fail(dev_pki: DevPKI) -> None:
    with pytest.raises(ValueError, match="hard-fail"):
        OrganisationCheck(
            key_for(dev_pki),
            _Twin(),
            SystemClock(),
            settings=ExamSettings(revocation_mode="soft-fail"),
            floors=AlgorithmPolicy(),
            recheck_every=timedelta(minutes=5),
        )
