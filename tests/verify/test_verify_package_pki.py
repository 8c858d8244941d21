"""verify_package end to end: real edXML packages, real PAdES signatures, the test PKI served live.

One test per finding code of the verification engine (issue 3 "done when"), each driven by a
package that carries PDFs signed by the development PKI and checked against its OCSP, CRLs and
TSA over loopback HTTP; plus the attacked PDFs (bytes changed, shadow attacks, /ByteRange not
covering the file, unsigned, an annotation-only revision) and the revocation-at-signing-time
pair. The codes of the format layer (xml-*, edxml-*) have their own tests in tests/edxml; here
a few show that they reach the verdict.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from gateway.clock import SystemClock, to_vn
from gateway.devpki import DevPKI, bind_listener, fingerprint, serve_pki, write_bundle
from gateway.edxml.attachments import attachment_from_file
from gateway.edxml.build import build
from gateway.edxml.model import (
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    PromulgationInfo,
    SignerInfo,
)
from gateway.settings import IdentitySettings
from gateway.sign.envelope import sign_envelope
from gateway.sign.keys import SigningKey
from gateway.verify.directory import Agency, Directory
from gateway.verify.facts import AdESIndication
from gateway.verify.package import Verifier, verify_package
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Action, AlgorithmPolicy, Policy, SignerPolicy
from gateway.verify.report import Verdict, VerificationReport
from gateway.verify.trust import TrustStore
from tests.pdfs import SignedPdfs, cong_van, phu_luc, run
from tests.pdfs.documents import ORG_SEAL_BOX, PERSON_FIELD
from tests.pdfs.signing import ORG_FIELD, sign_pdf, sign_with_local_tsa
from tests.pki import KEY_CACHE

OURS = "000.00.01.H53"
SENDER = "000.00.00.G22"
SDK = Path(__file__).resolve().parents[1] / "data" / "edxml" / "sdk"


def package(*pdfs: tuple[str, bytes], to: str = OURS, others: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    header = MessageHeader(
        from_=Organization(SENDER, organ_name="Văn phòng Chính phủ"),
        to=(Organization(to),),
        code=DocumentCode("123", "VPCP-TTĐT"),
        promulgation=PromulgationInfo("Hà Nội", date(2026, 11, 20)),
        document_type=DocumentType(2, 18, "Công văn"),
        subject="V/v kiểm tra chữ ký số",
        signer=SignerInfo("KT. BỘ TRƯỞNG", "Thứ trưởng", "Nguyễn Văn Test"),
        document_id=f"{SENDER},2026/11/20,123/VPCP-TTĐT",
    )
    files = [attachment_from_file(name, data) for name, data in (*pdfs, *others)]
    return build(DocumentPackage(header=header, attachments=tuple(files)))


def signer_policy(pki: DevPKI) -> SignerPolicy:
    return SignerPolicy(
        organisation_policy_oids=(pki.policy_oids.organisation,), person_policy_oids=(pki.policy_oids.person,)
    )


def verify(
    raw: bytes,
    pki: DevPKI,
    *,
    policy: Policy | None = None,
    directory: Directory | None = None,
) -> VerificationReport:
    store = TrustStore.load(
        [pki.layout.anchor("root")], [fingerprint(pki.certificate("root"))], [pki.layout.intermediate("intermediate")]
    )

    async def go() -> VerificationReport:
        examiner = Examiner(store, SystemClock())
        verifier = Verifier(
            examiner=examiner,
            policy=policy or Policy(signers=signer_policy(pki)),
            identity=IdentitySettings(organ_ids=(OURS,)),
            directory=directory or Directory(),
        )
        try:
            return await verify_package(raw, verifier)
        finally:
            await examiner.aclose()

    return asyncio.run(go())


def codes(report: VerificationReport, *, counting: bool = False) -> set[str]:
    """The finding codes (only those that reject or defer with ``counting``)."""
    return {f.code for f in report.findings if not counting or f.action in (Action.REJECT, Action.DEFER)}


def only_refusal(report: VerificationReport, code: str) -> None:
    """Refused, and ``code`` is among the reasons (other reasons may follow from the same defect)."""
    assert report.verdict is Verdict.REFUSED, report.findings
    assert code in codes(report, counting=True), report.findings


@pytest.fixture(scope="module")
def good(signed_pdfs: SignedPdfs) -> bytes:
    return package(("cong-van.pdf", signed_pdfs.main), ("phu-luc.pdf", signed_pdfs.signed_appendix))


# --------------------------------------------------------------------------- the good case


def test_a_lawful_package_is_accepted(good: bytes, dev_pki: DevPKI) -> None:
    report = verify(good, dev_pki)
    assert report.verdict is Verdict.ACCEPTED, report.findings
    assert (report.indication, report.subindication) == (AdESIndication.TOTAL_PASSED, None)
    assert codes(report) == {"envelope-signature-absent"}
    assert [(s.document, s.role) for s in report.signatures] == [
        ("cong-van.pdf", "person"),
        ("cong-van.pdf", "organisation"),
        ("phu-luc.pdf", "organisation"),
    ]
    for s in report.signatures:
        assert s.signing_time_source == "timestamp"
        assert s.anchor is not None
        assert "Test RootCA" in s.anchor
        assert (s.revocation_source, s.revocation_status) == ("ocsp", "good")
    assert report.policy.sha256 == Policy(signers=signer_policy(dev_pki)).sha256
    assert report.package is not None
    assert report.package.document_id == f"{SENDER},2026/11/20,123/VPCP-TTĐT"


def test_the_json_contract(good: bytes, dev_pki: DevPKI) -> None:
    data = verify(good, dev_pki).to_json("goi-tin.edxml")
    assert {"file", "verdict", "indication", "subindication", "findings", "signatures", "policy"} <= set(data)
    assert set(data["findings"][0]) == {"code", "action", "where", "message_vi", "message_en"}
    assert set(data["policy"]) == {"name", "version", "sha256"}
    assert data["signatures"][0]["signing_time"].endswith("+07:00")


# --------------------------------------------------------------------------- addressing and envelope


def test_misaddressed(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    only_refusal(verify(package(("a.pdf", signed_pdfs.main), to="000.00.32.H53"), dev_pki), "misaddressed")


def test_sender_mismatch(good: bytes, dev_pki: DevPKI) -> None:
    other = Directory({SENDER: Agency(SENDER, certificates=("AB" * 32,))})
    only_refusal(verify(good, dev_pki, directory=other), "sender-mismatch")
    own = Directory({SENDER: Agency(SENDER, certificates=(fingerprint(dev_pki.certificate("org")),))})
    assert verify(good, dev_pki, directory=own).verdict is Verdict.ACCEPTED


def test_attachment_not_pdf(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    raw = package(("a.pdf", signed_pdfs.main), others=(("bang-ke.txt", "số liệu\n".encode()),))
    report = verify(raw, dev_pki)
    assert report.verdict is Verdict.ACCEPTED
    assert "attachment-not-pdf" in codes(report)


def org_key(pki: DevPKI, label: str = "org") -> SigningKey:
    key = pki.private_key(label)
    chain = tuple(c for c in pki.chain(label) if c.subject != c.issuer)
    return SigningKey(key, pki.certificate(label), chain)


def test_a_valid_envelope_signature_is_checked_like_any_signer(good: bytes, dev_pki: DevPKI) -> None:
    report = verify(sign_envelope(good, org_key(dev_pki)), dev_pki)
    assert report.verdict is Verdict.ACCEPTED, report.findings
    assert report.envelope is not None
    assert report.envelope.state == "valid"
    assert not any(f.code.startswith("envelope-") for f in report.findings)


def test_envelope_signed_by_an_impostor_is_untrusted(good: bytes, dev_pki: DevPKI) -> None:
    report = verify(sign_envelope(good, org_key(dev_pki, "impostor-leaf")), dev_pki)
    only_refusal(report, "cert-untrusted")
    assert any(f.where == "envelope" for f in report.findings if f.code == "cert-untrusted")


def test_envelope_signature_invalid(good: bytes, dev_pki: DevPKI) -> None:
    signed = sign_envelope(good, org_key(dev_pki))
    only_refusal(
        verify(signed.replace("kiểm tra".encode(), "kiểm soát".encode(), 1), dev_pki), "envelope-signature-invalid"
    )


def test_envelope_signature_placeholder_of_the_sdk(dev_pki: DevPKI) -> None:
    report = verify((SDK / "edoc_new.edxml").read_bytes(), dev_pki)
    assert "envelope-signature-placeholder" in codes(report)
    assert report.verdict is Verdict.REFUSED  # misaddressed, and its attachment is no signed PDF


# --------------------------------------------------------------------------- PDFs and attacks


def test_pdf_unreadable(dev_pki: DevPKI) -> None:
    only_refusal(verify(package(("hong.pdf", b"%PDF-1.7\nthis is not a PDF at all\n")), dev_pki), "pdf-unreadable")


def test_pdf_unsigned(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    report = verify(package(("chua-ky.pdf", signed_pdfs.unsigned)), dev_pki)
    only_refusal(report, "pdf-unsigned")
    assert (report.indication, report.subindication) == (AdESIndication.INDETERMINATE, "SIGNED_DATA_NOT_FOUND")


def test_bytes_changed_inside_the_signed_range(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    report = verify(package(("a.pdf", signed_pdfs.tampered)), dev_pki)
    only_refusal(report, "pdf-signature-invalid")
    assert (report.indication, report.subindication) == (AdESIndication.TOTAL_FAILED, "HASH_FAILURE")


@pytest.mark.parametrize("artefact", ["uncovered_tail", "uncovered_gap"])
def test_byte_range_not_covering_the_file(signed_pdfs: SignedPdfs, dev_pki: DevPKI, artefact: str) -> None:
    only_refusal(verify(package(("a.pdf", signed_pdfs.get(artefact))), dev_pki), "pdf-signature-invalid")


@pytest.mark.parametrize(
    "artefact",
    ["shadow_hide", "shadow_replace", "shadow_hide_replace", "comment_added", "trailing_bytes", "form_filled"],
)
def test_modified_after_signing(signed_pdfs: SignedPdfs, dev_pki: DevPKI, artefact: str) -> None:
    report = verify(package(("a.pdf", signed_pdfs.get(artefact))), dev_pki)
    only_refusal(report, "pdf-modified-after-signing")
    message = next(f.message_vi for f in report.findings if f.code == "pdf-modified-after-signing")
    assert "Tài liệu đã bị thay đổi sau khi ký" in message


def test_validation_data_added_later_is_allowed(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    report = verify(package(("a.pdf", signed_pdfs.lta_updates)), dev_pki)
    assert report.verdict is Verdict.ACCEPTED, report.findings


# --------------------------------------------------------------------------- certificates


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("expired", "cert-expired"),
        ("not-yet-valid", "cert-not-yet-valid"),
        ("impostor-leaf", "cert-untrusted"),
        ("wrong-key-usage", "cert-key-usage"),
        ("ca-flagged", "cert-is-ca"),
        ("rsa1024", "algorithm-weak"),
        ("sha1", "algorithm-weak"),
    ],
)
def test_bad_signer(signed_pdfs: SignedPdfs, dev_pki: DevPKI, label: str, code: str) -> None:
    main = run(
        sign_pdf(
            signed_pdfs.signed_by(label),
            pki=dev_pki,
            signer_label="org",
            field_name=ORG_FIELD,
            visible_box=ORG_SEAL_BOX,
        )
    )
    report = verify(package(("a.pdf", main)), dev_pki)
    only_refusal(report, code)
    assert all(f.where.endswith("signature 1 (NguoiKy)") for f in report.findings if f.code == code)


def test_sha1_digest_is_weak_unless_dated_before_the_cutoff(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    main = run(
        sign_pdf(
            signed_pdfs.sha1_digest, pki=dev_pki, signer_label="org", field_name=ORG_FIELD, visible_box=ORG_SEAL_BOX
        )
    )
    raw = package(("a.pdf", main))
    only_refusal(verify(raw, dev_pki), "algorithm-weak")
    tomorrow = to_vn(SystemClock().now()).date() + timedelta(days=1)
    lenient = Policy(signers=signer_policy(dev_pki), algorithms=AlgorithmPolicy(sha1_cutoff=tomorrow))
    report = verify(raw, dev_pki, policy=lenient)
    assert report.verdict is Verdict.ACCEPTED, report.findings
    assert "algorithm-legacy" in codes(report)


def signed_main(pki: DevPKI, *, person: str, stamped: object = "now") -> bytes:
    person_signed = run(sign_pdf(cong_van(), pki=pki, signer_label=person, field_name=PERSON_FIELD, timestamp=stamped))  # type: ignore[arg-type]
    return run(sign_pdf(person_signed, pki=pki, signer_label="org", field_name=ORG_FIELD, visible_box=ORG_SEAL_BOX))


def test_revoked_after_the_timestamp_is_accepted(dev_pki: DevPKI) -> None:
    """Checklist A5 / G1.12: revoked at T, signature timestamped at T - 1 h: valid."""
    raw = package(
        ("a.pdf", signed_main(dev_pki, person="revoked", stamped=dev_pki.revocation_time - timedelta(hours=1)))
    )
    report = verify(raw, dev_pki)
    assert report.verdict is Verdict.ACCEPTED, report.findings
    person = report.signatures[0]
    assert person.signing_time == dev_pki.revocation_time - timedelta(hours=1)
    assert person.revocation_status == "revoked"  # the answer is shown: revoked, but after the signing time


def test_revoked_before_the_timestamp_is_refused(dev_pki: DevPKI) -> None:
    """Checklist A5 / G1.12: revoked at T, signature timestamped at T + 1 h: refused."""
    raw = package(
        ("a.pdf", signed_main(dev_pki, person="revoked", stamped=dev_pki.revocation_time + timedelta(hours=1)))
    )
    report = verify(raw, dev_pki)
    only_refusal(report, "cert-revoked")
    assert (report.indication, report.subindication) == (AdESIndication.TOTAL_FAILED, "REVOKED")
    message = next(f.message_vi for f in report.findings if f.code == "cert-revoked")
    assert message.startswith("Chứng thư số đã bị thu hồi")


# --------------------------------------------------------------------------- time stamps


def test_timestamp_absent_is_a_warning(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    report = verify(package(("a.pdf", signed_pdfs.main_without_timestamps)), dev_pki)
    assert report.verdict is Verdict.ACCEPTED, report.findings
    assert "timestamp-absent" in codes(report)
    assert {s.signing_time_source for s in report.signatures} == {"verification-time"}


def test_timestamp_from_an_untrusted_tsa(dev_pki: DevPKI) -> None:
    person = run(sign_with_local_tsa(dev_pki, signer_label="person", tsa_label="impostor-leaf"))
    main = run(sign_pdf(person, pki=dev_pki, signer_label="org", field_name=ORG_FIELD, visible_box=ORG_SEAL_BOX))
    report = verify(package(("a.pdf", main)), dev_pki)
    assert "timestamp-invalid" in codes(report)
    assert report.signatures[0].signing_time_source == "verification-time"
    only_refusal(report, "cert-untrusted")  # the TSA's own certificate fails the path check


# --------------------------------------------------------------------------- Decree 30 Art. 5


def test_person_signature_missing(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    only_refusal(verify(package(("a.pdf", signed_pdfs.org_only)), dev_pki), "person-signature-missing")


def test_org_signature_missing(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    only_refusal(verify(package(("a.pdf", signed_pdfs.person_only)), dev_pki), "org-signature-missing")


def test_an_unsigned_appendix_is_refused(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    only_refusal(verify(package(("a.pdf", signed_pdfs.main), ("phu-luc.pdf", phu_luc())), dev_pki), "pdf-unsigned")


# --------------------------------------------------------------------------- format codes reach the verdict


def test_malformed_package(dev_pki: DevPKI) -> None:
    report = verify((SDK / "edoc.edxml").read_bytes(), dev_pki)
    only_refusal(report, "xml-malformed")
    assert (report.indication, report.subindication) == (AdESIndication.TOTAL_FAILED, "FORMAT_FAILURE")
    assert report.package is None


def test_second_message_header(good: bytes, dev_pki: DevPKI) -> None:
    doubled = good.replace(
        b"<edXML:MessageHeader>", b"<edXML:MessageHeader></edXML:MessageHeader><edXML:MessageHeader>", 1
    )
    only_refusal(verify(doubled, dev_pki), "edxml-duplicate-element")


# --------------------------------------------------------------------------- revocation status unavailable


@pytest.fixture(scope="module")
def outage_pki(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> tuple[DevPKI, bytes]:
    """A second PKI whose services we can stop: documents are signed while it is up."""
    listener = bind_listener("127.0.0.1", 0)
    port = listener.getsockname()[1]
    directory = tmp_path_factory.mktemp("outage-pki")
    cache = getattr(pytestconfig, "cache", None)
    pki = DevPKI.generate(
        directory,
        base_url=f"http://127.0.0.1:{port}",
        anchor=SystemClock().now().replace(microsecond=0),
        key_cache=None if cache is None else Path(cache.mkdir(KEY_CACHE)),
    )
    write_bundle(pki, directory)
    with serve_pki(pki, listener):
        raw = package(("a.pdf", signed_main(pki, person="person")))
    return pki, raw  # the server is stopped: its port no longer answers


def test_revocation_unavailable_defers_then_accepts_when_the_responder_returns(
    outage_pki: tuple[DevPKI, bytes],
) -> None:
    pki, raw = outage_pki
    report = verify(raw, pki)  # nobody answers on the PKI's port now
    assert report.verdict is Verdict.DEFERRED, report.findings
    assert "revocation-unavailable" in codes(report, counting=True)
    assert (report.indication, report.subindication) == (AdESIndication.INDETERMINATE, "TRY_LATER")
    soft = verify(raw, pki, policy=Policy(signers=signer_policy(pki), revocation_mode="soft-fail"))
    assert soft.verdict is Verdict.ACCEPTED
    assert {f.action for f in soft.findings if f.code == "revocation-unavailable"} == {Action.WARN}
    port = int(pki.base_url.rsplit(":", 1)[1])
    with serve_pki(pki, bind_listener("127.0.0.1", port)):
        again = verify(raw, pki)
    assert again.verdict is Verdict.ACCEPTED, again.findings


def test_policy_actions_change_the_verdict(signed_pdfs: SignedPdfs, dev_pki: DevPKI) -> None:
    raw = package(("a.pdf", signed_pdfs.person_only))
    relaxed = Policy(signers=signer_policy(dev_pki))
    relaxed = replace(relaxed, actions={**relaxed.actions, "org-signature-missing": Action.WARN})
    report = verify(raw, dev_pki, policy=relaxed)
    assert report.verdict is Verdict.ACCEPTED
    assert report.policy.sha256 != Policy(signers=signer_policy(dev_pki)).sha256
