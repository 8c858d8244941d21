"""Sealed PDFs as independent verifiers and our own examiner see them (B1, B4-B7, G1.7-G1.9, G4.4).

* poppler's ``pdfsig``: every signature valid, the organisation's covers the whole file;
* our examiner with the dev PKI trust store: both signatures TRUSTED, each dated by its time
  stamp, nothing changed after the seal;
* the signature dictionary: ETSI.CAdES.detached, SHA-256, signing-certificate-v2, the chain, a
  signature time stamp, /Name = the organisation, /M in Vietnam time, the same second as the
  time painted on attachments and close to the token's genTime;
* B-LT: the revocation data in the DSS of the same revision;
* a batch on one ``Sealer``: concurrent, one certificate pre-check, the TSA cap honoured.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms
from pyhanko.pdf_utils.generic import read_hex_string_from_stream, read_string_from_stream
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from gateway.clock import VN_TZ, SystemClock
from gateway.devpki import DevPKI
from gateway.sign.pdfseal import SealKind, SealRequest
from gateway.verify.certs import certificate_facts
from gateway.verify.facts import AdESIndication, Modification, PdfFacts, SigningTimeSource, TrustOutcome
from gateway.verify.pdf import Examiner
from gateway.verify.trust import ExamSettings
from tests.external import require
from tests.pdfs import SignedPdfs, phu_luc, run
from tests.sign.conftest import ORGANISATION, SealedDocs, seal, sealing, sign_settings, trust_store

PDF_DATE = re.compile(r"^D:(\d{14})\+07'00'$")


def _examine(pki: DevPKI, pdf: bytes) -> PdfFacts:
    async def go() -> PdfFacts:
        examiner = Examiner(trust_store(pki), SystemClock())
        try:
            return await examiner.examine_pdf(
                pdf, name="sealed.pdf", content_id="", is_main=True, settings=ExamSettings()
            )
        finally:
            await examiner.aclose()

    return run(go())


def _seal_signature(pdf: bytes) -> EmbeddedPdfSignature:
    signature: EmbeddedPdfSignature = PdfFileReader(BytesIO(pdf)).embedded_signatures[-1]
    return signature


def _pdfsig(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    # -nocert: NSS does not trust the test root (and would go to the network); the chain is
    # judged by our examiner instead.
    result = subprocess.run(
        [require("pdfsig"), "-nocert", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("Signature #")[1:]


@pytest.mark.parametrize(("document", "signatures"), [("main", 2), ("attachment", 1), ("copy", 1)])
def test_pdfsig_finds_every_signature_valid_and_the_seal_total(
    sealed_docs: SealedDocs, tmp_path: Path, document: str, signatures: int
) -> None:
    blocks = _pdfsig(getattr(sealed_docs, document), tmp_path)
    assert len(blocks) == signatures
    assert all("Signature Validation: Signature is Valid." in block for block in blocks), blocks
    assert "Total document signed" in blocks[-1]
    assert "Signature Type: ETSI.CAdES.detached" in blocks[-1]
    assert "Signing Hash Algorithm: SHA-256" in blocks[-1]


@pytest.mark.parametrize("document", ["main", "attachment", "copy"])
def test_our_examiner_trusts_every_signature_dated_by_its_time_stamp(
    dev_pki: DevPKI, sealed_docs: SealedDocs, document: str
) -> None:
    facts = _examine(dev_pki, getattr(sealed_docs, document))
    assert facts.readable
    for signature in facts.signatures:
        assert (signature.indication, signature.subindication) == (AdESIndication.TOTAL_PASSED, None)
        assert signature.trust.outcome is TrustOutcome.TRUSTED
        assert signature.signing_time_source is SigningTimeSource.TIMESTAMP
    seal = facts.signatures[-1]
    assert seal.signer is not None
    assert seal.signer.sha256 == _fingerprint(dev_pki, "org")
    assert seal.modification is Modification.NONE
    if document == "main":
        person = facts.signatures[0]
        assert person.modification is Modification.FORM_FILLING  # our seal: a new signature field


def _fingerprint(pki: DevPKI, label: str) -> str:
    return certificate_facts(pki.certificate(label)).sha256


def test_the_seal_is_pades_baseline_t_with_the_chain(dev_pki: DevPKI, sealed_docs: SealedDocs) -> None:
    signature = _seal_signature(sealed_docs.main)
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert signature.md_algorithm == "sha256"
    signed = {a["type"].native for a in signature.signer_info["signed_attrs"]}
    assert {"content_type", "message_digest", "signing_certificate_v2"} <= signed
    assert "signing_time" not in signed  # PAdES: the time is /M and the token's
    unsigned = {a["type"].native for a in signature.signer_info["unsigned_attrs"]}
    assert unsigned == {"signature_time_stamp_token"}
    embedded = {c.chosen.sha256 for c in signature.signed_data["certificates"] if isinstance(c, cms.CertificateChoices)}
    assert dev_pki.certificate_asn1("org").sha256 in embedded
    assert dev_pki.certificate_asn1("intermediate").sha256 in embedded


def test_the_seal_names_the_organisation_and_the_vietnam_time(sealed_docs: SealedDocs) -> None:
    for document in ("main", "attachment", "copy"):
        signature = _seal_signature(getattr(sealed_docs, document))
        assert signature.sig_object["/Name"] == ORGANISATION
        assert PDF_DATE.match(str(signature.sig_object["/M"])), signature.sig_object["/M"]


def test_the_painted_time_is_m_and_close_to_the_time_stamp(dev_pki: DevPKI, sealed_docs: SealedDocs) -> None:
    data = sealed_docs.attachment
    signature = _seal_signature(data)
    match = PDF_DATE.match(str(signature.sig_object["/M"]))
    assert match is not None
    m_time = datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)
    assert m_time.isoformat() in _appearance_text(data)
    stamp = _examine(dev_pki, data).signatures[-1].timestamp
    assert stamp is not None
    assert stamp.gen_time is not None
    assert timedelta(0) <= stamp.gen_time - m_time < timedelta(seconds=10)  # /M is taken at the TSA's door


def _appearance_text(pdf: bytes) -> str:
    """The lines painted in the seal's appearance (each line's /ActualText: the glyphs are CIDs)."""
    stream = _seal_signature(pdf).sig_field["/AP"]["/N"]
    texts = []
    for found in re.finditer(rb"/ActualText ([(<])", stream.data):
        source = BytesIO(stream.data[found.start(1) :])  # both readers skip the opening delimiter
        read = read_string_from_stream if found.group(1) == b"(" else read_hex_string_from_stream
        texts.append(str(read(source)))
    return "\n".join(texts)


def test_the_original_bytes_are_kept_and_one_revision_added(sealed_docs: SealedDocs) -> None:
    original = sealed_docs.signed_pdfs.person_only
    assert sealed_docs.main.startswith(original)
    assert sealed_docs.main.count(b"%%EOF") == original.count(b"%%EOF") + 1


def test_b_lt_puts_the_revocation_data_in_the_same_revision(dev_pki: DevPKI, tmp_path: Path) -> None:
    request = SealRequest(SealKind.ATTACHMENT, ORGANISATION, document_number="123/UBND-VP")
    data = seal(dev_pki, phu_luc(), request, settings=sign_settings(dev_pki, b_lt=True))
    dss = PdfFileReader(BytesIO(data)).root["/DSS"]
    assert len(dss["/Certs"]) >= 3  # org, intermediate, TSA (and the OCSP responder)
    assert len(dss.get("/OCSPs", [])) + len(dss.get("/CRLs", [])) >= 2  # org and TSA (and the intermediate)
    blocks = _pdfsig(data, tmp_path)
    assert "Total document signed" in blocks[-1]
    assert "Signature is Valid." in blocks[-1]
    facts = _examine(dev_pki, data)
    assert facts.signatures[-1].trust.outcome is TrustOutcome.TRUSTED


def test_a_batch_seals_concurrently_with_one_precheck(dev_pki: DevPKI) -> None:
    requests = [SealRequest(SealKind.ATTACHMENT, ORGANISATION, document_number=f"{n}/UBND-VP") for n in range(1, 7)]

    async def go() -> tuple[list[bytes], int, int]:
        async with sealing(dev_pki, settings=sign_settings(dev_pki, tsa_concurrency=2)) as sealer:
            outputs = await asyncio.gather(*(sealer.seal_document(phu_luc(), r) for r in requests))
            return list(outputs), sealer.precheck.checks, sealer.tsa.stats.max_in_flight

    outputs, checks, in_flight = run(go())
    assert checks == 1  # the key is the same for every document: checked once
    assert in_flight <= 2
    assert len(set(outputs)) == len(outputs)
    for number, data in enumerate(outputs, start=1):
        assert f"{number}/UBND-VP" in _appearance_text(data)


def test_signed_pdfs_fixture_is_untouched(signed_pdfs: SignedPdfs) -> None:
    # The sealer reads the shared artefact and never writes into it.
    assert PdfFileReader(BytesIO(signed_pdfs.person_only)).embedded_signatures[-1].field_name == "NguoiKy"
